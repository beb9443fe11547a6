//! `shop up`: the whole stack on this machine until Ctrl-C.

use super::{DataDir, shutdown_signal};
use shop_app::config::Config;
use shop_local::{Stack, StackOptions, seed};

#[derive(clap::Args)]
pub struct Up {
    /// Port of the API and the console (loopback only).
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
}

impl Up {
    pub async fn run(self) -> anyhow::Result<()> {
        let dir_arg = self.data.as_arg();
        let data_dir = self.data.data_dir;
        if let Some(url) = &self.otlp {
            shop_app::obs::trace::export_to("shop", shop_local::otlp::exporter(url)?);
        }
        shop_app::obs::telemetry::init("shop");
        anyhow::ensure!(
            self.order_ttl > 0 && self.schedule_every > 0 && self.pg_timeout_ms > 0,
            "durations must be positive"
        );
        let config = Config {
            order_ttl_secs: self.order_ttl,
            reconcile_after_secs: self.reconcile_after,
            pg_timeout_ms: self.pg_timeout_ms,
            pg_webhook_secret: self.webhook_secret,
            ..Config::default()
        };
        let stack = Stack::start(StackOptions {
            data_dir: Some(data_dir.clone()),
            port: self.port,
            dynamodb_port: self.dynamodb_port,
            config,
            seed_if_new: if self.no_demo { None } else { Some(seed::Catalog::parse(seed::DEMO_CATALOG)?) },
            pg_port: self.pg_port,
            schedule_every: std::time::Duration::from_secs(self.schedule_every),
            webhook_backoff: std::time::Duration::from_millis(self.webhook_backoff_ms),
            va_due: std::time::Duration::from_secs(self.va_due),
            sink_port: self.sink_port,
            queues: shop_local::emulate::runner::QueueOptions {
                visibility: std::time::Duration::from_secs(self.visibility_timeout),
                max_receive: self.max_receive,
                ..Default::default()
            },
            chaos: self.chaos.map(|seed| shop_local::chaos::ChaosOptions {
                seed,
                every: std::time::Duration::from_millis(self.chaos_every_ms.max(1)),
                log: Some(data_dir.join(shop_local::bench::saga::chaos::LOG)),
            }),
            ..StackOptions::default()
        })
        .await?;
        println!("shop API on {} (data in {})", stack.url(), data_dir.display());
        println!("saga console on {}/console (sign in with an operator's token)", stack.url());
        println!("PG simulator on {} (its secret key: shop env)", stack.pg_url());
        println!("data-platform sink on {}", stack.sink_url());
        if let Some(a) = stack.dynamodb_addr {
            println!(
                "DynamoDB endpoint on http://{a} (table {}; SigV4 with this data dir's credentials: eval \"$(shop env{dir_arg} --dynamodb-port {})\")",
                stack.app.config.table_name,
                a.port()
            );
        }
        println!("tokens: shop token{dir_arg} --user u1 (a shopper), shop token{dir_arg} --operator (the console)");
        println!("try: curl -H \"Authorization: Bearer $(shop token{dir_arg} --user u1)\" {}/products", stack.url());
        if let Some(url) = &self.otlp {
            println!("spans to the OTLP collector at {url}");
        }
        shutdown_signal().await;
        stack.stop().await;
        shop_app::obs::trace::flush();
        Ok(())
    }
}
