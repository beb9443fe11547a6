//! The outside world, simulated: the Toss-compatible PG and the data
//! platform, each an HTTP server with its state in a SQLite database of its
//! own ([`db`]): in the data dir beside the store, or in memory without one.

pub mod db;
pub mod pg;
pub mod sink;

use crate::tasks::Tasks;
use shop_app::clock::Clock;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The world outside a deployed stack: the PG simulator and the data-platform
/// sink alone (`shop sim`), for a stack running elsewhere, such as the
/// emulator deployment test's.
pub struct Simulators {
    pub pg_addr: SocketAddr,
    pub pg: Arc<pg::PgSim>,
    pub sink_addr: SocketAddr,
    pub sink: Arc<sink::Sink>,
    pub(crate) tasks: Tasks,
}

/// How to run [`Simulators`].
pub struct SimulatorOptions {
    /// The PG simulator's secret key: the Basic auth its Toss API takes
    /// (the data dir's, [`crate::secrets`]; never a public default).
    pub secret_key: String,
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
    /// How long a virtual account takes deposits ([`pg::VA_DUE`] by default).
    pub va_due: std::time::Duration,
    /// The listeners' timeouts and connection cap (their body limit is the API's).
    pub limits: crate::listen::Limits,
}

impl Simulators {
    pub async fn start(opts: SimulatorOptions) -> anyhow::Result<Simulators> {
        let pg_listener = crate::listen::bind(opts.pg_port, "the PG simulator", "--pg-port").await?;
        let sink_listener = crate::listen::bind(opts.sink_port, "the data-platform sink", "--sink-port").await?;
        let (pg_addr, sink_addr) = (pg_listener.local_addr()?, sink_listener.local_addr()?);
        if let Some(dir) = &opts.data_dir {
            std::fs::create_dir_all(dir)?;
        }
        let mut tasks = Tasks::default();
        let pg = pg::PgSim::new(pg::SimOptions {
            secret_key: opts.secret_key,
            webhook_url: opts.webhook_url,
            webhook_secret: opts.webhook_secret,
            webhook_backoff: opts.webhook_backoff,
            stall: opts.stall,
            delay: opts.delay,
            va_due: opts.va_due,
            state_file: opts.data_dir.as_ref().map(|d| d.join("pgsim.db")),
            clock: opts.clock.clone(),
        })?;
        let limits = opts.limits.body(crate::listen::JSON_BODY);
        tasks.serve("PG simulator", pg_listener, pg.router(), limits);
        let sink = sink::Sink::new(opts.data_dir.as_ref().map(|d| d.join("sink.db")), opts.stall, opts.clock.clone())?;
        tasks.serve("data-platform sink", sink_listener, sink.router(), limits);
        Ok(Simulators { pg_addr, pg, sink_addr, sink, tasks })
    }

    pub async fn stop(self) {
        self.tasks.stop().await;
    }
}

/// The simulators' state in a data dir, opened by commands that run beside
/// `shop up` (`shop dump`); `None` for one that is absent.
pub struct SimulatorState {
    pub pg: Option<Arc<pg::PgSim>>,
    pub sink: Option<Arc<sink::Sink>>,
}

pub fn open_simulators(data_dir: &std::path::Path) -> anyhow::Result<SimulatorState> {
    let (pg_file, sink_file) = (data_dir.join("pgsim.db"), data_dir.join("sink.db"));
    let pg = match pg_file.exists() {
        // Read only, never served: its key takes no call.
        true => Some(pg::PgSim::new(pg::SimOptions {
            secret_key: crate::secrets::random_hex(16)?,
            webhook_url: None,
            webhook_secret: None,
            webhook_backoff: std::time::Duration::from_secs(1),
            stall: std::time::Duration::from_secs(1),
            delay: std::time::Duration::from_secs(1),
            va_due: pg::VA_DUE,
            state_file: Some(pg_file),
            clock: Arc::new(shop_app::clock::SystemClock),
        })?),
        false => None,
    };
    let sink = match sink_file.exists() {
        true => Some(sink::Sink::new(
            Some(sink_file),
            std::time::Duration::from_secs(1),
            Arc::new(shop_app::clock::SystemClock),
        )?),
        false => None,
    };
    Ok(SimulatorState { pg, sink })
}
