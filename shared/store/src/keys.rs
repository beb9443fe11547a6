//! The single table's key design. Every item has `pk`/`sk` and a `type`.
//!
//! | item | pk | sk |
//! | --- | --- | --- |
//! | product + stock | `PRODUCT#id` | `STOCK` |
//! | catalog listing entry (one per product, for `GET /products`) | `CATALOG` | `PRODUCT#id` |
//! | coupon campaign (with its `issued` counter) | `CAMPAIGN#id` | `CAMPAIGN` |
//! | a user's claim of a campaign | `CLAIM#<campaignId>#<userId>` | `CLAIM` |
//! | the claim's `CouponIssued` outbox event | `CLAIM#<campaignId>#<userId>` | `EVENT#000000001` |
//! | coupon | `COUPON#id` | `COUPON` |
//! | flash sale (terms, the admitter's state) | `SALE#id` | `SALE` |
//! | a sale's counter shard (entries, pre-queue entries, slots freed) | `SALE#id#<ENTRY\|EARLY\|FREED>#n` | `COUNTER` |
//! | a user's ticket in a sale's queue | `SALE#id#USER#<userId>` | `TICKET` |
//! | points balance | `USER#id` | `POINTS` |
//! | points ledger row | `USER#id` | `LEDGER#<ms, 13 digits>#<txId>` |
//! | order | `ORDER#id` | `ORDER` |
//! | outbox event | `ORDER#id` | `EVENT#<version, 9 digits>` |
//! | a refund's sealed refund account (until the PG answers) | `ORDER#id` | `REFUNDACCOUNT#<refund number>` |
//! | payment | `PAYMENT#key` | `PAYMENT` |
//! | idempotency record | `IDEM#<scope>#<key>` | `IDEM` |
//! | consumer outcome (saga log) | `ORDER#id` | `OUTCOME#<version, 9 digits>#<consumer>` |
//! | local queue message (the local stack's SQS) | `QUEUE#<queue>` | `MSG#<id>` |
//! | local archived event (the local stack's archive) | `ARCHIVE#<day>` | `<ms, 13 digits>#<eventId>#<n>` |
//! | saga statistics of one minute, one shard (counters) | `STATS#<yyyy-mm-ddThh>#<shard>` | `M<mm>` |
//! | saga statistics of one minute (sampled gauges) | `STATS#<yyyy-mm-ddThh>#G` | `M<mm>` |
//! | saga statistics since the start (orders per status), one shard | `STATS#TOTAL#<shard>` | `TOTAL` |
//!
//! Sparse global secondary indexes (an item is in an index only while it
//! carries the index's key attributes):
//! - `byDue` (`dueShard`, `dueAt`): work that falls due at a time — orders
//!   while PENDING_PAYMENT (`EXPIRY#n`, at `expiresAt`), payments whose
//!   outcome is in doubt (`RECONCILE#n`, at their last update), virtual
//!   accounts waiting for their deposit (`DEPOSIT#n`, at their next check),
//!   consumers' outcomes while FAILED (`FAILED#n`, at the failure), every outbox
//!   event by day (`EVENTS#<day>#n`, at `occurredAt`, for `shop republish
//!   --since`), and locally, visible queue messages (`QUEUE#<queue>`, at the
//!   time they become visible); a sale's waiting tickets (`PRE#<sale>#n`
//!   by draw, `WAIT#<sale>#n` by number) and admitted ones by the end of
//!   their session (`SESSION#n`).
//! - `pendingOutbox` (`outboxShard`, `outboxSk`), local tables only: the
//!   stream emulation's events not yet handed to the publisher (AWS has the
//!   table's stream instead; docs/adr/0024).
//! - `byUser` (`userPk`, `userSk`): a user's orders and coupons.
//!
//! # Write rates (docs/adr/0011-index-write-rates.md)
//! One partition of a DynamoDB index takes about 1,000 write units a
//! second; past that the index throttles, and a throttled index throttles
//! the table's writes. `byDue` and `pendingOutbox` project every attribute,
//! so every write of an item that is in them (insert, update, and the
//! delete when its key attribute is removed) is also a write of the index
//! entry: one unit for an item up to 1 KB. `byUser` projects keys only
//! (`schema::PROJECTIONS`): only an order's or coupon's creation writes its
//! entry, never a status change; its readers read the items by key.
//! Index partition keys are spread over [`SHARDS`]
//! values by a hash of the order (or payment), and each key below states
//! its ceiling with the writes one order makes to it (an order today: about
//! 3.1 events; measured by `shop bench --saga`):
//!
//! | partition key | index writes per order | ceiling with 4 shards |
//! | --- | --- | --- |
//! | `EVENTS#<day>#n` | 1 per event on AWS (written once, ADR 0024): ≈ 3.1 | ≈ 1,290 orders/s |
//! | `OUTBOX#n` | local stack only: 2 per event (in, then the emulation's checkpoint) | (no DynamoDB) |
//! | `EXPIRY#n` | ≤ 3 (placed, payment started, left PENDING_PAYMENT) | ≈ 1,300 orders/s |
//! | `RECONCILE#n` | ≤ 3 per payment in doubt | ≈ 1,300 payments in doubt/s |
//! | `FAILED#n` | 2 per consumer failure (listed, cleared when done) | ≈ 2,000 failures/s |
//! | `DEPOSIT#n` | 2 per virtual account + 1 per check (one check per reconcile interval `I` while it waits) | ≈ 2,000 accounts issued/s, and ≈ 4,000 × `I` seconds accounts waiting at once (1.2 million at `I` = 300 s) |
//! | `USER#<id>` (`byUser`) | 1 per order placed (and 1 per coupon issued), one user's | ≈ 1,000 orders/s by one user |
//! | `QUEUE#<queue>` | local stack only | (no DynamoDB) |
//!
//! Table partitions written at a rate of their own:
//! - `CATALOG` takes one write per product seeded or changed, never one
//!   per order (stock lives on the product's own item), so a catalog of any
//!   size is listed from one partition whose writes orders never touch.
//! - `CAMPAIGN#id` takes one counter update per coupon issued (a
//!   transactional write: 2 units), ≈ 500 claims/s on one campaign; claims
//!   beyond the total are refused on a read and write nothing. The claim
//!   marker and event are under the claim's own key, spread by user.
//!
//! - `STATS#<hour>#<n>` and `STATS#TOTAL#<n>` take one counter update per
//!   event published and per PG call, spread over [`SHARDS`] by the order
//!   (or payment): ≈ 4.5 updates per order, ≈ 880 orders/s with 4 shards
//!   (docs/adr/0017-saga-statistics.md). The gauges' item takes one write
//!   per sample (a few a minute), whatever the load.
//!
//! Raising [`SHARDS`] raises every ceiling in proportion; readers query
//! every shard, so it also multiplies the queries of the publisher (local
//! stack), the scheduled jobs and `republish` — by a constant, never by
//! the history.

use shop_domain::{CampaignId, CouponId, OrderId, PaymentKey, ProductId, SaleId, Timestamp, UserId};

/// Partitions each sharded index key is spread over (see the table above).
pub const SHARDS: u32 = 4;

pub const GSI_DUE: &str = "byDue";
pub const GSI_OUTBOX: &str = "pendingOutbox";
pub const GSI_USER: &str = "byUser";

pub fn product(id: &ProductId) -> (String, String) {
    (format!("PRODUCT#{id}"), "STOCK".to_owned())
}

/// The catalog listing entry of a product (`GET /products` pages through
/// this partition in product id order).
pub fn catalog_entry(id: &ProductId) -> (String, String) {
    (CATALOG_PK.to_owned(), format!("{CATALOG_PREFIX}{id}"))
}

pub const CATALOG_PK: &str = "CATALOG";
pub const CATALOG_PREFIX: &str = "PRODUCT#";

pub fn campaign(id: &CampaignId) -> (String, String) {
    (format!("CAMPAIGN#{id}"), "CAMPAIGN".to_owned())
}

/// The partition of one user's claim of one campaign: its marker (one per
/// user, by its key) and its `CouponIssued` event.
pub fn claim_pk(campaign: &CampaignId, user: &UserId) -> String {
    format!("CLAIM#{campaign}#{user}")
}

pub fn claim(campaign: &CampaignId, user: &UserId) -> (String, String) {
    (claim_pk(campaign, user), "CLAIM".to_owned())
}

/// A flash sale (docs/adr/0027): its terms and the admitter's state, one
/// write per admission step, never one per shopper.
pub fn sale(id: &SaleId) -> (String, String) {
    (format!("SALE#{id}"), "SALE".to_owned())
}

/// A live connection's entry in its sale's partitions (sharded by user:
/// a user's connections are one prefix), and its pointer by id (what
/// `$disconnect` knows). See `connections`.
pub fn connections_shard(sale: &SaleId, shard: u32) -> String {
    format!("SALE#{sale}#WS#{shard}")
}

pub fn connection(sale: &SaleId, user: &UserId, id: &str, shards: u32) -> (String, String) {
    (connections_shard(sale, shard(user.as_str()) % shards.max(1)), format!("{user}#{id}"))
}

pub fn connection_pointer(id: &str) -> (String, String) {
    (format!("WS#{id}"), "WS".to_owned())
}

/// The audit trail's one partition ([`crate::audit`]).
pub const AUDIT_PK: &str = "AUDIT";

/// An audit entry: by time, then id (ids are UUIDv7, unique at any instant).
pub fn audit(at: Timestamp, id: &str) -> (String, String) {
    (AUDIT_PK.to_owned(), format!("{:013}#{id}", at.millis().max(0)))
}

/// The console's saved views' one partition ([`crate::views`]).
pub const VIEWS_PK: &str = "VIEWS";
/// A saved view's sort-key prefix.
pub const VIEW_PREFIX: &str = "VIEW#";

/// A saved view, by name.
pub fn view(name: &crate::views::ViewName) -> (String, String) {
    (VIEWS_PK.to_owned(), format!("{VIEW_PREFIX}{}", name.as_str()))
}

/// `byDue` partition of the sales, by their end (few: one per flash sale).
pub const SALES_DUE: &str = "SALES";

/// A shopper's ticket: one per user and sale, by its key.
pub fn ticket(sale: &SaleId, user: &UserId) -> (String, String) {
    (format!("SALE#{sale}#USER#{user}"), "TICKET".to_owned())
}

/// Counter kinds of a sale, each over its own shards: entry numbers,
/// pre-queue entries, slots released.
pub const ENTRY_COUNTER: &str = "ENTRY";
pub const EARLY_COUNTER: &str = "EARLY";
pub const FREED_COUNTER: &str = "FREED";
/// Orders placed by an admission whose slot is still held (+1 in the
/// placing transaction, −1 in the one that frees the slot).
pub const HOLDING_COUNTER: &str = "HOLDING";

/// One shard of one of a sale's counters: entries take ≤ 800 a second per
/// shard at the sale's `entryShards` (ADR 0027).
pub fn sale_counter(kind: &str, sale: &SaleId, shard: u32) -> (String, String) {
    (format!("SALE#{sale}#{kind}#{shard}"), "COUNTER".to_owned())
}

/// `byDue` partitions of a sale's queue: the pre-queue by draw, the
/// counted queue by number, each per entry shard (2 index writes per
/// ticket: listed, then admitted or gone).
pub const PRE_PREFIX: &str = "PRE";
pub const WAIT_PREFIX: &str = "WAIT";

pub fn sale_queue_shard(prefix: &str, sale: &SaleId, shard: u32) -> String {
    format!("{prefix}#{sale}#{shard}")
}

/// `byDue` partition of admitted tickets by their session's end, for the
/// session timer (2 index writes per admission: listed, then ordered or
/// ended), over [`SHARDS`] by user.
pub const SESSION_PREFIX: &str = "SESSION";

pub fn session_shard(user: &UserId) -> String {
    format!("{SESSION_PREFIX}#{}", shard(user.as_str()))
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

/// The sealed refund account of the order's refund `number`, beside the
/// order (so its put and delete join the order's transactions).
pub fn refund_account(id: &OrderId, number: u32) -> (String, String) {
    (format!("ORDER#{id}"), format!("REFUNDACCOUNT#{number}"))
}

/// An order's outbox event (the sort key's prefix is the outbox codec's).
pub fn event(order: &OrderId, version: u64) -> (String, String) {
    (format!("ORDER#{order}"), format!("{}{version:09}", crate::outbox::codec::SK_PREFIX))
}

pub fn payment(key: &PaymentKey) -> (String, String) {
    (format!("PAYMENT#{key}"), "PAYMENT".to_owned())
}

pub fn idempotency(scope: &str, key: &str) -> (String, String) {
    (format!("IDEM#{scope}#{key}"), "IDEM".to_owned())
}

/// `byUser` partition of one user's orders and coupons: 1–3 index writes
/// per order, so one user tops out near 330 orders/s — no user does.
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

/// ≈ 3 index writes per order (≈ 1,300 orders/s with 4 shards).
pub fn expiry_shard(order: &OrderId) -> String {
    format!("EXPIRY#{}", shard(order.as_str()))
}

/// `byDue` partition of a consumer's failed outcome (until it is done):
/// 2 index writes per failure (listed, then cleared), by the order's shard.
pub fn failed_shard(order: &OrderId) -> String {
    format!("{FAILED_PREFIX}#{}", shard(order.as_str()))
}

pub const FAILED_PREFIX: &str = "FAILED";

/// `byDue` shard of a consumer's outcome whose message went to the DLQ
/// (its last allowed receive failed): listed apart from those still retrying.
pub fn dead_shard(order: &OrderId) -> String {
    format!("{DEAD_PREFIX}#{}", shard(order.as_str()))
}

pub const DEAD_PREFIX: &str = "DEAD";

/// ≤ 3 index writes per payment in doubt (≈ 1,300/s with 4 shards).
pub fn reconcile_shard(payment: &PaymentKey) -> String {
    format!("RECONCILE#{}", shard(payment.as_str()))
}

/// 2 index writes per virtual account plus one per check, at most one
/// check per account per reconcile interval (see the table above).
pub fn deposit_shard(payment: &PaymentKey) -> String {
    format!("DEPOSIT#{}", shard(payment.as_str()))
}

/// 2 index writes per event, ≈ 6.2 per order (≈ 640 orders/s with 4 shards).
pub fn outbox_shard(order: &OrderId) -> String {
    outbox_shard_of(order.as_str())
}

/// The aggregate an outbox item's partition key names: the order id of
/// `ORDER#<id>`, the whole key otherwise (a claim). Its outbox and event
/// log shards are computed from this, when written and when made pending again.
pub fn aggregate_of(pk: &str) -> &str {
    pk.strip_prefix("ORDER#").unwrap_or(pk)
}

pub fn outbox_shard_of(order: &str) -> String {
    format!("{OUTBOX_PREFIX}#{}", shard(order))
}

/// The `pendingOutbox` index's partitions: `OUTBOX#<shard>`.
pub const OUTBOX_PREFIX: &str = "OUTBOX";

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

/// The `byDue` partition of the event log for the day of `t` and this
/// order's shard: an order's events share one, a day's are spread over
/// [`SHARDS`] (≈ 640 orders/s with 4; the table above).
pub fn event_log_shard(t: shop_domain::Timestamp, order: &OrderId) -> String {
    event_log_shard_of(t, order.as_str())
}

/// The event log partition of an event whose aggregate is `aggregate`
/// (an order id, or the key of a non-order aggregate such as a claim).
pub fn event_log_shard_of(t: shop_domain::Timestamp, aggregate: &str) -> String {
    format!("{}#{}", legacy_event_log_shard(t), shard(aggregate))
}

/// The one partition per day the event log used before it was sharded
/// (2026-12). Still read by `events_since` until such items expire (30
/// days after they were written); nothing writes it any more.
pub fn legacy_event_log_shard(t: shop_domain::Timestamp) -> String {
    format!("EVENTS#{}", day(t))
}

/// Every partition of the event log for the day of `t`: the shards, then
/// the legacy one.
pub fn event_log_partitions(t: shop_domain::Timestamp) -> Vec<String> {
    let day = legacy_event_log_shard(t);
    (0..SHARDS).map(|n| format!("{day}#{n}")).chain(std::iter::once(day.clone())).collect()
}

/// The saga statistics of the minute of `t` in `shard` (`0..SHARDS`, or
/// [`STATS_GAUGES`]): one partition per hour and shard, a minute per item.
pub fn stats_minute(t: shop_domain::Timestamp, shard: &str) -> (String, String) {
    let iso = t.to_rfc3339();
    (format!("STATS#{}#{shard}", iso.get(..13).unwrap_or("")), format!("M{}", iso.get(14..16).unwrap_or("")))
}

/// The shard of the sampled gauges (queue depths, outbox age).
pub const STATS_GAUGES: &str = "G";
/// Sort-key prefix of the minute items of a statistics partition.
pub const STATS_MINUTE_PREFIX: &str = "M";

/// The running totals of one statistics shard (orders per status).
pub fn stats_total(shard: u32) -> (String, String) {
    (format!("STATS#TOTAL#{shard}"), "TOTAL".to_owned())
}

/// A local queue message.
pub fn queue_message(queue: &str, id: &str) -> (String, String) {
    (format!("QUEUE#{queue}"), format!("MSG#{id}"))
}

/// The `byDue` partition of a local queue's visible messages (the local
/// stack only: on AWS the queues are SQS, and this key is never written).
pub fn queue_shard(queue: &str) -> String {
    format!("QUEUE#{queue}")
}

/// The partition of the local archive for the day of `t`.
pub fn archive(t: shop_domain::Timestamp) -> String {
    format!("ARCHIVE#{}", day(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_days_event_log_is_spread_over_every_shard_and_an_order_keeps_one() {
        let t = shop_domain::Timestamp::from_millis(1_795_219_200_000);
        let partitions = event_log_partitions(t);
        let mut used = std::collections::BTreeSet::new();
        for n in 0..200 {
            let order = OrderId::parse(format!("order-{n}")).unwrap();
            let key = event_log_shard(t, &order);
            assert!(partitions.contains(&key), "{key} is read back");
            assert_eq!(key, event_log_shard(t.plus_secs(60), &order), "one order, one partition per day");
            used.insert(key);
        }
        assert_eq!(used.len(), SHARDS as usize, "{used:?}");
        assert_eq!(partitions.last().map(String::as_str), Some("EVENTS#2026-11-21"));
    }
}
