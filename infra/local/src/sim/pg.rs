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

use crate::sim::db::{self, Db, Listed, Page, faults};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Confirm,
    Cancel,
    Lookup,
    Webhook,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Decline,
    Error,
    Timeout,
    LostResponse,
    Duplicate,
    Delay,
    Reorder,
    /// Webhooks only: never sent, not even retried (lost for good).
    Lost,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    pub op: Op,
    pub fault: FaultKind,
    /// Calls left to affect; -1 until cleared.
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimPayment {
    pub payment_key: String,
    pub order_id: String,
    pub total_amount: u64,
    pub balance_amount: u64,
    /// CARD or VIRTUAL_ACCOUNT.
    pub method: String,
    pub status: String,
    pub requested_at: String,
    pub approved_at: Option<String>,
    pub virtual_account: Option<Value>,
    pub cancels: Vec<Value>,
    /// A virtual account's due date (epoch ms).
    #[serde(default)]
    pub deposit_due_ms: Option<i64>,
}

impl SimPayment {
    /// The payment as Toss answers it at `now_ms`.
    fn to_toss(&self, now_ms: i64) -> Value {
        let virtual_account = self.virtual_account.clone().map(|mut va| {
            if let (Some(fields), Some(due)) = (va.as_object_mut(), self.deposit_due_ms) {
                fields.insert("expired".into(), Value::Bool(now_ms >= due));
            }
            va
        });
        json!({
            "mId": "tosspayments",
            "version": "2022-11-16",
            "paymentKey": self.payment_key,
            "orderId": self.order_id,
            "orderName": "shop order",
            "status": self.status,
            "method": if self.method == "VIRTUAL_ACCOUNT" { "가상계좌" } else { "카드" },
            "totalAmount": self.total_amount,
            "balanceAmount": self.balance_amount,
            "currency": "KRW",
            "requestedAt": self.requested_at,
            "approvedAt": self.approved_at,
            "virtualAccount": virtual_account,
            "cancels": if self.cancels.is_empty() { Value::Null } else { Value::Array(self.cancels.clone()) },
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    pub op: Op,
    pub order_id: Option<String>,
    pub payment_key: Option<String>,
    pub idempotency_key: Option<String>,
    /// The caller's `X-Correlation-Id` and W3C `traceparent`: which request
    /// of ours made the call.
    pub correlation_id: Option<String>,
    pub traceparent: Option<String>,
    pub outcome: String,
    /// When the call arrived (epoch ms, the simulator's clock).
    #[serde(default)]
    pub at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub event_type: String,
    pub payment_key: Option<String>,
    pub order_id: String,
    pub attempt: u32,
    /// HTTP status we answered, or 0 when the attempt did not reach us.
    pub status: u16,
    /// When the attempt was made (epoch ms, the simulator's clock).
    #[serde(default)]
    pub at: Option<i64>,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Confirm => "confirm",
            Op::Cancel => "cancel",
            Op::Lookup => "lookup",
            Op::Webhook => "webhook",
        }
    }
}

impl FaultKind {
    fn as_str(self) -> &'static str {
        match self {
            FaultKind::Decline => "decline",
            FaultKind::Error => "error",
            FaultKind::Timeout => "timeout",
            FaultKind::LostResponse => "lost_response",
            FaultKind::Duplicate => "duplicate",
            FaultKind::Delay => "delay",
            FaultKind::Reorder => "reorder",
            FaultKind::Lost => "lost",
        }
    }
}

/// Every payment (by key, and by order: an order's latest checkout is the
/// one a lookup by order id finds), the stored answer of every
/// `Idempotency-Key`, and the calls and webhook attempts for the listings.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS payments (
    seq INTEGER PRIMARY KEY, payment_key TEXT NOT NULL UNIQUE, order_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS payments_by_order ON payments (order_id, seq);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY, status INTEGER NOT NULL, body TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS calls (
    seq INTEGER PRIMARY KEY, op TEXT NOT NULL, order_id TEXT, payment_key TEXT, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS calls_by_order ON calls (order_id, seq);
CREATE INDEX IF NOT EXISTS calls_by_payment ON calls (payment_key, seq);
CREATE INDEX IF NOT EXISTS calls_by_op ON calls (op, seq);
CREATE TABLE IF NOT EXISTS webhooks (
    seq INTEGER PRIMARY KEY, order_id TEXT NOT NULL, payment_key TEXT, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS webhooks_by_order ON webhooks (order_id, seq);
CREATE INDEX IF NOT EXISTS webhooks_by_payment ON webhooks (payment_key, seq);
";

/// The statements of the PG's state, each run inside a caller's transaction.
mod rows {
    use super::*;
    use rusqlite::{Connection, OptionalExtension as _};

    pub fn payment(c: &Connection, key: &str) -> anyhow::Result<Option<SimPayment>> {
        db::one(c, "SELECT body FROM payments WHERE payment_key = ?1", [key])
    }

    pub fn latest_of_order(c: &Connection, order_id: &str) -> anyhow::Result<Option<SimPayment>> {
        db::one(c, "SELECT body FROM payments WHERE order_id = ?1 ORDER BY seq DESC LIMIT 1", [order_id])
    }

    /// False when the key is taken.
    pub fn insert_payment(c: &Connection, p: &SimPayment) -> anyhow::Result<bool> {
        let n = c
            .prepare_cached("INSERT OR IGNORE INTO payments (payment_key, order_id, body) VALUES (?1, ?2, ?3)")?
            .execute((&p.payment_key, &p.order_id, db::body(p)?))?;
        Ok(n == 1)
    }

    pub fn save_payment(c: &Connection, p: &SimPayment) -> anyhow::Result<()> {
        c.prepare_cached("UPDATE payments SET body = ?2 WHERE payment_key = ?1")?
            .execute((&p.payment_key, db::body(p)?))?;
        Ok(())
    }

    pub fn stored_answer(c: &Connection, key: &str) -> anyhow::Result<Option<(u16, Value)>> {
        let row: Option<(u16, String)> = c
            .prepare_cached("SELECT status, body FROM idempotency WHERE key = ?1")?
            .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(row.map(|(status, body)| serde_json::from_str(&body).map(|b| (status, b))).transpose()?)
    }

    pub fn store_answer(c: &Connection, key: Option<&str>, (status, body): &(u16, Value)) -> anyhow::Result<()> {
        if let Some(key) = key {
            c.prepare_cached("INSERT OR REPLACE INTO idempotency (key, status, body) VALUES (?1, ?2, ?3)")?
                .execute((key, status, body.to_string()))?;
        }
        Ok(())
    }

    pub fn record(c: &Connection, call: &Call) -> anyhow::Result<()> {
        c.prepare_cached("INSERT INTO calls (op, order_id, payment_key, body) VALUES (?1, ?2, ?3, ?4)")?.execute((
            call.op.as_str(),
            &call.order_id,
            &call.payment_key,
            db::body(call)?,
        ))?;
        Ok(())
    }

    pub fn record_webhook(c: &Connection, d: &Delivery) -> anyhow::Result<()> {
        c.prepare_cached("INSERT INTO webhooks (order_id, payment_key, body) VALUES (?1, ?2, ?3)")?.execute((
            &d.order_id,
            &d.payment_key,
            db::body(d)?,
        ))?;
        Ok(())
    }

    pub fn take_fault(c: &Connection, op: Op) -> anyhow::Result<Option<FaultKind>> {
        let Some(name) = faults::take(c, op.as_str())? else { return Ok(None) };
        Ok(Some(serde_json::from_value(Value::String(name))?))
    }
}

pub struct PgSim {
    db: Db,
    opts: SimOptions,
    http: reqwest::Client,
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
        Ok(Arc::new(PgSim { db, opts, http }))
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/v1/payments/confirm", post(confirm))
            .route("/v1/payments/{payment_key}/cancel", post(cancel))
            .route("/v1/payments/{payment_key}", get(lookup))
            .route("/v1/payments/orders/{order_id}", get(lookup_by_order))
            .route("/v1/sim/checkout", post(checkout))
            .route("/v1/sim/deposit", post(deposit))
            .route("/v1/sim/status", post(set_status))
            .route("/v1/sim/faults", post(add_fault).delete(clear_faults).get(list_faults))
            .route("/v1/sim/calls", get(calls))
            .route("/v1/sim/payments", get(payments))
            .route("/v1/sim/webhooks", get(webhooks))
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

    /// Sends a webhook in the background, retrying on Toss's schedule. The
    /// first attempt's fault is taken now, in the order of the changes.
    async fn notify(
        self: &Arc<Self>,
        event_type: &'static str,
        body: Value,
        payment_key: Option<String>,
        order_id: String,
    ) {
        let Some(url) = self.opts.webhook_url.clone() else { return };
        let fault = self.take_fault(Op::Webhook).await;
        if fault == Some(FaultKind::Lost) {
            let at = Some(self.opts.clock.now().millis());
            let d = Delivery { event_type: event_type.to_owned(), payment_key, order_id, attempt: 1, status: 0, at };
            if let Err(e) = self.db.tx(move |c| rows::record_webhook(c, &d)).await {
                db::logged(&e);
            }
            return;
        }
        let sim = self.clone();
        tokio::spawn(async move {
            match fault {
                Some(FaultKind::Delay) => tokio::time::sleep(sim.opts.delay).await,
                // Held back so the next notification overtakes it.
                Some(FaultKind::Reorder) => tokio::time::sleep(sim.opts.stall).await,
                _ => {}
            }
            let copies = if fault == Some(FaultKind::Duplicate) { 2 } else { 1 };
            let mut tasks = Vec::new();
            for _ in 0..copies {
                let sim = sim.clone();
                let (url, body, pk, oid) = (url.clone(), body.clone(), payment_key.clone(), order_id.clone());
                let fail_first = matches!(fault, Some(FaultKind::Error | FaultKind::Timeout | FaultKind::LostResponse));
                tasks
                    .push(tokio::spawn(async move { sim.deliver(&url, event_type, &body, pk, oid, fail_first).await }));
            }
            // Each retry is a call of its own for the fault list (see `deliver`).
            for t in tasks {
                let _ = t.await;
            }
        });
    }

    async fn deliver(
        &self,
        url: &str,
        event_type: &str,
        body: &Value,
        payment_key: Option<String>,
        order_id: String,
        fail_first: bool,
    ) {
        let raw = body.to_string();
        for attempt in 0..=WEBHOOK_SCHEDULE.len() as u32 {
            // The first attempt's fault was taken when the webhook was queued.
            let failing = if attempt == 0 {
                fail_first
            } else {
                matches!(
                    self.take_fault(Op::Webhook).await,
                    Some(FaultKind::Error | FaultKind::Timeout | FaultKind::LostResponse)
                )
            };
            let status = if failing {
                0
            } else {
                let mut req = self.http.post(url).header("content-type", "application/json").body(raw.clone());
                if let Some(secret) = &self.opts.webhook_secret {
                    let sig = shop_app::http::webhook::sign(secret, self.opts.clock.now().seconds(), raw.as_bytes());
                    req = req.header(shop_app::http::webhook::SIGNATURE_HEADER, sig);
                }
                match req.send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                }
            };
            let d = Delivery {
                event_type: event_type.to_owned(),
                payment_key: payment_key.clone(),
                order_id: order_id.clone(),
                attempt: attempt + 1,
                status,
                at: Some(self.opts.clock.now().millis()),
            };
            if let Err(e) = self.db.tx(move |c| rows::record_webhook(c, &d)).await {
                db::logged(&e);
            }
            if status == 200 {
                return;
            }
            let Some(minutes) = WEBHOOK_SCHEDULE.get(attempt as usize) else { return };
            tokio::time::sleep(self.opts.webhook_backoff * u32::try_from(*minutes).unwrap_or(u32::MAX)).await;
        }
    }

    /// `PAYMENT_STATUS_CHANGED` for `payment` (its Toss form).
    async fn status_changed(self: &Arc<Self>, payment: Value) {
        let pk = payment.get("paymentKey").and_then(Value::as_str).map(str::to_owned);
        let order_id = payment.get("orderId").and_then(Value::as_str).unwrap_or_default().to_owned();
        let created = kst(self.opts.clock.now().millis());
        let body = json!({"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": created, "data": payment});
        self.notify("PAYMENT_STATUS_CHANGED", body, pk, order_id).await;
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckoutBody {
    order_id: String,
    amount: u64,
    #[serde(default)]
    method: Option<String>,
    /// Fixtures may ask for a fixed key; the widget normally picks one.
    #[serde(default)]
    payment_key: Option<String>,
}

async fn checkout(State(sim): State<Arc<PgSim>>, Json(b): Json<CheckoutBody>) -> Response {
    let method = b.method.unwrap_or_else(|| "CARD".into());
    if method != "CARD" && method != "VIRTUAL_ACCOUNT" {
        return respond(toss_error(400, "INVALID_REQUEST", "method must be CARD or VIRTUAL_ACCOUNT"));
    }
    let payment_key = b.payment_key.clone().unwrap_or_else(|| format!("sim_{}", uuid::Uuid::now_v7().simple()));
    let now = sim.opts.clock.now().millis();
    let p = SimPayment {
        payment_key: payment_key.clone(),
        order_id: b.order_id,
        total_amount: b.amount,
        balance_amount: b.amount,
        method,
        status: "READY".into(),
        requested_at: kst(now),
        approved_at: None,
        virtual_account: None,
        cancels: vec![],
        deposit_due_ms: None,
    };
    match sim.db.tx(move |c| rows::insert_payment(c, &p)).await {
        Ok(true) => respond((200, json!({"paymentKey": payment_key}))),
        Ok(false) => respond(toss_error(400, "DUPLICATED_PAYMENT_KEY", "paymentKey already exists")),
        Err(e) => db::internal(&e),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfirmBody {
    payment_key: String,
    order_id: String,
    amount: u64,
}

/// Does the confirm at `now` (ms); the answer, and the payment when its
/// status changed (for the webhook). A virtual account is due `va_due_ms` later.
fn do_confirm(
    c: &rusqlite::Connection,
    b: &ConfirmBody,
    decline: bool,
    now: i64,
    va_due_ms: i64,
) -> anyhow::Result<((u16, Value), Option<Value>)> {
    let Some(mut p) = rows::payment(c, &b.payment_key)? else {
        return Ok((toss_error(404, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다."), None));
    };
    if p.order_id != b.order_id || p.total_amount != b.amount {
        return Ok((toss_error(400, "INVALID_REQUEST", "orderId or amount does not match the payment"), None));
    }
    match p.status.as_str() {
        "READY" | "IN_PROGRESS" => {}
        "DONE" | "WAITING_FOR_DEPOSIT" => {
            return Ok((toss_error(400, "ALREADY_PROCESSED_PAYMENT", "이미 처리된 결제 입니다."), None));
        }
        _ => return Ok((toss_error(400, "INVALID_REQUEST", "the payment cannot be confirmed"), None)),
    }
    if decline {
        p.status = "ABORTED".into();
        rows::save_payment(c, &p)?;
        let declined = toss_error(403, "REJECT_CARD_COMPANY", "카드사에서 거절했습니다. (simulated decline)");
        return Ok((declined, Some(p.to_toss(now))));
    }
    if p.method == "VIRTUAL_ACCOUNT" {
        p.status = "WAITING_FOR_DEPOSIT".into();
        let due = now.saturating_add(va_due_ms);
        p.deposit_due_ms = Some(due);
        p.virtual_account = Some(json!({
            "accountType": "일반",
            "accountNumber": format!("X{}", p.payment_key.get(p.payment_key.len().saturating_sub(10)..).unwrap_or_default()),
            "bankCode": "88",
            "customerName": "shop customer",
            "dueDate": kst(due),
            "refundStatus": "NONE",
            "expired": false,
            "settlementStatus": "INCOMPLETED",
        }));
    } else {
        p.status = "DONE".into();
        p.approved_at = Some(kst(now));
    }
    rows::save_payment(c, &p)?;
    let toss = p.to_toss(now);
    Ok(((200, toss.clone()), Some(toss)))
}

/// Runs in its own task: a real PG finishes its work when the caller hangs
/// up (hyper drops a handler's future when the client disconnects).
async fn confirm(State(sim): State<Arc<PgSim>>, headers: HeaderMap, Json(b): Json<ConfirmBody>) -> Response {
    match tokio::spawn(confirm_work(sim, headers, b)).await {
        Ok(r) => r,
        Err(_) => respond(toss_error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING", "simulator task failed")),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    header(headers, "idempotency-key")
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Before the work of a call with an `Idempotency-Key`: the answer stored
/// for the key (the call is recorded as replayed), else the fault this call
/// takes — one transaction.
async fn replay_or_fault(sim: &PgSim, op: Op, idem: Option<String>, call: Call) -> Result<Option<FaultKind>, Response> {
    let before = sim
        .db
        .tx(move |c| {
            if let Some(k) = &idem
                && let Some(stored) = rows::stored_answer(c, k)?
            {
                rows::record(c, &Call { outcome: "replayed".into(), ..call })?;
                return Ok(Err(stored));
            }
            Ok(Ok(rows::take_fault(c, op)?))
        })
        .await;
    match before {
        Ok(Ok(fault)) => Ok(fault),
        Ok(Err(stored)) => Err(respond(stored)),
        Err(e) => Err(db::internal(&e)),
    }
}

async fn confirm_work(sim: Arc<PgSim>, headers: HeaderMap, b: ConfirmBody) -> Response {
    let idem = idempotency_key(&headers);
    let call = Call {
        op: Op::Confirm,
        order_id: Some(b.order_id.clone()),
        payment_key: Some(b.payment_key.clone()),
        idempotency_key: idem.clone(),
        correlation_id: header(&headers, "x-correlation-id"),
        traceparent: header(&headers, "traceparent"),
        outcome: String::new(),
        at: Some(sim.opts.clock.now().millis()),
    };
    if !sim.authorized(&headers) {
        sim.record(Call { outcome: "unauthorized".into(), ..call }).await;
        return respond(toss_error(401, "UNAUTHORIZED_KEY", "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다."));
    }
    let fault = match replay_or_fault(&sim, Op::Confirm, idem.clone(), call.clone()).await {
        Ok(fault) => fault,
        Err(answer) => return answer,
    };
    match fault {
        // Slow PG: the work happens after the caller has given up.
        Some(FaultKind::Timeout) => tokio::time::sleep(sim.opts.stall).await,
        Some(FaultKind::Delay) => tokio::time::sleep(sim.opts.delay).await,
        _ => {}
    }
    // The work, its stored answer and its record: one transaction.
    let now = sim.opts.clock.now().millis();
    let va_due_ms = i64::try_from(sim.opts.va_due.as_millis()).unwrap_or(i64::MAX);
    let done = sim
        .db
        .tx(move |c| {
            let (answer, changed) = if fault == Some(FaultKind::Error) {
                let error = "내부 시스템 처리 작업이 실패했습니다. (simulated)";
                (toss_error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING", error), None)
            } else {
                do_confirm(c, &b, fault == Some(FaultKind::Decline), now, va_due_ms)?
            };
            rows::store_answer(c, idem.as_deref(), &answer)?;
            let outcome = match (fault, answer.0) {
                (Some(FaultKind::Error), _) => "error".to_owned(),
                (Some(FaultKind::LostResponse), _) => "lost_response".to_owned(),
                (Some(FaultKind::Timeout), _) => "timeout".to_owned(),
                (_, status) => {
                    answer.1.get("status").and_then(|v| v.as_str()).map_or(format!("HTTP {status}"), str::to_owned)
                }
            };
            rows::record(c, &Call { outcome, ..call })?;
            Ok((answer, changed))
        })
        .await;
    let (answer, changed) = match done {
        Ok(done) => done,
        Err(e) => return db::internal(&e),
    };
    if let Some(payment) = changed {
        sim.status_changed(payment).await;
    }
    if fault == Some(FaultKind::LostResponse) {
        // The PG did the work; the answer never arrives in time.
        tokio::time::sleep(sim.opts.stall).await;
    }
    respond(answer)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CancelBody {
    cancel_reason: String,
    #[serde(default)]
    cancel_amount: Option<u64>,
}

async fn cancel(
    State(sim): State<Arc<PgSim>>,
    Path(payment_key): Path<String>,
    headers: HeaderMap,
    Json(b): Json<CancelBody>,
) -> Response {
    match tokio::spawn(cancel_work(sim, payment_key, headers, b)).await {
        Ok(r) => r,
        Err(_) => respond(toss_error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING", "simulator task failed")),
    }
}

async fn cancel_work(sim: Arc<PgSim>, payment_key: String, headers: HeaderMap, b: CancelBody) -> Response {
    let idem = idempotency_key(&headers);
    let call = Call {
        op: Op::Cancel,
        order_id: None,
        payment_key: Some(payment_key.clone()),
        idempotency_key: idem.clone(),
        correlation_id: header(&headers, "x-correlation-id"),
        traceparent: header(&headers, "traceparent"),
        outcome: String::new(),
        at: Some(sim.opts.clock.now().millis()),
    };
    if !sim.authorized(&headers) {
        sim.record(Call { outcome: "unauthorized".into(), ..call }).await;
        return respond(toss_error(401, "UNAUTHORIZED_KEY", "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다."));
    }
    let fault = match replay_or_fault(&sim, Op::Cancel, idem.clone(), call.clone()).await {
        Ok(fault) => fault,
        Err(answer) => return answer,
    };
    match fault {
        Some(FaultKind::Error) => {
            sim.record(Call { outcome: "error".into(), ..call }).await;
            return respond(toss_error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING", "simulated"));
        }
        Some(FaultKind::Decline) => {
            sim.record(Call { outcome: "declined".into(), ..call }).await;
            return respond(toss_error(403, "NOT_CANCELABLE_PAYMENT", "취소 할 수 없는 결제 입니다. (simulated)"));
        }
        Some(FaultKind::Timeout) => tokio::time::sleep(sim.opts.stall).await,
        Some(FaultKind::Delay) => tokio::time::sleep(sim.opts.delay).await,
        _ => {}
    }
    let now = sim.opts.clock.now().millis();
    let done = sim
        .db
        .tx(move |c| {
            let (answer, changed) = match rows::payment(c, &payment_key)? {
                None => (toss_error(404, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다."), None),
                Some(mut p) => match p.status.as_str() {
                    "DONE" | "PARTIAL_CANCELED" | "WAITING_FOR_DEPOSIT" => {
                        let amount = b.cancel_amount.unwrap_or(p.balance_amount).min(p.balance_amount);
                        p.balance_amount -= amount;
                        p.status = if p.balance_amount == 0 { "CANCELED".into() } else { "PARTIAL_CANCELED".into() };
                        p.cancels.push(
                            json!({"cancelAmount": amount, "cancelReason": b.cancel_reason, "canceledAt": kst(now)}),
                        );
                        rows::save_payment(c, &p)?;
                        ((200, p.to_toss(now)), Some(p.order_id))
                    }
                    "CANCELED" => (toss_error(400, "ALREADY_CANCELED_PAYMENT", "이미 취소된 결제 입니다."), None),
                    _ => (toss_error(403, "NOT_CANCELABLE_PAYMENT", "취소 할 수 없는 결제 입니다."), None),
                },
            };
            rows::store_answer(c, idem.as_deref(), &answer)?;
            let outcome = answer.1.get("status").and_then(|v| v.as_str()).unwrap_or("error").to_owned();
            rows::record(c, &Call { outcome, order_id: changed.clone(), ..call })?;
            Ok((answer, changed.is_some()))
        })
        .await;
    match done {
        Ok((answer, changed)) => {
            if changed {
                sim.status_changed(answer.1.clone()).await;
            }
            respond(answer)
        }
        Err(e) => db::internal(&e),
    }
}

async fn lookup_inner(
    sim: &Arc<PgSim>,
    headers: &HeaderMap,
    key: Option<String>,
    order_id: Option<String>,
) -> Response {
    let call = Call {
        op: Op::Lookup,
        order_id,
        payment_key: key,
        idempotency_key: None,
        correlation_id: header(headers, "x-correlation-id"),
        traceparent: header(headers, "traceparent"),
        outcome: String::new(),
        at: Some(sim.opts.clock.now().millis()),
    };
    if !sim.authorized(headers) {
        sim.record(Call { outcome: "unauthorized".into(), ..call }).await;
        return respond(toss_error(401, "UNAUTHORIZED_KEY", "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다."));
    }
    match sim.take_fault(Op::Lookup).await {
        Some(FaultKind::Error) => {
            sim.record(Call { outcome: "error".into(), ..call }).await;
            return respond(toss_error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING", "simulated"));
        }
        Some(FaultKind::Timeout | FaultKind::LostResponse) => tokio::time::sleep(sim.opts.stall).await,
        Some(FaultKind::Delay) => tokio::time::sleep(sim.opts.delay).await,
        _ => {}
    }
    let now = sim.opts.clock.now().millis();
    let found = sim
        .db
        .tx(move |c| {
            let found = match (&call.payment_key, &call.order_id) {
                (Some(key), _) => rows::payment(c, key)?,
                (None, Some(order)) => rows::latest_of_order(c, order)?,
                (None, None) => None,
            };
            let found = found.map(|p| p.to_toss(now));
            let outcome = match &found {
                Some(p) => p.get("status").and_then(|v| v.as_str()).unwrap_or("?").to_owned(),
                None => "not_found".to_owned(),
            };
            rows::record(c, &Call { outcome, ..call })?;
            Ok(found)
        })
        .await;
    match found {
        Ok(Some(p)) => respond((200, p)),
        Ok(None) => respond(toss_error(404, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다.")),
        Err(e) => db::internal(&e),
    }
}

async fn lookup(State(sim): State<Arc<PgSim>>, Path(key): Path<String>, headers: HeaderMap) -> Response {
    lookup_inner(&sim, &headers, Some(key), None).await
}

async fn lookup_by_order(State(sim): State<Arc<PgSim>>, Path(order_id): Path<String>, headers: HeaderMap) -> Response {
    lookup_inner(&sim, &headers, None, Some(order_id)).await
}

/// Moves a payment as the PG does on its own: `change` returns the new
/// state, or the status it refuses to move from.
async fn transition(
    sim: &PgSim,
    payment_key: String,
    change: impl FnOnce(&mut SimPayment) -> Result<(), String> + Send + 'static,
) -> anyhow::Result<Option<Result<SimPayment, String>>> {
    sim.db
        .tx(move |c| {
            let Some(mut p) = rows::payment(c, &payment_key)? else { return Ok(None) };
            if let Err(from) = change(&mut p) {
                return Ok(Some(Err(from)));
            }
            rows::save_payment(c, &p)?;
            Ok(Some(Ok(p)))
        })
        .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DepositBody {
    payment_key: String,
}

async fn deposit(State(sim): State<Arc<PgSim>>, Json(b): Json<DepositBody>) -> Response {
    let now = sim.opts.clock.now().millis();
    let result = transition(&sim, b.payment_key, move |p| {
        if p.status != "WAITING_FOR_DEPOSIT" {
            return Err(format!("payment is {}, not WAITING_FOR_DEPOSIT", p.status));
        }
        if p.deposit_due_ms.is_some_and(|due| now >= due) {
            return Err("the virtual account expired; the bank refuses the deposit".to_owned());
        }
        p.status = "DONE".into();
        p.approved_at = Some(kst(now));
        Ok(())
    })
    .await;
    match result {
        Err(e) => db::internal(&e),
        Ok(None) => respond(toss_error(404, "NOT_FOUND_PAYMENT", "no such payment")),
        Ok(Some(Err(why))) => respond(toss_error(400, "INVALID_REQUEST", &why)),
        Ok(Some(Ok(p))) => {
            let callback = json!({
                "createdAt": kst(now),
                "secret": format!("vs_{}", &p.payment_key),
                "status": "DONE",
                "transactionKey": format!("tx_{}", uuid::Uuid::now_v7().simple()),
                "orderId": p.order_id,
            });
            sim.notify("DEPOSIT_CALLBACK", callback, Some(p.payment_key.clone()), p.order_id.clone()).await;
            sim.status_changed(p.to_toss(now)).await;
            respond((200, p.to_toss(now)))
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusBody {
    payment_key: String,
    status: String,
    #[serde(default = "yes")]
    notify: bool,
}

fn yes() -> bool {
    true
}

async fn set_status(State(sim): State<Arc<PgSim>>, Json(b): Json<StatusBody>) -> Response {
    let now = sim.opts.clock.now().millis();
    let to = b.status.clone();
    let result = transition(&sim, b.payment_key, move |p| {
        let allowed = matches!(
            (p.status.as_str(), to.as_str()),
            ("READY", "IN_PROGRESS") | ("READY" | "IN_PROGRESS", "ABORTED" | "EXPIRED")
        );
        if !allowed {
            return Err(p.status.clone());
        }
        p.status = to;
        Ok(())
    })
    .await;
    match result {
        Err(e) => db::internal(&e),
        Ok(None) => respond(toss_error(404, "NOT_FOUND_PAYMENT", "no such payment")),
        Ok(Some(Err(from))) => respond(toss_error(
            400,
            "INVALID_REQUEST",
            &format!("the PG does not move a payment from {from} to {} on its own", b.status),
        )),
        Ok(Some(Ok(p))) => {
            if b.notify {
                sim.status_changed(p.to_toss(now)).await;
            }
            respond((200, p.to_toss(now)))
        }
    }
}

async fn add_fault(State(sim): State<Arc<PgSim>>, Json(f): Json<Fault>) -> Response {
    if f.count == 0 || f.count < -1 {
        return respond(toss_error(400, "INVALID_REQUEST", "count is a positive number, or -1 for until cleared"));
    }
    match sim.arm(f.clone()).await {
        Ok(()) => respond((200, json!(f))),
        Err(e) => db::internal(&e),
    }
}

async fn clear_faults(State(sim): State<Arc<PgSim>>) -> Response {
    match sim.db.tx(faults::clear).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => db::internal(&e),
    }
}

async fn list_faults(State(sim): State<Arc<PgSim>>) -> Response {
    let listed = sim.db.tx(faults::list).await.map(|all| {
        all.into_iter().map(|(op, fault, count)| json!({"op": op, "fault": fault, "count": count})).collect::<Vec<_>>()
    });
    match listed {
        Ok(all) => respond((200, Value::Array(all))),
        Err(e) => db::internal(&e),
    }
}

async fn calls(State(sim): State<Arc<PgSim>>, uri: Uri, Query(f): Query<Filter>, Query(p): Query<Page>) -> Response {
    db::listing(&uri, sim.calls(f, p).await)
}

async fn payments(State(sim): State<Arc<PgSim>>, uri: Uri, Query(f): Query<Filter>, Query(p): Query<Page>) -> Response {
    let now = sim.opts.clock.now().millis();
    let listed = sim
        .payments(f, p)
        .await
        .map(|l| Listed { items: l.items.iter().map(|p| p.to_toss(now)).collect(), next: l.next });
    db::listing(&uri, listed)
}

async fn webhooks(State(sim): State<Arc<PgSim>>, uri: Uri, Query(f): Query<Filter>, Query(p): Query<Page>) -> Response {
    db::listing(&uri, sim.webhooks(f, p).await)
}
