//! The `detail` of an event on the bus. It is built from the outbox item, so
//! every delivery, redrive and replay of one event carries the same `eventId`.

use crate::{EventId, OrderEvent, OrderEventKind, OrderId, Timestamp};
use serde::{Deserialize, Serialize};

/// `source` of every order event on the bus.
pub const SOURCE: &str = "shop.orders";
/// Version of the detail schema (events/schemas/).
pub const EVENT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDetail {
    pub event_id: EventId,
    pub event_version: u32,
    pub order_id: OrderId,
    pub aggregate_version: u64,
    /// RFC 3339, UTC.
    pub occurred_at: String,
    pub correlation_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    pub data: serde_json::Value,
}

/// An event as EventBridge hands it to a rule's target — the body of each
/// SQS message a consumer receives, the entry of the archive and of a
/// replay — around a `detail` of type `D` ([`EventDetail`] for an order's
/// events). The one shape from the bus to every consumer: the local bus
/// writes it, the consumers and the DLQ tools read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusEvent<D> {
    #[serde(default)]
    pub version: String,
    /// The bus's id of this delivery (not the event's `eventId`).
    #[serde(default)]
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub account: String,
    /// RFC 3339, when the bus accepted the entry.
    #[serde(default)]
    pub time: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub resources: Vec<String>,
    pub detail: D,
    /// Set on the events of an archive replay.
    #[serde(rename = "replay-name", default, skip_serializing_if = "Option::is_none")]
    pub replay_name: Option<String>,
}

impl BusEvent<EventDetail> {
    /// The order event it carries, back from its detail type and detail.
    pub fn order_event(&self) -> Result<OrderEvent, EnvelopeError> {
        self.detail.to_event(&self.detail_type)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("event detail does not match its detail-type {detail_type}: {source}")]
    Mismatch { detail_type: String, source: serde_json::Error },
    #[error("occurredAt {0} is not RFC 3339")]
    BadTime(String),
}

impl EventDetail {
    pub fn new(event: &OrderEvent, correlation_id: &str, traceparent: Option<&str>) -> Self {
        // Adjacently tagged: {"detailType": .., "data": {..}}. Serialising a
        // plain enum of owned values cannot fail.
        let data = match serde_json::to_value(&event.kind) {
            Ok(serde_json::Value::Object(mut m)) => m.remove("data").unwrap_or(serde_json::Value::Null),
            Ok(_) | Err(_) => serde_json::Value::Null,
        };
        EventDetail {
            event_id: event.event_id(),
            event_version: EVENT_VERSION,
            order_id: event.order_id.clone(),
            aggregate_version: event.aggregate_version,
            occurred_at: event.occurred_at.to_rfc3339(),
            correlation_id: correlation_id.to_owned(),
            traceparent: traceparent.map(str::to_owned),
            data,
        }
    }

    /// The domain event back from a `detail-type` and this detail.
    pub fn to_event(&self, detail_type: &str) -> Result<OrderEvent, EnvelopeError> {
        let tagged = serde_json::json!({ "detailType": detail_type, "data": self.data });
        let kind: OrderEventKind = serde_json::from_value(tagged)
            .map_err(|source| EnvelopeError::Mismatch { detail_type: detail_type.to_owned(), source })?;
        let occurred_at = Timestamp::parse_rfc3339(&self.occurred_at)
            .ok_or_else(|| EnvelopeError::BadTime(self.occurred_at.clone()))?;
        Ok(OrderEvent { order_id: self.order_id.clone(), aggregate_version: self.aggregate_version, occurred_at, kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OrderCommand, OrderStatus};

    #[test]
    fn detail_round_trips_to_the_event() {
        let order = crate::order::Order {
            id: OrderId::parse("o1").unwrap(),
            user_id: crate::UserId::parse("u1").unwrap(),
            status: OrderStatus::PendingPayment,
            version: 1,
            lines: vec![],
            coupon_id: None,
            subtotal: crate::Money::ZERO,
            discount: crate::Money::ZERO,
            points_used: crate::Money::ZERO,
            amount_due: crate::Money::ZERO,
            created_at: Timestamp::from_millis(0),
            expires_at: Timestamp::from_millis(10),
            payment_key: None,
            payment_method: None,
            orphaned_payments: vec![],
            deposit_due_at: None,
            sale_id: None,
            refunds: vec![],
        };
        let (_, events) = order.execute(&OrderCommand::Expire, Timestamp::from_millis(20)).unwrap();
        let detail = EventDetail::new(&events[0], "corr-1", None);
        assert_eq!(detail.event_id.as_str(), "o1#2");
        assert_eq!(detail.data["userId"], "u1");
        let json = serde_json::to_string(&detail).unwrap();
        let back: EventDetail = serde_json::from_str(&json).unwrap();
        assert_eq!(back.to_event("OrderExpired").unwrap(), events[0]);
        assert!(back.to_event("OrderPaid").is_err());
    }
}
