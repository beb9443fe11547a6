//! Orders: find one (by order id, payment key or user), and the lists of
//! what is stuck. Every list is one bounded index read — payments in doubt,
//! deposits past due, events waiting for the publisher — never a scan, so
//! the page costs the same with 100,000 orders as with ten.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use shop_domain::{OrderId, PaymentKey, UserId};

use super::shell;
use crate::console::ConsoleState;

/// Rows per list.
const LIST: usize = 20;
/// An event waiting longer than this for the publisher is stuck.
const PENDING_FOR_SECS: i64 = 60;

#[derive(serde::Deserialize, Default)]
pub struct Search {
    #[serde(default)]
    q: String,
}

pub async fn index(State(state): State<Arc<ConsoleState>>, Query(search): Query<Search>) -> Response {
    match render(&state, search.q.trim()).await {
        Ok(r) => r,
        Err(e) => shell::page("Orders", html! { p.Failed { "Could not read the store: " (format!("{e:#}")) } })
            .into_response(),
    }
}

async fn render(state: &ConsoleState, q: &str) -> anyhow::Result<Response> {
    let app = &state.app;
    let mut found: Option<Markup> = None;
    if !q.is_empty() {
        if let Ok(id) = OrderId::parse(q)
            && app.store.get_order(&id).await?.is_some()
        {
            return Ok(Redirect::to(&format!("/console/orders/{id}")).into_response());
        }
        if let Ok(key) = PaymentKey::parse(q)
            && let Some(p) = app.store.get_payment(&key).await?
        {
            return Ok(Redirect::to(&format!("/console/orders/{}", p.order_id)).into_response());
        }
        let orders = match UserId::parse(q) {
            Ok(user) => app.store.orders_page(&user, None, LIST, None).await?.0,
            Err(_) => Vec::new(),
        };
        found = Some(html! {
            h2 { "Orders of user " code { (q) } }
            @if orders.is_empty() { p.hint { "No order, payment or user " code { (q) } "." } }
            @else { (order_table(&orders)) }
        });
    }
    let now = app.clock.now();
    let in_doubt = app.store.payments_in_doubt(now, LIST as i32).await?;
    let overdue = app.store.deposits_due(now, LIST as i32).await?;
    let waiting: Vec<_> = app
        .store
        .pending_events(LIST as i32)
        .await?
        .into_iter()
        .filter(|e| e.occurred_at.millis() < now.millis() - PENDING_FOR_SECS * 1000)
        .take(LIST)
        .collect();
    Ok(shell::page(
        "Orders",
        html! {
            form.search method="get" action="/console/orders" {
                input name="q" value=(q) placeholder="order id, payment key or user" size="48" autofocus;
                button type="submit" { "Find" }
            }
            @if let Some(f) = found { (f) }
            h2 { "Payments in doubt (CONFIRMING, UNKNOWN)" }
            @if in_doubt.is_empty() { p.hint { "None." } } @else {
                table { tr { th { "order" } th { "payment key" } th { "status" } th.num { "amount" } th { "since" } }
                    @for p in &in_doubt { tr {
                        td { a href={ "/console/orders/" (p.order_id) } { code { (p.order_id) } } }
                        td { code { (p.payment_key) } } td.Pending { (format!("{:?}", p.status)) }
                        td.num { (p.amount) } td { (p.updated_at.to_rfc3339()) }
                    } }
                }
            }
            h2 { "Deposits past due (AWAITING_DEPOSIT)" }
            @if overdue.is_empty() { p.hint { "None." } } @else {
                table { tr { th { "order" } th { "payment key" } th.num { "amount" } } @for p in &overdue { tr {
                    td { a href={ "/console/orders/" (p.order_id) } { code { (p.order_id) } } }
                    td { code { (p.payment_key) } } td.num { (p.amount) }
                } } }
            }
            h2 { "Events waiting for the publisher over a minute" }
            @if waiting.is_empty() { p.hint { "None." } } @else {
                table { tr { th { "event" } th { "type" } th { "written" } } @for e in &waiting { tr {
                    td { code { (e.event_id) } } td { (e.detail_type) } td.Pending { (e.occurred_at.to_rfc3339()) }
                } } }
            }
        },
    )
    .into_response())
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
