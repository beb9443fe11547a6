//! Orders: find one (by order id, payment key, correlation id or user), the
//! orders that recently entered a status, and the lists of what is stuck.
//! Every read is bounded — one index query per shard for each stuck list
//! (payments in doubt, deposits past due, consumers that failed, events
//! waiting for the publisher), a capped read of the event log for a
//! status or a correlation id — never a scan, so the page costs the same with 100,000 orders
//! as with ten.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use shop_domain::{OrderId, OrderStatus, PaymentKey, UserId};
use shop_store::outbox::EventField;

use super::shell;
use crate::console::ConsoleState;

/// Rows per list.
const LIST: usize = 20;
/// An event waiting longer than this for the publisher is stuck.
const PENDING_FOR_SECS: i64 = 60;

/// Days of the event log a search by status or correlation id looks back,
/// and the index items it may read (a bounded read: the page says when
/// the cap cut it short).
const SEARCH_DAYS: i64 = 7;
const SEARCH_READ_CAP: i32 = 2_000;

#[derive(serde::Deserialize, Default)]
pub struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
}

pub async fn index(State(state): State<Arc<ConsoleState>>, Query(search): Query<Search>) -> Response {
    match render(&state, search.q.trim(), search.status.trim()).await {
        Ok(r) => r,
        Err(e) => shell::page(&state, "Orders", html! { p.Failed { "Could not read the store: " (format!("{e:#}")) } })
            .into_response(),
    }
}

async fn render(state: &ConsoleState, q: &str, status: &str) -> anyhow::Result<Response> {
    let app = &state.app;
    let mut found: Option<Markup> = None;
    let mut by_status: Option<Markup> = None;
    if !q.is_empty() {
        if let Ok(id) = OrderId::parse(q)
            && app.store.orders().get(&id).await?.is_some()
        {
            return Ok(Redirect::to(&format!("/console/orders/{id}")).into_response());
        }
        if let Ok(key) = PaymentKey::parse(q)
            && let Some(p) = app.store.payments().get(&key).await?
        {
            return Ok(Redirect::to(&format!("/console/orders/{}", p.order_id)).into_response());
        }
        let orders = match UserId::parse(q) {
            Ok(user) => app.store.orders().page(&user, None, LIST, None).await?.0,
            Err(_) => Vec::new(),
        };
        // A user's id is not also searched as a correlation id: a search
        // that finds nothing reads its whole window (the Find page can).
        let (correlated, correlation_cut) = match orders.is_empty() {
            true => {
                app.store
                    .outbox()
                    .search(EventField::CorrelationId, q, app.clock.now(), SEARCH_DAYS, LIST, SEARCH_READ_CAP)
                    .await?
            }
            false => (Vec::new(), false),
        };
        found = Some(html! {
            @if !correlated.is_empty() {
                h2 { "Events with correlation id " code { (q) } }
                (searched(correlation_cut))
                (event_table(&correlated))
            }
            @if !orders.is_empty() {
                h2 { "Orders of user " code { (q) } ", newest first" }
                (order_table(&orders))
                p { a #user-orders href={ "/console/orders/find?user=" (q) } { "All of this user's orders, page by page, with filters →" } }
            }
            @if correlated.is_empty() && orders.is_empty() {
                p.hint { "No order, payment key, correlation id or user " code { (q) } "." }
            }
        });
    }
    if let Some(wanted) = OrderStatus::parse(status) {
        let now = app.clock.now();
        let (entered, cut) =
            app.store.outbox().entering(wanted.as_str(), now, SEARCH_DAYS, LIST, SEARCH_READ_CAP).await?;
        let mut rows = Vec::new();
        for e in &entered {
            let Some(id) = e.pk.strip_prefix("ORDER#").and_then(|id| OrderId::parse(id).ok()) else { continue };
            let current = app.store.orders().get(&id).await?.map(|o| o.status);
            rows.push((id, e.occurred_at, current));
        }
        by_status = Some(html! {
            h2 { "Orders that entered " (wanted.as_str()) ", newest first" }
            (searched(cut))
            @if rows.is_empty() { p.hint { "None." } } @else {
                table #by-status { tr { th { "order" } th { "entered" } th { "status now" } }
                    @for (id, at, current) in &rows { tr {
                        td { a href={ "/console/orders/" (id) } { code { (id) } } }
                        td { (at.to_rfc3339()) }
                        td class=(if *current == Some(wanted) { "" } else { "Skipped" }) {
                            (current.map(|s| s.as_str()).unwrap_or("gone")) }
                    } }
                }
            }
        });
    }
    let now = app.clock.now();
    let in_doubt = app.store.payments().in_doubt(now, LIST as i32).await?;
    // Past the due date, not merely due for a check (which every waiting account is, again and again).
    let past_due = crate::find::page(
        app,
        &crate::find::Filter { stuck: Some(crate::find::Stuck::PastDue), ..Default::default() },
        None,
    )
    .await?
    .rows;
    let failing = app.store.saga().failures(LIST as i32).await?;
    let dead = app.store.saga().dead_letters(LIST as i32).await?;
    let waiting: Vec<_> = app
        .store
        .outbox()
        .pending(LIST as i32)
        .await?
        .into_iter()
        .filter(|e| e.occurred_at.millis() < now.millis() - PENDING_FOR_SECS * 1000)
        .take(LIST)
        .collect();
    Ok(shell::page(state,
        "Orders",
        html! {
            form.search method="get" action="/console/orders" {
                input name="q" value=(q) placeholder="order id, payment key, correlation id or user" size="48" autofocus;
                button type="submit" { "Find" }
            }
            form.search method="get" action="/console/orders" {
                select name="status" {
                    option value="" { "orders by status…" }
                    @for s in OrderStatus::ALL { option value=(s.as_str()) selected[s.as_str() == status] { (s.as_str()) } }
                }
                button type="submit" { "List" }
            }
            p { a #find-link href="/console/orders/find" { "Find with filters — combine them, page, save a view, export, act on many →" } }
            @if let Some(f) = found { (f) }
            @if let Some(s) = by_status { (s) }
            h2 #in-doubt { "Payments in doubt (CONFIRMING, UNKNOWN)" }
            @if in_doubt.is_empty() { p.hint { "None." } } @else {
                table { tr { th { "order" } th { "payment key" } th { "status" } th.num { "amount" } th { "since" } }
                    @for p in &in_doubt { tr {
                        td { a href={ "/console/orders/" (p.order_id) } { code { (p.order_id) } } }
                        td { code { (p.payment_key) } } td.Pending { (format!("{:?}", p.status)) }
                        td.num { (p.amount) } td { (p.updated_at.to_rfc3339()) }
                    } }
                }
            }
            h2 #past-due { "Deposits past their due date, not yet expired (AWAITING_DEPOSIT)" }
            @if past_due.is_empty() { p.hint { "None." } } @else {
                table { tr { th { "order" } th { "payment key" } th.num { "amount" } th { "due" } } @for r in past_due.iter().take(LIST) { tr {
                    td { a href={ "/console/orders/" (r.order.id) } { code { (r.order.id) } } }
                    td { code { (r.order.payment_key.as_ref().map(|k| k.to_string()).unwrap_or_default()) } }
                    td.num { (r.order.amount_due) } td.Failed { (r.order.deposit_due().to_rfc3339()) }
                } } }
            }
            h2 { "Dead-lettered: in a DLQ, waiting for an operator " a.hint href="/console/orders/find?stuck=dead-lettered" { "(all, act on many →)" } }
            (failure_table("dead-lettered", &dead, true))
            h2 { "Retrying: consumers that failed and will be tried again " a.hint href="/console/orders/find?stuck=retrying" { "(all →)" } }
            (failure_table("failing", &failing, false))
            h2 #pending { "Events waiting for the publisher over a minute" }
            @if waiting.is_empty() { p.hint { "None." } } @else {
                table { tr { th { "event" } th { "type" } th { "written" } } @for e in &waiting { tr {
                    td { code { (e.event_id) } } td { (e.detail_type) } td.Pending { (e.occurred_at.to_rfc3339()) }
                } } }
            }
        },
    )
    .into_response())
}

/// Consumers' failures: still retrying, or in a DLQ since `deadLetteredAt`.
fn failure_table(id: &str, failures: &[shop_store::saga::Failure], dead: bool) -> Markup {
    html! {
        @if failures.is_empty() { p.hint id=(id) { "None." } } @else {
            table id=(id) {
                tr { th { "order" } th { "consumer" } th { "event" } th.num { "attempts" } th { "last error" }
                     th { (if dead { "in the DLQ since" } else { "last attempt" }) } }
                @for f in failures.iter().take(LIST) { tr {
                    td { a href={ "/console/orders/" (f.order_id) } { code { (f.order_id) } } }
                    td { (f.outcome.consumer) } td { (f.outcome.detail_type) }
                    td.num { (f.outcome.attempts) }
                    td.Failed { (f.outcome.detail.as_deref().unwrap_or("")) }
                    td { (f.outcome.dead_lettered_at.unwrap_or(f.outcome.at).to_rfc3339()) }
                } }
            }
        }
    }
}

fn order_table(orders: &[shop_domain::Order]) -> Markup {
    html! {
        table {
            tr { th { "order" } th { "status" } th.num { "amount due" } th { "placed" } }
            @for o in orders { tr {
                td { a href={ "/console/orders/" (o.id) } { code { (o.id) } } }
                td { (o.status.as_str()) } td.num { (o.amount_due) } td { (o.created_at.to_rfc3339()) }
            } }
        }
    }
}

fn event_table(events: &[shop_store::outbox::StoredEvent]) -> Markup {
    html! {
        table #correlated {
            tr { th { "order" } th { "event" } th { "type" } th { "written" } }
            @for e in events { tr {
                @let order = e.pk.strip_prefix("ORDER#").unwrap_or(&e.pk);
                td { a href={ "/console/orders/" (order) } { code { (order) } } }
                td { code { (e.event_id) } } td { (e.detail_type) } td { (e.occurred_at.to_rfc3339()) }
            } }
        }
    }
}

fn searched(cut: bool) -> Markup {
    html! {
        p.hint { "From the event log of the last " (SEARCH_DAYS) " days, newest first"
            @if cut { ", cut short after reading " (SEARCH_READ_CAP) " events" } "." }
    }
}
