//! Acting on many orders at once: what the finder ([`crate::find`]) found,
//! redriven, replayed or asked about at the PG — from the console (with a
//! dry run, a confirmation, progress and a result page) and from `shop
//! bulk` — locally or on a deployed stack, each run one entry of the audit
//! trail naming every order.
//!
//! | action | applies to | does |
//! | --- | --- | --- |
//! | redrive | dead-lettered outcomes | moves exactly their messages from the consumer's DLQ back to its queue (a DLQ cannot be queried by order: its messages are read and those of other orders left in place) |
//! | replay | failing outcomes (retrying or dead-lettered) | sends the event to the consumer's queue now, as the bus delivers it (the consumer dedupes by event id) |
//! | ask-pg | payments in doubt | asks the PG for its record and settles the order as it says — on a deployed stack through its `reconcile-payments` function, so the PG secret stays in AWS |
//!
//! A row the action does not apply to is skipped and counted, never acted
//! on. One target failing does not stop the others; the result names each.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use shop_app::App;
use shop_domain::OrderId;

use crate::deployed::DeployedStack;
use crate::find::{self, Filter, Row};

/// Targets one bulk action takes at most (an audit entry names them all).
pub const MAX_TARGETS: usize = shop_store::audit::MAX_TARGETS;
/// DLQ messages a deployed redrive reads looking for its targets, per
/// consumer, beyond their number.
const SWEEP_SLACK: usize = 1_000;

/// What to do to each target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Redrive,
    Replay,
    AskPg,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Redrive, Action::Replay, Action::AskPg];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Redrive => "redrive",
            Action::Replay => "replay",
            Action::AskPg => "ask-pg",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The audit trail's name of the action.
    pub fn audit_name(self) -> &'static str {
        match self {
            Action::Redrive => "bulk.redrive",
            Action::Replay => "bulk.replay",
            Action::AskPg => "bulk.ask-pg",
        }
    }

    /// What it does, in a sentence, for a confirmation.
    pub fn explain(self) -> &'static str {
        match self {
            Action::Redrive => {
                "Each dead-lettered event's message moves from its consumer's DLQ back to the queue, with a fresh \
                 receive count; messages of other orders stay in the DLQ. The consumer dedupes what it already did."
            }
            Action::Replay => {
                "Each failing event is sent to its consumer's queue again now, as the bus delivers it; the consumer \
                 dedupes by event id. A dead-lettered one's DLQ message stays (redrive or leave it)."
            }
            Action::AskPg => {
                "The PG is asked for each payment's record and the order settled as it says — what the reconciler \
                 does on its run (on a deployed stack, its reconcile-payments function asks). A PG that still \
                 cannot say leaves it in doubt."
            }
        }
    }

    /// Whether the action applies to `row`: its target if so.
    fn target(self, row: &Row) -> Option<Target> {
        let order = row.order.id.clone();
        match self {
            Action::Redrive | Action::Replay => {
                let f = row.failure.as_ref()?;
                if self == Action::Redrive && f.outcome.dead_lettered_at.is_none() {
                    return None;
                }
                Some(Target::Event {
                    order,
                    version: f.version()?,
                    consumer: f.outcome.consumer.clone(),
                    event_id: f.outcome.event_id.clone(),
                })
            }
            Action::AskPg => {
                let p = row.payment.as_ref().filter(|p| p.status.in_doubt())?;
                Some(Target::Payment { order, payment: p.clone() })
            }
        }
    }
}

/// One thing a bulk action acts on.
#[derive(Debug, Clone)]
pub enum Target {
    /// A consumer's outcome of one event of an order.
    Event { order: OrderId, version: u64, consumer: String, event_id: String },
    /// An order's payment in doubt.
    Payment { order: OrderId, payment: shop_domain::Payment },
}

impl Target {
    pub fn order(&self) -> &OrderId {
        match self {
            Target::Event { order, .. } | Target::Payment { order, .. } => order,
        }
    }

    /// As the audit trail and the result name it.
    pub fn label(&self) -> String {
        match self {
            Target::Event { order, version, consumer, .. } => format!("order:{order}#{version}@{consumer}"),
            Target::Payment { order, payment } => format!("order:{order}/payment:{}", payment.payment_key),
        }
    }
}

/// A dry run: what the action would act on.
#[derive(Debug, Clone)]
pub struct Plan {
    pub action: Action,
    pub filter: Filter,
    pub targets: Vec<Target>,
    /// Rows found the action does not apply to.
    pub skipped: usize,
    /// The filter found more than [`MAX_TARGETS`] rows: narrow it and run again.
    pub truncated: bool,
}

/// The dry run of `action` over what `filter` finds.
pub async fn plan(app: &App, filter: &Filter, action: Action) -> Result<Plan, find::FindError> {
    let (rows, truncated) = find::collect(app, filter, MAX_TARGETS).await?;
    let mut targets = Vec::new();
    let mut skipped = 0;
    let mut seen = BTreeSet::new();
    for row in &rows {
        match action.target(row) {
            Some(t) if seen.insert(t.label()) => targets.push(t),
            Some(_) => {}
            None => skipped += 1,
        }
    }
    Ok(Plan { action, filter: filter.clone(), targets, skipped, truncated })
}

/// How far a run has come (shared with a page that shows it).
#[derive(Debug, Default)]
pub struct Progress {
    pub total: AtomicUsize,
    pub done: AtomicUsize,
    pub failed: AtomicUsize,
}

/// What happened to one target.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetResult {
    pub target: String,
    pub order_id: String,
    pub ok: bool,
    pub detail: String,
}

/// The result of a run.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub action: String,
    pub succeeded: usize,
    pub failed: usize,
    pub results: Vec<TargetResult>,
}

impl Report {
    pub fn summary(&self) -> String {
        format!("{} succeeded, {} failed", self.succeeded, self.failed)
    }
}

/// Where a run acts: the local stack's app, or a deployed stack.
#[derive(Clone, Copy)]
pub struct Place<'a> {
    pub app: &'a App,
    pub stack: Option<&'a DeployedStack>,
}

/// Runs `plan`, counting into `progress`.
pub async fn run(place: Place<'_>, plan: &Plan, progress: &Progress) -> anyhow::Result<Report> {
    progress.total.store(plan.targets.len(), Ordering::Relaxed);
    let mut report = Report { action: plan.action.as_str().to_owned(), ..Report::default() };
    let mut record = |t: &Target, outcome: anyhow::Result<String>| {
        let (ok, detail) = match outcome {
            Ok(d) => (true, d),
            Err(e) => (false, format!("{e:#}")),
        };
        let counter = if ok { &progress.done } else { &progress.failed };
        counter.fetch_add(1, Ordering::Relaxed);
        if ok {
            report.succeeded += 1
        } else {
            report.failed += 1
        }
        report.results.push(TargetResult { target: t.label(), order_id: t.order().to_string(), ok, detail });
    };
    match plan.action {
        Action::Redrive => {
            // One pass over each consumer's DLQ for all of its targets.
            let mut by_consumer: BTreeMap<&str, Vec<&Target>> = BTreeMap::new();
            for t in &plan.targets {
                if let Target::Event { consumer, .. } = t {
                    by_consumer.entry(consumer.as_str()).or_default().push(t);
                }
            }
            for (consumer, targets) in by_consumer {
                let wanted: BTreeSet<String> = targets
                    .iter()
                    .filter_map(|t| match t {
                        Target::Event { event_id, .. } => Some(event_id.clone()),
                        Target::Payment { .. } => None,
                    })
                    .collect();
                let moved = match place.stack {
                    Some(stack) => {
                        let cap = wanted.len().saturating_add(SWEEP_SLACK);
                        crate::deployed::dlq_redrive_selected(stack, consumer, &wanted, cap).await
                    }
                    None => crate::ops::dlq_redrive_selected(place.app, consumer, &wanted).await,
                };
                for t in targets {
                    let Target::Event { event_id, .. } = t else { continue };
                    let outcome = match &moved {
                        Ok(m) if m.contains(event_id) => Ok(format!("moved back to {consumer}")),
                        Ok(_) => Err(anyhow::anyhow!("not found in the DLQ of {consumer} (redriven already?)")),
                        Err(e) => Err(anyhow::anyhow!("{e:#}")),
                    };
                    record(t, outcome);
                }
            }
        }
        Action::Replay => {
            for t in &plan.targets {
                let Target::Event { order, version, consumer, .. } = t else { continue };
                let outcome = match replay_one(place, order, *version, consumer).await {
                    Ok(Some(name)) => Ok(format!("sent to {consumer} ({name})")),
                    Ok(None) => Err(anyhow::anyhow!("{consumer}'s rule does not take this event")),
                    Err(e) => Err(e),
                };
                record(t, outcome);
            }
        }
        Action::AskPg => {
            let ids: Vec<String> = plan.targets.iter().map(|t| t.order().to_string()).collect();
            let answers = ask_pg(place, &ids).await?;
            for t in &plan.targets {
                let answer = answers.iter().find(|a| a.order_id == t.order().as_str());
                let outcome = match answer {
                    Some(a) if a.ok => Ok(a.detail.clone()),
                    Some(a) => Err(anyhow::anyhow!("{}", a.detail)),
                    None => Err(anyhow::anyhow!("no answer for this order")),
                };
                record(t, outcome);
            }
        }
    }
    Ok(report)
}

/// Asks the PG about these orders' payments in doubt and settles each as
/// it says ([`ask_pg_orders`](shop_app::usecases::reconcile::ask_pg_orders)):
/// here with the local stack's PG, or on a deployed stack through its
/// `reconcile-payments` function, whose PG secret stays in AWS. The one
/// "ask the PG now", for the console's order page and bulk runs.
pub async fn ask_pg(
    place: Place<'_>,
    order_ids: &[String],
) -> anyhow::Result<Vec<shop_app::usecases::reconcile::AskPgAnswer>> {
    use shop_app::usecases::reconcile::{ASK_MAX, AskPgRequest, ask_pg_orders};
    if let Some(stack) = place.stack {
        return stack.ask_pg(order_ids).await;
    }
    let mut answers = Vec::with_capacity(order_ids.len());
    for chunk in order_ids.chunks(ASK_MAX) {
        answers.extend(ask_pg_orders(place.app, &AskPgRequest { order_ids: chunk.to_vec() }).await?);
    }
    Ok(answers)
}

/// Sends one event of `order` (by version) to one consumer's queue, as the
/// bus delivers it, when that consumer's rule takes it: the replay's name,
/// or `None` when the rule does not. The one replay of one event, for the
/// console's order page, its DLQ rows and bulk replays.
pub async fn replay_one(
    place: Place<'_>,
    order: &OrderId,
    version: u64,
    consumer: &str,
) -> anyhow::Result<Option<String>> {
    let rules = crate::emulate::rules::rules()?;
    match place.stack {
        Some(stack) => {
            let Some((name, event)) = crate::ops::replay_envelope(place.app, &rules, order, version, consumer).await?
            else {
                return Ok(None);
            };
            stack.send_to_queue(consumer, &event).await?;
            Ok(Some(name))
        }
        None => crate::ops::replay_event(place.app, &rules, order, version, consumer).await,
    }
}
