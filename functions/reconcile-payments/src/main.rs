//! `reconcile-payments` — EventBridge schedule: payments CONFIRMING/UNKNOWN
//! for longer than `RECONCILE_AFTER_SECS` are looked up at the PG and
//! resolved as a confirm answer would be. The handler is
//! `shop_app::events::schedules::reconcile_payments_handler`.

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("reconcile-payments");
    // Configuration errors fail the cold start, not an invocation.
    let app = shop_app::adapters::aws::pg_app_from_env("reconcile-payments").await.expect("configuration");
    shop_app::obs::lambda::run(service_fn(|event: LambdaEvent<CloudWatchEvent>| {
        shop_app::events::schedules::reconcile_payments_handler(&app, event)
    }))
    .await
}
