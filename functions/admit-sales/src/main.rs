//! `admit-sales` — EventBridge schedule (every minute): the waiting room's admitter. Sessions
//! that ended without an order free their slots, and every live sale admits its lowest waiting
//! tickets, a step a second for most of the minute, at the rate the saga's health allows, and
//! positions are pushed to the WebSocket API's connections. The
//! handler is `shop_app::events::schedules::admit_sales_handler`.

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("admit-sales");
    // Configuration errors fail the cold start, not an invocation.
    let (app, sdk) = shop_app::adapters::aws::app_and_sdk().await.expect("configuration");
    // Positions are pushed to the WebSocket API's connections when the stack has one.
    let pusher = shop_app::adapters::live::ApiGatewayPusher::from_env(&sdk);
    shop_app::obs::lambda::run(service_fn(|event: LambdaEvent<CloudWatchEvent>| {
        let pusher = pusher.as_ref().map(|p| p as &dyn shop_app::ports::Pusher);
        shop_app::events::schedules::admit_sales_handler(&app, pusher, event)
    }))
    .await
}
