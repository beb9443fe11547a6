//! Event consumers behind SQS: `coupon`, `compensation`, `analytics` and
//! `waiting-room`.
//!
//! [`handle_sqs`] is what each consumer function runs: every SQS message
//! carries one EventBridge event (the rule's target is the queue); it is
//! decoded, claimed in the order's saga log (its outcome item for this
//! consumer and event is the idempotency record: duplicates, replays and
//! redrives are applied once), handled, and its outcome recorded on that
//! same item. Failures are reported per
//! message (`SqsBatchResponse`), never for the whole batch; SQS makes the
//! message visible again and, after `maxReceiveCount`, moves it to the
//! consumer's DLQ.
//!
//! Consumers tolerate reordering by acting on the order's *current* state
//! (read from the store), not on what the event says happened.

mod analytics;
mod compensation;
mod coupon;
mod waiting_room;

pub use analytics::AnalyticsConsumer;
pub use compensation::CompensationConsumer;
pub use coupon::CouponConsumer;
pub use waiting_room::WaitingRoomConsumer;

/// The consumers' names, declared once: each names its queue and DLQ, its
/// idempotency scope and its saga-log entries, and `events/rules.json` has
/// one rule per name (the drift test checks both ways).
pub const COUPON: &str = "coupon";
pub const COMPENSATION: &str = "compensation";
pub const ANALYTICS: &str = "analytics";
pub const WAITING_ROOM: &str = "waiting-room";
pub const NAMES: [&str; 4] = [COUPON, COMPENSATION, ANALYTICS, WAITING_ROOM];

use crate::App;
use crate::obs::trace;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use shop_domain::envelope::BusEvent;
use shop_domain::{EventDetail, OrderEvent};
use shop_store::StoreError;
use shop_store::saga::{Begun, Outcome};
use tracing::Instrument as _;

/// What a consumer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Applied(String),
    /// Nothing to do (already done, or not this consumer's business).
    Skipped(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// Worth retrying (a dependency is down, a write raced).
    #[error("retryable: {0}")]
    Retryable(String),
    /// Will not succeed by retrying; lands in the DLQ for an operator.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<StoreError> for ConsumerError {
    fn from(e: StoreError) -> Self {
        ConsumerError::Retryable(e.to_string())
    }
}

impl From<crate::usecases::retry::Contended> for ConsumerError {
    fn from(e: crate::usecases::retry::Contended) -> Self {
        ConsumerError::Retryable(e.to_string())
    }
}

impl From<anyhow::Error> for ConsumerError {
    fn from(e: anyhow::Error) -> Self {
        ConsumerError::Retryable(format!("{e:#}"))
    }
}

#[async_trait::async_trait]
pub trait Consumer: Send + Sync {
    fn name(&self) -> &'static str;
    async fn handle(&self, app: &App, event: &OrderEvent, detail: &EventDetail) -> Result<Done, ConsumerError>;
}

/// The event inside an SQS message body: the bus's [`BusEvent`] around an
/// order event's detail, and the order event it carries.
pub fn decode(body: &str) -> anyhow::Result<(OrderEvent, BusEvent<EventDetail>)> {
    let delivered: BusEvent<EventDetail> = serde_json::from_str(body)?;
    let event = delivered.order_event()?;
    Ok((event, delivered))
}

/// Runs `consumer` over an SQS batch and reports the messages to retry.
pub async fn handle_sqs(app: &App, consumer: &dyn Consumer, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let body = message.body.as_deref().unwrap_or_default();
        let trace_header = message.attributes.get("AWSTraceHeader").map(String::as_str);
        if let Err(e) = handle_message(app, consumer, body, trace_header).await {
            tracing::warn!(consumer = consumer.name(), message_id = %id, error = %e, "message failed");
            if matches!(e, ConsumerError::Permanent(_)) {
                app.count("ConsumerPermanentFailures", 1);
            }
            // The last receive the queue allows: the message goes to the DLQ
            // now, and its outcome says so (a DLQ cannot be queried by order).
            let receives = message.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse::<u32>().ok());
            if receives.is_some_and(|n| n >= app.config.max_receives) {
                dead_lettered(app, consumer, body).await;
            }
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            failures.push(f);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// Records that `consumer`'s outcome of the event in `body` is dead-lettered
/// (best effort: the DLQ holds the message either way).
async fn dead_lettered(app: &App, consumer: &dyn Consumer, body: &str) {
    let Ok((event, _)) = decode(body) else { return };
    match app
        .store
        .saga()
        .dead_lettered(&event.order_id, event.aggregate_version, consumer.name(), app.clock.now())
        .await
    {
        Ok(_) => tracing::warn!(consumer = consumer.name(), order_id = %event.order_id, "dead-lettered"),
        Err(e) => tracing::warn!(error = %e, "could not record a dead-lettered outcome"),
    }
}

/// Handles one message body; `Ok` means delete it. The message is handled
/// in a span that continues the trace of the request that caused the event
/// (SQS's `AWSTraceHeader`, else the envelope's `traceparent`); the
/// invocation is linked to it.
pub async fn handle_message(
    app: &App,
    consumer: &dyn Consumer,
    body: &str,
    aws_trace_header: Option<&str>,
) -> Result<Done, ConsumerError> {
    let (event, delivered) = decode(body).map_err(|e| ConsumerError::Permanent(format!("undecodable message: {e}")))?;
    let detail = &delivered.detail;
    let span = tracing::info_span!(
        "message",
        consumer = consumer.name(),
        order_id = event.order_id.as_str(),
        event_id = detail.event_id.as_str(),
        correlation_id = detail.correlation_id.as_str(),
        detail_type = event.kind.detail_type(),
        xray_trace_id = tracing::field::Empty,
    );
    let parent = trace::message_parent(aws_trace_header, detail.traceparent.as_deref());
    if let Some(cx) = &parent {
        trace::link_current(cx);
    }
    trace::continue_trace(&span, parent);
    let result = handle_event(app, consumer, &event, detail).instrument(span.clone()).await;
    span.in_scope(|| match &result {
        Ok(Done::Applied(note)) => tracing::info!(outcome = "done", note = %note, "handled"),
        Ok(Done::Skipped(note)) => tracing::info!(outcome = "skipped", note = %note, "handled"),
        Err(e) => tracing::info!(outcome = "failed", error = %e, "handled"),
    });
    result
}

async fn handle_event(
    app: &App,
    consumer: &dyn Consumer,
    event: &OrderEvent,
    detail: &EventDetail,
) -> Result<Done, ConsumerError> {
    if app.chaos.fail(&format!("consumer.{}", consumer.name())) {
        // Before the claim, so this may be a duplicate: never overwrite DONE.
        let failed = outcome_of(
            consumer,
            event,
            shop_store::saga::FAILED,
            Some("injected failure (chaos)".into()),
            app.clock.now(),
        );
        if let Err(e) = app.store.saga().put_if_unfinished(&event.order_id, event.aggregate_version, &failed).await {
            tracing::warn!(error = %e, "could not record the outcome");
        }
        return Err(ConsumerError::Retryable("injected failure".into()));
    }
    // The saga log's item is the claim (docs/adr/0023): one conditional
    // write, and DONE / SKIPPED for good, so duplicates, replays and
    // redrives of a finished event stop here whenever they come.
    let claim = outcome_of(consumer, event, shop_store::saga::RUNNING, None, app.clock.now());
    let hold_ms = app.config.idempotency.in_progress_ms;
    let lease = match app.store.saga().begin(&event.order_id, event.aggregate_version, &claim, hold_ms).await? {
        Begun::Claimed(lease) => lease,
        Begun::Finished => return Ok(Done::Skipped("duplicate delivery".into())),
        Begun::Busy => return Err(ConsumerError::Retryable("the same event is being handled".into())),
    };
    let result = consumer.handle(app, event, detail).await;
    if result.is_ok() && app.chaos.fail(&format!("consumer.{}.crash", consumer.name())) {
        // As if the process died here: the work is done, nothing recorded,
        // the message not deleted and the claim held until its lease lapses.
        return Err(ConsumerError::Retryable("injected crash after handling (chaos)".into()));
    }
    let (status, note) = match &result {
        Ok(Done::Applied(n)) => (shop_store::saga::DONE, n.clone()),
        Ok(Done::Skipped(n)) => (shop_store::saga::SKIPPED, n.clone()),
        Err(e) => (shop_store::saga::FAILED, e.to_string()),
    };
    match app.store.saga().finish(&event.order_id, &lease, status, Some(&note), app.clock.now()).await {
        Ok(true) => {}
        // The lease lapsed and another delivery holds the event: it records it.
        Ok(false) => tracing::warn!("the claim lapsed before the outcome was recorded"),
        // The work is done and will not be done twice only once this is
        // recorded: retried, the message finds the claim lapsed and redoes
        // work that is idempotent by itself.
        Err(e) if result.is_ok() => {
            return Err(ConsumerError::Retryable(format!("done, but recording it failed: {e}")));
        }
        Err(e) => tracing::warn!(error = %e, "could not record the failure"),
    }
    if result.is_ok() && app.chaos.fail(&format!("consumer.{}.undeleted", consumer.name())) {
        // As if the process died after recording, before the message was
        // deleted: the redelivery finds the event finished.
        return Err(ConsumerError::Retryable("injected crash before the delete (chaos)".into()));
    }
    result
}

fn outcome_of(
    consumer: &dyn Consumer,
    event: &OrderEvent,
    status: &str,
    detail: Option<String>,
    at: shop_domain::Timestamp,
) -> Outcome {
    Outcome {
        consumer: consumer.name().to_owned(),
        event_id: event.event_id().to_string(),
        detail_type: event.kind.detail_type().to_owned(),
        status: status.to_owned(),
        attempts: 0,
        detail,
        at,
        dead_lettered_at: None,
    }
}
