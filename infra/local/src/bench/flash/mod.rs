//! `shop bench --flash-sale`: a rush of shoppers at a sale of limited stock
//! behind the waiting room (docs/waiting-room.md), through the whole saga.
//!
//! N seeded shoppers arrive in a burst and enter the sale's queue; a share
//! waits on the live WebSocket, the rest poll as `Retry-After` says; once
//! admitted each does what its behaviour draws ([`shopper::Behaviour`]):
//! pays by card or from points, leaves, idles until its session ends,
//! fails to pay, or lets its order expire; a few also try to order before
//! being admitted. A sampler reads the sale's figures every 200 ms while
//! it runs. After **quiescence** (no slot held, every order ended) the
//! invariants are checked against the store:
//!
//! - never more active shoppers than the capacity, at any instant sampled,
//!   and none at the end;
//! - admission in ticket order: no ticket admitted while a lower one that
//!   entered more than a second earlier still waited;
//! - one ticket per shopper at a distinct place; every admission counted
//!   once; every slot freed by a ticket that gave it back, once;
//! - no order of the gated product without its admission (every such
//!   order is its ticket's, carries the sale, and each cheat was refused);
//! - units sold = units in PAID orders; no oversell.
//!
//! Work still in flight when quiescence gives up is reported as unsettled,
//! never as a violation (exit 2); a violation exits 1.

mod shopper;

use crate::bench::saga::Percentiles;
use crate::{Stack, StackOptions, seed};
use futures::StreamExt;
use serde::Serialize;
use shop_app::config::Config;
use shop_domain::sale::{Place, Sale, SaleTerms, TicketStatus};
use shop_domain::{OrderStatus, ProductId, SaleId, UserId};
use shopper::{Behaviour, Endpoints, Outcome, Plan};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct FlashOptions {
    pub shoppers: usize,
    pub stock: u64,
    pub capacity: u32,
    pub max_rate: u32,
    pub session_secs: u32,
    pub order_ttl_secs: i64,
    /// The share of shoppers waiting on the WebSocket (the rest poll).
    pub live_share: f64,
    /// HTTP requests in flight at most (waiting shoppers hold none).
    pub concurrency: usize,
    pub seed: u64,
    /// A shopper gives up waiting after this long.
    pub patience: Duration,
    /// Quiescence gives up when nothing moved for this long.
    pub settle_timeout: Duration,
    /// The PG slowed down (every confirm delayed by a quarter of the PG
    /// timeout) from this long after the burst starts, for this long: the
    /// adaptive admission's test.
    pub slow_pg: Option<(Duration, Duration)>,
    /// Where the run's store stays after it (a new directory), instead of
    /// a temporary one: `shop up --data-dir` opens it on the console.
    pub keep_data_dir: Option<std::path::PathBuf>,
    pub progress: crate::bench::progress::Reporter,
}

/// The sale and its product.
const SALE: &str = "flash";
const PRODUCT: &str = "flash-item";
/// The admitter's period in the benchmark (AWS: 1 s; each step admits at
/// most 99, so a ceiling above 99 a second needs shorter passes).
const ADMIT_EVERY: Duration = Duration::from_millis(250);
/// The scheduler (order expiry) in the benchmark.
const SCHEDULE: Duration = Duration::from_millis(250);
/// Points given to the shoppers who pay from points.
const POINTS: i128 = 1_000_000;
const PRICE: i128 = 10_000;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlashReport {
    /// The run's store, when kept (`--keep-data-dir`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_data_dir: Option<String>,
    pub shoppers: usize,
    pub stock: u64,
    pub capacity: u32,
    pub max_admissions_per_sec: u32,
    pub session_secs: u32,
    /// The WebSocket share used: the one asked for, or less where the
    /// open-file limit holds fewer sockets.
    pub live_share: f64,
    pub live_share_asked: f64,
    pub seed: u64,
    /// Entries answered per second over the burst.
    pub entries_per_sec: f64,
    pub entry_secs: f64,
    /// From the entry's answer to the admission seen, by position decile
    /// (of the places of those admitted).
    pub wait_ms: Percentiles,
    pub wait_ms_by_decile: Vec<Percentiles>,
    pub admitted: u64,
    pub freed: u64,
    pub sold_out_shoppers: usize,
    /// Admitted shoppers who learnt of it after their session ended
    /// (polling under load): refused, as they must be.
    pub missed_session: usize,
    /// Admitted shoppers who paid after their order's payment window
    /// (`--order-ttl`): refused, as they must be.
    pub paid_too_late: usize,
    pub gave_up: usize,
    /// The most shoppers holding a slot at one sample (every 200 ms).
    pub max_active_observed: u64,
    pub samples: usize,
    /// From the first entry to the sale seen sold out (`None`: it was not).
    pub sold_out_after_secs: Option<f64>,
    pub units_sold: u64,
    pub paid_orders: usize,
    pub by_behaviour: BTreeMap<String, usize>,
    pub polls: u64,
    pub pushes: u64,
    pub cheats_refused: usize,
    /// The lowest admission rate the adaptive rule chose during the sale.
    pub min_rate: f64,
    /// With a slow PG: the phases (before, while slow, after) — the
    /// admission rate the rule chose and the shoppers' time from order to
    /// paid in each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Phase>,
    /// The saga's time to settle p99 over the sale (bucket bound, ms).
    pub settle_p99_ms: Option<i64>,
    pub rss_mb_start: Option<f64>,
    pub rss_mb_end: Option<f64>,
    pub total_secs: f64,
    pub quiesce_secs: f64,
    pub unsettled: usize,
    pub violations: BTreeMap<String, Vec<String>>,
}

impl FlashReport {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn text(&self) -> String {
        let mut out = format!(
            "flash sale: {} shoppers ({:.0} % on WebSocket, seed {}) at {} units, {} at once, ≤ {} admissions/s, {} s sessions\n",
            self.shoppers,
            self.live_share * 100.0,
            self.seed,
            self.stock,
            self.capacity,
            self.max_admissions_per_sec,
            self.session_secs
        );
        out += &format!(
            "entries: {:.0}/s ({:.1} s for all); admitted {}, freed {}; sold out for {} shoppers; {} missed their session, {} paid too late; {} gave up\n",
            self.entries_per_sec,
            self.entry_secs,
            self.admitted,
            self.freed,
            self.sold_out_shoppers,
            self.missed_session,
            self.paid_too_late,
            self.gave_up
        );
        out += &format!(
            "wait entry → admission: p50 {:.0} ms, p99 {:.0} ms (n {}); by position decile p99: {}\n",
            self.wait_ms.p50,
            self.wait_ms.p99,
            self.wait_ms.n,
            self.wait_ms_by_decile.iter().map(|p| format!("{:.0}", p.p99)).collect::<Vec<_>>().join(" ")
        );
        out += &format!(
            "max active observed {} of {} ({} samples); sold out after {}; {} units sold in {} paid orders\n",
            self.max_active_observed,
            self.capacity,
            self.samples,
            self.sold_out_after_secs.map_or("—".to_owned(), |s| format!("{s:.1} s")),
            self.units_sold,
            self.paid_orders
        );
        out += &format!(
            "polls {}, pushes {}; cheats refused {}; lowest admission rate {:.1}/s; saga settle p99 {}; RSS {} → {} MB\n",
            self.polls,
            self.pushes,
            self.cheats_refused,
            self.min_rate,
            self.settle_p99_ms.map_or("—".to_owned(), |ms| format!("≤ {ms} ms")),
            self.rss_mb_start.map_or("—".to_owned(), |m| format!("{m:.0}")),
            self.rss_mb_end.map_or("—".to_owned(), |m| format!("{m:.0}"))
        );
        out += &format!(
            "total {:.1} s (quiescence {:.1} s); unsettled {}\n",
            self.total_secs, self.quiesce_secs, self.unsettled
        );
        for p in &self.phases {
            out += &format!(
                "  {:<8} {:>6.1}–{:>6.1} s: admission rate lowest {:.1}/s, last {:.1}/s; {} admitted; order → paid p50 {:.0} ms, p99 {:.0} ms (n {})\n",
                p.name,
                p.from_secs,
                p.to_secs,
                p.min_rate,
                p.last_rate,
                p.admitted,
                p.order_to_paid_ms.p50,
                p.order_to_paid_ms.p99,
                p.order_to_paid_ms.n
            );
        }
        if self.violations.is_empty() {
            out += "invariants: all hold\n";
        } else {
            for (what, examples) in &self.violations {
                out += &format!(
                    "VIOLATION {what}: {} ({})\n",
                    examples.len(),
                    examples.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
                );
            }
        }
        if let Some(dir) = &self.kept_data_dir {
            out += &format!(
                "store kept: shop up --data-dir {dir}, then /console/sales (sign in with shop token --data-dir {dir} --operator)\n"
            );
        }
        out
    }
}

/// One phase of a run with a slow PG.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Phase {
    pub name: &'static str,
    pub from_secs: f64,
    pub to_secs: f64,
    /// The admission rate in force: lowest and last sampled.
    pub min_rate: f64,
    pub last_rate: f64,
    pub admitted: u64,
    /// Order placed → PAID, as the shoppers who paid in the phase saw it.
    pub order_to_paid_ms: Percentiles,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The process's open-file limit (Linux), from `/proc/self/limits`.
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The share of shoppers that can wait on a WebSocket here: each holds
/// two descriptors (the client's and the server's), beside the requests
/// in flight (two each) and the stack's own files.
fn live_share_possible(opts: &FlashOptions) -> f64 {
    let Some(limit) = open_file_limit() else { return opts.live_share };
    let room = limit.saturating_sub(2 * opts.concurrency + 1_000) / 2;
    opts.live_share.min(room as f64 / opts.shoppers.max(1) as f64)
}

fn plans(opts: &FlashOptions) -> Vec<Plan> {
    (0..opts.shoppers)
        .map(|i| {
            let draw = splitmix(opts.seed ^ (i as u64).wrapping_mul(0x0100_0000_01b3));
            Plan {
                index: i,
                user: format!("fan{i:06}"),
                behaviour: Behaviour::of(draw),
                live: ((draw >> 8) % 10_000) as f64 / 10_000.0 < opts.live_share,
                cheats: (draw >> 24).is_multiple_of(100),
            }
        })
        .collect()
}

/// One sample of the sale's figures.
struct Sample {
    at_ms: f64,
    active: u64,
    admitted: u64,
    rate: f64,
    sold_out: bool,
}

pub async fn run(opts: FlashOptions) -> anyhow::Result<FlashReport> {
    anyhow::ensure!(opts.shoppers > 0 && opts.concurrency > 0, "shoppers and concurrency must be positive");
    let asked_live_share = opts.live_share;
    let opts = FlashOptions { live_share: live_share_possible(&opts), ..opts };
    let plans = plans(&opts);
    // A temporary store is deleted when `_temporary` drops, after the checks.
    let (data_dir, _temporary) = crate::bench::data_dir(opts.keep_data_dir.as_deref())?;
    let stack = Stack::start(StackOptions {
        data_dir: Some(data_dir.clone()),
        config: Config { order_ttl_secs: opts.order_ttl_secs, ..Config::default() },
        schedule_every: SCHEDULE,
        admit_every: ADMIT_EVERY,
        // Every shopper's connection at once, and the WebSockets held open.
        limits: crate::listen::Limits {
            max_connections: opts.shoppers.max(1024) * 2,
            ..StackOptions::default().limits
        },
        ..StackOptions::default()
    })
    .await?;
    let progress = opts.progress.clone();
    progress.phase("seeding the product and the points payers", 0);
    let catalog = seed::Catalog {
        products: vec![seed::CatalogProduct {
            id: ProductId::parse(PRODUCT)?,
            name: "Flash-sale item".into(),
            price: shop_domain::Money::new(PRICE)?,
            stock: opts.stock,
        }],
        coupons: vec![],
        users: plans
            .iter()
            .filter(|p| p.behaviour == Behaviour::Points)
            .map(|p| Ok(seed::CatalogUser { id: UserId::parse(&p.user)?, points: shop_domain::Money::new(POINTS)? }))
            .collect::<anyhow::Result<_>>()?,
        campaigns: vec![],
        sales: vec![],
    };
    crate::bench::saga::seed_concurrently(&stack, &catalog).await?;
    let now = stack.app.clock.now();
    let terms = SaleTerms::new(
        "Flash sale".into(),
        vec![ProductId::parse(PRODUCT)?],
        now,
        now.plus_secs(24 * 3600),
        u64::from(opts.capacity),
        u64::from(opts.max_rate),
        u64::from(opts.session_secs),
        None,
    )?;
    let sale_id = SaleId::parse(SALE)?;
    let sale = Sale::new(sale_id.clone(), terms, opts.seed);
    shop_app::usecases::sales::create_sale(&stack.app, &sale).await.map_err(anyhow::Error::from)?;

    let secret = stack.secrets.jwt_secret.clone();
    let clock = stack.app.clock.clone();
    let to = Arc::new(Endpoints {
        http: reqwest::Client::builder().pool_max_idle_per_host(opts.concurrency).build()?,
        api: stack.url(),
        live: format!("{}/live", stack.url().replacen("http://", "ws://", 1)),
        pg: stack.pg_url(),
        sale: SALE.into(),
        product: PRODUCT.into(),
        token: Box::new(move |user: &str| crate::jwt::issue(&secret, user, clock.now().seconds(), 24 * 3600)),
        gate: tokio::sync::Semaphore::new(opts.concurrency),
        polls: tokio::sync::Semaphore::new((opts.concurrency / 4).max(1)),
        patience: opts.patience,
    });

    // The sampler: the sale's figures every 200 ms while the shoppers run.
    let rss_mb_start = crate::bench::rss_mb();
    let started = Instant::now();
    let sale_start = stack.app.clock.now();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sampler = {
        let app = stack.app.clone();
        let id = sale_id.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    _ = tick.tick() => {}
                }
                if let Ok(Some(s)) = shop_app::usecases::sales::status(&app, &id).await {
                    samples.push(Sample {
                        at_ms: started.elapsed().as_secs_f64() * 1000.0,
                        active: s.active,
                        admitted: s.sale.admitted,
                        rate: s.sale.rate,
                        sold_out: s.sale.sold_out,
                    });
                }
            }
            samples
        })
    };

    // The slow PG, if asked for: armed and cleared on the burst's clock.
    let slowdown = opts.slow_pg.map(|(at, length)| {
        let pg = stack.pg.clone();
        tokio::spawn(async move {
            tokio::time::sleep(at).await;
            let fault = crate::sim::pg::Fault {
                op: crate::sim::pg::Op::Confirm,
                fault: crate::sim::pg::FaultKind::Delay,
                count: -1,
            };
            if let Err(e) = pg.arm(fault).await {
                tracing::warn!(error = %e, "could not slow the PG down");
            }
            tokio::time::sleep(length).await;
            if let Err(e) = pg.clear_faults().await {
                tracing::warn!(error = %e, "could not speed the PG up again");
            }
        })
    });

    // The burst: every shopper at once.
    progress.phase("shoppers entering, waiting and buying", opts.shoppers as u64);
    let done = std::sync::atomic::AtomicU64::new(0);
    let runs: Vec<shopper::Run> = futures::stream::iter(plans.iter().cloned())
        .map(|plan| {
            let (to, done, progress) = (to.clone(), &done, &progress);
            async move {
                let run = shopper::shop(&to, plan, started).await;
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                progress.update(n, || format!("{n} shoppers done"));
                run
            }
        })
        .buffer_unordered(opts.shoppers)
        .collect()
        .await;

    // Quiescence: every slot freed (sessions ended, orders ended).
    progress.phase("quiescence (sessions and orders ending)", 0);
    let quiet_started = Instant::now();
    let mut last_move = Instant::now();
    let mut last = None;
    let mut open: Vec<shop_domain::OrderId> = runs
        .iter()
        .filter_map(|r| r.order_id.as_deref())
        .filter_map(|id| shop_domain::OrderId::parse(id).ok())
        .collect();
    let unsettled = loop {
        let s =
            shop_app::usecases::sales::status(&stack.app, &sale_id).await?.ok_or_else(|| anyhow::anyhow!("no sale"))?;
        open = still_open(&stack, open).await?;
        let pending = open.len();
        if s.active == 0 && pending == 0 {
            break 0;
        }
        let now = (s.active, pending, s.sale.admitted);
        if last != Some(now) {
            last = Some(now);
            last_move = Instant::now();
        }
        if last_move.elapsed() > opts.settle_timeout {
            break usize::try_from(s.active).unwrap_or(usize::MAX).max(pending);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let quiesce_secs = quiet_started.elapsed().as_secs_f64();
    let _ = stop_tx.send(());
    let samples = sampler.await.unwrap_or_default();
    if let Some(s) = slowdown {
        s.abort();
        let _ = stack.pg.clear_faults().await;
    }
    let rss_mb_end = crate::bench::rss_mb();
    progress.phase("checking every invariant", 0);
    let mut v = Violations::default();
    let checked = check(&stack, &opts, &sale_id, &runs, unsettled, &mut v).await?;
    let health = stack.app.store.stats().between(sale_start, stack.app.clock.now()).await?;
    let mut settled = shop_store::stats::Values::new();
    for m in health.values() {
        for (k, n) in m.iter().filter(|(k, _)| k.starts_with(shop_app::obs::stats::SETTLE)) {
            *settled.entry(k.clone()).or_default() += *n;
        }
    }
    progress.finish();
    stack.stop().await;

    for r in &runs {
        for w in &r.wrong {
            v.add("a shopper was answered wrong", || w.clone());
        }
    }
    let max_active_observed = samples.iter().map(|s| s.active).max().unwrap_or(0);
    if max_active_observed > u64::from(opts.capacity) {
        v.add("more active shoppers than the capacity", || format!("{max_active_observed} sampled"));
    }
    let entries: Vec<f64> = runs.iter().filter_map(|r| r.entered_ms).collect();
    let entry_secs = entries.iter().copied().fold(0.0, f64::max) / 1000.0;
    let waits: Vec<(Place, f64)> =
        runs.iter().filter_map(|r| Some((*checked.places.get(&r.plan.user)?, r.waited_ms?))).collect();
    let mut by_place = waits.clone();
    by_place.sort_by_key(|(place, _)| *place);
    // Ten deciles of the places, the remainder of the division in the last.
    let n = by_place.len();
    let wait_ms_by_decile = (0..10)
        .filter_map(|d| by_place.get(d * n / 10..(d + 1) * n / 10).filter(|c| !c.is_empty()))
        .map(|c| Percentiles::of(c.iter().map(|(_, w)| *w).collect()))
        .collect();
    let phases = match opts.slow_pg {
        Some((at, length)) => {
            let (a, b) = (at.as_secs_f64() * 1000.0, (at + length).as_secs_f64() * 1000.0);
            [("before", 0.0, a), ("PG slow", a, b), ("after", b, f64::MAX)]
                .into_iter()
                .map(|(name, from, to)| phase(name, from, to, &samples, &runs))
                .collect()
        }
        None => Vec::new(),
    };
    let mut by_behaviour = BTreeMap::new();
    for r in runs.iter().filter(|r| r.outcome == Outcome::Admitted) {
        *by_behaviour.entry(format!("{:?}", r.plan.behaviour)).or_default() += 1;
    }
    Ok(FlashReport {
        kept_data_dir: opts.keep_data_dir.as_ref().map(|d| d.display().to_string()),
        shoppers: opts.shoppers,
        stock: opts.stock,
        capacity: opts.capacity,
        max_admissions_per_sec: opts.max_rate,
        session_secs: opts.session_secs,
        live_share: opts.live_share,
        live_share_asked: asked_live_share,
        seed: opts.seed,
        entries_per_sec: entries.len() as f64 / entry_secs.max(1e-3),
        entry_secs,
        wait_ms: Percentiles::of(waits.iter().map(|(_, w)| *w).collect()),
        wait_ms_by_decile,
        admitted: checked.admitted,
        freed: checked.freed,
        sold_out_shoppers: runs.iter().filter(|r| r.outcome == Outcome::SoldOut).count(),
        missed_session: runs.iter().filter(|r| r.outcome == Outcome::MissedSession).count(),
        paid_too_late: runs.iter().filter(|r| r.outcome == Outcome::PaidTooLate).count(),
        gave_up: runs.iter().filter(|r| r.outcome == Outcome::GaveUp).count(),
        max_active_observed,
        samples: samples.len(),
        sold_out_after_secs: samples.iter().find(|s| s.sold_out).map(|s| s.at_ms / 1000.0),
        units_sold: checked.units_sold,
        paid_orders: checked.paid,
        by_behaviour,
        polls: runs.iter().map(|r| r.polls).sum(),
        pushes: runs.iter().map(|r| r.pushes).sum(),
        cheats_refused: runs.iter().filter(|r| r.cheat_refused).count(),
        min_rate: samples.iter().map(|s| s.rate).fold(f64::INFINITY, f64::min).min(f64::from(opts.max_rate)),
        phases,
        settle_p99_ms: shop_app::obs::stats::settle_quantile(&settled, 0.99),
        rss_mb_start,
        rss_mb_end,
        total_secs: started.elapsed().as_secs_f64(),
        quiesce_secs,
        unsettled,
        violations: v.0,
    })
}

fn phase(name: &'static str, from_ms: f64, to_ms: f64, samples: &[Sample], runs: &[shopper::Run]) -> Phase {
    let inside: Vec<&Sample> = samples.iter().filter(|s| s.at_ms >= from_ms && s.at_ms < to_ms).collect();
    let admitted = match (inside.first(), inside.last()) {
        (Some(a), Some(b)) => b.admitted.saturating_sub(a.admitted),
        _ => 0,
    };
    Phase {
        name,
        from_secs: from_ms / 1000.0,
        to_secs: inside.last().map_or(from_ms, |s| s.at_ms) / 1000.0,
        min_rate: inside.iter().map(|s| s.rate).fold(f64::INFINITY, f64::min),
        last_rate: inside.last().map_or(0.0, |s| s.rate),
        admitted,
        order_to_paid_ms: Percentiles::of(
            runs.iter()
                .filter_map(|r| r.paid_at)
                .filter(|(placed, _)| *placed >= from_ms && *placed < to_ms)
                .map(|(_, took)| took)
                .collect(),
        ),
    }
}

/// Those of `orders` still PENDING_PAYMENT or CONFIRMING.
async fn still_open(stack: &Stack, orders: Vec<shop_domain::OrderId>) -> anyhow::Result<Vec<shop_domain::OrderId>> {
    let mut open = Vec::with_capacity(orders.len());
    for id in orders {
        let order = stack.app.store.orders().get(&id).await?;
        if order.is_some_and(|o| matches!(o.status, OrderStatus::PendingPayment | OrderStatus::Confirming)) {
            open.push(id);
        }
    }
    Ok(open)
}

#[derive(Default)]
struct Violations(BTreeMap<String, Vec<String>>);

impl Violations {
    fn add(&mut self, what: &str, example: impl FnOnce() -> String) {
        let list = self.0.entry(what.to_owned()).or_default();
        if list.len() < 20 {
            list.push(example());
        }
    }
}

struct Checked {
    places: HashMap<String, Place>,
    admitted: u64,
    freed: u64,
    units_sold: u64,
    paid: usize,
}

/// The invariants over the store as the sale left it (module docs).
async fn check(
    stack: &Stack,
    opts: &FlashOptions,
    sale_id: &SaleId,
    runs: &[shopper::Run],
    unsettled: usize,
    v: &mut Violations,
) -> anyhow::Result<Checked> {
    let store = &stack.app.store;
    let sale = store.sales().get(sale_id).await?.ok_or_else(|| anyhow::anyhow!("no sale"))?;
    let freed = store.sales().freed(sale_id).await?;
    let mut places = HashMap::new();
    let mut seen = HashSet::new();
    let (mut with_admission, mut gave_back, mut holding) = (0u64, 0u64, 0u64);
    // (admitted at, place) and (entered at, place, admitted at) for the order check.
    let mut steps: BTreeMap<i64, Place> = BTreeMap::new();
    let mut tickets = Vec::new();
    for r in runs.iter().filter(|r| r.entered_ms.is_some()) {
        let Some(t) = store.sales().ticket(sale_id, &UserId::parse(&r.plan.user)?).await? else {
            v.add("an entered shopper has no ticket", || r.plan.user.clone());
            continue;
        };
        if !seen.insert(t.place) {
            v.add("two tickets at one place", || format!("{:?}", t.place));
        }
        places.insert(r.plan.user.clone(), t.place);
        if let Some(a) = &t.admission {
            with_admission += 1;
            let top = steps.entry(a.admitted_at.millis()).or_insert(t.place);
            *top = (*top).max(t.place);
            match t.status {
                TicketStatus::Admitted | TicketStatus::Ordered => holding += 1,
                TicketStatus::Done | TicketStatus::Left | TicketStatus::Expired => gave_back += 1,
                TicketStatus::Waiting => v.add("an admission on a waiting ticket", || r.plan.user.clone()),
            }
        }
        tickets.push((t.entered_at.millis(), t.place, t.admission.as_ref().map(|a| a.admitted_at.millis())));
        if let (Some(order), Some(placed)) = (&t.order, &r.order_id)
            && order.as_str() != placed
        {
            v.add("a ticket holds another order than its shopper placed", || {
                format!("{} {order} {placed}", r.plan.user)
            });
        }
    }
    if sale.admitted != with_admission {
        v.add("admissions counted not once", || {
            format!("{} counted, {with_admission} tickets admitted", sale.admitted)
        });
    }
    if unsettled == 0 {
        if freed != gave_back {
            v.add("slots freed not once", || format!("{freed} freed, {gave_back} tickets gave one back"));
        }
        if holding != 0 {
            v.add("a slot held after quiescence", || format!("{holding} tickets still hold one"));
        }
    }
    // Admission order: no step admitted a place above a ticket that had
    // entered more than a second before it and was still waiting.
    let step_list: Vec<(i64, Place)> = steps.into_iter().collect();
    for (entered, place, admitted) in &tickets {
        // The steps after its entry (+1 s) and before its own admission.
        let from = step_list.partition_point(|(at, _)| *at <= entered + 1_000);
        let to = admitted.map_or(step_list.len(), |a| step_list.partition_point(|(at, _)| *at < a));
        if from < to
            && let Some(m) = step_list[from..to].iter().map(|(_, p)| *p).max()
            && m > *place
        {
            v.add("admitted out of ticket order", || format!("{place:?} waited while {m:?} was admitted"));
        }
    }
    // Orders: each placed with its admission, in the sale; units sold = PAID units.
    let mut paid = 0;
    let mut units_paid = 0u64;
    for r in runs {
        let Some(id) = &r.order_id else { continue };
        let Some(o) = store.orders().get(&shop_domain::OrderId::parse(id)?).await? else {
            v.add("an answered order is not in the store", || id.clone());
            continue;
        };
        if o.sale_id.as_ref() != Some(sale_id) {
            v.add("an order of the gated product outside the sale", || id.clone());
        }
        if o.status == OrderStatus::Paid {
            paid += 1;
            units_paid += o.lines.iter().map(|l| u64::from(l.quantity.get())).sum::<u64>();
        }
    }
    let left = store.catalog().product(&ProductId::parse(PRODUCT)?).await?.map_or(0, |p| p.available);
    let units_sold = opts.stock.saturating_sub(left);
    if unsettled == 0 && units_sold != units_paid {
        v.add("units sold are not the units in PAID orders", || format!("{units_sold} sold, {units_paid} paid"));
    }
    if units_paid > opts.stock {
        v.add("oversold", || format!("{units_paid} paid of {}", opts.stock));
    }
    Ok(Checked { places, admitted: sale.admitted, freed, units_sold, paid })
}
