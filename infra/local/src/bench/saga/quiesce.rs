//! Quiescence: after the load, the run waits until every order is settled
//! ([`check::settlement`]), nothing is pending publication and every
//! consumer's queue is empty — and only then are invariants checked. A
//! check made while a refund is still queued would read a PG capture
//! without a PAID order; that is work in flight, not a broken promise.
//!
//! **How long it waits** is derived from the settle rate it measures, not
//! guessed: the bound is the stall window plus twice the time the backlog
//! left after the first pass takes at the rate measured since (re-estimated
//! every pass; [`Deadline`]). It stops earlier if nothing settles and no
//! queue moves for a whole stall window. What is still unsettled then is reported as **unsettled**, with
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
    let (mut redriven, mut last_queued) = (0, usize::MAX);
    let mut deadline = Deadline::new(started, wait.stall);
    loop {
        let pass = Instant::now();
        let before = settled.len();
        let (done, left) = settle_pass(observer, rules, std::mem::take(&mut unsettled)).await?;
        settled.extend(done);
        unsettled = left;
        let queued = in_flight(observer).await?;
        let dead = dead_letters(observer).await?;
        let now = Instant::now();
        if settled.len() > before || queued != last_queued {
            deadline.moved(now);
        }
        last_queued = queued;
        let rate = deadline.observe(now, settled.len(), unsettled.len());
        let eta = rate.filter(|r| *r > 0.0).map(|r| unsettled.len() as f64 / r);
        progress.update(settled.len() as u64, || {
            let mut line = format!("{} settled, {} backlog, {queued} queued", settled.len(), unsettled.len());
            if let Some(r) = rate {
                line.push_str(&format!(", {r:.0}/s"));
            }
            if let Some(e) = eta {
                line.push_str(&format!(", ~{e:.0}s left"));
            }
            if let Some(b) = deadline.bound {
                line.push_str(&format!(" (bound {:.0}s)", b.as_secs_f64()));
            }
            if redriven > 0 {
                line.push_str(&format!(", {redriven} redriven"));
            }
            line
        });
        let idle = queued == 0;
        if unsettled.is_empty() && idle && (dead == 0 || wait.redrive.is_none() || redriven > 0) {
            break;
        }
        if deadline.over(Instant::now()) {
            break;
        }
        // Redriven once: a message that fails again stays in its DLQ and
        // its order unsettled, never redriven round and round.
        if let (true, true, 0, Some(stack)) = (idle, dead > 0, redriven, wait.redrive) {
            for consumer in shop_app::events::consumers::NAMES {
                redriven += crate::ops::dlq_redrive(&stack.app, consumer).await?;
            }
            deadline.moved(Instant::now());
        }
        tokio::time::sleep(SCHEDULE.max(pass.elapsed() * 4)).await;
    }
    let bound = deadline.bound.unwrap_or_else(|| started.elapsed());
    Ok(Quiet { settled, unsettled, secs: started.elapsed().as_secs_f64(), bound_secs: bound.as_secs_f64(), redriven })
}

/// When quiescence gives up: nothing moved for a stall window, or past the
/// bound derived from the settle rate. The rate is measured from the end of
/// the first pass (that pass finds at once everything that settled during
/// the load, and may itself take longer than a stall window on a large
/// backlog), so until a second pass there is no bound, only the stall rule.
#[derive(Debug)]
struct Deadline {
    started: Instant,
    stall: Duration,
    last_move: Instant,
    /// The end of the first pass: when, settled so far, backlog left.
    first: Option<(Instant, usize, usize)>,
    /// From the start of quiescence.
    bound: Option<Duration>,
}

impl Deadline {
    fn new(started: Instant, stall: Duration) -> Deadline {
        Deadline { started, stall, last_move: started, first: None, bound: None }
    }

    /// Something settled or a queue moved.
    fn moved(&mut self, now: Instant) {
        self.last_move = now;
    }

    /// After a pass: the settle rate since the first pass (none after the
    /// first itself), and the bound it gives (twice what the first pass's
    /// backlog needs at that rate, plus the stall window).
    fn observe(&mut self, now: Instant, settled: usize, backlog: usize) -> Option<f64> {
        let Some((at, n, left)) = self.first else {
            self.first = Some((now, settled, backlog));
            return None;
        };
        let rate = settled.saturating_sub(n) as f64 / now.duration_since(at).as_secs_f64().max(1e-3);
        if rate > 0.0 {
            let need = Duration::from_secs_f64(2.0 * left as f64 / rate);
            self.bound = Some(at.duration_since(self.started) + need + self.stall);
        }
        Some(rate)
    }

    fn over(&self, now: Instant) -> bool {
        now.duration_since(self.last_move) >= self.stall
            || self.bound.is_some_and(|b| now.duration_since(self.started) >= b)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// A first pass longer than the stall window that settled work (a
    /// 100,000-order run: 84,000 orders backlogged, a 60 s window) does not
    /// end quiescence: no bound before a rate is measured, and it moved.
    #[test]
    fn a_long_first_pass_does_not_end_the_wait() {
        let t0 = Instant::now();
        let mut d = Deadline::new(t0, 60 * S);
        d.moved(t0 + 80 * S);
        assert_eq!(d.observe(t0 + 80 * S, 16_000, 84_000), None);
        assert!(!d.over(t0 + 81 * S) && d.bound.is_none());
        assert!(d.over(t0 + 140 * S), "the stall rule still holds");
    }

    /// The bound follows the rate: 84,000 left at 100/s needs 840 s, and
    /// twice that plus the stall window is allowed from the first pass.
    #[test]
    fn the_bound_is_twice_what_the_backlog_needs_at_the_measured_rate() {
        let t0 = Instant::now();
        let mut d = Deadline::new(t0, 60 * S);
        d.observe(t0 + 80 * S, 16_000, 84_000);
        let rate = d.observe(t0 + 90 * S, 17_000, 83_000);
        assert_eq!(rate, Some(100.0));
        assert_eq!(d.bound, Some((80 + 1_680 + 60) * S));
        d.moved(t0 + 1_819 * S);
        assert!(!d.over(t0 + 1_819 * S) && d.over(t0 + 1_820 * S));
    }

    /// Nothing settling and no queue moving for a stall window ends it.
    #[test]
    fn a_stall_ends_the_wait() {
        let t0 = Instant::now();
        let mut d = Deadline::new(t0, 60 * S);
        d.observe(t0 + S, 0, 10);
        assert_eq!(d.observe(t0 + 2 * S, 0, 10), Some(0.0));
        assert!(d.bound.is_none() && !d.over(t0 + 59 * S) && d.over(t0 + 60 * S));
    }
}
