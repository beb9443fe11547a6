//! # shop-app
//!
//! The application layer: the use cases of the order-and-payment saga and
//! the edges the Lambda functions run. Each function's `main.rs` only
//! builds an [`App`] and hands one handler to the runtime; the local stack
//! (`infra/local`) calls the very same handlers.
//!
//! # Layout
//!
//! | room | what lives there | knows |
//! | --- | --- | --- |
//! | [`usecases`] | one file per use case: place an order, confirm, pay with points, cancel, settle a PG outcome, expire, reconcile, refund, campaigns (create, claim); the one conflict-retry loop ([`usecases::retry`]), the one points op ([`usecases::points`]) and the one stock release ([`usecases::stock`]) | domain, store, ports |
//! | [`ports`] | what the use cases need from outside: [`ports::PaymentGateway`], [`ports::EventBus`], [`ports::DataPlatform`]; each is given to what uses it when that is built — the [`App`] (the PG), the publisher (the bus), the analytics consumer (the data platform) — never to a call (docs/adr/0018) | domain |
//! | [`adapters`] | Toss, EventBridge, the data platform over HTTP, building an `App` against AWS (feature `aws`) | the SDKs, HTTP clients |
//! | [`http`] | the API: problem+json, request context, routes, pages, caching, the `Idempotency-Key` protocol, one file per resource with its handlers (orders, payments, webhook, coupons, points, catalog, campaigns), all run in [`http::serve`] | `lambda_http` — nothing else does |
//! | [`events`] | the outbox publisher and the SQS consumers (coupon, compensation, analytics) | `aws_lambda_events` |
//! | [`obs`] | tracing setup and business metrics | |
//!
//! [`App`], [`config`] and [`clock`] sit at the top: what every room is given;
//! [`admission`] signs and checks the waiting room's admission tokens.
//! The domain (`shop_domain`) decides; the store (`shop_store`) is the only
//! DynamoDB code; neither knows which engine is behind it.

pub mod adapters;
pub mod admission;
pub mod chaos;
pub mod clock;
pub mod config;
pub mod events;
pub mod http;
pub mod obs;
pub mod ports;
pub mod usecases;

use clock::{Clock, IdGen};
use config::Config;
use shop_store::Store;
use std::sync::Arc;

/// Everything a handler needs, built once per process (cold start).
#[derive(Clone)]
pub struct App {
    pub store: Store,
    /// The PG client; use cases call it through [`App::pg`], which counts.
    pub gateway: Arc<dyn ports::PaymentGateway>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    pub config: Arc<Config>,
    pub chaos: Arc<chaos::Chaos>,
    /// This app's counters (shared by its clones).
    pub metrics: Arc<obs::metrics::Metrics>,
    /// PG calls counted and not yet written to the saga statistics
    /// (shared by its clones; [`App::flush_stats`]).
    pub pg_counts: Arc<obs::stats::PgCounts>,
    /// Told when a shopper enters a sale's queue or a slot is freed: the
    /// local stack's admitter, resting while nothing moves, wakes for it
    /// (in Lambda nothing listens).
    pub admitter: Arc<tokio::sync::Notify>,
    /// Seals and opens refund accounts: the configured key, KMS data keys
    /// in AWS ([`App::with_sealer`]), or none (refusing both).
    pub sealer: Arc<dyn ports::Sealer>,
}

impl App {
    /// An app on `store` whose PG client is built from `config`.
    pub fn new(store: Store, config: Config) -> anyhow::Result<Self> {
        let pg = adapters::toss::TossClient::new(
            &config.pg_base_url,
            &config.pg_secret_key,
            std::time::Duration::from_millis(config.pg_timeout_ms),
        )?;
        let sealer: Arc<dyn ports::Sealer> = match config.refund_account_key {
            Some(key) => Arc::new(adapters::sealing::Envelope(adapters::sealing::LocalKey::new(key))),
            None => Arc::new(adapters::sealing::NoKey),
        };
        Ok(Self {
            sealer,
            store,
            gateway: Arc::new(pg),
            clock: Arc::new(clock::SystemClock),
            ids: Arc::new(clock::UuidIds),
            config: Arc::new(config),
            chaos: Arc::new(chaos::Chaos::default()),
            metrics: Arc::new(obs::metrics::Metrics::default()),
            pg_counts: Arc::new(obs::stats::PgCounts::default()),
            admitter: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// The PG client, every call counted in the saga statistics: the one
    /// way use cases call the PG.
    pub fn pg(&self) -> obs::stats::Counted<'_> {
        obs::stats::Counted { app: self }
    }

    /// Writes the PG call counts this process holds to the saga statistics
    /// now: before reading them in-process (the console's overview), on a
    /// timer and when the local stack stops.
    pub async fn flush_stats(&self) {
        self.pg_counts.flush(self).await;
    }

    /// Adds `n` to this app's business metric `name` (EMF in Lambda).
    pub fn count(&self, name: &'static str, n: u64) {
        self.metrics.count(name, n);
    }

    pub fn with_pg(mut self, pg: Arc<dyn ports::PaymentGateway>) -> Self {
        self.gateway = pg;
        self
    }

    pub fn with_sealer(mut self, sealer: Arc<dyn ports::Sealer>) -> Self {
        self.sealer = sealer;
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
