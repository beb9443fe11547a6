//! `stream-publisher`: outbox items from the table's stream → the bus.
//!
//! Input is a DynamoDB stream batch (in AWS from the table's stream; locally
//! built from the `pendingOutbox` index in the same shape). A record is
//! published when its new image is an outbox item that is still pending —
//! an INSERT, or a MODIFY that made it pending again (`shop republish`);
//! everything else is skipped here even if the event source mapping's
//! filter let it through. The image is read by the store's outbox codec
//! (`shop_store::outbox::codec`), the one place that knows its format.
//! Entries go out in PutEvents calls of ≤ 10 entries and ≤ 256 KB; entries the bus refused
//! (`FailedEntryCount`) are resent alone, with backoff; whatever still fails
//! is reported per record (`batchItemFailures`) and the rest of the batch
//! stands. The publisher writes nothing to the table: the stream's
//! checkpoint (the event source mapping's, or the local emulation's) is
//! what says an event went out, and the stream's iterator age is the alarm
//! (docs/adr/0024, which supersedes 0005). The saga statistics count an
//! event at its INSERT record, never at a republish's MODIFY.

use crate::App;
use crate::ports::{self as bus, BusEntry, EntryResult, EventBus};
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde_json::Value;
use shop_store::outbox::{StoredEvent, codec};
use std::sync::Arc;
use std::time::Duration;

/// PutEvents attempts per entry within one invocation.
pub const ATTEMPTS: u32 = 4;
const BACKOFF: Duration = Duration::from_millis(25);

struct Pending {
    sequence: String,
    event_id: String,
    order_id: String,
    entry: BusEntry,
    /// What the saga statistics count at its first publication (its
    /// `occurred_at`, the commit on the app's clock, also dates the outbox age).
    stats: crate::obs::stats::Published,
    /// The stream record is the event's write (INSERT), not a republish
    /// (MODIFY): only the first is counted.
    first: bool,
}

impl Pending {
    /// The bus entry of a stored event, in the trace of the write that
    /// caused it (PutEvents' TraceHeader, X-Ray's format; EventBridge hands
    /// it on to SQS).
    fn of(e: StoredEvent, sequence: String, first: bool) -> Pending {
        let traceparent = serde_json::from_str::<Value>(&e.detail)
            .ok()
            .and_then(|d| d.get("traceparent").and_then(Value::as_str).map(str::to_owned));
        let aggregate = shop_store::keys::aggregate_of(&e.pk).to_owned();
        Pending {
            sequence,
            first,
            event_id: e.event_id.clone(),
            order_id: e.order_id.clone().unwrap_or_default(),
            stats: crate::obs::stats::Published {
                detail_type: e.detail_type.clone(),
                aggregate,
                occurred_at: e.occurred_at,
                status_from: e.status_from,
                status_to: e.status_to,
                placed_at: e.placed_at,
            },
            entry: BusEntry {
                source: e.source,
                detail_type: e.detail_type,
                detail: e.detail,
                trace_header: traceparent.as_deref().and_then(crate::obs::trace::xray_header),
            },
        }
    }
}

/// The business metric an event counts, by its detail type: the saga's
/// throughput, counted once where every event passes (redeliveries of a
/// publisher batch may count one twice; the metric is a rate, not a ledger).
fn business_metric(detail_type: &str) -> Option<&'static str> {
    Some(match detail_type {
        "OrderPlaced" => "OrdersPlaced",
        "OrderPaid" => "OrdersPaid",
        "OrderExpired" => "OrdersExpired",
        "OrderCancelled" => "OrdersCancelled",
        "OrderRefunded" => "OrdersRefunded",
        "PaymentFailed" => "PaymentsFailed",
        "CouponIssued" => "CouponsIssued",
        _ => return None,
    })
}

/// What one invocation did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublishReport {
    pub published: usize,
    pub skipped: usize,
    pub failed: usize,
    pub resent: usize,
}

/// The stream publisher. Its port, the bus, is given when it is built —
/// as the app is given the PG and the analytics consumer the data
/// platform (docs/adr/0018): nothing hands a port to a call.
#[derive(Clone)]
pub struct Publisher {
    pub bus: Arc<dyn EventBus>,
}

impl Publisher {
    /// Publishes one stream batch (see the module's docs).
    pub async fn publish(&self, app: &App, event: StreamEvent) -> (DynamoDbEventResponse, PublishReport) {
        publish_stream(app, self.bus.as_ref(), event).await
    }
}

#[tracing::instrument(skip_all, fields(records = event.records.len()))]
async fn publish_stream(app: &App, bus: &dyn EventBus, event: StreamEvent) -> (DynamoDbEventResponse, PublishReport) {
    let mut report = PublishReport::default();
    let mut failures: Vec<String> = Vec::new();
    let mut work: Vec<Pending> = Vec::new();
    for record in event.records {
        let sequence = record.change.sequence_number.clone().unwrap_or_default();
        let image = serde_json::to_value(&record.change.new_image).unwrap_or(Value::Null);
        let stored = match record.event_name.as_str() {
            "INSERT" | "MODIFY" => codec::from_stream_image(&image),
            _ => Ok(None),
        };
        match stored {
            Ok(Some(e)) => work.push(Pending::of(e, sequence, record.event_name == "INSERT")),
            Ok(None) => report.skipped += 1,
            Err(e) => {
                // Never drop it silently: after the retries it reaches the OnFailure destination.
                tracing::error!(%sequence, error = %e, "a pending outbox item that does not decode");
                failures.push(sequence);
            }
        }
    }

    let mut pending: Vec<usize> = (0..work.len()).collect();
    let mut accepted: Vec<usize> = Vec::new();
    for attempt in 0..ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        if attempt > 0 {
            report.resent += pending.len();
            tokio::time::sleep(BACKOFF * 4u32.pow(attempt - 1)).await;
        }
        let entries: Vec<BusEntry> = pending.iter().filter_map(|i| work.get(*i).map(|w| w.entry.clone())).collect();
        let mut still = Vec::new();
        for range in bus::batches(&entries) {
            let ids = pending.get(range.clone()).unwrap_or_default();
            match bus.put_events(entries.get(range.clone()).unwrap_or_default()).await {
                Ok(results) => {
                    for (i, result) in ids.iter().zip(results) {
                        match result {
                            EntryResult::Accepted { .. } => accepted.push(*i),
                            EntryResult::Failed { code, message } => {
                                tracing::warn!(%code, %message, attempt, "PutEvents refused an entry");
                                still.push(*i);
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "PutEvents call failed");
                    still.extend_from_slice(ids);
                }
            }
        }
        pending = still;
    }

    let now = app.clock.now().millis();
    let mut first_published = Vec::new();
    for i in &accepted {
        let Some(w) = work.get(*i) else { continue };
        crate::obs::metrics::observe_ms(
            crate::obs::metrics::OUTBOX_AGE,
            now.saturating_sub(w.stats.occurred_at.millis()).max(0) as f64,
        );
        if let Some(metric) = business_metric(&w.entry.detail_type) {
            app.count(metric, 1);
        }
        // One line per entry, in the trace of the request that caused it.
        let trace_id = w.entry.trace_header.as_deref().and_then(crate::obs::trace::root_of);
        tracing::info!(
            order_id = %w.order_id,
            event_id = %w.event_id,
            detail_type = %w.entry.detail_type,
            xray_trace_id = trace_id.as_deref(),
            trace_header = w.entry.trace_header.as_deref(),
            "published"
        );
        if w.first {
            first_published.push(w.stats.clone());
        }
    }
    crate::obs::stats::count_published(app, &first_published).await;
    report.published = accepted.len();
    report.failed = pending.len() + failures.len();
    failures.extend(pending.iter().filter_map(|i| work.get(*i).map(|w| w.sequence.clone())));
    if report.failed > 0 {
        app.count("PublishFailures", report.failed as u64);
    }
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .map(|sequence| {
            let mut f = DynamoDbBatchItemFailure::default();
            f.item_identifier = Some(sequence);
            f
        })
        .collect();
    (response, report)
}
