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
//!   (each narrowed by `?orderId=`; calls also by `?op=`).
//!
//! State lives in memory and, with a data dir, in the journal `pgsim.jsonl`
//! beside the store (`sim::journal`: a call appends what it changed).

use crate::sim::journal::{Journal, Log, OfOrder, Table, Whole, journaled};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
}

impl SimPayment {
    fn to_toss(&self) -> Value {
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
            "virtualAccount": self.virtual_account,
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
    pub outcome: String,
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
}

#[derive(Default)]
struct SimState {
    payments: Table<SimPayment>,
    /// orderId → the latest paymentKey for it.
    by_order: Table<String>,
    /// Idempotency-Key → (status, body).
    idempotency: Table<(u16, Value)>,
    faults: Whole<Vec<Fault>>,
    calls: Log<Call>,
    webhooks: Log<Delivery>,
}

journaled!(SimState {
    payments: "payments",
    by_order: "byOrder",
    idempotency: "idempotency",
    faults: "faults",
    calls: "calls",
    webhooks: "webhooks",
});

impl OfOrder for Call {
    fn order_id(&self) -> Option<&str> {
        self.order_id.as_deref()
    }
}

impl OfOrder for Delivery {
    fn order_id(&self) -> Option<&str> {
        Some(&self.order_id)
    }
}

impl SimState {
    fn take_fault(&mut self, op: Op) -> Option<FaultKind> {
        let i = self.faults.iter().position(|f| f.op == op && f.count != 0)?;
        let fault = self.faults.get_mut(i)?;
        let kind = fault.fault;
        if fault.count > 0 {
            fault.count -= 1;
        }
        if fault.count == 0 {
            self.faults.remove(i);
        }
        Some(kind)
    }
}

pub struct PgSim {
    state: Journal<SimState>,
    opts: SimOptions,
    http: reqwest::Client,
}

fn now_iso() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+09:00").to_string()
}

fn toss_error(status: u16, code: &str, message: &str) -> (u16, Value) {
    (status, json!({"code": code, "message": message}))
}

fn respond((status, body): (u16, Value)) -> Response {
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(body)).into_response()
}

impl PgSim {
    pub fn new(opts: SimOptions) -> anyhow::Result<Arc<PgSim>> {
        let state = Journal::load(opts.state_file.clone())?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Arc::new(PgSim { state, opts, http }))
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

    fn with<T>(&self, f: impl FnOnce(&mut SimState) -> T) -> T {
        self.state.with(f)
    }

    /// Every payment the PG holds (a benchmark's final check).
    pub fn payments(&self) -> Vec<SimPayment> {
        self.with(|s| s.payments.values().cloned().collect())
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let expected =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:", self.opts.secret_key)));
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
    }

    fn record(&self, call: Call) {
        self.with(|s| s.calls.push(call));
    }

    /// Sends a webhook in the background, retrying on Toss's schedule.
    fn notify(self: &Arc<Self>, event_type: &'static str, body: Value, payment_key: Option<String>, order_id: String) {
        let Some(url) = self.opts.webhook_url.clone() else { return };
        let fault = self.with(|s| s.take_fault(Op::Webhook));
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
                    self.with(|s| s.take_fault(Op::Webhook)),
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
            self.with(|s| {
                s.webhooks.push(Delivery {
                    event_type: event_type.to_owned(),
                    payment_key: payment_key.clone(),
                    order_id: order_id.clone(),
                    attempt: attempt + 1,
                    status,
                })
            });
            if status == 200 {
                return;
            }
            let Some(minutes) = WEBHOOK_SCHEDULE.get(attempt as usize) else { return };
            tokio::time::sleep(self.opts.webhook_backoff * u32::try_from(*minutes).unwrap_or(u32::MAX)).await;
        }
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
    if sim.with(|s| s.payments.contains_key(&payment_key)) {
        return respond(toss_error(400, "DUPLICATED_PAYMENT_KEY", "paymentKey already exists"));
    }
    let p = SimPayment {
        payment_key: payment_key.clone(),
        order_id: b.order_id.clone(),
        total_amount: b.amount,
        balance_amount: b.amount,
        method,
        status: "READY".into(),
        requested_at: now_iso(),
        approved_at: None,
        virtual_account: None,
        cancels: vec![],
    };
    sim.with(|s| {
        s.by_order.insert(b.order_id, payment_key.clone());
        s.payments.insert(payment_key.clone(), p);
    });
    respond((200, json!({"paymentKey": payment_key})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfirmBody {
    payment_key: String,
    order_id: String,
    amount: u64,
}

/// Does the confirm; the answer and the webhook to send.
fn do_confirm(s: &mut SimState, b: &ConfirmBody, decline: bool) -> ((u16, Value), Option<(String, String)>) {
    let Some(p) = s.payments.get_mut(&b.payment_key) else {
        return (toss_error(404, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다."), None);
    };
    if p.order_id != b.order_id || p.total_amount != b.amount {
        return (toss_error(400, "INVALID_REQUEST", "orderId or amount does not match the payment"), None);
    }
    match p.status.as_str() {
        "READY" | "IN_PROGRESS" => {}
        "DONE" | "WAITING_FOR_DEPOSIT" => {
            return (toss_error(400, "ALREADY_PROCESSED_PAYMENT", "이미 처리된 결제 입니다."), None);
        }
        _ => return (toss_error(400, "INVALID_REQUEST", "the payment cannot be confirmed"), None),
    }
    if decline {
        p.status = "ABORTED".into();
        let changed = (p.payment_key.clone(), p.order_id.clone());
        return (toss_error(403, "REJECT_CARD_COMPANY", "카드사에서 거절했습니다. (simulated decline)"), Some(changed));
    }
    if p.method == "VIRTUAL_ACCOUNT" {
        p.status = "WAITING_FOR_DEPOSIT".into();
        p.virtual_account = Some(json!({
            "accountType": "일반",
            "accountNumber": format!("X{}", &p.payment_key[p.payment_key.len().saturating_sub(10)..]),
            "bankCode": "88",
            "customerName": "shop customer",
            "dueDate": (chrono::Utc::now() + chrono::Duration::days(3)).format("%Y-%m-%dT%H:%M:%S+09:00").to_string(),
            "refundStatus": "NONE",
            "expired": false,
            "settlementStatus": "INCOMPLETED",
        }));
    } else {
        p.status = "DONE".into();
        p.approved_at = Some(now_iso());
    }
    ((200, p.to_toss()), Some((p.payment_key.clone(), p.order_id.clone())))
}

/// Runs in its own task: a real PG finishes its work when the caller hangs
/// up (hyper drops a handler's future when the client disconnects).
async fn confirm(State(sim): State<Arc<PgSim>>, headers: HeaderMap, Json(b): Json<ConfirmBody>) -> Response {
    match tokio::spawn(confirm_work(sim, headers, b)).await {
        Ok(r) => r,
        Err(_) => respond(toss_error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING", "simulator task failed")),
    }
}

async fn confirm_work(sim: Arc<PgSim>, headers: HeaderMap, b: ConfirmBody) -> Response {
    let idem = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let call = |outcome: &str| Call {
        op: Op::Confirm,
        order_id: Some(b.order_id.clone()),
        payment_key: Some(b.payment_key.clone()),
        idempotency_key: idem.clone(),
        outcome: outcome.to_owned(),
    };
    if !sim.authorized(&headers) {
        sim.record(call("unauthorized"));
        return respond(toss_error(401, "UNAUTHORIZED_KEY", "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다."));
    }
    if let Some(k) = &idem
        && let Some(stored) = sim.with(|s| s.idempotency.get(k).cloned())
    {
        sim.record(call("replayed"));
        return respond(stored);
    }
    let fault = sim.with(|s| s.take_fault(Op::Confirm));
    let stall = sim.opts.stall;
    let result = match fault {
        Some(FaultKind::Error) => {
            let r = toss_error(
                500,
                "FAILED_INTERNAL_SYSTEM_PROCESSING",
                "내부 시스템 처리 작업이 실패했습니다. (simulated)",
            );
            sim.record(call("error"));
            sim.with(|s| idem.as_ref().map(|k| s.idempotency.insert(k.clone(), r.clone())));
            return respond(r);
        }
        // Slow PG: the work happens after the caller has given up.
        Some(FaultKind::Timeout) => {
            tokio::time::sleep(stall).await;
            sim.with(|s| do_confirm(s, &b, false))
        }
        Some(FaultKind::Delay) => {
            tokio::time::sleep(sim.opts.delay).await;
            sim.with(|s| do_confirm(s, &b, false))
        }
        Some(FaultKind::Decline) => sim.with(|s| do_confirm(s, &b, true)),
        Some(FaultKind::LostResponse | FaultKind::Duplicate | FaultKind::Reorder) | None => {
            sim.with(|s| do_confirm(s, &b, false))
        }
    };
    let (answer, changed) = result;
    sim.with(|s| idem.as_ref().map(|k| s.idempotency.insert(k.clone(), answer.clone())));
    let outcome = match (fault, answer.0) {
        (Some(FaultKind::LostResponse), _) => "lost_response".to_owned(),
        (Some(FaultKind::Timeout), _) => "timeout".to_owned(),
        (_, status) => answer.1.get("status").and_then(|v| v.as_str()).map_or(format!("HTTP {status}"), str::to_owned),
    };
    sim.record(call(&outcome));
    if let Some((pk, oid)) = changed {
        let payment = sim.with(|s| s.payments.get(&pk).map(SimPayment::to_toss));
        if let Some(p) = payment {
            let body = json!({"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": now_iso(), "data": p});
            sim.notify("PAYMENT_STATUS_CHANGED", body, Some(pk), oid);
        }
    }
    if fault == Some(FaultKind::LostResponse) {
        // The PG did the work; the answer never arrives in time.
        tokio::time::sleep(stall).await;
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
    let idem = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let call = |outcome: &str, order_id: Option<String>| Call {
        op: Op::Cancel,
        order_id,
        payment_key: Some(payment_key.clone()),
        idempotency_key: idem.clone(),
        outcome: outcome.to_owned(),
    };
    if !sim.authorized(&headers) {
        sim.record(call("unauthorized", None));
        return respond(toss_error(401, "UNAUTHORIZED_KEY", "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다."));
    }
    if let Some(k) = &idem
        && let Some(stored) = sim.with(|s| s.idempotency.get(k).cloned())
    {
        sim.record(call("replayed", None));
        return respond(stored);
    }
    match sim.with(|s| s.take_fault(Op::Cancel)) {
        Some(FaultKind::Error) => {
            sim.record(call("error", None));
            return respond(toss_error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING", "simulated"));
        }
        Some(FaultKind::Timeout) => tokio::time::sleep(sim.opts.stall).await,
        Some(FaultKind::Delay) => tokio::time::sleep(sim.opts.delay).await,
        Some(FaultKind::Decline) => {
            sim.record(call("declined", None));
            return respond(toss_error(403, "NOT_CANCELABLE_PAYMENT", "취소 할 수 없는 결제 입니다. (simulated)"));
        }
        _ => {}
    }
    let (answer, changed) = sim.with(|s| {
        let Some(p) = s.payments.get_mut(&payment_key) else {
            return (toss_error(404, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다."), None);
        };
        match p.status.as_str() {
            "DONE" | "PARTIAL_CANCELED" | "WAITING_FOR_DEPOSIT" => {}
            "CANCELED" => return (toss_error(400, "ALREADY_CANCELED_PAYMENT", "이미 취소된 결제 입니다."), None),
            _ => return (toss_error(403, "NOT_CANCELABLE_PAYMENT", "취소 할 수 없는 결제 입니다."), None),
        }
        let amount = b.cancel_amount.unwrap_or(p.balance_amount).min(p.balance_amount);
        p.balance_amount -= amount;
        p.status = if p.balance_amount == 0 { "CANCELED".into() } else { "PARTIAL_CANCELED".into() };
        p.cancels.push(json!({"cancelAmount": amount, "cancelReason": b.cancel_reason, "canceledAt": now_iso()}));
        ((200, p.to_toss()), Some(p.order_id.clone()))
    });
    sim.with(|s| idem.as_ref().map(|k| s.idempotency.insert(k.clone(), answer.clone())));
    sim.record(call(answer.1.get("status").and_then(|v| v.as_str()).unwrap_or("error"), changed.clone()));
    if let Some(oid) = changed {
        let body = json!({"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": now_iso(), "data": answer.1});
        sim.notify("PAYMENT_STATUS_CHANGED", body, Some(payment_key.clone()), oid);
    }
    respond(answer)
}

async fn lookup_inner(
    sim: &Arc<PgSim>,
    headers: &HeaderMap,
    key: Option<String>,
    order_id: Option<String>,
) -> Response {
    let call = |outcome: &str| Call {
        op: Op::Lookup,
        order_id: order_id.clone(),
        payment_key: key.clone(),
        idempotency_key: None,
        outcome: outcome.to_owned(),
    };
    if !sim.authorized(headers) {
        sim.record(call("unauthorized"));
        return respond(toss_error(401, "UNAUTHORIZED_KEY", "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다."));
    }
    match sim.with(|s| s.take_fault(Op::Lookup)) {
        Some(FaultKind::Error) => {
            sim.record(call("error"));
            return respond(toss_error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING", "simulated"));
        }
        Some(FaultKind::Timeout | FaultKind::LostResponse) => tokio::time::sleep(sim.opts.stall).await,
        Some(FaultKind::Delay) => tokio::time::sleep(sim.opts.delay).await,
        _ => {}
    }
    let found = sim.with(|s| {
        let key = key.clone().or_else(|| order_id.as_ref().and_then(|o| s.by_order.get(o).cloned()))?;
        s.payments.get(&key).map(SimPayment::to_toss)
    });
    match found {
        Some(p) => {
            sim.record(call(p.get("status").and_then(|v| v.as_str()).unwrap_or("?")));
            respond((200, p))
        }
        None => {
            sim.record(call("not_found"));
            respond(toss_error(404, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다."))
        }
    }
}

async fn lookup(State(sim): State<Arc<PgSim>>, Path(key): Path<String>, headers: HeaderMap) -> Response {
    lookup_inner(&sim, &headers, Some(key), None).await
}

async fn lookup_by_order(State(sim): State<Arc<PgSim>>, Path(order_id): Path<String>, headers: HeaderMap) -> Response {
    lookup_inner(&sim, &headers, None, Some(order_id)).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DepositBody {
    payment_key: String,
}

async fn deposit(State(sim): State<Arc<PgSim>>, Json(b): Json<DepositBody>) -> Response {
    let result = sim.with(|s| {
        let p = s.payments.get_mut(&b.payment_key)?;
        if p.status != "WAITING_FOR_DEPOSIT" {
            return Some(Err(p.status.clone()));
        }
        p.status = "DONE".into();
        p.approved_at = Some(now_iso());
        Some(Ok(p.clone()))
    });
    match result {
        None => respond(toss_error(404, "NOT_FOUND_PAYMENT", "no such payment")),
        Some(Err(status)) => {
            respond(toss_error(400, "INVALID_REQUEST", &format!("payment is {status}, not WAITING_FOR_DEPOSIT")))
        }
        Some(Ok(p)) => {
            let callback = json!({
                "createdAt": now_iso(),
                "secret": format!("vs_{}", &p.payment_key),
                "status": "DONE",
                "transactionKey": format!("tx_{}", uuid::Uuid::now_v7().simple()),
                "orderId": p.order_id,
            });
            sim.notify("DEPOSIT_CALLBACK", callback, Some(p.payment_key.clone()), p.order_id.clone());
            let changed = json!({"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": now_iso(), "data": p.to_toss()});
            sim.notify("PAYMENT_STATUS_CHANGED", changed, Some(p.payment_key.clone()), p.order_id.clone());
            respond((200, p.to_toss()))
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
    let result = sim.with(|s| {
        let p = s.payments.get_mut(&b.payment_key)?;
        let allowed = matches!(
            (p.status.as_str(), b.status.as_str()),
            ("READY", "IN_PROGRESS") | ("READY" | "IN_PROGRESS", "ABORTED" | "EXPIRED")
        );
        if !allowed {
            return Some(Err(p.status.clone()));
        }
        p.status = b.status.clone();
        Some(Ok(p.to_toss()))
    });
    match result {
        None => respond(toss_error(404, "NOT_FOUND_PAYMENT", "no such payment")),
        Some(Err(from)) => respond(toss_error(
            400,
            "INVALID_REQUEST",
            &format!("the PG does not move a payment from {from} to {} on its own", b.status),
        )),
        Some(Ok(p)) => {
            if b.notify {
                let order_id = p.get("orderId").and_then(Value::as_str).unwrap_or_default().to_owned();
                let body = json!({"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": now_iso(), "data": p});
                sim.notify("PAYMENT_STATUS_CHANGED", body, Some(b.payment_key.clone()), order_id);
            }
            respond((200, p))
        }
    }
}

async fn add_fault(State(sim): State<Arc<PgSim>>, Json(f): Json<Fault>) -> Response {
    if f.count == 0 || f.count < -1 {
        return respond(toss_error(400, "INVALID_REQUEST", "count is a positive number, or -1 for until cleared"));
    }
    sim.with(|s| s.faults.push(f.clone()));
    respond((200, json!(f)))
}

async fn clear_faults(State(sim): State<Arc<PgSim>>) -> Response {
    sim.with(|s| s.faults.clear());
    StatusCode::NO_CONTENT.into_response()
}

async fn list_faults(State(sim): State<Arc<PgSim>>) -> Response {
    respond((200, json!(sim.with(|s| s.faults.clone()))))
}

/// `?orderId=` narrows a listing to one order (and `?op=` the calls to one operation).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    order_id: Option<String>,
    op: Option<Op>,
}

impl Filter {
    fn order(&self, order_id: Option<&str>) -> bool {
        self.order_id.as_deref().is_none_or(|o| Some(o) == order_id)
    }
}

async fn calls(State(sim): State<Arc<PgSim>>, Query(f): Query<Filter>) -> Response {
    let wanted = |c: &&Call| f.op.is_none_or(|op| op == c.op);
    let calls = sim.with(|s| match &f.order_id {
        Some(order) => s.calls.of_order(order).filter(wanted).cloned().collect::<Vec<_>>(),
        None => s.calls.all().iter().filter(wanted).cloned().collect(),
    });
    respond((200, json!(calls)))
}

async fn payments(State(sim): State<Arc<PgSim>>, Query(f): Query<Filter>) -> Response {
    let payments = sim.with(|s| {
        s.payments.values().filter(|p| f.order(Some(&p.order_id))).map(SimPayment::to_toss).collect::<Vec<_>>()
    });
    respond((200, json!(payments)))
}

async fn webhooks(State(sim): State<Arc<PgSim>>, Query(f): Query<Filter>) -> Response {
    let hooks = sim.with(|s| match &f.order_id {
        Some(order) => s.webhooks.of_order(order).cloned().collect::<Vec<_>>(),
        None => s.webhooks.all().to_vec(),
    });
    respond((200, json!(hooks)))
}
