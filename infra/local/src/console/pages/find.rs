//! Find: the order finder ([`crate::find`]) as a page — filters combined
//! in one form, the result paged, where it was read from (an index, or a
//! capped window with its cap), saved views shared by the stack's
//! operators, the result exported as CSV or JSON, and the bulk actions
//! over it ([`super::bulk`]).

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Form, Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use shop_domain::OrderStatus;
use shop_store::views::{SaveError, View, ViewName};

use super::shell;
use crate::console::ConsoleState;
use crate::console::auth::SignedIn;
use crate::find::{self, Filter, Found, METHODS, Stuck, export, method_name};
use crate::ops::CONSUMERS;

/// Rows an export holds at most.
pub const EXPORT_MAX: usize = 1_000;

/// Parameters the finder's pages carry beside the filter.
const NOT_FILTERS: [&str; 2] = ["page", "format"];

/// What a finder's query string holds: the filter, and the other parameters.
pub struct Query {
    pub filter: Filter,
    /// The page cursor.
    pub page: Option<String>,
    /// An export's format.
    pub format: Option<String>,
}

/// The finder's query of a query string; a 400 page if the filter cannot be one.
#[expect(clippy::result_large_err, reason = "the early answer of a request, built at most once per request")]
pub fn parse(state: &ConsoleState, query: Option<&str>) -> Result<Query, Response> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|_| shell::bad_request(state, "That query string is not one."))?;
    let filter =
        Filter::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), &NOT_FILTERS, state.app.clock.now())
            .map_err(|e| shell::bad_request(state, &format!("Not found: {e}.")))?;
    let param = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    Ok(Query { filter, page: param("page"), format: param("format") })
}

/// The answer to a search that failed: a cursor this search never handed
/// out is the client's (400), the store's failure ours (500).
pub fn failed(state: &ConsoleState, e: find::FindError) -> Response {
    match e {
        find::FindError::Cursor(_) => shell::bad_request(state, "That is not a page of this search."),
        find::FindError::Store(e) => shell::error(state, &e),
    }
}

/// A link to the finder with `filter` (and a page).
pub fn link(filter: &Filter, page: Option<&str>) -> String {
    let mut q = filter.to_query();
    if let Some(p) = page {
        let p = serde_urlencoded::to_string([("page", p)]).unwrap_or_default();
        q = if q.is_empty() { p } else { format!("{q}&{p}") };
    }
    format!("/console/orders/find?{q}")
}

pub async fn page(State(state): State<Arc<ConsoleState>>, RawQuery(query): RawQuery) -> Response {
    let Query { filter, page: cursor, .. } = match parse(&state, query.as_deref()) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let found = match find::page(&state.app, &filter, cursor.as_deref()).await {
        Ok(f) => f,
        Err(e) => return failed(&state, e),
    };
    let views = match state.app.store.views().list().await {
        Ok(v) => v,
        Err(e) => return shell::error(&state, &anyhow::Error::new(e)),
    };
    shell::page(&state, "Find orders", render(&state, &filter, &found, &views)).into_response()
}

fn render(state: &ConsoleState, filter: &Filter, found: &Found, views: &[View]) -> Markup {
    let q = filter.to_query();
    html! {
        (form(filter))
        (saved(views, filter))
        p.hint #source {
            "Read from " (found.source.describe()) "; the other filters applied to each order as it is now. "
            "This page examined " (found.examined) " (at most " (find::EXAMINED) ")."
            @if found.capped { strong #capped { " This page's read of the event log stopped at its cap (" (find::WINDOW_READ_CAP) " entries): what it shows is complete down to where it stopped, and the next page goes on from there." } }
        }
        @if !found.source.indexed() { p.hint { "A capped window costs the same however long the history; the time range (7 days unless given) bounds how far back the pages go." } }
        p #exports {
            "Export (at most " (EXPORT_MAX) " rows): "
            a #export-csv href={ "/console/orders/find/export?format=csv&" (q) } { "CSV" } " · "
            a #export-json href={ "/console/orders/find/export?format=json&" (q) } { "JSON" }
            @if state.allow_actions {
                " · Act on all of them: "
                @for action in crate::bulk::Action::ALL {
                    a.action id={ "bulk-" (action.as_str()) } href={ "/console/orders/bulk/" (action.as_str()) "?" (q) } { (action.as_str()) "…" } " "
                }
            }
        }
        @if found.rows.is_empty() { p.hint #no-rows { "No order on this page." } } @else { (table(&found.rows)) }
        @if let Some(next) = &found.next { p { a #next-page href=(link(filter, Some(next))) { "Next page →" } } }
    }
}

fn form(f: &Filter) -> Markup {
    let opt_time = |t: Option<shop_domain::Timestamp>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    html! {
        form.search #filters method="get" action="/console/orders/find" {
            select name="status" {
                option value="" { "any status" }
                @for s in OrderStatus::ALL { option value=(s.as_str()) selected[f.status == Some(s)] { (s.as_str()) } }
            }
            select name="stuck" {
                option value="" { "stuck or not" }
                @for s in Stuck::ALL { option value=(s.as_str()) selected[f.stuck == Some(s)] { (s.as_str()) } }
            }
            select name="consumer" {
                option value="" { "any consumer" }
                @for c in CONSUMERS { option value=(c) selected[f.consumer == Some(c)] { (c) } }
            }
            select name="method" {
                option value="" { "any method" }
                @for m in METHODS { option value=(method_name(m)) selected[f.method == Some(m)] { (method_name(m)) } }
            }
            input name="from" value=(opt_time(f.from)) placeholder="placed from (RFC 3339 or -2h)" size="22";
            input name="to" value=(opt_time(f.to)) placeholder="placed to" size="22";
            input name="user" value=(f.user.as_ref().map(|u| u.as_str()).unwrap_or_default()) placeholder="user" size="14";
            input name="correlation" value=(f.correlation.as_deref().unwrap_or_default()) placeholder="correlation id" size="18";
            button type="submit" { "Find" }
        }
    }
}

fn saved(views: &[View], current: &Filter) -> Markup {
    html! {
        div #views {
            "Views: "
            a href="/console/orders/find?stuck=dead-lettered" { "dead-lettered" } " · "
            a href="/console/orders/find?stuck=retrying" { "retrying" } " · "
            a href="/console/orders/find?stuck=in-doubt" { "payments in doubt" } " · "
            a href="/console/orders/find?stuck=past-due" { "deposits past due" } " · "
            a href="/console/orders/find?status=AWAITING_DEPOSIT" { "awaiting deposit" }
            @for v in views {
                " · " a.saved href={ "/console/orders/find?" (v.query) } title={ "saved by " (v.saved_by) } { (v.name.as_str()) }
                form.inline method="post" action={ "/console/views/" (v.name.as_str()) "/delete" } {
                    (crate::console::auth::csrf_field())
                    button.link type="submit" title={ "delete the view " (v.name.as_str()) } { "×" }
                }
            }
            form.inline #save-view method="post" action="/console/views" {
                (crate::console::auth::csrf_field())
                input type="hidden" name="query" value=(current.to_query());
                input name="name" placeholder="save this view as…" size="20" maxlength=(ViewName::MAX_LEN) required;
                button type="submit" { "Save" }
            }
        }
    }
}

fn table(rows: &[find::Row]) -> Markup {
    html! {
        table #found {
            tr { th { "order" } th { "status" } th { "method" } th.num { "amount due" } th { "placed" }
                 th { "consumer" } th { "event" } th { "stuck since" } th { "last error" } }
            @for r in rows {
                @let f = r.failure.as_ref().map(|f| &f.outcome);
                tr {
                    td { a href={ "/console/orders/" (r.order.id) } { code { (r.order.id) } } }
                    td { (r.order.status.as_str()) }
                    td { (r.order.payment_method.map(method_name).unwrap_or("—")) }
                    td.num { (r.order.amount_due) }
                    td { (r.order.created_at.to_rfc3339()) }
                    td { (f.map(|o| o.consumer.as_str()).unwrap_or("")) }
                    td { (f.map(|o| o.detail_type.as_str()).unwrap_or("")) }
                    @match (f, &r.payment) {
                        (Some(o), _) => td class=(if o.dead_lettered_at.is_some() { "Failed" } else { "Pending" }) {
                            (if o.dead_lettered_at.is_some() { "in the DLQ since " } else { "retrying since " }) (r.at.to_rfc3339()) },
                        (None, Some(_)) if r.order.status == OrderStatus::AwaitingDeposit => td.Failed { "deposit due " (r.order.deposit_due().to_rfc3339()) },
                        (None, Some(p)) => td.Pending { (format!("{:?} since ", p.status)) (p.updated_at.to_rfc3339()) },
                        (None, None) => td {},
                    }
                    td.Failed { (f.and_then(|o| o.detail.as_deref()).unwrap_or("")) }
                }
            }
        }
    }
}

/// `GET /console/orders/find/export?format=csv|json&<filter>`: every row
/// the filter finds, up to [`EXPORT_MAX`], as a download.
pub async fn export(State(state): State<Arc<ConsoleState>>, RawQuery(query): RawQuery) -> Response {
    let Query { filter, format, .. } = match parse(&state, query.as_deref()) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let format = format.unwrap_or_else(|| "csv".to_owned());
    if format != "csv" && format != "json" {
        return shell::bad_request(&state, "format is csv or json.");
    }
    let rows = match find::collect(&state.app, &filter, EXPORT_MAX).await {
        Ok((rows, _)) => rows,
        Err(e) => return failed(&state, e),
    };
    let stamp = state.app.clock.now().to_rfc3339().replace([':', '.'], "-");
    let (body, mime) = match format.as_str() {
        "json" => (export::json(&rows).to_string(), "application/json"),
        _ => (export::csv(&rows), "text/csv; charset=utf-8"),
    };
    let disposition = format!("attachment; filename=\"orders-{stamp}.{format}\"");
    ([(header::CONTENT_TYPE, mime.to_owned()), (header::CONTENT_DISPOSITION, disposition)], body).into_response()
}

#[derive(serde::Deserialize)]
pub struct SaveForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    query: String,
}

/// `POST /console/views`: saves the finder's current filter under a name.
pub async fn save_view(
    State(state): State<Arc<ConsoleState>>,
    Extension(who): Extension<SignedIn>,
    Form(f): Form<SaveForm>,
) -> Response {
    let Some(name) = ViewName::parse(&f.name) else {
        return shell::bad_request(&state, "A view's name is 1–60 letters, digits, spaces, - or _.");
    };
    // Saved as the finder writes it back: a query that is no filter is refused.
    let filter = match parse(&state, Some(&f.query)) {
        Ok(q) => q.filter,
        Err(r) => return r,
    };
    let view = View { name, query: filter.to_query(), saved_by: who.0.clone(), saved_at: state.app.clock.now() };
    match state.app.store.views().save(&view).await {
        Ok(()) => Redirect::to(&format!("/console/orders/find?{}", view.query)).into_response(),
        Err(SaveError::Full) => shell::bad_request(&state, &SaveError::Full.to_string()),
        Err(SaveError::Store(e)) => shell::error(&state, &anyhow::Error::new(e)),
    }
}

/// `POST /console/views/{name}/delete`.
pub async fn delete_view(State(state): State<Arc<ConsoleState>>, Path(name): Path<String>) -> Response {
    let Some(name) = ViewName::parse(&name) else { return StatusCode::NOT_FOUND.into_response() };
    match state.app.store.views().delete(&name).await {
        Ok(()) => Redirect::to("/console/orders/find").into_response(),
        Err(e) => shell::error(&state, &anyhow::Error::new(e)),
    }
}
