//! The saga statistics the console's overview reads (docs/adr/0017): small
//! counters per minute, written as the saga runs, so a chart over any range
//! reads the minutes of that range — never the orders.
//!
//! - Counters (`ADD`, one `UpdateItem`, never in a transaction: a counter
//!   shared by concurrent writers would make their transactions conflict)
//!   go to the minute's item in one of [`keys::SHARDS`] shards, chosen by
//!   the order or payment they count.
//! - Status deltas (an order leaving one status, entering another) also go
//!   to the shard's running total, so orders per status at any minute is
//!   the total now minus the deltas after it: a read of the range, not of
//!   the history.
//! - Gauges (queue depths, outbox age) are sampled, `SET` on the minute's
//!   gauge item: the last sample of the minute stands.
//!
//! Minute items expire after [`RETENTION_SECS`]; the totals are kept.

use std::collections::BTreeMap;

use crate::attr::{Item, key, n, s};
use crate::{Store, StoreError, keys};

/// The saga statistics (see [`Store::stats`]).
#[derive(Clone, Copy)]
pub struct Stats<'a>(pub(crate) &'a Store);
use shop_domain::Timestamp;

/// How long a minute's statistics are kept.
pub const RETENTION_SECS: i64 = 35 * 86_400;

/// Counter values by name.
pub type Values = BTreeMap<String, i64>;

const MINUTE_MS: i64 = 60_000;

/// The start of the minute of `t`, epoch ms.
pub fn minute_of(t: Timestamp) -> i64 {
    t.millis() - t.millis().rem_euclid(MINUTE_MS)
}

impl Stats<'_> {
    /// Adds `counts` to the minute of `at` in `shard`, and `deltas` to the
    /// minute and to the shard's running totals. A name may be any string.
    pub async fn add(
        &self,
        at: Timestamp,
        shard: u32,
        counts: &[(String, i64)],
        deltas: &[(String, i64)],
    ) -> Result<(), StoreError> {
        let shard = shard % keys::SHARDS;
        let minute: Vec<(String, i64)> = counts.iter().chain(deltas).cloned().collect();
        if !minute.is_empty() {
            let ttl = at.seconds() + RETENTION_SECS;
            self.update(keys::stats_minute(at, &shard.to_string()), "ADD", &minute, Some(ttl)).await?;
        }
        if !deltas.is_empty() {
            self.update(keys::stats_total(shard), "ADD", deltas, None).await?;
        }
        Ok(())
    }

    /// Sets sampled gauges on the minute of `at` (the last sample of a
    /// minute stands).
    pub async fn sample(&self, at: Timestamp, gauges: &[(String, i64)]) -> Result<(), StoreError> {
        if gauges.is_empty() {
            return Ok(());
        }
        let ttl = at.seconds() + RETENTION_SECS;
        self.update(keys::stats_minute(at, keys::STATS_GAUGES), "SET", gauges, Some(ttl)).await
    }

    async fn update(
        &self,
        (pk, sk): (String, String),
        verb: &str,
        values: &[(String, i64)],
        ttl: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut parts = Vec::with_capacity(values.len());
        let mut update = self.0.client().update_item().table_name(self.0.table()).set_key(Some(key(pk, sk)));
        for (i, (name, v)) in values.iter().enumerate() {
            parts.push(if verb == "SET" { format!("#a{i} = :v{i}") } else { format!("#a{i} :v{i}") });
            update = update
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":v{i}"), n(v));
        }
        let mut expression = format!("{verb} {}", parts.join(", "));
        let mut set = vec!["#type = :type".to_owned()];
        if let Some(ttl) = ttl {
            set.push("#ttl = :ttl".to_owned());
            update = update
                .expression_attribute_names("#ttl", crate::schema::TTL_ATTRIBUTE)
                .expression_attribute_values(":ttl", n(ttl));
        }
        if verb == "SET" {
            expression = format!("{expression}, {}", set.join(", "));
        } else {
            expression = format!("SET {} {expression}", set.join(", "));
        }
        update
            .update_expression(expression)
            .expression_attribute_names("#type", "type")
            .expression_attribute_values(":type", s("STATS"))
            .send()
            .await
            .map_err(StoreError::unexpected("UpdateItem stats"))?;
        Ok(())
    }

    /// The statistics of every minute in `[from, to]` (minute start, epoch
    /// ms → values summed over the shards, gauges included): one query per
    /// hour and shard of the range, whatever the history.
    pub async fn between(&self, from: Timestamp, to: Timestamp) -> Result<BTreeMap<i64, Values>, StoreError> {
        let (first, last) = (minute_of(from), minute_of(to));
        let mut partitions = Vec::new();
        let mut hour = first - first.rem_euclid(60 * MINUTE_MS);
        while hour <= last {
            let t = Timestamp::from_millis(hour);
            let shards = (0..keys::SHARDS).map(|n| n.to_string()).chain([keys::STATS_GAUGES.to_owned()]);
            partitions.extend(shards.map(|shard| keys::stats_minute(t, &shard).0));
            hour += 60 * MINUTE_MS;
        }
        // Side by side, 16 at a time (a day's range is 120 queries).
        let reads: Vec<_> = partitions.iter().map(|pk| self.0.query_prefix(pk, keys::STATS_MINUTE_PREFIX)).collect();
        let reads = futures::stream::iter(reads);
        let pages: Vec<Vec<Item>> = futures::TryStreamExt::try_collect(futures::StreamExt::buffered(reads, 16)).await?;
        let mut out: BTreeMap<i64, Values> = BTreeMap::new();
        for (pk, items) in partitions.iter().zip(pages) {
            let Some(hour) = hour_of(pk) else { continue };
            for it in &items {
                let Some(minute) =
                    it.get("sk").and_then(|v| v.as_s().ok()).and_then(|sk| sk.get(1..)?.parse::<i64>().ok())
                else {
                    continue;
                };
                let at = hour + minute * MINUTE_MS;
                if at < first || at > last {
                    continue;
                }
                add_values(out.entry(at).or_default(), it);
            }
        }
        Ok(out)
    }

    /// The running totals over every shard (orders per status, as deltas
    /// summed since the start).
    pub async fn totals(&self) -> Result<Values, StoreError> {
        let wanted = (0..keys::SHARDS).map(keys::stats_total).collect();
        let mut out = Values::new();
        for it in self.0.batch_get(wanted).await? {
            add_values(&mut out, &it);
        }
        Ok(out)
    }
}

/// The hour (epoch ms) a statistics partition key names.
fn hour_of(pk: &str) -> Option<i64> {
    let hour = pk.strip_prefix("STATS#")?.get(..13)?;
    Timestamp::parse_rfc3339(&format!("{hour}:00:00Z")).map(|t| t.millis())
}

fn add_values(into: &mut Values, it: &Item) {
    for (name, v) in it {
        if matches!(name.as_str(), "pk" | "sk" | "type" | crate::schema::TTL_ATTRIBUTE) {
            continue;
        }
        if let Ok(v) = v.as_n().map(|v| v.parse::<i64>().unwrap_or(0)) {
            *into.entry(name.clone()).or_default() += v;
        }
    }
}
