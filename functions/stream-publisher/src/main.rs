//! `stream-publisher` — DynamoDB stream (outbox EVENT items) → EventBridge,
//! with per-entry resend and per-record batch item failures. The handler is
//! `shop_app::events::publisher::Publisher`.

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shop_app::events::publisher::Publisher;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("stream-publisher");
    // Configuration errors fail the cold start, not an invocation.
    let (app, sdk) = shop_app::adapters::aws::app_and_sdk().await.expect("configuration");
    let bus = shop_app::adapters::aws::event_bus(&sdk).expect("EVENT_BUS_NAME");
    let publisher = Publisher { bus: std::sync::Arc::new(bus) };
    shop_app::obs::lambda::run(service_fn(|event: LambdaEvent<Event>| async {
        Ok::<_, Error>(publisher.publish(&app, event.payload).await.0)
    }))
    .await
}
