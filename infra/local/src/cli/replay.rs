//! `shop replay`: archived events delivered again, as an EventBridge replay.

use super::{Consumer, DataDir, Report, StackArg, open_app, print};
use shop_app::clock::{Clock, SystemClock};
use shop_local::{deployed, ops};

#[derive(clap::Args)]
pub struct Replay {
    #[command(flatten)]
    data: DataDir,
    /// RFC 3339, or relative: -30m, -2h, -1d.
    #[arg(long, allow_hyphen_values = true)]
    from: String,
    /// RFC 3339, or relative; default now.
    #[arg(long, allow_hyphen_values = true)]
    to: Option<String>,
    /// Only to this consumer.
    #[arg(long, value_enum)]
    consumer: Option<Consumer>,
    #[command(flatten)]
    stack: StackArg,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

impl Replay {
    pub async fn run(self) -> anyhow::Result<()> {
        let now = SystemClock.now();
        let from = ops::parse_time(&self.from, now)?;
        let to = match &self.to {
            Some(t) => ops::parse_time(t, now)?,
            None => now.plus_secs(1),
        };
        let consumer = self.consumer.map(Consumer::name);
        if let Some(stack) = self.stack.resolve().await? {
            return print(self.json, &deployed::replay(&stack, from, to, consumer).await?);
        }
        let app = open_app(&self.data.data_dir).await?;
        let rules = shop_local::emulate::rules::rules()?;
        print(self.json, &ops::replay(&app, &rules, from, to, consumer).await?)
    }
}

impl Report for ops::ReplayReport {
    fn text(&self) -> String {
        format!(
            "replay {}: {} archived event(s), {} delivery(ies) queued",
            self.replay_name, self.events, self.deliveries
        )
    }
}

impl Report for deployed::ReplayReport {
    fn text(&self) -> String {
        format!(
            "replay {} {}: {} .. {} from {}{}",
            self.replay_name,
            self.state,
            self.from,
            self.to,
            self.archive_arn,
            self.consumer.as_deref().map(|c| format!(" to {c}")).unwrap_or_default()
        )
    }
}
