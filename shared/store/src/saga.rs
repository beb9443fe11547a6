//! The saga log the production code keeps beside the orders: what each
//! consumer did with each event (`OUTCOME#` items under the order, shown by
//! `GET /orders/{id}/timeline`), and the per-day event log in the `byDue`
//! index that `shop republish --since` reads, with the pending mark that
//! makes the stream publisher send an event again.

use crate::attr::{get_n, get_s, key, n, opt_s, s};
use crate::{Store, StoreError, keys};
use shop_domain::Timestamp;

/// The status of an outcome whose handling failed (it is retried, and
/// after the queue's receive limit it waits in the DLQ).
pub const FAILED: &str = "FAILED";

/// A consumer's failure, as the list of orders with failing consumers shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub order_id: String,
    pub outcome: Outcome,
}

/// An outbox event's attribute the console searches the event log by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventField {
    /// The status the event moved its order into.
    StatusTo,
    /// The correlation id of the request (or run) that wrote it.
    CorrelationId,
}

/// What one consumer did with one event (the saga log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub consumer: String,
    pub event_id: String,
    pub detail_type: String,
    pub status: String,
    pub attempts: u32,
    pub detail: Option<String>,
    pub at: Timestamp,
}

impl Store {
    /// Records one consumer's handling of one event, counting attempts.
    pub async fn outcome_put(&self, order: &shop_domain::OrderId, version: u64, o: &Outcome) -> Result<(), StoreError> {
        self.outcome_write(order, version, o, false).await
    }

    /// Records `o` unless the consumer already recorded the event DONE or
    /// SKIPPED: a duplicate delivery of work whose first record was lost
    /// (the process died between completing it and recording it) fills
    /// the gap without overwriting what the first handling said.
    pub async fn outcome_put_if_unfinished(
        &self,
        order: &shop_domain::OrderId,
        version: u64,
        o: &Outcome,
    ) -> Result<(), StoreError> {
        self.outcome_write(order, version, o, true).await
    }

    async fn outcome_write(
        &self,
        order: &shop_domain::OrderId,
        version: u64,
        o: &Outcome,
        if_unfinished: bool,
    ) -> Result<(), StoreError> {
        let (pk, _) = keys::order(order);
        let update = self.client().update_item();
        let update = if if_unfinished {
            update
                .condition_expression("attribute_not_exists(#status) OR NOT (#status IN (:done, :skipped))")
                .expression_attribute_values(":done", s("DONE"))
                .expression_attribute_values(":skipped", s("SKIPPED"))
        } else {
            update
        };
        // A FAILED outcome is listed in `byDue` (`FAILED#n`) until the
        // consumer records the event DONE or SKIPPED.
        let failed = o.status == FAILED;
        let listed = if failed { ", dueShard = :failedShard, dueAt = :at" } else { " REMOVE dueShard, dueAt" };
        let update = if failed {
            update.expression_attribute_values(":failedShard", s(keys::failed_shard(order)))
        } else {
            update
        };
        let res = update
            .table_name(self.table())
            .set_key(Some(key(pk, keys::outcome_sk(version, &o.consumer))))
            .update_expression(format!(
                "SET #type = :t, #consumer = :c, #eventId = :e, #detailType = :d, #status = :s, #at = :at, \
                 #detail = :detail, #attempts = if_not_exists(#attempts, :zero) + :one{listed}"
            ))
            .expression_attribute_names("#type", "type")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#consumer", "consumer")
            .expression_attribute_names("#eventId", "eventId")
            .expression_attribute_names("#detailType", "detailType")
            .expression_attribute_names("#at", "at")
            .expression_attribute_names("#detail", "detail")
            .expression_attribute_names("#attempts", "attempts")
            .expression_attribute_values(":t", s("OUTCOME"))
            .expression_attribute_values(":c", s(o.consumer.clone()))
            .expression_attribute_values(":e", s(o.event_id.clone()))
            .expression_attribute_values(":d", s(o.detail_type.clone()))
            .expression_attribute_values(":s", s(o.status.clone()))
            .expression_attribute_values(":at", n(o.at.millis()))
            .expression_attribute_values(":detail", s(o.detail.clone().unwrap_or_default()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(StoreError::Unexpected(anyhow::Error::new(e).context("UpdateItem outcome"))),
        }
    }

    /// Events a consumer failed on and has not done since, newest first, at
    /// most `limit` per shard: one bounded query per shard of `byDue`.
    pub async fn consumer_failures(&self, limit: i32) -> Result<Vec<Failure>, StoreError> {
        let mut out = Vec::new();
        for shard in 0..keys::SHARDS {
            let res = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(keys::GSI_DUE)
                .key_condition_expression("dueShard = :shard")
                .expression_attribute_values(":shard", s(format!("{}#{shard}", keys::FAILED_PREFIX)))
                .scan_index_forward(false)
                .limit(limit)
                .send()
                .await
                .map_err(|e| StoreError::Unexpected(anyhow::Error::new(e).context("Query consumer failures")))?;
            for it in res.items() {
                let order_id = get_s(it, "pk")?.strip_prefix("ORDER#").unwrap_or_default().to_owned();
                out.push(Failure { order_id, outcome: outcome_from(it)? });
            }
        }
        out.sort_by_key(|f| std::cmp::Reverse(f.outcome.at));
        Ok(out)
    }

    /// Events that moved an order into `status` (`statusTo`), newest first
    /// ([`Store::events_where`]).
    pub async fn events_entering(
        &self,
        status: &str,
        now: Timestamp,
        days: i64,
        want: usize,
        read_cap: i32,
    ) -> Result<(Vec<crate::entities::StoredEvent>, bool), StoreError> {
        self.events_where(EventField::StatusTo, status, now, days, want, read_cap).await
    }

    /// Outbox events whose `field` is `value`, newest first, from the event
    /// log of the last `days` days: each day's partitions are read newest
    /// first with the value as a filter, evaluating at most `read_cap`
    /// items in all — a bounded read, whatever the history, and no index
    /// of its own to write with every event (docs/adr/0017). Answers the
    /// events found (at most `want`) and whether the cap cut the search short.
    pub async fn events_where(
        &self,
        field: EventField,
        value: &str,
        now: Timestamp,
        days: i64,
        want: usize,
        read_cap: i32,
    ) -> Result<(Vec<crate::entities::StoredEvent>, bool), StoreError> {
        let attribute = match field {
            EventField::StatusTo => "statusTo",
            EventField::CorrelationId => "correlationId",
        };
        let mut found = Vec::new();
        let mut budget = read_cap;
        for d in 0..days {
            let day = now.plus_secs(-d * 86_400);
            // Every partition of the day, each to `want` matches: newest first across them.
            for partition in keys::event_log_partitions(day) {
                let mut start = None;
                let before = found.len();
                loop {
                    if budget <= 0 {
                        return Ok((sorted_newest(found, want), true));
                    }
                    let res = self
                        .client()
                        .query()
                        .table_name(self.table())
                        .index_name(keys::GSI_DUE)
                        .key_condition_expression("dueShard = :d")
                        .filter_expression("#field = :v")
                        .expression_attribute_names("#field", attribute)
                        .expression_attribute_values(":d", s(partition.as_str()))
                        .expression_attribute_values(":v", s(value))
                        .scan_index_forward(false)
                        .limit(budget.min(500))
                        .set_exclusive_start_key(start)
                        .send()
                        .await
                        .map_err(|e| StoreError::Unexpected(anyhow::Error::new(e).context("Query the event log")))?;
                    budget -= res.scanned_count;
                    for it in res.items() {
                        found.push(crate::entities::stored_event_from(it)?);
                    }
                    start = res.last_evaluated_key;
                    if start.is_none() || found.len() - before >= want {
                        break;
                    }
                }
            }
            if found.len() >= want {
                break;
            }
        }
        Ok((sorted_newest(found, want), false))
    }

    /// The consumers' outcomes for an order, by event version.
    pub async fn outcomes_of(&self, order: &shop_domain::OrderId) -> Result<Vec<Outcome>, StoreError> {
        let (pk, _) = keys::order(order);
        let items = self.query_prefix(&pk, keys::OUTCOME_PREFIX).await?;
        items.iter().map(outcome_from).collect()
    }

    /// Outbox events written since `since` (from the event log in the
    /// `byDue` index: per day, every shard and the legacy unsharded
    /// partition), oldest first. Holds the range in memory: for small
    /// ranges; [`Store::event_log`] reads any range a page at a time.
    pub async fn events_since(
        &self,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<crate::entities::StoredEvent>, StoreError> {
        let mut out = Vec::new();
        for mut pages in self.event_log(since, now)? {
            while let Some(page) = pages.next_page().await? {
                for it in &page {
                    out.push(crate::entities::stored_event_from(it)?);
                }
            }
        }
        // The shards interleave in time; an order's events keep their order.
        out.sort_by(|a, b| (a.occurred_at, &a.pk, &a.sk).cmp(&(b.occurred_at, &b.pk, &b.sk)));
        Ok(out)
    }

    /// The event log since `since`: one paged query per day and partition,
    /// each oldest first (items: [`crate::entities::stored_event_from`]).
    pub fn event_log(&self, since: Timestamp, now: Timestamp) -> Result<Vec<crate::Pages>, StoreError> {
        if now.millis().saturating_sub(since.millis()) > (crate::entities::EVENT_RETENTION_SECS + 86_400) * 1000 {
            return Err(StoreError::Unexpected(anyhow::anyhow!("outbox items are kept 30 days; use a later --since")));
        }
        let mut queries = Vec::new();
        let mut d = Timestamp::from_millis(since.millis() - since.millis().rem_euclid(86_400_000));
        while d <= now {
            for partition in keys::event_log_partitions(d) {
                queries.push(crate::Pages::of(
                    self.client()
                        .query()
                        .table_name(self.table())
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

    /// Makes an event pending (again), so the publisher sends it once more.
    /// The write always changes the item (`republishes` counts them): an
    /// update that leaves an item as it was writes no stream record, and an
    /// event the publisher gave up on is still pending, with these very
    /// values — without the count, republishing it would send nothing.
    pub async fn mark_pending(&self, e: &crate::entities::StoredEvent) -> Result<(), StoreError> {
        let order = keys::aggregate_of(&e.pk);
        let res = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(e.pk.clone(), e.sk.clone())))
            .update_expression("SET outboxShard = :shard, outboxSk = :sk ADD republishes :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":shard", s(keys::outbox_shard_of(order)))
            .expression_attribute_values(":sk", s(format!("{:013}#{}", e.occurred_at.millis(), e.event_id)))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(StoreError::Unexpected(anyhow::Error::new(e).context("UpdateItem mark_pending"))),
        }
    }
}

fn outcome_from(it: &crate::attr::Item) -> Result<Outcome, StoreError> {
    Ok(Outcome {
        consumer: get_s(it, "consumer")?.to_owned(),
        event_id: get_s(it, "eventId")?.to_owned(),
        detail_type: get_s(it, "detailType")?.to_owned(),
        status: get_s(it, "status")?.to_owned(),
        attempts: get_n(it, "attempts")?,
        detail: opt_s(it, "detail").filter(|d| !d.is_empty()).map(str::to_owned),
        at: Timestamp::from_millis(get_n(it, "at")?),
    })
}

fn sorted_newest(mut events: Vec<crate::entities::StoredEvent>, want: usize) -> Vec<crate::entities::StoredEvent> {
    events.sort_by_key(|e| std::cmp::Reverse(e.occurred_at));
    events.truncate(want);
    events
}
