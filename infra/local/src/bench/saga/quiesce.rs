//! Quiescence: after the load, the run waits until every order is settled
//! ([`check::settlement`]), nothing is pending publication and every
//! consumer's queue is empty — and only then are invariants checked. A
//! check made while a refund is still queued would read a PG capture
//! without a PAID order; that is work in flight, not a broken promise.
//!
//! **How long it waits** is derived from the settle rate it measures, not
//! guessed: the bound is the stall window plus twice the time the backlog
//! left after the first pass takes at the rate measured since (re-estimated
//! every pass). It stops earlier if nothing settles for a whole stall
//! window. What is still unsettled then is reported as **unsettled**, with
//! the reason for a few of them ([`check::unsettled_because`]), and is
//! never checked as if it were done.
//!
//! The observer reads through its own client, but on the same engine as
//! the saga: each pass reads only an order's item until the order is
//! terminal, and the pause between passes is four times the pass, so the
//! observer takes at most a fifth of the time it observes. Settle times
//! come from the stored timestamps, so observing late changes no figure.

use super::check::{self, Settled};
use super::{SCHEDULE, client};
use crate::emulate::queue::{Queues, dlq_of};
use crate::emulate::rules::Rules;
use futures::StreamExt;
use shop_domain::OrderId;
use shop_store::Store;
use std::time::{Duration, Instant};

/// How long quiescence may take.
#[derive(Clone, Copy)]
pub struct Wait<'a> {
    /// Give up when nothing settled (and no queue moved) for this long.
    pub stall: Duration,
    /// Redrive the consumers' DLQs once the stack is otherwise idle (the
    /// chaos soak, as an operator would); without it a dead letter stays
    /// where it is and the checks report it.
    pub redrive: Option<&'a crate::Stack>,
}

/// Where quiescence ended.
pub struct Quiet {
    pub settled: Vec<Settled>,
    /// Orders not settled at the bound, by plan index.
    pub unsettled: Vec<(usize, OrderId)>,
    /// Seconds quiescence took.
    pub secs: f64,
    /// The bound it had when it ended (seconds from its start).
    pub bound_secs: f64,
    /// Messages redriven from the DLQs.
    pub redriven: usize,
}

/// Waits for quiescence (see the module's doc) over the orders `placed`.
pub async fn quiesce(
    observer: &Store,
    rules: &Rules,
    placed: Vec<(usize, OrderId)>,
    wait: Wait<'_>,
    progress: &crate::bench::progress::Reporter,
) -> anyhow::Result<Quiet> {
    let started = Instant::now();
    let (mut settled, mut unsettled) = (Vec::with_capacity(placed.len()), placed);
    let (mut redriven, mut last_move, mut last_queued) = (0, Instant::now(), usize::MAX);
    // The rate is measured from the end of the first pass: that pass finds
    // everything that settled during the load at once.
    let mut first: Option<(Instant, usize, usize)> = None;
    let mut bound = wait.stall;
    loop {
        let pass = Instant::now();
        let before = settled.len();
        let (done, left) = settle_pass(observer, rules, std::mem::take(&mut unsettled)).await?;
        settled.extend(done);
        unsettled = left;
        let queued = in_flight(observer).await?;
        let dead = dead_letters(observer).await?;
        if settled.len() > before || queued != last_queued {
            last_move = Instant::now();
        }
        last_queued = queued;
        let (rate, eta) = match first {
            None => {
                first = Some((Instant::now(), settled.len(), unsettled.len()));
                (None, None)
            }
            Some((at, n, backlog)) => {
                let rate = (settled.len() - n) as f64 / at.elapsed().as_secs_f64().max(1e-3);
                if rate > 0.0 {
                    let need = Duration::from_secs_f64(2.0 * backlog as f64 / rate);
                    bound = (at - started) + need + wait.stall;
                }
                (Some(rate), (rate > 0.0).then(|| unsettled.len() as f64 / rate))
            }
        };
        progress.update(settled.len() as u64, || {
            let mut line = format!("{} settled, {} backlog, {queued} queued", settled.len(), unsettled.len());
            if let Some(r) = rate {
                line.push_str(&format!(", {r:.0}/s"));
            }
            if let Some(e) = eta {
                line.push_str(&format!(", ~{e:.0}s left"));
            }
            line.push_str(&format!(" (bound {:.0}s)", bound.as_secs_f64()));
            if redriven > 0 {
                line.push_str(&format!(", {redriven} redriven"));
            }
            line
        });
        let idle = queued == 0;
        if unsettled.is_empty() && idle && (dead == 0 || wait.redrive.is_none()) {
            break;
        }
        if started.elapsed() >= bound || last_move.elapsed() >= wait.stall {
            break;
        }
        if let (true, true, Some(stack)) = (idle, dead > 0, wait.redrive) {
            for consumer in shop_app::events::consumers::NAMES {
                redriven += crate::ops::dlq_redrive(&stack.app, consumer).await?;
            }
            last_move = Instant::now();
        }
        tokio::time::sleep(SCHEDULE.max(pass.elapsed() * 4)).await;
    }
    Ok(Quiet { settled, unsettled, secs: started.elapsed().as_secs_f64(), bound_secs: bound.as_secs_f64(), redriven })
}

/// One pass over `orders`: those settled, and those not (yet).
async fn settle_pass(
    observer: &Store,
    rules: &Rules,
    orders: Vec<(usize, OrderId)>,
) -> anyhow::Result<(Vec<Settled>, Vec<(usize, OrderId)>)> {
    let pass: Vec<_> = futures::stream::iter(orders)
        .map(|(index, id)| async move {
            let done = async {
                let Some(order) = observer.orders().get(&id).await? else { return anyhow::Ok(None) };
                if !check::terminal(order.status) {
                    return Ok(None);
                }
                let events = observer.outbox().events_of(&id).await?;
                let outcomes = observer.saga().outcomes_of(&id).await?;
                Ok(check::settlement(rules, &order, &events, &outcomes))
            }
            .await;
            (index, id, done)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let (mut settled, mut unsettled) = (Vec::new(), Vec::new());
    for (index, id, done) in pass {
        match done? {
            Some(s) => settled.push(s),
            None => unsettled.push((index, id)),
        }
    }
    Ok((settled, unsettled))
}

/// Events pending publication plus messages in the consumers' queues
/// (the first page of each: "is anything moving", not an exact count).
async fn in_flight(observer: &Store) -> anyhow::Result<usize> {
    let mut n = observer.outbox().pending(25).await?.len();
    for consumer in shop_app::events::consumers::NAMES {
        n += Queues(observer).list(consumer).await?.len();
    }
    Ok(n)
}

/// Messages in the consumers' DLQs.
pub async fn dead_letters(observer: &Store) -> anyhow::Result<usize> {
    let mut dead = 0;
    for consumer in shop_app::events::consumers::NAMES {
        dead += Queues(observer).list(&dlq_of(consumer)).await?.len();
    }
    Ok(dead)
}

/// Nothing pending publication and every consumer's queue empty.
pub async fn idle(observer: &Store) -> anyhow::Result<bool> {
    Ok(in_flight(observer).await? == 0)
}

/// At most this many unsettled orders are explained in a report.
const EXPLAINED: usize = 5;

/// Why the first few unsettled orders are not settled.
pub async fn explain(observer: &Store, rules: &Rules, unsettled: &[(usize, OrderId)]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for (index, id) in unsettled.iter().take(EXPLAINED) {
        let why = match observer.orders().get(id).await? {
            Some(order) => {
                let (events, outcomes) =
                    (observer.outbox().events_of(id).await?, observer.saga().outcomes_of(id).await?);
                check::unsettled_because(rules, &order, &events, &outcomes)
            }
            None => "gone".into(),
        };
        out.push(format!("order #{index} {id}: {why}"));
    }
    Ok(out)
}

/// The orders the shoppers placed, by plan index.
pub fn placed(runs: &[client::Run]) -> Vec<(usize, OrderId)> {
    runs.iter()
        .filter_map(|r| r.order_id.as_deref().and_then(|id| OrderId::parse(id).ok()).map(|id| (r.index, id)))
        .collect()
}
