//! `compensation` consumer — saga compensation (PG cancel, refunds, stock and points back). SQS (the rule's target queue) in,
//! `SqsBatchResponse` out. The handler is `shop_app::events::consumers::handle_sqs`.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("compensation");
    // Configuration errors fail the cold start, not an invocation.
    let app = shop_app::adapters::aws::pg_app_from_env("compensation").await.expect("configuration");
    let app = shop_app::adapters::aws::with_refund_accounts(app, "compensation").await.expect("configuration");
    let consumer = shop_app::events::consumers::CompensationConsumer;
    shop_app::obs::lambda::run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, Error>(shop_app::events::consumers::handle_sqs(&app, &consumer, event.payload).await)
    }))
    .await
}
