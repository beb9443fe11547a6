//! `live` — API Gateway WebSocket API (`$connect`, `$disconnect`, `$default`): the waiting
//! room's live positions. `$connect` records the connection its authorizer let through,
//! `$disconnect` forgets it, any message is answered with the position now. The handler is
//! `shop_app::http::live::route`.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("live");
    // Configuration errors fail the cold start, not an invocation.
    let (app, sdk) = shop_app::adapters::aws::app_and_sdk().await.expect("configuration");
    let pusher = shop_app::adapters::live::ApiGatewayPusher::from_env(&sdk).expect("LIVE_ENDPOINT is not set");
    shop_app::obs::lambda::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        shop_app::http::live::route(&app, &pusher, event.payload)
    }))
    .await
}
