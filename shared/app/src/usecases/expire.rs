//! Expiring unpaid orders (the `expire-orders` schedule): PENDING_PAYMENT
//! orders past `expiresAt` become EXPIRED, their stock and points coming
//! back in the same transaction. Reads the `byDue` index only, never a scan.
//! The reconciler expires virtual-account orders past their due date
//! through the same [`expire_order`].

use crate::App;
use crate::usecases::points::give_back_points;
use crate::usecases::retry::{Step, retry};
use crate::usecases::stock::release_stock;
use shop_domain::points::LedgerReason;
use shop_domain::{OrderCommand, OrderId};
use shop_store::Tx;
use tracing::Instrument;

/// Orders handled per run; the next run takes the rest.
pub const BATCH: i32 = 100;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ExpireReport {
    pub expired: usize,
    /// Changed by someone else meanwhile (paid, cancelled), or failed: left
    /// for the next run.
    pub skipped: usize,
}

#[derive(Debug, thiserror::Error)]
enum ExpireError {
    #[error(transparent)]
    Contention(crate::usecases::retry::Contended),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::usecases::retry::use_case_error!(ExpireError);

#[tracing::instrument(skip_all)]
pub async fn expire_orders(app: &App) -> anyhow::Result<ExpireReport> {
    let now = app.clock.now();
    let mut report = ExpireReport::default();
    for id in app.store.orders().due_to_expire(now, BATCH).await? {
        let span = tracing::info_span!("expire_order", order_id = %id);
        match expire_order(app, &id, &format!("expire-{id}")).instrument(span).await {
            Ok(true) => report.expired += 1,
            Ok(false) => report.skipped += 1,
            Err(e) => {
                tracing::error!(order_id = %id, error = %e, "expiring order failed");
                report.skipped += 1;
            }
        }
    }
    if report.expired > 0 {
        // The run's own count; the saga's OrdersExpired is counted where the event is published.
        app.count("ExpiredByRun", report.expired as u64);
        tracing::info!(?report, "expired orders");
    }
    Ok(report)
}

/// Expires one order if the domain allows it now (a PENDING_PAYMENT order
/// past `expiresAt`, an AWAITING_DEPOSIT one past its account's due date),
/// with its stock and points back in the same transaction. Whether it
/// expired; `false` when it is not (or no longer) expirable: paid,
/// cancelled, being confirmed.
pub async fn expire_order(app: &App, id: &OrderId, correlation_id: &str) -> anyhow::Result<bool> {
    retry(id.as_str(), |_| expire_one(app, id, correlation_id)).await.map_err(anyhow::Error::new)
}

async fn expire_one(app: &App, id: &OrderId, correlation_id: &str) -> Result<bool, Step<ExpireError>> {
    let Some(order) = app.store.orders().get(id).await? else { return Ok(false) };
    let now = app.clock.now();
    let Ok((expired, events)) = order.execute(&OrderCommand::Expire, now) else { return Ok(false) };
    if events.is_empty() {
        return Ok(false);
    }
    let mut tx = Tx::new();
    tx.extend(release_stock(app, &order)?);
    tx.extend(give_back_points(app, &order, LedgerReason::OrderRelease, order.points_used, now).await?);
    tx.push(app.store.orders().op_update(order.version, &expired)?);
    tx.extend(super::outbox(app, Some(&order), &events, correlation_id)?);
    app.store.transact(tx).await?;
    Ok(true)
}
