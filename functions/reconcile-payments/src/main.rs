//! `reconcile-payments` — EventBridge schedule: payments CONFIRMING/UNKNOWN
//! for longer than `RECONCILE_AFTER_SECS` are looked up at the PG and
//! resolved as a confirm answer would be. Also invoked by operators
//! (`{"askPg": {"orderIds": [...]}}`: `shop bulk ask-pg --stack`, the
//! console's "Ask the PG now") to ask about chosen orders at once. The
//! handler is `shop_app::events::schedules::reconcile_or_ask_handler`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shop_app::events::schedules::ReconcileInput;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_app::obs::init("reconcile-payments");
    // Configuration errors fail the cold start, not an invocation.
    let app = shop_app::adapters::aws::pg_app_from_env("reconcile-payments").await.expect("configuration");
    shop_app::obs::lambda::run(service_fn(|event: LambdaEvent<ReconcileInput>| {
        shop_app::events::schedules::reconcile_or_ask_handler(&app, event)
    }))
    .await
}
