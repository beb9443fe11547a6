//! The simulator's own endpoints, which Toss does not have: the widget's
//! checkout, a bank's deposit, the PG moving a payment on its own, arming
//! faults, and the listings of payments, calls and webhooks.

use super::state::{Fault, FaultKind, Op, SimPayment, rows};
use super::{Filter, PgSim, kst, respond, toss_error};
use crate::sim::db::{self, Listed, Page, faults};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CheckoutBody {
    order_id: String,
    amount: u64,
    #[serde(default)]
    method: Option<String>,
    /// Fixtures may ask for a fixed key; the widget normally picks one.
    #[serde(default)]
    payment_key: Option<String>,
    /// `false`: a payment that refuses partial cancels (Toss's
    /// `isPartialCancelable`); default true.
    #[serde(default)]
    partial_cancelable: Option<bool>,
}

pub(super) async fn checkout(State(sim): State<Arc<PgSim>>, Json(b): Json<CheckoutBody>) -> Response {
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
        partial_cancelable: b.partial_cancelable.unwrap_or(true),
        ready_ms: Some(now),
        in_progress_ms: None,
    };
    match sim.db.tx(move |c| rows::insert_payment(c, &p)).await {
        Ok(true) => respond((200, json!({"paymentKey": payment_key}))),
        Ok(false) => respond(toss_error(400, "DUPLICATED_PAYMENT_KEY", "paymentKey already exists")),
        Err(e) => db::internal(&e),
    }
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
pub(super) struct DepositBody {
    payment_key: String,
}

pub(super) async fn deposit(State(sim): State<Arc<PgSim>>, Json(b): Json<DepositBody>) -> Response {
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
            if sim.take_fault(Op::Deposit).await == Some(FaultKind::Regress) {
                // Back to waiting at once, and DONE again a moment later.
                let sim = sim.clone();
                let key = p.payment_key.clone();
                tokio::spawn(async move {
                    if let Err(e) = regress(&sim, key.clone()).await {
                        db::logged(&e);
                    }
                    tokio::time::sleep(sim.opts.delay).await;
                    if let Err(e) = redeposit(&sim, key).await {
                        db::logged(&e);
                    }
                });
            }
            respond((200, p.to_toss(now)))
        }
    }
}

/// DONE → WAITING_FOR_DEPOSIT for a virtual account, with its webhook:
/// what Toss documents for rare network cases. `false`: the payment is
/// not a DONE virtual account.
async fn regress(sim: &Arc<PgSim>, payment_key: String) -> anyhow::Result<bool> {
    let now = sim.opts.clock.now().millis();
    let moved = transition(sim, payment_key, |p| {
        if p.status != "DONE" || p.method != "VIRTUAL_ACCOUNT" || !p.cancels.is_empty() {
            return Err(p.status.clone());
        }
        p.status = "WAITING_FOR_DEPOSIT".into();
        p.approved_at = None;
        Ok(())
    })
    .await?;
    match moved {
        Some(Ok(p)) => {
            sim.status_changed(p.to_toss(now)).await;
            Ok(true)
        }
        Some(Err(_)) | None => Ok(false),
    }
}

/// The regressed deposit confirmed again: WAITING_FOR_DEPOSIT → DONE, with
/// its webhook (even past the account's due date: the money had arrived).
async fn redeposit(sim: &Arc<PgSim>, payment_key: String) -> anyhow::Result<()> {
    let now = sim.opts.clock.now().millis();
    let moved = transition(sim, payment_key, move |p| {
        if p.status != "WAITING_FOR_DEPOSIT" {
            return Err(p.status.clone());
        }
        p.status = "DONE".into();
        p.approved_at = Some(kst(now));
        Ok(())
    })
    .await?;
    if let Some(Ok(p)) = moved {
        sim.status_changed(p.to_toss(now)).await;
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RegressBody {
    payment_key: String,
}

/// `POST /v1/sim/regress`: a DONE virtual account back to
/// WAITING_FOR_DEPOSIT, on demand (a deposit confirms it again).
pub(super) async fn regress_now(State(sim): State<Arc<PgSim>>, Json(b): Json<RegressBody>) -> Response {
    let now = sim.opts.clock.now().millis();
    match regress(&sim, b.payment_key.clone()).await {
        Err(e) => db::internal(&e),
        Ok(false) => {
            respond(toss_error(400, "INVALID_REQUEST", "only a DONE virtual account, never cancelled, regresses"))
        }
        Ok(true) => match sim.db.tx(move |c| rows::payment(c, &b.payment_key)).await {
            Ok(Some(p)) => respond((200, p.to_toss(now))),
            Ok(None) => respond(toss_error(404, "NOT_FOUND_PAYMENT", "no such payment")),
            Err(e) => db::internal(&e),
        },
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StatusBody {
    payment_key: String,
    status: String,
    #[serde(default = "yes")]
    notify: bool,
}

fn yes() -> bool {
    true
}

pub(super) async fn set_status(State(sim): State<Arc<PgSim>>, Json(b): Json<StatusBody>) -> Response {
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
        if to == "IN_PROGRESS" {
            p.in_progress_ms = Some(now);
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

pub(super) async fn add_fault(State(sim): State<Arc<PgSim>>, Json(f): Json<Fault>) -> Response {
    if f.count == 0 || f.count < -1 {
        return respond(toss_error(400, "INVALID_REQUEST", "count is a positive number, or -1 for until cleared"));
    }
    if !f.op.honours(f.fault) {
        let why = format!("{} does nothing on {}: nothing armed", f.fault.as_str(), f.op.as_str());
        return respond(toss_error(400, "INVALID_REQUEST", &why));
    }
    match sim.arm(f.clone()).await {
        Ok(()) => respond((200, json!(f))),
        Err(e) => db::internal(&e),
    }
}

pub(super) async fn clear_faults(State(sim): State<Arc<PgSim>>) -> Response {
    match sim.db.tx(faults::clear).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => db::internal(&e),
    }
}

pub(super) async fn list_faults(State(sim): State<Arc<PgSim>>) -> Response {
    let listed = sim.db.tx(faults::list).await.map(|all| {
        all.into_iter().map(|(op, fault, count)| json!({"op": op, "fault": fault, "count": count})).collect::<Vec<_>>()
    });
    match listed {
        Ok(all) => respond((200, Value::Array(all))),
        Err(e) => db::internal(&e),
    }
}

pub(super) async fn calls(
    State(sim): State<Arc<PgSim>>,
    uri: Uri,
    Query(f): Query<Filter>,
    Query(p): Query<Page>,
) -> Response {
    db::listing(&uri, sim.calls(f, p).await)
}

pub(super) async fn payments(
    State(sim): State<Arc<PgSim>>,
    uri: Uri,
    Query(f): Query<Filter>,
    Query(p): Query<Page>,
) -> Response {
    let now = sim.opts.clock.now().millis();
    let listed = sim
        .payments(f, p)
        .await
        .map(|l| Listed { items: l.items.iter().map(|p| p.to_toss(now)).collect(), next: l.next });
    db::listing(&uri, listed)
}

pub(super) async fn webhooks(
    State(sim): State<Arc<PgSim>>,
    uri: Uri,
    Query(f): Query<Filter>,
    Query(p): Query<Page>,
) -> Response {
    db::listing(&uri, sim.webhooks(f, p).await)
}
