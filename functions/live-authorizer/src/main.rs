//! `live-authorizer` — the REQUEST authorizer of the WebSocket API's `$connect`: a valid live
//! token (offered in `Sec-WebSocket-Protocol`) lets the connection through with its sale and
//! user as context. The handler is `shop_app::http::live::authorize`.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("live-authorizer");
    // Configuration errors fail the cold start, not an invocation.
    let app = shop_app::adapters::aws::admission_app_from_env("live-authorizer").await.expect("configuration");
    shop_app::obs::lambda::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        shop_app::http::live::authorize(&app, event.payload)
    }))
    .await
}
