//! Queues: each consumer's queue and DLQ — how many messages wait (the
//! oldest 20 are read, one bounded query each), the oldest one's age, and
//! the DLQ's messages linked to their orders — with the redrive action and
//! replaying one message's event to its consumer, each confirmed on its
//! own page before anything moves.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::shell;
use crate::console::auth::SignedIn;
use crate::console::queues::{self, PEEK};
use crate::console::{ConsoleState, acting};
use crate::emulate::queue::dlq_of;
use crate::ops::{CONSUMERS, DlqEntry};

pub async fn page(State(state): State<Arc<ConsoleState>>) -> Response {
    match render(&state).await {
        Ok(m) => shell::page(&state, "Queues", m).into_response(),
        Err(e) => shell::error(&state, &e),
    }
}

fn age(ms: Option<i64>) -> String {
    ms.map(|ms| format!("{:.1} s", ms as f64 / 1000.0)).unwrap_or_else(|| "—".into())
}

async fn render(state: &ConsoleState) -> anyhow::Result<Markup> {
    let rows = queues::states(state).await?;
    Ok(html! {
        table #queues {
            tr { th { "consumer" } th.num { "queue" } th { "oldest" } th.num { "DLQ" } th { "oldest in DLQ" } th { "" } }
            @for q in &rows { tr id={ "queue-" (q.consumer) } {
                td { (q.consumer) }
                td.num { (q.depth) }
                td { (age(q.oldest_ms)) }
                @if q.dlq_depth.messages > 0 { td.num.Failed { (q.dlq_depth) } } @else { td.num { (q.dlq_depth) } }
                td { (age(q.dlq_oldest_ms)) }
                td { @if q.dlq_depth.messages > 0 && state.allow_actions {
                    a.action href={ "/console/queues/" (q.consumer) "/redrive" } { "Redrive…" }
                } }
            } }
        }
        @if state.stack.is_some() { p.hint { "SQS's approximate counts, in flight included; DLQs peeked (the oldest "
            (PEEK) ", received with a visibility timeout of 0: nothing is consumed)." } }
        @for q in &rows { @if !q.dead.is_empty() {
            h2 { "DLQ of " (q.consumer) }
            table { tr { th { "order" } th { "event" } th { "type" } th.num { "receives" } th { "last error" } th { "" } }
                @for m in &q.dead { (dlq_row(state, q.consumer, m)) } }
        } }
    })
}

fn dlq_row(state: &ConsoleState, consumer: &str, m: &DlqEntry) -> Markup {
    let version = m.event_id.rsplit_once('#').and_then(|(_, v)| v.parse::<u64>().ok());
    html! { tr {
        td { a href={ "/console/orders/" (m.order_id) } { code { (m.order_id) } } }
        td { code { (m.event_id) } }
        td { (m.detail_type) }
        td.num { (m.receives) }
        td.Failed { (m.last_error.as_deref().unwrap_or(if state.stack.is_some() { "(in the consumer's log)" } else { "" })) }
        td { @if let (Some(v), true) = (version, state.allow_actions) {
            a.action href={ "/console/orders/" (m.order_id) "/replay?version=" (v) "&consumer=" (consumer) } { "Replay this one…" }
        } }
    } }
}

/// The confirmation step: what would move, and the button that moves it.
pub async fn confirm_redrive(State(state): State<Arc<ConsoleState>>, Path(consumer): Path<String>) -> Response {
    if !CONSUMERS.contains(&consumer.as_str()) {
        return (StatusCode::NOT_FOUND, shell::page(&state, "No such consumer", html! {})).into_response();
    }
    let depth = match queues::states(&state).await {
        Ok(rows) => rows.into_iter().find(|q| q.consumer == consumer).map(|q| q.dlq_depth),
        Err(e) => return shell::error(&state, &e),
    };
    let count = depth.map(|d| d.to_string()).unwrap_or_else(|| "0".into());
    shell::page(
        &state,
        &format!("Redrive the DLQ of {consumer}?"),
        html! {
            p { (count) " message(s) go back to the " (consumer)
                " queue with a fresh receive count; the consumer dedupes what it already did." }
            form method="post" action={ "/console/queues/" (consumer) "/redrive" } {
                (crate::console::auth::csrf_field())
                (acting::reason_field())
                button #confirm type="submit" { "Redrive " (consumer) }
                " " a href="/console/queues" { "Cancel" }
            }
        },
    )
    .into_response()
}

pub async fn redrive(
    State(state): State<Arc<ConsoleState>>,
    Extension(who): Extension<SignedIn>,
    Path(consumer): Path<String>,
    Form(f): Form<acting::ReasonForm>,
) -> Response {
    if !CONSUMERS.contains(&consumer.as_str()) {
        return (StatusCode::NOT_FOUND, shell::page(&state, "No such consumer", html! {})).into_response();
    }
    // The messages the DLQ shows now (the oldest, peeked): the orders the redrive is about.
    let dead = match queues::states(&state).await {
        Ok(rows) => rows.into_iter().find(|q| q.consumer == consumer).map(|q| q.dead).unwrap_or_default(),
        Err(e) => return shell::error(&state, &e),
    };
    let targets = std::iter::once(format!("queue:{}", dlq_of(&consumer)))
        .chain(dead.iter().filter(|m| !m.order_id.is_empty()).map(|m| format!("order:{}", m.order_id)))
        .collect();
    let work = || queues::redrive(&state, &consumer);
    match acting::act(&state, &who, &f.reason, "dlq.redrive", targets, work, |moved| {
        format!("{moved} message(s) moved back to {consumer}")
    })
    .await
    {
        Ok(_) => Redirect::to("/console/audit").into_response(),
        Err(response) => response,
    }
}
