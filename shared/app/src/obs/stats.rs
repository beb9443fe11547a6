//! The saga statistics (docs/adr/0017): what the console's overview
//! charts, kept per minute in the store as the saga runs.
//!
//! Two writers, each at the one place its fact happens:
//! - the stream publisher, when the bus accepts an event from its INSERT
//!   stream record ([`count_published`]): the event by type, the order leaving one
//!   status and entering another, and for `OrderPaid` the time from
//!   placement to payment;
//! - every PG call, through [`App::pg`](crate::App::pg) ([`Counted`]):
//!   calls, declines, failures (outcome unknown) and their time.
//!
//! Counting never fails the work it counts: a lost counter update is
//! logged and dropped. An event is counted at its INSERT record, never at
//! a republish (a MODIFY) or a replay; a stream batch delivered again after
//! the publisher failed part of it can count an event twice (docs/adr/0024).

use crate::App;
use crate::ports::{PgError, PgPayment};
use shop_domain::{Money, OrderId, PaymentKey, Timestamp};
use shop_store::stats::Values;
use std::collections::BTreeMap;

/// `e.<DetailType>`: events published, by type.
pub const EVENTS: &str = "e.";
/// `s.<STATUS>`: orders entering (+1) and leaving (−1) a status.
pub const STATUS: &str = "s.";
/// `settle.<nn>`: orders paid, by time from placement ([`SETTLE_BOUNDS_MS`]).
pub const SETTLE: &str = "settle.";
pub const PG_CALLS: &str = "pg.calls";
pub const PG_DECLINED: &str = "pg.declined";
/// PG calls whose outcome is unknown (timeouts, transport errors, 5xx).
pub const PG_FAILED: &str = "pg.failed";
/// Summed time of the PG calls, ms.
pub const PG_MS: &str = "pg.ms";
/// Sampled gauges: `q.<queue>` messages waiting (DLQs by their own name),
/// the oldest pending outbox event's age and how many are pending.
pub const QUEUE: &str = "q.";
pub const OUTBOX_AGE_MS: &str = "outbox.ageMs";
pub const OUTBOX_PENDING: &str = "outbox.pending";

/// Upper bounds (ms) of the time-to-settle buckets; the last is open.
pub const SETTLE_BOUNDS_MS: [i64; 15] = [
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    30_000,
    60_000,
    300_000,
    900_000,
    3_600_000,
    21_600_000,
    86_400_000,
    i64::MAX,
];

/// The bucket name of a time to settle.
pub fn settle_bucket(ms: i64) -> String {
    let i = SETTLE_BOUNDS_MS.iter().position(|b| ms <= *b).unwrap_or(SETTLE_BOUNDS_MS.len() - 1);
    format!("{SETTLE}{i:02}")
}

/// The `q`-quantile of the time-to-settle buckets in `v`, as the upper
/// bound of its bucket (`None` without data; `i64::MAX` past the last bound).
pub fn settle_quantile(v: &Values, q: f64) -> Option<i64> {
    let counts: Vec<i64> =
        (0..SETTLE_BOUNDS_MS.len()).map(|i| v.get(&format!("{SETTLE}{i:02}")).copied().unwrap_or(0).max(0)).collect();
    let total: i64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let want = ((total as f64) * q).ceil().max(1.0) as i64;
    let mut seen = 0;
    for (count, bound) in counts.iter().zip(SETTLE_BOUNDS_MS) {
        seen += count;
        if seen >= want {
            return Some(bound);
        }
    }
    SETTLE_BOUNDS_MS.last().copied()
}

/// An event the bus accepted, as its outbox item describes it.
#[derive(Debug, Clone)]
pub struct Published {
    pub detail_type: String,
    /// The aggregate (order id, or a claim's key): picks the shard.
    pub aggregate: String,
    pub occurred_at: Timestamp,
    pub status_from: Option<String>,
    pub status_to: Option<String>,
    pub placed_at: Option<Timestamp>,
}

/// Counts events at their first publication, each in the minute it
/// occurred: one counter update per minute and shard the batch touches
/// (and one to that shard's totals), not one per event.
pub async fn count_published(app: &App, events: &[Published]) {
    type Group = (BTreeMap<String, i64>, BTreeMap<String, i64>);
    let mut groups: BTreeMap<(i64, u32), Group> = BTreeMap::new();
    for e in events {
        let shard = shop_store::keys::shard(&e.aggregate);
        let (counts, deltas) = groups.entry((shop_store::stats::minute_of(e.occurred_at), shard)).or_default();
        *counts.entry(format!("{EVENTS}{}", e.detail_type)).or_default() += 1;
        if e.detail_type == "OrderPaid"
            && let Some(placed) = e.placed_at
        {
            *counts.entry(settle_bucket(e.occurred_at.millis().saturating_sub(placed.millis()))).or_default() += 1;
        }
        if e.status_from != e.status_to {
            if let Some(s) = &e.status_from {
                *deltas.entry(format!("{STATUS}{s}")).or_default() -= 1;
            }
            if let Some(s) = &e.status_to {
                *deltas.entry(format!("{STATUS}{s}")).or_default() += 1;
            }
        }
    }
    for ((minute, shard), (counts, deltas)) in groups {
        let counts: Vec<(String, i64)> = counts.into_iter().collect();
        let deltas: Vec<(String, i64)> = deltas.into_iter().filter(|(_, n)| *n != 0).collect();
        let at = Timestamp::from_millis(minute);
        if let Err(error) = app.store.stats().add(at, shard, &counts, &deltas).await {
            tracing::warn!(%error, events = counts.len(), "could not count published events");
        }
    }
}

/// Pending outbox events (and local queue messages) counted up to this
/// per shard (per queue): a backlog's size is told as "at least", at a
/// bounded cost however deep it is.
pub const PENDING_CAP: i32 = 1_000;

/// The app's PG client, counting every call (see [`App::pg`](crate::App::pg)).
pub struct Counted<'a> {
    pub(crate) app: &'a App,
}

impl Counted<'_> {
    async fn count<T>(&self, subject: &str, call: impl Future<Output = Result<T, PgError>>) -> Result<T, PgError> {
        let started = std::time::Instant::now();
        let result = call.await;
        let ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let mut counts = vec![(PG_CALLS.to_owned(), 1), (PG_MS.to_owned(), ms)];
        match &result {
            Ok(_) | Err(PgError::AlreadyProcessed | PgError::NotFound) => {}
            Err(PgError::Declined { .. }) => counts.push((PG_DECLINED.to_owned(), 1)),
            Err(PgError::Unknown(_)) => counts.push((PG_FAILED.to_owned(), 1)),
        }
        let at = self.app.clock.now();
        if let Err(error) = self.app.store.stats().add(at, shop_store::keys::shard(subject), &counts, &[]).await {
            tracing::warn!(%error, "could not count a PG call");
        }
        result
    }

    pub async fn confirm(&self, key: &PaymentKey, order: &OrderId, amount: Money) -> Result<PgPayment, PgError> {
        self.count(key.as_str(), self.app.gateway.confirm(key, order, amount)).await
    }

    pub async fn cancel(&self, key: &PaymentKey, reason: &str, amount: Option<Money>) -> Result<PgPayment, PgError> {
        self.count(key.as_str(), self.app.gateway.cancel(key, reason, amount)).await
    }

    pub async fn payment(&self, key: &PaymentKey) -> Result<PgPayment, PgError> {
        self.count(key.as_str(), self.app.gateway.payment(key)).await
    }

    pub async fn payment_by_order(&self, order: &OrderId) -> Result<PgPayment, PgError> {
        self.count(order.as_str(), self.app.gateway.payment_by_order(order)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_the_upper_bounds_of_their_buckets() {
        let mut v = Values::new();
        assert_eq!(settle_quantile(&v, 0.5), None);
        for (ms, n) in [(80, 50), (400, 45), (40_000, 5)] {
            *v.entry(settle_bucket(ms)).or_default() += n;
        }
        assert_eq!(settle_quantile(&v, 0.5), Some(100));
        assert_eq!(settle_quantile(&v, 0.95), Some(500));
        assert_eq!(settle_quantile(&v, 0.99), Some(60_000));
        assert_eq!(settle_bucket(i64::MAX), "settle.14");
        assert_eq!(settle_bucket(0), "settle.00");
    }
}
