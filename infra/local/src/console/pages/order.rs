//! One order's saga: the lanes on one time axis, failures in bold, pending
//! steps as pending, and the money beside them. The lanes refresh every
//! two seconds (htmx polls `/saga`, which renders them alone).

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use shop_domain::OrderId;

use super::shell;
use crate::console::auth::SignedIn;
use crate::console::saga::{self, OrderSaga, Problem, Stuck};
use crate::console::{ConsoleState, acting, queues};
use crate::ops::CONSUMERS;

/// Audit entries read for an order's page (the newest of the trail).
const AUDIT_READ: i32 = 1_000;

pub async fn page(State(state): State<Arc<ConsoleState>>, Path(order_id): Path<String>) -> Response {
    match load(&state, &order_id).await {
        Ok(Some(s)) => {
            let audit = match state.app.store.audit().naming(&format!("order:{}", s.order.id), AUDIT_READ).await {
                Ok(a) => a,
                Err(e) => return failed(&state, &anyhow::Error::new(e)),
            };
            let body = html! { (full(&s, state.allow_actions, state.stack.is_none())) (audit_part(&audit)) };
            shell::page(&state, &format!("Order {}", s.order.id), body).into_response()
        }
        Ok(None) => (
            StatusCode::NOT_FOUND,
            shell::page(
                &state,
                "No such order",
                html! {
                    p #no-order { "There is no order " code { (order_id) } " in this stack's table." }
                    form.search method="get" action="/console/orders" {
                        input name="q" value=(order_id) placeholder="order id, payment key, correlation id or user" size="48";
                        button type="submit" { "Find" }
                    }
                    p { a href="/console/orders/find" { "Find orders by filters →" } }
                },
            ),
        )
            .into_response(),
        Err(e) => failed(&state, &e),
    }
}

/// The live part alone (what htmx swaps in).
pub async fn live(State(state): State<Arc<ConsoleState>>, Path(order_id): Path<String>) -> Response {
    match load(&state, &order_id).await {
        Ok(Some(s)) => axum::response::Html(live_part(&s, state.allow_actions, state.stack.is_none()).into_string())
            .into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => failed(&state, &e),
    }
}

async fn load(state: &ConsoleState, order_id: &str) -> anyhow::Result<Option<OrderSaga>> {
    let Ok(id) = OrderId::parse(order_id) else { return Ok(None) };
    saga::load(&state.app, state.pg.as_deref(), state.sink.as_deref(), &id).await
}

/// What operators did to this order, from the audit trail.
fn audit_part((entries, capped): &(Vec<shop_store::audit::AuditEntry>, bool)) -> Markup {
    html! {
        h2 #order-audit { "Done by hand" }
        @if entries.is_empty() { p.hint { "Nothing" @if *capped { " in the newest " (AUDIT_READ) " entries of the audit trail" } "." } }
        @else {
            table #order-audit-entries { tr { th { "when (UTC)" } th { "operator" } th { "action" } th { "reason" } th { "outcome" } }
                @for e in entries { tr {
                    td { (e.action.at.to_rfc3339()) } td { (e.action.operator) } td { code { (e.action.action) } }
                    td { (e.action.reason) } td { (e.status.as_str()) @if let Some(o) = &e.outcome { ": " (o) } }
                } }
            }
            @if *capped { p.hint { "From the newest " (AUDIT_READ) " entries of the audit trail; " a href="/console/audit" { "older ones" } " are on the Audit page." } }
        }
    }
}

fn failed(state: &ConsoleState, e: &anyhow::Error) -> Response {
    shell::error(state, e)
}

/// The confirmation step of republishing an order's events.
pub async fn confirm_republish(State(state): State<Arc<ConsoleState>>, Path(order_id): Path<String>) -> Response {
    let Ok(id) = OrderId::parse(order_id.as_str()) else { return StatusCode::NOT_FOUND.into_response() };
    match state.app.store.outbox().events_of(&id).await {
        Ok(events) if !events.is_empty() => shell::page(
            &state,
            &format!("Republish the events of order {id}?"),
            html! {
                p { (events.len()) " event(s) go to the bus again; every consumer dedupes what it already did." }
                form method="post" action={ "/console/orders/" (id) "/republish" } {
                    (crate::console::auth::csrf_field())
                    (crate::console::acting::reason_field())
                    button #confirm type="submit" { "Republish" } " " a href={ "/console/orders/" (id) } { "Cancel" }
                }
            },
        )
        .into_response(),
        Ok(_) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => shell::error(&state, &anyhow::Error::new(e)),
    }
}

/// Marks every event of the order pending again: the publisher sends each once more.
pub async fn republish(
    State(state): State<Arc<ConsoleState>>,
    Extension(who): Extension<SignedIn>,
    Path(order_id): Path<String>,
    Form(f): Form<acting::ReasonForm>,
) -> Response {
    let Ok(id) = OrderId::parse(order_id.as_str()) else { return StatusCode::NOT_FOUND.into_response() };
    let work = || async {
        let events = state.app.store.outbox().events_of(&id).await?;
        for e in &events {
            state.app.store.outbox().mark_pending(e).await?;
        }
        anyhow::Ok(events.len())
    };
    let targets = vec![format!("order:{id}")];
    match acting::act(&state, &who, &f.reason, "order.republish", targets, work, |n| {
        format!("{n} event(s) pending again")
    })
    .await
    {
        Ok(_) => Redirect::to(&format!("/console/orders/{id}")).into_response(),
        Err(response) => response,
    }
}

#[derive(serde::Deserialize)]
pub struct ReplayOne {
    version: u64,
    consumer: String,
    /// On the confirmed POST only.
    #[serde(default)]
    reason: String,
}

/// The confirmation step of replaying one event to one consumer.
pub async fn confirm_replay(
    State(state): State<Arc<ConsoleState>>,
    Path(order_id): Path<String>,
    Query(r): Query<ReplayOne>,
) -> Response {
    let Ok(id) = OrderId::parse(order_id.as_str()) else { return StatusCode::NOT_FOUND.into_response() };
    if !CONSUMERS.contains(&r.consumer.as_str()) {
        return (StatusCode::NOT_FOUND, shell::page(&state, "No such consumer", html! {})).into_response();
    }
    let event = match state.app.store.outbox().events_of(&id).await {
        Ok(events) => events.into_iter().find(|e| e.event_id == format!("{id}#{}", r.version)),
        Err(e) => return shell::error(&state, &anyhow::Error::new(e)),
    };
    let Some(event) = event else {
        return (StatusCode::NOT_FOUND, shell::page(&state, "No such event", html! {})).into_response();
    };
    shell::page(&state,
        &format!("Replay {} to {}?", event.event_id, r.consumer),
        html! {
            p { "The " (event.detail_type) " event " code { (event.event_id) } " goes to the " (r.consumer)
                " queue alone, as the bus delivers it; the consumer dedupes it if it already did it." }
            form method="post" action={ "/console/orders/" (id) "/replay" } {
                (crate::console::auth::csrf_field())
                input type="hidden" name="version" value=(r.version);
                input type="hidden" name="consumer" value=(r.consumer);
                (crate::console::acting::reason_field())
                button #confirm type="submit" { "Replay to " (r.consumer) } " " a href={ "/console/orders/" (id) } { "Cancel" }
            }
        },
    )
    .into_response()
}

pub async fn replay(
    State(state): State<Arc<ConsoleState>>,
    Extension(who): Extension<SignedIn>,
    Path(order_id): Path<String>,
    Form(r): Form<ReplayOne>,
) -> Response {
    let Ok(id) = OrderId::parse(order_id.as_str()) else { return StatusCode::NOT_FOUND.into_response() };
    // A pair the consumer's rule does not take is refused before anything is recorded.
    let taken = match crate::emulate::rules::rules() {
        Ok(rules) => crate::ops::replay_envelope(&state.app, &rules, &id, r.version, &r.consumer).await,
        Err(e) => Err(e),
    };
    match taken {
        Ok(Some(_)) => {}
        Ok(None) => {
            let body =
                html! { p { "The " (r.consumer) " consumer's rule does not take this event. Nothing was done." } };
            return (StatusCode::CONFLICT, shell::page(&state, "Not replayed", body)).into_response();
        }
        Err(e) => return shell::error(&state, &e),
    }
    let targets = vec![format!("order:{id}"), format!("event:{id}#{}", r.version), format!("queue:{}", r.consumer)];
    let work = || async {
        crate::console::queues::replay_event(&state, &id, r.version, &r.consumer)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the {} consumer's rule does not take this event", r.consumer))
    };
    match acting::act(&state, &who, &r.reason, "order.replay", targets, work, |name| format!("replayed as {name}"))
        .await
    {
        Ok(_) => Redirect::to(&format!("/console/orders/{id}")).into_response(),
        Err(response) => response,
    }
}

/// The confirmation step of asking the PG about the order's payment in doubt now.
pub async fn confirm_ask_pg(State(state): State<Arc<ConsoleState>>, Path(order_id): Path<String>) -> Response {
    let payment = match in_doubt(&state, &order_id).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    shell::page(
        &state,
        &format!("Ask the PG about payment {} now?", payment.payment_key),
        html! {
            p { "The PG is asked for its record of the payment, and the order is settled as it says — what the reconciler does on its run. A PG that still cannot say leaves it in doubt." }
            form method="post" action={ "/console/orders/" (payment.order_id) "/ask-pg" } {
                (crate::console::auth::csrf_field())
                (crate::console::acting::reason_field())
                button #confirm type="submit" { "Ask the PG" } " " a href={ "/console/orders/" (payment.order_id) } { "Cancel" }
            }
        },
    )
    .into_response()
}

/// Asks the PG about the order's payment in doubt, now, and settles it.
pub async fn ask_pg(
    State(state): State<Arc<ConsoleState>>,
    Extension(who): Extension<SignedIn>,
    Path(order_id): Path<String>,
    Form(f): Form<acting::ReasonForm>,
) -> Response {
    let payment = match in_doubt(&state, &order_id).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let targets = vec![format!("order:{}", payment.order_id), format!("payment:{}", payment.payment_key)];
    // Locally the console asks; on a deployed stack its reconcile-payments
    // function does (the PG secret stays in AWS). Not settled is not done.
    let work = || async {
        let answers = crate::bulk::ask_pg(queues::place(&state), &[payment.order_id.to_string()]).await?;
        match answers.into_iter().next() {
            Some(a) if a.ok => Ok(a.detail),
            Some(a) => Err(anyhow::anyhow!("{}", a.detail)),
            None => Err(anyhow::anyhow!("no answer for this order")),
        }
    };
    let described = |detail: &String| detail.clone();
    match acting::act(&state, &who, &f.reason, "payment.ask-pg", targets, work, described).await {
        Ok(_) => Redirect::to(&format!("/console/orders/{}", payment.order_id)).into_response(),
        Err(response) => response,
    }
}

/// The order's payment, if it is in doubt.
async fn in_doubt(state: &ConsoleState, order_id: &str) -> Result<shop_domain::Payment, Response> {
    let not =
        |why: &str| (StatusCode::CONFLICT, shell::page(state, "Not asked", html! { p { (why) } })).into_response();
    let Ok(id) = OrderId::parse(order_id) else { return Err(StatusCode::NOT_FOUND.into_response()) };
    let order = state.app.store.orders().get(&id).await.map_err(|e| shell::error(state, &anyhow::Error::new(e)))?;
    let Some(key) = order.and_then(|o| o.payment_key) else { return Err(not("The order has no payment.")) };
    match state.app.store.payments().get(&key).await {
        Ok(Some(p)) if p.status.in_doubt() => Ok(p),
        Ok(_) => Err(not("The payment is not in doubt: nothing to ask.")),
        Err(e) => Err(shell::error(state, &anyhow::Error::new(e))),
    }
}

fn full(s: &OrderSaga, allow_actions: bool, local: bool) -> Markup {
    html! {
        @if allow_actions {
            p { a.action href={ "/console/orders/" (s.order.id) "/republish" } { "Republish its events…" } }
            // Only the pairs a consumer's rule takes: a replay it would not take is never offered.
            p #replay { "Replay one event to one consumer: "
                @for e in &s.events { @for c in &e.consumers {
                    a.action href={ "/console/orders/" (s.order.id) "/replay?version=" (e.version) "&consumer=" (c) } {
                        (e.version) " " (e.detail_type) " → " (c) }
                    " · "
                } }
            }
        }
        div #saga hx-get={ "/console/orders/" (s.order.id) "/saga" } hx-trigger="every 2s" hx-swap="innerHTML" {
            (live_part(s, allow_actions, local))
        }
    }
}

/// One banner per open problem: what is stuck, the last error, since
/// when, what the system does next, and the action that resolves it.
fn problems(s: &OrderSaga, allow_actions: bool, local: bool) -> Markup {
    html! {
        @for p in &s.problems {
            @match p {
                Problem::Consumer { consumer, detail_type, version, attempts, error, stuck } => {
                    div.banner.Failed id={ "problem-" (consumer) "-" (version) } {
                        @match stuck {
                            Stuck::DeadLettered { since } => {
                                strong { (consumer) " could not take " (detail_type) ": dead-lettered" }
                                " — the last attempt its queue allows failed at " (shell::clock(Some(*since))) " UTC, after " (attempts)
                                " attempt(s). The message goes to the DLQ (once its visibility timeout passes), where nothing retries it until an operator acts."
                            }
                            Stuck::Retrying { last_attempt, max } => {
                                strong { (consumer) " is retrying " (detail_type) }
                                ": attempt " (attempts) " failed at " (shell::clock(Some(*last_attempt)))
                                " UTC. Its queue tries again after a growing delay; a failure on receive " (max) " sends it to the DLQ."
                            }
                        }
                        @if let Some(e) = error { p.error { "Last error: " code { (e) } } }
                        @if allow_actions { p.actions {
                            @if matches!(stuck, Stuck::DeadLettered { .. }) {
                                a.action href={ "/console/queues/" (consumer) "/redrive" } { "Redrive the " (consumer) " DLQ…" } " "
                            }
                            a.action href={ "/console/orders/" (s.order.id) "/replay?version=" (version) "&consumer=" (consumer) } {
                                "Replay " (detail_type) " to " (consumer) "…" }
                        } }
                    }
                }
                Problem::PaymentInDoubt { payment_key, status, since, next_ask } => {
                    div.banner.Failed #problem-payment {
                        strong { "Payment in doubt: " (status) }
                        " since " (shell::clock(Some(*since))) " UTC — the PG's answer to " code { (payment_key) }
                        " is not known (a timeout, a lost response or an error). The reconciler asks the PG from "
                        (shell::clock(Some(*next_ask))) " UTC on, every run, and settles it as the PG says; the order is never expired blindly."
                        @if allow_actions { p.actions {
                            a.action #ask-pg href={ "/console/orders/" (s.order.id) "/ask-pg" } { "Ask the PG now…" }
                        } }
                        @if !local { p.hint { "On a deployed stack the stack's reconcile-payments function asks, invoked from here: this console holds no PG secret." } }
                    }
                }
            }
        }
    }
}

/// What happens next to an order that is waiting, and when.
fn next(s: &OrderSaga) -> Markup {
    let o = &s.order;
    html! {
        @match o.status {
            shop_domain::OrderStatus::PendingPayment => {
                p.next #next { "Payable until " strong { (o.expires_at.to_rfc3339()) } "; unpaid by then, expire-orders ends it and gives its stock, coupon and points back." }
            }
            shop_domain::OrderStatus::AwaitingDeposit => {
                p.next #next { "Waiting for the deposit"
                    @if let Some(due) = o.deposit_due_at { ", due " strong { (due.to_rfc3339()) } }
                    @if let Some(at) = s.payment.as_ref().and_then(|p| p.check_at) { "; the reconciler next asks the PG about the account at " (at.to_rfc3339()) }
                    ". Past the due date the order expires and the account is closed at the PG." }
            }
            shop_domain::OrderStatus::Confirming
            | shop_domain::OrderStatus::Paid
            | shop_domain::OrderStatus::PartiallyRefunded
            | shop_domain::OrderStatus::Cancelled
            | shop_domain::OrderStatus::Expired
            | shop_domain::OrderStatus::RefundPending
            | shop_domain::OrderStatus::Refunded => {}
        }
        @if let Some((key, code, message)) = &s.declined {
            p.Failed #declined { "The PG declined the last payment attempt " code { (key) } ": " code { (code) } " " (message)
                " — the shopper may pay again until the order expires." }
        }
    }
}

fn live_part(s: &OrderSaga, allow_actions: bool, local: bool) -> Markup {
    let o = &s.order;
    let m = &s.money;
    html! {
        (problems(s, allow_actions, local))
        (next(s))
        p { "Status " strong #status { (o.status.as_str()) } " · version " (o.version) " · user " code { (o.user_id) }
            @if let Some(c) = &o.coupon_id { " · coupon " code { (c) } }
            @if let Some(k) = &o.payment_key { " · payment " code { (k) } } }
        div.grid {
            section {
                h2 { "Saga" }
                table.lanes #steps {
                    tr { th { "time (UTC)" } th { "lane" } th { "step" } th { "state" } th { "detail" } }
                    @for step in &s.steps { tr class=(format!("{:?}", step.state)) {
                        td.mono { (shell::clock(step.at)) }
                        td.lane { (format!("{:?}", step.lane)) }
                        td { (step.actor) }
                        td class=(format!("{:?}", step.state)) { (format!("{:?}", step.state)) }
                        td { (step.text) }
                    } }
                }
                @if !s.simulated { p.hint { "The PG and data-platform lanes come from the simulators of the local stack." } }
            }
            section #money {
                h2 { "Money" }
                table {
                    tr { td { "subtotal" } td.num { (m.subtotal) } }
                    tr { td { "discount" } td.num { (m.discount) } }
                    tr { td { "points used" } td.num { (m.points_used) } }
                    tr { td { "amount due" } td.num { strong { (m.amount_due) } } }
                    tr { td { "points spent (ledger)" } td.num #points-spent { (m.points_spent) } }
                    tr { td { "points refunded (ledger)" } td.num #points-refunded { (m.points_refunded) } }
                    tr { td { "captured at the PG" } td.num #captured { (m.captured) } }
                    tr { td { "cancelled at the PG" } td.num #cancelled { (m.cancelled) } }
                }
                (refunds(o))
                (balance(s))
            }
        }
    }
}

/// The order's numbered refunds: what each gives back, and how it ended.
fn refunds(o: &shop_domain::Order) -> Markup {
    html! {
        @if !o.refunds.is_empty() {
            h3 { "Refunds" }
            table #refunds {
                tr { th { "#" } th { "asked (UTC)" } th { "status" } th.num { "cash" } th.num { "points" } th { "what" } }
                @for r in &o.refunds { tr class=(r.status.as_str()) id={ "refund-" (r.number) } {
                    td { (r.number) }
                    td.mono { (shell::clock(Some(r.requested_at.millis()))) }
                    td class=(match r.status {
                        shop_domain::order::RefundStatus::Done => "Done",
                        shop_domain::order::RefundStatus::Requested => "Pending",
                        shop_domain::order::RefundStatus::Failed => "Failed",
                    }) { (r.status.as_str()) }
                    td.num { (r.cash.won()) }
                    td.num { (r.points.won()) }
                    td {
                        @if r.rest { "the rest" } @else if r.lines.is_empty() { "an amount" }
                        @for l in &r.lines { " " code { (l.product_id) } " ×" (l.quantity.get()) }
                        @if !r.discount_withdrawn.is_zero() { " (coupon discount " (r.discount_withdrawn.won()) " withdrawn)" }
                        @if r.to_account { " — by bank transfer to the shopper's refund account (kept sealed until the PG answered)" }
                        @if let Some(f) = &r.failure { " — " span.error { (f) } }
                    }
                } }
            }
            p.hint { "Still held: " (o.held_cash().won()) " in cash, " (o.held_points().won()) " in points." }
        }
    }
}

/// Whether the money agrees with where the order ended: a paid order kept
/// what it captured and the points it spent; an order that ended otherwise
/// gave every won and point back.
fn balance(s: &OrderSaga) -> Markup {
    use shop_domain::OrderStatus as S;
    let m = &s.money;
    let o = &s.order;
    let (want_captured, want_points) = match o.status {
        // Paid, perhaps partly refunded: it keeps what it still holds (paid
        // with points, the amount due came out of the balance too).
        S::Paid | S::PartiallyRefunded if !o.refund_in_flight() => {
            (i128::from(o.held_cash().won()), i128::from(o.held_points().won()))
        }
        S::Refunded | S::Expired | S::Cancelled => (0, 0),
        // Still moving: nothing to check yet.
        S::Paid | S::PartiallyRefunded | S::PendingPayment | S::Confirming | S::AwaitingDeposit | S::RefundPending => {
            return html! { p.hint #balance { "The saga is still moving." } };
        }
    };
    let captured_ok = !s.simulated || m.net_captured() == want_captured;
    let points_ok = m.net_points() == want_points;
    html! {
        @if captured_ok && points_ok {
            p.balanced #balance { "Balanced: captured − cancelled = " (m.net_captured()) ", points spent − refunded = " (m.net_points()) "." }
        } @else {
            p.unbalanced #balance { "Unbalanced: captured − cancelled = " (m.net_captured()) " (want " (want_captured) "), points spent − refunded = " (m.net_points()) " (want " (want_points) ")." }
        }
    }
}
