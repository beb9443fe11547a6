//! Confirming a card or virtual-account payment with the PG.
//!
//! 1. Everything that needs no PG is checked first: owner, amount, status.
//! 2. The key is looked up at the PG: only a payment the PG holds for this
//!    order and amount may be attempted (the key is not a secret; see
//!    docs/payments.md, "Threat model"). Nothing is written otherwise.
//! 3. The attempt is recorded (order and payment CONFIRMING) before the PG
//!    is called, so a crash after the PG said yes leaves a record the
//!    reconciler finds.
//! 4. The PG's answer goes through the settlement path ([`apply_pg_outcome_from`], from the records step 3 wrote: no re-read).

use crate::App;
use crate::ports::{PgError, PgPayment};
use crate::usecases::own_order;
use crate::usecases::retry::{Step, retry};
use crate::usecases::settle::{Given, PgOutcome, Settled, apply_pg_outcome_from, outcome_of};
use shop_domain::{
    Money, Order, OrderCommand, OrderError, OrderId, OrderStatus, Payment, PaymentKey, PaymentMethod, UserId,
};
use shop_store::{StoreError, Tx, TxItem};
use std::sync::atomic::{AtomicBool, Ordering};

/// A confirm request, parsed at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    pub order_id: OrderId,
    pub payment_key: PaymentKey,
    pub amount: Money,
}

/// Where the confirm left the order.
#[derive(Debug, Clone)]
pub enum Confirmed {
    /// PAID or AWAITING_DEPOSIT (or the state an earlier confirm of this key
    /// reached); `pg` is the PG's answer when this call got one.
    Settled { settled: Box<Settled>, pg: Option<Box<PgPayment>> },
    /// The PG's answer is not known yet: the order stays CONFIRMING and the
    /// webhook or the reconciler settles it.
    Pending { order_id: OrderId },
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("no such order")]
    NotFound,
    #[error("the PG holds no payment with this key for this order and amount")]
    KeyMismatch,
    #[error("the payment key could not be verified with the PG: {0}")]
    PgUnavailable(PgError),
    #[error(transparent)]
    Refused(#[from] OrderError),
    #[error("this payment key was already used for a payment")]
    KeyUsed,
    #[error("declined by the PG: {code}: {message}")]
    Declined { code: String, message: String, order_status: OrderStatus },
    #[error("the order could no longer take the payment; it will be cancelled")]
    Orphaned { order_status: OrderStatus },
    #[error(transparent)]
    Contention(crate::usecases::retry::Contended),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::usecases::retry::use_case_error!(ConfirmError);

/// How the attempt's first step ended.
enum Started {
    /// This call recorded the attempt (the order CONFIRMING and the
    /// payment, as written): ask the PG.
    Recorded(Box<(Order, Payment)>),
    /// An earlier confirm of the same key already got this far.
    Repeat(Confirmed),
}

#[tracing::instrument(skip_all, fields(order_id = %cmd.order_id))]
pub async fn confirm_payment(
    app: &App,
    user: &UserId,
    cmd: &Confirm,
    correlation_id: &str,
) -> Result<Confirmed, ConfirmError> {
    let verified = AtomicBool::new(false);
    let started = retry(cmd.payment_key.as_str(), |_| start(app, user, cmd, correlation_id, &verified)).await?;
    let written = match started {
        Started::Repeat(answer) => return Ok(answer),
        Started::Recorded(written) => written,
    };

    let key = &cmd.payment_key;
    let result = app.pg().confirm(key, &cmd.order_id, cmd.amount).await;
    let outcome = outcome_of(app, key, result).await;
    if let PgOutcome::Unknown(reason) = &outcome {
        tracing::warn!(%reason, "PG outcome unknown; the reconciler will resolve it");
        app.count("PaymentsUnknown", 1);
    }
    let given = Given { order: Some(&written.0), payment: Some(&written.1) };
    let settled = match apply_pg_outcome_from(app, key, &outcome, false, correlation_id, given).await {
        Ok(s) => s,
        // The CONFIRMING record is there: the reconciler finishes the job.
        Err(e) => {
            tracing::error!(error = %e, "could not record the PG's answer");
            return Ok(Confirmed::Pending { order_id: cmd.order_id.clone() });
        }
    };
    if settled.orphaned {
        return Err(ConfirmError::Orphaned { order_status: settled.order.status });
    }
    match (outcome, settled.order.status) {
        (PgOutcome::Declined { code, message }, status) => {
            Err(ConfirmError::Declined { code, message, order_status: status })
        }
        (PgOutcome::Unknown(_), _) | (_, OrderStatus::Confirming) => {
            Ok(Confirmed::Pending { order_id: settled.order.id.clone() })
        }
        (PgOutcome::Payment(pg), _) => Ok(Confirmed::Settled { settled: Box::new(settled), pg: Some(Box::new(pg)) }),
    }
}

/// Step 1-3: checks, the PG lookup (once), and the CONFIRMING record.
async fn start(
    app: &App,
    user: &UserId,
    cmd: &Confirm,
    correlation_id: &str,
    verified: &AtomicBool,
) -> Result<Started, Step<ConfirmError>> {
    let key = &cmd.payment_key;
    let Some(order) = own_order(app, user, &cmd.order_id).await? else {
        return Err(Step::Fail(ConfirmError::NotFound));
    };
    if order.payment_key.as_ref() == Some(key) {
        match order.status {
            // A repeat of a confirm that already settled: the same answer.
            OrderStatus::Paid
            | OrderStatus::PartiallyRefunded
            | OrderStatus::AwaitingDeposit
            | OrderStatus::RefundPending
            | OrderStatus::Refunded => {
                let payment = app.store.payments().get(key).await?.ok_or_else(|| {
                    Step::Fail(ConfirmError::Unexpected(anyhow::anyhow!("order {} has no payment {key}", order.id)))
                })?;
                let settled = Box::new(Settled { order, payment, orphaned: false });
                return Ok(Started::Repeat(Confirmed::Settled { settled, pg: None }));
            }
            OrderStatus::Confirming => return Ok(Started::Repeat(Confirmed::Pending { order_id: order.id })),
            OrderStatus::PendingPayment | OrderStatus::Expired | OrderStatus::Cancelled => {}
        }
    }
    // Before anything else about the order: a tampered amount is refused
    // whatever state the order is in, and the PG never hears of it.
    if cmd.amount != order.amount_due {
        let mismatch = OrderError::AmountMismatch { expected: order.amount_due, got: cmd.amount };
        return Err(Step::Fail(mismatch.into()));
    }
    let now = app.clock.now();
    let start =
        OrderCommand::StartPayment { payment_key: key.clone(), method: PaymentMethod::Card, amount: cmd.amount };
    let (confirming, events) = order.execute(&start, now).map_err(|e| Step::Fail(e.into()))?;
    // Once per request: a retry after a lost race need not ask again.
    if !verified.load(Ordering::Relaxed) {
        verify_key(app, key, &order).await.map_err(Step::Fail)?;
        verified.store(true, Ordering::Relaxed);
    }
    let payment = Payment::started(key.clone(), order.id.clone(), user.clone(), cmd.amount, PaymentMethod::Card, now);
    let mut tx = Tx::new();
    tx.push(app.store.orders().op_update(order.version, &confirming)?);
    tx.extend(super::outbox(app, Some(&order), &events, correlation_id)?);
    tx.push(app.store.payments().op_create(&payment)?);
    match app.store.transact(tx).await {
        Ok(()) => Ok(Started::Recorded(Box::new((confirming, payment)))),
        // The key has a payment record: the PG said it is this order's, and
        // it was attempted before (declined, or given up on).
        Err(StoreError::Conflict { item: TxItem::Payment(_), .. }) => Err(Step::Fail(ConfirmError::KeyUsed)),
        Err(e) => Err(e.into()),
    }
}

/// Asks the PG whose `key` is before anything is recorded against it: the
/// key travels in the shopper's redirect URL, so anybody may send it. Only a
/// payment the PG holds for this order and this amount may be attempted;
/// anything else is refused with nothing written, so no other order's key
/// is ever marked used.
async fn verify_key(app: &App, key: &PaymentKey, order: &Order) -> Result<(), ConfirmError> {
    match app.pg().payment(key).await {
        Ok(p) if &p.payment_key == key && p.order_id == order.id && p.total_amount == order.amount_due => Ok(()),
        Ok(p) => {
            tracing::warn!(pg_order = %p.order_id, pg_amount = p.total_amount.won(), "confirm with a key of another order or amount");
            app.count("PaymentKeyMismatch", 1);
            Err(ConfirmError::KeyMismatch)
        }
        Err(PgError::NotFound) => Err(ConfirmError::KeyMismatch),
        Err(e @ (PgError::Unknown(_) | PgError::Declined { .. } | PgError::AlreadyProcessed)) => {
            tracing::warn!(error = %e, "could not verify the payment key with the PG");
            Err(ConfirmError::PgUnavailable(e))
        }
    }
}
