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
//!
//! Sparse global secondary indexes (an item is in an index only while it
//! carries the index's key attributes):
//! - `byDue` (`dueShard`, `dueAt`): work that falls due at a time — orders
//!   while PENDING_PAYMENT (`EXPIRY#n`, at `expiresAt`) and payments whose
//!   outcome is in doubt (`RECONCILE#n`, at their last update).
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
    format!("OUTBOX#{}", shard(order.as_str()))
}
