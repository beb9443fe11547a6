//! The `compensation` consumer: cancels orphaned payments at the PG,
//! carries out refunds (PG cancel, then stock and points back → REFUNDED +
//! `OrderRefunded`) and parts of them (a PG cancel of the part's cash under
//! the refund's own key, then its units and points back →
//! `OrderPartiallyRefunded`, or `RefundFailed` when the PG refuses), and closes virtual accounts of orders cancelled before
//! the deposit or expired past the account's due date. The work is in [`crate::usecases::refund`].

use super::{Consumer, ConsumerError, Done};
use crate::App;
use crate::usecases::refund::{
    RefundError, cancel_at_pg, cancel_part_at_pg, complete_refund, complete_refund_part, fail_refund,
};
use crate::usecases::refund_account;
use shop_domain::order::RefundStatus;
use shop_domain::{EventDetail, Money, OrderEvent, OrderEventKind, PaymentKey};

pub struct CompensationConsumer;

impl From<RefundError> for ConsumerError {
    fn from(e: RefundError) -> Self {
        match e {
            RefundError::PgRefused { .. } | RefundError::NoOrder(_) | RefundError::Refused(_) => {
                ConsumerError::Permanent(e.to_string())
            }
            RefundError::PgUnavailable(_) | RefundError::Contention(_) | RefundError::Unexpected(_) => {
                ConsumerError::Retryable(format!("{e:#}"))
            }
        }
    }
}

#[async_trait::async_trait]
impl Consumer for CompensationConsumer {
    fn name(&self) -> &'static str {
        super::COMPENSATION
    }

    async fn handle(&self, app: &App, event: &OrderEvent, detail: &EventDetail) -> Result<Done, ConsumerError> {
        let correlation_id = &detail.correlation_id;
        match &event.kind {
            OrderEventKind::PaymentOrphaned { payment_key, .. } => {
                cancel_at_pg(app, payment_key, "order could no longer take the payment", correlation_id).await?;
                app.count("CompensationsOrphanCancelled", 1);
                Ok(Done::Applied(format!("payment {payment_key} cancelled at the PG")))
            }
            OrderEventKind::OrderCancelled { payment_key: Some(key), .. } => {
                cancel_at_pg(app, key, "order cancelled before the deposit", correlation_id).await?;
                Ok(Done::Applied(format!("virtual account {key} closed")))
            }
            OrderEventKind::OrderExpired { payment_key: Some(key), .. } => {
                cancel_at_pg(app, key, "virtual account not paid by its due date", correlation_id).await?;
                Ok(Done::Applied(format!("virtual account {key} closed")))
            }
            OrderEventKind::RefundRequested { payment_key, refund_number: None, .. } => {
                if let Some(key) = payment_key {
                    cancel_at_pg(app, key, "refund requested by the customer", correlation_id).await?;
                }
                match complete_refund(app, &event.order_id, correlation_id).await? {
                    Some(points) => Ok(Done::Applied(format!("refunded; {} points back", points.won()))),
                    None => Ok(Done::Skipped("already refunded".into())),
                }
            }
            OrderEventKind::RefundRequested { payment_key, refund_number: Some(n), amount, .. } => {
                let reason = "the rest of the order refunded at the customer's request";
                if let Some(refused) =
                    cancel_part(app, event, detail, payment_key.as_ref(), *n, *amount, reason).await?
                {
                    return Ok(refused);
                }
                match complete_refund(app, &event.order_id, correlation_id).await? {
                    Some(points) => {
                        Ok(Done::Applied(format!("refund {n} (the rest) done; {} points back", points.won())))
                    }
                    None => Ok(Done::Skipped(format!("refund {n} already done"))),
                }
            }
            OrderEventKind::PartialRefundRequested { payment_key, refund_number: n, cash, .. } => {
                let reason = "part of the order refunded at the customer's request";
                if let Some(refused) = cancel_part(app, event, detail, payment_key.as_ref(), *n, *cash, reason).await? {
                    return Ok(refused);
                }
                match complete_refund_part(app, &event.order_id, *n, correlation_id).await? {
                    Some(points) => Ok(Done::Applied(format!("refund {n} done; {} points back", points.won()))),
                    None => Ok(Done::Skipped(format!("refund {n} already settled"))),
                }
            }
            OrderEventKind::OrderPlaced { .. }
            | OrderEventKind::PaymentConfirmationStarted { .. }
            | OrderEventKind::VirtualAccountIssued { .. }
            | OrderEventKind::OrderPaid { .. }
            | OrderEventKind::PaymentFailed { .. }
            | OrderEventKind::OrderExpired { payment_key: None, .. }
            | OrderEventKind::OrderCancelled { payment_key: None, .. }
            | OrderEventKind::OrderRefunded { .. }
            | OrderEventKind::OrderPartiallyRefunded { .. }
            | OrderEventKind::RefundFailed { .. } => Ok(Done::Skipped("nothing to compensate".into())),
        }
    }
}

/// The PG cancel of a numbered refund's cash. A refusal is the refund's
/// outcome, not a failure of the consumer: the refund is recorded FAILED
/// with the PG's reason (`Some`, what to report), and the shopper may ask again.
async fn cancel_part(
    app: &App,
    event: &OrderEvent,
    detail: &EventDetail,
    key: Option<&PaymentKey>,
    number: u32,
    cash: Money,
    reason: &str,
) -> Result<Option<Done>, ConsumerError> {
    // A redelivery after the refund was settled (DONE, or FAILED when the
    // PG refused it) asks the PG nothing: a cancel sent again after a
    // refusal could be carried out, and give back what the order holds.
    let order = app.store.orders().get(&event.order_id).await.map_err(|e| ConsumerError::Retryable(e.to_string()))?;
    let refund = order.as_ref().and_then(|o| o.refund(number));
    let status = refund.map(|r| r.status);
    if status != Some(RefundStatus::Requested) {
        return Ok(Some(Done::Skipped(format!("refund {number} already settled ({status:?})"))));
    }
    let Some(key) = key else { return Ok(None) };
    // The request's correlation id, as every other event of the refund carries.
    let correlation_id = detail.correlation_id.as_str();
    // A paid virtual account's cash goes to the account the shopper gave,
    // kept sealed until now. Not opening it (KMS unreachable) is retried; an
    // account no longer kept fails the refund, and the shopper asks again.
    let outcome = match refund.is_some_and(|r| r.to_account) {
        false => cancel_part_at_pg(app, key, number, cash, None, reason, correlation_id).await,
        true => match refund_account::open(app, &event.order_id, number).await {
            Ok(Some(account)) => cancel_part_at_pg(app, key, number, cash, Some(account), reason, correlation_id).await,
            Ok(None) => Err(RefundError::PgRefused {
                code: "REFUND_ACCOUNT_MISSING".into(),
                message: "the refund account is no longer kept; ask for the refund again with the account".into(),
            }),
            Err(e) => return Err(ConsumerError::Retryable(format!("opening the refund account: {e}"))),
        },
    };
    match outcome {
        Ok(()) => Ok(None),
        Err(RefundError::PgRefused { code, message }) => {
            app.count("RefundsRefused", 1);
            let changed = fail_refund(app, &event.order_id, number, &code, &message, correlation_id).await?;
            Ok(Some(if changed {
                Done::Applied(format!("refund {number} refused by the PG: {code}: {message}"))
            } else {
                Done::Skipped(format!("refund {number} already settled"))
            }))
        }
        Err(e) => Err(e.into()),
    }
}
