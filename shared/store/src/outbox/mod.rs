//! The outbox and the event log: events pending publication (the
//! `pendingOutbox` index), marking them published or pending again, an
//! order's events, and the per-day event log in `byDue` that `shop
//! republish --since` and the console's searches read. The item's format
//! is [`codec`]'s alone.

pub mod codec;

pub use codec::{Before, EventField, StoredEvent};

use crate::attr::{key, n, s};
use crate::error::{Result, StoreError};
use crate::io::Pages;
use crate::tx::{TxItem, TxOp, put};
use crate::{Store, keys};
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use shop_domain::campaign::CouponIssued;
use shop_domain::{OrderEvent, OrderId, Timestamp};

/// What a search of the event log found.
#[derive(Debug, Clone)]
pub struct Searched {
    /// Newest first.
    pub events: Vec<StoredEvent>,
    /// The read stopped at this time: the events are every match newer
    /// than it (none at or before it was answered); `None` when the whole
    /// window was read.
    pub complete_after: Option<Timestamp>,
}

/// A stretch of the event log: `after <= occurredAt <= before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub after: Timestamp,
    pub before: Timestamp,
}

impl Window {
    /// The event log's longest window a search reads (its partitions are
    /// per day: a longer one reads more partitions, each bounded).
    pub const MAX_DAYS: i64 = 31;

    /// The `days` days up to `now`.
    pub fn last_days(now: Timestamp, days: i64) -> Window {
        Window { after: now.plus_secs(-days.max(0) * 86_400), before: now }
    }

    /// The days whose partitions hold the window, newest first (at most
    /// [`Window::MAX_DAYS`] + 1 of them).
    fn days(self) -> impl Iterator<Item = Timestamp> {
        const DAY_MS: i64 = 86_400_000;
        let first = self.before.millis().div_euclid(DAY_MS);
        let last = self.after.millis().div_euclid(DAY_MS).max(first - Self::MAX_DAYS);
        (last..=first).rev().map(|d| Timestamp::from_millis(d * DAY_MS))
    }
}

/// The outbox of every aggregate (see [`Store::outbox`]).
#[derive(Clone, Copy)]
pub struct Outbox<'a>(pub(crate) &'a Store);

impl Outbox<'_> {
    /// The outbox item of an order's `event`, in the transaction of the
    /// change it describes; its key is the event's, so it is written once.
    pub fn op_put(
        &self,
        event: &OrderEvent,
        correlation_id: &str,
        traceparent: Option<&str>,
        before: &Before,
    ) -> anyhow::Result<TxOp> {
        self.op_put_stored(&codec::order_event(event, correlation_id, traceparent, before)?)
    }

    /// A claim's `CouponIssued` outbox event.
    pub fn op_put_coupon_issued(&self, event: &CouponIssued, at: Timestamp) -> anyhow::Result<TxOp> {
        self.op_put_stored(&codec::coupon_issued(event, at)?)
    }

    fn op_put_stored(&self, e: &StoredEvent) -> anyhow::Result<TxOp> {
        put(self.0.table(), codec::to_item(e), "attribute_not_exists(pk)", TxItem::Event(e.event_id.clone()))
    }

    /// The outbox event at this key (from a stream record's keys), if any.
    pub async fn event_at(&self, pk: &str, sk: &str) -> Result<Option<StoredEvent>> {
        let item = self.0.get((pk.to_owned(), sk.to_owned())).await?;
        Ok(item.filter(codec::is_event).as_ref().map(codec::from_item).transpose()?)
    }

    /// The events of an aggregate's partition (an order's, a claim's), in version order.
    pub async fn events_in(&self, pk: &str) -> Result<Vec<StoredEvent>> {
        let items = self.0.query_prefix(pk, codec::SK_PREFIX).await?;
        Ok(items.iter().map(codec::from_item).collect::<anyhow::Result<_>>()?)
    }

    /// An order's events, in version order.
    pub async fn events_of(&self, order: &OrderId) -> Result<Vec<StoredEvent>> {
        self.events_in(&keys::order(order).0).await
    }

    /// Events not yet published, oldest first within each shard.
    pub async fn pending(&self, limit_per_shard: i32) -> Result<Vec<StoredEvent>> {
        let condition = format!("{} = :shard", codec::PENDING_SHARD);
        let items =
            self.0.query_shards(keys::GSI_OUTBOX, &condition, keys::OUTBOX_PREFIX, None, limit_per_shard).await?;
        let mut events = items.iter().map(codec::from_item).collect::<anyhow::Result<Vec<_>>>()?;
        events.sort_by(|a, b| (a.occurred_at, &a.event_id).cmp(&(b.occurred_at, &b.event_id)));
        Ok(events)
    }

    /// How many events wait for the publisher (counted up to `cap` per
    /// shard: a backlog, never the history), whether a shard reached the
    /// cap (the count is then a floor), and when the oldest was written.
    pub async fn pending_summary(&self, cap: i32) -> Result<(usize, bool, Option<Timestamp>)> {
        let mut count = 0usize;
        let mut capped = false;
        for shard in 0..keys::SHARDS {
            let out = self
                .0
                .client()
                .query()
                .table_name(self.0.table())
                .index_name(keys::GSI_OUTBOX)
                .key_condition_expression(format!("{} = :shard", codec::PENDING_SHARD))
                .expression_attribute_values(":shard", s(format!("{}#{shard}", keys::OUTBOX_PREFIX)))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .limit(cap)
                .send()
                .await
                .map_err(StoreError::unexpected("Query pending count"))?;
            count += usize::try_from(out.count).unwrap_or(0);
            capped |= out.count >= cap;
        }
        let oldest = self.pending(1).await?.first().map(|e| e.occurred_at);
        Ok((count, capped, oldest))
    }

    /// The local stack's stream emulation, after the publisher took
    /// `events` (their keys): they leave the pending index, and
    /// `publishedAt` dates their first hand-over (kept through republishes;
    /// the console's outbox lane). One TransactWriteItems per
    /// [`MAX_ACTIONS`](crate::tx::MAX_ACTIONS) events, not one call per
    /// event. When a batch's call fails (an item gone meanwhile, TTL;
    /// throttling) its events are cleared one by one, and a gone item is
    /// never recreated. A republish that lands between the publisher's read
    /// and this clear is cleared with it: the event went out after the
    /// republish was asked for. Only the emulation calls this: on AWS the
    /// table's stream delivers every write and nothing clears anything
    /// (docs/adr/0024).
    pub async fn clear_pending(&self, events: &[(String, String)], now: Timestamp) -> Result<()> {
        let clear = |(pk, sk): &(String, String)| -> anyhow::Result<TxOp> {
            let update = Update::builder()
                .table_name(self.0.table())
                .set_key(Some(key(pk.as_str(), sk.as_str())))
                .update_expression(codec::MARK_PUBLISHED)
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":now", n(now.millis()))
                .build()?;
            Ok(TxOp {
                item: TransactWriteItem::builder().update(update).build(),
                label: TxItem::Event(format!("{pk} {sk}")),
            })
        };
        for chunk in events.chunks(crate::tx::MAX_ACTIONS) {
            let mut tx = crate::tx::Tx::new();
            for event in chunk {
                tx.push(clear(event)?);
            }
            let Err(error) = self.0.transact(tx).await else { continue };
            tracing::debug!(%error, events = chunk.len(), "clearing one by one");
            for event in chunk {
                let mut one = crate::tx::Tx::new();
                one.push(clear(event)?);
                match self.0.transact(one).await {
                    Ok(()) | Err(StoreError::Conflict { reason: crate::tx::ConflictReason::ConditionFailed, .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Makes an event pending (again), so the publisher sends it once more.
    /// The write always changes the item (`republishes` counts them): an
    /// update that leaves an item as it was writes no stream record, and an
    /// event the publisher gave up on is still pending, with these very
    /// values — without the count, republishing it would send nothing.
    pub async fn mark_pending(&self, e: &StoredEvent) -> Result<()> {
        let (shard, sort) = codec::pending_values(e);
        let res = self
            .0
            .client()
            .update_item()
            .table_name(self.0.table())
            .set_key(Some(key(e.pk.clone(), e.sk.clone())))
            .update_expression(codec::MARK_PENDING)
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":shard", shard)
            .expression_attribute_values(":sk", sort)
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(StoreError::unexpected("UpdateItem mark_pending")(e)),
        }
    }

    /// Events that moved an order into `status` (`statusTo`), newest first
    /// ([`Outbox::search`]).
    pub async fn entering(
        &self,
        status: &str,
        now: Timestamp,
        days: i64,
        want: usize,
        read_cap: i32,
    ) -> Result<(Vec<StoredEvent>, bool)> {
        self.search(EventField::StatusTo, status, now, days, want, read_cap).await
    }

    /// Events whose `field` is `value`, newest first, from the event log of
    /// the last `days` days ([`Outbox::search_window`]), and whether the
    /// read cap cut the search short.
    pub async fn search(
        &self,
        field: EventField,
        value: &str,
        now: Timestamp,
        days: i64,
        want: usize,
        read_cap: i32,
    ) -> Result<(Vec<StoredEvent>, bool)> {
        let found = self.search_window(field, value, Window::last_days(now, days), want, read_cap).await?;
        Ok((found.events, found.complete_after.is_some()))
    }

    /// Events whose `field` is `value` written in `window`, newest first —
    /// a bounded read whatever the history, and no index of its own to
    /// write with every event (docs/adr/0017, 0029).
    ///
    /// Each day's partitions are read newest first with the value as a
    /// filter, each until it holds `want` matches or has evaluated its
    /// share of `read_cap` (the cap split evenly over the day's
    /// partitions, at least two each). A partition cut short was read down to some time; the
    /// latest such time over all partitions is where the answer stops being
    /// complete, so only the events after it are answered, and a next read
    /// resumes there (`complete_after`) — nothing is skipped, however the
    /// shards interleave. At most `want` events.
    pub async fn search_window(
        &self,
        field: EventField,
        value: &str,
        window: Window,
        want: usize,
        read_cap: i32,
    ) -> Result<Searched> {
        let attribute = field.attribute();
        let mut found = Vec::new();
        let mut budget = read_cap.max(1);
        // Where the answer stops being complete (exclusive), once a partition is cut.
        let mut cut: Option<i64> = None;
        for day in window.days() {
            if budget <= 0 {
                // Not read at all: complete only down to this day's end.
                let next_day_start = day.millis().div_euclid(86_400_000) * 86_400_000 + 86_400_000 - 1;
                cut = Some(cut.unwrap_or(i64::MIN).max(next_day_start.min(window.before.millis())));
                break;
            }
            let partitions = keys::event_log_partitions(day);
            // At least two a partition: a cut partition then answers its
            // newest, and every read makes progress.
            let share = (budget / i32::try_from(partitions.len()).unwrap_or(1)).max(2);
            for partition in partitions {
                let mut start = None;
                let mut read = 0;
                let mut matched = 0;
                loop {
                    let res = self
                        .0
                        .client()
                        .query()
                        .table_name(self.0.table())
                        .index_name(keys::GSI_DUE)
                        .key_condition_expression("dueShard = :d AND dueAt BETWEEN :from AND :to")
                        .filter_expression("#field = :v")
                        .expression_attribute_names("#field", attribute)
                        .expression_attribute_values(":d", s(partition.as_str()))
                        .expression_attribute_values(":from", n(window.after.millis()))
                        .expression_attribute_values(":to", n(window.before.millis()))
                        .expression_attribute_values(":v", s(value))
                        .scan_index_forward(false)
                        .limit((share - read).clamp(1, 500))
                        .set_exclusive_start_key(start)
                        .send()
                        .await
                        .map_err(StoreError::unexpected("Query the event log"))?;
                    read += res.scanned_count;
                    budget -= res.scanned_count;
                    for it in res.items() {
                        found.push(codec::from_item(it)?);
                        matched += 1;
                    }
                    start = res.last_evaluated_key;
                    let Some(last) = &start else { break };
                    if matched >= want || read >= share {
                        // Cut: read down to the last item evaluated, and no further.
                        let reached = crate::attr::get_n(last, "dueAt").unwrap_or(window.before.millis());
                        cut = Some(cut.unwrap_or(i64::MIN).max(reached));
                        break;
                    }
                }
            }
            // A cut day holds everything newer than the cut: older days cannot add to it.
            if cut.is_some() || found.len() >= want {
                break;
            }
        }
        let mut events: Vec<StoredEvent> =
            found.into_iter().filter(|e| cut.is_none_or(|c| e.occurred_at.millis() > c)).collect();
        events.sort_by_key(|e| std::cmp::Reverse(e.occurred_at));
        events.truncate(want);
        Ok(Searched { events, complete_after: cut.map(Timestamp::from_millis) })
    }

    /// Events written since `since` (from the event log: per day, every
    /// shard and the legacy unsharded partition), oldest first. Holds the
    /// range in memory: for small ranges; [`Outbox::log`] reads any range
    /// a page at a time.
    pub async fn since(&self, since: Timestamp, now: Timestamp) -> Result<Vec<StoredEvent>> {
        let mut out = Vec::new();
        for mut pages in self.log(since, now)? {
            while let Some(page) = pages.next_page().await? {
                for it in &page {
                    out.push(codec::from_item(it)?);
                }
            }
        }
        // The shards interleave in time; an order's events keep their order.
        out.sort_by(|a, b| (a.occurred_at, &a.pk, &a.sk).cmp(&(b.occurred_at, &b.pk, &b.sk)));
        Ok(out)
    }

    /// The event log since `since`: one paged query per day and partition,
    /// each oldest first (items: [`codec::from_item`]).
    pub fn log(&self, since: Timestamp, now: Timestamp) -> Result<Vec<Pages>> {
        if now.millis().saturating_sub(since.millis()) > (codec::EVENT_RETENTION_SECS + 86_400) * 1000 {
            return Err(StoreError::Unexpected(anyhow::anyhow!("outbox items are kept 30 days; use a later --since")));
        }
        let mut queries = Vec::new();
        let mut d = Timestamp::from_millis(since.millis() - since.millis().rem_euclid(86_400_000));
        while d <= now {
            for partition in keys::event_log_partitions(d) {
                queries.push(Pages::of(
                    self.0
                        .client()
                        .query()
                        .table_name(self.0.table())
                        .index_name(keys::GSI_DUE)
                        .key_condition_expression("dueShard = :d AND dueAt >= :since")
                        .expression_attribute_values(":d", s(partition.as_str()))
                        .expression_attribute_values(":since", n(since.millis())),
                ));
            }
            d = d.plus_secs(86_400);
        }
        Ok(queries)
    }
}
