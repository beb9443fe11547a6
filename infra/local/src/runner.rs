//! The local stack's event plumbing, in place of DynamoDB Streams, the
//! stream's event source mapping and the SQS event source mappings:
//!
//! - the publisher loop reads pending outbox items from the `pendingOutbox`
//!   index, wraps them as DynamoDB stream records and calls the same
//!   `stream-publisher` handler the Lambda runs;
//! - one loop per consumer receives from its durable queue, hands the
//!   messages to the same consumer handler as an `SqsEvent`, deletes what
//!   succeeded, and moves a message to the consumer's DLQ once it has been
//!   received more than `max_receive` times (SQS's redrive policy).
//!
//! Queue timing (visibility timeout, backoff) runs on the wall clock, like
//! SQS; business time (expiry) stays on the app's clock.

use crate::bus::LocalBus;
use serde_json::{Value, json};
use shop_app::App;
use shop_app::clock::{Clock, SystemClock};
use shop_app::consumers::Consumer;
use shop_store::entities::StoredEvent;
use shop_store::queue::{Message, dlq_of};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct QueueOptions {
    /// How often the loops look for work.
    pub poll: Duration,
    /// Visibility timeout after the first receive; doubles with every
    /// further receive (retry backoff), up to 64 times.
    pub visibility: Duration,
    /// Receives before a message goes to the DLQ (SQS `maxReceiveCount`).
    pub max_receive: u32,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self { poll: Duration::from_millis(100), visibility: Duration::from_secs(5), max_receive: 5 }
    }
}

pub struct Runner {
    pub app: App,
    pub bus: Arc<LocalBus>,
    pub consumers: Vec<Arc<dyn Consumer>>,
    pub opts: QueueOptions,
    clock: SystemClock,
}

/// A DynamoDB stream INSERT record of an outbox item, as Lambda receives it.
pub fn stream_record(e: &StoredEvent, sequence: u64) -> Value {
    let image = json!({
        "pk": {"S": e.pk}, "sk": {"S": e.sk}, "type": {"S": "EVENT"},
        "eventId": {"S": e.event_id}, "source": {"S": e.source}, "detailType": {"S": e.detail_type},
        "detail": {"S": e.detail}, "occurredAt": {"N": e.occurred_at.millis().to_string()},
        "outboxShard": {"S": "pending"},
    });
    json!({
        "eventID": format!("local-{sequence}"),
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "local",
        "dynamodb": {
            "ApproximateCreationDateTime": e.occurred_at.seconds(),
            "Keys": {"pk": {"S": e.pk}, "sk": {"S": e.sk}},
            "NewImage": image,
            "SequenceNumber": format!("{sequence:021}"),
            "SizeBytes": e.detail.len() + 200,
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": "arn:aws:dynamodb:local:000000000000:table/shop/stream/local",
    })
}

impl Runner {
    pub fn new(app: App, bus: Arc<LocalBus>, consumers: Vec<Arc<dyn Consumer>>, opts: QueueOptions) -> Self {
        Self { app, bus, consumers, opts, clock: SystemClock }
    }

    /// One publisher pass; returns how many events went out.
    pub async fn publish_once(&self) -> anyhow::Result<usize> {
        let pending = self.app.store.pending_events(25).await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let base = u64::try_from(self.clock.now().millis()).unwrap_or(0) * 1000;
        let records: Vec<Value> = pending.iter().enumerate().map(|(i, e)| stream_record(e, base + i as u64)).collect();
        let event = serde_json::from_value(json!({ "Records": records }))?;
        let (_, report) = shop_app::publisher::publish_stream(&self.app, self.bus.as_ref(), event).await;
        Ok(report.published)
    }

    fn visibility_ms(&self, receive_count: u32) -> i64 {
        let base = i64::try_from(self.opts.visibility.as_millis()).unwrap_or(i64::MAX);
        base.saturating_mul(1i64 << receive_count.saturating_sub(1).min(6))
    }

    /// One pass over `consumer`'s queue; returns how many messages it took.
    pub async fn consume_once(&self, consumer: &dyn Consumer) -> anyhow::Result<usize> {
        let queue = consumer.name();
        let now = self.clock.now();
        let messages = self.app.store.queue_receive(queue, now, 10, |rc| self.visibility_ms(rc)).await?;
        let (over, fresh): (Vec<Message>, Vec<Message>) =
            messages.into_iter().partition(|m| m.receive_count > self.opts.max_receive);
        for m in &over {
            tracing::warn!(queue, message_id = %m.id, receives = m.receive_count - 1, "moving to the DLQ");
            self.app.store.queue_move(m, &dlq_of(queue), now, false, false).await?;
            shop_app::metrics::count(self.app.service, "DlqMessages", 1);
        }
        if fresh.is_empty() {
            return Ok(over.len());
        }
        let records: Vec<Value> = fresh
            .iter()
            .map(|m| {
                json!({
                    "messageId": m.id, "receiptHandle": format!("{}#{}", m.id, m.receive_count), "body": m.body,
                    "attributes": {"ApproximateReceiveCount": m.receive_count.to_string(),
                                   "SentTimestamp": m.sent_at.millis().to_string()},
                    "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                    "eventSourceARN": format!("arn:aws:sqs:local:000000000000:{queue}"), "awsRegion": "local",
                })
            })
            .collect();
        let event = serde_json::from_value(json!({ "Records": records }))?;
        let response = shop_app::consumers::handle_sqs(&self.app, consumer, event).await;
        for m in &fresh {
            match response.batch_item_failures.iter().find(|f| f.item_identifier == m.id) {
                None => self.app.store.queue_delete(m).await?,
                // Stays invisible until its (growing) visibility timeout passes.
                Some(_) => {
                    let note = format!("receive {} failed; see the order's timeline for the reason", m.receive_count);
                    self.app.store.queue_note_error(m, &note).await?;
                }
            }
        }
        Ok(fresh.len() + over.len())
    }

    /// Runs the publisher and every consumer until `stop` fires.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::oneshot::Receiver<()>) {
        let mut tick = tokio::time::interval(self.opts.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tick.tick() => {}
            }
            // Drain: keep going while there is work, so bursts do not wait a
            // tick per batch; yield between passes (the embedded store never
            // suspends, and on a current-thread runtime nothing else would run).
            for _ in 0..1000 {
                tokio::task::yield_now().await;
                let mut busy = 0;
                match self.publish_once().await {
                    Ok(n) => busy += n,
                    Err(e) => tracing::error!(error = %e, "publisher pass failed"),
                }
                for c in &self.consumers {
                    match self.consume_once(c.as_ref()).await {
                        Ok(n) => busy += n,
                        Err(e) => tracing::error!(consumer = c.name(), error = %e, "consumer pass failed"),
                    }
                }
                if busy == 0 {
                    break;
                }
            }
        }
    }
}
