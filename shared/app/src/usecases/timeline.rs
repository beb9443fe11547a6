//! The saga of one order as a read model: every event, and what each
//! consumer did with it, oldest first (`GET /orders/{orderId}/timeline`,
//! `shop timeline`).

use crate::App;
use serde_json::{Value, json};
use shop_domain::OrderId;

/// The saga timeline of an order, oldest first.
pub async fn timeline(app: &App, order_id: &OrderId) -> anyhow::Result<Value> {
    let order = app.store.get_order(order_id).await?.ok_or_else(|| anyhow::anyhow!("no order {order_id}"))?;
    let events = app.store.events_of(order_id).await?;
    let outcomes = app.store.outcomes_of(order_id).await?;
    let mut steps = Vec::new();
    for e in &events {
        steps.push(json!({
            "at": e.occurred_at.to_rfc3339(), "kind": "event", "eventId": e.event_id,
            "detailType": e.detail_type, "published": !e.pending,
        }));
        for o in outcomes.iter().filter(|o| o.event_id == e.event_id) {
            steps.push(json!({
                "at": o.at.to_rfc3339(), "kind": "consumer", "eventId": o.event_id, "consumer": o.consumer,
                "status": o.status, "attempts": o.attempts, "detail": o.detail,
            }));
        }
    }
    Ok(json!({ "orderId": order.id, "status": order.status.as_str(), "timeline": steps }))
}
