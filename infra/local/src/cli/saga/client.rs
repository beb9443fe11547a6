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
    SimCheckout,
    SimDeposit,
}

impl Call {
    /// A call to the PG simulator's widget endpoints, not to our API.
    pub fn is_simulator(self) -> bool {
        match self {
            Call::PlaceOrder | Call::Confirm | Call::PayWithPoints | Call::Cancel => false,
            Call::SimCheckout | Call::SimDeposit => true,
        }
    }

    pub fn route(self) -> &'static str {
        match self {
            Call::PlaceOrder => "POST /orders",
            Call::Confirm => "POST /payments/confirm",
            Call::PayWithPoints => "POST /payments/points",
            Call::Cancel => "POST /orders/{orderId}/cancel",
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
        Path::Card | Path::Refund | Path::VirtualAccount => {
            let method = if plan.path == Path::VirtualAccount { "VIRTUAL_ACCOUNT" } else { "CARD" };
            let checkout = call(run, Call::SimCheckout, 200, || {
                to.http
                    .post(format!("{}/v1/sim/checkout", to.pg))
                    .json(&json!({"orderId": order_id, "amount": amount, "method": method}))
            })
            .await?;
            let key = text(&checkout, "paymentKey")?;
            let confirm = json!({"orderId": order_id, "paymentKey": key, "amount": amount});
            let v = call(run, Call::Confirm, 200, || api("/payments/confirm".into(), confirm.clone())).await?;
            if plan.path == Path::VirtualAccount {
                expect_status(&v, "AWAITING_DEPOSIT")?;
                // The PG's DEPOSIT_CALLBACK webhook pays the order.
                call(run, Call::SimDeposit, 200, || {
                    to.http.post(format!("{}/v1/sim/deposit", to.pg)).json(&json!({"paymentKey": key}))
                })
                .await?;
            } else {
                expect_status(&v, "PAID")?;
            }
            if plan.path == Path::Refund {
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
