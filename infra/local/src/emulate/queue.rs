//! Durable queues and the event archive — the local stack's stand-ins for
//! SQS and the EventBridge archive — stored in the same table through the
//! same SDK client, so they survive `kill -9` exactly as the orders do. Only
//! the local stack links this; in AWS, SQS and EventBridge do the job.
//!
//! A message is `QUEUE#<queue>` / `MSG#<id>`. While it can be received it is
//! in the `byDue` index under `dueShard = QUEUE#<queue>` at `dueAt` = the
//! time it becomes visible. Receiving claims it with a conditional update
//! that bumps `receiveCount` and hides it until `now + visibility` (SQS's
//! visibility timeout); the receive count is the receipt handle, so only the
//! current receiver can delete it. A DLQ is a queue named `<queue>-dlq`
//! whose messages are never in the index (nothing consumes a DLQ; operators
//! redrive it).

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use shop_domain::Timestamp;
use shop_store::attr::{Item, get_n, get_s, item, key, n, opt_s, s};
use shop_store::{Store, StoreError, Tx, TxItem, TxOp, keys, schema};

/// Archived events are kept this long (as an EventBridge archive's retention).
pub const ARCHIVE_RETENTION_SECS: i64 = 30 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub queue: String,
    pub id: String,
    pub body: String,
    pub receive_count: u32,
    pub sent_at: Timestamp,
    pub last_error: Option<String>,
}

pub fn dlq_of(queue: &str) -> String {
    format!("{queue}-dlq")
}

fn message_item(
    queue: &str,
    id: &str,
    body: &str,
    receive_count: u32,
    sent_at: Timestamp,
    visible_at: Option<Timestamp>,
) -> Item {
    let (pk, sk) = keys::queue_message(queue, id);
    let mut it = item([
        ("pk", s(pk)),
        ("sk", s(sk)),
        ("type", s("QMSG")),
        ("queue", s(queue)),
        ("messageId", s(id)),
        ("body", s(body)),
        ("receiveCount", n(receive_count)),
        ("sentAt", n(sent_at.millis())),
    ]);
    if let Some(v) = visible_at {
        it.insert("dueShard".into(), s(keys::queue_shard(queue)));
        it.insert("dueAt".into(), n(v.millis()));
    }
    it
}

/// A new message for `queue`, visible at once, with its id.
pub fn new_message(queue: &str, body: &str, now: Timestamp) -> (String, Item) {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let it = message_item(queue, &id, body, 0, now, Some(now));
    (id, it)
}

/// An archive entry of the bus event `event` (JSON text).
pub fn archive_item(event_id: &str, detail_type: &str, event: &str, now: Timestamp) -> Item {
    let sk = format!("{:013}#{event_id}#{}", now.millis(), uuid::Uuid::now_v7().simple());
    item([
        ("pk", s(keys::archive(now))),
        ("sk", s(sk)),
        ("type", s("ARCHIVED")),
        ("eventId", s(event_id)),
        ("detailType", s(detail_type)),
        ("event", s(event)),
        ("at", n(now.millis())),
        (schema::TTL_ATTRIBUTE, n(now.seconds() + ARCHIVE_RETENTION_SECS)),
    ])
}

fn message_from(it: &Item) -> anyhow::Result<Message> {
    Ok(Message {
        queue: get_s(it, "queue")?.to_owned(),
        id: get_s(it, "messageId")?.to_owned(),
        body: get_s(it, "body")?.to_owned(),
        receive_count: get_n(it, "receiveCount")?,
        sent_at: Timestamp::from_millis(get_n(it, "sentAt")?),
        last_error: opt_s(it, "lastError").map(str::to_owned),
    })
}

/// One archived bus event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    pub at: Timestamp,
    pub event_id: String,
    pub detail_type: String,
    /// The EventBridge event as JSON.
    pub event: String,
}

/// Deletes `m` only if nobody received it again since (its receive count).
fn receiver_delete(table: &str, m: &Message) -> Result<Delete, StoreError> {
    Delete::builder()
        .table_name(table)
        .set_key(Some(message_key(m)))
        .condition_expression("receiveCount = :rc")
        .expression_attribute_values(":rc", n(m.receive_count))
        .build()
        .map_err(|e| StoreError::Unexpected(e.into()))
}

fn message_key(m: &Message) -> Item {
    let (pk, sk) = keys::queue_message(&m.queue, &m.id);
    key(pk, sk)
}

/// The local queues and archive, kept in the shared table:
/// `Queues(&app.store).queue_send(...)`.
pub struct Queues<'a>(pub &'a Store);

impl std::ops::Deref for Queues<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        self.0
    }
}

impl Queues<'_> {
    /// Enqueues `body`, visible at once.
    pub async fn send(&self, queue: &str, body: &str, now: Timestamp) -> Result<String, StoreError> {
        let (id, it) = new_message(queue, body, now);
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(it))
            .send()
            .await
            .map_err(|e| StoreError::Unexpected(anyhow::Error::new(e).context("PutItem queue")))?;
        Ok(id)
    }

    /// Claims up to `max` visible messages, hiding each for `visibility(receive_count)`.
    pub async fn receive(
        &self,
        queue: &str,
        now: Timestamp,
        max: i32,
        visibility: impl Fn(u32) -> i64,
    ) -> Result<Vec<Message>, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(keys::GSI_DUE)
            .key_condition_expression("dueShard = :q AND dueAt <= :now")
            .expression_attribute_values(":q", s(keys::queue_shard(queue)))
            .expression_attribute_values(":now", n(now.millis()))
            .limit(max)
            .send()
            .await
            .map_err(|e| StoreError::Unexpected(anyhow::Error::new(e).context("Query queue")))?;
        let mut claimed = Vec::new();
        for it in out.items.unwrap_or_default() {
            let mut m = message_from(&it)?;
            let next = m.receive_count + 1;
            let res = self
                .client()
                .update_item()
                .table_name(self.table())
                .set_key(Some(key(keys::queue_message(queue, &m.id).0, keys::queue_message(queue, &m.id).1)))
                .update_expression("SET receiveCount = :next, dueAt = :hidden")
                .condition_expression("receiveCount = :rc AND attribute_exists(dueShard)")
                .expression_attribute_values(":next", n(next))
                .expression_attribute_values(":rc", n(m.receive_count))
                .expression_attribute_values(":hidden", n(now.millis() + visibility(next)))
                .send()
                .await;
            match res {
                Ok(_) => {
                    m.receive_count = next;
                    claimed.push(m);
                }
                // Another receiver claimed it first.
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(StoreError::Unexpected(anyhow::Error::new(e).context("claiming message"))),
            }
        }
        Ok(claimed)
    }

    /// When the next message of `queue` becomes visible (now or past for one
    /// waiting already); `None` for an empty queue. One item of the index.
    pub async fn next_due(&self, queue: &str) -> Result<Option<Timestamp>, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(keys::GSI_DUE)
            .key_condition_expression("dueShard = :q")
            .expression_attribute_values(":q", s(keys::queue_shard(queue)))
            .limit(1)
            .send()
            .await
            .map_err(|e| StoreError::Unexpected(anyhow::Error::new(e).context("Query queue")))?;
        match out.items().first() {
            Some(it) => Ok(Some(Timestamp::from_millis(get_n(it, "dueAt").map_err(StoreError::Unexpected)?))),
            None => Ok(None),
        }
    }

    /// Deletes a processed message; only its current receiver can.
    pub async fn delete(&self, m: &Message) -> Result<(), StoreError> {
        let res = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(message_key(m)))
            .condition_expression("receiveCount = :rc")
            .expression_attribute_values(":rc", n(m.receive_count))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(StoreError::Unexpected(anyhow::Error::new(e).context("deleting message"))),
        }
    }

    /// Deletes processed messages in one call: a transaction of conditional
    /// deletes (BatchWriteItem cannot carry the "only its current receiver"
    /// condition). If any message was received again meanwhile, the
    /// transaction is cancelled and each is deleted on its own, so the others
    /// still go.
    pub async fn delete_all(&self, messages: &[Message]) -> Result<(), StoreError> {
        for chunk in messages.chunks(shop_store::tx::MAX_ACTIONS) {
            let mut tx = Tx::new();
            for m in chunk {
                tx.push(TxOp {
                    item: TransactWriteItem::builder().delete(receiver_delete(self.table(), m)?).build(),
                    label: TxItem::Message(m.id.clone()),
                });
            }
            match self.transact(tx).await {
                Ok(()) => {}
                Err(StoreError::Conflict { .. }) => {
                    for m in chunk {
                        self.delete(m).await?;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Records why the last attempt failed (shown by `shop dlq list`).
    pub async fn note_error(&self, m: &Message, error: &str) -> Result<(), StoreError> {
        let _ = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(message_key(m)))
            .update_expression("SET lastError = :e")
            .condition_expression("receiveCount = :rc")
            .expression_attribute_values(":e", s(error.chars().take(1000).collect::<String>()))
            .expression_attribute_values(":rc", n(m.receive_count))
            .send()
            .await;
        Ok(())
    }

    /// Moves a message from its queue to `to`, atomically. `visible`: whether
    /// it can be received there (false for a DLQ).
    pub async fn move_message(
        &self,
        m: &Message,
        to: &str,
        now: Timestamp,
        visible: bool,
        reset: bool,
    ) -> Result<(), StoreError> {
        let delete = receiver_delete(self.table(), m)?;
        let mut moved = message_item(
            to,
            &m.id,
            &m.body,
            if reset { 0 } else { m.receive_count },
            m.sent_at,
            visible.then_some(now),
        );
        if let (Some(e), false) = (&m.last_error, reset) {
            moved.insert("lastError".into(), s(e.clone()));
        }
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(moved))
            .build()
            .map_err(|e| StoreError::Unexpected(e.into()))?;
        let mut tx = Tx::new();
        tx.push(TxOp {
            item: TransactWriteItem::builder().delete(delete).build(),
            label: TxItem::Message(m.id.clone()),
        });
        tx.push(TxOp { item: TransactWriteItem::builder().put(put).build(), label: TxItem::Message(m.id.clone()) });
        self.transact(tx).await
    }

    /// The `limit` oldest messages of a queue, and whether there are more:
    /// one bounded query, whatever the queue's depth.
    pub async fn peek(&self, queue: &str, limit: usize) -> Result<(Vec<Message>, bool), StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
            .expression_attribute_values(":pk", s(keys::queue_shard(queue)))
            .expression_attribute_values(":p", s("MSG#"))
            .limit(i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| StoreError::Unexpected(anyhow::Error::new(e).context("Query queue")))?;
        let mut messages: Vec<Message> =
            out.items().iter().map(message_from).collect::<anyhow::Result<_>>().map_err(StoreError::Unexpected)?;
        let more = messages.len() > limit;
        messages.truncate(limit);
        Ok((messages, more))
    }

    /// How many messages a queue holds, counted up to `cap` (a backlog's
    /// size, one count query).
    pub async fn depth(&self, queue: &str, cap: i32) -> Result<usize, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
            .expression_attribute_values(":pk", s(keys::queue_shard(queue)))
            .expression_attribute_values(":p", s("MSG#"))
            .select(aws_sdk_dynamodb::types::Select::Count)
            .limit(cap)
            .send()
            .await
            .map_err(|e| StoreError::Unexpected(anyhow::Error::new(e).context("Query queue depth")))?;
        Ok(usize::try_from(out.count).unwrap_or(0))
    }

    /// Every message of a queue (a DLQ included), oldest first.
    pub async fn list(&self, queue: &str) -> Result<Vec<Message>, StoreError> {
        let items = self.query_prefix(&keys::queue_shard(queue), "MSG#").await?;
        items.iter().map(message_from).collect::<anyhow::Result<_>>().map_err(StoreError::Unexpected)
    }

    /// Archived events with `from <= at < to`, oldest first, in memory: for
    /// small ranges ([`Self::archive`] reads any range a page at a time).
    pub async fn archived_between(&self, from: Timestamp, to: Timestamp) -> Result<Vec<Archived>, StoreError> {
        let mut out = Vec::new();
        for mut pages in self.archive(from, to)? {
            while let Some(page) = pages.next_page().await? {
                out.extend(archived_in(&page, from, to)?);
            }
        }
        Ok(out)
    }

    /// Archived events with `from <= at < to`: one paged query per day
    /// (the archive's partition), oldest first; [`archived_in`] reads a
    /// page. A range is at most the retention (30 days) long.
    pub fn archive(&self, from: Timestamp, to: Timestamp) -> Result<Vec<shop_store::Pages>, StoreError> {
        if to.millis().saturating_sub(from.millis()) > (ARCHIVE_RETENTION_SECS + 86_400) * 1000 {
            return Err(StoreError::Unexpected(anyhow::anyhow!("a replay range is at most 31 days")));
        }
        let mut queries = Vec::new();
        let mut d = Timestamp::from_millis(from.millis() - from.millis().rem_euclid(86_400_000));
        while d < to {
            // Sort keys start with the archive time: the range is a key condition.
            queries.push(shop_store::Pages::of(
                self.client()
                    .query()
                    .table_name(self.table())
                    .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                    .expression_attribute_values(":pk", s(keys::archive(d)))
                    .expression_attribute_values(":from", s(format!("{:013}", from.millis())))
                    .expression_attribute_values(":to", s(format!("{:013}", to.millis()))),
            ));
            d = d.plus_secs(86_400);
        }
        Ok(queries)
    }
}

/// The archived events of one page with `from <= at < to`.
pub fn archived_in(page: &[Item], from: Timestamp, to: Timestamp) -> Result<Vec<Archived>, StoreError> {
    let mut out = Vec::with_capacity(page.len());
    for it in page {
        let at = Timestamp::from_millis(get_n(it, "at")?);
        if at >= from && at < to {
            out.push(Archived {
                at,
                event_id: get_s(it, "eventId")?.to_owned(),
                detail_type: get_s(it, "detailType")?.to_owned(),
                event: get_s(it, "event")?.to_owned(),
            });
        }
    }
    Ok(out)
}
