//! What EventBridge Scheduler and CloudWatch run on a timer in AWS: the
//! scheduled functions (order expiry, payment reconciliation) and, locally,
//! the overview's gauges (CloudWatch's queue depths and the stream's
//! iterator age in AWS).

use shop_app::App;

/// One sample of the overview's gauges: each consumer's queue and DLQ
/// depth (as SQS's `ApproximateNumberOfMessages` would say), and the
/// emulated stream's backlog: how many events wait for the publisher and
/// the oldest one's age.
pub async fn sample_gauges(app: &App) -> anyhow::Result<()> {
    use shop_app::obs::stats;
    let queues = crate::emulate::queue::Queues(&app.store);
    let mut gauges = Vec::new();
    for c in shop_app::events::consumers::NAMES {
        for q in [c.to_string(), crate::emulate::queue::dlq_of(c)] {
            let depth = queues.depth(&q, stats::PENDING_CAP).await?;
            gauges.push((format!("{}{q}", stats::QUEUE), i64::try_from(depth).unwrap_or(i64::MAX)));
        }
    }
    let now = app.clock.now();
    let (pending, _, oldest) = app.store.outbox().pending_summary(stats::PENDING_CAP).await?;
    let age = oldest.map(|t| now.millis().saturating_sub(t.millis()).max(0)).unwrap_or(0);
    gauges.push((stats::OUTBOX_PENDING.to_owned(), i64::try_from(pending).unwrap_or(i64::MAX)));
    gauges.push((stats::OUTBOX_AGE_MS.to_owned(), age));
    app.store.stats().sample(now, &gauges).await?;
    Ok(())
}

/// One run of every scheduled function, as EventBridge schedules would trigger them.
pub async fn run_schedules(app: &App) {
    use shop_app::obs::telemetry::{invocation_span, new_request_id};
    use tracing::Instrument as _;
    let expire = invocation_span("expire-orders", &new_request_id());
    if let Err(e) = shop_app::usecases::expire::expire_orders(app).instrument(expire.clone()).await {
        expire.in_scope(|| tracing::error!(error = %e, "expire-orders failed"));
    }
    let reconcile = invocation_span("reconcile-payments", &new_request_id());
    if let Err(e) = shop_app::usecases::reconcile::reconcile_payments(app).instrument(reconcile.clone()).await {
        reconcile.in_scope(|| tracing::error!(error = %e, "reconcile-payments failed"));
    }
}
