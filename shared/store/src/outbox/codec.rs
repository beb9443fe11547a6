//! The outbox item's one wire format. An event is written as an item of
//! the single table in the transaction of the change it describes, leaves
//! the table on its stream (AWS) or the local stack's emulation of it, and
//! is published from the stream record's new image. Every name of that
//! format is here and nowhere else:
//!
//! - [`to_item`] is the one writer and [`from_item`] the one reader of
//!   the item; a stream image is the same item in DynamoDB JSON
//!   ([`stream_image`], [`from_stream_image`]), so what the publisher reads
//!   is what the use case wrote, attribute for attribute;
//! - the `pendingOutbox` index's attributes ([`PENDING_SHARD`],
//!   [`PENDING_SORT`]) and the expressions that set and clear them. The
//!   index is the local stack's emulation of the table's stream: every
//!   write of an event (and a republish) sets them, on every engine, and
//!   only the emulation clears them once the publisher took the event. On
//!   AWS the table has no such index and nothing clears them: the stream
//!   delivers each write (docs/adr/0024);
//! - the stream filter the template's event source mapping carries
//!   ([`stream_filter`]; `infra/scripts/gen-template.py` reads the names
//!   from this file and `tests/drift.rs` checks the template against it);
//! - whether a write request carried a pending event
//!   ([`writes_pending_event`]), which wakes the local stack's publisher.
//!
//! | attribute | what |
//! | --- | --- |
//! | `pk`, `sk` | the aggregate's partition (`ORDER#<id>`, `CLAIM#…`), `EVENT#<version, 9 digits>` |
//! | `type` | `EVENT` |
//! | `eventId`, `source`, `detailType`, `detail` | the bus entry; `detail` is the JSON the bus carries |
//! | `occurredAt` | epoch ms, the business clock |
//! | `correlationId` | the request (or run) that wrote it |
//! | `outboxShard`, `outboxSk` | set by every write and republish; cleared by the local stream emulation once published (its `pendingOutbox` index; none on AWS) |
//! | `dueShard`, `dueAt` | the per-day event log in `byDue` |
//! | `publishedAt` | locally, the emulated stream's first hand-over to the publisher (kept through republishes); never set on AWS |
//! | `statusFrom`, `statusTo`, `placedAt` | what the saga statistics count at the first publication |
//! | `orderId`, `aggregateVersion` / `campaignId` | the aggregate, for readers of the table |
//! | `republishes` | how often it was made pending again |
//! | `ttl` | [`EVENT_RETENTION_SECS`] after it was written |

use crate::attr::{Item, get_n, get_s, item, n, opt_s, s, with_key};
use crate::keys;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use shop_domain::campaign::{self, CouponIssued};
use shop_domain::{EventDetail, OrderEvent, OrderStatus, Timestamp};

/// The item's `type`.
pub const TYPE: &str = "EVENT";
/// Sort-key prefix of an outbox item under its aggregate's partition.
pub const SK_PREFIX: &str = "EVENT#";
/// The `pendingOutbox` index's partition attribute: written with every
/// event; locally, present until the publisher took it.
pub const PENDING_SHARD: &str = "outboxShard";
/// The `pendingOutbox` index's sort attribute (`<ms, 13 digits>#<eventId>`).
pub const PENDING_SORT: &str = "outboxSk";

const EVENT_ID: &str = "eventId";
const SOURCE: &str = "source";
const DETAIL_TYPE: &str = "detailType";
const DETAIL: &str = "detail";
const OCCURRED_AT: &str = "occurredAt";
const CORRELATION_ID: &str = "correlationId";
const PUBLISHED_AT: &str = "publishedAt";
const STATUS_FROM: &str = "statusFrom";
const STATUS_TO: &str = "statusTo";
const PLACED_AT: &str = "placedAt";
const ORDER_ID: &str = "orderId";
const AGGREGATE_VERSION: &str = "aggregateVersion";
const CAMPAIGN_ID: &str = "campaignId";
const REPUBLISHES: &str = "republishes";

/// Outbox items are kept 30 days after they are written (DynamoDB TTL).
pub const EVENT_RETENTION_SECS: i64 = 30 * 24 * 3600;

/// Makes a stored event pending (again): the publisher sends it once more.
/// `republishes` makes the write change the item even when it is still
/// pending, so the stream carries a record for it.
pub(crate) const MARK_PENDING: &str = "SET outboxShard = :shard, outboxSk = :sk ADD republishes :one";
/// The local stream emulation's checkpoint: takes a published event out of
/// the pending index and dates its first hand-over.
pub(crate) const MARK_PUBLISHED: &str =
    "REMOVE outboxShard, outboxSk SET publishedAt = if_not_exists(publishedAt, :now)";

/// The `:shard` and `:sk` values [`MARK_PENDING`] takes for `e`.
pub(crate) fn pending_values(e: &StoredEvent) -> (AttributeValue, AttributeValue) {
    (s(keys::outbox_shard_of(keys::aggregate_of(&e.pk))), s(pending_sort(e)))
}

fn pending_sort(e: &StoredEvent) -> String {
    format!("{:013}#{}", e.occurred_at.millis(), e.event_id)
}

/// An outbox event's attribute the console searches the event log by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventField {
    /// The status the event moved its order into.
    StatusTo,
    /// The correlation id of the request (or run) that wrote it.
    CorrelationId,
    /// Its type (`OrderPlaced`, …).
    DetailType,
}

impl EventField {
    pub(crate) fn attribute(self) -> &'static str {
        match self {
            EventField::StatusTo => STATUS_TO,
            EventField::CorrelationId => CORRELATION_ID,
            EventField::DetailType => DETAIL_TYPE,
        }
    }
}

/// An outbox event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub pk: String,
    pub sk: String,
    pub event_id: String,
    pub source: String,
    pub detail_type: String,
    /// The bus entry's detail, JSON.
    pub detail: String,
    pub occurred_at: Timestamp,
    pub correlation_id: String,
    /// Carries the pending attributes: locally, not yet taken by the
    /// publisher; on AWS, every event (nothing clears them there).
    pub pending: bool,
    /// When the bus first accepted it (absent before 2026-12 and while pending).
    pub published_at: Option<Timestamp>,
    /// What the saga statistics count (see [`order_event`]); absent on
    /// events written before 2026-12 and on a claim's `CouponIssued`.
    pub status_from: Option<String>,
    pub status_to: Option<String>,
    pub placed_at: Option<Timestamp>,
    /// The aggregate: an order's id and version, or a claim's campaign.
    pub order_id: Option<String>,
    pub aggregate_version: Option<u64>,
    pub campaign_id: Option<String>,
    /// How often it was made pending again (`shop republish`), if ever.
    pub republishes: Option<u64>,
}

/// Where an order stood before an event: its status (`None` before it was
/// placed) and when it was placed.
#[derive(Debug, Clone, Copy)]
pub struct Before {
    pub status: Option<OrderStatus>,
    pub placed_at: Timestamp,
}

/// The outbox event of an order's `event`, pending. It also carries what
/// the saga statistics count when it is first published (docs/adr/0017):
/// the status it moved the order from and to, and when the order was placed.
pub fn order_event(
    event: &OrderEvent,
    correlation_id: &str,
    traceparent: Option<&str>,
    before: &Before,
) -> anyhow::Result<StoredEvent> {
    let detail = EventDetail::new(event, correlation_id, traceparent);
    let (pk, sk) = keys::event(&event.order_id, event.aggregate_version);
    Ok(StoredEvent {
        pk,
        sk,
        event_id: detail.event_id.to_string(),
        source: shop_domain::envelope::SOURCE.to_owned(),
        detail_type: event.kind.detail_type().to_owned(),
        detail: serde_json::to_string(&detail)?,
        occurred_at: event.occurred_at,
        correlation_id: correlation_id.to_owned(),
        pending: true,
        published_at: None,
        status_from: before.status.map(|s| s.as_str().to_owned()),
        status_to: event.kind.status_after(before.status).map(|s| s.as_str().to_owned()),
        placed_at: Some(before.placed_at),
        order_id: Some(event.order_id.to_string()),
        aggregate_version: Some(event.aggregate_version),
        campaign_id: None,
        republishes: None,
    })
}

/// The outbox event of a claim's `CouponIssued`, pending, under the claim's key.
pub fn coupon_issued(event: &CouponIssued, at: Timestamp) -> anyhow::Result<StoredEvent> {
    Ok(StoredEvent {
        pk: keys::claim_pk(&event.campaign_id, &event.data.user_id),
        sk: format!("{SK_PREFIX}000000001"),
        event_id: event.event_id.clone(),
        source: campaign::SOURCE.to_owned(),
        detail_type: campaign::COUPON_ISSUED.to_owned(),
        detail: serde_json::to_string(event)?,
        occurred_at: at,
        correlation_id: event.correlation_id.clone(),
        pending: true,
        published_at: None,
        status_from: None,
        status_to: None,
        placed_at: None,
        order_id: None,
        aggregate_version: None,
        campaign_id: Some(event.campaign_id.to_string()),
        republishes: None,
    })
}

/// The item of `e`: pending in its outbox shard while `e.pending`, in the
/// event log of its day, kept [`EVENT_RETENTION_SECS`]. Both shards come
/// from [`keys::aggregate_of`] its partition key.
pub fn to_item(e: &StoredEvent) -> Item {
    let aggregate = keys::aggregate_of(&e.pk);
    let mut it = item([
        ("type", s(TYPE)),
        (EVENT_ID, s(e.event_id.as_str())),
        (SOURCE, s(e.source.as_str())),
        (DETAIL_TYPE, s(e.detail_type.as_str())),
        (DETAIL, s(e.detail.as_str())),
        (OCCURRED_AT, n(e.occurred_at.millis())),
        (CORRELATION_ID, s(e.correlation_id.as_str())),
        // The per-day event log (`shop republish --since`, the console's searches).
        ("dueShard", s(keys::event_log_shard_of(e.occurred_at, aggregate))),
        ("dueAt", n(e.occurred_at.millis())),
        (crate::schema::TTL_ATTRIBUTE, n(e.occurred_at.seconds() + EVENT_RETENTION_SECS)),
    ]);
    if e.pending {
        let (shard, sort) = pending_values(e);
        it.insert(PENDING_SHARD.into(), shard);
        it.insert(PENDING_SORT.into(), sort);
    }
    let optional = [
        (STATUS_FROM, e.status_from.as_ref().map(|v| s(v.as_str()))),
        (STATUS_TO, e.status_to.as_ref().map(|v| s(v.as_str()))),
        (PLACED_AT, e.placed_at.map(|t| n(t.millis()))),
        (PUBLISHED_AT, e.published_at.map(|t| n(t.millis()))),
        (ORDER_ID, e.order_id.as_ref().map(|v| s(v.as_str()))),
        (AGGREGATE_VERSION, e.aggregate_version.map(n)),
        (CAMPAIGN_ID, e.campaign_id.as_ref().map(|v| s(v.as_str()))),
        (REPUBLISHES, e.republishes.map(n)),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            it.insert(name.into(), v);
        }
    }
    with_key(it, (e.pk.clone(), e.sk.clone()))
}

/// Whether a table key is an outbox item's (a stream record's keys, say).
pub fn is_event_key(sk: &str) -> bool {
    sk.starts_with(SK_PREFIX)
}

/// Whether `it` is an outbox item.
pub fn is_event(it: &Item) -> bool {
    opt_s(it, "type") == Some(TYPE) && opt_s(it, "sk").is_some_and(is_event_key) && it.contains_key(DETAIL)
}

/// The stored event of an outbox item.
pub fn from_item(it: &Item) -> anyhow::Result<StoredEvent> {
    let time = |name: &str| get_n::<i64>(it, name).ok().map(Timestamp::from_millis);
    let text = |name: &str| opt_s(it, name).map(str::to_owned);
    Ok(StoredEvent {
        pk: get_s(it, "pk")?.to_owned(),
        sk: get_s(it, "sk")?.to_owned(),
        event_id: get_s(it, EVENT_ID)?.to_owned(),
        source: get_s(it, SOURCE)?.to_owned(),
        detail_type: get_s(it, DETAIL_TYPE)?.to_owned(),
        detail: get_s(it, DETAIL)?.to_owned(),
        occurred_at: Timestamp::from_millis(get_n(it, OCCURRED_AT)?),
        correlation_id: text(CORRELATION_ID).unwrap_or_default(),
        pending: matches!(it.get(PENDING_SHARD), Some(AttributeValue::S(_))),
        published_at: time(PUBLISHED_AT),
        status_from: text(STATUS_FROM),
        status_to: text(STATUS_TO),
        placed_at: time(PLACED_AT),
        order_id: text(ORDER_ID),
        aggregate_version: get_n(it, AGGREGATE_VERSION).ok(),
        campaign_id: text(CAMPAIGN_ID),
        republishes: get_n(it, REPUBLISHES).ok(),
    })
}

/// The new image a DynamoDB stream record carries for the write of `e`
/// (DynamoDB JSON): the item itself.
pub fn stream_image(e: &StoredEvent) -> Value {
    crate::attr::to_json(&to_item(e))
}

/// A stream record's keys for `e` (DynamoDB JSON).
pub fn stream_keys(e: &StoredEvent) -> Value {
    crate::attr::to_json(&crate::attr::key(e.pk.as_str(), e.sk.as_str()))
}

/// The event a stream record's new image carries, when it is an outbox
/// item still pending (written, or made pending again); `None` for any
/// other item. A pending outbox item that does not decode is an error:
/// never skipped silently.
pub fn from_stream_image(image: &Value) -> anyhow::Result<Option<StoredEvent>> {
    let it = crate::attr::from_json(image);
    if opt_s(&it, "type") != Some(TYPE) || !it.contains_key(PENDING_SHARD) {
        return Ok(None);
    }
    from_item(&it).map(Some)
}

/// The filter of the stream's event source mapping (Lambda's filter
/// pattern syntax): pending outbox items only.
pub fn stream_filter() -> Value {
    serde_json::json!({"dynamodb": {"NewImage": {"type": {"S": [TYPE]}, PENDING_SHARD: {"S": [{"exists": true}]}}}})
}

/// Whether a committed write request (operation `op`, its JSON body) put
/// a pending outbox item or made one pending again: what the stream
/// filter lets through, known from the request. A request that does not
/// name [`PENDING_SHARD`] is not parsed.
pub fn writes_pending_event(op: &str, request: &[u8]) -> bool {
    let name = PENDING_SHARD.as_bytes();
    if !request.windows(name.len()).any(|w| w == name) {
        return false;
    }
    let Ok(body) = serde_json::from_slice::<Value>(request) else { return false };
    let pending_item = |item: Option<&Value>| item.is_some_and(|i| i.get(PENDING_SHARD).is_some());
    let marks_pending = |update: Option<&Value>| {
        update.and_then(|u| u.get("UpdateExpression")).and_then(Value::as_str) == Some(MARK_PENDING)
    };
    let list = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    match op {
        "PutItem" => pending_item(body.get("Item")),
        "UpdateItem" => marks_pending(Some(&body)),
        "TransactWriteItems" => list(body.get("TransactItems"))
            .iter()
            .any(|a| pending_item(a.get("Put").and_then(|p| p.get("Item"))) || marks_pending(a.get("Update"))),
        "BatchWriteItem" => body.get("RequestItems").and_then(Value::as_object).is_some_and(|tables| {
            tables
                .values()
                .flat_map(|requests| list(Some(requests)))
                .any(|r| pending_item(r.get("PutRequest").and_then(|p| p.get("Item"))))
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_domain::{OrderEventKind, OrderId};

    fn placed() -> StoredEvent {
        let event = OrderEvent {
            order_id: OrderId::parse("o1").unwrap(),
            aggregate_version: 1,
            occurred_at: Timestamp::from_millis(1_795_219_200_123),
            kind: OrderEventKind::OrderExpired {
                user_id: shop_domain::UserId::parse("u1").unwrap(),
                coupon_id: None,
                lines: vec![],
                points_released: shop_domain::Money::ZERO,
                payment_key: None,
                sale_id: None,
            },
        };
        let before = Before { status: Some(OrderStatus::PendingPayment), placed_at: Timestamp::from_millis(5) };
        order_event(&event, "c-1", Some("00-abc-def-01"), &before).unwrap()
    }

    #[test]
    fn an_event_is_read_back_from_its_item_and_from_its_stream_image() {
        let e = placed();
        assert_eq!(from_item(&to_item(&e)).unwrap(), e);
        assert_eq!(from_stream_image(&stream_image(&e)).unwrap(), Some(e.clone()));
        let published = StoredEvent { pending: false, published_at: Some(Timestamp::from_millis(9)), ..e };
        assert_eq!(from_item(&to_item(&published)).unwrap(), published);
        assert_eq!(from_stream_image(&stream_image(&published)).unwrap(), None, "published: not for the publisher");
    }

    #[test]
    fn only_writes_that_make_an_event_pending_wake_the_publisher() {
        let put = serde_json::json!({"TransactItems": [{"Put": {"Item": stream_image(&placed())}}]}).to_string();
        assert!(writes_pending_event("TransactWriteItems", put.as_bytes()));
        let mark = serde_json::json!({"UpdateExpression": MARK_PENDING}).to_string();
        assert!(writes_pending_event("UpdateItem", mark.as_bytes()));
        let clear = serde_json::json!({"UpdateExpression": MARK_PUBLISHED}).to_string();
        assert!(!writes_pending_event("UpdateItem", clear.as_bytes()), "clearing is no event");
        assert!(!writes_pending_event("PutItem", br#"{"Item":{"pk":{"S":"x"}}}"#));
        assert!(!writes_pending_event("GetItem", put.as_bytes()));
    }
}
