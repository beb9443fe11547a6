//! `shop dlq list|redrive`: the consumers' dead-letter queues, of the data
//! dir or of a deployed stack (`--stack`).

use super::{Acting, Consumer, DataDir, Report, StackArg, open_app, print};
use shop_app::usecases::audit::{Intent, acted};
use shop_local::deployed;
use shop_local::ops::{self, DlqEntry};

#[derive(clap::Subcommand)]
pub enum Dlq {
    /// Messages in the DLQs (of one consumer, or all); with --stack peeked without consuming them.
    List {
        /// Only this consumer's DLQ (default: all of them).
        #[arg(value_enum)]
        consumer: Option<Consumer>,
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        stack: StackArg,
        /// With --stack: at most this many messages per DLQ.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print the messages as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Move a consumer's DLQ messages back to its queue (with --stack: SQS StartMessageMoveTask).
    Redrive {
        /// The consumer whose DLQ goes back to its queue.
        #[arg(value_enum)]
        consumer: Consumer,
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        stack: StackArg,
        #[command(flatten)]
        acting: Acting,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
}

impl Dlq {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Dlq::List { consumer, data, stack, limit, json } => {
                let consumer = consumer.map(Consumer::name);
                let entries = match stack.resolve().await? {
                    Some(stack) => deployed::dlq_list(&stack, consumer, limit).await?,
                    None => ops::dlq_list(&open_app(&data.data_dir).await?, consumer).await?,
                };
                print(json, &Listed(entries))
            }
            Dlq::Redrive { consumer, data, stack, acting, json } => {
                let stack = stack.resolve().await?;
                let (actor, reason) = acting.resolve(stack.as_ref()).await?;
                let name = consumer.name();
                let queue = vec![format!("queue:{}", shop_local::emulate::queue::dlq_of(name))];
                match stack {
                    Some(stack) => {
                        let app = stack.app().await?;
                        let intent = Intent { action: "dlq.redrive", targets: queue, reason: &reason };
                        let work = || deployed::dlq_redrive(&stack, name);
                        let report = acted(&app, &actor, intent, work, |r| {
                            format!("{} message(s) moved back to {name} ({})", r.moved, r.status)
                        })
                        .await?;
                        print(json, &report)
                    }
                    None => {
                        let app = open_app(&data.data_dir).await?;
                        // The orders the DLQ holds now: what the redrive is about.
                        let held = ops::dlq_list(&app, Some(name)).await?;
                        let orders =
                            held.iter().filter(|m| !m.order_id.is_empty()).map(|m| format!("order:{}", m.order_id));
                        let targets = queue.into_iter().chain(orders).collect();
                        let intent = Intent { action: "dlq.redrive", targets, reason: &reason };
                        let work = || ops::dlq_redrive(&app, name);
                        let moved =
                            acted(&app, &actor, intent, work, |n| format!("{n} message(s) moved back to {name}"))
                                .await?;
                        print(json, &Redriven { consumer: name.to_owned(), moved })
                    }
                }
            }
        }
    }
}

#[derive(serde::Serialize)]
#[serde(transparent)]
struct Listed(Vec<DlqEntry>);

impl Report for Listed {
    fn text(&self) -> String {
        if self.0.is_empty() {
            return "no messages in the DLQs".to_owned();
        }
        let line = |e: &DlqEntry| {
            format!(
                "{:<13} {:<16} {:<40} receives={} {}",
                e.consumer,
                e.detail_type,
                e.event_id,
                e.receives,
                e.last_error.as_deref().unwrap_or("")
            )
        };
        self.0.iter().map(line).collect::<Vec<_>>().join("\n")
    }
}

#[derive(serde::Serialize)]
struct Redriven {
    consumer: String,
    moved: usize,
}

impl Report for Redriven {
    fn text(&self) -> String {
        format!("moved {} message(s) from {}-dlq back to {}", self.moved, self.consumer, self.consumer)
    }
}

impl Report for deployed::RedriveReport {
    fn text(&self) -> String {
        format!(
            "moved {} message(s) from {}'s DLQ back to its queue ({}, {})",
            self.moved, self.consumer, self.method, self.status
        )
    }
}
