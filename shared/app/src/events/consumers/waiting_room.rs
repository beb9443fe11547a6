//! The `waiting-room` consumer: a sale's order ended — paid, expired,
//! cancelled, or its virtual account issued (the deposit may take days;
//! the stock stays reserved by the order, not by the slot) — so its
//! shopper's slot is freed, once, and the next waiting ticket admitted
//! (docs/adr/0027-the-waiting-room.md). Its rule takes only events that
//! carry a `saleId`.
//!
//! Order-tolerant by the ticket's state: a later event of the same order
//! finds the slot freed already (`Released::Already`), an event of an
//! order the ticket does not hold changes nothing. The queue failing
//! never touches the order: this runs after the order's own write.

use super::{Consumer, ConsumerError, Done};
use crate::App;
use crate::usecases::sales::{Released, admit_step, release_for_order};
use shop_domain::{EventDetail, OrderEvent, OrderEventKind as K};

pub struct WaitingRoomConsumer;

#[async_trait::async_trait]
impl Consumer for WaitingRoomConsumer {
    fn name(&self) -> &'static str {
        super::WAITING_ROOM
    }

    async fn handle(&self, app: &App, event: &OrderEvent, _: &EventDetail) -> Result<Done, ConsumerError> {
        let (sale, user) = match &event.kind {
            K::OrderPaid { sale_id: Some(s), user_id, .. }
            | K::OrderExpired { sale_id: Some(s), user_id, .. }
            | K::OrderCancelled { sale_id: Some(s), user_id, .. }
            | K::VirtualAccountIssued { sale_id: Some(s), user_id, .. } => (s, user_id),
            K::OrderPaid { sale_id: None, .. }
            | K::OrderExpired { sale_id: None, .. }
            | K::OrderCancelled { sale_id: None, .. }
            | K::VirtualAccountIssued { sale_id: None, .. }
            | K::OrderPlaced { .. }
            | K::PaymentConfirmationStarted { .. }
            | K::PaymentFailed { .. }
            | K::PaymentOrphaned { .. }
            | K::RefundRequested { .. }
            | K::OrderRefunded { .. }
            | K::PartialRefundRequested { .. }
            | K::OrderPartiallyRefunded { .. }
            | K::RefundFailed { .. } => return Ok(Done::Skipped("not the end of a sale's order".into())),
        };
        let released = release_for_order(app, sale, user, &event.order_id).await.map_err(slot_error)?;
        match released {
            Released::Freed => {
                app.count("SlotsFreed", 1);
                // The freed slot goes to the next in line now, at the rate
                // in force; the admitter's timer does the rest.
                let admitted = admit_step(app, sale, None).await.map_err(slot_error)?;
                let n = admitted.map_or(0, |a| a.tickets.len());
                Ok(Done::Applied(format!("slot of sale {sale} freed; {n} admitted")))
            }
            Released::Already => Ok(Done::Skipped(format!("slot of sale {sale} already freed"))),
            Released::NotHeld => Ok(Done::Skipped(format!("the ticket in sale {sale} holds another order"))),
        }
    }
}

fn slot_error(e: crate::usecases::sales::SlotError) -> ConsumerError {
    ConsumerError::Retryable(e.to_string())
}
