//! Event consumers behind SQS: `coupon`, `compensation` and `analytics`.
//!
//! [`handle_sqs`] is what each consumer function runs: every SQS message
//! carries one EventBridge event (the rule's target is the queue); it is
//! decoded, deduplicated by consumer + `eventId` (an idempotency record, so
//! duplicates, replays and redrives are applied once), handled, and its
//! outcome written to the order's saga log. Failures are reported per
//! message (`SqsBatchResponse`), never for the whole batch; SQS makes the
//! message visible again and, after `maxReceiveCount`, moves it to the
//! consumer's DLQ.
//!
//! Consumers tolerate reordering by acting on the order's *current* state
//! (read from the store), not on what the event says happened.

use crate::App;
use crate::payments::{PgOutcome, apply_pg_outcome, refund_points_ops, release_stock_ops};
use crate::pg::PgError;
use lambda_http::aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::Value;
use shop_domain::coupon::Transition;
use shop_domain::points::LedgerReason;
use shop_domain::{EventDetail, OrderCommand, OrderEvent, OrderEventKind, OrderStatus, PaymentStatus};
use shop_store::idempotency::{Claim, StoredResponse};
use shop_store::queue::Outcome;
use shop_store::{StoreError, Tx};

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

/// The event inside an SQS message body (an EventBridge event).
pub fn decode(body: &str) -> anyhow::Result<(OrderEvent, EventDetail, Value)> {
    let envelope: Value = serde_json::from_str(body)?;
    let detail_type =
        envelope.get("detail-type").and_then(|v| v.as_str()).ok_or_else(|| anyhow::anyhow!("no detail-type"))?;
    let detail: EventDetail = serde_json::from_value(envelope.get("detail").cloned().unwrap_or(Value::Null))?;
    let event = detail.to_event(detail_type)?;
    Ok((event, detail, envelope))
}

/// Runs `consumer` over an SQS batch and reports the messages to retry.
pub async fn handle_sqs(app: &App, consumer: &dyn Consumer, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let body = message.body.as_deref().unwrap_or_default();
        if let Err(e) = handle_message(app, consumer, body).await {
            tracing::warn!(consumer = consumer.name(), message_id = %id, error = %e, "message failed");
            if matches!(e, ConsumerError::Permanent(_)) {
                crate::metrics::count(app.service, "ConsumerPermanentFailures", 1);
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

/// Handles one message body; `Ok` means delete it.
#[tracing::instrument(skip_all, fields(consumer = consumer.name(), order_id, event_id))]
pub async fn handle_message(app: &App, consumer: &dyn Consumer, body: &str) -> Result<Done, ConsumerError> {
    let (event, detail, _) = decode(body).map_err(|e| ConsumerError::Permanent(format!("undecodable message: {e}")))?;
    tracing::Span::current().record("order_id", event.order_id.as_str()).record("event_id", detail.event_id.as_str());
    if app.chaos.fail(&format!("consumer.{}", consumer.name())) {
        record(app, consumer, &event, "FAILED", Some("injected failure (chaos)".into())).await;
        return Err(ConsumerError::Retryable("injected failure".into()));
    }
    let scope = format!("consumer#{}", consumer.name());
    let key = detail.event_id.as_str();
    let lock = match app.store.idem_claim(&scope, key, key, app.clock.now(), app.config.idempotency).await? {
        Claim::Acquired(lock) => lock,
        Claim::Replay(_) => return Ok(Done::Skipped("duplicate delivery".into())),
        Claim::InProgress | Claim::PayloadMismatch => {
            return Err(ConsumerError::Retryable("the same event is being handled".into()));
        }
    };
    let result = consumer.handle(app, &event, &detail).await;
    match &result {
        Ok(done) => {
            let (status, note) = match done {
                Done::Applied(n) => ("DONE", n),
                Done::Skipped(n) => ("SKIPPED", n),
            };
            app.store.idem_complete(&lock, &StoredResponse { status: 200, body: note.clone() }).await?;
            record(app, consumer, &event, status, Some(note.clone())).await;
        }
        Err(e) => {
            if let Err(release) = app.store.idem_release(&lock).await {
                tracing::warn!(error = %release, "could not release consumer record");
            }
            record(app, consumer, &event, "FAILED", Some(e.to_string())).await;
        }
    }
    result
}

async fn record(app: &App, consumer: &dyn Consumer, event: &OrderEvent, status: &str, detail: Option<String>) {
    let outcome = Outcome {
        consumer: consumer.name().to_owned(),
        event_id: event.event_id().to_string(),
        detail_type: event.kind.detail_type().to_owned(),
        status: status.to_owned(),
        attempts: 0,
        detail,
        at: app.clock.now(),
    };
    if let Err(e) = app.store.outcome_put(&event.order_id, event.aggregate_version, &outcome).await {
        tracing::warn!(error = %e, "could not record the outcome");
    }
}

/// Coupon bookkeeping. The coupon's target state follows the order's current
/// status — paid: USED; expired, cancelled, refunded: released — so events
/// arriving twice or out of order converge on the same state.
pub struct CouponConsumer;

#[async_trait::async_trait]
impl Consumer for CouponConsumer {
    fn name(&self) -> &'static str {
        "coupon"
    }

    async fn handle(&self, app: &App, event: &OrderEvent, _: &EventDetail) -> Result<Done, ConsumerError> {
        for _ in 0..8 {
            let Some(order) = app.store.get_order(&event.order_id).await? else {
                return Err(ConsumerError::Permanent(format!("order {} does not exist", event.order_id)));
            };
            let Some(coupon_id) = order.coupon_id.clone() else { return Ok(Done::Skipped("no coupon".into())) };
            let Some(coupon) = app.store.get_coupon(&coupon_id).await? else {
                return Err(ConsumerError::Permanent(format!("coupon {coupon_id} does not exist")));
            };
            let next = match order.status {
                OrderStatus::Paid | OrderStatus::RefundPending => match coupon.mark_used(&order.id) {
                    Ok(t) => t,
                    Err(e) => return Err(ConsumerError::Permanent(format!("cannot use coupon: {e}"))),
                },
                OrderStatus::Expired | OrderStatus::Cancelled | OrderStatus::Refunded => {
                    coupon.release(&order.id, app.clock.now())
                }
                OrderStatus::PendingPayment | OrderStatus::Confirming | OrderStatus::AwaitingDeposit => {
                    Transition::Unchanged
                }
            };
            let Transition::Changed(next) = next else {
                return Ok(Done::Skipped(format!("coupon already {}", coupon.status.name())));
            };
            let mut tx = Tx::new();
            tx.push(app.store.op_coupon_transition(&coupon, &next)?);
            match app.store.transact(tx).await {
                Ok(()) => return Ok(Done::Applied(format!("coupon {} -> {}", coupon_id, next.status.name()))),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ConsumerError::Retryable("coupon kept changing".into()))
    }
}

/// The saga's compensations: cancel orphaned payments at the PG, carry out
/// refunds (PG cancel, points, stock → REFUNDED + `OrderRefunded`), and close
/// virtual accounts of orders cancelled before the deposit.
pub struct CompensationConsumer;

#[async_trait::async_trait]
impl Consumer for CompensationConsumer {
    fn name(&self) -> &'static str {
        "compensation"
    }

    async fn handle(&self, app: &App, event: &OrderEvent, detail: &EventDetail) -> Result<Done, ConsumerError> {
        match &event.kind {
            OrderEventKind::PaymentOrphaned { payment_key, .. } => {
                cancel_at_pg(app, payment_key, "order could no longer take the payment", &detail.correlation_id)
                    .await?;
                crate::metrics::count(app.service, "CompensationsOrphanCancelled", 1);
                Ok(Done::Applied(format!("payment {payment_key} cancelled at the PG")))
            }
            OrderEventKind::OrderCancelled { payment_key: Some(key), .. } => {
                cancel_at_pg(app, key, "order cancelled before the deposit", &detail.correlation_id).await?;
                Ok(Done::Applied(format!("virtual account {key} closed")))
            }
            OrderEventKind::RefundRequested { payment_key, .. } => {
                refund(app, event, payment_key.as_ref(), detail).await
            }
            OrderEventKind::OrderPlaced { .. }
            | OrderEventKind::PaymentConfirmationStarted { .. }
            | OrderEventKind::VirtualAccountIssued { .. }
            | OrderEventKind::OrderPaid { .. }
            | OrderEventKind::PaymentFailed { .. }
            | OrderEventKind::OrderExpired { .. }
            | OrderEventKind::OrderCancelled { payment_key: None, .. }
            | OrderEventKind::OrderRefunded { .. } => Ok(Done::Skipped("nothing to compensate".into())),
        }
    }
}

/// Cancels a payment at the PG (Idempotency-Key per payment) and records it.
async fn cancel_at_pg(
    app: &App,
    key: &shop_domain::PaymentKey,
    reason: &str,
    correlation_id: &str,
) -> Result<(), ConsumerError> {
    if let Some(p) = app.store.get_payment(key).await?
        && p.status == PaymentStatus::Canceled
    {
        return Ok(());
    }
    let pg = match app.pg.cancel(key, reason, None).await {
        Ok(p) => p,
        // Cancelled before (by us, or at the PG's console): look it up.
        Err(PgError::Declined { code, .. }) if code == "ALREADY_CANCELED_PAYMENT" => match app.pg.payment(key).await {
            Ok(p) => p,
            Err(e) => return Err(ConsumerError::Retryable(format!("lookup after ALREADY_CANCELED_PAYMENT: {e}"))),
        },
        Err(PgError::Declined { code, message }) => {
            return Err(ConsumerError::Permanent(format!("the PG refused the cancel: {code}: {message}")));
        }
        Err(PgError::NotFound) => return Err(ConsumerError::Permanent(format!("the PG has no payment {key}"))),
        Err(e @ (PgError::Unknown(_) | PgError::AlreadyProcessed)) => {
            return Err(ConsumerError::Retryable(format!("PG cancel: {e}")));
        }
    };
    apply_pg_outcome(app, key, &PgOutcome::Payment(pg), false, correlation_id)
        .await
        .map_err(|e| ConsumerError::Retryable(format!("recording the cancel: {e}")))?;
    Ok(())
}

async fn refund(
    app: &App,
    event: &OrderEvent,
    payment_key: Option<&shop_domain::PaymentKey>,
    detail: &EventDetail,
) -> Result<Done, ConsumerError> {
    if let Some(key) = payment_key {
        cancel_at_pg(app, key, "refund requested by the customer", &detail.correlation_id).await?;
    }
    for _ in 0..8 {
        let Some(order) = app.store.get_order(&event.order_id).await? else {
            return Err(ConsumerError::Permanent(format!("order {} does not exist", event.order_id)));
        };
        let now = app.clock.now();
        let (refunded, events) = match order.execute(&OrderCommand::CompleteRefund, now) {
            Ok(done) => done,
            Err(e) => return Err(ConsumerError::Permanent(format!("cannot complete the refund: {e}"))),
        };
        let Some(OrderEventKind::OrderRefunded { points_refunded, .. }) = events.first().map(|e| e.kind.clone()) else {
            return Ok(Done::Skipped("already refunded".into()));
        };
        let mut tx = Tx::new();
        tx.extend(release_stock_ops(app, &order)?);
        tx.extend(refund_points_ops(app, &order.user_id, points_refunded, LedgerReason::Refund, &order.id, now).await?);
        tx.push(app.store.op_update_order(order.version, &refunded)?);
        for e in &events {
            tx.push(app.store.op_put_event(e, &detail.correlation_id, detail.traceparent.as_deref())?);
        }
        match app.store.transact(tx).await {
            Ok(()) => {
                crate::metrics::count(app.service, "Refunds", 1);
                return Ok(Done::Applied(format!("refunded; {} points back", points_refunded.won())));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ConsumerError::Retryable("order kept changing".into()))
}

/// The data platform: receives order outcomes over HTTP, deduplicating by
/// `Idempotency-Key` (the event id).
#[async_trait::async_trait]
pub trait DataPlatform: Send + Sync {
    async fn deliver(&self, event_id: &str, body: &Value) -> Result<(), String>;
}

/// `POST {DATA_PLATFORM_URL}/events`.
pub struct HttpDataPlatform {
    pub http: reqwest::Client,
    pub url: String,
}

#[async_trait::async_trait]
impl DataPlatform for HttpDataPlatform {
    async fn deliver(&self, event_id: &str, body: &Value) -> Result<(), String> {
        let resp = self
            .http
            .post(format!("{}/events", self.url.trim_end_matches('/')))
            .header("idempotency-key", event_id)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("data platform unreachable: {e}"))?;
        match resp.status().as_u16() {
            200..=299 | 409 => Ok(()),
            s => Err(format!("data platform answered {s}")),
        }
    }
}

/// Exports order outcomes to the data platform. Its failure never touches
/// the order: it only delays the export.
pub struct AnalyticsConsumer {
    pub platform: std::sync::Arc<dyn DataPlatform>,
}

#[async_trait::async_trait]
impl Consumer for AnalyticsConsumer {
    fn name(&self) -> &'static str {
        "analytics"
    }

    async fn handle(&self, _: &App, event: &OrderEvent, detail: &EventDetail) -> Result<Done, ConsumerError> {
        let body = serde_json::json!({
            "eventId": detail.event_id,
            "detailType": event.kind.detail_type(),
            "orderId": event.order_id,
            "occurredAt": detail.occurred_at,
            "correlationId": detail.correlation_id,
            "data": detail.data,
        });
        self.platform.deliver(detail.event_id.as_str(), &body).await.map_err(ConsumerError::Retryable)?;
        Ok(Done::Applied("delivered to the data platform".into()))
    }
}
