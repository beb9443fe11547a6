//! `expire-orders` — EventBridge schedule: PENDING_PAYMENT orders past
//! `expiresAt` become EXPIRED, stock and points released in the same
//! transaction. The handler is `shop_app::events::schedules::expire_orders_handler`.

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("expire-orders");
    // Configuration errors fail the cold start, not an invocation.
    let app = shop_app::adapters::aws::app_from_env().await.expect("configuration");
    shop_app::obs::lambda::run(service_fn(|event: LambdaEvent<CloudWatchEvent>| {
        shop_app::events::schedules::expire_orders_handler(&app, event)
    }))
    .await
}
