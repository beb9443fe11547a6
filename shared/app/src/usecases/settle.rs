//! Settlement: the one code path that turns anything the PG says into state
//! ([`apply_pg_outcome`]) — used by confirm, the PG's notifications, the
//! reconciler and compensation alike, so they can race in any order and
//! still produce one PAID order and one `OrderPaid` event.

use crate::App;
use crate::ports::{PgError, PgPayment, PgStatus};
use crate::usecases::retry::{Step, retry};
use shop_domain::{
    Order, OrderCommand, OrderEventKind, OrderId, OrderStatus, Payment, PaymentKey, PaymentStatus, Timestamp,
};
use shop_store::Tx;

/// What the PG said about a payment, as far as state is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgOutcome {
    /// The PG's record of the payment.
    Payment(PgPayment),
    /// A definite refusal: the payment did not and will not happen.
    Declined { code: String, message: String },
    /// Nobody knows yet (timeout, 5xx, lost response).
    Unknown(String),
}

/// Where applying an outcome left things.
#[derive(Debug, Clone)]
pub struct Settled {
    pub order: Order,
    pub payment: Payment,
    /// The PG took money the order could not take: compensation cancels it.
    pub orphaned: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error("no payment {0} and no order to attach it to")]
    UnknownPayment(PaymentKey),
    #[error("the PG reports payment {payment} for order {pg_order}, ours is for {our_order}")]
    OrderMismatch { payment: PaymentKey, pg_order: OrderId, our_order: OrderId },
    /// READY / IN_PROGRESS for a key we hold no record of: nobody has
    /// confirmed it, so it proves nothing and is not recorded (a record would
    /// mark the key used and block its owner's confirm).
    #[error("the PG reports payment {0} as {1}, which is not an outcome")]
    NotFinal(PaymentKey, &'static str),
    #[error(transparent)]
    Contention(crate::usecases::retry::Contended),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::usecases::retry::use_case_error!(SettleError);

/// Whose record a payment is read from.
enum Known<'a> {
    /// Ours, written when the attempt started.
    Ours(Payment),
    /// None of ours (e.g. our CONFIRMING write was lost with the process):
    /// the PG's record is adopted — but only an outcome.
    Adopt(&'a PgPayment),
}

/// Applies what the PG said about `payment_key` to our payment record and the
/// order, in one transaction: payment status, order transition and its event.
/// `final_say` (the reconciler, past its threshold) turns a payment the PG
/// still shows as READY/IN_PROGRESS into a failed one.
#[tracing::instrument(skip_all, fields(payment_key = %payment_key, order_id))]
pub async fn apply_pg_outcome(
    app: &App,
    payment_key: &PaymentKey,
    outcome: &PgOutcome,
    final_say: bool,
    correlation_id: &str,
) -> Result<Settled, SettleError> {
    apply_pg_outcome_from(app, payment_key, outcome, final_say, correlation_id, Given::default()).await
}

/// Records a caller of [`apply_pg_outcome_from`] already holds: confirm's
/// CONFIRMING order and payment, which it has just written; the payment a
/// PG notification was checked against. The first attempt does not read
/// them again (ADR 0023). The writes stay conditional on their versions,
/// so if either moved meanwhile the attempt conflicts and the retry reads
/// them as any other caller does.
#[derive(Debug, Clone, Copy, Default)]
pub struct Given<'a> {
    pub order: Option<&'a Order>,
    pub payment: Option<&'a Payment>,
}

/// [`apply_pg_outcome`] by a caller that holds the order or the payment
/// already ([`Given`]).
pub async fn apply_pg_outcome_from(
    app: &App,
    payment_key: &PaymentKey,
    outcome: &PgOutcome,
    final_say: bool,
    correlation_id: &str,
    given: Given<'_>,
) -> Result<Settled, SettleError> {
    retry(payment_key.as_str(), |n| {
        let given = if n == 1 { given } else { Given::default() };
        attempt(app, payment_key, outcome, final_say, correlation_id, given)
    })
    .await
}

async fn attempt(
    app: &App,
    payment_key: &PaymentKey,
    outcome: &PgOutcome,
    final_say: bool,
    correlation_id: &str,
    given: Given<'_>,
) -> Result<Settled, Step<SettleError>> {
    let now = app.clock.now();
    let ours = match given.payment.filter(|p| &p.payment_key == payment_key) {
        Some(p) => Some(p.clone()),
        None => app.store.payments().get(payment_key).await?,
    };
    let known = match (ours, outcome) {
        (Some(p), _) => Known::Ours(p),
        (None, PgOutcome::Payment(pg)) => Known::Adopt(pg),
        (None, PgOutcome::Declined { .. } | PgOutcome::Unknown(_)) => {
            return Err(Step::Fail(SettleError::UnknownPayment(payment_key.clone())));
        }
    };
    let order_id = match &known {
        Known::Ours(p) => p.order_id.clone(),
        Known::Adopt(pg) => pg.order_id.clone(),
    };
    tracing::Span::current().record("order_id", order_id.as_str());
    if let (Known::Ours(p), PgOutcome::Payment(pg)) = (&known, outcome)
        && pg.order_id != p.order_id
    {
        return Err(Step::Fail(SettleError::OrderMismatch {
            payment: payment_key.clone(),
            pg_order: pg.order_id.clone(),
            our_order: p.order_id.clone(),
        }));
    }
    let order = match given.order.filter(|o| o.id == order_id) {
        Some(o) => Some(o.clone()),
        None => app.store.orders().get(&order_id).await?,
    };
    let Some(order) = order else {
        return Err(Step::Fail(SettleError::UnknownPayment(payment_key.clone())));
    };
    let (before, mut payment) = match known {
        Known::Ours(p) => (Some(p.clone()), p),
        Known::Adopt(pg) => {
            if !pg.status.is_outcome() {
                return Err(Step::Fail(SettleError::NotFinal(payment_key.clone(), pg.status.as_str())));
            }
            let p =
                Payment::started(payment_key.clone(), order_id, order.user_id.clone(), pg.total_amount, pg.method, now);
            (None, p)
        }
    };

    let deposit_due = deposit_due(outcome, now);
    let (status, command) = decide(&order, &payment, outcome, final_say, deposit_due);
    if let Some(next) = status.and_then(|s| payment.moved_to(s, now)) {
        payment = next;
    }
    // A new virtual account: first checked one reconcile interval from now
    // (or at its due date, if sooner), in case its deposit webhook is lost.
    if payment.status == PaymentStatus::WaitingForDeposit && payment.check_at.is_none() {
        payment.check_at = Some(next_deposit_check(app, now, deposit_due));
    }
    if let (PgOutcome::Declined { code, message }, PaymentStatus::Aborted) = (outcome, payment.status) {
        payment.failure_code = Some(code.clone());
        payment.failure_message = Some(message.clone());
    }
    if let PgOutcome::Payment(pg) = outcome {
        payment.method = pg.method;
        match pg.status {
            PgStatus::Canceled | PgStatus::PartialCanceled => payment.balance_amount = Some(pg.balance_amount),
            PgStatus::Ready
            | PgStatus::InProgress
            | PgStatus::WaitingForDeposit
            | PgStatus::Done
            | PgStatus::Aborted
            | PgStatus::Expired => {}
        }
    }
    let (new_order, events) = match command.as_ref().map(|c| order.execute(c, now)) {
        Some(Ok(done)) => done,
        Some(Err(e)) => {
            tracing::warn!(error = %e, status = %order.status, "PG outcome does not fit the order; payment recorded only");
            (order.clone(), vec![])
        }
        None => (order.clone(), vec![]),
    };
    let reversed = before.as_ref().is_some_and(|b| b.status == PaymentStatus::Done)
        && payment.status == PaymentStatus::WaitingForDeposit;
    if reversed {
        tracing::warn!(status = %order.status, "the PG took the deposit back (DONE → WAITING_FOR_DEPOSIT); the order stays, the reconciler watches the account");
    }
    let orphaned = events.iter().any(|e| matches!(e.kind, OrderEventKind::PaymentOrphaned { .. }));
    payment.orphaned |= orphaned;
    // Any change is a new version, conditional on the one we read.
    if let Some(b) = &before
        && b != &payment
        && b.version == payment.version
    {
        payment.version += 1;
        payment.updated_at = now;
    }

    let mut tx = Tx::new();
    match &before {
        None => {
            tx.push(app.store.payments().op_create(&payment)?);
        }
        Some(b) if b != &payment => {
            tx.push(app.store.payments().op_update(b.version, &payment)?);
        }
        Some(_) => {}
    }
    if !events.is_empty() {
        tx.push(app.store.orders().op_update(order.version, &new_order)?);
        tx.extend(super::outbox(app, Some(&order), &events, correlation_id)?);
    }
    if tx.is_empty() {
        return Ok(Settled { order: new_order, payment, orphaned: false });
    }
    app.store.transact(tx).await?;
    for e in &events {
        tracing::info!(event = e.kind.detail_type(), status = %new_order.status, "payment applied");
    }
    if orphaned {
        app.count("PaymentsOrphaned", 1);
    }
    if reversed {
        app.count("DepositsReversed", 1);
    }
    Ok(Settled { order: new_order, payment, orphaned })
}

/// The due date of the virtual account `outcome` reports, if it is one.
fn deposit_due(outcome: &PgOutcome, now: Timestamp) -> Timestamp {
    match outcome {
        PgOutcome::Payment(pg) => pg.deposit_due,
        PgOutcome::Declined { .. } | PgOutcome::Unknown(_) => None,
    }
    .unwrap_or(now.plus_secs(shop_domain::order::DEPOSIT_DUE_FALLBACK_SECS))
}

/// When the reconciler next asks the PG about a virtual account due at `due`:
/// one reconcile interval from now, or at the due date if that is sooner.
pub fn next_deposit_check(app: &App, now: Timestamp, due: Timestamp) -> Timestamp {
    now.plus_secs(app.config.reconcile_after_secs).min(due)
}

/// The payment status and order command an outcome means.
fn decide(
    order: &Order,
    payment: &Payment,
    outcome: &PgOutcome,
    final_say: bool,
    deposit_due: Timestamp,
) -> (Option<PaymentStatus>, Option<OrderCommand>) {
    let key = payment.payment_key.clone();
    let fail = |code: &str, message: &str| OrderCommand::FailPayment {
        payment_key: key.clone(),
        code: code.to_owned(),
        message: message.to_owned(),
    };
    match outcome {
        PgOutcome::Unknown(_) => (Some(PaymentStatus::Unknown), None),
        PgOutcome::Declined { code, message } => (Some(PaymentStatus::Aborted), Some(fail(code, message))),
        PgOutcome::Payment(pg) => match pg.status {
            PgStatus::Done => (
                Some(PaymentStatus::Done),
                Some(OrderCommand::ConfirmPayment { payment_key: key, method: pg.method, amount: pg.total_amount }),
            ),
            PgStatus::WaitingForDeposit => match order.status {
                // A virtual account issued for an order that can no longer be
                // paid: nothing to do to the order; compensation closes it.
                OrderStatus::Expired | OrderStatus::Cancelled => (Some(PaymentStatus::WaitingForDeposit), None),
                // Paid, and the PG took the deposit back (DONE → WAITING_FOR_DEPOSIT,
                // ADR 0031): the order stays as it is; the payment says so and
                // the reconciler watches it until the PG says DONE again.
                OrderStatus::Paid
                | OrderStatus::PartiallyRefunded
                | OrderStatus::RefundPending
                | OrderStatus::Refunded => (Some(PaymentStatus::WaitingForDeposit), None),
                OrderStatus::PendingPayment | OrderStatus::Confirming | OrderStatus::AwaitingDeposit => (
                    Some(PaymentStatus::WaitingForDeposit),
                    Some(OrderCommand::AwaitDeposit { payment_key: key, amount: pg.total_amount, due_at: deposit_due }),
                ),
            },
            PgStatus::Aborted | PgStatus::Expired => (
                Some(PaymentStatus::Aborted),
                Some(fail(&format!("PG_{}", pg.status.as_str()), "the PG ended the payment")),
            ),
            PgStatus::Canceled => {
                (Some(PaymentStatus::Canceled), Some(fail("PG_CANCELED", "the payment was cancelled at the PG")))
            }
            // A part given back: the order's refunds say which; only the
            // payment's record (and its balance) moves.
            PgStatus::PartialCanceled => (Some(PaymentStatus::PartialCanceled), None),
            PgStatus::Ready | PgStatus::InProgress if final_say => {
                (Some(PaymentStatus::Aborted), Some(fail("NOT_CONFIRMED", "the PG never confirmed the payment")))
            }
            PgStatus::Ready | PgStatus::InProgress => (None, None),
        },
    }
}

/// Turns a PG call's result into an outcome, looking the payment up when
/// the PG says it already processed it.
pub async fn outcome_of(app: &App, payment_key: &PaymentKey, result: Result<PgPayment, PgError>) -> PgOutcome {
    match result {
        Ok(p) => PgOutcome::Payment(p),
        Err(PgError::AlreadyProcessed) => match app.pg().payment(payment_key).await {
            Ok(p) => PgOutcome::Payment(p),
            Err(e) => PgOutcome::Unknown(format!("lookup after ALREADY_PROCESSED_PAYMENT: {e}")),
        },
        Err(PgError::Declined { code, message }) => PgOutcome::Declined { code, message },
        Err(PgError::NotFound) => {
            PgOutcome::Declined { code: "NOT_FOUND_PAYMENT".into(), message: "the PG has no such payment".into() }
        }
        Err(PgError::Unknown(reason)) => PgOutcome::Unknown(reason),
    }
}
