//! The use cases: each takes domain values and returns a domain result or
//! its own error enum (expected failures, apart from `Unexpected`). None
//! knows HTTP, SQS or Lambda; `crate::http` and `crate::events` translate.
//!
//! Each reads, lets the domain decide (`Order::execute`), and writes one
//! conditional DynamoDB transaction, through the one conflict-retry loop
//! ([`retry`]).

pub mod audit;
pub mod campaigns;
pub mod cancel;
pub mod confirm_payment;
pub mod expire;
pub mod live;
pub mod pay_with_points;
pub mod pg_notification;
pub mod place_order;
pub mod points;
pub mod reconcile;
pub mod refund;
pub mod refund_account;
pub mod request_refund;
pub mod retry;
pub mod sales;
pub mod settle;
pub mod stock;
pub mod timeline;

use crate::App;
use shop_domain::{Order, OrderEvent, OrderId, UserId};
use shop_store::StoreError;
use shop_store::tx::TxOp;

/// The outbox items of `events`, each carrying the correlation id and the
/// current trace (`traceparent`): the one way a use case emits events, so
/// every consumer continues the trace of the request that caused them.
/// `before` is the order the events apply to (`None` for a placement):
/// each item records the status it moved the order from and to, which the
/// saga statistics count once it is published.
pub fn outbox(
    app: &App,
    before: Option<&Order>,
    events: &[OrderEvent],
    correlation_id: &str,
) -> anyhow::Result<Vec<TxOp>> {
    let traceparent = crate::obs::trace::current_traceparent();
    let placed_at = before.map(|o| o.created_at).or_else(|| events.first().map(|e| e.occurred_at));
    let mut status = before.map(|o| o.status);
    let mut ops = Vec::with_capacity(events.len());
    for e in events {
        let at = shop_store::outbox::Before { status, placed_at: placed_at.unwrap_or(e.occurred_at) };
        ops.push(app.store.outbox().op_put(e, correlation_id, traceparent.as_deref(), &at)?);
        status = e.kind.status_after(status);
    }
    Ok(ops)
}

/// The order `id` when it exists and is `user`'s; `None` otherwise — a
/// caller is never told whether somebody else's order exists.
pub async fn own_order(app: &App, user: &UserId, id: &OrderId) -> Result<Option<Order>, StoreError> {
    Ok(app.store.orders().get(id).await?.filter(|o| &o.user_id == user))
}
