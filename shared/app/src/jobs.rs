//! Scheduled work (EventBridge schedules in AWS, the local stack's scheduler
//! locally): expiring unpaid orders and reconciling payments in doubt.

use crate::App;
use crate::payments::{PgOutcome, apply_pg_outcome, outcome_of, refund_points_ops, release_stock_ops};
use crate::pg::PgError;
use lambda_http::aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use lambda_http::lambda_runtime::LambdaEvent;
use shop_domain::points::LedgerReason;
use shop_domain::{OrderCommand, OrderId};
use shop_store::{StoreError, Tx};

/// Orders handled per run; the next run takes the rest.
pub const BATCH: i32 = 100;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ExpireReport {
    pub expired: usize,
    /// Changed by someone else meanwhile (paid, cancelled): left alone.
    pub skipped: usize,
}

/// PENDING_PAYMENT orders past `expiresAt` become EXPIRED; their stock and
/// points come back in the same transaction. Reads the `byDue` index only.
#[tracing::instrument(skip_all)]
pub async fn expire_orders(app: &App) -> anyhow::Result<ExpireReport> {
    let now = app.clock.now();
    let mut report = ExpireReport::default();
    for id in app.store.orders_due_to_expire(now, BATCH).await? {
        match expire_one(app, &id).await {
            Ok(true) => report.expired += 1,
            Ok(false) => report.skipped += 1,
            Err(e) => {
                tracing::error!(order_id = %id, error = %e, "expiring order failed");
                report.skipped += 1;
            }
        }
    }
    if report.expired > 0 {
        crate::metrics::count(app.service, "OrdersExpired", report.expired as u64);
        tracing::info!(?report, "expired orders");
    }
    Ok(report)
}

async fn expire_one(app: &App, id: &OrderId) -> anyhow::Result<bool> {
    let Some(order) = app.store.get_order(id).await? else { return Ok(false) };
    let now = app.clock.now();
    let Ok((expired, events)) = order.execute(&OrderCommand::Expire, now) else { return Ok(false) };
    if events.is_empty() {
        return Ok(false);
    }
    let mut tx = Tx::new();
    tx.extend(release_stock_ops(app, &order)?);
    tx.extend(
        refund_points_ops(app, &order.user_id, order.points_used, LedgerReason::OrderRelease, &order.id, now).await?,
    );
    tx.push(app.store.op_update_order(order.version, &expired)?);
    for e in &events {
        tx.push(app.store.op_put_event(e, &format!("expire-{}", order.id), None)?);
    }
    match app.store.transact(tx).await {
        Ok(()) => Ok(true),
        // Paid or cancelled at the same moment, or points moved: next run re-decides.
        Err(StoreError::Conflict { item, reason }) => {
            tracing::info!(order_id = %id, %item, %reason, "expiry lost a race");
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    pub resolved: usize,
    /// The PG could not tell yet (still unreachable): tried again next run.
    pub still_unknown: usize,
}

/// Payments CONFIRMING or UNKNOWN for longer than `reconcile_after_secs`:
/// asks the PG (`GET /v1/payments/orders/{orderId}`) and resolves each exactly
/// as a confirm answer would.
#[tracing::instrument(skip_all)]
pub async fn reconcile_payments(app: &App) -> anyhow::Result<ReconcileReport> {
    let now = app.clock.now();
    let before = now.plus_secs(-app.config.reconcile_after_secs);
    let mut report = ReconcileReport::default();
    for payment in app.store.payments_in_doubt(before, BATCH).await? {
        let key = payment.payment_key.clone();
        let by_order = app.pg.payment_by_order(&payment.order_id).await;
        let result = match by_order {
            // The order's payment at the PG is another attempt: ask about ours.
            Ok(p) if p.payment_key != key => app.pg.payment(&key).await,
            other => other,
        };
        let outcome = match result {
            Err(PgError::NotFound) => PgOutcome::Declined {
                code: "NOT_FOUND_PAYMENT".into(),
                message: "the PG never received the payment".into(),
            },
            other => outcome_of(app, &key, other).await,
        };
        if let PgOutcome::Unknown(reason) = &outcome {
            tracing::warn!(payment_key = %key, %reason, "PG still cannot say; next run retries");
            report.still_unknown += 1;
            continue;
        }
        match apply_pg_outcome(app, &key, &outcome, true, &format!("reconcile-{key}")).await {
            Ok(s) => {
                tracing::info!(payment_key = %key, order_status = %s.order.status, "payment reconciled");
                report.resolved += 1;
            }
            Err(e) => {
                tracing::error!(payment_key = %key, error = %e, "reconciling failed");
                report.still_unknown += 1;
            }
        }
    }
    if report.still_unknown > 0 {
        crate::metrics::count(app.service, "PaymentsStillUnknown", report.still_unknown as u64);
    }
    Ok(report)
}

/// The `expire-orders` function: an EventBridge schedule event in, the report out.
pub async fn expire_orders_handler(
    app: &App,
    event: LambdaEvent<CloudWatchEvent>,
) -> Result<ExpireReport, lambda_http::Error> {
    tracing::info!(schedule = ?event.payload.resources, "expire-orders run");
    Ok(expire_orders(app).await?)
}

/// The `reconcile-payments` function: an EventBridge schedule event in, the report out.
pub async fn reconcile_payments_handler(
    app: &App,
    event: LambdaEvent<CloudWatchEvent>,
) -> Result<ReconcileReport, lambda_http::Error> {
    tracing::info!(schedule = ?event.payload.resources, "reconcile-payments run");
    Ok(reconcile_payments(app).await?)
}
