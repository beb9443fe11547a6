//! `shop bench --saga --chaos`: the saga benchmark's workload and checks,
//! with the stack under attack.
//!
//! 1. The catalog is loaded into a fresh data dir.
//! 2. `shop up --chaos SEED` runs it **in a child process** (this same
//!    binary), so it can be killed for real: every fault class is injected
//!    at random from inside it ([`crate::chaos`]), and the driver SIGKILLs
//!    and restarts it `--kills` times, evenly spread over the load.
//! 3. Shoppers drive every order through the API and the PG simulator as a
//!    real client would through faults and restarts
//!    ([`super::client::drive_through_faults`]).
//! 4. After the load the child is stopped, and the stack is started in this
//!    process on the same data dir, faults cleared, to reach **quiescence**:
//!    every order terminal with every consumer done (the expiry, the
//!    reconciler and the PG's webhook retries finish what was in flight).
//!    Whatever sits in a DLQ is redriven, once, and must then settle.
//! 5. Every invariant of the saga benchmark is checked ([`super::check_all`])
//!    plus: nothing stuck (an order not settled after the redrive is
//!    reported as unsettled, a non-zero exit), nothing left in a queue or
//!    DLQ, every PG capture matched by a PAID order or cancelled.
//! 6. With `--replay-check`: `shop dump`, then the whole archive replayed
//!    and every event republished, each twice, and the dump must be
//!    byte-identical.

use super::check::{Delivery, Violations};
use super::mix::{self, Path};
use super::quiesce::{self, Wait, dead_letters, idle, placed, quiesce};
use super::report::unsettled_lines;
use super::{SCHEDULE, check_all, client, path_lines, seed_concurrently, unmetered};
use crate::dump::{Simulated, dump, text};
use crate::{Stack, StackOptions};
use futures::StreamExt;
use shop_app::config::Config;
use shop_store::Store;
use std::collections::BTreeMap;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Where `shop up --chaos` logs each injection, in its data dir.
pub const LOG: &str = "chaos.log";

/// Seconds a virtual account takes deposits during the soak: short, so the
/// accounts of shoppers who gave up expire within the run.
const VA_DUE_SECS: u64 = 10;
/// Payments in doubt (and waiting accounts) are asked about after this.
const RECONCILE_AFTER_SECS: i64 = 2;
const PG_TIMEOUT_MS: u64 = 500;
/// How long a restarted stack may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct ChaosRun {
    pub saga: super::SagaOptions,
    /// SIGKILL restarts during the load.
    pub kills: usize,
    /// One fault per this period.
    pub every: Duration,
    /// Replay and republish everything, twice each, and compare `shop dump`.
    pub replay_check: bool,
    /// The `shop` binary to run the stack with; `None`: this one.
    pub exe: Option<std::path::PathBuf>,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChaosReport {
    pub orders: usize,
    pub concurrency: usize,
    pub seed: u64,
    pub rate_limit: Option<f64>,
    /// SIGKILLs of the whole stack during the load, each followed by a restart.
    pub kills: usize,
    /// Seconds each restart took until the API answered.
    pub restart_secs: Vec<f64>,
    /// Faults injected, by class.
    pub faults: BTreeMap<String, u64>,
    pub faults_total: u64,
    pub load_secs: f64,
    /// Seconds from the end of the load until every order settled (after the redrive, if one was needed).
    pub quiesce_secs: f64,
    pub settled: usize,
    /// Orders still not settled once quiescence gave up (after the redrive):
    /// stuck, or slower than the bound; not checked, a non-zero exit.
    pub unsettled: usize,
    pub unsettled_examples: Vec<String>,
    /// Messages found in the DLQs at quiescence and redriven.
    pub redriven: usize,
    /// Analytics deliveries repeated after a consumer crashed between
    /// delivering and recording, each recognised by the data platform as a
    /// duplicate of its event id.
    pub analytics_redelivered: u64,
    /// Shoppers who could not finish their path (a decline on every attempt,
    /// a deposit after the account expired): an outcome under chaos, not a violation.
    pub gave_up: usize,
    pub gave_up_examples: Vec<String>,
    /// Orders planned on each path, and how they ended.
    pub paths: BTreeMap<Path, BTreeMap<&'static str, usize>>,
    pub replay_check: Option<ReplayCheck>,
    pub rss_mb_end: Option<f64>,
    pub violations: Violations,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayCheck {
    /// Archived events replayed (each time).
    pub replayed: usize,
    /// Outbox events republished (each time).
    pub republished: usize,
    /// Bytes of `shop dump`.
    pub dump_bytes: usize,
    pub identical: bool,
}

impl ChaosReport {
    /// No violation and nothing unsettled.
    pub fn ok(&self) -> bool {
        self.violations.total() == 0 && self.unsettled == 0
    }

    pub fn text(&self) -> String {
        let mut out = vec![
            format!(
                "chaos saga: {} orders (concurrency {}, seed {}{}); {} SIGKILL restart(s) ({})",
                self.orders,
                self.concurrency,
                self.seed,
                self.rate_limit.map(|r| format!(", at most {r}/s")).unwrap_or_default(),
                self.kills,
                self.restart_secs.iter().map(|s| format!("{s:.1}s")).collect::<Vec<_>>().join(", ")
            ),
            format!(
                "faults injected: {} ({})",
                self.faults_total,
                self.faults.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
            ),
            format!(
                "load {:.1}s; quiescence {:.1}s later; settled {} orders; {} DLQ message(s) redriven; {} analytics redelivery(ies) deduplicated by the platform",
                self.load_secs, self.quiesce_secs, self.settled, self.redriven, self.analytics_redelivered
            ),
            format!("shoppers who gave up: {}", self.gave_up),
        ];
        for e in &self.gave_up_examples {
            out.push(format!("  {e}"));
        }
        out.extend(path_lines(&self.paths));
        if let Some(r) = &self.replay_check {
            out.push(format!(
                "replay ×2 ({} events) and republish ×2 ({} events): shop dump ({} bytes) {}",
                r.replayed,
                r.republished,
                r.dump_bytes,
                if r.identical { "byte-identical" } else { "CHANGED" }
            ));
        }
        if let Some(mb) = self.rss_mb_end {
            out.push(format!("resident memory at the end: {mb:.0} MB"));
        }
        out.extend(unsettled_lines(self.unsettled, &self.unsettled_examples));
        out.extend(self.violations.lines());
        out.join("\n")
    }
}

/// The stack's configuration during the soak (the child's flags say the same).
fn config(order_ttl_secs: i64) -> Config {
    Config {
        order_ttl_secs,
        reconcile_after_secs: RECONCILE_AFTER_SECS,
        pg_timeout_ms: PG_TIMEOUT_MS,
        ..Config::default()
    }
}

/// Three free loopback ports (API, PG simulator, sink) for the child.
fn free_ports() -> anyhow::Result<[u16; 3]> {
    let listeners = [
        std::net::TcpListener::bind(("127.0.0.1", 0))?,
        std::net::TcpListener::bind(("127.0.0.1", 0))?,
        std::net::TcpListener::bind(("127.0.0.1", 0))?,
    ];
    let mut ports = [0; 3];
    for (p, l) in ports.iter_mut().zip(&listeners) {
        *p = l.local_addr()?.port();
    }
    Ok(ports)
}

/// `shop up --chaos` in a child process.
struct Child {
    exe: std::path::PathBuf,
    dir: std::path::PathBuf,
    ports: [u16; 3],
    order_ttl_secs: i64,
    every: Duration,
    seed: u64,
    process: Option<tokio::process::Child>,
}

impl Child {
    fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[0])
    }

    fn pg(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[1])
    }

    /// Starts the child (the `n`th start draws its faults from seed + n)
    /// and waits until its API answers; the seconds that took.
    async fn start(&mut self, n: u64) -> anyhow::Result<f64> {
        let started = Instant::now();
        let [port, pg_port, sink_port] = self.ports.map(|p| p.to_string());
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.arg("up")
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--port", &port, "--pg-port", &pg_port, "--sink-port", &sink_port, "--no-demo"])
            .args(["--order-ttl", &self.order_ttl_secs.to_string(), "--schedule-every", "1"])
            .args(["--reconcile-after", &RECONCILE_AFTER_SECS.to_string()])
            .args(["--pg-timeout-ms", &PG_TIMEOUT_MS.to_string(), "--webhook-backoff-ms", "50"])
            .args(["--va-due", &VA_DUE_SECS.to_string(), "--visibility-timeout", "1", "--max-receive", "5"])
            .args(["--chaos", &self.seed.wrapping_add(n).to_string()])
            .args(["--chaos-every-ms", &self.every.as_millis().to_string()])
            // The injected faults make the child log errors by design; quiet unless asked.
            .env("RUST_LOG", std::env::var("SHOP_CHAOS_LOG").unwrap_or_else(|_| "off".into()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true);
        self.process = Some(cmd.spawn()?);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(r) = http.get(format!("{}/openapi.json", self.api())).send().await
                && r.status().is_success()
            {
                return Ok(started.elapsed().as_secs_f64());
            }
            anyhow::ensure!(Instant::now() < deadline, "the restarted stack did not answer within {READY_TIMEOUT:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush; whatever was in flight is cut.
    async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut p) = self.process.take() {
            p.kill().await?;
        }
        Ok(())
    }

    /// SIGTERM and wait: the stack stops its loops and closes its files.
    async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut p) = self.process.take() else { return Ok(()) };
        if let Some(pid) = p.id() {
            let _ = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        }
        if tokio::time::timeout(Duration::from_secs(30), p.wait()).await.is_err() {
            p.kill().await?;
        }
        Ok(())
    }
}

pub async fn run(opts: ChaosRun) -> anyhow::Result<ChaosReport> {
    let saga = &opts.saga;
    anyhow::ensure!(saga.orders > 0 && saga.concurrency > 0, "orders and concurrency must be positive");
    anyhow::ensure!(saga.order_ttl_secs > 0, "the order TTL must be positive");
    anyhow::ensure!(saga.endpoint.is_none(), "the chaos soak runs on the embedded engine");
    let work = mix::workload(saga.orders, saga.seed)?;
    let progress = saga.progress.clone();
    progress.phase("seeding the catalog", 0);
    let dir = tempfile::tempdir()?;
    let stack = Stack::start(StackOptions { data_dir: Some(dir.path().to_owned()), ..StackOptions::default() }).await?;
    seed_concurrently(&stack, &work.catalog).await?;
    stack.stop().await;

    let mut child = Child {
        exe: match &opts.exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe()?,
        },
        dir: dir.path().to_owned(),
        ports: free_ports()?,
        order_ttl_secs: saga.order_ttl_secs,
        every: opts.every,
        seed: saga.seed,
        process: None,
    };
    child.start(0).await?;
    // The child reads the data dir's secrets; the load signs with the same key.
    let jwt_secret = crate::secrets::Secrets::of_data_dir(dir.path())?.jwt_secret;
    let to = client::Endpoints {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(saga.concurrency)
            .timeout(Duration::from_secs(30))
            .build()?,
        api: child.api(),
        pg: child.pg(),
        token: Arc::new(move |user: &str| {
            let now = shop_app::clock::Clock::now(&shop_app::clock::SystemClock);
            crate::jwt::issue(&jwt_secret, user, now.seconds(), 3600)
        }),
    };

    // The load, with the kills spread over it.
    let done = Arc::new(AtomicUsize::new(0));
    let (orders, kills) = (saga.orders, opts.kills);
    let driven = done.clone();
    let killer = tokio::spawn(async move {
        let mut restart_secs = Vec::with_capacity(kills);
        for k in 1..=kills {
            let at = orders * k / (kills + 1);
            while driven.load(Ordering::Relaxed) < at {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            child.kill().await?;
            restart_secs.push(child.start(k as u64).await?);
        }
        anyhow::Ok((child, restart_secs))
    });
    progress.phase("placing and paying under faults and kills", saga.orders as u64);
    let started = Instant::now();
    let rate = saga.rate.filter(|r| *r > 0.0);
    let runs: Vec<client::Run> = futures::stream::iter(work.plans.iter())
        .map(|plan| {
            let (to, done, progress) = (to.clone(), done.clone(), &progress);
            async move {
                if let Some(r) = rate {
                    tokio::time::sleep_until((started + Duration::from_secs_f64(plan.index as f64 / r)).into()).await;
                }
                let run = client::drive_through_faults(&to, plan).await;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                progress.update(n as u64, || format!("{n} orders driven through the faults and kills"));
                run
            }
        })
        .buffer_unordered(saga.concurrency)
        .collect()
        .await;
    let load_secs = started.elapsed().as_secs_f64();
    let (mut child, restart_secs) = killer.await??;
    child.stop().await?;
    let load_end = Instant::now();

    // Quiescence, in this process, faults off.
    let stack = Stack::start(StackOptions {
        data_dir: Some(dir.path().to_owned()),
        config: config(saga.order_ttl_secs),
        schedule_every: SCHEDULE,
        webhook_backoff: Duration::from_millis(50),
        va_due: Duration::from_secs(VA_DUE_SECS),
        queues: crate::emulate::runner::QueueOptions {
            visibility: Duration::from_secs(1),
            ..crate::emulate::runner::QueueOptions::default()
        },
        ..StackOptions::default()
    })
    .await?;
    stack.pg.clear_faults().await?;
    stack.sink.clear_faults().await?;
    let observer = Store::new(unmetered(&stack), stack.app.config.table_name.clone());
    let rules = crate::emulate::rules::rules()?;
    // Until every order settles: the last virtual accounts fall due, the
    // last orders expire, payments in doubt are reconciled. Whatever is in
    // a DLQ once the stack is otherwise idle is redriven, as an operator would.
    let wait = Duration::from_secs(VA_DUE_SECS.max(u64::try_from(saga.order_ttl_secs).unwrap_or(0)));
    let placed = placed(&runs);
    progress.phase("quiescence (faults off, DLQs redriven)", placed.len() as u64);
    let bound = Wait { stall: wait + saga.settle_timeout, redrive: Some(&stack) };
    let quiet = quiesce(&observer, &rules, placed, bound, &progress).await?;
    let quiesce_secs = load_end.elapsed().as_secs_f64();
    let unsettled_examples = quiesce::explain(&observer, &rules, &quiet.unsettled).await?;

    let mut v = Violations::default();
    progress.phase("checking every invariant", 0);
    let (paths, totals) =
        check_all(&stack, &observer, &rules, &work, &runs, &quiet.unsettled, Delivery::AcceptedOnce, &mut v).await?;
    if opts.replay_check {
        progress.phase("replaying the archive and republishing, twice", 0);
    }
    let replay_check = if opts.replay_check { Some(replay_check(&stack, &observer, &mut v).await?) } else { None };
    progress.finish();
    let rss_mb_end = crate::bench::rss_mb();
    stack.stop().await;

    let gave_up: Vec<&String> = runs.iter().filter_map(|r| r.error.as_ref()).collect();
    let faults = count_faults(dir.path())?;
    Ok(ChaosReport {
        orders: saga.orders,
        concurrency: saga.concurrency,
        seed: saga.seed,
        rate_limit: rate,
        kills: restart_secs.len(),
        restart_secs,
        faults_total: faults.values().sum(),
        faults,
        load_secs,
        quiesce_secs,
        settled: quiet.settled.len(),
        unsettled: quiet.unsettled.len(),
        unsettled_examples,
        redriven: quiet.redriven,
        analytics_redelivered: totals.redelivered,
        gave_up: gave_up.len(),
        gave_up_examples: gave_up.iter().take(5).map(|e| (*e).clone()).collect(),
        paths,
        replay_check,
        rss_mb_end,
        violations: v,
    })
}

/// Injections by class, from the child's log.
fn count_faults(dir: &FsPath) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut faults: BTreeMap<String, u64> = crate::chaos::fault_names().map(|n| (n.to_owned(), 0)).collect();
    let log = match std::fs::read_to_string(dir.join(LOG)) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e.into()),
    };
    for line in log.lines() {
        if let Some(n) = faults.get_mut(line) {
            *n += 1;
        }
    }
    Ok(faults)
}

/// Waits until nothing is pending publication and every queue is empty.
async fn drained(observer: &Store) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if idle(observer).await? {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "queues not drained after a replay");
        tokio::time::sleep(SCHEDULE).await;
    }
}

/// `shop dump`, then the whole archive replayed twice and every event
/// republished twice; the dump must not change by a byte.
async fn replay_check(stack: &Stack, observer: &Store, v: &mut Violations) -> anyhow::Result<ReplayCheck> {
    let sims = || Simulated { pg: Some(&stack.pg), sink: Some(&stack.sink) };
    let before = text(&dump(&stack.app, sims()).await?)?;
    let rules = crate::emulate::rules::rules()?;
    // The archive is dated by the system clock, the event log by the app's: the same here.
    let now = shop_app::clock::Clock::now(&shop_app::clock::SystemClock);
    let (from, to) = (now.plus_secs(-7 * 86_400), now.plus_secs(60));
    let (mut replayed, mut republished) = (0, 0);
    for _ in 0..2 {
        replayed = crate::ops::replay(&stack.app, &rules, from, to, None).await?.events;
        drained(observer).await?;
    }
    for _ in 0..2 {
        republished = crate::ops::republish(&stack.app, from).await?;
        drained(observer).await?;
    }
    let dead = dead_letters(observer).await?;
    if dead > 0 {
        v.add("replay left messages in a DLQ", || format!("{dead} message(s)"));
    }
    let after = text(&dump(&stack.app, sims()).await?)?;
    let identical = before == after;
    if !identical {
        v.add("shop dump changed by replay or republish", || {
            let line = before.lines().zip(after.lines()).position(|(a, b)| a != b).unwrap_or(0);
            format!("first difference at line {}", line + 1)
        });
    }
    Ok(ReplayCheck { replayed, republished, dump_bytes: before.len(), identical })
}
