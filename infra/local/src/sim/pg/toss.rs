//! The Toss API our `TossClient` calls: confirm, cancel, lookup by payment
//! key and by order id. Every call starts the same way ([`begin`]): the
//! call as the log records it, the secret key checked; calls with an
//! `Idempotency-Key` then replay the stored answer or take their fault
//! ([`replay_or_fault`]); the work, its stored answer and its log entry
//! are one transaction.

use super::state::{Call, FaultKind, Op, rows};
use super::{PgSim, kst, respond, toss_error};
use crate::sim::db;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConfirmBody {
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
    // Unconfirmed past its window (READY 30 minutes, IN_PROGRESS 10): gone,
    // whether it lapses now or was seen lapsed before.
    let lapsed_now = p.lapse(now);
    if lapsed_now || p.status == "EXPIRED" {
        let gone =
            toss_error(404, "NOT_FOUND_PAYMENT_SESSION", "결제 시간이 만료되어 결제 진행 데이터가 존재하지 않습니다.");
        if !lapsed_now {
            return Ok((gone, None));
        }
        rows::save_payment(c, &p)?;
        return Ok((gone, Some(p.to_toss(now))));
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
        // A number a closed account gave back, else a new one.
        let fresh = || format!("X{}", p.payment_key.get(p.payment_key.len().saturating_sub(10)..).unwrap_or_default());
        let account = rows::take_account(c)?.unwrap_or_else(fresh);
        p.status = "WAITING_FOR_DEPOSIT".into();
        let due = now.saturating_add(va_due_ms);
        p.deposit_due_ms = Some(due);
        p.virtual_account = Some(json!({
            "accountType": "일반",
            "accountNumber": account,
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
pub(super) async fn confirm(State(sim): State<Arc<PgSim>>, headers: HeaderMap, Json(b): Json<ConfirmBody>) -> Response {
    match tokio::spawn(confirm_work(sim, headers, b)).await {
        Ok(r) => r,
        Err(_) => respond(toss_error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING", "simulator task failed")),
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The start of every Toss API call: the call as the log records it (its
/// operation, the ids it names, the caller's `Idempotency-Key` — lookups
/// take none — `X-Correlation-Id` and `traceparent`, when it arrived), and
/// the secret key checked: a call without it is logged and refused here.
async fn begin(
    sim: &PgSim,
    headers: &HeaderMap,
    op: Op,
    order_id: Option<String>,
    payment_key: Option<String>,
) -> Result<Call, Response> {
    let call = Call {
        op,
        order_id,
        payment_key,
        idempotency_key: match op {
            Op::Confirm | Op::Cancel => header(headers, "idempotency-key"),
            Op::Lookup | Op::Webhook | Op::Deposit => None,
        },
        correlation_id: header(headers, "x-correlation-id"),
        traceparent: header(headers, "traceparent"),
        outcome: String::new(),
        at: Some(sim.opts.clock.now().millis()),
    };
    if !sim.authorized(headers) {
        sim.record(Call { outcome: "unauthorized".into(), ..call }).await;
        return Err(respond(toss_error(401, "UNAUTHORIZED_KEY", "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다.")));
    }
    // Toss takes an Idempotency-Key of at most 300 characters.
    if call.idempotency_key.as_ref().is_some_and(|k| k.chars().count() > IDEMPOTENCY_KEY_MAX) {
        sim.record(Call { outcome: "refused".into(), ..call }).await;
        return Err(respond(toss_error(400, "INVALID_REQUEST", "Idempotency-Key is at most 300 characters")));
    }
    Ok(call)
}

/// The longest `Idempotency-Key` Toss takes.
pub const IDEMPOTENCY_KEY_MAX: usize = 300;

/// [`begin`] for a call that may carry an `Idempotency-Key` (confirm,
/// cancel): then the answer stored for the key, or else the fault the call
/// takes ([`replay_or_fault`]).
async fn begin_keyed(
    sim: &PgSim,
    headers: &HeaderMap,
    op: Op,
    (order_id, payment_key): (Option<String>, Option<String>),
) -> Result<(Call, Option<FaultKind>, Option<InFlight>), Response> {
    let call = begin(sim, headers, op, order_id, payment_key).await?;
    // Claimed before the stored answer is read: a request that finds the
    // key free and no answer is the only one working on it.
    let held = match &call.idempotency_key {
        Some(k) => match InFlight::claim(&sim.in_flight, k) {
            Some(held) => Some(held),
            None => {
                sim.record(Call { outcome: "in progress".into(), ..call }).await;
                return Err(respond(toss_error(
                    409,
                    "IDEMPOTENT_REQUEST_PROCESSING",
                    "이전 멱등 요청이 처리중 입니다.",
                )));
            }
        },
        None => None,
    };
    let fault = replay_or_fault(sim, op, call.idempotency_key.clone(), call.clone()).await?;
    Ok((call, fault, held))
}

/// An `Idempotency-Key` being worked on, released when dropped (after the
/// answer is stored, or when the work is abandoned).
pub(super) struct InFlight {
    keys: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    key: String,
}

impl InFlight {
    fn claim(keys: &Arc<std::sync::Mutex<std::collections::HashSet<String>>>, key: &str) -> Option<InFlight> {
        let mut held = keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        held.insert(key.to_owned()).then(|| InFlight { keys: keys.clone(), key: key.to_owned() })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.key);
    }
}

/// Before the work of a call with an `Idempotency-Key`: the answer stored
/// for the key (the call is recorded as replayed), else the fault this call
/// takes — one transaction.
async fn replay_or_fault(sim: &PgSim, op: Op, idem: Option<String>, call: Call) -> Result<Option<FaultKind>, Response> {
    let now = sim.opts.clock.now().millis();
    let before = sim
        .db
        .tx(move |c| {
            if let Some(k) = &idem
                && let Some(stored) = rows::stored_answer(c, k, now)?
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
    let ids = (Some(b.order_id.clone()), Some(b.payment_key.clone()));
    let (call, fault, _held) = match begin_keyed(&sim, &headers, Op::Confirm, ids).await {
        Ok(begun) => begun,
        Err(answer) => return answer,
    };
    let idem = call.idempotency_key.clone();
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
            rows::store_answer(c, idem.as_deref(), &answer, now)?;
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
pub(super) struct CancelBody {
    cancel_reason: String,
    /// Absent: what remains (`balanceAmount`).
    #[serde(default)]
    cancel_amount: Option<u64>,
    /// The tax-free part of the cancelled amount, carried into `cancels[]`.
    #[serde(default)]
    tax_free_amount: Option<u64>,
    /// Where a deposited virtual account's money goes back to: required
    /// for one, ignored for anything else (as Toss).
    #[serde(default)]
    refund_receive_account: Option<Value>,
}

/// A deposited virtual account's refund account, checked as Toss's bank
/// check would: the account shown back (number masked), or the refusal.
/// The simulated bank has no account whose number ends in `0000`; the
/// `refund_account` fault refuses the holder's name.
fn refund_account(given: Option<&Value>, refused_by_bank: bool) -> Result<Value, (u16, Value)> {
    let Some(a) = given else {
        return Err(toss_error(
            400,
            "INVALID_REQUEST",
            "입금 완료된 가상계좌 결제의 취소에는 환불 계좌(refundReceiveAccount)가 필요합니다.",
        ));
    };
    let field = |name: &str| a.get(name).and_then(Value::as_str).unwrap_or_default();
    let (bank, number, holder) = (field("bank"), field("accountNumber"), field("holderName"));
    if !shop_domain::refund_account::BANKS.iter().any(|(code, _)| *code == bank) {
        return Err(toss_error(400, "INVALID_BANK", "유효하지 않은 은행입니다."));
    }
    if number.is_empty() || number.len() > 20 || !number.bytes().all(|b| b.is_ascii_digit()) || number.ends_with("0000")
    {
        return Err(toss_error(400, "INVALID_REFUND_ACCOUNT_NUMBER", "잘못된 환불 계좌번호입니다."));
    }
    let chars = holder.chars().count();
    if chars == 0 || chars > 60 || refused_by_bank {
        return Err(toss_error(400, "INVALID_REFUND_ACCOUNT_INFO", "환불 계좌번호와 예금주명이 일치하지 않습니다."));
    }
    Ok(json!({"bank": bank, "accountNumber": shop_domain::refund_account::mask(number), "holderName": holder}))
}

pub(super) async fn cancel(
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
    let (call, fault, _held) = match begin_keyed(&sim, &headers, Op::Cancel, (None, Some(payment_key.clone()))).await {
        Ok(begun) => begun,
        Err(answer) => return answer,
    };
    let idem = call.idempotency_key.clone();
    match fault {
        Some(FaultKind::Error) => {
            sim.record(Call { outcome: "error".into(), ..call }).await;
            return respond(toss_error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING", "simulated"));
        }
        Some(FaultKind::Decline) => {
            // Toss keeps the answer under its key, a refusal too: the same
            // cancel sent again is refused again, never carried out.
            let answer = toss_error(403, "NOT_CANCELABLE_PAYMENT", "취소 할 수 없는 결제 입니다. (simulated)");
            let (stored, now) = (answer.clone(), sim.opts.clock.now().millis());
            if let Err(e) = sim.db.tx(move |c| rows::store_answer(c, idem.as_deref(), &stored, now)).await {
                db::logged(&e);
            }
            sim.record(Call { outcome: "declined".into(), ..call }).await;
            return respond(answer);
        }
        Some(FaultKind::Timeout) => tokio::time::sleep(sim.opts.stall).await,
        Some(FaultKind::Delay) => tokio::time::sleep(sim.opts.delay).await,
        _ => {}
    }
    let bank_refuses = fault == Some(FaultKind::RefundAccount);
    let now = sim.opts.clock.now().millis();
    let done = sim
        .db
        .tx(move |c| {
            let (answer, changed) = match rows::payment(c, &payment_key)? {
                None => (toss_error(404, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다."), None),
                Some(mut p) => match p.status.as_str() {
                    "DONE" | "PARTIAL_CANCELED" | "WAITING_FOR_DEPOSIT" => {
                        let amount = b.cancel_amount.unwrap_or(p.balance_amount);
                        let tax_free = b.tax_free_amount.unwrap_or(0);
                        if amount == 0 || amount > p.balance_amount {
                            // More than what remains (or nothing): Toss refuses, nothing changes.
                            (toss_error(403, "NOT_CANCELABLE_AMOUNT", "취소 할 수 없는 금액 입니다."), None)
                        } else if amount < p.balance_amount && !p.partial_cancelable {
                            (toss_error(403, "NOT_CANCELABLE_PAYMENT", "부분 취소가 불가능한 결제 입니다."), None)
                        } else if tax_free > amount {
                            (toss_error(400, "INVALID_REQUEST", "taxFreeAmount is more than cancelAmount"), None)
                        } else if let Some(Err(refused)) = (p.status != "WAITING_FOR_DEPOSIT"
                            && p.virtual_account.is_some())
                        .then(|| refund_account(b.refund_receive_account.as_ref(), bank_refuses))
                        {
                            // Deposited money goes back by bank transfer: no
                            // account, or one the bank refuses, cancels nothing.
                            (refused, None)
                        } else {
                            let to_account = (p.status != "WAITING_FOR_DEPOSIT" && p.virtual_account.is_some())
                                .then(|| refund_account(b.refund_receive_account.as_ref(), false).ok())
                                .flatten();
                            // A virtual account closed before its deposit: its
                            // number goes back to the bank's pool, to be issued
                            // to another order (Toss's accounts are recycled).
                            if p.status == "WAITING_FOR_DEPOSIT"
                                && let Some(account) = p
                                    .virtual_account
                                    .as_ref()
                                    .and_then(|va| va.get("accountNumber"))
                                    .and_then(Value::as_str)
                            {
                                rows::free_account(c, account, now)?;
                            }
                            p.balance_amount -= amount;
                            p.status =
                                if p.balance_amount == 0 { "CANCELED".into() } else { "PARTIAL_CANCELED".into() };
                            p.cancels.push(json!({
                                "transactionKey": uuid::Uuid::now_v7().simple().to_string(),
                                "cancelAmount": amount,
                                "cancelReason": b.cancel_reason,
                                "taxFreeAmount": tax_free,
                                "taxExemptionAmount": 0,
                                "refundableAmount": p.balance_amount,
                                "canceledAt": kst(now),
                                "cancelStatus": "DONE",
                                "refundReceiveAccount": to_account,
                            }));
                            if let (Some(account), Some(va)) = (&to_account, p.virtual_account.as_mut()) {
                                va["refundStatus"] = json!("COMPLETED");
                                va["refundReceiveAccount"] = account.clone();
                            }
                            rows::save_payment(c, &p)?;
                            ((200, p.to_toss(now)), Some(p.order_id))
                        }
                    }
                    "CANCELED" => (toss_error(400, "ALREADY_CANCELED_PAYMENT", "이미 취소된 결제 입니다."), None),
                    _ => (toss_error(403, "NOT_CANCELABLE_PAYMENT", "취소 할 수 없는 결제 입니다."), None),
                },
            };
            rows::store_answer(c, idem.as_deref(), &answer, now)?;
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
            if fault == Some(FaultKind::LostResponse) {
                // The PG cancelled; the answer never arrives in time.
                tokio::time::sleep(sim.opts.stall).await;
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
    let call = match begin(sim, headers, Op::Lookup, order_id, key).await {
        Ok(call) => call,
        Err(refused) => return refused,
    };
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
            let mut found = match (&call.payment_key, &call.order_id) {
                (Some(key), _) => rows::payment(c, key)?,
                (None, Some(order)) => rows::latest_of_order(c, order)?,
                (None, None) => None,
            };
            // A window that lapsed since it was last touched shows as EXPIRED.
            if let Some(p) = found.as_mut().filter(|p| p.status == "READY" || p.status == "IN_PROGRESS")
                && p.lapse(now)
            {
                rows::save_payment(c, p)?;
            }
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

pub(super) async fn lookup(State(sim): State<Arc<PgSim>>, Path(key): Path<String>, headers: HeaderMap) -> Response {
    lookup_inner(&sim, &headers, Some(key), None).await
}

pub(super) async fn lookup_by_order(
    State(sim): State<Arc<PgSim>>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    lookup_inner(&sim, &headers, None, Some(order_id)).await
}
