//! The data-platform sink (`shop up --sink-port`): receives the analytics
//! consumer's exports, deduplicates by `Idempotency-Key`, and keeps every
//! delivery durably (SQLite, `<data-dir>/sink.db`; `sim::db`).
//!
//! - `POST /events` — a delivery (`Idempotency-Key`: the event id);
//! - `GET /sim/deliveries` — the deliveries received: eventId, detailType,
//!   orderId, attempt, and whether it was accepted or a duplicate; narrowed
//!   by `?orderId=` and `?eventId=`, in pages (`?limit=`, `?after=`, the
//!   next page in `Link`);
//! - `POST /sim/faults {"fault":"error"|"slow","count":N}` (`-1` until
//!   cleared), `DELETE /sim/faults`.

use crate::sim::db::{self, Db, Listed, Page, faults};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rusqlite::OptionalExtension as _;
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
    /// When the delivery arrived (epoch ms, the stack's clock).
    #[serde(default)]
    pub at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SinkFault {
    pub fault: String,
    pub count: i64,
}

/// Every delivery (listed by order and by event id) and, per event id, the
/// attempts so far and whether one was accepted (deduplication).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, order_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS deliveries_by_order ON deliveries (order_id, seq);
CREATE INDEX IF NOT EXISTS deliveries_by_event ON deliveries (event_id, seq);
CREATE TABLE IF NOT EXISTS seen (
    event_id TEXT PRIMARY KEY, attempts INTEGER NOT NULL, accepted INTEGER NOT NULL) WITHOUT ROWID;
";

/// The faults' `op` for deliveries (the sink has one operation).
const DELIVER: &str = "deliver";

pub struct Sink {
    db: Db,
    slow: Duration,
    clock: Arc<dyn shop_app::clock::Clock>,
}

/// Narrows `/sim/deliveries`: `?orderId=`, `?eventId=`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    pub order_id: Option<String>,
    pub event_id: Option<String>,
}

impl Sink {
    /// Arms a fault, as `POST /sim/faults` does.
    pub async fn arm(&self, f: SinkFault) -> anyhow::Result<()> {
        self.db.tx(move |c| faults::add(c, DELIVER, &f.fault, f.count)).await
    }

    /// Clears every armed fault, as `DELETE /sim/faults` does.
    pub async fn clear_faults(&self) -> anyhow::Result<()> {
        self.db.tx(faults::clear).await
    }

    /// The armed faults: (fault, deliveries left, -1 until cleared).
    pub async fn faults(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let all = self.db.tx(faults::list).await?;
        Ok(all.into_iter().map(|(_, fault, count)| (fault, count)).collect())
    }

    pub fn new(
        file: Option<PathBuf>,
        slow: Duration,
        clock: Arc<dyn shop_app::clock::Clock>,
    ) -> anyhow::Result<Arc<Sink>> {
        Ok(Arc::new(Sink { db: Db::open("sink-simulator", file.as_deref(), SCHEMA)?, slow, clock }))
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/events", post(receive))
            .route("/sim/deliveries", axum::routing::get(deliveries))
            .route("/sim/faults", post(add_fault).delete(clear_faults))
            .with_state(self.clone())
    }

    /// A page of the deliveries received, oldest first.
    /// The newest deliveries, newest first (below `before`).
    pub async fn deliveries_newest(&self, before: Option<i64>, limit: usize) -> anyhow::Result<Listed<Delivery>> {
        self.db.tx(move |c| crate::sim::db::newest(c, "deliveries", before, limit)).await
    }

    pub async fn deliveries(&self, filter: Filter, page: Page) -> anyhow::Result<Listed<Delivery>> {
        self.db
            .tx(move |c| {
                let mut by = Vec::new();
                if let Some(o) = &filter.order_id {
                    by.push(("order_id", o.as_str()));
                }
                if let Some(e) = &filter.event_id {
                    by.push(("event_id", e.as_str()));
                }
                db::page(c, "deliveries", &by, page)
            })
            .await
    }

    /// One order's deliveries, oldest first (an order has a handful).
    pub async fn deliveries_of(&self, order_id: &str) -> anyhow::Result<Vec<Delivery>> {
        let filter = Filter { order_id: Some(order_id.to_owned()), event_id: None };
        Ok(self.deliveries(filter, Page { after: 0, limit: Some(db::MAX_LIMIT) }).await?.items)
    }
}

async fn receive(State(sink): State<Arc<Sink>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let event_id = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let detail_type = body.get("detailType").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let order_id = body.get("orderId").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    if event_id.is_empty() {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "Idempotency-Key required"}))).into_response();
    }
    let fault = match sink.db.tx(|c| faults::take(c, DELIVER)).await {
        Ok(fault) => fault,
        Err(e) => return db::internal(&e),
    };
    if fault.as_deref() == Some("slow") {
        tokio::time::sleep(sink.slow).await;
    }
    let status: u16 = if fault.as_deref() == Some("error") { 500 } else { 200 };
    let at = Some(sink.clock.now().millis());
    let recorded =
        sink.db
            .tx(move |c| {
                let (attempts, accepted): (u32, bool) = c
                    .prepare_cached("SELECT attempts, accepted FROM seen WHERE event_id = ?1")?
                    .query_row([&event_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?
                    .unwrap_or_default();
                let duplicate = status == 200 && accepted;
                let attempt = attempts + 1;
                c.prepare_cached("INSERT OR REPLACE INTO seen (event_id, attempts, accepted) VALUES (?1, ?2, ?3)")?
                    .execute((&event_id, attempt, accepted || status == 200))?;
                let d = Delivery { event_id, detail_type, order_id, attempt, status, duplicate, at };
                c.prepare_cached("INSERT INTO deliveries (event_id, order_id, body) VALUES (?1, ?2, ?3)")?
                    .execute((&d.event_id, &d.order_id, db::body(&d)?))?;
                Ok(duplicate)
            })
            .await;
    match (recorded, status) {
        (Err(e), _) => db::internal(&e),
        (Ok(duplicate), 200) => {
            (StatusCode::OK, Json(json!({"accepted": true, "duplicate": duplicate}))).into_response()
        }
        (Ok(_), _) => {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "data platform unavailable (simulated)"})))
                .into_response()
        }
    }
}

async fn deliveries(
    State(sink): State<Arc<Sink>>,
    uri: Uri,
    Query(f): Query<Filter>,
    Query(p): Query<Page>,
) -> Response {
    db::listing(&uri, sink.deliveries(f, p).await)
}

async fn add_fault(State(sink): State<Arc<Sink>>, Json(f): Json<SinkFault>) -> Response {
    if !matches!(f.fault.as_str(), "error" | "slow") || f.count == 0 || f.count < -1 {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "fault is error|slow, count > 0 or -1"})))
            .into_response();
    }
    match sink.arm(f.clone()).await {
        Ok(()) => Json(json!(f)).into_response(),
        Err(e) => db::internal(&e),
    }
}

async fn clear_faults(State(sink): State<Arc<Sink>>) -> Response {
    match sink.clear_faults().await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => db::internal(&e),
    }
}
