//! The consumers' queues as the console sees them, wherever they live: the
//! local stack's durable queues in the store, or a deployed stack's SQS
//! queues (from its outputs). Pages ask here and never know which.

use shop_domain::OrderId;

use super::ConsoleState;
use crate::emulate::queue::{Queues, dlq_of};
use crate::ops::{self, CONSUMERS, DlqEntry};

/// DLQ messages read per consumer (a peek: nothing is consumed).
pub const PEEK: usize = 20;
/// Messages counted per local queue (a backlog's size; SQS counts itself).
const COUNT_CAP: i32 = shop_app::obs::stats::PENDING_CAP;

/// A count of messages: exact up to a cap locally, SQS's approximation on AWS.
#[derive(Debug, Clone, Copy)]
pub struct Depth {
    pub messages: u64,
    /// Counting stopped at the cap (or SQS says some are in flight).
    pub more: bool,
}

impl std::fmt::Display for Depth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.messages, if self.more { "+" } else { "" })
    }
}

/// One consumer's queue and DLQ.
pub struct QueueState {
    pub consumer: &'static str,
    pub depth: Depth,
    /// Age of the oldest message, ms (the local stack only: SQS tells it
    /// through CloudWatch, which the dashboard shows).
    pub oldest_ms: Option<i64>,
    pub dlq_depth: Depth,
    pub dlq_oldest_ms: Option<i64>,
    /// The oldest [`PEEK`] messages of the DLQ.
    pub dead: Vec<DlqEntry>,
}

/// Every consumer's queue and DLQ.
pub async fn states(state: &ConsoleState) -> anyhow::Result<Vec<QueueState>> {
    // Queue messages are dated by the wall clock (SQS's, or the local
    // emulation's), not the app's (a test's may be manual).
    let now = shop_app::clock::Clock::now(&shop_app::clock::SystemClock).millis();
    let mut out = Vec::new();
    for c in CONSUMERS {
        let s = match &state.stack {
            Some(stack) => {
                let (visible, in_flight) = stack.queue_depth(c, false).await?;
                let (dead_visible, dead_in_flight) = stack.queue_depth(c, true).await?;
                let dead = crate::deployed::dlq_list(stack, Some(c), PEEK).await?;
                let oldest = dead.iter().filter_map(|d| shop_domain::Timestamp::parse_rfc3339(&d.sent_at)).min();
                QueueState {
                    consumer: c,
                    depth: Depth { messages: visible + in_flight, more: false },
                    oldest_ms: None,
                    dlq_depth: Depth { messages: dead_visible + dead_in_flight, more: false },
                    dlq_oldest_ms: oldest.map(|t| now - t.millis()),
                    dead,
                }
            }
            None => {
                let queues = Queues(&state.app.store);
                let (live, _) = queues.peek(c, 1).await?;
                let (dead, _) = queues.peek(&dlq_of(c), PEEK).await?;
                let depth = queues.depth(c, COUNT_CAP).await?;
                let dlq_depth = queues.depth(&dlq_of(c), COUNT_CAP).await?;
                QueueState {
                    consumer: c,
                    depth: Depth { messages: depth as u64, more: depth >= COUNT_CAP as usize },
                    oldest_ms: live.first().map(|m| now - m.sent_at.millis()),
                    dlq_depth: Depth { messages: dlq_depth as u64, more: dlq_depth >= COUNT_CAP as usize },
                    dlq_oldest_ms: dead.first().map(|m| now - m.sent_at.millis()),
                    dead: dead.iter().map(|m| ops::describe(c, m)).collect(),
                }
            }
        };
        out.push(s);
    }
    Ok(out)
}

/// Each queue's depth now, by queue name (`<consumer>` and `<consumer>-dlq`).
pub async fn depths(state: &ConsoleState) -> anyhow::Result<Vec<(String, Depth)>> {
    let mut out = Vec::new();
    for c in CONSUMERS {
        for dlq in [false, true] {
            let name = if dlq { dlq_of(c) } else { c.to_string() };
            let depth = match &state.stack {
                Some(stack) => {
                    let (visible, in_flight) = stack.queue_depth(c, dlq).await?;
                    Depth { messages: visible + in_flight, more: false }
                }
                None => {
                    let n = Queues(&state.app.store).depth(&name, COUNT_CAP).await?;
                    Depth { messages: n as u64, more: n >= COUNT_CAP as usize }
                }
            };
            out.push((name, depth));
        }
    }
    Ok(out)
}

/// Moves a consumer's DLQ back to its queue; answers how many moved.
pub async fn redrive(state: &ConsoleState, consumer: &str) -> anyhow::Result<u64> {
    match &state.stack {
        Some(stack) => Ok(crate::deployed::dlq_redrive(stack, consumer).await?.moved),
        None => Ok(ops::dlq_redrive(&state.app, consumer).await? as u64),
    }
}

/// Sends one event of an order to one consumer's queue, as the bus
/// delivers it, when that consumer's rule takes it ([`crate::bulk::replay_one`]).
pub async fn replay_event(
    state: &ConsoleState,
    order: &OrderId,
    version: u64,
    consumer: &str,
) -> anyhow::Result<Option<String>> {
    crate::bulk::replay_one(place(state), order, version, consumer).await
}

/// Where this console's actions act.
pub fn place(state: &ConsoleState) -> crate::bulk::Place<'_> {
    crate::bulk::Place { app: &state.app, stack: state.stack.as_deref() }
}
