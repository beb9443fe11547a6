//! `shop sim`: the PG simulator and the data-platform sink alone, for a
//! stack deployed elsewhere (the emulator deployment test's).

use super::shutdown_signal;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Sim {
    /// Port of the Toss-compatible PG simulator.
    #[arg(long, default_value_t = 3001)]
    pg_port: u16,
    /// Port of the data-platform sink.
    #[arg(long, default_value_t = 3002)]
    sink_port: u16,
    /// Where the PG simulator sends webhooks (the deployed API's /webhooks/pg).
    #[arg(long)]
    webhook_url: Option<String>,
    /// Sign the webhooks (`Pg-Signature`) with this secret.
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
    /// The PG simulator's secret key (what the deployed stack sends as Basic auth); default: the
    /// data dir's, or a fresh random one printed at start.
    #[arg(long, env = "PG_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
}

/// How long `shop sim`'s "timeout"/"slow" faults hold a call: past any
/// sensible client timeout of a deployed stack.
const SIM_STALL: std::time::Duration = std::time::Duration::from_secs(25);

impl Sim {
    pub async fn run(self) -> anyhow::Result<()> {
        shop_app::obs::telemetry::init("shop-sim");
        // A key drawn for this run is printed (nobody else knows it); one
        // given or kept in a data dir is not (it may be a deployment's).
        let (secret_key, drawn) = match (self.secret_key, &self.data_dir) {
            (Some(k), _) => (k, false),
            (None, Some(dir)) => (shop_local::secrets::Secrets::of_data_dir(dir)?.pg_secret_key, false),
            (None, None) => (shop_local::secrets::Secrets::random()?.pg_secret_key, true),
        };
        let sims = shop_local::Simulators::start(shop_local::SimulatorOptions {
            secret_key: secret_key.clone(),
            pg_port: self.pg_port,
            sink_port: self.sink_port,
            webhook_url: self.webhook_url,
            webhook_secret: self.webhook_secret,
            webhook_backoff: std::time::Duration::from_millis(self.webhook_backoff_ms),
            stall: SIM_STALL,
            delay: SIM_STALL / 8,
            clock: std::sync::Arc::new(shop_app::clock::SystemClock),
            data_dir: self.data_dir,
            va_due: std::time::Duration::from_secs(self.va_due),
            limits: shop_local::listen::Limits::with_max_body(shop_local::listen::JSON_BODY),
        })
        .await?;
        match drawn {
            true => println!("PG simulator on http://{} (secret key {secret_key})", sims.pg_addr),
            false => println!("PG simulator on http://{} (its secret key as given)", sims.pg_addr),
        }
        println!("data-platform sink on http://{}", sims.sink_addr);
        shutdown_signal().await;
        sims.stop().await;
        Ok(())
    }
}
