//! The data-platform sink (`shop up --sink-port`): receives the analytics
//! consumer's exports, deduplicates by `Idempotency-Key`, and keeps every
//! delivery durably (the journal `<data-dir>/sink.jsonl`; `sim::journal`).
//!
//! - `POST /events` — a delivery (`Idempotency-Key`: the event id);
//! - `GET /sim/deliveries` — every delivery received: eventId, detailType,
//!   orderId, attempt, and whether it was accepted or a duplicate;
//! - `POST /sim/faults {"fault":"error"|"slow","count":N}` (`-1` until
//!   cleared), `DELETE /sim/faults`.

use crate::sim::journal::{Journal, Log, OfOrder, Table, Whole, journaled};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub event_id: String,
    pub detail_type: String,
    pub order_id: String,
    /// 1 for the first request with this event id, 2 for the next, ...
    pub attempt: u32,
    /// 200 accepted, 500 refused by an injected fault.
    pub status: u16,
    pub duplicate: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SinkFault {
    pub fault: String,
    pub count: i64,
}

/// What the sink knows of one event id, for attempts and deduplication.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Seen {
    attempts: u32,
    accepted: bool,
}

#[derive(Default)]
struct SinkState {
    deliveries: Log<Delivery>,
    by_event: Table<Seen>,
    faults: Whole<Vec<SinkFault>>,
}

journaled!(SinkState { deliveries: "deliveries", by_event: "byEvent", faults: "faults" });

impl OfOrder for Delivery {
    fn order_id(&self) -> Option<&str> {
        Some(&self.order_id)
    }
}

pub struct Sink {
    state: Journal<SinkState>,
    slow: Duration,
}

impl Sink {
    pub fn new(file: Option<PathBuf>, slow: Duration) -> anyhow::Result<Arc<Sink>> {
        Ok(Arc::new(Sink { state: Journal::load(file)?, slow }))
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/events", post(receive))
            .route("/sim/deliveries", axum::routing::get(deliveries))
            .route("/sim/faults", post(add_fault).delete(clear_faults))
            .with_state(self.clone())
    }

    fn with<T>(&self, f: impl FnOnce(&mut SinkState) -> T) -> T {
        self.state.with(f)
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.with(|s| s.deliveries.all().to_vec())
    }

    /// One order's deliveries, oldest first.
    pub fn deliveries_of(&self, order_id: &str) -> Vec<Delivery> {
        self.with(|s| s.deliveries.of_order(order_id).cloned().collect())
    }
}

async fn receive(State(sink): State<Arc<Sink>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let event_id = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let detail_type = body.get("detailType").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let order_id = body.get("orderId").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    if event_id.is_empty() {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "Idempotency-Key required"}))).into_response();
    }
    let fault = sink.with(|s| {
        let i = s.faults.iter().position(|f| f.count != 0)?;
        let f = s.faults.get_mut(i)?;
        let kind = f.fault.clone();
        if f.count > 0 {
            f.count -= 1;
        }
        if f.count == 0 {
            s.faults.remove(i);
        }
        Some(kind)
    });
    if fault.as_deref() == Some("slow") {
        tokio::time::sleep(sink.slow).await;
    }
    let status = if fault.as_deref() == Some("error") { 500 } else { 200 };
    let duplicate = sink.with(|s| {
        let mut seen = s.by_event.get(&event_id).cloned().unwrap_or_default();
        seen.attempts += 1;
        let duplicate = status == 200 && seen.accepted;
        seen.accepted |= status == 200;
        let attempt = seen.attempts;
        s.by_event.insert(event_id.clone(), seen);
        s.deliveries.push(Delivery { event_id: event_id.clone(), detail_type, order_id, attempt, status, duplicate });
        duplicate
    });
    match status {
        200 => (StatusCode::OK, Json(json!({"accepted": true, "duplicate": duplicate}))).into_response(),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "data platform unavailable (simulated)"})))
            .into_response(),
    }
}

/// `?orderId=` narrows the listing to one order.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    order_id: Option<String>,
}

async fn deliveries(State(sink): State<Arc<Sink>>, axum::extract::Query(f): axum::extract::Query<Filter>) -> Response {
    match f.order_id {
        Some(order) => Json(json!(sink.deliveries_of(&order))).into_response(),
        None => Json(json!(sink.deliveries())).into_response(),
    }
}

async fn add_fault(State(sink): State<Arc<Sink>>, Json(f): Json<SinkFault>) -> Response {
    if !matches!(f.fault.as_str(), "error" | "slow") || f.count == 0 || f.count < -1 {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "fault is error|slow, count > 0 or -1"})))
            .into_response();
    }
    sink.with(|s| s.faults.push(f.clone()));
    Json(json!(f)).into_response()
}

async fn clear_faults(State(sink): State<Arc<Sink>>) -> Response {
    sink.with(|s| s.faults.clear());
    StatusCode::NO_CONTENT.into_response()
}
