//! The saga log the production code keeps beside the orders: what each
//! consumer did with each event (`OUTCOME#` items under the order, shown by
//! `GET /orders/{id}/timeline`), and the consumers' failures listed in
//! `byDue` until they are done. The events themselves are the outbox's
//! ([`crate::outbox`]).
//!
//! The outcome item is also the consumer's idempotency record
//! (docs/adr/0023): [`SagaLog::begin`] claims the event (RUNNING with a
//! lease, one conditional write), [`SagaLog::finish`] records how it ended
//! under that lease. DONE and SKIPPED are for good, so a duplicate, a replay
//! or a redrive of a finished event is recognised at its claim, whenever it
//! comes; a FAILED one, or a RUNNING one whose lease lapsed (its holder
//! died), may be claimed again.

use crate::attr::{get_n, get_s, key, n, opt_s, s};
use crate::{Store, StoreError, keys};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

/// The saga log (see [`Store::saga`]).
#[derive(Clone, Copy)]
pub struct SagaLog<'a>(pub(crate) &'a Store);
use shop_domain::Timestamp;

/// The status of an outcome whose handling failed (it is retried, and
/// after the queue's receive limit it waits in the DLQ).
pub const FAILED: &str = "FAILED";
/// A consumer holds the event under a lease ([`SagaLog::begin`]).
pub const RUNNING: &str = "RUNNING";
pub const DONE: &str = "DONE";
pub const SKIPPED: &str = "SKIPPED";

/// A consumer's hold on one event, from [`SagaLog::begin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pk: String,
    sk: String,
    token: String,
}

/// What [`SagaLog::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// This caller holds the event and must [`SagaLog::finish`] it.
    Claimed(Lease),
    /// The consumer already recorded the event DONE or SKIPPED.
    Finished,
    /// Another delivery holds it under a live lease.
    Busy,
}

/// A consumer's failure, as the list of orders with failing consumers shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub order_id: String,
    pub outcome: Outcome,
}

impl Failure {
    /// The version of the order's event the consumer failed on (its event
    /// id ends `#<version>`).
    pub fn version(&self) -> Option<u64> {
        self.outcome.event_id.rsplit_once('#').and_then(|(_, v)| v.parse().ok())
    }

    /// Where its list sorts it: when it went to the DLQ, or its last attempt.
    pub fn listed_at(&self) -> Timestamp {
        self.outcome.dead_lettered_at.unwrap_or(self.outcome.at)
    }
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
    /// When its message's last allowed receive failed and SQS (or the
    /// local queue) moved it to the DLQ; cleared by the next attempt's
    /// outcome (a redrive, a replay).
    pub dead_lettered_at: Option<Timestamp>,
}

/// What every write of an outcome sets: the event, the consumer, the
/// status (`:s`), when, the detail, and one more attempt.
const OUTCOME_SET: &str = "SET #type = :t, #consumer = :c, #eventId = :e, #detailType = :d, #status = :s, #at = :at, \
     #detail = :detail, #attempts = if_not_exists(#attempts, :zero) + :one";

/// [`OUTCOME_SET`]'s names and values for `o`, with `status` and `detail`.
fn outcome_fields(update: UpdateItemFluentBuilder, o: &Outcome, status: &str, detail: &str) -> UpdateItemFluentBuilder {
    update
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
        .expression_attribute_values(":s", s(status))
        .expression_attribute_values(":at", n(o.at.millis()))
        .expression_attribute_values(":detail", s(detail))
        .expression_attribute_values(":zero", n(0))
        .expression_attribute_values(":one", n(1))
}

impl SagaLog<'_> {
    /// Records one consumer's handling of one event, counting attempts.
    pub async fn put(&self, order: &shop_domain::OrderId, version: u64, o: &Outcome) -> Result<(), StoreError> {
        self.write(order, version, o, false).await
    }

    /// Records `o` unless the consumer already recorded the event DONE or
    /// SKIPPED: a duplicate delivery of work whose first record was lost
    /// (the process died between completing it and recording it) fills
    /// the gap without overwriting what the first handling said.
    pub async fn put_if_unfinished(
        &self,
        order: &shop_domain::OrderId,
        version: u64,
        o: &Outcome,
    ) -> Result<(), StoreError> {
        self.write(order, version, o, true).await
    }

    async fn write(
        &self,
        order: &shop_domain::OrderId,
        version: u64,
        o: &Outcome,
        if_unfinished: bool,
    ) -> Result<(), StoreError> {
        let (pk, _) = keys::order(order);
        let update = self.0.client().update_item();
        let update = if if_unfinished {
            update
                .condition_expression("attribute_not_exists(#status) OR NOT (#status IN (:done, :skipped))")
                .expression_attribute_values(":done", s(DONE))
                .expression_attribute_values(":skipped", s(SKIPPED))
        } else {
            update
        };
        // A FAILED outcome is listed in `byDue` (`FAILED#n`) until the
        // consumer records the event DONE or SKIPPED.
        let failed = o.status == FAILED;
        let listed = if failed {
            ", dueShard = :failedShard, dueAt = :at REMOVE deadLetteredAt"
        } else {
            " REMOVE dueShard, dueAt, deadLetteredAt"
        };
        let update = if failed {
            update.expression_attribute_values(":failedShard", s(keys::failed_shard(order)))
        } else {
            update
        };
        let res = outcome_fields(update, o, &o.status, o.detail.as_deref().unwrap_or_default())
            .table_name(self.0.table())
            .set_key(Some(key(pk, keys::outcome_sk(version, &o.consumer))))
            .update_expression(format!("{OUTCOME_SET}{listed}"))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(StoreError::Unexpected(anyhow::Error::new(e).context("UpdateItem outcome"))),
        }
    }

    /// Claims event `version` of `order` for `o.consumer` (see the module's
    /// doc): one conditional write that makes the outcome RUNNING under a
    /// lease until `now + hold_ms`, counting the attempt. A FAILED outcome
    /// stays listed in `byDue` until it is finished otherwise.
    pub async fn begin(
        &self,
        order: &shop_domain::OrderId,
        version: u64,
        o: &Outcome,
        hold_ms: i64,
    ) -> Result<Begun, StoreError> {
        let (pk, _) = keys::order(order);
        let sk = keys::outcome_sk(version, &o.consumer);
        let token = uuid::Uuid::now_v7().to_string();
        let update = outcome_fields(self.0.client().update_item(), o, RUNNING, "");
        let res = update
            .table_name(self.0.table())
            .set_key(Some(key(pk.clone(), sk.clone())))
            .update_expression(format!("{OUTCOME_SET}, #leaseToken = :token, #leaseUntil = :until"))
            .condition_expression(
                "attribute_not_exists(#status) OR #status = :failed OR (#status = :running AND #leaseUntil < :at)",
            )
            .expression_attribute_names("#leaseToken", "leaseToken")
            .expression_attribute_names("#leaseUntil", "leaseUntil")
            .expression_attribute_values(":running", s(RUNNING))
            .expression_attribute_values(":failed", s(FAILED))
            .expression_attribute_values(":token", s(token.clone()))
            .expression_attribute_values(":until", n(o.at.millis().saturating_add(hold_ms)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let existing = match res {
            Ok(_) => return Ok(Begun::Claimed(Lease { pk, sk, token })),
            Err(e) => match e.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(c) => c.item,
                other => return Err(StoreError::Unexpected(anyhow::Error::new(other).context("UpdateItem begin"))),
            },
        };
        let existing = self.0.returned_or_read(existing, (pk, sk)).await?;
        let status = existing.as_ref().and_then(|it| get_s(it, "status").ok()).unwrap_or_default();
        Ok(if matches!(status, DONE | SKIPPED) { Begun::Finished } else { Begun::Busy })
    }

    /// Records how the claimed event ended (DONE, SKIPPED or FAILED), if
    /// `lease` still holds it; `false` when another delivery took it over
    /// after the lease lapsed (that one records it). FAILED lists the
    /// outcome in `byDue` (`FAILED#n`); anything else takes it off.
    pub async fn finish(
        &self,
        order: &shop_domain::OrderId,
        lease: &Lease,
        status: &str,
        detail: Option<&str>,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let failed = status == FAILED;
        let listed = if failed {
            "SET #status = :s, #at = :at, #detail = :detail, dueShard = :failedShard, dueAt = :at \
             REMOVE #leaseToken, #leaseUntil, deadLetteredAt"
        } else {
            "SET #status = :s, #at = :at, #detail = :detail REMOVE #leaseToken, #leaseUntil, dueShard, dueAt, deadLetteredAt"
        };
        let update = self.0.client().update_item();
        let update = if failed {
            update.expression_attribute_values(":failedShard", s(keys::failed_shard(order)))
        } else {
            update
        };
        let res = update
            .table_name(self.0.table())
            .set_key(Some(key(lease.pk.clone(), lease.sk.clone())))
            .update_expression(listed)
            .condition_expression("#leaseToken = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#at", "at")
            .expression_attribute_names("#detail", "detail")
            .expression_attribute_names("#leaseToken", "leaseToken")
            .expression_attribute_names("#leaseUntil", "leaseUntil")
            .expression_attribute_values(":s", s(status))
            .expression_attribute_values(":at", n(at.millis()))
            .expression_attribute_values(":detail", s(detail.unwrap_or_default()))
            .expression_attribute_values(":token", s(lease.token.clone()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(StoreError::Unexpected(anyhow::Error::new(e).context("UpdateItem finish"))),
        }
    }

    /// `consumer`'s outcome of event `version` of `order` failed on its
    /// message's last allowed receive: the message is in the DLQ now. It
    /// moves to the dead-lettered list (`DEAD#n`), apart from those still
    /// retrying; `false` if the outcome is not FAILED (a later attempt
    /// finished it).
    pub async fn dead_lettered(
        &self,
        order: &shop_domain::OrderId,
        version: u64,
        consumer: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let (pk, _) = keys::order(order);
        let res = self
            .0
            .client()
            .update_item()
            .table_name(self.0.table())
            .set_key(Some(key(pk, keys::outcome_sk(version, consumer))))
            .update_expression("SET deadLetteredAt = :at, dueShard = :dead, dueAt = :at")
            .condition_expression("#status = :failed")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":failed", s(FAILED))
            .expression_attribute_values(":at", n(at.millis()))
            .expression_attribute_values(":dead", s(keys::dead_shard(order)))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(StoreError::Unexpected(anyhow::Error::new(e).context("UpdateItem dead-lettered"))),
        }
    }

    /// Events a consumer failed on, is still retrying, and has not done
    /// since, newest first, at most `limit` per shard: one bounded query per
    /// shard of `byDue`.
    pub async fn failures(&self, limit: i32) -> Result<Vec<Failure>, StoreError> {
        self.listed(keys::FAILED_PREFIX, None, limit).await
    }

    /// Events whose message went to a DLQ and that no later attempt has
    /// done, newest first, at most `limit` per shard.
    pub async fn dead_letters(&self, limit: i32) -> Result<Vec<Failure>, StoreError> {
        self.listed(keys::DEAD_PREFIX, None, limit).await
    }

    /// A page of the retrying (`dead: false`) or dead-lettered failures
    /// from `at_or_before` back (retrying ones by their last attempt,
    /// dead-lettered ones by when they went to the DLQ), newest first, at
    /// most `limit` per shard: one bounded query per shard of `byDue`.
    pub async fn failures_page(
        &self,
        dead: bool,
        at_or_before: Option<Timestamp>,
        limit: i32,
    ) -> Result<Vec<Failure>, StoreError> {
        let prefix = if dead { keys::DEAD_PREFIX } else { keys::FAILED_PREFIX };
        self.listed(prefix, at_or_before, limit).await
    }

    async fn listed(&self, prefix: &str, before: Option<Timestamp>, limit: i32) -> Result<Vec<Failure>, StoreError> {
        let mut out = Vec::new();
        for shard in 0..keys::SHARDS {
            let res = self
                .0
                .client()
                .query()
                .table_name(self.0.table())
                .index_name(keys::GSI_DUE)
                .key_condition_expression("dueShard = :shard AND dueAt <= :before")
                .expression_attribute_values(":shard", s(format!("{prefix}#{shard}")))
                .expression_attribute_values(":before", n(before.map_or(i64::MAX, Timestamp::millis)))
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
        out.sort_by_key(|f| std::cmp::Reverse(f.listed_at()));
        Ok(out)
    }

    /// The consumers' outcomes for an order, by event version.
    pub async fn outcomes_of(&self, order: &shop_domain::OrderId) -> Result<Vec<Outcome>, StoreError> {
        let (pk, _) = keys::order(order);
        let items = self.0.query_prefix(&pk, keys::OUTCOME_PREFIX).await?;
        items.iter().map(outcome_from).collect()
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
        dead_lettered_at: match it.contains_key("deadLetteredAt") {
            true => Some(Timestamp::from_millis(get_n(it, "deadLetteredAt")?)),
            false => None,
        },
    })
}
