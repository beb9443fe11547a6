//! Compensation's use cases: cancelling a payment at the PG (an orphaned
//! capture, a virtual account of a cancelled order, a refund, a numbered
//! part of one) and completing a refund (stock and points back, the order
//! REFUNDED with `OrderRefunded`, or a part DONE with
//! `OrderPartiallyRefunded`, in one transaction). All are idempotent: a
//! payment already CANCELED is not cancelled again, a numbered refund's PG
//! call carries its own Idempotency-Key, and a refund already done is left
//! alone.

use crate::App;
use crate::ports::{PgCancel, PgError, PgStatus};
use crate::usecases::points::give_back_points;
use crate::usecases::retry::{Step, retry};
use crate::usecases::settle::{PgOutcome, apply_pg_outcome};
use crate::usecases::stock::release_units;
use shop_domain::order::RefundLine;
use shop_domain::points::LedgerReason;
use shop_domain::{Money, OrderCommand, OrderError, OrderEventKind, OrderId, PaymentKey, PaymentStatus, RefundAccount};
use shop_store::Tx;

#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    /// The PG will not do it (not cancelable, no such payment): for a whole
    /// refund an operator's case, for a numbered one the refund fails.
    #[error("the PG refused the cancel: {code}: {message}")]
    PgRefused { code: String, message: String },
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

/// Cancels what remains of a payment at the PG and records the PG's answer
/// through the settlement path.
#[tracing::instrument(skip_all, fields(payment_key = %key))]
pub async fn cancel_at_pg(app: &App, key: &PaymentKey, reason: &str, correlation_id: &str) -> Result<(), RefundError> {
    if let Some(p) = app.store.payments().get(key).await?
        && p.status == PaymentStatus::Canceled
    {
        return Ok(());
    }
    let pg = match app.pg().cancel(key, &PgCancel::whole(reason)).await {
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
        Err(e) => return Err(refusal(key, e)),
    };
    record(app, key, PgOutcome::Payment(pg), correlation_id).await
}

/// Cancels `cash` of a payment at the PG for the order's refund `number`
/// (its own Idempotency-Key, so a redelivery cancels once), to the refund
/// account `account` for a paid virtual account. Nothing to do for a
/// refund with no cash (points only).
#[tracing::instrument(skip_all, fields(payment_key = %key, refund = number))]
pub async fn cancel_part_at_pg(
    app: &App,
    key: &PaymentKey,
    number: u32,
    cash: Money,
    account: Option<RefundAccount>,
    reason: &str,
    correlation_id: &str,
) -> Result<(), RefundError> {
    if cash.is_zero() {
        return Ok(());
    }
    let cancel = PgCancel {
        reason: reason.to_owned(),
        amount: Some(cash),
        refund_number: Some(number),
        refund_account: account,
    };
    let pg = match app.pg().cancel(key, &cancel).await {
        Ok(p) => p,
        // The whole payment was cancelled already (at the PG's console, or
        // by a whole refund racing this one): the cash is back with the
        // shopper, so this part is done. Anything else the PG says stands.
        Err(PgError::Declined { code, message }) if code == "ALREADY_CANCELED_PAYMENT" => {
            match app.pg().payment(key).await {
                Ok(p) if p.status == PgStatus::Canceled => p,
                Ok(_) => return Err(RefundError::PgRefused { code, message }),
                Err(e) => {
                    return Err(RefundError::PgUnavailable(format!("lookup after ALREADY_CANCELED_PAYMENT: {e}")));
                }
            }
        }
        Err(e) => return Err(refusal(key, e)),
    };
    record(app, key, PgOutcome::Payment(pg), correlation_id).await
}

fn refusal(key: &PaymentKey, e: PgError) -> RefundError {
    match e {
        PgError::Declined { code, message } => RefundError::PgRefused { code, message },
        PgError::NotFound => {
            RefundError::PgRefused { code: "NOT_FOUND_PAYMENT".into(), message: format!("the PG has no payment {key}") }
        }
        e @ (PgError::Unknown(_) | PgError::AlreadyProcessed) => RefundError::PgUnavailable(e.to_string()),
    }
}

async fn record(app: &App, key: &PaymentKey, outcome: PgOutcome, correlation_id: &str) -> Result<(), RefundError> {
    apply_pg_outcome(app, key, &outcome, false, correlation_id)
        .await
        .map_err(|e| RefundError::PgUnavailable(format!("recording the cancel: {e}")))?;
    Ok(())
}

/// Gives back what a refunded order held (or, after parts, the rest) and
/// marks it REFUNDED; the points refunded, or `None` when it already was.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn complete_refund(
    app: &App,
    order_id: &OrderId,
    correlation_id: &str,
) -> Result<Option<Money>, RefundError> {
    retry(order_id.as_str(), |_| {
        finish(app, order_id, &OrderCommand::CompleteRefund, correlation_id, |order, kind| match kind {
            OrderEventKind::OrderRefunded { points_refunded, refund_number, .. } => {
                // The rest after parts returns the units it took; a whole
                // refund at once, every line.
                let lines = match refund_number.and_then(|n| order.refund(n)) {
                    Some(r) => r.lines.clone(),
                    None => order.lines.iter().map(RefundLine::whole).collect(),
                };
                Some((lines, *points_refunded))
            }
            _ => None,
        })
    })
    .await
    .inspect(|done| {
        if done.is_some() {
            app.count("Refunds", 1);
        }
    })
}

/// Gives back what the order's refund `number` took (its units and points)
/// and marks it DONE; the points given back, or `None` when it already was.
#[tracing::instrument(skip_all, fields(order_id = %order_id, refund = number))]
pub async fn complete_refund_part(
    app: &App,
    order_id: &OrderId,
    number: u32,
    correlation_id: &str,
) -> Result<Option<Money>, RefundError> {
    let cmd = OrderCommand::CompleteRefundPart { number };
    retry(order_id.as_str(), |_| {
        finish(app, order_id, &cmd, correlation_id, |_, kind| match kind {
            OrderEventKind::OrderPartiallyRefunded { lines, points, .. } => Some((lines.clone(), *points)),
            _ => None,
        })
    })
    .await
    .inspect(|done| {
        if done.is_some() {
            app.count("PartialRefunds", 1);
        }
    })
}

/// Records the PG's refusal of the order's refund `number`: what it would
/// have given back is held again; `false` when it was already settled.
#[tracing::instrument(skip_all, fields(order_id = %order_id, refund = number))]
pub async fn fail_refund(
    app: &App,
    order_id: &OrderId,
    number: u32,
    code: &str,
    message: &str,
    correlation_id: &str,
) -> Result<bool, RefundError> {
    let cmd = OrderCommand::FailRefund { number, code: code.to_owned(), message: message.to_owned() };
    retry(order_id.as_str(), |_| async {
        let done = finish(app, order_id, &cmd, correlation_id, |_, _| Some((vec![], Money::ZERO))).await?;
        Ok(done.is_some())
    })
    .await
}

/// The numbered refund an event settles.
fn settled_refund(kind: &OrderEventKind) -> Option<u32> {
    match kind {
        OrderEventKind::OrderRefunded { refund_number, .. } => *refund_number,
        OrderEventKind::OrderPartiallyRefunded { refund_number, .. }
        | OrderEventKind::RefundFailed { refund_number, .. } => Some(*refund_number),
        OrderEventKind::OrderPlaced { .. }
        | OrderEventKind::PaymentConfirmationStarted { .. }
        | OrderEventKind::VirtualAccountIssued { .. }
        | OrderEventKind::OrderPaid { .. }
        | OrderEventKind::PaymentFailed { .. }
        | OrderEventKind::PaymentOrphaned { .. }
        | OrderEventKind::OrderExpired { .. }
        | OrderEventKind::OrderCancelled { .. }
        | OrderEventKind::RefundRequested { .. }
        | OrderEventKind::PartialRefundRequested { .. } => None,
    }
}

/// One attempt at a refund's last step: `cmd` on the order, and in the same
/// transaction the units and points its event gives back (`give`, from the
/// order before and the event). `None` when the command changed nothing.
async fn finish(
    app: &App,
    order_id: &OrderId,
    cmd: &OrderCommand,
    correlation_id: &str,
    give: impl Fn(&shop_domain::Order, &OrderEventKind) -> Option<(Vec<RefundLine>, Money)>,
) -> Result<Option<Money>, Step<RefundError>> {
    let Some(order) = app.store.orders().get(order_id).await? else {
        return Err(Step::Fail(RefundError::NoOrder(order_id.clone())));
    };
    let now = app.clock.now();
    let (after, events) = order.execute(cmd, now).map_err(|e| Step::Fail(RefundError::from(e)))?;
    let Some((lines, points)) = events.first().and_then(|e| give(&order, &e.kind)) else {
        return Ok(None);
    };
    let mut tx = Tx::new();
    tx.extend(release_units(app, &lines)?);
    tx.extend(give_back_points(app, &order, LedgerReason::Refund, points, now).await?);
    // The PG has answered: the refund's account is kept no longer.
    if let Some(n) = events.first().and_then(|e| settled_refund(&e.kind))
        && order.refund(n).is_some_and(|r| r.to_account)
    {
        tx.push(app.store.refund_accounts().op_delete(order_id, n)?);
    }
    tx.push(app.store.orders().op_update(order.version, &after)?);
    tx.extend(super::outbox(app, Some(&order), &events, correlation_id)?);
    app.store.transact(tx).await?;
    Ok(Some(points))
}
