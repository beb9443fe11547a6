//! The saga console: `/console` on `shop up`'s port (loopback only), for
//! operators. Pages are rendered on the server (maud, escaped by
//! construction); the only script is htmx, vendored from npm and compiled
//! into the binary, which refreshes a page's live parts by polling (ADR
//! 0016). Nothing is fetched from elsewhere: the console works offline.
//!
//! | room | what lives there |
//! | --- | --- |
//! | [`auth`] | operator tokens: who may look, and the login that sets the cookie |
//! | [`saga`] | one order's saga as a read model: lanes on one time axis, and the money |
//! | `pages` | one file per page: the shell, orders (search and what is stuck), one order |
//! | `assets` | htmx and the stylesheet, served from the binary |
//!
//! Still to come (issue 14): the overview's charts, the queues page with
//! its actions, the simulators page, `shop console --stack`, the browser
//! test.

pub mod auth;
mod pages;
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
}

/// `api` with the console at `/console`.
pub fn mount(api: Router, state: Arc<ConsoleState>) -> Router {
    Router::new().nest("/console", router(state)).merge(api)
}

/// The console's routes, nested at `/console`.
pub fn router(state: Arc<ConsoleState>) -> Router {
    let operator_only = Router::new()
        .route("/", get(pages::orders::index))
        .route("/orders", get(pages::orders::index))
        .route("/orders/{order_id}", get(pages::order::page))
        .route("/orders/{order_id}/saga", get(pages::order::live))
        .route("/logout", post(auth::logout))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_operator));
    Router::new()
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/assets/htmx.min.js", get(pages::shell::htmx))
        .route("/assets/console.css", get(pages::shell::css))
        .merge(operator_only)
        .with_state(state)
}
