//! The alert strip on every page: what needs an operator now — messages in
//! the DLQs, outcomes dead-lettered or retrying, payments in doubt, the
//! oldest event waiting for the publisher — each linking to where it is
//! listed. Loaded by the page (htmx, every 10 s), so no page waits for it;
//! every figure is a bounded read, counted up to [`CAP`] ("N+" past it).

use std::sync::Arc;

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use maud::{Markup, html};

use super::shell;
use crate::console::ConsoleState;

/// Items counted at most per figure (per shard of an index).
const CAP: i32 = 100;
/// An event waiting longer than this for the publisher is an alert.
const PENDING_ALERT_MS: i64 = 60_000;

pub async fn strip(State(state): State<Arc<ConsoleState>>) -> Response {
    match alerts(&state).await {
        Ok(m) => Html(m.into_string()).into_response(),
        Err(e) => shell::error(&state, &e),
    }
}

/// `n`, or `n+` when counting stopped at the cap.
fn counted(n: usize, capped: bool) -> String {
    if capped { format!("{n}+") } else { n.to_string() }
}

async fn alerts(state: &ConsoleState) -> anyhow::Result<Markup> {
    let app = &state.app;
    let now = app.clock.now();
    let depths = crate::console::queues::depths(state).await?;
    let (dlq, dlq_more) = depths
        .iter()
        .filter(|(name, _)| name.ends_with("-dlq"))
        .fold((0u64, false), |(n, more), (_, d)| (n + d.messages, more || d.more));
    let saga = app.store.saga();
    let dead = saga.dead_letters(CAP).await?.len();
    let retrying = saga.failures(CAP).await?.len();
    let in_doubt = app.store.payments().in_doubt(now, CAP).await?.len();
    let past_due_filter = crate::find::Filter { stuck: Some(crate::find::Stuck::PastDue), ..Default::default() };
    let past_due = crate::find::page(app, &past_due_filter, None).await?.rows.len();
    // The outbox's backlog is the local stream emulation's; a deployed
    // stack's is its stream's IteratorAge (CloudWatch).
    let oldest_ms = match state.stack {
        Some(_) => None,
        None => app
            .store
            .outbox()
            .pending_summary(shop_app::obs::stats::PENDING_CAP)
            .await?
            .2
            .map(|t| now.millis().saturating_sub(t.millis())),
    };
    let cap = usize::try_from(CAP).unwrap_or(usize::MAX);
    let items: Vec<(bool, String, &str)> = vec![
        (
            dlq > 0,
            format!("{} in the DLQs", counted(usize::try_from(dlq).unwrap_or(usize::MAX), dlq_more)),
            "/console/queues",
        ),
        (dead > 0, format!("{} dead-lettered", counted(dead, dead >= cap)), "/console/orders/find?stuck=dead-lettered"),
        (
            retrying > 0,
            format!("{} retrying", counted(retrying, retrying >= cap)),
            "/console/orders/find?stuck=retrying",
        ),
        (
            in_doubt > 0,
            format!("{} payment(s) in doubt", counted(in_doubt, in_doubt >= cap)),
            "/console/orders/find?stuck=in-doubt",
        ),
        (
            past_due > 0,
            format!("{} deposit(s) past due", counted(past_due, past_due >= crate::find::PAGE)),
            "/console/orders/find?stuck=past-due",
        ),
        (
            oldest_ms.is_some_and(|ms| ms > PENDING_ALERT_MS),
            format!("oldest unpublished event {}", super::overview::duration(oldest_ms)),
            "/console/orders#pending",
        ),
    ];
    let raised: Vec<_> = items.into_iter().filter(|(raised, _, _)| *raised).collect();
    Ok(html! {
        @if raised.is_empty() { span.ok #all-clear { "Nothing needs an operator." } }
        @for (_, text, href) in &raised { a.alert href=(href) { (text) } }
    })
}
