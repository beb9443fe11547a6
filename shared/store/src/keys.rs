//! The single table's key design. Every item has `pk`/`sk` and a `type`.
//!
//! | item | pk | sk |
//! | --- | --- | --- |
//! | product + stock | `PRODUCT#id` | `STOCK` |
//! | coupon | `COUPON#id` | `COUPON` |
//! | points balance | `USER#id` | `POINTS` |
//! | points ledger row | `USER#id` | `LEDGER#<ms, 13 digits>#<txId>` |
//! | order | `ORDER#id` | `ORDER` |
//! | outbox event | `ORDER#id` | `EVENT#<version, 9 digits>` |
//! | payment | `PAYMENT#key` | `PAYMENT` |
//! | idempotency record | `IDEM#<scope>#<key>` | `IDEM` |
//! | consumer outcome (saga log) | `ORDER#id` | `OUTCOME#<version, 9 digits>#<consumer>` |
//! | local queue message (the local stack's SQS) | `QUEUE#<queue>` | `MSG#<id>` |
//! | local archived event (the local stack's archive) | `ARCHIVE#<day>` | `<ms, 13 digits>#<eventId>#<n>` |
//!
//! Sparse global secondary indexes (an item is in an index only while it
//! carries the index's key attributes):
//! - `byDue` (`dueShard`, `dueAt`): work that falls due at a time — orders
//!   while PENDING_PAYMENT (`EXPIRY#n`, at `expiresAt`), payments whose
//!   outcome is in doubt (`RECONCILE#n`, at their last update), every outbox
//!   event by day (`EVENTS#<day>`, at `occurredAt`, for `shop republish
//!   --since`), and locally, visible queue messages (`QUEUE#<queue>`, at the
//!   time they become visible).
//! - `pendingOutbox` (`outboxShard`, `outboxSk`): outbox events not yet published.
//! - `byUser` (`userPk`, `userSk`): a user's orders and coupons.
//!
//! Index partition keys are spread over `SHARDS` values so no single
//! partition takes every write (a DynamoDB partition takes ~1,000 writes/s).

use shop_domain::{CouponId, OrderId, PaymentKey, ProductId, UserId};

pub const SHARDS: u32 = 4;

pub const GSI_DUE: &str = "byDue";
pub const GSI_OUTBOX: &str = "pendingOutbox";
pub const GSI_USER: &str = "byUser";

pub fn product(id: &ProductId) -> (String, String) {
    (format!("PRODUCT#{id}"), "STOCK".to_owned())
}

pub fn coupon(id: &CouponId) -> (String, String) {
    (format!("COUPON#{id}"), "COUPON".to_owned())
}

pub fn points(user: &UserId) -> (String, String) {
    (format!("USER#{user}"), "POINTS".to_owned())
}

pub fn ledger(user: &UserId, at_ms: i64, tx_id: &str) -> (String, String) {
    (format!("USER#{user}"), format!("LEDGER#{at_ms:013}#{tx_id}"))
}

pub fn order(id: &OrderId) -> (String, String) {
    (format!("ORDER#{id}"), "ORDER".to_owned())
}

pub fn event(order: &OrderId, version: u64) -> (String, String) {
    (format!("ORDER#{order}"), format!("EVENT#{version:09}"))
}

pub fn payment(key: &PaymentKey) -> (String, String) {
    (format!("PAYMENT#{key}"), "PAYMENT".to_owned())
}

pub fn idempotency(scope: &str, key: &str) -> (String, String) {
    (format!("IDEM#{scope}#{key}"), "IDEM".to_owned())
}

pub fn user_pk(user: &UserId) -> String {
    format!("USER#{user}")
}

/// Stable shard of a string (FNV-1a), so an item always lands in the same shard.
pub fn shard(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % SHARDS
}

pub fn expiry_shard(order: &OrderId) -> String {
    format!("EXPIRY#{}", shard(order.as_str()))
}

pub fn reconcile_shard(payment: &PaymentKey) -> String {
    format!("RECONCILE#{}", shard(payment.as_str()))
}

pub fn outbox_shard(order: &OrderId) -> String {
    outbox_shard_of(order.as_str())
}

pub fn outbox_shard_of(order: &str) -> String {
    format!("OUTBOX#{}", shard(order))
}

/// Sort-key prefix of an order's consumer outcomes.
pub const OUTCOME_PREFIX: &str = "OUTCOME#";

pub fn outcome_sk(version: u64, consumer: &str) -> String {
    format!("{OUTCOME_PREFIX}{version:09}#{consumer}")
}

/// The UTC day of `t`, `YYYY-MM-DD`: the partition of the event log and
/// the local archive.
pub fn day(t: shop_domain::Timestamp) -> String {
    t.to_rfc3339().chars().take(10).collect()
}

/// The `byDue` partition of the event log for the day of `t`.
pub fn event_log_shard(t: shop_domain::Timestamp) -> String {
    format!("EVENTS#{}", day(t))
}

/// A local queue message.
pub fn queue_message(queue: &str, id: &str) -> (String, String) {
    (format!("QUEUE#{queue}"), format!("MSG#{id}"))
}

/// The `byDue` partition of a local queue's visible messages.
pub fn queue_shard(queue: &str) -> String {
    format!("QUEUE#{queue}")
}

/// The partition of the local archive for the day of `t`.
pub fn archive(t: shop_domain::Timestamp) -> String {
    format!("ARCHIVE#{}", day(t))
}
