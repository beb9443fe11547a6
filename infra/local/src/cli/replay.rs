//! `shop replay`: archived events delivered again, as an EventBridge replay.

use super::{Acting, Consumer, DataDir, Report, StackArg, open_app, print};
use shop_app::clock::{Clock, SystemClock};
use shop_app::usecases::audit::{Intent, acted};
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
    #[command(flatten)]
    acting: Acting,
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
        let stack = self.stack.resolve().await?;
        let (actor, reason) = self.acting.resolve(stack.as_ref()).await?;
        let targets = vec![
            format!("archive:{}..{}", from.to_rfc3339(), to.to_rfc3339()),
            format!("queue:{}", consumer.unwrap_or("every consumer")),
        ];
        let intent = Intent { action: "events.replay", targets, reason: &reason };
        if let Some(stack) = stack {
            let app = stack.app().await?;
            let work = || deployed::replay(&stack, from, to, consumer);
            let report = acted(&app, &actor, intent, work, |r| format!("replay {} {}", r.replay_name, r.state)).await?;
            return print(self.json, &report);
        }
        let app = open_app(&self.data.data_dir).await?;
        let rules = shop_local::emulate::rules::rules()?;
        let work = || ops::replay(&app, &rules, from, to, consumer);
        let report = acted(&app, &actor, intent, work, |r| {
            format!("replay {}: {} event(s), {} delivery(ies)", r.replay_name, r.events, r.deliveries)
        })
        .await?;
        print(self.json, &report)
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
