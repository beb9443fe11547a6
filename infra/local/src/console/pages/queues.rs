//! Queues: each consumer's queue and DLQ — how many messages wait (the
//! oldest 20 are read, one bounded query each), the oldest one's age, and
//! the DLQ's messages linked to their orders — with the redrive action and
//! replaying one message's event to its consumer, each confirmed on its
//! own page before anything moves.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::Value;

use super::shell;
use crate::cli::ops::{self, CONSUMERS};
use crate::console::ConsoleState;
use crate::emulate::queue::{Message, Queues, dlq_of};

const PEEK: usize = 20;

pub async fn page(State(state): State<Arc<ConsoleState>>) -> Response {
    match render(&state).await {
        Ok(m) => shell::page("Queues", m).into_response(),
        Err(e) => shell::error(&e),
    }
}

async fn render(state: &ConsoleState) -> anyhow::Result<Markup> {
    let queues = Queues(&state.app.store);
    // Queue messages are dated by the emulation's clock (the system's),
    // not the app's (a test's may be manual).
    let now = shop_app::clock::Clock::now(&shop_app::clock::SystemClock).millis();
    let mut rows = Vec::new();
    for c in CONSUMERS {
        let (live, live_more) = queues.peek(c, PEEK).await?;
        let (dead, dead_more) = queues.peek(&dlq_of(c), PEEK).await?;
        rows.push((c, live, live_more, dead, dead_more));
    }
    let count = |v: &[Message], more: bool| if more { format!("{PEEK}+") } else { v.len().to_string() };
    let age = |v: &[Message]| v.first().map(|m| format!("{:.1} s", (now - m.sent_at.millis()) as f64 / 1000.0));
    Ok(html! {
        table #queues {
            tr { th { "consumer" } th.num { "queue" } th { "oldest" } th.num { "DLQ" } th { "oldest in DLQ" } th { "" } }
            @for (c, live, live_more, dead, dead_more) in &rows { tr id={ "queue-" (c) } {
                td { (c) }
                td.num { (count(live, *live_more)) }
                td { (age(live).unwrap_or_else(|| "—".into())) }
                td.num class=(if dead.is_empty() { "" } else { "Failed" }) { (count(dead, *dead_more)) }
                td { (age(dead).unwrap_or_else(|| "—".into())) }
                td { @if !dead.is_empty() { a.action href={ "/console/queues/" (c) "/redrive" } { "Redrive…" } } }
            } }
        }
        @for (c, _, _, dead, _) in &rows { @if !dead.is_empty() {
            h2 { "DLQ of " (c) }
            table { tr { th { "order" } th { "event" } th { "type" } th.num { "receives" } th { "last error" } th { "" } }
                @for m in dead { (dlq_row(c, m)) } }
        } }
    })
}

fn dlq_row(consumer: &str, m: &Message) -> Markup {
    let body: Value = serde_json::from_str(&m.body).unwrap_or(Value::Null);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let order = text(&body["detail"]["orderId"]);
    let version = body["detail"]["aggregateVersion"].as_u64();
    html! { tr {
        td { a href={ "/console/orders/" (order) } { code { (order) } } }
        td { code { (text(&body["detail"]["eventId"])) } }
        td { (text(&body["detail-type"])) }
        td.num { (m.receive_count) }
        td.Failed { (m.last_error.as_deref().unwrap_or("")) }
        td { @if let Some(v) = version {
            a.action href={ "/console/orders/" (order) "/replay?version=" (v) "&consumer=" (consumer) } { "Replay this one…" }
        } }
    } }
}

/// The confirmation step: what would move, and the button that moves it.
pub async fn confirm_redrive(State(state): State<Arc<ConsoleState>>, Path(consumer): Path<String>) -> Response {
    if !CONSUMERS.contains(&consumer.as_str()) {
        return (StatusCode::NOT_FOUND, shell::page("No such consumer", html! {})).into_response();
    }
    match Queues(&state.app.store).peek(&dlq_of(&consumer), PEEK).await {
        Ok((dead, more)) => shell::page(
            &format!("Redrive the DLQ of {consumer}?"),
            html! {
                p { (if more { format!("{PEEK} or more") } else { dead.len().to_string() }) " message(s) go back to the "
                    (consumer) " queue with a fresh receive count; the consumer dedupes what it already did." }
                form method="post" action={ "/console/queues/" (consumer) "/redrive" } {
                    button #confirm type="submit" { "Redrive " (consumer) }
                    " " a href="/console/queues" { "Cancel" }
                }
            },
        )
        .into_response(),
        Err(e) => shell::error(&anyhow::Error::new(e)),
    }
}

pub async fn redrive(State(state): State<Arc<ConsoleState>>, Path(consumer): Path<String>) -> Response {
    match ops::dlq_redrive(&state.app, &consumer).await {
        Ok(moved) => {
            tracing::info!(consumer, moved, "redriven from the console");
            Redirect::to(&format!("/console/queues?redriven={consumer}&moved={moved}")).into_response()
        }
        Err(e) => shell::error(&e),
    }
}
