//! Compensation's use cases: cancelling a payment at the PG (an orphaned
//! capture, a virtual account of a cancelled order, a refund) and completing
//! a refund (stock and points back, the order REFUNDED with `OrderRefunded`,
//! in one transaction). Both are idempotent: a payment already CANCELED is
//! not cancelled again, an order already REFUNDED is left alone.

use crate::App;
use crate::ports::PgError;
use crate::usecases::points::give_back_points;
use crate::usecases::retry::{Step, retry};
use crate::usecases::settle::{PgOutcome, apply_pg_outcome};
use crate::usecases::stock::release_stock;
use shop_domain::points::LedgerReason;
use shop_domain::{Money, OrderCommand, OrderError, OrderEventKind, OrderId, PaymentKey, PaymentStatus};
use shop_store::Tx;

#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    /// The PG will not do it (not cancelable, no such payment): an operator's case.
    #[error("the PG refused the cancel: {0}")]
    PgRefused(String),
    /// The PG could not be asked, or its answer could not be recorded: retry.
    #[error("PG cancel: {0}")]
    PgUnavailable(String),
    #[error("order {0} does not exist")]
    NoOrder(OrderId),
    #[error("cannot complete the refund: {0}")]
    Refused(#[from] OrderError),
    #[error(transparent)]
    Contention(crate::usecases::retry::Contended),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::usecases::retry::use_case_error!(RefundError);

/// Cancels a payment at the PG (Idempotency-Key per payment) and records
/// the PG's answer through the settlement path.
#[tracing::instrument(skip_all, fields(payment_key = %key))]
pub async fn cancel_at_pg(app: &App, key: &PaymentKey, reason: &str, correlation_id: &str) -> Result<(), RefundError> {
    if let Some(p) = app.store.payments().get(key).await?
        && p.status == PaymentStatus::Canceled
    {
        return Ok(());
    }
    let pg = match app.pg().cancel(key, reason, None).await {
        Ok(p) => p,
        // Cancelled before (by us, or at the PG's console): look it up.
        Err(PgError::Declined { code, .. }) if code == "ALREADY_CANCELED_PAYMENT" => {
            match app.pg().payment(key).await {
                Ok(p) => p,
                Err(e) => {
                    return Err(RefundError::PgUnavailable(format!("lookup after ALREADY_CANCELED_PAYMENT: {e}")));
                }
            }
        }
        Err(PgError::Declined { code, message }) => return Err(RefundError::PgRefused(format!("{code}: {message}"))),
        Err(PgError::NotFound) => return Err(RefundError::PgRefused(format!("the PG has no payment {key}"))),
        Err(e @ (PgError::Unknown(_) | PgError::AlreadyProcessed)) => {
            return Err(RefundError::PgUnavailable(e.to_string()));
        }
    };
    apply_pg_outcome(app, key, &PgOutcome::Payment(pg), false, correlation_id)
        .await
        .map_err(|e| RefundError::PgUnavailable(format!("recording the cancel: {e}")))?;
    Ok(())
}

/// Gives back what a refunded order held and marks it REFUNDED; the points
/// refunded, or `None` when it already was.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn complete_refund(
    app: &App,
    order_id: &OrderId,
    correlation_id: &str,
) -> Result<Option<Money>, RefundError> {
    retry(order_id.as_str(), |_| attempt(app, order_id, correlation_id)).await
}

async fn attempt(app: &App, order_id: &OrderId, correlation_id: &str) -> Result<Option<Money>, Step<RefundError>> {
    let Some(order) = app.store.orders().get(order_id).await? else {
        return Err(Step::Fail(RefundError::NoOrder(order_id.clone())));
    };
    let now = app.clock.now();
    let (refunded, events) =
        order.execute(&OrderCommand::CompleteRefund, now).map_err(|e| Step::Fail(RefundError::from(e)))?;
    let Some(OrderEventKind::OrderRefunded { points_refunded, .. }) = events.first().map(|e| e.kind.clone()) else {
        return Ok(None);
    };
    let mut tx = Tx::new();
    tx.extend(release_stock(app, &order)?);
    tx.extend(give_back_points(app, &order, LedgerReason::Refund, points_refunded, now).await?);
    tx.push(app.store.orders().op_update(order.version, &refunded)?);
    tx.extend(super::outbox(app, Some(&order), &events, correlation_id)?);
    app.store.transact(tx).await?;
    app.count("Refunds", 1);
    Ok(Some(points_refunded))
}
