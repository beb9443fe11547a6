//! One flash-sale shopper: enters the queue, waits (polling as the answer's
//! `Retry-After` says, or on the live WebSocket), and once admitted does
//! what its seeded behaviour says — through the whole saga.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// What an admitted shopper does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Behaviour {
    /// Orders and pays by card.
    Card,
    /// Orders and pays from points.
    Points,
    /// Gives the slot back (`DELETE …/queue/me`).
    Leave,
    /// Does nothing: the session ends.
    Idle,
    /// Orders, and the payment fails (a confirm the PG refuses): the order expires.
    FailToPay,
    /// Orders and never pays: the order expires.
    LetExpire,
}

impl Behaviour {
    /// The seeded share of each (per 100).
    pub fn of(draw: u64) -> Behaviour {
        match draw % 100 {
            0..60 => Behaviour::Card,
            60..70 => Behaviour::Points,
            70..75 => Behaviour::Leave,
            75..80 => Behaviour::Idle,
            80..90 => Behaviour::FailToPay,
            _ => Behaviour::LetExpire,
        }
    }
}

/// One shopper's plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub index: usize,
    pub user: String,
    pub behaviour: Behaviour,
    /// Waits on the WebSocket rather than polling.
    pub live: bool,
    /// Also tries to order the gated product before being admitted (it must
    /// be refused).
    pub cheats: bool,
}

/// How the shopper's wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// Admitted, then did what its behaviour says (`paid` says whether it paid).
    Admitted,
    SoldOut,
    /// Admitted, but the session ended before the shopper ordered (it
    /// learnt of its admission too late): the admission is refused, as it
    /// must be, and the slot freed by the session timer.
    MissedSession,
    /// Admitted and ordered, but paid after the order's payment window:
    /// refused, as it must be; the order expires and its unit comes back.
    PaidTooLate,
    /// Gave up waiting (the bench's bound), or could not enter.
    GaveUp,
}

/// What one shopper did.
#[derive(Debug)]
pub struct Run {
    pub plan: Plan,
    pub entered_ms: Option<f64>,
    /// From the entry's answer to the admission seen.
    pub waited_ms: Option<f64>,
    pub outcome: Outcome,
    pub order_id: Option<String>,
    pub paid: bool,
    /// When the order was placed (ms since the burst began) and how long it
    /// took to be PAID.
    pub paid_at: Option<(f64, f64)>,
    /// Answers a shopper should not have had (a cheat's order placed, an
    /// admitted shopper's order refused for anything but sold-out stock).
    pub wrong: Vec<String>,
    pub polls: u64,
    pub pushes: u64,
    pub cheat_refused: bool,
}

/// Where and how shoppers talk to the stack.
pub struct Endpoints {
    pub http: reqwest::Client,
    pub api: String,
    pub live: String,
    pub pg: String,
    pub sale: String,
    pub product: String,
    pub token: Box<dyn Fn(&str) -> String + Send + Sync>,
    /// Requests in flight at most for entering and buying (a waiting
    /// shopper holds none).
    pub gate: Semaphore,
    /// Polls in flight at most: polling waits its turn, buying does not
    /// wait behind it (an admitted shopper's session runs).
    pub polls: Semaphore,
    /// A shopper gives up waiting after this long.
    pub patience: Duration,
}

type Answer = anyhow::Result<(u16, reqwest::header::HeaderMap, Value)>;

/// One request, within the in-flight cap. Boxed: 100,000 waiting shoppers
/// each hold their future, which must not carry a request's state inline.
fn send<'a>(
    to: &'a Endpoints,
    req: reqwest::RequestBuilder,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Answer> + Send + 'a>> {
    send_within(&to.gate, req)
}

/// A poll: within the polls' own cap.
fn poll<'a>(
    to: &'a Endpoints,
    req: reqwest::RequestBuilder,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Answer> + Send + 'a>> {
    send_within(&to.polls, req)
}

fn send_within<'a>(
    gate: &'a Semaphore,
    req: reqwest::RequestBuilder,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Answer> + Send + 'a>> {
    Box::pin(async move {
        let _permit = gate.acquire().await?;
        let resp = req.send().await?;
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        let body = resp.bytes().await?;
        Ok((status, headers, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    })
}

/// One shopper, start to end.
pub async fn shop(to: &Endpoints, plan: Plan, started: Instant) -> Run {
    let mut run = Run {
        plan: plan.clone(),
        entered_ms: None,
        waited_ms: None,
        outcome: Outcome::GaveUp,
        order_id: None,
        paid: false,
        paid_at: None,
        wrong: Vec::new(),
        polls: 0,
        pushes: 0,
        cheat_refused: false,
    };
    if let Err(e) = Box::pin(steps(to, &plan, &mut run, started)).await {
        run.wrong.push(format!("shopper {} ({:?}): {e:#}", plan.user, plan.behaviour));
    }
    run
}

async fn steps(to: &Endpoints, plan: &Plan, run: &mut Run, started: Instant) -> anyhow::Result<()> {
    let token = (to.token)(&plan.user);
    let me = format!("{}/sales/{}/queue/me", to.api, to.sale);
    // Enter, through transient failures (the stack busy).
    let mut entered = None;
    for _ in 0..20 {
        match send(to, to.http.post(format!("{}/sales/{}/queue", to.api, to.sale)).bearer_auth(&token)).await {
            Ok((201 | 200, headers, t)) => {
                entered = Some((t, headers));
                break;
            }
            Ok((409, _, t)) if t["type"].as_str().is_some_and(|k| k.ends_with("sale-closed")) => {
                run.outcome = Outcome::SoldOut;
                return Ok(());
            }
            Ok(_) | Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let Some((mut ticket, entered_headers)) = entered else { return Ok(()) };
    let entered_at = Instant::now();
    run.entered_ms = Some(entered_at.duration_since(started).as_secs_f64() * 1000.0);
    if plan.cheats {
        let (status, _) = order(to, &token, None, &format!("cheat-{}", plan.index)).await?;
        run.cheat_refused = status == 403;
        if status != 403 {
            run.wrong.push(format!("{}: an order without an admission answered {status}", plan.user));
        }
    }

    // Wait.
    let deadline = entered_at + to.patience;
    if plan.live {
        ticket = Box::pin(wait_live(to, &ticket, run, deadline)).await?;
        if ticket["status"] == "ADMITTED" {
            ticket = send(to, to.http.get(&me).bearer_auth(&token)).await?.2;
        }
    } else {
        let mut retry_after = ticket_retry_after(&entered_headers);
        while ticket["status"] == "WAITING" {
            if Instant::now() >= deadline {
                return Ok(());
            }
            let pause = Duration::from_secs(retry_after);
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
            let (status, headers, t) = poll(to, to.http.get(&me).bearer_auth(&token)).await?;
            run.polls += 1;
            if status == 200 {
                ticket = t;
                retry_after = ticket_retry_after(&headers);
            }
        }
    }
    match ticket["status"].as_str() {
        Some("ADMITTED") => {}
        Some("SOLD_OUT") => {
            run.outcome = Outcome::SoldOut;
            return Ok(());
        }
        Some("EXPIRED") => {
            run.outcome = Outcome::MissedSession;
            return Ok(());
        }
        _ => return Ok(()),
    }
    run.outcome = Outcome::Admitted;
    run.waited_ms = Some(entered_at.elapsed().as_secs_f64() * 1000.0);
    let admission = ticket["admission"]["token"].as_str().map(str::to_owned);
    let Some(admission) = admission else {
        run.wrong.push(format!("{}: admitted without a token: {ticket}", plan.user));
        return Ok(());
    };

    // Buy.
    match plan.behaviour {
        Behaviour::Idle => return Ok(()),
        Behaviour::Leave => {
            let (status, _, t) = send(to, to.http.delete(&me).bearer_auth(&token)).await?;
            anyhow::ensure!(status == 200, "leaving: {status} {t}");
            return Ok(());
        }
        Behaviour::Card | Behaviour::Points | Behaviour::FailToPay | Behaviour::LetExpire => {}
    }
    let (status, placed) = order(to, &token, Some(&admission), &format!("flash-{}", plan.index)).await?;
    if status == 409 && placed["type"].as_str().is_some_and(|k| k.ends_with("insufficient-stock")) {
        // Admitted while the last units were reserved by others' orders.
        return Ok(());
    }
    if status == 403 && placed["detail"].as_str().is_some_and(|d| d.ends_with("expired")) {
        run.outcome = Outcome::MissedSession;
        return Ok(());
    }
    anyhow::ensure!(status == 201, "ordering with an admission: {status} {placed}");
    let placed_at = Instant::now();
    let order_id = placed["orderId"].as_str().unwrap_or_default().to_owned();
    let amount = placed["amountDue"].as_u64().unwrap_or_default();
    run.order_id = Some(order_id.clone());
    let api = |path: &str, body: Value| to.http.post(format!("{}{path}", to.api)).bearer_auth(&token).json(&body);
    // Past the order's payment window: refused as `order-expired` until the
    // expirer has run, as not payable in status EXPIRED after it.
    let too_late = |status: u16, v: &Value| {
        status == 409
            && (v["type"].as_str().is_some_and(|k| k.ends_with("order-expired")) || v["orderStatus"] == "EXPIRED")
    };
    match plan.behaviour {
        Behaviour::Card | Behaviour::FailToPay => {
            let (_, _, checkout) = send(
                to,
                to.http
                    .post(format!("{}/v1/sim/checkout", to.pg))
                    .json(&json!({"orderId": order_id, "amount": amount, "method": "CARD"})),
            )
            .await?;
            let key = checkout["paymentKey"].as_str().unwrap_or_default().to_owned();
            // A failing payment: the amount the PG was not told; the order stays unpaid and expires.
            let paying = if plan.behaviour == Behaviour::FailToPay { amount + 1 } else { amount };
            let (status, _, v) =
                send(to, api("/payments/confirm", json!({"orderId": order_id, "paymentKey": key, "amount": paying})))
                    .await?;
            if plan.behaviour == Behaviour::Card && too_late(status, &v) {
                run.outcome = Outcome::PaidTooLate;
            } else if plan.behaviour == Behaviour::Card {
                anyhow::ensure!(status == 200 && v["status"] == "PAID", "paying by card: {status} {v}");
                run.paid = true;
                run.paid_at = Some(since(started, placed_at));
            } else {
                anyhow::ensure!(status >= 400, "a wrong amount was taken: {status} {v}");
            }
        }
        Behaviour::Points => {
            let (status, _, v) = send(to, api("/payments/points", json!({"orderId": order_id}))).await?;
            if too_late(status, &v) {
                run.outcome = Outcome::PaidTooLate;
                return Ok(());
            }
            anyhow::ensure!(status == 200 && v["status"] == "PAID", "paying with points: {status} {v}");
            run.paid = true;
            run.paid_at = Some(since(started, placed_at));
        }
        Behaviour::LetExpire | Behaviour::Leave | Behaviour::Idle => {}
    }
    Ok(())
}

/// The seconds an answer's `Retry-After` says to wait before polling
/// again (1 when it says none).
fn ticket_retry_after(headers: &reqwest::header::HeaderMap) -> u64 {
    headers.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(1)
}

/// (ms from `started` to `placed`, ms from `placed` to now).
fn since(started: Instant, placed: Instant) -> (f64, f64) {
    (placed.duration_since(started).as_secs_f64() * 1000.0, placed.elapsed().as_secs_f64() * 1000.0)
}

async fn order(to: &Endpoints, token: &str, admission: Option<&str>, key: &str) -> anyhow::Result<(u16, Value)> {
    let mut req = to
        .http
        .post(format!("{}/orders", to.api))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&json!({"items": [{"productId": to.product, "quantity": 1}]}));
    if let Some(a) = admission {
        req = req.header("admission", a);
    }
    let (status, _, body) = send(to, req).await?;
    Ok((status, body))
}

/// Waits on `/live` with the ticket's live token until the status is no
/// longer WAITING (or the deadline): the last message.
async fn wait_live(to: &Endpoints, ticket: &Value, run: &mut Run, deadline: Instant) -> anyhow::Result<Value> {
    use futures::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let Some(live) = ticket["liveToken"].as_str() else { return Ok(ticket.clone()) };
    let mut req = to.live.as_str().into_client_request()?;
    req.headers_mut().insert("sec-websocket-protocol", format!("shop-live.v1, {live}").parse()?);
    let (mut socket, _) = {
        let _permit = to.gate.acquire().await?;
        tokio_tungstenite::connect_async(req).await?
    };
    let mut last = ticket.clone();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, socket.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                run.pushes += 1;
                last = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                if last["status"] != "WAITING" {
                    break;
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) | Err(_) => break,
        }
    }
    let _ = futures::SinkExt::close(&mut socket).await;
    Ok(last)
}
