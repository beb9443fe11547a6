//! A Toss-Payments-compatible PG simulator (`shop up --pg-port`).
//!
//! The same API our `TossClient` calls in production — confirm, cancel,
//! lookup by payment key and by order id, Basic auth with the secret key,
//! `Idempotency-Key` honoured as Toss does (same key → the stored response,
//! errors included) — plus what a test needs:
//!
//! - `POST /v1/sim/checkout {"orderId","amount","method":"CARD"|"VIRTUAL_ACCOUNT"}` → `{"paymentKey"}`
//!   (stands in for the payment widget);
//! - `POST /v1/sim/deposit {"paymentKey"}` completes a virtual-account payment;
//! - `POST /v1/sim/regress {"paymentKey"}` moves a DONE virtual account back
//!   to WAITING_FOR_DEPOSIT (Toss's rare network case; a deposit confirms it
//!   again), and the fault `{"op": "deposit", "fault": "regress"}` does it to
//!   the next deposit, then confirms it again a moment later;
//! - the cancel of a deposited virtual account requires
//!   `refundReceiveAccount` (`{bank, accountNumber, holderName}`, as Toss):
//!   without one 400 `INVALID_REQUEST`; an unknown bank `INVALID_BANK`; a
//!   number that is not 1–20 digits, or ends in `0000` (the simulated bank
//!   has no such account), `INVALID_REFUND_ACCOUNT_NUMBER`; and the fault
//!   `{"op": "cancel", "fault": "refund_account"}` refuses the next one's
//!   holder (`INVALID_REFUND_ACCOUNT_INFO`). Accepted, it is shown back on
//!   the cancel and the virtual account, its number masked (`110*****7270`);
//! - `POST /v1/sim/status {"paymentKey","status","notify"}` moves an unconfirmed
//!   payment as the PG does on its own: READY → IN_PROGRESS (the shopper
//!   authenticated in the widget), READY/IN_PROGRESS → ABORTED or EXPIRED
//!   (authentication failed, or never confirmed in time); with a
//!   `PAYMENT_STATUS_CHANGED` webhook unless `"notify": false`;
//! - webhooks `PAYMENT_STATUS_CHANGED` / `DEPOSIT_CALLBACK` to our
//!   `/webhooks/pg`, retried on non-200 on Toss's schedule (1, 4, 16, 64,
//!   256, 1024, 4096 "minutes"; one minute = `webhook_backoff`);
//! - `POST /v1/sim/faults {"op","fault","count"}`, `DELETE /v1/sim/faults`,
//!   `GET /v1/sim/calls`, `GET /v1/sim/payments`, `GET /v1/sim/webhooks`
//!   (each narrowed by `?orderId=` and `?paymentKey=`, calls also by `?op=`;
//!   pages of `?limit=` rows after `?after=`, the next page in `Link`).
//!
//! State lives in SQLite (`sim::db`): `<data-dir>/pgsim.db`, or in memory
//! without a data dir. A call is a few indexed statements in one transaction.

mod control;
mod state;
mod toss;
mod webhooks;

pub use state::{Call, Delivery, Fault, FaultKind, Op, SimPayment};

use crate::sim::db::{self, Db, Listed, Page, faults};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use state::{SCHEMA, rows};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A virtual account's deposit window when none is set (`--va-due`).
pub const VA_DUE: Duration = Duration::from_secs(3 * 86_400);

/// Toss retries a failed webhook after these many minutes.
pub const WEBHOOK_SCHEDULE: [u64; 7] = [1, 4, 16, 64, 256, 1024, 4096];

#[derive(Clone)]
pub struct SimOptions {
    pub secret_key: String,
    /// Where webhooks go (our `/webhooks/pg`); none: no webhooks.
    pub webhook_url: Option<String>,
    /// Signs webhooks (`Pg-Signature`) when set.
    pub webhook_secret: Option<String>,
    /// One "minute" of Toss's webhook retry schedule.
    pub webhook_backoff: Duration,
    /// How long a "timeout" or "lost_response" fault holds the answer: longer
    /// than the client's timeout.
    pub stall: Duration,
    /// Extra wait of a "delay" fault (shorter than the client's timeout).
    pub delay: Duration,
    /// How long a virtual account takes deposits (its `dueDate`, from the
    /// confirm on the simulator's clock); after it, deposits are refused and
    /// the account reads `expired: true` until it is cancelled.
    pub va_due: Duration,
    /// The database file (`None`: in memory).
    pub state_file: Option<PathBuf>,
    /// The clock webhook signatures are dated by (the stack's clock).
    pub clock: Arc<dyn shop_app::clock::Clock>,
}

pub struct PgSim {
    db: Db,
    opts: SimOptions,
    http: reqwest::Client,
    /// `Idempotency-Key`s whose first request is still being worked on: a
    /// second request with one is refused (409 IDEMPOTENT_REQUEST_PROCESSING)
    /// until the first's answer is stored, as Toss does.
    in_flight: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// `ms` as Toss writes times: ISO 8601 in Korea Standard Time.
fn kst(ms: i64) -> String {
    let utc = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    match chrono::FixedOffset::east_opt(9 * 3600) {
        Some(offset) => utc.with_timezone(&offset).format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
        None => utc.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    }
}

fn toss_error(status: u16, code: &str, message: &str) -> (u16, Value) {
    (status, json!({"code": code, "message": message}))
}

fn respond((status, body): (u16, Value)) -> Response {
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(body)).into_response()
}

/// Narrows the listings: `?orderId=`, `?paymentKey=`, and for calls `?op=`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    pub order_id: Option<String>,
    pub payment_key: Option<String>,
    pub op: Option<Op>,
}

impl Filter {
    fn columns(&self, with_op: bool) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        if let Some(o) = &self.order_id {
            out.push(("order_id", o.as_str()));
        }
        if let Some(k) = &self.payment_key {
            out.push(("payment_key", k.as_str()));
        }
        if let (true, Some(op)) = (with_op, self.op) {
            out.push(("op", op.as_str()));
        }
        out
    }
}

impl PgSim {
    pub fn new(opts: SimOptions) -> anyhow::Result<Arc<PgSim>> {
        let db = Db::open("pg-simulator", opts.state_file.as_deref(), SCHEMA)?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Arc::new(PgSim { db, opts, http, in_flight: Arc::default() }))
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/v1/payments/confirm", post(toss::confirm))
            .route("/v1/payments/{payment_key}/cancel", post(toss::cancel))
            .route("/v1/payments/{payment_key}", get(toss::lookup))
            .route("/v1/payments/orders/{order_id}", get(toss::lookup_by_order))
            .route("/v1/sim/checkout", post(control::checkout))
            .route("/v1/sim/deposit", post(control::deposit))
            .route("/v1/sim/regress", post(control::regress_now))
            .route("/v1/sim/status", post(control::set_status))
            .route("/v1/sim/faults", post(control::add_fault).delete(control::clear_faults).get(control::list_faults))
            .route("/v1/sim/calls", get(control::calls))
            .route("/v1/sim/payments", get(control::payments))
            .route("/v1/sim/webhooks", get(control::webhooks))
            .with_state(self.clone())
    }

    /// A page of the payments the PG holds (a benchmark's final check).
    pub async fn payments(&self, filter: Filter, page: Page) -> anyhow::Result<Listed<SimPayment>> {
        self.db.tx(move |c| db::page(c, "payments", &filter.columns(false), page)).await
    }

    /// A page of the calls the PG received.
    pub async fn calls(&self, filter: Filter, page: Page) -> anyhow::Result<Listed<Call>> {
        self.db.tx(move |c| db::page(c, "calls", &filter.columns(true), page)).await
    }

    /// The newest calls the PG received, newest first (below `before`).
    pub async fn calls_newest(&self, before: Option<i64>, limit: usize) -> anyhow::Result<Listed<Call>> {
        self.db.tx(move |c| db::newest(c, "calls", before, limit)).await
    }

    /// A page of the webhook attempts the PG made.
    pub async fn webhooks(&self, filter: Filter, page: Page) -> anyhow::Result<Listed<Delivery>> {
        self.db.tx(move |c| db::page(c, "webhooks", &filter.columns(false), page)).await
    }

    /// Arms a fault, as `POST /v1/sim/faults` does.
    pub async fn arm(&self, f: Fault) -> anyhow::Result<()> {
        self.db.tx(move |c| faults::add(c, f.op.as_str(), f.fault.as_str(), f.count)).await
    }

    /// The armed faults: (op, fault, calls left; -1 until cleared).
    pub async fn faults(&self) -> anyhow::Result<Vec<(String, String, i64)>> {
        self.db.tx(faults::list).await
    }

    /// Clears every armed fault, as `DELETE /v1/sim/faults` does.
    pub async fn clear_faults(&self) -> anyhow::Result<()> {
        self.db.tx(faults::clear).await
    }

    /// How many webhook attempts the PG made (each one a request to our API).
    pub async fn webhook_attempts(&self) -> anyhow::Result<u64> {
        self.db.tx(|c| Ok(c.query_row("SELECT count(*) FROM webhooks", [], |r| r.get(0))?)).await
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let expected =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:", self.opts.secret_key)));
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
    }

    async fn record(&self, call: Call) {
        if let Err(e) = self.db.tx(move |c| rows::record(c, &call)).await {
            db::logged(&e);
        }
    }

    async fn take_fault(&self, op: Op) -> Option<FaultKind> {
        self.db.tx(move |c| rows::take_fault(c, op)).await.unwrap_or_else(|e| {
            db::logged(&e);
            None
        })
    }
}
