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

pub mod bus;
pub mod chaos;
pub mod clock;
pub mod config;
pub mod consumers;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod orders;
pub mod payments;
pub mod pg;
pub mod publisher;
pub mod routes;
pub mod rules;
pub mod telemetry;
pub mod views;
pub mod webhook;

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
    pub pg: Arc<dyn pg::PaymentGateway>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    pub config: Arc<Config>,
    /// The function's name, for logs and metrics.
    pub service: &'static str,
    pub chaos: Arc<chaos::Chaos>,
}

impl App {
    /// An app on `store` whose PG client is built from `config`.
    pub fn new(store: Store, config: Config) -> anyhow::Result<Self> {
        let pg = pg::TossClient::new(
            &config.pg_base_url,
            &config.pg_secret_key,
            std::time::Duration::from_millis(config.pg_timeout_ms),
        )?;
        Ok(Self {
            store,
            pg: Arc::new(pg),
            clock: Arc::new(clock::SystemClock),
            ids: Arc::new(clock::UuidIds),
            config: Arc::new(config),
            service: "shop",
            chaos: Arc::new(chaos::Chaos::default()),
        })
    }

    pub fn with_pg(mut self, pg: Arc<dyn pg::PaymentGateway>) -> Self {
        self.pg = pg;
        self
    }

    pub fn with_service(mut self, service: &'static str) -> Self {
        self.service = service;
        self
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
