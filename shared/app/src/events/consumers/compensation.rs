//! The `compensation` consumer: cancels orphaned payments at the PG,
//! carries out refunds (PG cancel, then stock and points back → REFUNDED +
//! `OrderRefunded`), and closes virtual accounts of orders cancelled before
//! the deposit or expired past the account's due date. The work is in [`crate::usecases::refund`].

use super::{Consumer, ConsumerError, Done};
use crate::App;
use crate::usecases::refund::{RefundError, cancel_at_pg, complete_refund};
use shop_domain::{EventDetail, OrderEvent, OrderEventKind};

pub struct CompensationConsumer;

impl From<RefundError> for ConsumerError {
    fn from(e: RefundError) -> Self {
        match e {
            RefundError::PgRefused(_) | RefundError::NoOrder(_) | RefundError::Refused(_) => {
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
            OrderEventKind::RefundRequested { payment_key, .. } => {
                if let Some(key) = payment_key {
                    cancel_at_pg(app, key, "refund requested by the customer", correlation_id).await?;
                }
                match complete_refund(app, &event.order_id, correlation_id).await? {
                    Some(points) => Ok(Done::Applied(format!("refunded; {} points back", points.won()))),
                    None => Ok(Done::Skipped("already refunded".into())),
                }
            }
            OrderEventKind::OrderPlaced { .. }
            | OrderEventKind::PaymentConfirmationStarted { .. }
            | OrderEventKind::VirtualAccountIssued { .. }
            | OrderEventKind::OrderPaid { .. }
            | OrderEventKind::PaymentFailed { .. }
            | OrderEventKind::OrderExpired { payment_key: None, .. }
            | OrderEventKind::OrderCancelled { payment_key: None, .. }
            | OrderEventKind::OrderRefunded { .. } => Ok(Done::Skipped("nothing to compensate".into())),
        }
    }
}
