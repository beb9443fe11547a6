//! After the run: when each order settled, and the invariants the product
//! promises, checked against the store, the PG simulator and the sink.
//!
//! An order is **settled** when it is terminal (PAID, PARTIALLY_REFUNDED,
//! REFUNDED, EXPIRED, CANCELLED), none of its events is still pending in the outbox, and every
//! consumer whose rule matches one of its events recorded DONE or SKIPPED for
//! it (coupon used or released, analytics delivered, refund or cancel done
//! at the PG).

use crate::emulate::bus::envelope;
use crate::emulate::rules::{Rules, consumers_for};
use crate::sim::pg::SimPayment;
use crate::sim::sink::Delivery as SinkDelivery;
use shop_app::ports::BusEntry;
use shop_domain::{Order, OrderStatus, PaymentMethod};
use shop_store::outbox::StoredEvent;
use shop_store::saga::Outcome;
use std::collections::{BTreeMap, HashMap};

/// When an order settled, on the stack's clock (ms since the epoch).
#[derive(Debug, Clone, Copy)]
pub struct Settled {
    pub status: OrderStatus,
    pub at: i64,
    /// The OrderPaid commit, if the order was paid.
    pub paid_at: Option<i64>,
    /// The RefundRequested commit, if the order was refunded.
    pub refund_at: Option<i64>,
}

/// Whether an order in `status` can move no more.
pub fn terminal(status: OrderStatus) -> bool {
    match status {
        // Partly refunded moves again only when the shopper asks; a part
        // still being carried out shows as its compensation not yet done.
        OrderStatus::Paid
        | OrderStatus::PartiallyRefunded
        | OrderStatus::Refunded
        | OrderStatus::Expired
        | OrderStatus::Cancelled => true,
        OrderStatus::PendingPayment
        | OrderStatus::Confirming
        | OrderStatus::AwaitingDeposit
        | OrderStatus::RefundPending => false,
    }
}

/// Whether the order's saga is over, and when it ended.
pub fn settlement(rules: &Rules, order: &Order, events: &[StoredEvent], outcomes: &[Outcome]) -> Option<Settled> {
    if !terminal(order.status) || events.iter().any(|e| e.pending) {
        return None;
    }
    let mut at = events.iter().map(|e| e.occurred_at.millis()).max().unwrap_or(0);
    for e in events {
        for consumer in expected_consumers(rules, e) {
            let done = outcomes.iter().find(|o| {
                o.event_id == e.event_id && o.consumer == consumer && matches!(o.status.as_str(), "DONE" | "SKIPPED")
            })?;
            at = at.max(done.at.millis());
        }
    }
    let commit = |t: &str| events.iter().find(|e| e.detail_type == t).map(|e| e.occurred_at.millis());
    Some(Settled { status: order.status, at, paid_at: commit("OrderPaid"), refund_at: commit("RefundRequested") })
}

/// Why an order is not settled: its status, events still pending, and each
/// expected consumer outcome that is missing (with the last one recorded).
pub fn unsettled_because(rules: &Rules, order: &Order, events: &[StoredEvent], outcomes: &[Outcome]) -> String {
    let mut why = vec![order.status.as_str().to_owned()];
    for e in events {
        if e.pending {
            why.push(format!("{} {} pending publication", e.detail_type, e.event_id));
        }
        for consumer in expected_consumers(rules, e) {
            let mine: Vec<&Outcome> =
                outcomes.iter().filter(|o| o.event_id == e.event_id && o.consumer == consumer).collect();
            if !mine.iter().any(|o| matches!(o.status.as_str(), "DONE" | "SKIPPED")) {
                let last = mine.last().map(|o| format!("{} {}", o.status, o.detail.as_deref().unwrap_or("")));
                why.push(format!(
                    "{consumer} not done with {} ({})",
                    e.detail_type,
                    last.unwrap_or("never ran".into())
                ));
            }
        }
    }
    why.join("; ")
}

/// The consumers whose rule matches the event, as the bus routes it.
fn expected_consumers<'r>(rules: &'r Rules, e: &StoredEvent) -> Vec<&'r str> {
    let entry = BusEntry {
        source: e.source.clone(),
        detail_type: e.detail_type.clone(),
        detail: e.detail.clone(),
        trace_header: None,
    };
    consumers_for(rules, &envelope(&e.event_id, &entry, "", None))
}

/// Broken invariants, by kind, with a few examples of each.
#[derive(Debug, Default, serde::Serialize)]
pub struct Violations(BTreeMap<&'static str, Kind>);

#[derive(Debug, Default, serde::Serialize)]
pub struct Kind {
    pub count: u64,
    pub examples: Vec<String>,
}

impl Violations {
    pub fn add(&mut self, kind: &'static str, example: impl FnOnce() -> String) {
        let k = self.0.entry(kind).or_default();
        k.count += 1;
        if k.examples.len() < 5 {
            k.examples.push(example());
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().map(|k| k.count).sum()
    }

    /// The report's lines: "violations: none", or each kind with its count and examples.
    pub fn lines(&self) -> Vec<String> {
        if self.total() == 0 {
            return vec!["violations: none".into()];
        }
        let mut out = vec![format!("violations: {}", self.total())];
        for (kind, k) in self.kinds() {
            out.push(format!("  {kind}: {}", k.count));
            out.extend(k.examples.iter().map(|e| format!("    {e}")));
        }
        out
    }

    pub fn kinds(&self) -> impl Iterator<Item = (&'static str, &Kind)> {
        self.0.iter().map(|(k, v)| (*k, v))
    }
}

/// What the per-order checks add up, for the checks over products and users.
#[derive(Debug, Default)]
pub struct Totals {
    /// Units sold (by orders that ended PAID), by product.
    pub sold: HashMap<String, u64>,
    /// Points spent by orders that ended PAID (placement + points payment), by user.
    pub spent: HashMap<String, u64>,
    /// Events the orders published (PutEvents entries on AWS).
    pub events: u64,
    /// Messages the bus routed to consumers' queues (one per event and
    /// matching rule: an SQS send, receive and delete, a consumer invocation).
    pub deliveries: u64,
    /// Analytics deliveries the data platform recognised as duplicates.
    pub redelivered: u64,
}

/// How many times the data platform may receive an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Once: nothing crashes between delivering and recording it.
    Once,
    /// Accepted once; redeliveries after a crash between the delivery and
    /// its record (at least once, as SQS is) must be recognised by the
    /// platform as duplicates of the event id.
    AcceptedOnce,
}

/// One order as the store, the PG simulator and the sink see it.
pub struct Seen<'a> {
    pub order: &'a Order,
    pub events: &'a [StoredEvent],
    pub coupon: Option<&'a shop_domain::Coupon>,
    pub pg: &'a [SimPayment],
    pub delivered: &'a [SinkDelivery],
}

/// The checks that need only this order, its PG payments and its deliveries.
pub fn check_order(rules: &Rules, seen: &Seen<'_>, delivery: Delivery, totals: &mut Totals, v: &mut Violations) {
    let Seen { order, events, coupon, pg, delivered } = *seen;
    let id = order.id.as_str();
    // Paid, perhaps partly refunded: the order keeps what it still holds.
    let paid = matches!(order.status, OrderStatus::Paid | OrderStatus::PartiallyRefunded);
    totals.events += events.len() as u64;
    totals.deliveries += events.iter().map(|e| expected_consumers(rules, e).len() as u64).sum::<u64>();
    if paid {
        for l in &order.lines {
            *totals.sold.entry(l.product_id.as_str().to_owned()).or_default() += u64::from(order.held_units(l));
        }
        *totals.spent.entry(order.user_id.as_str().to_owned()).or_default() += order.held_points().won();
    }

    // Coupon USED iff its order is PAID (or partly refunded); released otherwise.
    if let Some(coupon_id) = &order.coupon_id {
        match coupon.map(|c| &c.status) {
            Some(shop_domain::coupon::CouponStatus::Used { order_id }) if paid && order_id == &order.id => {}
            Some(shop_domain::coupon::CouponStatus::Issued) if !paid => {}
            other => v.add("coupon does not follow its order", || {
                format!("order {id} {} holds coupon {coupon_id}: {other:?}", order.status.as_str())
            }),
        }
    }

    // Every PG capture matched by a PAID order, or cancelled.
    for p in pg {
        let ours = order.payment_key.as_ref().is_some_and(|k| k.as_str() == p.payment_key);
        match p.status.as_str() {
            "DONE" if !(paid && ours) => v.add("PG capture without a PAID order", || {
                format!("payment {} of order {id} ({}) is DONE at the PG", p.payment_key, order.status.as_str())
            }),
            "CANCELED" if paid && ours => v.add("PAID order's payment cancelled at the PG", || {
                format!("order {id}: payment {} is {}", p.payment_key, p.status)
            }),
            // The money invariant: captured − Σ cancels = the cash the order holds.
            "DONE" | "PARTIAL_CANCELED" if paid && ours && p.balance_amount != order.held_cash().won() => {
                v.add("PG balance != the cash the order holds", || {
                    format!(
                        "order {id} ({}): payment {} captured {} and holds {} at the PG, the order {}",
                        order.status.as_str(),
                        p.payment_key,
                        p.total_amount,
                        p.balance_amount,
                        order.held_cash().won()
                    )
                })
            }
            "WAITING_FOR_DEPOSIT" => v.add("virtual account left open", || {
                format!("order {id} ({}): payment {} waits for a deposit", order.status.as_str(), p.payment_key)
            }),
            _ => {}
        }
    }
    let pg_status = |key: &str| pg.iter().find(|p| p.payment_key == key).map(|p| p.status.as_str());
    match (&order.status, &order.payment_key, order.payment_method) {
        (
            OrderStatus::Paid | OrderStatus::PartiallyRefunded,
            Some(key),
            Some(PaymentMethod::Card | PaymentMethod::VirtualAccount),
        ) if !matches!(pg_status(key.as_str()), Some("DONE" | "PARTIAL_CANCELED")) => v
            .add("PAID order without its PG capture", || {
                format!("order {id}: payment {key} is {:?}", pg_status(key.as_str()))
            }),
        (OrderStatus::Refunded, Some(key), _) if pg_status(key.as_str()) != Some("CANCELED") => v
            .add("refund not completed at the PG", || {
                format!("order {id}: payment {key} is {:?}", pg_status(key.as_str()))
            }),
        _ => {}
    }

    // Exactly one analytics delivery of every event the analytics rule takes.
    for e in events {
        if !expected_consumers(rules, e).contains(&shop_app::events::consumers::ANALYTICS) {
            continue;
        }
        let accepted = delivered
            .iter()
            .filter(|d| d.event_id == e.event_id && d.status == 200)
            .filter(|d| delivery == Delivery::Once || !d.duplicate)
            .count();
        totals.redelivered +=
            delivered.iter().filter(|d| d.event_id == e.event_id && d.status == 200 && d.duplicate).count() as u64;
        if accepted != 1 {
            v.add("analytics delivered other than once", || {
                format!("order {id}: {} {} delivered {accepted} times", e.detail_type, e.event_id)
            });
        }
    }
}
