//! Domain values ⇄ DynamoDB items. Flat entities use native attributes; the
//! order keeps its nested document in `doc` (JSON) and projects the fields
//! that conditions and indexes need (`status`, `version`, index keys).

use crate::attr::{Item, get_n, get_s, item, n, opt_s, s};
use crate::keys;
use anyhow::{Context, anyhow};
use aws_sdk_dynamodb::types::AttributeValue;
use shop_domain::CampaignId;
use shop_domain::campaign::{self, Campaign, CouponIssued};
use shop_domain::points::LedgerEntry;
use shop_domain::{
    Coupon, CouponId, CouponKind, CouponStatus, EventDetail, Money, Order, OrderEvent, OrderId, OrderStatus, Payment,
    PaymentStatus, Product, ProductId, Timestamp, UserId,
};

/// Outbox items are kept 30 days after they are written (DynamoDB TTL).
pub const EVENT_RETENTION_SECS: i64 = 30 * 24 * 3600;

fn with_key(mut it: Item, (pk, sk): (String, String)) -> Item {
    it.insert("pk".into(), s(pk));
    it.insert("sk".into(), s(sk));
    it
}

fn money(item: &Item, name: &str) -> anyhow::Result<Money> {
    Money::new(get_n::<i128>(item, name)?).with_context(|| format!("attribute {name}"))
}

pub fn product_item(p: &Product) -> Item {
    with_key(
        item([
            ("type", s("PRODUCT")),
            ("productId", s(p.id.as_str())),
            ("name", s(p.name.clone())),
            ("price", n(p.price.won())),
            ("available", n(p.available)),
        ]),
        keys::product(&p.id),
    )
}

pub fn product_from(it: &Item) -> anyhow::Result<Product> {
    Ok(Product {
        id: ProductId::parse(get_s(it, "productId")?)?,
        name: get_s(it, "name")?.to_owned(),
        price: money(it, "price")?,
        available: get_n(it, "available")?,
    })
}

pub fn coupon_item(c: &Coupon) -> Item {
    let (kind, value) = match c.kind {
        CouponKind::Fixed(v) => ("FIXED", v.won()),
        CouponKind::Percent(p) => ("PERCENT", u64::from(p)),
    };
    let mut it = with_key(
        item([
            ("type", s("COUPON")),
            ("couponId", s(c.id.as_str())),
            ("ownerId", s(c.owner.as_str())),
            ("kind", s(kind)),
            ("value", n(value)),
            ("minOrderAmount", n(c.min_order_amount.won())),
            ("couponExpiresAt", n(c.expires_at.millis())),
            ("status", s(c.status.name())),
            ("userPk", s(keys::user_pk(&c.owner))),
            ("userSk", s(format!("COUPON#{}", c.id))),
        ]),
        keys::coupon(&c.id),
    );
    if let Some(o) = c.status.order_id() {
        it.insert("orderId".into(), s(o.as_str()));
    }
    it
}

pub fn coupon_from(it: &Item) -> anyhow::Result<Coupon> {
    let value: u64 = get_n(it, "value")?;
    let kind = match get_s(it, "kind")? {
        "FIXED" => CouponKind::Fixed(Money::new(i128::from(value))?),
        "PERCENT" => CouponKind::Percent(u8::try_from(value).context("percent")?),
        other => return Err(anyhow!("unknown coupon kind {other}")),
    };
    let order = || -> anyhow::Result<OrderId> { Ok(OrderId::parse(get_s(it, "orderId")?)?) };
    let status = match get_s(it, "status")? {
        "ISSUED" => CouponStatus::Issued,
        "HELD" => CouponStatus::Held { order_id: order()? },
        "USED" => CouponStatus::Used { order_id: order()? },
        "EXPIRED" => CouponStatus::Expired,
        other => return Err(anyhow!("unknown coupon status {other}")),
    };
    Ok(Coupon {
        id: CouponId::parse(get_s(it, "couponId")?)?,
        owner: UserId::parse(get_s(it, "ownerId")?)?,
        kind,
        min_order_amount: money(it, "minOrderAmount")?,
        expires_at: Timestamp::from_millis(get_n(it, "couponExpiresAt")?),
        status,
    })
}

pub fn points_item(user: &UserId, balance: Money) -> Item {
    with_key(
        item([("type", s("POINTS")), ("userId", s(user.as_str())), ("balance", n(balance.won()))]),
        keys::points(user),
    )
}

pub fn points_from(it: &Item) -> anyhow::Result<Money> {
    money(it, "balance")
}

pub fn ledger_item(e: &LedgerEntry) -> Item {
    let reason = match serde_json::to_value(e.reason) {
        Ok(serde_json::Value::String(r)) => r,
        Ok(_) | Err(_) => "UNKNOWN".to_owned(),
    };
    let mut it = with_key(
        item([
            ("type", s("LEDGER")),
            ("userId", s(e.user_id.as_str())),
            ("txId", s(e.tx_id.clone())),
            ("delta", n(e.delta)),
            ("reason", s(reason)),
            ("balanceAfter", n(e.balance_after.won())),
            ("at", n(e.at.millis())),
        ]),
        keys::ledger(&e.user_id, e.at.millis(), &e.tx_id),
    );
    if let Some(o) = &e.order_id {
        it.insert("orderId".into(), s(o.as_str()));
    }
    it
}

pub fn ledger_from(it: &Item) -> anyhow::Result<LedgerEntry> {
    Ok(LedgerEntry {
        user_id: UserId::parse(get_s(it, "userId")?)?,
        tx_id: get_s(it, "txId")?.to_owned(),
        delta: get_n(it, "delta")?,
        reason: serde_json::from_value(serde_json::Value::String(get_s(it, "reason")?.to_owned()))?,
        order_id: opt_s(it, "orderId").map(OrderId::parse).transpose()?,
        balance_after: money(it, "balanceAfter")?,
        at: Timestamp::from_millis(get_n(it, "at")?),
    })
}

pub fn order_item(o: &Order) -> anyhow::Result<Item> {
    let mut it = with_key(
        item([
            ("type", s("ORDER")),
            ("orderId", s(o.id.as_str())),
            ("userId", s(o.user_id.as_str())),
            ("status", s(o.status.as_str())),
            ("version", n(o.version)),
            ("createdAt", n(o.created_at.millis())),
            ("doc", s(serde_json::to_string(o)?)),
            ("userPk", s(keys::user_pk(&o.user_id))),
            ("userSk", s(format!("ORDER#{:013}#{}", o.created_at.millis(), o.id))),
        ]),
        keys::order(&o.id),
    );
    // In the expiry index only while it can expire.
    match o.status {
        OrderStatus::PendingPayment => {
            it.insert("dueShard".into(), s(keys::expiry_shard(&o.id)));
            it.insert("dueAt".into(), n(o.expires_at.millis()));
        }
        OrderStatus::Confirming
        | OrderStatus::AwaitingDeposit
        | OrderStatus::Paid
        | OrderStatus::Expired
        | OrderStatus::Cancelled
        | OrderStatus::RefundPending
        | OrderStatus::Refunded => {}
    }
    Ok(it)
}

pub fn order_from(it: &Item) -> anyhow::Result<Order> {
    let order: Order = serde_json::from_str(get_s(it, "doc")?).context("order document")?;
    Ok(order)
}

/// The outbox item for `event`: written in the same transaction as the state
/// change it describes, pending (in the `pendingOutbox` index) until published.
///
/// It also carries what the saga statistics count when it is first
/// published (docs/adr/0017): the status it moved the order from and to,
/// and when the order was placed.
pub fn event_item(
    event: &OrderEvent,
    correlation_id: &str,
    traceparent: Option<&str>,
    before: &Before,
) -> anyhow::Result<Item> {
    let detail = EventDetail::new(event, correlation_id, traceparent);
    let mut it = outbox_item(
        keys::event(&event.order_id, event.aggregate_version),
        &detail.event_id.to_string(),
        (shop_domain::envelope::SOURCE, event.kind.detail_type()),
        serde_json::to_string(&detail)?,
        event.occurred_at,
        correlation_id,
    );
    it.insert("orderId".into(), s(event.order_id.as_str()));
    it.insert("aggregateVersion".into(), n(event.aggregate_version));
    if let Some(from) = before.status {
        it.insert("statusFrom".into(), s(from.as_str()));
    }
    if let Some(to) = event.kind.status_after(before.status) {
        it.insert("statusTo".into(), s(to.as_str()));
    }
    it.insert("placedAt".into(), n(before.placed_at.millis()));
    Ok(it)
}

/// Where an order stood before an event: its status (`None` before it was
/// placed) and when it was placed.
#[derive(Debug, Clone, Copy)]
pub struct Before {
    pub status: Option<shop_domain::OrderStatus>,
    pub placed_at: Timestamp,
}

/// The outbox item of a claim's `CouponIssued` event, under the claim's key.
pub fn coupon_issued_item(event: &CouponIssued, pk: String, at: Timestamp) -> anyhow::Result<Item> {
    let mut it = outbox_item(
        (pk, "EVENT#000000001".to_owned()),
        &event.event_id,
        (campaign::SOURCE, campaign::COUPON_ISSUED),
        serde_json::to_string(event)?,
        at,
        &event.correlation_id,
    );
    it.insert("campaignId".into(), s(event.campaign_id.as_str()));
    Ok(it)
}

/// An outbox item of any aggregate: pending in its outbox shard, in the
/// event log of its day, kept [`EVENT_RETENTION_SECS`]. Both shards come
/// from [`keys::aggregate_of`] its partition key, as `mark_pending` computes them.
fn outbox_item(
    (pk, sk): (String, String),
    event_id: &str,
    (source, detail_type): (&str, &str),
    detail: String,
    at: Timestamp,
    correlation_id: &str,
) -> Item {
    let aggregate = keys::aggregate_of(&pk).to_owned();
    with_key(
        item([
            ("type", s("EVENT")),
            ("eventId", s(event_id)),
            ("source", s(source)),
            ("detailType", s(detail_type)),
            ("detail", s(detail)),
            ("occurredAt", n(at.millis())),
            ("correlationId", s(correlation_id)),
            ("outboxShard", s(keys::outbox_shard_of(&aggregate))),
            ("outboxSk", s(format!("{:013}#{event_id}", at.millis()))),
            // The per-day event log (`shop republish --since`).
            ("dueShard", s(keys::event_log_shard_of(at, &aggregate))),
            ("dueAt", n(at.millis())),
            (crate::schema::TTL_ATTRIBUTE, n(at.seconds() + EVENT_RETENTION_SECS)),
        ]),
        (pk, sk),
    )
}

/// A product's catalog listing entry: only the id; name, price and stock
/// are read from the product's own item.
pub fn catalog_entry_item(id: &ProductId) -> Item {
    with_key(item([("type", s("CATALOG")), ("productId", s(id.as_str()))]), keys::catalog_entry(id))
}

/// A campaign: its terms in `doc`, its counter `issued` and `total` native
/// (the claim's conditional update works on those two).
pub fn campaign_item(c: &Campaign) -> anyhow::Result<Item> {
    Ok(with_key(
        item([
            ("type", s("CAMPAIGN")),
            ("campaignId", s(c.id.as_str())),
            ("total", n(c.total)),
            ("issued", n(c.issued)),
            ("doc", s(serde_json::to_string(c)?)),
        ]),
        keys::campaign(&c.id),
    ))
}

pub fn campaign_from(it: &Item) -> anyhow::Result<Campaign> {
    let mut c: Campaign = serde_json::from_str(get_s(it, "doc")?).context("campaign document")?;
    // The counter moves without rewriting the document.
    c.issued = get_n(it, "issued")?;
    c.total = get_n(it, "total")?;
    Ok(c)
}

/// The marker of `user`'s claim of a campaign: which coupon it issued.
pub fn claim_item(campaign: &CampaignId, coupon: &Coupon, at: Timestamp) -> Item {
    with_key(
        item([
            ("type", s("CLAIM")),
            ("campaignId", s(campaign.as_str())),
            ("userId", s(coupon.owner.as_str())),
            ("couponId", s(coupon.id.as_str())),
            ("at", n(at.millis())),
        ]),
        keys::claim(campaign, &coupon.owner),
    )
}

/// An outbox item as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub pk: String,
    pub sk: String,
    pub event_id: String,
    pub source: String,
    pub detail_type: String,
    pub detail: String,
    pub occurred_at: Timestamp,
    pub pending: bool,
    /// When the bus first accepted it (absent before 2026-12 and while pending).
    pub published_at: Option<Timestamp>,
    /// What the saga statistics count (see [`event_item`]); absent on
    /// events written before 2026-12 and on a claim's `CouponIssued`.
    pub status_from: Option<String>,
    pub status_to: Option<String>,
    pub placed_at: Option<Timestamp>,
}

pub fn stored_event_from(it: &Item) -> anyhow::Result<StoredEvent> {
    Ok(StoredEvent {
        pk: get_s(it, "pk")?.to_owned(),
        sk: get_s(it, "sk")?.to_owned(),
        event_id: get_s(it, "eventId")?.to_owned(),
        source: get_s(it, "source")?.to_owned(),
        detail_type: get_s(it, "detailType")?.to_owned(),
        detail: get_s(it, "detail")?.to_owned(),
        occurred_at: Timestamp::from_millis(get_n(it, "occurredAt")?),
        pending: matches!(it.get("outboxShard"), Some(AttributeValue::S(_))),
        published_at: get_n::<i64>(it, "publishedAt").ok().map(Timestamp::from_millis),
        status_from: opt_s(it, "statusFrom").map(str::to_owned),
        status_to: opt_s(it, "statusTo").map(str::to_owned),
        placed_at: get_n::<i64>(it, "placedAt").ok().map(Timestamp::from_millis),
    })
}

pub fn payment_item(p: &Payment) -> anyhow::Result<Item> {
    let mut it = with_key(
        item([
            ("type", s("PAYMENT")),
            ("paymentKey", s(p.payment_key.as_str())),
            ("orderId", s(p.order_id.as_str())),
            ("status", s(p.status.as_str())),
            ("version", n(p.version)),
            ("doc", s(serde_json::to_string(p)?)),
        ]),
        keys::payment(&p.payment_key),
    );
    // In the due index while only the PG can tell how it ended (at its last
    // update), or while a virtual account waits for its deposit (at its next check).
    match p.status {
        PaymentStatus::Confirming | PaymentStatus::Unknown => {
            it.insert("dueShard".into(), s(keys::reconcile_shard(&p.payment_key)));
            it.insert("dueAt".into(), n(p.updated_at.millis()));
        }
        PaymentStatus::WaitingForDeposit => {
            it.insert("dueShard".into(), s(keys::deposit_shard(&p.payment_key)));
            it.insert("dueAt".into(), n(p.check_at.unwrap_or(p.updated_at).millis()));
        }
        PaymentStatus::Done | PaymentStatus::Aborted | PaymentStatus::Canceled => {}
    }
    Ok(it)
}

pub fn payment_from(it: &Item) -> anyhow::Result<Payment> {
    serde_json::from_str(get_s(it, "doc")?).context("payment document")
}
