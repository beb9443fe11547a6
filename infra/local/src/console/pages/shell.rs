//! The frame every page shares, and the assets compiled into the binary.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::console::ConsoleState;

/// htmx 2.0.11 from npm (`htmx.org`, 0BSD; sha512 of the package in
/// docs/adr/0016), served from the binary.
const HTMX: &str = include_str!("../assets/htmx-2.0.11.min.js");
const CSS: &str = include_str!("../assets/console.css");
/// uPlot 1.6.32 from npm (`uplot`, MIT; sha512 of the package in
/// docs/adr/0029) and the console's own script that draws its charts.
const UPLOT: &str = include_str!("../assets/uPlot-1.6.32.iife.min.js");
const UPLOT_CSS: &str = include_str!("../assets/uPlot-1.6.32.min.css");
const CHARTS: &str = include_str!("../assets/charts.js");

/// A file compiled into the binary, as a response that may be cached for `max_age` seconds.
fn asset(content_type: &'static str, max_age: u32, body: &'static str) -> Response {
    let cache = format!("max-age={max_age}");
    ([(header::CONTENT_TYPE, content_type.to_owned()), (header::CACHE_CONTROL, cache)], body).into_response()
}

pub async fn uplot() -> Response {
    asset("text/javascript", 86_400, UPLOT)
}

pub async fn uplot_css() -> Response {
    asset("text/css", 86_400, UPLOT_CSS)
}

pub async fn charts() -> Response {
    asset("text/javascript", 300, CHARTS)
}

pub async fn htmx() -> Response {
    asset("text/javascript", 86_400, HTMX)
}

pub async fn css() -> Response {
    asset("text/css", 300, CSS)
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · shop console" }
            link rel="stylesheet" href="/console/assets/uPlot.min.css";
            link rel="stylesheet" href="/console/assets/console.css";
            script src="/console/assets/htmx.min.js" {}
            script src="/console/assets/uPlot.min.js" {}
            script src="/console/assets/charts.js" {}
        }
    }
}

/// A page of the signed-in console, with the navigation (the simulators
/// only where there are some; a deployed stack's name, and whether its
/// console may act).
pub fn page(state: &ConsoleState, title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body {
                    nav {
                        a.brand href="/console/overview" { "shop console" }
                        a href="/console/overview" { "Overview" }
                        a href="/console/orders" { "Orders" }
                        a href="/console/queues" { "Queues" }
                        a href="/console/sales" { "Sales" }
                        @if state.pg.is_some() { a href="/console/simulators" { "Simulators" } }
                        a href="/console/audit" { "Audit" }
                        @if let Some(stack) = &state.stack { span.hint { "stack " code { (stack.name) } } }
                        @if !state.allow_actions { span.hint #read-only { "read-only" } }
                        form.logout method="post" action="/console/logout" { (crate::console::auth::csrf_field()) button type="submit" { "Sign out" } }
                    }
                    div #alerts hx-get="/console/alerts" hx-trigger="load, every 10s" {}
                    main { h1 { (title) } (body) }
                }
            }
        }
        .into_string(),
    )
}

/// An error page (500): what failed, for the operator.
pub fn error(state: &ConsoleState, e: &anyhow::Error) -> Response {
    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, page(state, "Error", html! { p.Failed { (format!("{e:#}")) } }))
        .into_response()
}

/// A form the console cannot take (400): what was wrong, nothing changed.
pub fn bad_request(state: &ConsoleState, what: &str) -> Response {
    (axum::http::StatusCode::BAD_REQUEST, page(state, "Not done", html! { p.Failed { (what) } })).into_response()
}

/// The answer to an action on a console started without `--allow-actions`.
pub async fn read_only(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<ConsoleState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if state.allow_actions {
        return next.run(request).await;
    }
    let body =
        html! { p { "This console is read-only: start it with " code { "--allow-actions" } " to act on the stack." } };
    (axum::http::StatusCode::FORBIDDEN, page(&state, "Read-only", body)).into_response()
}

/// A page outside the console (sign-in, refusals).
pub fn bare(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" { (head(title)) body { main.narrow { h1 { (title) } (body) } } }
        }
        .into_string(),
    )
}

/// Epoch ms as `HH:MM:SS.mmm` (UTC) for the time axis.
pub fn clock(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => shop_domain::Timestamp::from_millis(ms).to_rfc3339().get(11..23).unwrap_or("").to_owned(),
        None => "—".to_owned(),
    }
}
