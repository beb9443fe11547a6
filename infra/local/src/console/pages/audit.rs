//! Audit: every action an operator took by hand — from this console or
//! from `shop` commands, locally or against a deployed stack — newest
//! first, 50 a page: who, from where, what, on which orders and messages,
//! why, and how it ended. One query per page however long the trail
//! (`shop_store::audit`).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use shop_domain::audit::AuditStatus;
use shop_store::audit::{AuditCursor, AuditEntry};

use super::shell;
use crate::console::ConsoleState;

/// Entries per page.
const PAGE: usize = 50;
/// Targets listed per entry (the rest counted).
const SHOWN_TARGETS: usize = 10;

#[derive(serde::Deserialize)]
pub struct Before {
    before: Option<String>,
}

pub async fn page(State(state): State<Arc<ConsoleState>>, Query(q): Query<Before>) -> Response {
    let cursor = match q.before.as_deref().map(AuditCursor::parse) {
        None => None,
        Some(Some(c)) => Some(c),
        Some(None) => return shell::bad_request(&state, "That is not a position in the audit trail."),
    };
    match state.app.store.audit().page(PAGE, cursor.as_ref()).await {
        Ok((entries, next)) => shell::page(&state, "Audit", render(&entries, next.as_ref())).into_response(),
        Err(e) => shell::error(&state, &anyhow::Error::new(e)),
    }
}

fn render(entries: &[AuditEntry], next: Option<&AuditCursor>) -> Markup {
    html! {
        p.hint { "Every action taken by hand, newest first: from the console (the signed-in operator) and from "
            code { "shop" } " commands (" code { "--operator" } " on a data dir, the AWS caller identity with "
            code { "--stack" } "). Append-only; also " code { "shop audit" } "." }
        @if entries.is_empty() { p #no-audit { "Nothing has been done by hand yet." } }
        @else {
            table #audit {
                tr { th { "when (UTC)" } th { "operator" } th { "from" } th { "action" } th { "on" } th { "reason" } th { "outcome" } }
                @for e in entries { (row(e)) }
            }
        }
        @if let Some(n) = next { p { a #older href={ "/console/audit?before=" (n.to_param()) } { "Older →" } } }
    }
}

fn row(e: &AuditEntry) -> Markup {
    let a = &e.action;
    let status_class = match e.status {
        AuditStatus::Succeeded => "Done",
        AuditStatus::Failed => "Failed",
        AuditStatus::Started => "Pending",
    };
    html! {
        tr id={ "audit-" (a.id) } {
            td { (a.at.to_rfc3339().get(..19).unwrap_or_default().replace('T', " ")) }
            td.operator { (a.operator) }
            td { (a.channel.as_str()) " · " (a.stack) }
            td { code { (a.action) } }
            td.targets {
                @for t in a.targets.iter().take(SHOWN_TARGETS) { (target(t)) " " }
                @if a.target_count > SHOWN_TARGETS { span.hint { "and " (a.target_count - SHOWN_TARGETS) " more" } }
            }
            td.reason { (a.reason) }
            td class=(status_class) {
                (e.status.as_str())
                @if let Some(o) = &e.outcome { ": " (o) }
            }
        }
    }
}

/// A target, linked when it is an order.
fn target(t: &str) -> Markup {
    match t.strip_prefix("order:") {
        // A bulk action's target names the order first: `order:<id>#<version>@<consumer>`.
        Some(rest) => {
            let id = rest.split(['#', '/']).next().unwrap_or(rest);
            html! { a href={ "/console/orders/" (id) } { code { (t.strip_prefix("order:").unwrap_or(t)) } } }
        }
        None => html! { code { (t) } },
    }
}
