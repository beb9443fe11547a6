//! `shop dump`: the business state as one canonical JSON document — every
//! order, payment record, product's stock, coupon, campaign with its
//! counter, points balance with its
//! ledger, and (with a data dir) the PG simulator's payments and the data
//! platform's deliveries by event id. Keys are sorted and every list has a
//! fixed order, so two dumps of the same state are byte-identical: diff
//! them after a replay, a republish or a restore.
//!
//! It speaks the API's dialect: the API's views where the API shows the
//! thing (camelCase names, RFC 3339 times, the API's status names), plus
//! what only an operator needs to compare states (an order's `userId`,
//! `version` and orphaned payments, a payment record, a ledger entry's
//! `txId`). Nothing in it depends on when it was taken: a coupon shows its
//! stored status (the API also calls an issued coupon past its expiry
//! EXPIRED) and a campaign its counter, not whether it is open now.
//!
//! What is left out on purpose: the outbox, the saga log, idempotency
//! records and queue messages — the machinery, not the state — so a replay
//! that changes nothing in the business dumps the same.
//!
//! The table is read with `Scan` pages: the document (and the memory it
//! takes) is as large as the state. It is an export, not a request path.

use crate::sim::db::each_page;
use serde_json::{Map, Value, json};
use shop_app::App;
use shop_app::http::{catalog::ProductView, orders::OrderView, points::ledger_row};
use shop_domain::{Campaign, Coupon, Order, Payment};
use shop_store::attr::Item;
use std::collections::BTreeMap;

/// The simulators' state files in a data dir, when present.
pub struct Simulated<'a> {
    pub pg: Option<&'a crate::sim::pg::PgSim>,
    pub sink: Option<&'a crate::sim::sink::Sink>,
}

pub async fn dump(app: &App, sims: Simulated<'_>) -> anyhow::Result<Value> {
    let mut orders = BTreeMap::new();
    let mut payments = BTreeMap::new();
    let mut products = BTreeMap::new();
    let mut coupons = BTreeMap::new();
    let mut campaigns = BTreeMap::new();
    let mut balances: BTreeMap<String, u64> = BTreeMap::new();
    let mut ledgers: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    let mut start = None;
    loop {
        let page = app
            .store
            .client()
            .scan()
            .table_name(app.store.table())
            // Bounded pages: see shop_store::PAGE_ITEMS.
            .limit(shop_store::PAGE_ITEMS)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| anyhow::Error::new(e).context("Scan"))?;
        for it in page.items.unwrap_or_default() {
            let kind = shop_store::attr::opt_s(&it, "type").unwrap_or_default().to_owned();
            match kind.as_str() {
                "ORDER" => {
                    let o = shop_store::orders::from_item(&it)?;
                    orders.insert(o.id.to_string(), order(&o)?);
                }
                "PAYMENT" => {
                    let p = shop_store::payments::from_item(&it)?;
                    payments.insert(p.payment_key.to_string(), payment(&p));
                }
                "PRODUCT" => {
                    let p = shop_store::catalog::product_from(&it)?;
                    products.insert(p.id.to_string(), serde_json::to_value(ProductView::from(&p))?);
                }
                "COUPON" => {
                    let c = shop_store::coupons::from_item(&it)?;
                    coupons.insert(c.id.to_string(), coupon(&c));
                }
                "CAMPAIGN" => {
                    let c = shop_store::campaigns::from_item(&it)?;
                    campaigns.insert(c.id.to_string(), campaign(&c));
                }
                "POINTS" => {
                    balances.insert(user_of(&it)?, shop_store::points::balance_from(&it)?.won());
                }
                "LEDGER" => {
                    let e = shop_store::points::ledger_from(&it)?;
                    let sk = shop_store::attr::get_s(&it, "sk")?.to_owned();
                    let mut row = ledger_row(&e);
                    if let Some(fields) = row.as_object_mut() {
                        fields.insert("txId".into(), e.tx_id.clone().into());
                    }
                    ledgers.entry(user_of(&it)?).or_default().insert(sk, row);
                }
                // The machinery: outbox, saga log, idempotency, local queues and archive.
                _ => {}
            }
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    let mut users: BTreeMap<String, Value> = BTreeMap::new();
    for (user, balance) in &balances {
        let ledger: Vec<Value> = ledgers.remove(user).unwrap_or_default().into_values().collect();
        users.insert(user.clone(), json!({"balance": balance, "ledger": ledger}));
    }
    for (user, ledger) in ledgers {
        users.insert(user, json!({"balance": null, "ledger": ledger.into_values().collect::<Vec<_>>()}));
    }
    let mut out = Map::new();
    out.insert("orders".into(), sorted(orders));
    out.insert("payments".into(), sorted(payments));
    out.insert("products".into(), sorted(products));
    out.insert("coupons".into(), sorted(coupons));
    out.insert("campaigns".into(), sorted(campaigns));
    out.insert("points".into(), sorted(users));
    if let Some(pg) = sims.pg {
        out.insert("pg".into(), pg_payments(pg).await?);
    }
    if let Some(sink) = sims.sink {
        out.insert("sink".into(), deliveries(sink).await?);
    }
    Ok(canonical(Value::Object(out)))
}

/// The API's order, with who placed it, its version and the PG payments it
/// could no longer take.
fn order(o: &Order) -> anyhow::Result<Value> {
    let mut v = serde_json::to_value(OrderView::from(o))?;
    if let Some(fields) = v.as_object_mut() {
        fields.insert("userId".into(), o.user_id.as_str().into());
        fields.insert("version".into(), o.version.into());
        let orphaned: Vec<Value> = o.orphaned_payments.iter().map(|k| k.as_str().into()).collect();
        fields.insert("orphanedPayments".into(), orphaned.into());
    }
    Ok(v)
}

/// A payment record: the order's side of a PG payment.
fn payment(p: &Payment) -> Value {
    json!({
        "paymentKey": p.payment_key.as_str(),
        "orderId": p.order_id.as_str(),
        "userId": p.user_id.as_str(),
        "amount": p.amount.won(),
        "method": p.method,
        "status": p.status.as_str(),
        "version": p.version,
        "createdAt": p.created_at.to_rfc3339(),
        "updatedAt": p.updated_at.to_rfc3339(),
        "failureCode": p.failure_code,
        "failureMessage": p.failure_message,
        "orphaned": p.orphaned,
        "checkAt": p.check_at.map(|t| t.to_rfc3339()),
    })
}

/// A coupon as `GET /coupons` shows it, with its owner and its stored status.
fn coupon(c: &Coupon) -> Value {
    let (kind, value) = c.kind.name_and_value();
    json!({
        "couponId": c.id.as_str(),
        "userId": c.owner.as_str(),
        "kind": kind,
        "value": value,
        "minOrderAmount": c.min_order_amount.won(),
        "expiresAt": c.expires_at.to_rfc3339(),
        "status": c.status.name(),
        "orderId": c.status.order_id().map(|o| o.as_str()),
    })
}

/// A campaign as `GET /campaigns/{id}` shows it, without what depends on the clock.
fn campaign(c: &Campaign) -> Value {
    let (kind, value) = c.coupon.kind.name_and_value();
    json!({
        "campaignId": c.id.as_str(),
        "name": c.name,
        "total": c.total,
        "issued": c.issued,
        "startsAt": c.starts_at.to_rfc3339(),
        "endsAt": c.ends_at.to_rfc3339(),
        "coupon": {
            "kind": kind,
            "value": value,
            "minOrderAmount": c.coupon.min_order_amount.won(),
            "expiresAt": c.coupon.expires_at.to_rfc3339(),
        },
    })
}

fn user_of(it: &Item) -> anyhow::Result<String> {
    Ok(shop_store::attr::get_s(it, "pk")?.trim_start_matches("USER#").to_owned())
}

fn sorted(map: BTreeMap<String, Value>) -> Value {
    Value::Object(map.into_iter().collect())
}

/// The same value with every object's keys in order, whatever map type
/// serde_json was built with.
fn canonical(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<String, Value> = m.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// Every payment the PG holds, by payment key, in its Toss form.
async fn pg_payments(pg: &crate::sim::pg::PgSim) -> anyhow::Result<Value> {
    let mut out = BTreeMap::new();
    each_page(
        |page| pg.payments(Default::default(), page),
        |payments| {
            for p in payments {
                out.insert(p.payment_key.clone(), serde_json::to_value(&p)?);
            }
            Ok(())
        },
    )
    .await?;
    Ok(sorted(out))
}

/// The data platform's deliveries by event id: what was sent, how often it
/// was accepted (a second acceptance is a duplicate export) and attempted.
async fn deliveries(sink: &crate::sim::sink::Sink) -> anyhow::Result<Value> {
    let mut out: BTreeMap<String, (String, String, u64, u64)> = BTreeMap::new();
    each_page(
        |page| sink.deliveries(Default::default(), page),
        |deliveries| {
            for d in deliveries {
                let e = out.entry(d.event_id).or_insert_with(|| (d.detail_type, d.order_id, 0, 0));
                e.3 += 1;
                if d.status == 200 {
                    e.2 += 1;
                }
            }
            Ok(())
        },
    )
    .await?;
    Ok(sorted(
        out.into_iter()
            .map(|(id, (detail_type, order_id, accepted, attempts))| {
                (
                    id,
                    json!({"detailType": detail_type, "orderId": order_id, "accepted": accepted, "attempts": attempts}),
                )
            })
            .collect(),
    ))
}

/// The dump as text: pretty-printed, one trailing newline.
pub fn text(v: &Value) -> anyhow::Result<String> {
    Ok(format!("{}\n", serde_json::to_string_pretty(v)?))
}
