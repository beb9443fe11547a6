//! One order's saga as the console shows it: every step on one time axis,
//! in lanes — the order's state changes (one per event, by version), the
//! outbox (written, published), each consumer's attempts and outcome, the
//! PG (calls and webhooks, from the simulator), the data platform — and the
//! money beside it, from the order, the points ledger and the PG.
//!
//! Reads only what belongs to the order (its item, its events and
//! outcomes, the user's ledger since the order was placed, the simulators'
//! rows by order id): the cost is the same at order 100,000 as at order 1.

use serde::Serialize;
use shop_app::App;
use shop_domain::{Order, OrderId, points::LedgerEntry};
use shop_store::saga::Outcome;

use crate::sim::db::Page;
use crate::sim::pg::{self, Call, PgSim, SimPayment};
use crate::sim::sink::{Delivery, Sink};

/// A lane of the saga.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Lane {
    Order,
    Outbox,
    Consumer,
    Pg,
    DataPlatform,
}

/// How a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum State {
    Done,
    Skipped,
    Failed,
    Pending,
}

/// One step on the time axis.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Epoch ms, or `None` for a step still pending.
    pub at: Option<i64>,
    pub lane: Lane,
    /// Who acted: the event type, the consumer, the PG operation.
    pub actor: String,
    pub state: State,
    pub text: String,
}

/// The money of the order; balanced when what the PG captured and cancelled
/// and the points spent and given back agree with where the order ended.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MoneyView {
    pub subtotal: u64,
    pub discount: u64,
    pub points_used: u64,
    pub amount_due: u64,
    /// Ledger rows of this order: points spent (debits) and refunded (credits).
    pub points_spent: u64,
    pub points_refunded: u64,
    /// At the PG: approved amounts, and what was cancelled of them.
    pub captured: u64,
    pub cancelled: u64,
}

impl MoneyView {
    pub fn net_captured(&self) -> i128 {
        i128::from(self.captured) - i128::from(self.cancelled)
    }
    pub fn net_points(&self) -> i128 {
        i128::from(self.points_spent) - i128::from(self.points_refunded)
    }
}

/// An event of the order, for the replay form.
pub struct EventRef {
    pub version: u64,
    pub detail_type: String,
    /// The consumers whose rules take it (the only replays offered).
    pub consumers: Vec<String>,
}

/// An open problem of the order, as its page's banner tells it: what is
/// stuck, since when, what the system does next, and what resolves it.
#[derive(Debug, Clone, Serialize)]
pub enum Problem {
    /// A consumer failed on one of the order's events.
    Consumer {
        consumer: String,
        detail_type: String,
        /// The event's version (for the replay action).
        version: u64,
        attempts: u32,
        error: Option<String>,
        stuck: Stuck,
    },
    /// The PG's answer to the payment is not known (a timeout, a lost
    /// response, a 5xx): the reconciler asks it from `next_ask` on.
    PaymentInDoubt { payment_key: String, status: String, since: i64, next_ask: i64 },
}

#[derive(Debug, Clone, Copy, Serialize)]
pub enum Stuck {
    /// Failed, and its queue tries again; after `max` receives it goes to the DLQ.
    Retrying { last_attempt: i64, max: u32 },
    /// Its last allowed attempt failed then: it goes to the DLQ, where nothing retries it.
    DeadLettered { since: i64 },
}

pub struct OrderSaga {
    pub order: Order,
    /// The order's payment record (the attempt in progress), if it has one.
    pub payment: Option<shop_domain::Payment>,
    /// The PG's decline of the last attempt, when that is where the order
    /// stands: (payment key, code, message) from its `PaymentFailed`.
    pub declined: Option<(String, String, String)>,
    pub problems: Vec<Problem>,
    pub events: Vec<EventRef>,
    pub steps: Vec<Step>,
    pub money: MoneyView,
    pub ledger: Vec<LedgerEntry>,
    pub pg_payments: Vec<SimPayment>,
    /// Whether the PG and data-platform lanes could be read (local stack).
    pub simulated: bool,
}

/// The saga of `id`, or `None` if there is no such order.
pub async fn load(
    app: &App,
    pg: Option<&PgSim>,
    sink: Option<&Sink>,
    id: &OrderId,
) -> anyhow::Result<Option<OrderSaga>> {
    let Some(order) = app.store.orders().get(id).await? else { return Ok(None) };
    let events = app.store.outbox().events_of(id).await?;
    let outcomes = app.store.saga().outcomes_of(id).await?;
    // The user's ledger from the order's placement on: its rows, not the
    // user's whole history.
    let ledger: Vec<LedgerEntry> = app
        .store
        .points()
        .ledger_between(&order.user_id, order.created_at, app.clock.now().plus_secs(60))
        .await?
        .into_iter()
        .filter(|e| e.order_id.as_ref() == Some(id))
        .collect();
    let mut steps = Vec::new();
    for e in &events {
        let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
        let trace = detail.get("traceparent").and_then(|t| t.as_str()).and_then(shop_app::obs::trace::trace_id_of);
        steps.push(Step {
            at: Some(e.occurred_at.millis()),
            lane: Lane::Order,
            actor: e.detail_type.clone(),
            state: State::Done,
            text: format!("{} (trace {})", e.event_id, trace.as_deref().unwrap_or("-")),
        });
        // Locally the stream is the emulation's pending index, and
        // `publishedAt` says when the publisher took the event (events
        // published before 2026-12 were not dated: shown at their commit).
        // A deployed stack's stream keeps no such mark: its events are shown
        // on the stream from their commit (docs/adr/0024).
        let waiting = e.pending && pg.is_some();
        steps.push(Step {
            at: (!waiting).then(|| e.published_at.unwrap_or(e.occurred_at).millis()),
            lane: Lane::Outbox,
            actor: e.detail_type.clone(),
            state: if waiting { State::Pending } else { State::Done },
            text: match (waiting, pg.is_some()) {
                (true, _) => "waiting for the publisher".into(),
                (false, true) => "published to the bus".into(),
                (false, false) => "on the table's stream".into(),
            },
        });
    }
    steps.extend(outcomes.iter().map(consumer_step));
    let payment = match &order.payment_key {
        Some(key) => app.store.payments().get(key).await?,
        None => None,
    };
    // The decline, if the order's latest event is one.
    let declined = events.last().filter(|e| e.detail_type == "PaymentFailed").map(|e| {
        let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
        let field = |name: &str| detail["data"][name].as_str().unwrap_or_default().to_owned();
        (field("paymentKey"), field("code"), field("message"))
    });
    let mut problems: Vec<Problem> = Vec::new();
    if let Some(p) = payment.as_ref().filter(|p| p.status.in_doubt()) {
        problems.push(Problem::PaymentInDoubt {
            payment_key: p.payment_key.to_string(),
            status: p.status.as_str().to_owned(),
            since: p.updated_at.millis(),
            next_ask: p.updated_at.plus_secs(app.config.reconcile_after_secs).millis(),
        });
    }
    problems.extend(outcomes.iter().filter(|o| o.status == shop_store::saga::FAILED).map(|o| Problem::Consumer {
        consumer: o.consumer.clone(),
        detail_type: o.detail_type.clone(),
        version: o.event_id.rsplit('#').next().and_then(|v| v.parse().ok()).unwrap_or(0),
        attempts: o.attempts,
        error: o.detail.clone(),
        stuck: match o.dead_lettered_at {
            Some(at) => Stuck::DeadLettered { since: at.millis() },
            None => Stuck::Retrying { last_attempt: o.at.millis(), max: app.config.max_receives },
        },
    }));
    let mut money = MoneyView {
        subtotal: order.subtotal.won(),
        discount: order.discount.won(),
        points_used: order.points_used.won(),
        amount_due: order.amount_due.won(),
        ..MoneyView::default()
    };
    for e in &ledger {
        if e.delta < 0 {
            money.points_spent += e.delta.unsigned_abs();
        } else {
            money.points_refunded += e.delta.unsigned_abs();
        }
    }
    let mut pg_payments = Vec::new();
    if let Some(pg) = pg {
        let by_order = || pg::Filter { order_id: Some(id.to_string()), payment_key: None, op: None };
        let all = || Page { after: 0, limit: Some(crate::sim::db::MAX_LIMIT) };
        for call in pg.calls(by_order(), all()).await?.items {
            steps.push(pg_call_step(&call));
        }
        for hook in pg.webhooks(by_order(), all()).await?.items {
            steps.push(Step {
                at: hook.at,
                lane: Lane::Pg,
                actor: format!("webhook {}", hook.event_type),
                state: if hook.status == 200 { State::Done } else { State::Failed },
                text: format!(
                    "attempt {}, answered {}",
                    hook.attempt,
                    if hook.status == 0 { "nothing".into() } else { hook.status.to_string() }
                ),
            });
        }
        pg_payments = pg.payments(by_order(), all()).await?.items;
        for p in &pg_payments {
            if p.approved_at.is_some() {
                money.captured += p.total_amount;
            }
            money.cancelled +=
                p.cancels.iter().filter_map(|c| c.get("cancelAmount").and_then(serde_json::Value::as_u64)).sum::<u64>();
        }
    }
    if let Some(sink) = sink {
        steps.extend(sink.deliveries_of(id.as_str()).await?.iter().map(delivery_step));
    }
    // One time axis; pending steps (and simulator rows written before they
    // were dated) keep their lane's order after the timed ones.
    steps.sort_by_key(|s| (s.at.is_none(), s.at));
    let rules = crate::emulate::rules::rules()?;
    let events = events
        .iter()
        .filter_map(|e| {
            let version = e.event_id.rsplit('#').next()?.parse().ok()?;
            let entry = shop_app::ports::BusEntry {
                source: e.source.clone(),
                detail_type: e.detail_type.clone(),
                detail: e.detail.clone(),
                trace_header: None,
            };
            let envelope = crate::emulate::bus::envelope(&e.event_id, &entry, &e.occurred_at.to_rfc3339(), None);
            let consumers =
                crate::emulate::rules::consumers_for(&rules, &envelope).into_iter().map(str::to_owned).collect();
            Some(EventRef { version, detail_type: e.detail_type.clone(), consumers })
        })
        .collect();
    Ok(Some(OrderSaga {
        order,
        payment,
        declined,
        problems,
        events,
        steps,
        money,
        ledger,
        pg_payments,
        simulated: pg.is_some(),
    }))
}

fn consumer_step(o: &Outcome) -> Step {
    Step {
        at: Some(o.at.millis()),
        lane: Lane::Consumer,
        actor: format!("{} ← {}", o.consumer, o.detail_type),
        state: match o.status.as_str() {
            "DONE" => State::Done,
            "SKIPPED" => State::Skipped,
            // Claimed by a delivery that is handling it (or died doing so
            // and will be retried once its lease lapses).
            "RUNNING" => State::Pending,
            _ => State::Failed,
        },
        text: format!(
            "attempts {}{}: {}",
            o.attempts,
            if o.dead_lettered_at.is_some() { ", dead-lettered" } else { "" },
            o.detail.as_deref().unwrap_or("")
        ),
    }
}

fn pg_call_step(c: &Call) -> Step {
    let failed = matches!(c.outcome.as_str(), "error" | "declined" | "unauthorized");
    Step {
        at: c.at,
        lane: Lane::Pg,
        actor: format!("{:?}", c.op).to_lowercase(),
        state: if failed { State::Failed } else { State::Done },
        text: format!("{} (correlation {})", c.outcome, c.correlation_id.as_deref().unwrap_or("-")),
    }
}

fn delivery_step(d: &Delivery) -> Step {
    Step {
        at: d.at,
        lane: Lane::DataPlatform,
        actor: d.detail_type.clone(),
        state: if d.status == 200 { if d.duplicate { State::Skipped } else { State::Done } } else { State::Failed },
        text: format!("attempt {}, answered {}{}", d.attempt, d.status, if d.duplicate { " (duplicate)" } else { "" }),
    }
}
