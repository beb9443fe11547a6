//! The `coupon` consumer: the coupon's state follows the order's current
//! status — paid (or partly refunded): USED; expired, cancelled, refunded
//! whole: released — so events
//! arriving twice or out of order converge on the same state.

use super::{Consumer, ConsumerError, Done};
use crate::App;
use crate::usecases::retry::{Step, retry};
use shop_domain::coupon::Transition;
use shop_domain::{EventDetail, OrderEvent, OrderId, OrderStatus};
use shop_store::Tx;

pub struct CouponConsumer;

#[async_trait::async_trait]
impl Consumer for CouponConsumer {
    fn name(&self) -> &'static str {
        super::COUPON
    }

    async fn handle(&self, app: &App, event: &OrderEvent, _: &EventDetail) -> Result<Done, ConsumerError> {
        retry(event.order_id.as_str(), |_| follow_order(app, &event.order_id)).await
    }
}

async fn follow_order(app: &App, order_id: &OrderId) -> Result<Done, Step<ConsumerError>> {
    let Some(order) = app.store.orders().get(order_id).await? else {
        return Err(Step::Fail(ConsumerError::Permanent(format!("order {order_id} does not exist"))));
    };
    let Some(coupon_id) = order.coupon_id.clone() else { return Ok(Done::Skipped("no coupon".into())) };
    let Some(coupon) = app.store.coupons().get(&coupon_id).await? else {
        return Err(Step::Fail(ConsumerError::Permanent(format!("coupon {coupon_id} does not exist"))));
    };
    let next = match order.status {
        // Part given back: the coupon stays used until the whole order is.
        OrderStatus::Paid | OrderStatus::PartiallyRefunded | OrderStatus::RefundPending => {
            match coupon.mark_used(&order.id) {
                Ok(t) => t,
                Err(e) => return Err(Step::Fail(ConsumerError::Permanent(format!("cannot use coupon: {e}")))),
            }
        }
        OrderStatus::Expired | OrderStatus::Cancelled | OrderStatus::Refunded => {
            coupon.release(&order.id, app.clock.now())
        }
        OrderStatus::PendingPayment | OrderStatus::Confirming | OrderStatus::AwaitingDeposit => Transition::Unchanged,
    };
    let Transition::Changed(next) = next else {
        return Ok(Done::Skipped(format!("coupon already {}", coupon.status.name())));
    };
    let mut tx = Tx::new();
    tx.push(app.store.coupons().op_transition(&coupon, &next)?);
    app.store.transact(tx).await?;
    Ok(Done::Applied(format!("coupon {} -> {}", coupon_id, next.status.name())))
}
