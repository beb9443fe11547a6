//! `shop republish`: outbox events marked for publishing again.

use super::{Acting, DataDir, Report, StackArg, print, target};
use shop_app::clock::{Clock, SystemClock};
use shop_app::usecases::audit::{Intent, acted};
use shop_local::{deployed, ops};

#[derive(clap::Args)]
pub struct Republish {
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
    #[command(flatten)]
    acting: Acting,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

impl Republish {
    pub async fn run(self) -> anyhow::Result<()> {
        let stack = self.stack.resolve().await?;
        let (mut actor, reason) = self.acting.resolve(stack.as_ref()).await?;
        if let Some(table) = &self.table {
            actor.stack = format!("table:{table}");
        }
        let app = match &stack {
            Some(s) => s.app().await?,
            None => target(&self.data.data_dir, self.table.as_deref()).await?,
        };
        if let (Some(stack), true) = (&stack, self.from_failure_queue) {
            let intent = Intent {
                action: "events.republish-failures",
                targets: vec![format!("stack:{}", stack.name)],
                reason: &reason,
            };
            let report = acted(
                &app,
                &actor,
                intent,
                || deployed::republish_failures(stack),
                |r| format!("{} event(s) republished from {} failure record(s)", r.republished, r.records),
            )
            .await?;
            return print(self.json, &report);
        }
        let sender = if self.table.is_some() || stack.is_some() { "the stream publisher" } else { "`shop up`" };
        let since_arg = self.since.ok_or_else(|| anyhow::anyhow!("--since or --from-failure-queue"))?;
        let since = ops::parse_time(&since_arg, SystemClock.now())?;
        let intent = Intent {
            action: "events.republish",
            targets: vec![format!("since:{}", since.to_rfc3339())],
            reason: &reason,
        };
        let republished =
            acted(&app, &actor, intent, || ops::republish(&app, since), |n| format!("{n} event(s) pending again"))
                .await?;
        print(self.json, &Republished { republished, sender })
    }
}

#[derive(serde::Serialize)]
struct Republished {
    republished: usize,
    #[serde(skip)]
    sender: &'static str,
}

impl Report for Republished {
    fn text(&self) -> String {
        format!("{} outbox event(s) marked for publishing again; {} sends them", self.republished, self.sender)
    }
}

impl Report for deployed::RepublishReport {
    fn text(&self) -> String {
        format!(
            "{} failure record(s): {} window(s) read from the stream ({} record(s)), {} taken by time; \
             {} outbox event(s) marked for publishing again, {} record(s) deleted",
            self.records,
            self.windows_from_stream,
            self.stream_records,
            self.windows_by_time,
            self.republished,
            self.deleted
        )
    }
}
