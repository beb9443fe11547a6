//! `shop`: run the product locally and operate it.

use clap::{Parser, Subcommand};
use shop_app::config::Config;
use shop_local::cli::seed;
use shop_local::{Stack, StackOptions, jwt};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "shop", about = "The shop backend on one machine: API, store, and operations")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the local stack keeps its data: one argument for every command.
#[derive(clap::Args)]
struct DataDir {
    /// The local stack's data directory (the embedded store, the simulators' state).
    #[arg(long = "data-dir", default_value = ".shop-data", env = "SHOP_DATA_DIR")]
    data_dir: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API on 127.0.0.1 with the embedded store (loads the demo catalog into a new data dir).
    Up {
        #[arg(long, default_value_t = 3000)]
        port: u16,
        #[command(flatten)]
        data: DataDir,
        /// Also serve the embedded store's DynamoDB API on this port (for `cargo lambda watch`).
        #[arg(long)]
        dynamodb_port: Option<u16>,
        /// Seconds a new order stays payable.
        #[arg(long, default_value_t = 900)]
        order_ttl: i64,
        /// Export every span over OTLP/HTTP (JSON) to this collector, e.g. http://localhost:4318.
        #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
        otlp: Option<String>,
        #[arg(long, env = "SHOP_JWT_SECRET", default_value = jwt::DEV_SECRET, hide_default_value = true)]
        jwt_secret: String,
        /// Start with an empty data dir instead of the demo catalog.
        #[arg(long)]
        no_demo: bool,
        /// Port of the Toss-compatible PG simulator.
        #[arg(long, default_value_t = 3001)]
        pg_port: u16,
        /// Seconds between scheduler runs (order expiry, payment reconciliation).
        #[arg(long, default_value_t = 60)]
        schedule_every: u64,
        /// Seconds a payment stays CONFIRMING/UNKNOWN before the reconciler asks the PG.
        #[arg(long, default_value_t = 300)]
        reconcile_after: i64,
        /// Timeout of every call to the PG, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        pg_timeout_ms: u64,
        /// Milliseconds standing in for one minute of the PG's webhook retry schedule.
        #[arg(long, default_value_t = 1_000)]
        webhook_backoff_ms: u64,
        /// Seconds a PG simulator's virtual account takes deposits (its dueDate); then it expires.
        #[arg(long, default_value_t = 3 * 86_400)]
        va_due: u64,
        /// Require and send HMAC-signed webhooks (`Pg-Signature`) with this secret.
        #[arg(long, env = "PG_WEBHOOK_SECRET")]
        webhook_secret: Option<String>,
        /// Port of the data-platform sink the analytics consumer delivers to.
        #[arg(long, default_value_t = 3002)]
        sink_port: u16,
        /// Seconds a received message stays invisible before its first retry (doubles per retry).
        #[arg(long, default_value_t = 5)]
        visibility_timeout: u64,
        /// Receives before a message moves to its consumer's DLQ (SQS maxReceiveCount).
        #[arg(long, default_value_t = 5)]
        max_receive: u32,
        /// Inject faults of every class at random, seeded (the chaos soak; see `shop bench --saga --chaos`).
        #[arg(long)]
        chaos: Option<u64>,
        /// With --chaos: one fault per this many milliseconds.
        #[arg(long, default_value_t = 100, requires = "chaos")]
        chaos_every_ms: u64,
    },
    /// Serve the saga console over a deployed stack (its table, its SQS queues) on 127.0.0.1,
    /// read-only unless --allow-actions; prints an operator token for it.
    Console {
        /// The CloudFormation stack; credentials, region and endpoint from the usual AWS chain.
        #[arg(long, value_name = "NAME", env = "SHOP_STACK")]
        stack: String,
        #[arg(long, default_value_t = 3100)]
        port: u16,
        /// Let the console redrive DLQs, replay events and republish orders.
        #[arg(long)]
        allow_actions: bool,
        /// Signs the console's operator tokens; a fresh random one per run when unset.
        #[arg(long, env = "SHOP_JWT_SECRET", hide_env_values = true)]
        jwt_secret: Option<String>,
        /// Validity of the printed operator token, in seconds.
        #[arg(long, default_value_t = 12 * 3600)]
        ttl: i64,
    },
    /// Print a development JWT for a user.
    Token {
        /// The shopper the token is for (or, with --operator, the operator's name).
        #[arg(long, required_unless_present = "operator")]
        user: Option<String>,
        /// An operator's token for the saga console (`role: operator`), not a shopper's.
        #[arg(long)]
        operator: bool,
        /// Validity in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl: i64,
        #[arg(long, env = "SHOP_JWT_SECRET", default_value = jwt::DEV_SECRET, hide_default_value = true)]
        jwt_secret: String,
    },
    /// Measure the local stack (file-backed): order placement, or with --saga the whole saga, settled and checked,
    /// or with --sim the PG simulator and the data-platform sink alone.
    Bench {
        /// Orders (with --sim: payments, each a checkout, a confirm, a lookup and a sink delivery).
        #[arg(long, default_value_t = 2000)]
        orders: usize,
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
        /// Seed of the saga's mix (the same seed gives the same orders).
        #[arg(long, default_value_t = 1, requires = "saga")]
        seed: u64,
        /// Start at most this many orders per second (default: as fast as the shoppers go).
        #[arg(long, requires = "saga")]
        rate: Option<f64>,
        /// Seconds an unpaid order stays payable in the saga run.
        #[arg(long, default_value_t = 2, requires = "saga")]
        order_ttl: i64,
        /// Seconds to wait for the last order to settle after the load.
        #[arg(long, default_value_t = 120, requires = "saga")]
        settle_timeout: u64,
        /// Print the report as one JSON object (--saga, --sim).
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
        /// With --chaos: after the checks, replay the whole archive and republish every event, each
        /// twice, and require `shop dump` byte-identical before and after.
        #[arg(long, requires = "chaos")]
        replay_check: bool,
    },
    /// Dead-letter queues of the consumers.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Re-deliver archived events (as an EventBridge replay: events carry `replay-name`).
    Replay {
        #[command(flatten)]
        data: DataDir,
        /// RFC 3339, or relative: -30m, -2h, -1d.
        #[arg(long, allow_hyphen_values = true)]
        from: String,
        /// RFC 3339, or relative; default now.
        #[arg(long, allow_hyphen_values = true)]
        to: Option<String>,
        /// Only to this consumer (coupon, compensation, analytics).
        #[arg(long)]
        consumer: Option<String>,
        #[command(flatten)]
        stack: StackArg,
        #[arg(long)]
        json: bool,
    },
    /// Publish outbox events again (consumers dedupe by event id): those written since a time,
    /// or with --from-failure-queue the windows of the stream publisher's OnFailure records.
    Republish {
        #[command(flatten)]
        data: DataDir,
        /// RFC 3339, or relative: -30m, -2h, -1d.
        #[arg(long, allow_hyphen_values = true, required_unless_present = "from_failure_queue")]
        since: Option<String>,
        /// Work on this DynamoDB table of a deployed stack instead of the data dir
        /// (credentials, region and endpoint from the usual AWS_* variables / profile).
        #[arg(long, env = "SHOP_TABLE", conflicts_with = "stack")]
        table: Option<String>,
        /// Read the stack's PublisherFailureQueue: republish the shard and sequence window of each
        /// record the stream publisher gave up on, then delete the record.
        #[arg(long, requires = "stack", conflicts_with = "since")]
        from_failure_queue: bool,
        #[command(flatten)]
        stack: StackArg,
        #[arg(long)]
        json: bool,
    },
    /// The business state as one canonical JSON document (sorted; byte-identical for the same state):
    /// orders, payments, stock, coupons, points and ledgers, and with a data dir the PG simulator's
    /// payments and the data platform's deliveries by event id.
    Dump {
        #[command(flatten)]
        data: DataDir,
        /// Dump this DynamoDB table of a deployed stack instead of the data dir
        /// (credentials, region and endpoint from the usual AWS_* variables / profile).
        #[arg(long, env = "SHOP_TABLE")]
        table: Option<String>,
    },
    /// An order's saga: its events and every consumer's outcome.
    Timeline {
        order_id: String,
        #[command(flatten)]
        data: DataDir,
        /// Work on this DynamoDB table of a deployed stack instead of the data dir
        /// (credentials, region and endpoint from the usual AWS_* variables / profile).
        #[arg(long, env = "SHOP_TABLE")]
        table: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Load products, coupons and users from a catalog file (format: docs/local.md).
    Seed {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        file: PathBuf,
        /// Load into this DynamoDB table of a deployed stack instead of the data dir
        /// (AWS_* variables / profile). Never taken from SHOP_TABLE: seeding
        /// resets users' point balances, so the table must be named here.
        #[arg(long)]
        table: Option<String>,
    },
    /// Run only the PG simulator and the data-platform sink, for a stack deployed elsewhere.
    Sim {
        #[arg(long, default_value_t = 3001)]
        pg_port: u16,
        #[arg(long, default_value_t = 3002)]
        sink_port: u16,
        /// Where the PG simulator sends webhooks (the deployed API's /webhooks/pg).
        #[arg(long)]
        webhook_url: Option<String>,
        #[arg(long, env = "PG_WEBHOOK_SECRET")]
        webhook_secret: Option<String>,
        /// Milliseconds standing in for one minute of the PG's webhook retry schedule.
        #[arg(long, default_value_t = 1_000)]
        webhook_backoff_ms: u64,
        /// Seconds a PG simulator's virtual account takes deposits (its dueDate); then it expires.
        #[arg(long, default_value_t = 3 * 86_400)]
        va_due: u64,
        /// Keep the simulators' state in this directory (default: in memory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// First-come coupon campaigns, from the command line (the API's
    /// operator route is `POST /campaigns`).
    Campaign {
        #[command(subcommand)]
        command: CampaignCommand,
    },
}

#[derive(Subcommand)]
enum CampaignCommand {
    /// Create a campaign: `total` coupons, one per user, claimable from
    /// --starts-at until --ends-at (an existing id is kept as it is).
    Create {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        total: u64,
        /// RFC 3339 (default: now).
        #[arg(long)]
        starts_at: Option<String>,
        /// RFC 3339.
        #[arg(long)]
        ends_at: String,
        /// The coupon: FIXED (won off) or PERCENT.
        #[arg(long, value_parser = ["FIXED", "PERCENT"])]
        kind: String,
        #[arg(long)]
        value: u64,
        #[arg(long, default_value_t = 0)]
        min_order_amount: u64,
        /// RFC 3339 (default: --ends-at).
        #[arg(long)]
        coupon_expires_at: Option<String>,
        #[command(flatten)]
        data: DataDir,
        /// Create it in this DynamoDB table of a deployed stack instead of the data dir.
        #[arg(long, env = "SHOP_TABLE")]
        table: Option<String>,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Messages in the DLQs (of one consumer, or all); with --stack peeked without consuming them.
    List {
        consumer: Option<String>,
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        stack: StackArg,
        /// With --stack: at most this many messages per DLQ.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Move a consumer's DLQ messages back to its queue (with --stack: SQS StartMessageMoveTask).
    Redrive {
        consumer: String,
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        stack: StackArg,
        #[arg(long)]
        json: bool,
    },
}

/// A deployed stack to operate instead of the data dir.
#[derive(clap::Args)]
struct StackArg {
    /// The CloudFormation stack (e.g. `shop` from samconfig.toml): its queues, archive and table
    /// are read from its outputs; credentials, region and endpoint from the usual AWS chain.
    #[arg(id = "stack", long = "stack", value_name = "NAME", env = "SHOP_STACK")]
    name: Option<String>,
}

impl StackArg {
    async fn resolve(&self) -> anyhow::Result<Option<shop_local::cli::stack::DeployedStack>> {
        match &self.name {
            Some(n) => Ok(Some(shop_local::cli::stack::DeployedStack::resolve(n).await?)),
            None => Ok(None),
        }
    }
}

/// The deployed stack's table when `table` is given, else the local data dir.
async fn target(data_dir: &std::path::Path, table: Option<&str>) -> anyhow::Result<shop_app::App> {
    match table {
        Some(t) => shop_app::adapters::aws::app_for_table(t).await,
        None => open_app(data_dir).await,
    }
}

async fn open_app(data_dir: &std::path::Path) -> anyhow::Result<shop_app::App> {
    anyhow::ensure!(data_dir.join("shop.db").exists(), "no data in {} (start `shop up` first)", data_dir.display());
    Ok(shop_local::open(Some(data_dir), Config::default(), None, None).await?.1)
}

fn print(json: bool, value: &serde_json::Value, text: impl FnOnce() -> String) {
    if json {
        println!("{value}");
    } else {
        println!("{}", text());
    }
}

/// The engine a saga benchmark runs on.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum BenchEngine {
    Embedded,
    DynamodbLocal,
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Console { stack, port, allow_actions, jwt_secret, ttl } => {
            shop_app::obs::telemetry::init("shop-console");
            let deployed = shop_local::cli::stack::DeployedStack::resolve(&stack).await?;
            let secret = jwt_secret
                .unwrap_or_else(|| format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()));
            let token = jwt::issue_operator(&secret, "operator", now_secs(), ttl);
            let (addr, server) =
                shop_local::console::serve_deployed(deployed, port, allow_actions, secret, shutdown_signal()).await?;
            println!(
                "saga console of stack {stack} on http://{addr}/console ({})",
                if allow_actions { "actions allowed" } else { "read-only; --allow-actions to act" }
            );
            println!("sign in at http://{addr}/console/login with this operator token (valid {ttl} s):");
            println!("{token}");
            server.await??;
        }
        Command::Token { user, operator, ttl, jwt_secret } => {
            if operator {
                let name = user.unwrap_or_else(|| "operator".to_owned());
                println!("{}", jwt::issue_operator(&jwt_secret, &name, now_secs(), ttl));
            } else {
                let user = user.ok_or_else(|| anyhow::anyhow!("--user or --operator"))?;
                shop_domain::UserId::parse(user.as_str())?;
                println!("{}", jwt::issue(&jwt_secret, &user, now_secs(), ttl));
            }
        }
        Command::Bench {
            orders,
            concurrency,
            saga: true,
            seed,
            rate,
            order_ttl,
            settle_timeout,
            json,
            engine,
            endpoint,
            chaos,
            kills,
            chaos_every_ms,
            replay_check,
            ..
        } => {
            let opts = shop_local::cli::saga::SagaOptions {
                orders,
                concurrency,
                seed,
                rate,
                order_ttl_secs: order_ttl,
                settle_timeout: std::time::Duration::from_secs(settle_timeout),
                endpoint: None,
            };
            let ok = match (engine, endpoint) {
                _ if chaos => {
                    let report = shop_local::cli::saga::chaos::run(shop_local::cli::saga::chaos::ChaosRun {
                        saga: opts,
                        kills,
                        every: std::time::Duration::from_millis(chaos_every_ms.max(1)),
                        replay_check,
                        exe: None,
                    })
                    .await?;
                    print(json, &serde_json::to_value(&report)?, || report.text());
                    report.ok()
                }
                (BenchEngine::Embedded, _) => {
                    let report = shop_local::cli::saga::run(opts).await?;
                    print(json, &serde_json::to_value(&report)?, || report.text());
                    report.ok()
                }
                (BenchEngine::DynamodbLocal, Some(url)) => {
                    let both = shop_local::cli::saga::compare(opts, url).await?;
                    print(json, &serde_json::to_value(&both)?, || both.text());
                    both.ok()
                }
                (BenchEngine::DynamodbLocal, None) => anyhow::bail!(
                    "--engine dynamodb-local needs --endpoint URL (eval \"$(infra/scripts/dynamodb-local.sh start)\" starts one)"
                ),
            };
            if !ok {
                std::process::exit(1);
            }
        }
        Command::Bench { orders, concurrency, sim: true, json, .. } => {
            let report = shop_local::cli::simbench::run(shop_local::cli::simbench::SimBenchOptions {
                payments: orders,
                concurrency,
            })
            .await?;
            print(json, &serde_json::to_value(&report)?, || report.text());
        }
        Command::Bench { orders, concurrency, full, saga: false, sim: false, .. } => {
            anyhow::ensure!(orders > 0 && concurrency > 0, "orders and concurrency must be positive");
            let report =
                shop_local::cli::bench::run(shop_local::cli::bench::BenchOptions { orders, concurrency, full }).await?;
            println!("{report}");
        }
        Command::Dlq { command: DlqCommand::List { consumer, data: DataDir { data_dir }, stack, limit, json } } => {
            let entries = match stack.resolve().await? {
                Some(stack) => shop_local::cli::stack::dlq_list(&stack, consumer.as_deref(), limit).await?,
                None => shop_local::cli::ops::dlq_list(&open_app(&data_dir).await?, consumer.as_deref()).await?,
            };
            print(json, &serde_json::to_value(&entries)?, || {
                if entries.is_empty() {
                    return "no messages in the DLQs".to_owned();
                }
                entries
                    .iter()
                    .map(|e| {
                        format!(
                            "{:<13} {:<16} {:<40} receives={} {}",
                            e.consumer,
                            e.detail_type,
                            e.event_id,
                            e.receives,
                            e.last_error.as_deref().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Command::Dlq { command: DlqCommand::Redrive { consumer, data: DataDir { data_dir }, stack, json } } => {
            if let Some(stack) = stack.resolve().await? {
                let r = shop_local::cli::stack::dlq_redrive(&stack, &consumer).await?;
                print(json, &serde_json::to_value(&r)?, || {
                    format!(
                        "moved {} message(s) from {consumer}'s DLQ back to its queue ({}, {})",
                        r.moved, r.method, r.status
                    )
                });
                return Ok(());
            }
            let app = open_app(&data_dir).await?;
            let moved = shop_local::cli::ops::dlq_redrive(&app, &consumer).await?;
            print(json, &serde_json::json!({"consumer": consumer, "moved": moved}), || {
                format!("moved {moved} message(s) from {consumer}-dlq back to {consumer}")
            });
        }
        Command::Replay { data: DataDir { data_dir }, from, to, consumer, stack, json } => {
            let now = shop_app::clock::Clock::now(&shop_app::clock::SystemClock);
            let from = shop_local::cli::ops::parse_time(&from, now)?;
            let to = match to {
                Some(t) => shop_local::cli::ops::parse_time(&t, now)?,
                None => now.plus_secs(1),
            };
            if let Some(stack) = stack.resolve().await? {
                let r = shop_local::cli::stack::replay(&stack, from, to, consumer.as_deref()).await?;
                print(json, &serde_json::to_value(&r)?, || {
                    format!(
                        "replay {} {}: {} .. {} from {}{}",
                        r.replay_name,
                        r.state,
                        r.from,
                        r.to,
                        r.archive_arn,
                        r.consumer.as_deref().map(|c| format!(" to {c}")).unwrap_or_default()
                    )
                });
                return Ok(());
            }
            let app = open_app(&data_dir).await?;
            let rules = shop_local::emulate::rules::rules()?;
            let r = shop_local::cli::ops::replay(&app, &rules, from, to, consumer.as_deref()).await?;
            print(json, &serde_json::to_value(&r)?, || {
                format!(
                    "replay {}: {} archived event(s), {} delivery(ies) queued",
                    r.replay_name, r.events, r.deliveries
                )
            });
        }
        Command::Republish { data: DataDir { data_dir }, since, table, from_failure_queue, stack, json } => {
            let stack = stack.resolve().await?;
            if let (Some(stack), true) = (&stack, from_failure_queue) {
                let r = shop_local::cli::stack::republish_failures(stack).await?;
                print(json, &serde_json::to_value(&r)?, || {
                    format!(
                        "{} failure record(s): {} window(s) read from the stream ({} record(s)), {} taken by time; \
                         {} outbox event(s) marked for publishing again, {} record(s) deleted",
                        r.records, r.windows_from_stream, r.stream_records, r.windows_by_time, r.republished, r.deleted
                    )
                });
                return Ok(());
            }
            let app = match &stack {
                Some(s) => s.app().await?,
                None => target(&data_dir, table.as_deref()).await?,
            };
            let sender = if table.is_some() || stack.is_some() { "the stream publisher" } else { "`shop up`" };
            let now = shop_app::clock::Clock::now(&shop_app::clock::SystemClock);
            let since = since.ok_or_else(|| anyhow::anyhow!("--since or --from-failure-queue"))?;
            let n = shop_local::cli::ops::republish(&app, shop_local::cli::ops::parse_time(&since, now)?).await?;
            print(json, &serde_json::json!({"republished": n}), || {
                format!("{n} outbox event(s) marked for publishing again; {sender} sends them")
            });
        }
        Command::Dump { data: DataDir { data_dir }, table } => {
            let app = target(&data_dir, table.as_deref()).await?;
            let state = match table {
                Some(_) => shop_local::SimulatorState { pg: None, sink: None },
                None => shop_local::open_simulators(&data_dir)?,
            };
            let sims = shop_local::cli::dump::Simulated { pg: state.pg.as_deref(), sink: state.sink.as_deref() };
            let state = shop_local::cli::dump::dump(&app, sims).await?;
            print!("{}", shop_local::cli::dump::text(&state)?);
        }
        Command::Timeline { order_id, data: DataDir { data_dir }, table, json } => {
            let app = target(&data_dir, table.as_deref()).await?;
            let id = shop_domain::OrderId::parse(order_id.as_str())?;
            let t = shop_local::cli::ops::timeline(&app, &id).await?;
            print(json, &t, || {
                let mut lines = vec![format!(
                    "order {} {}",
                    t["orderId"].as_str().unwrap_or(""),
                    t["status"].as_str().unwrap_or("")
                )];
                for step in t["timeline"].as_array().into_iter().flatten() {
                    let s = |k: &str| step[k].as_str().unwrap_or("").to_owned();
                    lines.push(match s("kind").as_str() {
                        "event" => format!(
                            "{}  {:<28} {}  trace={}{}",
                            s("at"),
                            s("detailType"),
                            s("eventId"),
                            step["traceId"].as_str().unwrap_or("-"),
                            if step["published"] == true { "" } else { "  (not yet published)" }
                        ),
                        _ => format!(
                            "{}    └ {:<13} {:<8} attempts={} {}",
                            s("at"),
                            s("consumer"),
                            s("status"),
                            step["attempts"],
                            s("detail")
                        ),
                    });
                }
                lines.join("\n")
            });
        }
        Command::Campaign {
            command:
                CampaignCommand::Create {
                    id,
                    name,
                    total,
                    starts_at,
                    ends_at,
                    kind,
                    value,
                    min_order_amount,
                    coupon_expires_at,
                    data: DataDir { data_dir },
                    table,
                },
        } => {
            shop_app::obs::telemetry::init("shop-campaign");
            let app = target(&data_dir, table.as_deref()).await?;
            let spec = serde_json::json!({
                "id": id, "name": name, "total": total,
                "startsAt": starts_at.unwrap_or_else(|| app.clock.now().to_rfc3339()),
                "endsAt": ends_at,
                "coupon": {
                    "kind": kind, "value": value, "minOrderAmount": min_order_amount,
                    "expiresAt": coupon_expires_at.unwrap_or_else(|| ends_at.clone()),
                },
            });
            let campaign = serde_json::from_value::<seed::CatalogCampaign>(spec)?.to_campaign()?;
            if shop_app::usecases::campaigns::create_campaign(&app, &campaign).await?
                == shop_app::usecases::campaigns::Created::New
            {
                println!("created campaign {} ({} coupons)", campaign.id, campaign.total);
            } else {
                anyhow::bail!("campaign {} exists; kept as it is", campaign.id);
            }
        }
        Command::Seed { data: DataDir { data_dir }, file, table } => {
            shop_app::obs::telemetry::init("shop-seed");
            let catalog = seed::Catalog::parse(&std::fs::read_to_string(&file)?)?;
            let app = match table {
                Some(t) => shop_app::adapters::aws::app_for_table(&t).await?,
                None => shop_local::open(Some(&data_dir), Config::default(), None, None).await?.1,
            };
            let r = seed::seed(&app, &catalog).await?;
            println!(
                "seeded {} products, {} coupons ({} already present, kept), {} users, {} campaigns ({} already present, kept)",
                r.products, r.coupons_created, r.coupons_kept, r.users, r.campaigns_created, r.campaigns_kept
            );
        }
        Command::Sim { pg_port, sink_port, webhook_url, webhook_secret, webhook_backoff_ms, va_due, data_dir } => {
            shop_app::obs::telemetry::init("shop-sim");
            let sims = shop_local::Simulators::start(shop_local::SimulatorOptions {
                pg_port,
                sink_port,
                webhook_url,
                webhook_secret,
                webhook_backoff: std::time::Duration::from_millis(webhook_backoff_ms),
                stall: SIM_STALL,
                delay: SIM_STALL / 8,
                clock: std::sync::Arc::new(shop_app::clock::SystemClock),
                data_dir,
                va_due: std::time::Duration::from_secs(va_due),
            })
            .await?;
            println!("PG simulator on http://{} (secret key {})", sims.pg_addr, shop_local::SIM_SECRET_KEY);
            println!("data-platform sink on http://{}", sims.sink_addr);
            shutdown_signal().await;
            sims.stop().await;
        }
        Command::Up {
            port,
            data: DataDir { data_dir },
            dynamodb_port,
            order_ttl,
            jwt_secret,
            no_demo,
            pg_port,
            schedule_every,
            reconcile_after,
            pg_timeout_ms,
            webhook_backoff_ms,
            va_due,
            webhook_secret,
            sink_port,
            visibility_timeout,
            max_receive,
            chaos,
            chaos_every_ms,
            otlp,
        } => {
            if let Some(url) = &otlp {
                shop_app::obs::trace::export_to("shop", shop_local::otlp::exporter(url)?);
            }
            shop_app::obs::telemetry::init("shop");
            anyhow::ensure!(order_ttl > 0 && schedule_every > 0 && pg_timeout_ms > 0, "durations must be positive");
            let config = Config {
                order_ttl_secs: order_ttl,
                reconcile_after_secs: reconcile_after,
                pg_timeout_ms,
                pg_webhook_secret: webhook_secret,
                ..Config::default()
            };
            let stack = Stack::start(StackOptions {
                data_dir: Some(data_dir.clone()),
                port,
                dynamodb_port,
                jwt_secret,
                config,
                seed_if_new: if no_demo { None } else { Some(seed::Catalog::parse(seed::DEMO_CATALOG)?) },
                pg_port,
                schedule_every: std::time::Duration::from_secs(schedule_every),
                webhook_backoff: std::time::Duration::from_millis(webhook_backoff_ms),
                va_due: std::time::Duration::from_secs(va_due),
                sink_port,
                queues: shop_local::emulate::runner::QueueOptions {
                    visibility: std::time::Duration::from_secs(visibility_timeout),
                    max_receive,
                    ..Default::default()
                },
                chaos: chaos.map(|seed| shop_local::chaos::ChaosOptions {
                    seed,
                    every: std::time::Duration::from_millis(chaos_every_ms.max(1)),
                    log: Some(data_dir.join(shop_local::cli::saga::chaos::LOG)),
                }),
                ..StackOptions::default()
            })
            .await?;
            println!("shop API on {} (data in {})", stack.url(), data_dir.display());
            println!("PG simulator on {} (secret key {})", stack.pg_url(), shop_local::SIM_SECRET_KEY);
            println!("data-platform sink on {}", stack.sink_url());
            if let Some(a) = stack.dynamodb_addr {
                println!("DynamoDB endpoint on http://{a} (table {})", stack.app.config.table_name);
            }
            println!("try: curl -H \"Authorization: Bearer $(shop token --user u1)\" {}/orders/<orderId>", stack.url());
            if let Some(url) = &otlp {
                println!("spans to the OTLP collector at {url}");
            }
            shutdown_signal().await;
            stack.stop().await;
            shop_app::obs::trace::flush();
        }
    }
    Ok(())
}

/// How long `shop sim`'s "timeout"/"slow" faults hold a call: past any
/// sensible client timeout of a deployed stack.
const SIM_STALL: std::time::Duration = std::time::Duration::from_secs(25);

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}
