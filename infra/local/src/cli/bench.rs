//! `shop bench`: order placement, the whole saga (`--saga`, on one engine
//! or beside DynamoDB Local, or the chaos soak), the simulators (`--sim`).
//! A saga run with a violated invariant exits 1; one whose invariants hold
//! but with orders still unsettled when quiescence gave up exits 2.

use super::{Report, print};
use shop_local::bench::{flash, idle, placement, saga, sim};

#[derive(clap::Args)]
pub struct Bench {
    /// Orders (with --sim: payments, each a checkout, a confirm, a lookup and a sink delivery).
    #[arg(long, default_value_t = 2000)]
    orders: usize,
    /// Shoppers at once (requests in flight).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Placement only: also hold a coupon and spend points on every order.
    #[arg(long, conflicts_with = "saga")]
    full: bool,
    /// The whole saga: a seeded mix of card, virtual account, points, cancels,
    /// refunds and expiries, each order followed until every consumer is done;
    /// the invariants are checked after the run (any violation: exit code 1).
    #[arg(long, conflicts_with = "full")]
    saga: bool,
    /// The simulators alone: payments per second per tenth of the run, and their memory.
    #[arg(long, conflicts_with_all = ["saga", "full"])]
    sim: bool,
    /// An idle stack: the CPU and store calls it takes over --idle-secs with nobody using it.
    #[arg(long, conflicts_with_all = ["saga", "full", "sim"])]
    idle: bool,
    /// With --idle: the quiet window measured (after 10 s of warm-up).
    #[arg(long, default_value_t = 60, requires = "idle")]
    idle_secs: u64,
    /// Seed of the saga's mix or the flash sale's shoppers (the same seed gives the same run).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Start at most this many orders per second (default: as fast as the shoppers go).
    #[arg(long, requires = "saga")]
    rate: Option<f64>,
    /// Seconds an unpaid order stays payable in the saga or flash-sale run.
    #[arg(long, default_value_t = 2)]
    order_ttl: i64,
    /// Quiescence gives up after this many seconds with nothing settling; otherwise its bound
    /// follows the measured settle rate (twice what the backlog needs). Orders still in flight
    /// then are reported as unsettled (exit 2), never as violations.
    #[arg(long, default_value_t = 60)]
    settle_timeout: u64,
    /// Print the report as one JSON object (--saga, --sim, --idle).
    #[arg(long)]
    json: bool,
    /// dynamodb-local: the saga on the embedded engine, then on DynamoDB Local at --endpoint; both reports and the ratio.
    #[arg(long, value_enum, default_value = "embedded", requires = "saga")]
    engine: BenchEngine,
    /// The DynamoDB Local endpoint for --engine dynamodb-local (e.g. $DYNAMODB_LOCAL_ENDPOINT).
    #[arg(long, env = "DYNAMODB_LOCAL_ENDPOINT")]
    endpoint: Option<String>,
    /// The chaos soak: `shop up` in a child process with every fault class injected at random
    /// (seeded by --seed), SIGKILLed and restarted --kills times during the load; then quiescence,
    /// a DLQ redrive, and every invariant plus nothing stuck.
    #[arg(long, requires = "saga")]
    chaos: bool,
    /// With --chaos: SIGKILL restarts of the stack during the load.
    #[arg(long, default_value_t = 3, requires = "chaos")]
    kills: usize,
    /// With --chaos: one fault per this many milliseconds.
    #[arg(long, default_value_t = 100, requires = "chaos")]
    chaos_every_ms: u64,
    /// The sustainable settled rate: open-loop probes of --window seconds each, a fresh stack
    /// each, doubling from --rate (default 25/s) while time to settle p99 stays ≤ --p99-ms and
    /// every order settles cleanly, then bisecting to within 10 %.
    #[arg(long, requires = "saga", conflicts_with_all = ["chaos", "orders"])]
    find_capacity: bool,
    /// With --find-capacity: seconds each probe places orders.
    #[arg(long, default_value_t = 60, requires = "find_capacity")]
    window: u64,
    /// With --find-capacity: the time-to-settle p99 a probe must keep (ms).
    #[arg(long, default_value_t = 1000.0, requires = "find_capacity")]
    p99_ms: f64,
    /// With --find-capacity: the highest rate tried (orders/s).
    #[arg(long, default_value_t = 5000.0, requires = "find_capacity")]
    max_rate: f64,
    /// A flash sale behind the waiting room (docs/waiting-room.md): --shoppers arrive in a burst at
    /// --stock units, wait (a --live-share on the WebSocket, the rest polling), and buy through the
    /// whole saga when admitted; every waiting-room invariant is checked after quiescence (any
    /// violation: exit code 1; work still in flight: exit code 2).
    #[arg(long, conflicts_with_all = ["saga", "full", "sim", "idle"])]
    flash_sale: bool,
    /// With --flash-sale: shoppers in the burst.
    #[arg(long, default_value_t = 100_000, requires = "flash_sale")]
    shoppers: usize,
    /// With --flash-sale: units of the sale's one product.
    #[arg(long, default_value_t = 2_000, requires = "flash_sale")]
    stock: u64,
    /// With --flash-sale: shoppers holding an admission at once.
    #[arg(long, default_value_t = 500, requires = "flash_sale")]
    capacity: u32,
    /// With --flash-sale: the ceiling of the adaptive admission rate, per second.
    #[arg(long, default_value_t = 200, requires = "flash_sale")]
    sale_rate: u32,
    /// With --flash-sale: seconds an admitted shopper has to order.
    #[arg(long, default_value_t = 120, requires = "flash_sale")]
    session_secs: u32,
    /// With --flash-sale: the share of shoppers waiting on the WebSocket (0 to 1).
    #[arg(long, default_value_t = 0.1, requires = "flash_sale")]
    live_share: f64,
    /// With --flash-sale: HTTP requests in flight at most (a waiting shopper holds none).
    #[arg(long, default_value_t = 256, requires = "flash_sale")]
    in_flight: usize,
    /// With --flash-sale: a shopper gives up waiting after this many seconds.
    #[arg(long, default_value_t = 900, requires = "flash_sale")]
    patience_secs: u64,
    /// With --flash-sale: the PG slows down (every confirm delayed) this many seconds into the
    /// burst, for --slow-pg-for seconds: the adaptive admission's run (the report's phases).
    #[arg(long, requires = "flash_sale")]
    slow_pg_at: Option<u64>,
    /// With --slow-pg-at: how long the PG stays slow.
    #[arg(long, default_value_t = 60, requires = "slow_pg_at")]
    slow_pg_for: u64,
    /// With --flash-sale or --saga: keep the run's store in this directory (it must not exist yet);
    /// the saga prints its console's address to watch the run, and `shop up --data-dir DIR` opens it after.
    #[arg(long)]
    keep_data_dir: Option<std::path::PathBuf>,
    /// With --chaos: after the checks, replay the whole archive and republish every event, each
    /// twice, and require `shop dump` byte-identical before and after.
    #[arg(long, requires = "chaos")]
    replay_check: bool,
}

/// The engine a saga benchmark runs on.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum BenchEngine {
    Embedded,
    DynamodbLocal,
}

impl Bench {
    pub async fn run(self) -> anyhow::Result<()> {
        if self.idle {
            let opts = idle::IdleOptions { window: std::time::Duration::from_secs(self.idle_secs.max(1)) };
            return print(self.json, &idle::run(opts).await?);
        }
        if self.flash_sale {
            anyhow::ensure!((0.0..=1.0).contains(&self.live_share), "--live-share is a share, from 0 to 1");
            let opts = flash::FlashOptions {
                shoppers: self.shoppers,
                stock: self.stock,
                capacity: self.capacity,
                max_rate: self.sale_rate,
                session_secs: self.session_secs,
                order_ttl_secs: self.order_ttl,
                live_share: self.live_share,
                concurrency: self.in_flight,
                seed: self.seed,
                patience: std::time::Duration::from_secs(self.patience_secs),
                settle_timeout: std::time::Duration::from_secs(self.settle_timeout),
                slow_pg: self
                    .slow_pg_at
                    .map(|at| (std::time::Duration::from_secs(at), std::time::Duration::from_secs(self.slow_pg_for))),
                keep_data_dir: self.keep_data_dir,
                progress: super::progress::reporter(self.json),
            };
            let report = flash::run(opts).await?;
            print(self.json, &report)?;
            let violations = report.violations.values().map(|v| v.len() as u64).sum();
            let exit = saga::exit_code(violations, report.unsettled);
            if exit != 0 {
                std::process::exit(exit);
            }
            return Ok(());
        }
        if self.sim {
            let opts = sim::SimBenchOptions { payments: self.orders, concurrency: self.concurrency };
            return print(self.json, &sim::run(opts).await?);
        }
        if !self.saga {
            anyhow::ensure!(self.orders > 0 && self.concurrency > 0, "orders and concurrency must be positive");
            let opts = placement::BenchOptions {
                orders: self.orders,
                concurrency: self.concurrency,
                full: self.full,
                progress: super::progress::reporter(self.json),
            };
            println!("{}", placement::run(opts).await?);
            return Ok(());
        }
        anyhow::ensure!(
            self.keep_data_dir.is_none()
                || !(self.chaos || self.find_capacity || matches!(self.engine, BenchEngine::DynamodbLocal)),
            "--keep-data-dir keeps one run's embedded store: not with --chaos, --find-capacity or --engine dynamodb-local"
        );
        let opts = saga::SagaOptions {
            orders: self.orders,
            concurrency: self.concurrency,
            seed: self.seed,
            rate: self.rate,
            order_ttl_secs: self.order_ttl,
            settle_timeout: std::time::Duration::from_secs(self.settle_timeout),
            endpoint: None,
            progress: super::progress::reporter(self.json),
            keep_data_dir: self.keep_data_dir,
        };
        let exit = match (self.engine, self.endpoint) {
            _ if self.find_capacity => {
                let start_rate = self.rate.unwrap_or(25.0);
                let find = saga::capacity::CapacityOptions {
                    saga: saga::SagaOptions { rate: None, ..opts },
                    window: std::time::Duration::from_secs(self.window.max(1)),
                    p99_ms: self.p99_ms,
                    start_rate,
                    max_rate: self.max_rate.max(start_rate),
                    min_rate: (start_rate / 8.0).max(0.1),
                    precision: 0.1,
                };
                let report = saga::capacity::find(find).await?;
                print(self.json, &report)?;
                report.at_capacity.as_ref().map_or(1, saga::Report::exit_code)
            }
            _ if self.chaos => {
                let run = saga::chaos::ChaosRun {
                    saga: opts,
                    kills: self.kills,
                    every: std::time::Duration::from_millis(self.chaos_every_ms.max(1)),
                    replay_check: self.replay_check,
                    exe: None,
                };
                let report = saga::chaos::run(run).await?;
                print(self.json, &report)?;
                saga::exit_code(report.violations.total(), report.unsettled)
            }
            (BenchEngine::Embedded, _) => {
                let report = saga::run(opts).await?;
                print(self.json, &report)?;
                report.exit_code()
            }
            (BenchEngine::DynamodbLocal, Some(url)) => {
                let both = saga::compare(opts, url).await?;
                print(self.json, &both)?;
                both.embedded.exit_code().max(both.dynamodb_local.exit_code())
            }
            (BenchEngine::DynamodbLocal, None) => anyhow::bail!(
                "--engine dynamodb-local needs --endpoint URL (eval \"$(infra/scripts/dynamodb-local.sh start)\" starts one)"
            ),
        };
        if exit != 0 {
            std::process::exit(exit);
        }
        Ok(())
    }
}

impl Report for saga::Report {
    fn text(&self) -> String {
        saga::Report::text(self)
    }
}

impl Report for saga::Comparison {
    fn text(&self) -> String {
        saga::Comparison::text(self)
    }
}

impl Report for saga::capacity::CapacityReport {
    fn text(&self) -> String {
        saga::capacity::CapacityReport::text(self)
    }
}

impl Report for saga::chaos::ChaosReport {
    fn text(&self) -> String {
        saga::chaos::ChaosReport::text(self)
    }
}

impl Report for sim::SimReport {
    fn text(&self) -> String {
        sim::SimReport::text(self)
    }
}

impl Report for idle::IdleReport {
    fn text(&self) -> String {
        idle::IdleReport::text(self)
    }
}

impl Report for flash::FlashReport {
    fn text(&self) -> String {
        flash::FlashReport::text(self)
    }
}
