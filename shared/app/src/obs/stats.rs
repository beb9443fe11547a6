//! The saga statistics (docs/adr/0017): what the console's overview
//! charts, kept per minute in the store as the saga runs.
//!
//! Two writers, each at the one place its fact happens:
//! - the stream publisher, when the bus accepts an event from its INSERT
//!   stream record ([`count_published`]): the event by type, the order leaving one
//!   status and entering another, and for `OrderPaid` the time from
//!   placement to payment;
//! - every PG call, through [`App::pg`](crate::App::pg) ([`Counted`]):
//!   calls, declines, failures (outcome unknown) and their time, held in
//!   the process for up to a second and written together ([`PgCounts`]).
//!
//! Counting never fails the work it counts: a lost counter update is
//! logged and dropped. An event is counted at its INSERT record, never at
//! a republish (a MODIFY) or a replay; a stream batch delivered again after
//! the publisher failed part of it can count an event twice (docs/adr/0024).

use crate::App;
use crate::ports::{PgCancel, PgError, PgPayment};
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

/// How the saga is doing now, for the waiting room's adaptive admission
/// (ADR 0027): the p99 time to settle of this minute and the last (the
/// upper bound of its bucket), and the oldest unpublished event's age as
/// last sampled (locally; AWS has no such gauge in the table, so there the
/// time to settle alone decides). One range read of the statistics.
pub async fn saga_health(app: &App) -> Result<shop_domain::sale::Health, shop_store::StoreError> {
    let now = app.clock.now();
    let minutes = app.store.stats().between(now.plus_secs(-60), now).await?;
    let mut settled = Values::new();
    for v in minutes.values() {
        for (k, n) in v.iter().filter(|(k, _)| k.starts_with(SETTLE)) {
            *settled.entry(k.clone()).or_default() += *n;
        }
    }
    let age = minutes.values().rev().find_map(|v| v.get(OUTBOX_AGE_MS).copied());
    Ok(shop_domain::sale::Health {
        settle_p99_ms: settle_quantile(&settled, 0.99).map(|ms| u64::try_from(ms).unwrap_or(u64::MAX)),
        oldest_unpublished_ms: age.map(|ms| u64::try_from(ms).unwrap_or(0)),
    })
}

/// An event the bus accepted, as its outbox item describes it.
#[derive(Debug, Clone)]
pub struct Published {
    pub detail_type: String,
    /// The aggregate (order id, or a claim's key): the first event's picks its batch's shard.
    pub aggregate: String,
    pub occurred_at: Timestamp,
    pub status_from: Option<String>,
    pub status_to: Option<String>,
    pub placed_at: Option<Timestamp>,
}

/// Counts events at their first publication, each in the minute it
/// occurred: one counter update per minute the batch touches (and one to
/// the totals), not one per event. A batch writes to one shard, its first
/// event's: batches spread over the shards as their events do, and the
/// readers add the shards up (docs/adr/0025).
pub async fn count_published(app: &App, events: &[Published]) {
    type Group = (BTreeMap<String, i64>, BTreeMap<String, i64>);
    let mut groups: BTreeMap<(i64, u32), Group> = BTreeMap::new();
    let shard = events.first().map(|e| shop_store::keys::shard(&e.aggregate)).unwrap_or(0);
    for e in events {
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

/// `sale.<id>.<what>`: the waiting room's counters per minute (`admitted`,
/// `freed`, `expired` sessions) and gauges (`active`, `rate` in
/// hundredths of an admission per second) of the console's Sales page.
pub fn sale_stat(sale: &shop_domain::SaleId, what: &str) -> String {
    format!("sale.{sale}.{what}")
}

/// Counts a sale's `what` (`admitted`, `freed`, `expired`) by `n` in the
/// minute of now. Never fails the work it counts.
pub async fn count_sale(app: &App, sale: &shop_domain::SaleId, what: &str, n: i64) {
    if n == 0 {
        return;
    }
    let shard = shop_store::keys::shard(sale.as_str());
    let counts = [(sale_stat(sale, what), n)];
    if let Err(error) = app.store.stats().add(app.clock.now(), shard, &counts, &[]).await {
        tracing::warn!(%error, sale_id = %sale, what, "could not count a sale's figure");
    }
}

/// Samples a sale's gauges (slots in use, the admission rate in force).
pub async fn sample_sale(app: &App, sale: &shop_domain::SaleId, active: u64, rate: f64) {
    let rate = (rate * 100.0).round();
    let gauges = [
        (sale_stat(sale, "active"), i64::try_from(active).unwrap_or(i64::MAX)),
        (sale_stat(sale, "rate"), if rate.is_finite() { rate as i64 } else { 0 }),
    ];
    if let Err(error) = app.store.stats().sample(app.clock.now(), &gauges).await {
        tracing::warn!(%error, sale_id = %sale, "could not sample a sale's gauges");
    }
}

/// Pending outbox events (and local queue messages) counted up to this
/// per shard (per queue): a backlog's size is told as "at least", at a
/// bounded cost however deep it is.
pub const PENDING_CAP: i32 = 1_000;

/// How long a PG call's count may wait in [`PgCounts`] before the next
/// call writes it: one counter update per second and process, not one per
/// call (docs/adr/0025).
pub const PG_FLUSH_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The PG calls this process counted and has not written yet, by minute.
/// A call adds to it; the first call (or [`App::flush_stats`]) that finds
/// the oldest count [`PG_FLUSH_AFTER`] old writes them all, one update per
/// minute held (almost always one). Each process writes to its own shard
/// of the minute's counters, chosen when it starts, so processes spread
/// over the shards and none contends with another.
///
/// What this costs: counts wait in memory up to a second while calls keep
/// coming, and after the last call until the next one or a flush. The
/// local stack flushes every second and when it stops; a Lambda execution
/// environment that is shut down after its last call loses that last
/// second's counts (the console's PG panel is a rate, not a ledger).
pub struct PgCounts {
    shard: u32,
    held: std::sync::Mutex<Held>,
}

#[derive(Default)]
struct Held {
    minutes: BTreeMap<i64, BTreeMap<String, i64>>,
    since: Option<std::time::Instant>,
}

impl Default for PgCounts {
    fn default() -> Self {
        // Any value that differs between processes started apart.
        let start = format!("{}:{:?}", std::process::id(), std::time::SystemTime::now());
        Self { shard: shop_store::keys::shard(&start), held: Default::default() }
    }
}

impl PgCounts {
    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        match self.held.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Holds `counts` for the minute of `at` (business time), at `now`
    /// (the process's own clock); answers whether the oldest held count
    /// is due to be written.
    fn add(&self, at: Timestamp, counts: &[(&str, i64)], now: std::time::Instant) -> bool {
        let mut held = self.lock();
        let minute = held.minutes.entry(shop_store::stats::minute_of(at)).or_default();
        for (name, n) in counts {
            *minute.entry((*name).to_owned()).or_default() += n;
        }
        now.saturating_duration_since(*held.since.get_or_insert(now)) >= PG_FLUSH_AFTER
    }

    /// Writes every held count (see [`App::flush_stats`]).
    pub(crate) async fn flush(&self, app: &App) {
        let minutes = {
            let mut held = self.lock();
            held.since = None;
            std::mem::take(&mut held.minutes)
        };
        for (minute, counts) in minutes {
            let counts: Vec<(String, i64)> = counts.into_iter().collect();
            if let Err(error) = app.store.stats().add(Timestamp::from_millis(minute), self.shard, &counts, &[]).await {
                tracing::warn!(%error, "could not count PG calls");
            }
        }
    }
}

/// The app's PG client, counting every call (see [`App::pg`](crate::App::pg)).
pub struct Counted<'a> {
    pub(crate) app: &'a App,
}

impl Counted<'_> {
    async fn count<T>(&self, call: impl Future<Output = Result<T, PgError>>) -> Result<T, PgError> {
        let started = std::time::Instant::now();
        let result = call.await;
        let ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let outcome = match &result {
            Ok(_) | Err(PgError::AlreadyProcessed | PgError::NotFound) => None,
            Err(PgError::Declined { .. }) => Some(PG_DECLINED),
            Err(PgError::Unknown(_)) => Some(PG_FAILED),
        };
        let mut counts = vec![(PG_CALLS, 1), (PG_MS, ms)];
        counts.extend(outcome.map(|name| (name, 1)));
        if self.app.pg_counts.add(self.app.clock.now(), &counts, std::time::Instant::now()) {
            self.app.pg_counts.flush(self.app).await;
        }
        result
    }

    pub async fn confirm(&self, key: &PaymentKey, order: &OrderId, amount: Money) -> Result<PgPayment, PgError> {
        self.count(self.app.gateway.confirm(key, order, amount)).await
    }

    pub async fn cancel(&self, key: &PaymentKey, cancel: &PgCancel) -> Result<PgPayment, PgError> {
        self.count(self.app.gateway.cancel(key, cancel)).await
    }

    pub async fn payment(&self, key: &PaymentKey) -> Result<PgPayment, PgError> {
        self.count(self.app.gateway.payment(key)).await
    }

    pub async fn payment_by_order(&self, order: &OrderId) -> Result<PgPayment, PgError> {
        self.count(self.app.gateway.payment_by_order(order)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_counts_are_held_a_second_and_merged_by_minute() {
        let counts = PgCounts::default();
        let t0 = std::time::Instant::now();
        let at = Timestamp::from_millis(1_795_219_200_000);
        assert!(!counts.add(at, &[(PG_CALLS, 1), (PG_MS, 30)], t0), "the first count waits");
        assert!(!counts.add(at.plus_secs(59), &[(PG_CALLS, 1), (PG_DECLINED, 1)], t0 + PG_FLUSH_AFTER / 2));
        assert!(counts.add(at.plus_secs(60), &[(PG_CALLS, 1)], t0 + PG_FLUSH_AFTER), "a second after the first");
        let held = counts.lock();
        let minutes: Vec<(i64, Vec<(&str, i64)>)> = held
            .minutes
            .iter()
            .map(|(m, c)| (m - at.millis(), c.iter().map(|(k, v)| (k.as_str(), *v)).collect()))
            .collect();
        assert_eq!(
            minutes,
            vec![(0, vec![(PG_CALLS, 2), (PG_DECLINED, 1), (PG_MS, 30)]), (60_000, vec![(PG_CALLS, 1)])]
        );
    }

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
