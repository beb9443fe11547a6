//! A running local stack: the API and the console on one loopback port,
//! the simulators, the scheduler, the emulated stream, bus and queues, all
//! on one store engine ([`Stack::start`]); and the app alone on a data dir
//! ([`open`]), for the commands that run beside it.

use crate::engine::{self, StoreEngine};
use crate::secrets::Secrets;
use crate::sim::{SimulatorOptions, Simulators};
use crate::tasks::Tasks;
use crate::{chaos, console, emulate, jwt, seed, sim};
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
    /// The JWT key, the PG simulator's key, the DynamoDB port's
    /// credentials; `None`: the data dir's ([`Secrets::of_data_dir`]), or
    /// fresh random ones without a data dir.
    pub secrets: Option<Secrets>,
    pub config: Config,
    pub clock: Option<Arc<dyn Clock>>,
    pub ids: Option<Arc<dyn IdGen>>,
    /// Load this catalog when the table is new.
    pub seed_if_new: Option<seed::Catalog>,
    /// Port of the PG simulator (0: any free port).
    pub pg_port: u16,
    /// Period of the scheduler (order expiry, payment reconciliation).
    pub schedule_every: std::time::Duration,
    /// Period of the waiting room's admitter (AWS: a loop of one-second
    /// steps inside a per-minute invocation).
    pub admit_every: std::time::Duration,
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
    /// Give a new table a stream (NEW_IMAGE), as the template does in AWS.
    /// The local publisher never reads it (it reads the pending index,
    /// ADR 0002); tests read it to follow an event as AWS would.
    pub table_stream: bool,
    /// Every listener's timeouts and connection cap ([`crate::listen`]).
    pub limits: crate::listen::Limits,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            data_dir: None,
            port: 0,
            dynamodb_port: None,
            secrets: None,
            config: Config::default(),
            clock: None,
            ids: None,
            seed_if_new: None,
            pg_port: 0,
            schedule_every: std::time::Duration::from_secs(60),
            admit_every: shop_app::events::schedules::ADMIT_EVERY,
            webhook_backoff: std::time::Duration::from_secs(1),
            pg_stall: None,
            sink_port: 0,
            queues: emulate::runner::QueueOptions::default(),
            endpoint: None,
            va_due: sim::pg::VA_DUE,
            price_store_calls: false,
            chaos: None,
            table_stream: false,
            limits: crate::listen::Limits::with_max_body(crate::listen::JSON_BODY),
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
    pub secrets: Secrets,
    tasks: Tasks,
    /// `<data-dir>/shop.lock`, held while the stack runs.
    _lock: Option<std::fs::File>,
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
    // Commands beside the stack (replay, redrive) run compensation too: the
    // data dir's key opens the refund accounts the stack sealed.
    let mut config = config;
    if let (None, Some(dir)) = (config.refund_account_key, data_dir) {
        config.refund_account_key = Some(Secrets::of_data_dir(dir)?.refund_account_key());
    }
    let (app, new) = open_on(engine.client(), config, clock, ids, Streams::Disabled).await?;
    Ok((engine, app, new))
}

/// Builds the app on `client`'s engine, creating the table if needed.
/// Returns whether the table was new.
async fn open_on(
    client: aws_sdk_dynamodb::Client,
    config: Config,
    clock: Option<Arc<dyn Clock>>,
    ids: Option<Arc<dyn IdGen>>,
    streams: Streams,
) -> anyhow::Result<(App, bool)> {
    let existed = client.describe_table().table_name(&config.table_name).send().await.is_ok();
    ensure_table(&client, &config.table_name, streams).await?;
    let mut app = App::new(shop_store::Store::new(client, config.table_name.clone()), config)?;
    if let Some(c) = clock {
        app = app.with_clock(c);
    }
    if let Some(i) = ids {
        app = app.with_ids(i);
    }
    Ok((app, !existed))
}

impl Stack {
    pub async fn start(opts: StackOptions) -> anyhow::Result<Stack> {
        // One stack per data dir: two would run two schedulers and two sets
        // of consumers on one store.
        let lock = opts.data_dir.as_deref().map(lock_data_dir).transpose()?;
        let secrets = match (opts.secrets, &opts.data_dir) {
            (Some(s), _) => s,
            (None, Some(dir)) => Secrets::of_data_dir(dir)?,
            (None, None) => Secrets::random()?,
        };
        let listener = crate::listen::bind(opts.port, "the API and the console", "--port").await?;
        let addr = listener.local_addr()?;
        let mut config = opts.config;
        config.refund_account_key.get_or_insert(secrets.refund_account_key());
        let pg_timeout = std::time::Duration::from_millis(config.pg_timeout_ms);
        let stall = opts.pg_stall.unwrap_or(pg_timeout * 2 + std::time::Duration::from_millis(100));
        let clock = opts.clock.unwrap_or_else(|| Arc::new(shop_app::clock::SystemClock));
        let Simulators { pg_addr, pg, sink_addr, sink, mut tasks } = Simulators::start(SimulatorOptions {
            secret_key: secrets.pg_secret_key.clone(),
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
            limits: opts.limits,
        })
        .await?;
        config.pg_base_url = format!("http://{pg_addr}");
        config.pg_secret_key = secrets.pg_secret_key.clone();
        // The consumers learn a message is on its last receive from the queues' own limit.
        config.max_receives = opts.queues.max_receive;
        if config.admission_secret.is_none() {
            config.admission_secret = Some(secrets.admission_secret());
        }
        let engine = match (&opts.endpoint, &opts.data_dir) {
            (Some(url), _) => StoreEngine::Endpoint(url.clone()),
            (None, Some(dir)) => StoreEngine::Embedded(Engine::open_dir(dir)?),
            (None, None) => StoreEngine::Embedded(Engine::memory()?),
        };
        let meter = if opts.price_store_calls { engine::Meter::pricing() } else { engine::Meter::default() };
        let streams = if opts.table_stream { Streams::Enabled } else { Streams::Disabled };
        let (app, new) = open_on(engine.client(&meter), config, Some(clock), opts.ids, streams).await?;
        if let (true, Some(catalog)) = (new, &opts.seed_if_new) {
            let report = seed::seed(&app, catalog).await?;
            tracing::info!(?report, "loaded the catalog into a new data dir");
        }

        let state =
            Arc::new(emulate::api_gateway::ServerState { app: app.clone(), jwt_secret: secrets.jwt_secret.clone() });
        // The console beside the API, on the same loopback port.
        let console = Arc::new(console::ConsoleState {
            app: app.clone(),
            pg: Some(pg.clone()),
            sink: Some(sink.clone()),
            jwt_secret: secrets.jwt_secret.clone(),
            stack: None,
            allow_actions: true,
            sessions: console::auth::Sessions::default(),
            jobs: console::jobs::Jobs::default(),
        });
        // The API's routes take JSON documents of up to 64 KiB (API Gateway
        // itself would take 10 MB; nothing is gained by buffering more).
        let api_limits = opts.limits.body(crate::listen::JSON_BODY);
        // API Gateway's WebSocket API beside the HTTP API: `/live`.
        let sockets = emulate::live::Sockets::default();
        let live =
            emulate::live::router(Arc::new(emulate::live::LiveState { app: app.clone(), sockets: sockets.clone() }));
        let api = emulate::api_gateway::router(state).merge(live);
        tasks.serve("API", listener, console::mount(api, console), api_limits);

        let scheduled = app.clone();
        let every = opts.schedule_every;
        tasks.spawn(move |mut stop| async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tick.tick() => emulate::schedules::run_schedules(&scheduled).await,
                }
            }
        });

        // The waiting room's admitter, as its function runs in AWS.
        let admitting = app.clone();
        let admit_every = opts.admit_every;
        let pusher = Arc::new(emulate::live::LocalPusher(sockets.clone()));
        tasks.spawn(move |stop| shop_app::events::schedules::admit_loop(admitting, admit_every, stop, pusher));

        // The overview's gauges: queue depths and the outbox, every 10 s.
        let sampled = app.clone();
        tasks.spawn(move |mut stop| async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tick.tick() => {
                        if let Err(e) = emulate::schedules::sample_gauges(&sampled).await {
                            tracing::warn!(error = %e, "could not sample the gauges");
                        }
                    }
                }
            }
        });

        // PG call counts held in the process: written every second (no
        // call when there are none) and once more when the stack stops.
        let counted = app.clone();
        tasks.spawn(move |mut stop| async move {
            let mut tick = tokio::time::interval(shop_app::obs::stats::PG_FLUSH_AFTER);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tick.tick() => counted.flush_stats().await,
                }
            }
            counted.flush_stats().await;
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
            Arc::new(shop_app::events::consumers::WaitingRoomConsumer),
        ];
        let runner = Arc::new(emulate::runner::Runner::new(
            app.clone(),
            emulation,
            bus.clone(),
            consumers,
            opts.queues,
            engine.writes_with(&meter, "outbox", shop_store::outbox::codec::writes_pending_event),
        ));
        let running = runner.clone();
        tasks.spawn(move |stop| running.run(stop));

        if let Some(c) = opts.chaos {
            let (app, pg, sink, engine) = (app.clone(), pg.clone(), sink.clone(), engine.embedded().cloned());
            tasks.spawn(move |stop| chaos::inject(c, app, pg, sink, engine, stop));
        }

        let dynamodb_addr = match (opts.dynamodb_port, engine.embedded()) {
            (Some(port), Some(embedded)) => {
                let listener = crate::listen::bind(port, "the embedded DynamoDB endpoint", "--dynamodb-port").await?;
                let addr = listener.local_addr()?;
                let key = emulate::dynamodb::SigningKey {
                    access_key_id: secrets.aws_access_key_id.clone(),
                    secret_access_key: secrets.aws_secret_access_key.clone(),
                };
                let limits = opts.limits.body(emulate::dynamodb::MAX_BODY);
                tasks.serve("DynamoDB endpoint", listener, emulate::dynamodb::router(embedded.clone(), key), limits);
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
            secrets,
            tasks,
            _lock: lock,
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
        jwt::issue(&self.secrets.jwt_secret, user, self.app.clock.now().seconds(), 3600)
    }

    /// Stops accepting requests and waits for running ones to finish.
    pub async fn stop(self) {
        self.tasks.stop().await;
    }
}

/// Takes `<dir>/shop.lock` (an OS file lock, released when the process
/// ends, however it ends) and writes this process's id into it. Commands
/// that work beside a running stack (`shop dlq`, `replay`, `dump`, …) do
/// not take it.
fn lock_data_dir(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use anyhow::Context as _;
    use std::io::Write as _;
    std::fs::create_dir_all(dir).with_context(|| format!("creating the data dir {}", dir.display()))?;
    let path = dir.join("shop.lock");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0)?;
            write!(file, "{}", std::process::id())?;
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            anyhow::bail!(
                "{} is held by another `shop up` (process {}): one stack per data dir; stop that one, or give this one another --data-dir",
                path.display(),
                holder.trim()
            )
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}
