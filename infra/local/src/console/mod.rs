//! The saga console: `/console` on `shop up`'s port (loopback only), for
//! operators. Pages are rendered on the server (maud, escaped by
//! construction); the only scripts are htmx and uPlot, vendored from npm
//! and compiled into the binary — htmx refreshes a page's live parts by
//! polling (ADR 0016), uPlot draws the overview's charts (ADR 0029) — and
//! the console's own `charts.js`. Nothing is fetched from elsewhere: the console works offline.
//!
//! | room | what lives there |
//! | --- | --- |
//! | [`auth`] | operator tokens: who may look, and the login that sets the cookie |
//! | [`acting`] | what every action shares: the operator, the required reason, the audit trail's record |
//! | [`jobs`] | bulk actions running in the background: progress, then the result |
//! | [`guard`] | what every console answer and POST is checked for: framing, scripts, the origin of a POST |
//! | [`saga`] | one order's saga as a read model: lanes on one time axis, and the money |
//! | [`queues`] | the consumers' queues wherever they live: the local stack's, or a deployed stack's SQS |
//! | `pages` | one file per page: the shell, the overview (charts from the saga statistics), orders (search and what is stuck), find (filters, paging, saved views, export), bulk (dry run, confirmation, progress, result), one order (with republish), queues (with redrive), simulators (faults, call logs), audit (who did what, why) |
//! | `assets` | htmx, uPlot, the charts' script and the stylesheet, served from the binary |
//!
//! Every action (redrive, republish, faults) is a POST behind a page that
//! says what it will do, carries a reason, and is recorded in the audit
//! trail with the signed-in operator ([`acting`]). A browser's session is server-side and every form
//! carries the session's CSRF token ([`auth`]); the cookie is also
//! SameSite=Strict, but a page on another port of 127.0.0.1 is the same
//! *site*: so every POST must also come from the console's own origin (its
//! `Origin` and `Sec-Fetch-Site`, which browsers always send on a POST, are
//! checked; a client that is no browser sends neither and authenticates
//! itself with a bearer token). Every answer forbids
//! framing (`X-Frame-Options: DENY`, `frame-ancestors 'none'`) and any
//! script but the console's own ([`guard`]).
//!
//! `shop up` serves it beside the API; `shop console --stack NAME` serves
//! it alone over a deployed stack (its table, its SQS queues), read-only
//! unless started with `--allow-actions`.

pub mod acting;
pub mod auth;
pub mod guard;
pub mod jobs;
mod pages;
pub mod queues;
pub mod saga;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use shop_app::App;

use crate::sim::{pg::PgSim, sink::Sink};

/// What the console reads.
pub struct ConsoleState {
    pub app: App,
    /// The PG simulator and the data platform (the local stack only).
    pub pg: Option<Arc<PgSim>>,
    pub sink: Option<Arc<Sink>>,
    /// Verifies operator tokens (the stack's JWT secret).
    pub jwt_secret: String,
    /// A deployed stack (`shop console --stack`): its queues are SQS's.
    pub stack: Option<Arc<crate::deployed::DeployedStack>>,
    /// Whether actions (redrive, replay, republish, faults) may run; a
    /// deployed stack's console is read-only unless `--allow-actions`.
    pub allow_actions: bool,
    /// The signed-in browsers ([`auth`]).
    pub sessions: auth::Sessions,
    /// Bulk actions running or recently run ([`jobs`]).
    pub jobs: jobs::Jobs,
}

/// `api` with the console at `/console`.
pub fn mount(api: Router, state: Arc<ConsoleState>) -> Router {
    let slash = Router::new().route("/console/", get(|| async { axum::response::Redirect::to("/console") }));
    Router::new().nest("/console", router(state)).merge(slash).merge(api)
}

/// The console's routes, nested at `/console`.
pub fn router(state: Arc<ConsoleState>) -> Router {
    // Actions, and the pages that confirm them: refused on a read-only console.
    let actions = Router::new()
        .route("/orders/{order_id}/republish", get(pages::order::confirm_republish).post(pages::order::republish))
        .route("/orders/{order_id}/replay", get(pages::order::confirm_replay).post(pages::order::replay))
        .route("/orders/{order_id}/ask-pg", get(pages::order::confirm_ask_pg).post(pages::order::ask_pg))
        .route("/queues/{consumer}/redrive", get(pages::queues::confirm_redrive).post(pages::queues::redrive))
        .route("/orders/bulk/{action}", get(pages::bulk::confirm).post(pages::bulk::start))
        .route("/views", post(pages::find::save_view))
        .route("/views/{name}/delete", post(pages::find::delete_view))
        .route("/simulators/sink/faults", post(pages::simulators::arm_sink))
        .route("/simulators/sink/clear", post(pages::simulators::clear_sink))
        .route("/simulators/pg/faults", post(pages::simulators::arm_pg))
        .route("/simulators/pg/clear", post(pages::simulators::clear_pg))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), pages::shell::read_only));
    let operator_only = Router::new()
        .route("/", get(pages::overview::page))
        .route("/overview", get(pages::overview::page))
        .route("/overview/charts", get(pages::overview::live))
        .route("/orders", get(pages::orders::index))
        .route("/orders/find", get(pages::find::page))
        .route("/orders/find/export", get(pages::find::export))
        .route("/jobs/{id}", get(pages::bulk::job))
        .route("/jobs/{id}/status", get(pages::bulk::job_status))
        .route("/orders/{order_id}", get(pages::order::page))
        .route("/orders/{order_id}/saga", get(pages::order::live))
        .route("/queues", get(pages::queues::page))
        .route("/sales", get(pages::sales::page))
        .route("/sales/live", get(pages::sales::live))
        .route("/simulators", get(pages::simulators::page))
        .route("/audit", get(pages::audit::page))
        .route("/alerts", get(pages::alerts::strip))
        .route("/logout", post(auth::logout))
        .merge(actions)
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_operator));
    Router::new()
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/assets/htmx.min.js", get(pages::shell::htmx))
        .route("/assets/console.css", get(pages::shell::css))
        .route("/assets/uPlot.min.js", get(pages::shell::uplot))
        .route("/assets/uPlot.min.css", get(pages::shell::uplot_css))
        .route("/assets/charts.js", get(pages::shell::charts))
        .merge(operator_only)
        .layer(axum::middleware::from_fn(guard::same_origin_posts))
        .layer(axum::middleware::from_fn(guard::security_headers))
        .with_state(state)
}

/// `shop console --stack`: the console alone over a deployed stack (its
/// table through the app, its SQS queues), on loopback. Returns the
/// address it listens on and the server's task (it stops when `stop` fires).
pub async fn serve_deployed(
    stack: crate::deployed::DeployedStack,
    port: u16,
    allow_actions: bool,
    jwt_secret: String,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let app = stack.app().await?;
    let state = Arc::new(ConsoleState {
        app,
        pg: None,
        sink: None,
        jwt_secret,
        stack: Some(Arc::new(stack)),
        allow_actions,
        sessions: auth::Sessions::default(),
        jobs: jobs::Jobs::default(),
    });
    // Loopback only: the console holds no TLS and its cookie is the key.
    let listener = crate::listen::bind(port, "the console", "--port").await?;
    let addr = listener.local_addr()?;
    let limits = crate::listen::Limits::with_max_body(crate::listen::JSON_BODY);
    let server = tokio::spawn(crate::listen::serve(listener, mount(Router::new(), state), limits, stop));
    Ok((addr, server))
}
