//! `shop`'s command line: one file per command, each its clap arguments
//! and a `run` that calls the library (`shop_local`) and renders what it
//! returned. Nothing outside this directory imports from it: it is the
//! binary's, not the library's.
//!
//! What several commands share lives here: where the data is
//! ([`DataDir`], [`StackArg`], [`open_app`], [`target`]), how a report is
//! printed ([`Report`], [`print`]) and how a server waits for its end
//! ([`shutdown_signal`]).

mod audit;
mod bench;
mod bulk;
mod campaign;
mod console;
mod dlq;
mod dump;
mod env;
mod orders;
mod progress;
mod replay;
mod republish;
mod sale;
mod seed;
mod sim;
mod timeline;
mod token;
mod up;

use clap::{Parser, Subcommand};
use shop_app::App;
use shop_app::config::Config;
use shop_app::usecases::audit::Actor;
use shop_domain::audit::{Channel, Operator, Reason};
use shop_local::deployed::DeployedStack;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(name = "shop", about = "The shop backend on one machine: API, store, and operations")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API on 127.0.0.1 with the embedded store (loads the demo catalog into a new data dir).
    Up(up::Up),
    /// Serve the saga console over a deployed stack (its table, its SQS queues) on 127.0.0.1,
    /// read-only unless --allow-actions; prints an operator token for it.
    Console(console::Console),
    /// Print a development JWT for a user, signed with the data dir's secret.
    Token(token::Token),
    /// Print the data dir's credentials and endpoints as shell exports, for functions beside the stack
    /// (`eval "$(shop env --dynamodb-port 8000)"`, then `cargo lambda watch`).
    Env(env::Env),
    /// Measure the local stack (file-backed): order placement, or with --saga the whole saga, settled and checked,
    /// or with --sim the PG simulator and the data-platform sink alone.
    Bench(bench::Bench),
    /// The audit trail: every action taken by hand (console or `shop` commands), newest first.
    Audit(audit::Audit),
    /// Find orders by filters combined (status, stuck, consumer, method, time, user, correlation id):
    /// the console's Find page, as text, JSON or CSV.
    Orders(orders::Orders),
    /// Redrive, replay or ask the PG for every order the filters find, after a dry run (--dry-run);
    /// recorded in the audit trail.
    Bulk(bulk::Bulk),
    /// Dead-letter queues of the consumers.
    Dlq {
        #[command(subcommand)]
        command: dlq::Dlq,
    },
    /// Re-deliver archived events (as an EventBridge replay: events carry `replay-name`).
    Replay(replay::Replay),
    /// Publish outbox events again (consumers dedupe by event id): those written since a time,
    /// or with --from-failure-queue the windows of the stream publisher's OnFailure records.
    Republish(republish::Republish),
    /// The business state as one canonical JSON document (sorted; byte-identical for the same state):
    /// orders, payments, stock, coupons, points and ledgers, and with a data dir the PG simulator's
    /// payments and the data platform's deliveries by event id.
    Dump(dump::Dump),
    /// An order's saga: its events and every consumer's outcome.
    Timeline(timeline::Timeline),
    /// Load products, coupons and users from a catalog file (format: docs/local.md).
    Seed(seed::Seed),
    /// Run only the PG simulator and the data-platform sink, for a stack deployed elsewhere.
    Sim(sim::Sim),
    /// First-come coupon campaigns, from the command line (the API's
    /// operator route is `POST /campaigns`).
    Campaign {
        #[command(subcommand)]
        command: campaign::Campaign,
    },
    /// Flash sales behind the waiting room, from the command line (the
    /// API's operator route is `POST /sales`).
    Sale {
        #[command(subcommand)]
        command: sale::Sale,
    },
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Up(c) => c.run().await,
            Command::Console(c) => c.run().await,
            Command::Token(c) => c.run(),
            Command::Env(c) => c.run(),
            Command::Bench(c) => c.run().await,
            Command::Audit(c) => c.run().await,
            Command::Orders(c) => c.run().await,
            Command::Bulk(c) => c.run().await,
            Command::Dlq { command } => command.run().await,
            Command::Replay(c) => c.run().await,
            Command::Republish(c) => c.run().await,
            Command::Dump(c) => c.run().await,
            Command::Timeline(c) => c.run().await,
            Command::Seed(c) => c.run().await,
            Command::Sim(c) => c.run().await,
            Command::Campaign { command } => command.run().await,
            Command::Sale { command } => command.run().await,
        }
    }
}

/// Where the local stack keeps its data: one argument for every command.
#[derive(clap::Args)]
struct DataDir {
    /// The local stack's data directory (the embedded store, the simulators' state).
    #[arg(long = "data-dir", default_value = DEFAULT_DATA_DIR, env = "SHOP_DATA_DIR")]
    data_dir: PathBuf,
}

const DEFAULT_DATA_DIR: &str = ".shop-data";

impl DataDir {
    /// The argument that names this data dir in a printed command ("" for the default).
    fn as_arg(&self) -> String {
        match self.data_dir == Path::new(DEFAULT_DATA_DIR) {
            true => String::new(),
            false => format!(" --data-dir {}", self.data_dir.display()),
        }
    }
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
    async fn resolve(&self) -> anyhow::Result<Option<DeployedStack>> {
        match &self.name {
            Some(n) => Ok(Some(DeployedStack::resolve(n).await?)),
            None => Ok(None),
        }
    }
}

/// Who runs a command that changes state, and why: recorded in the audit
/// trail (`shop audit`, the console's Audit page) before the work starts.
#[derive(clap::Args)]
struct Acting {
    /// Your name, recorded in the audit trail (a data dir only: with --stack the AWS caller
    /// identity is recorded).
    #[arg(long, env = "SHOP_OPERATOR")]
    operator: Option<String>,
    /// Why, in a few words (required to act; recorded in the audit trail).
    #[arg(long)]
    reason: Option<String>,
}

impl Acting {
    /// The actor and the reason, on `stack` (its caller identity) or locally (`--operator`).
    async fn resolve(&self, stack: Option<&DeployedStack>) -> anyhow::Result<(Actor, Reason)> {
        let Some(reason) = &self.reason else { anyhow::bail!("say why: --reason TEXT (recorded in the audit trail)") };
        let reason = Reason::parse(reason.as_str())?;
        let (operator, where_) = match (stack, &self.operator) {
            (Some(_), Some(_)) => {
                anyhow::bail!("--operator names you on a data dir; with --stack the AWS caller identity is recorded")
            }
            (Some(s), None) => (s.caller_identity().await?, s.name.clone()),
            (None, Some(name)) => (name.clone(), "local".to_owned()),
            (None, None) => anyhow::bail!("name yourself for the audit trail: --operator NAME (or SHOP_OPERATOR)"),
        };
        Ok((Actor { operator: Operator::parse(operator)?, channel: Channel::Cli, stack: where_ }, reason))
    }
}

/// The deployed stack's table when `table` is given, else the local data dir.
async fn target(data_dir: &Path, table: Option<&str>) -> anyhow::Result<App> {
    match table {
        Some(t) => shop_app::adapters::aws::app_for_table(t).await,
        None => open_app(data_dir).await,
    }
}

/// The app on an existing data dir (`shop up` made it).
async fn open_app(data_dir: &Path) -> anyhow::Result<App> {
    anyhow::ensure!(data_dir.join("shop.db").exists(), "no data in {} (start `shop up` first)", data_dir.display());
    Ok(shop_local::open(Some(data_dir), Config::default(), None, None).await?.1)
}

/// A consumer, by the name that names its queue, its DLQ and its rule.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Consumer {
    Coupon,
    Compensation,
    Analytics,
    WaitingRoom,
}

impl Consumer {
    fn name(self) -> &'static str {
        use shop_app::events::consumers::{ANALYTICS, COMPENSATION, COUPON, WAITING_ROOM};
        match self {
            Consumer::Coupon => COUPON,
            Consumer::Compensation => COMPENSATION,
            Consumer::Analytics => ANALYTICS,
            Consumer::WaitingRoom => WAITING_ROOM,
        }
    }
}

/// What a command prints: the value as JSON with `--json`, else its text.
trait Report: serde::Serialize {
    fn text(&self) -> String;
}

fn print(json: bool, report: &impl Report) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_value(report)?);
    } else {
        println!("{}", report.text());
    }
    Ok(())
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Ctrl-C or SIGTERM.
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, ValueEnum};

    #[test]
    fn every_consumer_can_be_named_and_only_those() {
        let named: Vec<&str> = Consumer::value_variants().iter().map(|c| c.name()).collect();
        assert_eq!(named, shop_app::events::consumers::NAMES.to_vec());
    }

    /// `shop <command> --help` explains every argument of every command.
    #[test]
    fn every_argument_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(format!("{path} {} (the command itself)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "shop", &mut missing);
        assert!(missing.is_empty(), "arguments without --help text: {missing:#?}");
    }
}
