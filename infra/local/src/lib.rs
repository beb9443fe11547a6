//! # shop-local
//!
//! The whole product on one machine, in one process: the same handlers the
//! Lambda functions run, on the embedded DynamoDB engine (a file in the data
//! directory), with everything AWS and the outside world would provide
//! emulated or simulated. `shop` (src/main.rs) is its command line; tests
//! start a [`Stack`] on port 0.
//!
//! # Layout
//!
//! | room | what lives there |
//! | --- | --- |
//! | [`emulate`] | what AWS provides in the cloud: API Gateway with its JWT authorizer ([`emulate::api_gateway`], [`jwt`]), the table's stream ([`emulate::runner`] delivers the outbox), EventBridge with its rules and archive ([`emulate::bus`], [`emulate::rules`]), SQS queues and DLQs ([`emulate::queue`]) |
//! | [`engine`] | the DynamoDB engine under the store (embedded, or an endpoint such as DynamoDB Local) and the meter on every store call |
//! | [`sim`] | the outside world: the Toss-compatible PG simulator ([`sim::pg`]) and the data-platform sink ([`sim::sink`]), each on its own SQLite ([`sim::db`]) |
//! | [`console`] | the saga console at `/console`: operators' pages over the store, the queues and the simulators |
//! | [`cli`] | what `shop` does besides `up`: seeding, the benchmarks, operations (DLQ, replay, republish, timeline, dump) |
//! | [`otlp`] | `shop up --otlp`: the stack's spans to an OpenTelemetry collector |
//! | [`chaos`] | the fault injector of the chaos soak (`shop up --chaos`): every fault class at random, seeded |
//!
//! Nothing here is linked into a Lambda binary.

pub mod chaos;
pub mod cli;
pub mod console;
pub mod emulate;
pub mod engine;
pub mod jwt;
pub mod otlp;
pub mod sim;

use engine::StoreEngine;
use shop_app::App;
use shop_app::clock::{Clock, IdGen};
use shop_app::config::Config;
use shop_embedded::Engine;
use shop_store::schema::{Streams, ensure_table};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// How to run a stack.
pub struct StackOptions {
    /// `None`: an in-memory database (tests).
    pub data_dir: Option<PathBuf>,
    pub port: u16,
    /// Also serve the DynamoDB API of the embedded engine here (for `cargo
    /// lambda watch`, the AWS CLI, NoSQL Workbench).
    pub dynamodb_port: Option<u16>,
    pub jwt_secret: String,
    pub config: Config,
    pub clock: Option<Arc<dyn Clock>>,
    pub ids: Option<Arc<dyn IdGen>>,
    /// Load this catalog when the table is new.
    pub seed_if_new: Option<cli::seed::Catalog>,
    /// Port of the PG simulator (0: any free port).
    pub pg_port: u16,
    /// Period of the scheduler (order expiry, payment reconciliation).
    pub schedule_every: std::time::Duration,
    /// One "minute" of the simulator's webhook retry schedule.
    pub webhook_backoff: std::time::Duration,
    /// How long the simulator's "timeout"/"lost_response" faults hold a call
    /// (default: twice the PG timeout plus 100 ms).
    pub pg_stall: Option<std::time::Duration>,
    /// Port of the data-platform sink (0: any free port).
    pub sink_port: u16,
    /// Durable queues: poll period, visibility timeout, receives before the DLQ.
    pub queues: emulate::runner::QueueOptions,
    /// Run the store on this DynamoDB endpoint (DynamoDB Local) instead of
    /// the embedded engine; `data_dir` then holds only the simulators.
    pub endpoint: Option<String>,
    /// How long the PG simulator's virtual accounts take deposits.
    pub va_due: std::time::Duration,
    /// Meter the app's store calls' capacity units too (the saga
    /// benchmark); counting them costs nothing, pricing parses every call.
    pub price_store_calls: bool,
    /// Inject faults at random (`shop up --chaos`, for the chaos soak).
    pub chaos: Option<chaos::ChaosOptions>,
}

/// What a write of a pending outbox item carries in its request: the
/// `pendingOutbox` index's partition attribute, set (`"outboxShard":{"S":..}`).
/// Clearing it (`REMOVE outboxShard`) does not match.
pub const OUTBOX_MARKER: &str = "\"outboxShard\":";

/// The secret key the local stack and its PG simulator share.
pub const SIM_SECRET_KEY: &str = "test_sk_shop_local";

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            data_dir: None,
            port: 0,
            dynamodb_port: None,
            jwt_secret: jwt::DEV_SECRET.to_owned(),
            config: Config::default(),
            clock: None,
            ids: None,
            seed_if_new: None,
            pg_port: 0,
            schedule_every: std::time::Duration::from_secs(60),
            webhook_backoff: std::time::Duration::from_secs(1),
            pg_stall: None,
            sink_port: 0,
            queues: emulate::runner::QueueOptions::default(),
            endpoint: None,
            va_due: sim::pg::VA_DUE,
            price_store_calls: false,
            chaos: None,
        }
    }
}

/// A running local stack. Dropping it does not stop it; call [`Stack::stop`].
pub struct Stack {
    pub addr: SocketAddr,
    pub pg_addr: SocketAddr,
    pub pg: Arc<sim::pg::PgSim>,
    pub sink_addr: SocketAddr,
    pub sink: Arc<sim::sink::Sink>,
    pub bus: Arc<emulate::bus::LocalBus>,
    pub runner: Arc<emulate::runner::Runner>,
    pub dynamodb_addr: Option<SocketAddr>,
    pub app: App,
    pub engine: StoreEngine,
    /// Sees every store call the app makes (counts, capacity): what the
    /// Lambda functions would make on AWS.
    pub meter: engine::Meter,
    /// Sees the store calls of the emulated stream, EventBridge and SQS.
    pub emulation_meter: engine::Meter,
    pub jwt_secret: String,
    tasks: Tasks,
}

/// The stack's background tasks, each told to stop through its own channel.
#[derive(Default)]
struct Tasks {
    stop: Vec<tokio::sync::oneshot::Sender<()>>,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Tasks {
    /// Spawns `task`; it must finish once the receiver it is given fires.
    fn spawn<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(tokio::sync::oneshot::Receiver<()>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.stop.push(tx);
        self.handles.push(tokio::spawn(task(rx)));
    }

    /// Tells every task to stop and waits for them.
    async fn stop(self) {
        for s in self.stop {
            let _ = s.send(());
        }
        for t in self.handles {
            let _ = t.await;
        }
    }

    /// Serves `router` on `listener` until stopped, then lets running requests finish.
    fn serve(&mut self, name: &'static str, listener: tokio::net::TcpListener, router: axum::Router) {
        self.spawn(move |stop| async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async {
                let _ = stop.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, server = name, "server failed");
            }
        });
    }
}

/// Opens the embedded engine and builds the app on it, creating the table if needed.
/// Returns whether the table was new.
pub async fn open(
    data_dir: Option<&std::path::Path>,
    config: Config,
    clock: Option<Arc<dyn Clock>>,
    ids: Option<Arc<dyn IdGen>>,
) -> anyhow::Result<(Engine, App, bool)> {
    let engine = match data_dir {
        Some(dir) => Engine::open_dir(dir)?,
        None => Engine::memory()?,
    };
    let (app, new) = open_on(engine.client(), config, clock, ids).await?;
    Ok((engine, app, new))
}

/// Builds the app on `client`'s engine, creating the table if needed.
/// Returns whether the table was new.
async fn open_on(
    client: aws_sdk_dynamodb::Client,
    config: Config,
    clock: Option<Arc<dyn Clock>>,
    ids: Option<Arc<dyn IdGen>>,
) -> anyhow::Result<(App, bool)> {
    let existed = client.describe_table().table_name(&config.table_name).send().await.is_ok();
    ensure_table(&client, &config.table_name, Streams::Disabled).await?;
    let mut app = App::new(shop_store::Store::new(client, config.table_name.clone()), config)?;
    if let Some(c) = clock {
        app = app.with_clock(c);
    }
    if let Some(i) = ids {
        app = app.with_ids(i);
    }
    Ok((app, !existed))
}

/// The simulators' state in a data dir, opened by commands that run beside
/// `shop up` (`shop dump`); `None` for one that is absent.
pub struct SimulatorState {
    pub pg: Option<Arc<sim::pg::PgSim>>,
    pub sink: Option<Arc<sim::sink::Sink>>,
}

pub fn open_simulators(data_dir: &std::path::Path) -> anyhow::Result<SimulatorState> {
    let (pg_file, sink_file) = (data_dir.join("pgsim.db"), data_dir.join("sink.db"));
    let pg = match pg_file.exists() {
        true => Some(sim::pg::PgSim::new(sim::pg::SimOptions {
            secret_key: SIM_SECRET_KEY.to_owned(),
            webhook_url: None,
            webhook_secret: None,
            webhook_backoff: std::time::Duration::from_secs(1),
            stall: std::time::Duration::from_secs(1),
            delay: std::time::Duration::from_secs(1),
            va_due: sim::pg::VA_DUE,
            state_file: Some(pg_file),
            clock: Arc::new(shop_app::clock::SystemClock),
        })?),
        false => None,
    };
    let sink = match sink_file.exists() {
        true => Some(sim::sink::Sink::new(
            Some(sink_file),
            std::time::Duration::from_secs(1),
            Arc::new(shop_app::clock::SystemClock),
        )?),
        false => None,
    };
    Ok(SimulatorState { pg, sink })
}

impl Stack {
    pub async fn start(opts: StackOptions) -> anyhow::Result<Stack> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port)).await?;
        let addr = listener.local_addr()?;
        let mut config = opts.config;
        let pg_timeout = std::time::Duration::from_millis(config.pg_timeout_ms);
        let stall = opts.pg_stall.unwrap_or(pg_timeout * 2 + std::time::Duration::from_millis(100));
        let clock = opts.clock.unwrap_or_else(|| Arc::new(shop_app::clock::SystemClock));
        let Simulators { pg_addr, pg, sink_addr, sink, mut tasks } = Simulators::start(SimulatorOptions {
            pg_port: opts.pg_port,
            sink_port: opts.sink_port,
            webhook_url: Some(format!("http://{addr}/webhooks/pg")),
            webhook_secret: config.pg_webhook_secret.clone(),
            webhook_backoff: opts.webhook_backoff,
            stall,
            delay: pg_timeout / 4,
            clock: clock.clone(),
            data_dir: opts.data_dir.clone(),
            va_due: opts.va_due,
        })
        .await?;
        config.pg_base_url = format!("http://{pg_addr}");
        config.pg_secret_key = SIM_SECRET_KEY.to_owned();
        let engine = match (&opts.endpoint, &opts.data_dir) {
            (Some(url), _) => StoreEngine::Endpoint(url.clone()),
            (None, Some(dir)) => StoreEngine::Embedded(Engine::open_dir(dir)?),
            (None, None) => StoreEngine::Embedded(Engine::memory()?),
        };
        let meter = if opts.price_store_calls { engine::Meter::pricing() } else { engine::Meter::default() };
        let (app, new) = open_on(engine.client(&meter), config, Some(clock), opts.ids).await?;
        if let (true, Some(catalog)) = (new, &opts.seed_if_new) {
            let report = cli::seed::seed(&app, catalog).await?;
            tracing::info!(?report, "loaded the catalog into a new data dir");
        }

        let state =
            Arc::new(emulate::api_gateway::ServerState { app: app.clone(), jwt_secret: opts.jwt_secret.clone() });
        // The console beside the API, on the same loopback port.
        let console = Arc::new(console::ConsoleState {
            app: app.clone(),
            pg: Some(pg.clone()),
            sink: Some(sink.clone()),
            jwt_secret: opts.jwt_secret.clone(),
            stack: None,
            allow_actions: true,
        });
        tasks.serve("API", listener, console::mount(emulate::api_gateway::router(state), console));

        let scheduled = app.clone();
        let every = opts.schedule_every;
        tasks.spawn(move |mut stop| async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tick.tick() => run_schedules(&scheduled).await,
                }
            }
        });

        // The overview's gauges: queue depths and the outbox, every 10 s.
        let sampled = app.clone();
        tasks.spawn(move |mut stop| async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tick.tick() => {
                        if let Err(e) = sample_gauges(&sampled).await {
                            tracing::warn!(error = %e, "could not sample the gauges");
                        }
                    }
                }
            }
        });

        // The emulated AWS services' own store calls, metered apart.
        let emulation_meter = engine::Meter::default();
        let emulation = shop_store::Store::new(engine.client(&emulation_meter), app.config.table_name.clone());
        let bus = Arc::new(emulate::bus::LocalBus::new(
            emulation.clone(),
            emulate::rules::rules()?,
            Arc::new(shop_app::clock::SystemClock),
        ));
        let platform = shop_app::adapters::data_platform::HttpDataPlatform {
            http: reqwest::Client::builder().timeout(pg_timeout.max(std::time::Duration::from_secs(1))).build()?,
            url: format!("http://{sink_addr}"),
        };
        let consumers: Vec<Arc<dyn shop_app::events::consumers::Consumer>> = vec![
            Arc::new(shop_app::events::consumers::CouponConsumer),
            Arc::new(shop_app::events::consumers::CompensationConsumer),
            Arc::new(shop_app::events::consumers::AnalyticsConsumer { platform: Arc::new(platform) }),
        ];
        let runner = Arc::new(emulate::runner::Runner::new(
            app.clone(),
            emulation,
            bus.clone(),
            consumers,
            opts.queues,
            engine.writes_with(&meter, OUTBOX_MARKER),
        ));
        let running = runner.clone();
        tasks.spawn(move |stop| running.run(stop));

        if let Some(c) = opts.chaos {
            let (app, pg, sink, engine) = (app.clone(), pg.clone(), sink.clone(), engine.embedded().cloned());
            tasks.spawn(move |stop| chaos::inject(c, app, pg, sink, engine, stop));
        }

        let dynamodb_addr = match (opts.dynamodb_port, engine.embedded()) {
            (Some(port), Some(embedded)) => {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
                let addr = listener.local_addr()?;
                let engine = embedded.clone();
                tasks.spawn(move |stop| async move {
                    let shutdown = async {
                        let _ = stop.await;
                    };
                    if let Err(e) = engine.serve(listener, shutdown).await {
                        tracing::error!(error = %e, "DynamoDB endpoint failed");
                    }
                });
                Some(addr)
            }
            _ => None,
        };
        Ok(Stack {
            addr,
            pg_addr,
            pg,
            sink_addr,
            sink,
            bus,
            runner,
            dynamodb_addr,
            app,
            engine,
            meter,
            emulation_meter,
            jwt_secret: opts.jwt_secret,
            tasks,
        })
    }

    pub fn sink_url(&self) -> String {
        format!("http://{}", self.sink_addr)
    }

    pub fn pg_url(&self) -> String {
        format!("http://{}", self.pg_addr)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A dev token for `user`, valid for an hour on the stack's clock.
    pub fn token(&self, user: &str) -> String {
        jwt::issue(&self.jwt_secret, user, self.app.clock.now().seconds(), 3600)
    }

    /// Stops accepting requests and waits for running ones to finish.
    pub async fn stop(self) {
        self.tasks.stop().await;
    }
}

/// The world outside a deployed stack: the PG simulator and the data-platform
/// sink alone (`shop sim`), for a stack running elsewhere, such as the
/// emulator deployment test's.
pub struct Simulators {
    pub pg_addr: SocketAddr,
    pub pg: Arc<sim::pg::PgSim>,
    pub sink_addr: SocketAddr,
    pub sink: Arc<sim::sink::Sink>,
    tasks: Tasks,
}

/// How to run [`Simulators`].
pub struct SimulatorOptions {
    pub pg_port: u16,
    pub sink_port: u16,
    /// Where the PG simulator sends its webhooks (the stack's `/webhooks/pg`).
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub webhook_backoff: std::time::Duration,
    /// How long "timeout"/"lost_response" (PG) and "slow" (sink) faults hold a call.
    pub stall: std::time::Duration,
    /// Extra wait of the PG's "delay" fault.
    pub delay: std::time::Duration,
    /// The clock webhook signatures, payment times and virtual accounts' due dates are dated by.
    pub clock: Arc<dyn Clock>,
    /// Keeps the simulators' state here across restarts; `None`: in memory.
    pub data_dir: Option<PathBuf>,
    /// How long a virtual account takes deposits ([`sim::pg::VA_DUE`] by default).
    pub va_due: std::time::Duration,
}

impl Simulators {
    pub async fn start(opts: SimulatorOptions) -> anyhow::Result<Simulators> {
        let pg_listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.pg_port)).await?;
        let sink_listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.sink_port)).await?;
        let (pg_addr, sink_addr) = (pg_listener.local_addr()?, sink_listener.local_addr()?);
        if let Some(dir) = &opts.data_dir {
            std::fs::create_dir_all(dir)?;
        }
        let mut tasks = Tasks::default();
        let pg = sim::pg::PgSim::new(sim::pg::SimOptions {
            secret_key: SIM_SECRET_KEY.to_owned(),
            webhook_url: opts.webhook_url,
            webhook_secret: opts.webhook_secret,
            webhook_backoff: opts.webhook_backoff,
            stall: opts.stall,
            delay: opts.delay,
            va_due: opts.va_due,
            state_file: opts.data_dir.as_ref().map(|d| d.join("pgsim.db")),
            clock: opts.clock.clone(),
        })?;
        tasks.serve("PG simulator", pg_listener, pg.router());
        let sink =
            sim::sink::Sink::new(opts.data_dir.as_ref().map(|d| d.join("sink.db")), opts.stall, opts.clock.clone())?;
        tasks.serve("data-platform sink", sink_listener, sink.router());
        Ok(Simulators { pg_addr, pg, sink_addr, sink, tasks })
    }

    pub async fn stop(self) {
        self.tasks.stop().await;
    }
}

/// One sample of the overview's gauges: each consumer's queue and DLQ
/// depth (as SQS's `ApproximateNumberOfMessages` would say), and the outbox.
pub async fn sample_gauges(app: &App) -> anyhow::Result<()> {
    use shop_app::obs::stats;
    let queues = emulate::queue::Queues(&app.store);
    let mut gauges = Vec::new();
    for c in shop_app::events::consumers::NAMES {
        for q in [c.to_string(), emulate::queue::dlq_of(c)] {
            let depth = queues.depth(&q, stats::PENDING_CAP).await?;
            gauges.push((format!("{}{q}", stats::QUEUE), i64::try_from(depth).unwrap_or(i64::MAX)));
        }
    }
    app.store.stats_sample(app.clock.now(), &gauges).await?;
    stats::sample_outbox(app).await?;
    Ok(())
}

/// One run of every scheduled function, as EventBridge schedules would trigger them.
pub async fn run_schedules(app: &App) {
    use shop_app::obs::telemetry::{invocation_span, new_request_id};
    use tracing::Instrument as _;
    let expire = invocation_span("expire-orders", &new_request_id());
    if let Err(e) = shop_app::usecases::expire::expire_orders(app).instrument(expire.clone()).await {
        expire.in_scope(|| tracing::error!(error = %e, "expire-orders failed"));
    }
    let reconcile = invocation_span("reconcile-payments", &new_request_id());
    if let Err(e) = shop_app::usecases::reconcile::reconcile_payments(app).instrument(reconcile.clone()).await {
        reconcile.in_scope(|| tracing::error!(error = %e, "reconcile-payments failed"));
    }
}
