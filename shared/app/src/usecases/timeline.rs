//! The saga of one order as a read model: every event, and what each
//! consumer did with it, oldest first (`GET /orders/{orderId}/timeline`,
//! `shop timeline`). Each event names the request that caused it: its
//! correlation id and trace id.

use crate::App;
use serde_json::{Value, json};
use shop_domain::OrderId;

/// The saga timeline of an order, oldest first.
pub async fn timeline(app: &App, order_id: &OrderId) -> anyhow::Result<Value> {
    let order = app.store.orders().get(order_id).await?.ok_or_else(|| anyhow::anyhow!("no order {order_id}"))?;
    let events = app.store.outbox().events_of(order_id).await?;
    let outcomes = app.store.saga().outcomes_of(order_id).await?;
    let mut steps = Vec::new();
    for e in &events {
        // The request that caused the event: its correlation id, and its
        // trace as the X-Ray trace id the logs carry.
        let detail: Value = serde_json::from_str(&e.detail).unwrap_or(Value::Null);
        let trace_id = detail.get("traceparent").and_then(Value::as_str).and_then(crate::obs::trace::trace_id_of);
        steps.push(json!({
            "at": e.occurred_at.to_rfc3339(), "kind": "event", "eventId": e.event_id,
            "detailType": e.detail_type, "published": !e.pending,
            "correlationId": detail.get("correlationId"), "traceId": trace_id,
        }));
        for o in outcomes.iter().filter(|o| o.event_id == e.event_id) {
            steps.push(json!({
                "at": o.at.to_rfc3339(), "kind": "consumer", "eventId": o.event_id, "consumer": o.consumer,
                "status": o.status, "attempts": o.attempts, "detail": o.detail,
                "deadLetteredAt": o.dead_lettered_at.map(|t| t.to_rfc3339()),
            }));
        }
    }
    Ok(json!({ "orderId": order.id, "status": order.status.as_str(), "timeline": steps }))
}
