//! One shopper: drives one order's saga through the HTTP API and the PG
//! simulator's widget endpoints, timing every API call by route.

use super::mix::{Path, Plan};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The calls a shopper makes, by route (the API's) or by simulator endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Call {
    PlaceOrder,
    Confirm,
    PayWithPoints,
    Cancel,
    Refund,
    SimCheckout,
    SimDeposit,
}

impl Call {
    /// A call to the PG simulator's widget endpoints, not to our API.
    pub fn is_simulator(self) -> bool {
        match self {
            Call::PlaceOrder | Call::Confirm | Call::PayWithPoints | Call::Cancel | Call::Refund => false,
            Call::SimCheckout | Call::SimDeposit => true,
        }
    }

    pub fn route(self) -> &'static str {
        match self {
            Call::PlaceOrder => "POST /orders",
            Call::Confirm => "POST /payments/confirm",
            Call::PayWithPoints => "POST /payments/points",
            Call::Cancel => "POST /orders/{orderId}/cancel",
            Call::Refund => "POST /orders/{orderId}/refunds",
            Call::SimCheckout => "PG sim POST /v1/sim/checkout",
            Call::SimDeposit => "PG sim POST /v1/sim/deposit",
        }
    }
}

/// Where the shopper talks to.
#[derive(Clone)]
pub struct Endpoints {
    pub http: reqwest::Client,
    pub api: String,
    pub pg: String,
    pub token: std::sync::Arc<dyn Fn(&str) -> String + Send + Sync>,
}

/// What one shopper did.
#[derive(Debug)]
pub struct Run {
    pub index: usize,
    pub order_id: Option<String>,
    pub path: Path,
    pub calls: Vec<(Call, Duration)>,
    /// The first answer that was not what the path expects.
    pub error: Option<String>,
}

pub async fn drive(to: &Endpoints, plan: &Plan) -> Run {
    let mut run = Run { index: plan.index, order_id: None, path: plan.path, calls: Vec::with_capacity(4), error: None };
    if let Err(e) = steps(to, plan, &mut run).await {
        run.error = Some(format!("order #{} ({:?}): {e:#}", plan.index, plan.path));
    }
    run
}

async fn steps(to: &Endpoints, plan: &Plan, run: &mut Run) -> anyhow::Result<()> {
    let token = (to.token)(plan.user.as_str());
    let placed = call(run, Call::PlaceOrder, 201, || {
        to.http
            .post(format!("{}/orders", to.api))
            .bearer_auth(&token)
            .header("idempotency-key", format!("saga-{}", plan.index))
            .json(&plan.body())
    })
    .await?;
    let order_id = text(&placed, "orderId")?;
    let amount = placed.get("amountDue").and_then(Value::as_u64).ok_or_else(|| anyhow::anyhow!("no amountDue"))?;
    run.order_id = Some(order_id.clone());
    let api = |path: String, body: Value| to.http.post(format!("{}{path}", to.api)).bearer_auth(&token).json(&body);
    match plan.path {
        Path::Expire => {}
        Path::CancelUnpaid => {
            let v = call(run, Call::Cancel, 200, || api(format!("/orders/{order_id}/cancel"), json!({}))).await?;
            expect_status(&v, "CANCELLED")?;
        }
        Path::Points => {
            let v =
                call(run, Call::PayWithPoints, 200, || api("/payments/points".into(), json!({"orderId": order_id})))
                    .await?;
            expect_status(&v, "PAID")?;
        }
        Path::Card
        | Path::Refund
        | Path::PartialRefund
        | Path::RefundInParts
        | Path::VirtualAccount
        | Path::DepositRefund => {
            let by_deposit = matches!(plan.path, Path::VirtualAccount | Path::DepositRefund);
            let method = if by_deposit { "VIRTUAL_ACCOUNT" } else { "CARD" };
            let checkout = call(run, Call::SimCheckout, 200, || {
                to.http
                    .post(format!("{}/v1/sim/checkout", to.pg))
                    .json(&json!({"orderId": order_id, "amount": amount, "method": method}))
            })
            .await?;
            let key = text(&checkout, "paymentKey")?;
            let confirm = json!({"orderId": order_id, "paymentKey": key, "amount": amount});
            let v = call(run, Call::Confirm, 200, || api("/payments/confirm".into(), confirm.clone())).await?;
            if by_deposit {
                expect_status(&v, "AWAITING_DEPOSIT")?;
                // The PG's DEPOSIT_CALLBACK webhook pays the order.
                call(run, Call::SimDeposit, 200, || {
                    to.http.post(format!("{}/v1/sim/deposit", to.pg)).json(&json!({"paymentKey": key}))
                })
                .await?;
            } else {
                expect_status(&v, "PAID")?;
            }
            if plan.path == Path::DepositRefund {
                paid_by_deposit(to, plan.user.as_str(), &order_id).await?;
                let body = json!({"refundAccount": plan.refund_account()});
                let v =
                    call(run, Call::Cancel, 200, || api(format!("/orders/{order_id}/cancel"), body.clone())).await?;
                expect_status(&v, "REFUND_PENDING")?;
            }
            if plan.path == Path::Refund {
                let v = call(run, Call::Cancel, 200, || api(format!("/orders/{order_id}/cancel"), json!({}))).await?;
                expect_status(&v, "REFUND_PENDING")?;
            }
            if matches!(plan.path, Path::PartialRefund | Path::RefundInParts) {
                let v = call(run, Call::Refund, 202, || {
                    api(format!("/orders/{order_id}/refunds"), plan.part_body(amount))
                        .header("idempotency-key", format!("saga-refund-{}", plan.index))
                })
                .await?;
                expect_status(v.get("order").unwrap_or(&Value::Null), "PARTIALLY_REFUNDED")?;
            }
            if plan.path == Path::RefundInParts {
                // The rest waits for the part in flight (409 refund-in-progress).
                refund_settled(to, plan.user.as_str(), &order_id).await?;
                let v = call(run, Call::Cancel, 200, || api(format!("/orders/{order_id}/cancel"), json!({}))).await?;
                expect_status(&v, "REFUND_PENDING")?;
            }
        }
    }
    Ok(())
}

async fn call(
    run: &mut Run,
    what: Call,
    expected: u16,
    request: impl FnOnce() -> reqwest::RequestBuilder,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    let resp = request().send().await?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await?;
    run.calls.push((what, started.elapsed()));
    anyhow::ensure!(status == expected, "{}: {status} {}", what.route(), String::from_utf8_lossy(&body));
    Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn text(v: &Value, field: &str) -> anyhow::Result<String> {
    v.get(field).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| anyhow::anyhow!("no {field} in {v}"))
}

fn expect_status(v: &Value, want: &str) -> anyhow::Result<()> {
    let got = v.get("status").and_then(Value::as_str).unwrap_or_default();
    anyhow::ensure!(got == want, "expected {want}, got {v}");
    Ok(())
}

/// How long a shopper keeps retrying one call through faults and restarts.
const PATIENCE: Duration = Duration::from_secs(90);
/// Payment attempts (checkout + confirm) before a shopper gives up.
const PAY_ATTEMPTS: usize = 3;
/// Refunds of a deposit asked for before a shopper gives up.
const REFUND_ATTEMPTS: usize = 3;

/// One shopper under chaos: the same plan, but as a real client behaves
/// when the shop or the PG misbehaves — a call that fails in transport or
/// with a 5xx (the stack killed, a store fault) is sent again, with the
/// same `Idempotency-Key`; a payment whose outcome is unknown is waited for
/// (the reconciler decides); a declined card is tried again with a new
/// checkout. A shopper who cannot finish gives up (`error`): under chaos
/// that is an outcome, not a violation — the invariants are what count.
pub async fn drive_through_faults(to: &Endpoints, plan: &Plan) -> Run {
    let mut run = Run { index: plan.index, order_id: None, path: plan.path, calls: Vec::with_capacity(6), error: None };
    if let Err(e) = chaos_steps(to, plan, &mut run).await {
        run.error = Some(format!("order #{} ({:?}): {e:#}", plan.index, plan.path));
    }
    run
}

async fn chaos_steps(to: &Endpoints, plan: &Plan, run: &mut Run) -> anyhow::Result<()> {
    let user = plan.user.as_str();
    let (status, placed) = persist(run, Call::PlaceOrder, || {
        to.http
            .post(format!("{}/orders", to.api))
            .bearer_auth((to.token)(user))
            .header("idempotency-key", format!("saga-{}", plan.index))
            .json(&plan.body())
    })
    .await?;
    anyhow::ensure!(status == 201, "placing: {status} {placed}");
    let order_id = text(&placed, "orderId")?;
    let amount = placed.get("amountDue").and_then(Value::as_u64).ok_or_else(|| anyhow::anyhow!("no amountDue"))?;
    run.order_id = Some(order_id.clone());
    let api = |path: String, body: Value| {
        let (to, body) = (to.clone(), body);
        move || to.http.post(format!("{}{path}", to.api)).bearer_auth((to.token)(user)).json(&body)
    };
    match plan.path {
        Path::Expire => {}
        Path::CancelUnpaid => {
            let (status, v) = persist(run, Call::Cancel, api(format!("/orders/{order_id}/cancel"), json!({}))).await?;
            anyhow::ensure!(status == 200, "cancelling: {status} {v}");
        }
        Path::Points => {
            let (status, v) =
                persist(run, Call::PayWithPoints, api("/payments/points".into(), json!({"orderId": order_id}))).await?;
            if status != 200 {
                // A retry after a lost answer finds the order already paid.
                anyhow::ensure!(order_status(to, user, &order_id).await? == "PAID", "points: {status} {v}");
            }
        }
        Path::Card
        | Path::Refund
        | Path::PartialRefund
        | Path::RefundInParts
        | Path::VirtualAccount
        | Path::DepositRefund => {
            let by_deposit = matches!(plan.path, Path::VirtualAccount | Path::DepositRefund);
            let method = if by_deposit { "VIRTUAL_ACCOUNT" } else { "CARD" };
            let (mut outcome, mut key) = (String::new(), String::new());
            for _ in 0..PAY_ATTEMPTS {
                let (_, checkout) = persist(run, Call::SimCheckout, || {
                    to.http
                        .post(format!("{}/v1/sim/checkout", to.pg))
                        .json(&json!({"orderId": order_id, "amount": amount, "method": method}))
                })
                .await?;
                key = text(&checkout, "paymentKey")?;
                let confirm = json!({"orderId": order_id, "paymentKey": key, "amount": amount});
                // Sent once: whatever came back (an answer, a 202, a lost
                // connection), the order's status says what happened.
                let started = Instant::now();
                let _ = api("/payments/confirm".into(), confirm)().send().await;
                run.calls.push((Call::Confirm, started.elapsed()));
                outcome = settled_status(to, user, &order_id).await?;
                match outcome.as_str() {
                    "PAID" | "AWAITING_DEPOSIT" => break,
                    "PENDING_PAYMENT" => continue,
                    _ => anyhow::bail!("the order is {outcome} after a confirm"),
                }
            }
            anyhow::ensure!(matches!(outcome.as_str(), "PAID" | "AWAITING_DEPOSIT"), "gave up paying: {outcome}");
            if outcome == "AWAITING_DEPOSIT" {
                // The PG's webhook (or, if it is lost, the reconciler) pays the order.
                let (status, v) = persist(run, Call::SimDeposit, || {
                    to.http.post(format!("{}/v1/sim/deposit", to.pg)).json(&json!({"paymentKey": key}))
                })
                .await?;
                anyhow::ensure!(status == 200, "deposit: {status} {v}");
            }
            if plan.path == Path::DepositRefund {
                paid_by_deposit(to, user, &order_id).await?;
                // A refund the bank refuses (FAILED, the order PAID again)
                // is asked again, as a shopper told to check the account would.
                for _ in 0..REFUND_ATTEMPTS {
                    let body = json!({"refundAccount": plan.refund_account()});
                    let (status, v) =
                        persist(run, Call::Cancel, api(format!("/orders/{order_id}/cancel"), body)).await?;
                    anyhow::ensure!(status == 200, "refunding the deposit: {status} {v}");
                    refund_settled(to, user, &order_id).await?;
                    if order_status(to, user, &order_id).await? != "PAID" {
                        break;
                    }
                }
            }
            if plan.path == Path::Refund {
                let (status, v) =
                    persist(run, Call::Cancel, api(format!("/orders/{order_id}/cancel"), json!({}))).await?;
                anyhow::ensure!(status == 200, "refund: {status} {v}");
            }
            if matches!(plan.path, Path::PartialRefund | Path::RefundInParts) {
                let part = plan.part_body(amount);
                let (status, v) = persist(run, Call::Refund, || {
                    api(format!("/orders/{order_id}/refunds"), part.clone())()
                        .header("idempotency-key", format!("saga-refund-{}", plan.index))
                })
                .await?;
                anyhow::ensure!(status == 202, "refunding a part: {status} {v}");
            }
            if plan.path == Path::RefundInParts {
                refund_settled(to, user, &order_id).await?;
                let (status, v) =
                    persist(run, Call::Cancel, api(format!("/orders/{order_id}/cancel"), json!({}))).await?;
                anyhow::ensure!(status == 200, "refunding the rest: {status} {v}");
            }
        }
    }
    Ok(())
}

/// Sends a request until it gets an answer that is not a transport error,
/// a 5xx or a 409 `idempotency-in-progress` (the stack restarting, a store
/// fault, a lock left by a killed process), for at most [`PATIENCE`].
async fn persist(
    run: &mut Run,
    what: Call,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> anyhow::Result<(u16, Value)> {
    let deadline = Instant::now() + PATIENCE;
    let mut pause = Duration::from_millis(50);
    loop {
        let started = Instant::now();
        let answer = match request().send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                resp.bytes().await.map(|b| (status, serde_json::from_slice(&b).unwrap_or(Value::Null)))
            }
            Err(e) => Err(e),
        };
        run.calls.push((what, started.elapsed()));
        let last = match answer {
            Ok((status, body)) => {
                let in_progress = status == 409
                    && body.get("type").and_then(Value::as_str).is_some_and(|t| t.ends_with("idempotency-in-progress"));
                if status < 500 && !in_progress {
                    return Ok((status, body));
                }
                format!("{status} {body}")
            }
            Err(e) => e.to_string(),
        };
        anyhow::ensure!(Instant::now() < deadline, "{}: still failing after {PATIENCE:?}: {last}", what.route());
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// The order's status as its owner sees it (retried like any call).
async fn order_status(to: &Endpoints, user: &str, order_id: &str) -> anyhow::Result<String> {
    text(&order_of(to, user, order_id).await?, "status")
}

/// `GET /orders/{orderId}`, through faults and restarts (untimed: the
/// shopper's reads are not the route's figures).
async fn order_of(to: &Endpoints, user: &str, order_id: &str) -> anyhow::Result<Value> {
    let mut scratch = Run { index: 0, order_id: None, path: Path::Card, calls: Vec::new(), error: None };
    let (status, v) = persist(&mut scratch, Call::PlaceOrder, || {
        to.http.get(format!("{}/orders/{order_id}", to.api)).bearer_auth((to.token)(user))
    })
    .await?;
    anyhow::ensure!(status == 200, "reading the order: {status} {v}");
    Ok(v)
}

/// Waits, for at most [`PATIENCE`], until no refund of the order is
/// REQUESTED (each DONE, or FAILED when the PG refused it).
async fn refund_settled(to: &Endpoints, user: &str, order_id: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let v = order_of(to, user, order_id).await?;
        let requested = v
            .get("refunds")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|r| r.get("status").and_then(Value::as_str) == Some("REQUESTED")));
        if !requested {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "a refund of {order_id} still REQUESTED after {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits, for at most [`PATIENCE`], until the PG's deposit webhook (or,
/// if it is lost, the reconciler) has paid the order.
async fn paid_by_deposit(to: &Endpoints, user: &str, order_id: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = order_status(to, user, order_id).await?;
        if status == "PAID" {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{order_id} still {status} {PATIENCE:?} after the deposit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The order's status once no payment of it is in doubt (the reconciler
/// settles one whose answer was lost), for at most [`PATIENCE`].
async fn settled_status(to: &Endpoints, user: &str, order_id: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = order_status(to, user, order_id).await?;
        if status != "CONFIRMING" || Instant::now() >= deadline {
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
