//! The use cases: each takes domain values and returns a domain result or
//! its own error enum (expected failures, apart from `Unexpected`). None
//! knows HTTP, SQS or Lambda; `crate::http` and `crate::events` translate.
//!
//! Each reads, lets the domain decide (`Order::execute`), and writes one
//! conditional DynamoDB transaction, through the one conflict-retry loop
//! ([`retry`]).

pub mod campaigns;
pub mod cancel;
pub mod confirm_payment;
pub mod expire;
pub mod pay_with_points;
pub mod pg_notification;
pub mod place_order;
pub mod points;
pub mod reconcile;
pub mod refund;
pub mod retry;
pub mod settle;
pub mod timeline;

use crate::App;
use shop_domain::{Order, OrderId, UserId};
use shop_store::StoreError;

/// The order `id` when it exists and is `user`'s; `None` otherwise — a
/// caller is never told whether somebody else's order exists.
pub async fn own_order(app: &App, user: &UserId, id: &OrderId) -> Result<Option<Order>, StoreError> {
    Ok(app.store.get_order(id).await?.filter(|o| &o.user_id == user))
}
