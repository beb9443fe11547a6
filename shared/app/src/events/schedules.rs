//! The scheduled functions' entry points: an EventBridge schedule event in,
//! the run's report out (the Lambda's result, visible in its logs).

use crate::App;
use crate::usecases::expire::{ExpireReport, expire_orders};
use crate::usecases::reconcile::{ReconcileReport, reconcile_payments};
use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use lambda_runtime::LambdaEvent;

/// `expire-orders`.
pub async fn expire_orders_handler(
    app: &App,
    event: LambdaEvent<CloudWatchEvent>,
) -> Result<ExpireReport, lambda_runtime::Error> {
    tracing::info!(schedule = ?event.payload.resources, "expire-orders run");
    Ok(expire_orders(app).await?)
}

/// `reconcile-payments`.
pub async fn reconcile_payments_handler(
    app: &App,
    event: LambdaEvent<CloudWatchEvent>,
) -> Result<ReconcileReport, lambda_runtime::Error> {
    tracing::info!(schedule = ?event.payload.resources, "reconcile-payments run");
    Ok(reconcile_payments(app).await?)
}
