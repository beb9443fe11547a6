//! The local stack's event plumbing, in place of DynamoDB Streams, the
//! stream's event source mapping and the SQS event source mappings:
//!
//! - the publisher loop is the table's stream: it reads the outbox items
//!   waiting in the `pendingOutbox` index (every write of an event puts it
//!   there, atomically with the write, as DynamoDB puts a record on the
//!   stream), wraps them as stream records and calls the same
//!   `stream-publisher` handler the Lambda runs; then it advances its
//!   checkpoint as the event source mapping does, by taking what the
//!   handler did not report as failed out of the index, in one write per
//!   batch (docs/adr/0024);
//! - one loop per consumer receives from its durable queue, hands the
//!   messages to the same consumer handler as an `SqsEvent`, deletes what
//!   succeeded, and moves a message to the consumer's DLQ once it has been
//!   received more than `max_receive` times (SQS's redrive policy).
//!
//! Queue timing (visibility timeout, backoff) runs on the wall clock, like
//! SQS; business time (expiry) stays on the app's clock.

use crate::emulate::bus::LocalBus;
use crate::emulate::queue::{Message, Queues, dlq_of};
use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord, StreamRecord, StreamViewType};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use shop_app::App;
use shop_app::clock::{Clock, SystemClock};
use shop_app::events::consumers::Consumer;
use shop_app::events::publisher::Publisher;
use shop_app::obs::telemetry;
use shop_store::outbox::StoredEvent;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument as _;

#[derive(Debug, Clone, Copy)]
pub struct QueueOptions {
    /// The shortest wait between two looks for work that found none. An
    /// idle loop waits longer and longer (up to [`IDLE_MAX`]) or until its
    /// next message becomes visible; a commit that gives it work wakes it
    /// at once.
    pub poll: Duration,
    /// Visibility timeout after the first receive; doubles with every
    /// further receive (retry backoff), up to 64 times.
    pub visibility: Duration,
    /// Receives before a message goes to the DLQ (SQS `maxReceiveCount`).
    pub max_receive: u32,
    /// The emulated stream's batching window: woken by a commit, the
    /// publisher waits this long before it reads, so the commits of that
    /// moment go out as one batch (one checkpoint write, one statistics
    /// update) instead of one each. The template's event source mapping
    /// waits up to 1 s (`MaximumBatchingWindowInSeconds`); locally a
    /// shorter wait keeps the saga interactive. The queues have none, as
    /// the SQS mappings have none.
    pub stream_window: Duration,
}

/// The longest an idle loop waits without a wake-up: the publisher's retry
/// of an event the bus refused, and the safety net under every wake-up.
/// An idle stack then makes a few store calls a second, not forty (issue
/// 25: 3–4 % of a core before).
pub const IDLE_MAX: Duration = Duration::from_secs(5);

/// The local stream's batching window ([`QueueOptions::stream_window`]).
pub const STREAM_WINDOW: Duration = Duration::from_millis(20);

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(100),
            visibility: Duration::from_secs(5),
            max_receive: 5,
            stream_window: STREAM_WINDOW,
        }
    }
}

pub struct Runner {
    pub app: App,
    /// The store as the emulated AWS services use it (the stream's outbox
    /// query, the queues): on AWS these are not DynamoDB calls, so the
    /// stack meters them apart from the app's.
    pub emulation: shop_store::Store,
    pub bus: Arc<LocalBus>,
    pub consumers: Vec<Arc<dyn Consumer>>,
    pub opts: QueueOptions,
    clock: SystemClock,
    /// Changes on every committed write that made an event pending (the
    /// engine's `writes_with` and the outbox codec's `writes_pending_event`):
    /// a publisher pass starts at once instead of at the next poll. The consumers wake on the bus's enqueues.
    outbox_writes: tokio::sync::watch::Receiver<u64>,
}

/// What one loop of the runner does on each pass.
#[derive(Clone, Copy)]
enum Work {
    Publish,
    /// The consumer at this index.
    Consume(usize),
}

/// A DynamoDB stream record of an outbox item, as Lambda receives it: its
/// new image is the item, written by the store's outbox codec. An event
/// this emulation never handed to the publisher is an INSERT (its write),
/// even if it was republished meanwhile; one it handed over before is a
/// MODIFY (a republish).
pub fn stream_record(e: &StoredEvent, sequence: u64) -> anyhow::Result<EventRecord> {
    let mut change = StreamRecord::default();
    change.approximate_creation_date_time =
        chrono::DateTime::from_timestamp_millis(e.occurred_at.millis()).unwrap_or_default();
    change.keys = serde_json::from_value(shop_store::outbox::codec::stream_keys(e))?;
    // The image of the write that made it pending: its insert, or a republish.
    let written = StoredEvent { pending: true, ..e.clone() };
    change.new_image = serde_json::from_value(shop_store::outbox::codec::stream_image(&written))?;
    change.sequence_number = Some(format!("{sequence:021}"));
    change.size_bytes = i64::try_from(e.detail.len() + 200).unwrap_or(i64::MAX);
    change.stream_view_type = Some(StreamViewType::NewImage);
    let mut record = EventRecord::default();
    record.event_id = format!("local-{sequence}");
    record.event_name = if e.published_at.is_some() { "MODIFY" } else { "INSERT" }.into();
    record.event_version = Some("1.1".into());
    record.event_source = Some("aws:dynamodb".into());
    record.aws_region = "local".into();
    record.event_source_arn = Some("arn:aws:dynamodb:local:000000000000:table/shop/stream/local".into());
    record.change = change;
    Ok(record)
}

/// An SQS message as Lambda's event source mapping delivers it.
fn sqs_message(queue: &str, m: &Message) -> SqsMessage {
    let mut msg = SqsMessage::default();
    msg.message_id = Some(m.id.clone());
    msg.receipt_handle = Some(format!("{}#{}", m.id, m.receive_count));
    msg.body = Some(m.body.clone());
    msg.attributes = [
        ("ApproximateReceiveCount".to_owned(), m.receive_count.to_string()),
        ("SentTimestamp".to_owned(), m.sent_at.millis().to_string()),
    ]
    .into();
    msg.event_source = Some("aws:sqs".into());
    msg.event_source_arn = Some(format!("arn:aws:sqs:local:000000000000:{queue}"));
    msg.aws_region = Some("local".into());
    msg
}

impl Runner {
    pub fn new(
        app: App,
        emulation: shop_store::Store,
        bus: Arc<LocalBus>,
        consumers: Vec<Arc<dyn Consumer>>,
        opts: QueueOptions,
        outbox_writes: tokio::sync::watch::Receiver<u64>,
    ) -> Self {
        Self { app, emulation, bus, consumers, opts, clock: SystemClock, outbox_writes }
    }

    /// One publisher pass; returns how many events went out.
    pub async fn publish_once(&self) -> anyhow::Result<usize> {
        let pending = self.emulation.outbox().pending(25).await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let base = u64::try_from(self.clock.now().millis()).unwrap_or(0) * 1000;
        let mut event = StreamEvent::default();
        event.records = pending
            .iter()
            .enumerate()
            .map(|(i, e)| stream_record(e, base + i as u64))
            .collect::<anyhow::Result<_>>()?;
        let sequences: Vec<Option<String>> = event.records.iter().map(|r| r.change.sequence_number.clone()).collect();
        let invocation = telemetry::invocation_span("stream-publisher", &telemetry::new_request_id());
        let publisher = Publisher { bus: self.bus.clone() };
        let (response, report) = publisher.publish(&self.app, event).instrument(invocation).await;
        // The checkpoint: what the handler reported failed stays pending and
        // is offered again (the event source mapping's retry).
        let failed: Vec<Option<String>> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        let done: Vec<(String, String)> = pending
            .iter()
            .zip(&sequences)
            .filter(|(_, sequence)| !failed.contains(sequence))
            .map(|(e, _)| (e.pk.clone(), e.sk.clone()))
            .collect();
        self.emulation.outbox().clear_pending(&done, self.clock.now()).await?;
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
        let messages = Queues(&self.emulation).receive(queue, now, 10, |rc| self.visibility_ms(rc)).await?;
        let (over, fresh): (Vec<Message>, Vec<Message>) =
            messages.into_iter().partition(|m| m.receive_count > self.opts.max_receive);
        for m in &over {
            tracing::warn!(queue, message_id = %m.id, receives = m.receive_count - 1, "moving to the DLQ");
            Queues(&self.emulation).move_message(m, &dlq_of(queue), now, false, false).await?;
            self.app.count("DlqMessages", 1);
        }
        if fresh.is_empty() {
            return Ok(over.len());
        }
        // Each message as its own invocation, side by side, as an event
        // source mapping runs several batches at once: one slow message
        // (a PG call, a data-platform export) does not hold up the others.
        let responses = futures::future::join_all(fresh.iter().map(|m| {
            let mut event = SqsEvent::default();
            event.records = vec![sqs_message(queue, m)];
            let invocation = telemetry::invocation_span(queue, &telemetry::new_request_id());
            shop_app::events::consumers::handle_sqs(&self.app, consumer, event).instrument(invocation)
        }))
        .await;
        let mut done = Vec::with_capacity(fresh.len());
        for (m, response) in fresh.iter().zip(responses) {
            if response.batch_item_failures.is_empty() {
                done.push(m.clone());
            } else {
                // Stays invisible until its (growing) visibility timeout passes.
                let note = format!("receive {} failed; see the order's timeline for the reason", m.receive_count);
                Queues(&self.emulation).note_error(m, &note).await?;
            }
        }
        Queues(&self.emulation).delete_all(&done).await?;
        Ok(fresh.len() + over.len())
    }

    /// Runs the publisher and every consumer, each in its own loop (as each
    /// is its own function in AWS), until `stop` fires.
    pub async fn run(self: Arc<Self>, stop: tokio::sync::oneshot::Receiver<()>) {
        let (halt, halted) = tokio::sync::watch::channel(false);
        let mut loops = tokio::task::JoinSet::new();
        let work = std::iter::once(Work::Publish).chain((0..self.consumers.len()).map(Work::Consume));
        for w in work {
            let (me, halted) = (self.clone(), halted.clone());
            loops.spawn(async move { me.work_loop(w, halted).await });
        }
        let _ = stop.await;
        let _ = halt.send(true);
        while loops.join_next().await.is_some() {}
    }

    /// How long a loop that has been idle for `idle` waits before it looks
    /// again: a consumer no longer than until its queue's next message
    /// becomes visible (a retry after its visibility timeout), never less
    /// than the poll. A busy loop (`idle` is the poll) asks the queue nothing:
    /// the answer could only be the poll.
    async fn idle_wait(&self, work: Work, idle: Duration) -> Duration {
        if idle <= self.opts.poll {
            return self.opts.poll;
        }
        let Work::Consume(i) = work else { return idle };
        let Some(consumer) = self.consumers.get(i) else { return idle };
        match Queues(&self.emulation).next_due(consumer.name()).await {
            Ok(Some(due)) => {
                let until = u64::try_from(due.millis() - self.clock.now().millis()).unwrap_or(0);
                // idle > poll here: clamp's bounds are ordered.
                Duration::from_millis(until).clamp(self.opts.poll, idle)
            }
            Ok(None) => idle,
            Err(e) => {
                tracing::warn!(queue = consumer.name(), error = %e, "could not read the queue's next due time");
                self.opts.poll
            }
        }
    }

    async fn pass(&self, work: Work) -> anyhow::Result<usize> {
        match work {
            Work::Publish => self.publish_once().await,
            Work::Consume(i) => match self.consumers.get(i) {
                Some(c) => self.consume_once(c.as_ref()).await,
                None => Ok(0),
            },
        }
    }

    async fn work_loop(&self, work: Work, mut halted: tokio::sync::watch::Receiver<bool>) {
        let mut wake = match work {
            Work::Publish => self.outbox_writes.clone(),
            Work::Consume(_) => self.bus.enqueued(),
        };
        let mut engine_alive = true;
        let mut idle = self.opts.poll;
        loop {
            let wait = self.idle_wait(work, idle).await;
            let woken = tokio::select! {
                _ = halted.changed() => break,
                () = tokio::time::sleep(wait) => false,
                changed = wake.changed(), if engine_alive => {
                    // Its source gone, only the timer is left.
                    engine_alive = changed.is_ok();
                    true
                }
            };
            if woken && matches!(work, Work::Publish) && !self.opts.stream_window.is_zero() {
                tokio::time::sleep(self.opts.stream_window).await;
            }
            // Drain: keep going while there is work, so bursts do not wait a
            // tick per batch; yield between passes so the other loops and the
            // API get their turn.
            let mut found = 0;
            for _ in 0..1000 {
                tokio::task::yield_now().await;
                match self.pass(work).await {
                    Ok(0) => break,
                    Ok(n) => found += n,
                    Err(e) => {
                        let name = match work {
                            Work::Publish => "publisher",
                            Work::Consume(i) => self.consumers.get(i).map(|c| c.name()).unwrap_or("consumer"),
                        };
                        tracing::error!(loop_name = name, error = %e, "pass failed");
                        break;
                    }
                }
            }
            idle = if found > 0 || woken { self.opts.poll } else { (idle * 2).min(IDLE_MAX.max(self.opts.poll)) };
        }
    }
}
