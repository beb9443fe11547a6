//! # shop-app
//!
//! The application layer: use cases and the HTTP handlers the Lambda
//! functions run. A handler is a named async fn taking the [`App`] and a
//! `lambda_http::Request` (API Gateway HTTP API v2 shape); each function's
//! `main.rs` only builds an `App` and hands the handler to the runtime, and
//! the local stack calls the very same fns through [`routes::invoke`].
//!
//! Depends on the domain and the store; knows nothing of which DynamoDB
//! engine is behind the store.

pub mod clock;
pub mod config;
pub mod http;
pub mod orders;
pub mod routes;
pub mod telemetry;

#[cfg(feature = "aws")]
pub mod aws;

use clock::{Clock, IdGen};
use config::Config;
use shop_store::Store;
use std::sync::Arc;

/// Everything a handler needs, built once per process (cold start).
#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    pub config: Arc<Config>,
}

impl App {
    pub fn new(store: Store, config: Config) -> Self {
        Self { store, clock: Arc::new(clock::SystemClock), ids: Arc::new(clock::UuidIds), config: Arc::new(config) }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_ids(mut self, ids: Arc<dyn IdGen>) -> Self {
        self.ids = ids;
        self
    }
}
