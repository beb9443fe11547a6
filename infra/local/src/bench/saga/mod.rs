//! `shop bench --saga`: the whole saga through the local stack, measured.
//!
//! Seeded shoppers drive orders through the HTTP API and the PG simulator's
//! widget endpoints — card, virtual account + deposit, points; a share with
//! coupons and with points spent; some cancelled before payment, some
//! refunded after, some left to expire ([`mix`]). The run then waits for
//! **quiescence** ([`quiesce`]: every order settled, outbox and queues
//! drained, for as long as the measured settle rate says the backlog needs)
//! and only then checks what the product promises ([`check`]): stock
//! conserved, points balance = ledger, coupon USED iff its order is PAID,
//! every PG capture matched by a PAID order or cancelled, exactly one
//! analytics delivery per event, outbox and queues drained. Orders still in
//! flight at the bound are **unsettled**, reported apart and never checked
//! as if done. A violation or an unsettled order is a non-zero exit.
//! [`capacity`] searches for the highest open-loop rate the stack settles
//! within a second.
//!
//! Numbers come from the stored timestamps (settlement) and from the meter
//! on the stack's store client ([`crate::engine::Meter`]: calls, capacity
//! units; the checks read through a client of their own, not counted). With
//! `--engine dynamodb-local` the same run is made on the embedded engine and
//! on DynamoDB Local, and both reports are printed with their ratio
//! ([`compare`]).

pub mod capacity;
pub mod chaos;
mod check;
mod client;
mod mix;
mod pricing;
mod probes;
mod quiesce;
mod report;

pub use pricing::AwsModel;
pub use probes::CONSOLE_LOADS;
use probes::{console_latency, engine_limit};
use report::path_lines;
pub use report::{Comparison, Percentiles, Report, exit_code};

use crate::emulate::queue::{Queues, dlq_of};
use crate::engine::{Capacity, Meter, Usage};
use crate::seed;
use crate::sim::db::Page;
use crate::{Stack, StackOptions};
use check::{Seen, Settled, Totals, Violations};
use client::Endpoints;
use futures::StreamExt;
use mix::Path;
use quiesce::{Wait, placed, quiesce};
use shop_app::config::Config;
use shop_domain::OrderId;
use shop_store::Store;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct SagaOptions {
    pub orders: usize,
    pub concurrency: usize,
    pub seed: u64,
    /// Start at most this many orders per second (open loop); `None`: as fast as the shoppers go.
    pub rate: Option<f64>,
    /// Seconds an unpaid order stays payable (the expiring share waits this long).
    pub order_ttl_secs: i64,
    /// Quiescence gives up when nothing settled for this long (its bound
    /// otherwise follows the measured settle rate; [`quiesce`]).
    pub settle_timeout: Duration,
    /// The store on this DynamoDB endpoint instead of the embedded engine.
    pub endpoint: Option<String>,
    /// Told how far the run got (the command line draws it).
    pub progress: crate::bench::progress::Reporter,
    /// Keep the run's store in this new directory (else a temporary one),
    /// and say where the stack's console is while it runs.
    pub keep_data_dir: Option<std::path::PathBuf>,
}

/// Write units DynamoDB bills per KB of an item written in a transaction,
/// over those of the same item written alone (the developer guide's
/// "transactional write requests require 2 write capacity units").
pub(super) const AWS_TRANSACTION_WRITE_FACTOR: f64 = 2.0;

/// How often the scheduler (expiry, reconciliation) runs during the benchmark.
const SCHEDULE: Duration = Duration::from_millis(250);

/// [`run`] on the embedded engine, then on the DynamoDB endpoint `endpoint`.
pub async fn compare(opts: SagaOptions, endpoint: String) -> anyhow::Result<Comparison> {
    let embedded = run(SagaOptions { endpoint: None, ..opts.clone() }).await?;
    let dynamodb_local = run(SagaOptions { endpoint: Some(endpoint), ..opts }).await?;
    let settled_per_sec_ratio = embedded.settled_per_sec / dynamodb_local.settled_per_sec.max(f64::MIN_POSITIVE);
    Ok(Comparison { embedded, dynamodb_local, settled_per_sec_ratio })
}

pub async fn run(opts: SagaOptions) -> anyhow::Result<Report> {
    run_with(opts, async |_: &Stack| anyhow::Ok(()), async |_: &Stack| anyhow::Ok(())).await
}

/// [`run`], with `before_load` run on the stack once the catalog is in,
/// and `before_checks` once it is quiescent (the tests arm faults or break
/// an invariant there and expect the report to say so).
async fn run_with(
    opts: SagaOptions,
    before_load: impl AsyncFnOnce(&Stack) -> anyhow::Result<()>,
    before_checks: impl AsyncFnOnce(&Stack) -> anyhow::Result<()>,
) -> anyhow::Result<Report> {
    anyhow::ensure!(opts.orders > 0 && opts.concurrency > 0, "orders and concurrency must be positive");
    anyhow::ensure!(opts.order_ttl_secs > 0, "the order TTL must be positive");
    let work = mix::workload(opts.orders, opts.seed)?;
    // A temporary store is deleted when `_temporary` drops, after the checks.
    let (dir, _temporary) = crate::bench::data_dir(opts.keep_data_dir.as_deref())?;
    // A table of its own: an endpoint may hold earlier runs' tables.
    let table_name = match &opts.endpoint {
        Some(_) => format!("shop-bench-{}", uuid::Uuid::now_v7().simple()),
        None => Config::default().table_name,
    };
    let stack = Stack::start(StackOptions {
        data_dir: Some(dir.clone()),
        endpoint: opts.endpoint.clone(),
        price_store_calls: true,
        config: Config { order_ttl_secs: opts.order_ttl_secs, table_name, ..Config::default() },
        schedule_every: SCHEDULE,
        ..StackOptions::default()
    })
    .await?;
    if let Some(kept) = &opts.keep_data_dir {
        // An operator may watch the run: `shop token --operator --data-dir` signs for this store.
        eprintln!(
            "console: {}/console (sign in with `shop token --operator --data-dir {}`)",
            stack.url(),
            kept.display()
        );
    }
    let progress = opts.progress.clone();
    progress.phase("seeding the catalog", 0);
    seed_concurrently(&stack, &work.catalog).await?;
    let observer = Store::new(unmetered(&stack), stack.app.config.table_name.clone());
    let rules = crate::emulate::rules::rules()?;
    let tx_factor = crate::engine::transaction_write_factor(&unmetered(&stack), &stack.app.config.table_name).await?;
    before_load(&stack).await?;

    // The load.
    let rss_start = crate::bench::rss_mb();
    let used_start = stack.meter.snapshot();
    let emulation_start = stack.emulation_meter.snapshot();
    let busy_start = busy(&stack);
    let secret = stack.secrets.jwt_secret.clone();
    let clock = stack.app.clock.clone();
    let to = Endpoints {
        http: reqwest::Client::builder().pool_max_idle_per_host(opts.concurrency).build()?,
        api: stack.url(),
        pg: stack.pg_url(),
        token: Arc::new(move |user: &str| crate::jwt::issue(&secret, user, clock.now().seconds(), 3600)),
    };
    let start_ms = stack.app.clock.now().millis();
    let started = Instant::now();
    let rate = opts.rate.filter(|r| *r > 0.0);
    progress.phase("placing and paying", opts.orders as u64);
    let driven = std::sync::atomic::AtomicU64::new(0);
    let window = CostWindow::marks(opts.orders);
    let marks = std::sync::Mutex::new(BTreeMap::new());
    let runs: Vec<client::Run> = futures::stream::iter(work.plans.iter())
        .map(|plan| {
            let (to, driven, progress, marks, stack) = (to.clone(), &driven, &progress, &marks, &stack);
            async move {
                if let Some(r) = rate {
                    tokio::time::sleep_until((started + Duration::from_secs_f64(plan.index as f64 / r)).into()).await;
                }
                let run = client::drive(&to, plan).await;
                let done = driven.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if window.as_ref().is_some_and(|(_, at)| at.contains(&done))
                    && let Ok(mut m) = marks.lock()
                {
                    m.insert(done, (stack.meter.snapshot(), busy(stack)));
                }
                progress.update(done, || {
                    format!("{done} orders driven, {:.0}/s", done as f64 / started.elapsed().as_secs_f64().max(1e-3))
                });
                run
            }
        })
        .buffer_unordered(opts.concurrency)
        .collect()
        .await;
    let load_secs = started.elapsed().as_secs_f64();
    let cost_window = window.and_then(|(k, at)| {
        let mut m = marks.into_inner().ok()?;
        m.insert(opts.orders as u64, (stack.meter.snapshot(), busy(&stack)));
        let [a, b, c] = at;
        Some(CostWindow::of(k, m.get(&a)?, m.get(&b)?, m.get(&c)?, m.get(&(opts.orders as u64))?))
    });

    // Quiescence: the expiring share's TTL, then every order's consumers,
    // the outbox and the queues.
    let placed = placed(&runs);
    progress.phase("quiescence (expiries, consumers, queues)", placed.len() as u64);
    tokio::time::sleep(Duration::from_secs(u64::try_from(opts.order_ttl_secs).unwrap_or(0)) + SCHEDULE * 2).await;
    let wait = Wait { stall: opts.settle_timeout, redrive: None };
    let quiet = quiesce(&observer, &rules, placed, wait, &progress).await?;
    let (settled, unsettled) = (&quiet.settled, &quiet.unsettled);
    let used_end = stack.meter.snapshot();
    let emulation_end = stack.emulation_meter.snapshot();
    let busy_end = busy(&stack);
    let measured = started.elapsed();
    let rss_end = crate::bench::rss_mb();

    // The invariants, over what is settled. They read every order again
    // rather than keep the settlement pass's reads: 100,000 orders' events
    // held in memory would be what the RSS figure above measures.
    before_checks(&stack).await?;
    progress.phase("checking every invariant", 0);
    let unsettled_examples = quiesce::explain(&observer, &rules, unsettled).await?;
    let mut v = Violations::default();
    for r in &runs {
        if let Some(e) = &r.error {
            v.add("request refused", || e.clone());
        }
    }
    let (paths, totals) =
        check_all(&stack, &observer, &rules, &work, &runs, unsettled, check::Delivery::Once, &mut v).await?;
    // The saga statistics agree with the orders: each order counted once,
    // in the status it ended in (what the console's overview shows). Only
    // once everything is settled: an order in flight is counted where it is.
    if unsettled.is_empty() {
        let stats = observer.stats().totals().await?;
        let mut ended: BTreeMap<&str, i64> = BTreeMap::new();
        for statuses in paths.values() {
            for (status, n) in statuses {
                *ended.entry(status).or_default() += i64::try_from(*n).unwrap_or(i64::MAX);
            }
        }
        for status in shop_domain::OrderStatus::ALL {
            let key = format!("{}{}", shop_app::obs::stats::STATUS, status.as_str());
            let (counted, actual) =
                (stats.get(&key).copied().unwrap_or(0), ended.get(status.as_str()).copied().unwrap_or(0));
            if counted != actual {
                v.add("saga statistics disagree", || format!("{status}: {counted} counted, {actual} orders"));
            }
        }
    }
    let console_ms = console_latency(&stack, &work, &runs).await?;
    let webhooks = stack.pg.webhook_attempts().await?;
    progress.phase("measuring the engine's own limit", 0);
    let engine_tps = engine_limit(&stack, opts.concurrency, opts.orders.clamp(2_000, 20_000)).await?;
    progress.finish();
    let engine = stack.engine.name();
    let embedded = stack.engine.embedded().is_some();
    stack.stop().await;

    // The numbers.
    let mut at: Vec<i64> = settled.iter().map(|s| s.at).collect();
    at.sort_unstable();
    let last = at.last().copied().unwrap_or(start_ms);
    let settle_secs = (last - start_ms).max(1) as f64 / 1000.0;
    // Flatness: settlements in ten equal windows of the load phase. The
    // expiring share settles a TTL after the last order, a tail that says
    // nothing about whether the stack slows down as history grows.
    let load_end = start_ms + (load_secs * 1000.0) as i64;
    let window = ((load_end - start_ms) as f64 / 10.0).max(1.0);
    let tenths: Vec<f64> = (0..10)
        .map(|k| {
            let (from, to) = (start_ms + (window * k as f64) as i64, start_ms + (window * (k + 1) as f64) as i64);
            at.iter().filter(|t| **t >= from && **t < to).count() as f64 / (window / 1000.0)
        })
        .collect();
    let ms = |pick: fn(&Settled) -> Option<i64>, status: shop_domain::OrderStatus| {
        Percentiles::of(
            settled
                .iter()
                .filter(|s| s.status == status)
                .filter_map(|s| pick(s).map(|from| (s.at - from) as f64))
                .collect(),
        )
    };
    let mut latency: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    for r in &runs {
        for (c, d) in &r.calls {
            latency.entry(c.route()).or_default().push(d.as_secs_f64() * 1000.0);
        }
    }
    let n = settled.len().max(1) as f64;
    let per_order_of = |a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>| -> BTreeMap<String, f64> {
        since(a, b).filter(|(_, d)| *d > 0).map(|(op, d)| (op.clone(), d as f64 / n)).collect()
    };
    let per_order = per_order_of(&used_start.calls, &used_end.calls);
    let shapes_per_order = per_order_of(&used_start.shapes, &used_end.shapes);
    let emulation_per_order = per_order_of(&emulation_start.calls, &emulation_end.calls);
    let per = |a: Capacity, b: Capacity| Capacity { read: (b.read - a.read) / n, write: (b.write - a.write) / n };
    let engine_us: BTreeMap<&'static str, f64> = busy_start
        .iter()
        .zip(&busy_end)
        .filter(|((_, a), (_, b))| b > a)
        .map(|((op, a), (_, b))| (*op, (*b - *a).as_secs_f64() * 1e6 / n))
        .collect();
    let engine_busy_share = embedded.then(|| engine_us.values().sum::<f64>() * n / 1e6 / measured.as_secs_f64());
    let capacity_per_order = per(used_start.consumed, used_end.consumed);
    let capacity_per_order_by_shape: BTreeMap<String, Capacity> = used_end
        .consumed_by_shape
        .iter()
        .map(|(shape, end)| (shape, per(used_start.consumed_by_shape.get(shape).copied().unwrap_or_default(), *end)))
        .filter(|(_, c)| c.read > 0.0 || c.write > 0.0)
        .map(|(shape, c)| (shape.clone(), c))
        .collect();
    let model_capacity_per_order = per(used_start.model, used_end.model);
    // What AWS would bill: without the local-only pending index, and, on
    // an engine that prices a transactional write above DynamoDB's two
    // units per KB, its transactions at DynamoDB's rate. Index writes
    // inside a transaction are scaled the same way (an upper bound if
    // DynamoDB does not double them).
    let delta = |f: fn(&crate::engine::Usage) -> f64| (f(&used_end) - f(&used_start)) / n;
    let local = delta(|u| u.local_index_writes);
    let in_tx = delta(|u| u.consumed_in_transactions) - delta(|u| u.local_index_writes_in_transactions);
    let overpriced = 1.0 - AWS_TRANSACTION_WRITE_FACTOR / tx_factor.max(AWS_TRANSACTION_WRITE_FACTOR);
    let capacity_per_order_at_aws_rates =
        Capacity { read: capacity_per_order.read, write: capacity_per_order.write - local - in_tx * overpriced };
    let api_requests = runs.iter().flat_map(|r| &r.calls).filter(|(c, _)| !c.is_simulator()).count() as f64;
    let aws = AwsModel::new(
        (api_requests + webhooks as f64) / n,
        totals.events as f64 / n,
        totals.deliveries as f64 / n,
        if capacity_per_order.write > 0.0 { capacity_per_order_at_aws_rates } else { model_capacity_per_order },
    );
    let settled_per_sec = settled.len() as f64 / settle_secs;
    let transactions = |m: &BTreeMap<String, f64>| m.get("TransactWriteItems").copied().unwrap_or_default();
    let tx_during = (transactions(&per_order) + transactions(&emulation_per_order)) * n / settle_secs;
    Ok(Report {
        orders: opts.orders,
        concurrency: opts.concurrency,
        seed: opts.seed,
        rate_limit: rate,
        engine,
        load_secs,
        settle_secs,
        settled: settled.len(),
        unsettled: unsettled.len(),
        unsettled_examples,
        quiesce_secs: quiet.secs,
        quiesce_bound_secs: quiet.bound_secs,
        settled_per_sec,
        last_tenth_vs_first: match (tenths.first(), tenths.last()) {
            (Some(f), Some(l)) if *f > 0.0 => l / f,
            _ => 0.0,
        },
        tenths,
        time_to_settle_ms: ms(|s| s.paid_at, shop_domain::OrderStatus::Paid),
        refund_to_settle_ms: ms(|s| s.refund_at, shop_domain::OrderStatus::Refunded),
        api_latency_ms: latency.into_iter().map(|(k, v)| (k, Percentiles::of(v))).collect(),
        console_ms,
        store_calls_per_order_total: per_order.values().sum(),
        store_calls_per_order: per_order,
        store_call_shapes_per_order: shapes_per_order,
        emulation_calls_per_order_total: emulation_per_order.values().sum(),
        emulation_calls_per_order: emulation_per_order,
        capacity_per_order,
        capacity_per_order_by_shape,
        transaction_write_factor: tx_factor,
        capacity_per_order_at_aws_rates,
        model_capacity_per_order,
        aws,
        engine_us_per_order: engine_us,
        engine_busy_share,
        engine_transactions_per_sec: engine_tps,
        saga_vs_engine: settled_per_sec / engine_tps.max(f64::MIN_POSITIVE),
        engine_utilisation: tx_during / engine_tps.max(f64::MIN_POSITIVE),
        cost_window,
        rss_mb_start: rss_start,
        rss_mb_end: rss_end,
        paths,
        violations: v,
    })
}

/// The cost of an order early in the load and at its end, to show it does
/// not grow with history: the app's store calls and the engine's time in
/// the window from the `k`th to the `2k`th order driven (the stack warmed
/// up), and in the last `k`, per order driven. At a steady rate the work in
/// flight at both ends of a window is the same, so per order driven is per
/// order settled.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CostWindow {
    pub orders: u64,
    pub first: Cost,
    pub last: Cost,
    /// Last window's store calls per order over the first's.
    pub calls_ratio: f64,
    /// Last window's engine time per order over the first's (embedded engine).
    pub engine_ratio: Option<f64>,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    pub store_calls_per_order: f64,
    pub engine_us_per_order: Option<f64>,
}

type Mark = (Usage, Vec<(&'static str, Duration)>);

impl CostWindow {
    /// The window's size and the orders driven at which the meters are read
    /// (the load's end is the fourth); none for a run too short to have two
    /// windows after a warm-up.
    fn marks(orders: usize) -> Option<(u64, [u64; 3])> {
        let k = (orders as u64 / 4).min(1_000);
        (k > 0).then(|| (k, [k, 2 * k, orders as u64 - k]))
    }

    fn of(k: u64, a: &Mark, b: &Mark, c: &Mark, d: &Mark) -> CostWindow {
        let cost = |from: &Mark, to: &Mark| {
            let calls: u64 = since(&from.0.calls, &to.0.calls).map(|(_, d)| d).sum();
            let busy: Duration = to.1.iter().zip(&from.1).map(|((_, t), (_, f))| t.saturating_sub(*f)).sum();
            Cost {
                store_calls_per_order: calls as f64 / k as f64,
                engine_us_per_order: (!to.1.is_empty()).then(|| busy.as_secs_f64() * 1e6 / k as f64),
            }
        };
        let (first, last) = (cost(a, b), cost(c, d));
        CostWindow {
            orders: k,
            calls_ratio: last.store_calls_per_order / first.store_calls_per_order.max(f64::MIN_POSITIVE),
            engine_ratio: first.engine_us_per_order.zip(last.engine_us_per_order).map(|(f, l)| l / f.max(1e-9)),
            first,
            last,
        }
    }
}

/// Each counter's growth from `a` to `b` (a meter's calls by operation or shape).
fn since<'a>(a: &'a BTreeMap<String, u64>, b: &'a BTreeMap<String, u64>) -> impl Iterator<Item = (&'a String, u64)> {
    b.iter().map(|(op, n)| (op, n.saturating_sub(a.get(op).copied().unwrap_or(0))))
}

/// Loads the catalog in parallel chunks (the catalog of a large run has
/// tens of thousands of coupons and users).
pub(crate) async fn seed_concurrently(stack: &Stack, catalog: &seed::Catalog) -> anyhow::Result<()> {
    let products = seed::Catalog {
        products: catalog.products.clone(),
        coupons: vec![],
        users: vec![],
        campaigns: vec![],
        sales: vec![],
    };
    seed::seed(&stack.app, &products).await?;
    let mut chunks = Vec::new();
    for c in catalog.coupons.chunks(500) {
        chunks.push(seed::Catalog {
            products: vec![],
            coupons: c.to_vec(),
            users: vec![],
            campaigns: vec![],
            sales: vec![],
        });
    }
    for u in catalog.users.chunks(500) {
        chunks.push(seed::Catalog {
            products: vec![],
            coupons: vec![],
            users: u.to_vec(),
            campaigns: vec![],
            sales: vec![],
        });
    }
    let results: Vec<anyhow::Result<seed::SeedReport>> =
        futures::stream::iter(chunks.iter().map(|c| seed::seed(&stack.app, c))).buffer_unordered(8).collect().await;
    for r in results {
        r?;
    }
    Ok(())
}

/// Time the embedded engine's thread spent per operation (none on an endpoint).
fn busy(stack: &Stack) -> Vec<(&'static str, Duration)> {
    let Some(engine) = stack.engine.embedded() else { return Vec::new() };
    crate::engine::DATA_OPERATIONS.iter().map(|op| (*op, engine.busy(op))).collect()
}

/// A client of the stack's engine that the meter does not see (the checks,
/// the engine's own limit).
pub(super) fn unmetered(stack: &Stack) -> aws_sdk_dynamodb::Client {
    stack.engine.client(&Meter::default())
}

/// Every check over the orders, the catalog and the queues. Returns how
/// each path's orders ended (or where the unsettled ones are).
///
/// The `unsettled` orders are still in flight: none of their own checks is
/// made, and neither are the sums over the catalog, the points and the
/// queues, which they would skew (stock held by a pending order, a refund
/// still queued).
#[allow(clippy::too_many_arguments)]
async fn check_all(
    stack: &Stack,
    observer: &Store,
    rules: &crate::emulate::rules::Rules,
    work: &mix::Workload,
    runs: &[client::Run],
    unsettled: &[(usize, OrderId)],
    delivery: check::Delivery,
    v: &mut Violations,
) -> anyhow::Result<(BTreeMap<Path, BTreeMap<&'static str, usize>>, Totals)> {
    let in_flight: HashSet<&str> = unsettled.iter().map(|(_, id)| id.as_str()).collect();
    let mut totals = Totals::default();
    let mut paths: BTreeMap<Path, BTreeMap<&'static str, usize>> = BTreeMap::new();
    // One order at a time through the checks: the run's state is never held
    // in memory whole.
    let mut fetched = futures::stream::iter(runs.iter().filter_map(|r| r.order_id.as_deref().map(|id| (r.path, id))))
        .map(|(path, id)| async move {
            let id = OrderId::parse(id)?;
            let Some(order) = observer.orders().get(&id).await? else { anyhow::bail!("order {id} is gone") };
            let events = observer.outbox().events_of(&id).await?;
            let coupon = match &order.coupon_id {
                Some(c) => observer.coupons().get(c).await?,
                None => None,
            };
            let by_order = crate::sim::pg::Filter { order_id: Some(id.as_str().to_owned()), ..Default::default() };
            let payments = stack.pg.payments(by_order, Page { after: 0, limit: Some(crate::sim::db::MAX_LIMIT) });
            let payments = payments.await?.items;
            let delivered = stack.sink.deliveries_of(id.as_str()).await?;
            anyhow::Ok((path, order, events, coupon, payments, delivered))
        })
        .buffer_unordered(16);
    while let Some(f) = fetched.next().await {
        let (path, order, events, coupon, payments, delivered) = f?;
        *paths.entry(path).or_default().entry(order.status.as_str()).or_default() += 1;
        if in_flight.contains(order.id.as_str()) {
            continue;
        }
        let seen =
            Seen { order: &order, events: &events, coupon: coupon.as_ref(), pg: &payments, delivered: &delivered };
        check::check_order(rules, &seen, delivery, &mut totals, v);
    }
    drop(fetched);
    // Every PG payment belongs to an order of the run, page by page.
    let known: HashSet<&str> = runs.iter().filter_map(|r| r.order_id.as_deref()).collect();
    crate::sim::db::each_page(
        |page| stack.pg.payments(crate::sim::pg::Filter::default(), page),
        |payments| {
            for p in payments.iter().filter(|p| !known.contains(p.order_id.as_str())) {
                v.add("PG payment of an unknown order", || format!("order {}: payment {}", p.order_id, p.payment_key));
            }
            Ok(())
        },
    )
    .await?;
    if !in_flight.is_empty() {
        return Ok((paths, totals));
    }

    for p in &work.catalog.products {
        let available = observer.catalog().product(&p.id).await?.map(|p| p.available);
        let sold = totals.sold.get(p.id.as_str()).copied().unwrap_or(0);
        if available.map(|a| a + sold) != Some(p.stock) {
            v.add("stock not conserved", || format!("{}: {available:?} available + {sold} sold != {}", p.id, p.stock));
        }
    }
    let users: Vec<_> = futures::stream::iter(work.catalog.users.iter())
        .map(|u| async move {
            let balance = observer.points().balance(&u.id).await?.won();
            let ledger: i128 = observer.points().ledger(&u.id).await?.iter().map(|e| i128::from(e.delta)).sum();
            anyhow::Ok((u, balance, ledger))
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for r in users {
        let (u, balance, ledger) = r?;
        let spent = totals.spent.get(u.id.as_str()).copied().unwrap_or(0);
        if i128::from(balance) != ledger {
            v.add("points balance != ledger", || format!("{}: balance {balance}, ledger sums to {ledger}", u.id));
        }
        if balance + spent != u.points.won() {
            v.add("points not conserved", || {
                format!("{}: {balance} + {spent} spent by paid orders != {}", u.id, u.points)
            });
        }
    }

    if !observer.outbox().pending(1).await?.is_empty() {
        v.add("outbox not drained", || "events still pending publication".into());
    }
    for consumer in shop_app::events::consumers::NAMES {
        for queue in [consumer.to_owned(), dlq_of(consumer)] {
            let left = Queues(observer).list(&queue).await?.len();
            if left > 0 {
                v.add("queue not drained", || format!("{queue}: {left} message(s)"));
            }
        }
    }
    Ok((paths, totals))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What a run reported, in order.
    #[derive(Default)]
    struct Recorded(std::sync::Mutex<Vec<String>>);

    impl crate::bench::progress::Progress for Recorded {
        fn phase(&self, name: &str, total: u64) {
            self.0.lock().unwrap().push(format!("phase {name} {total}"));
        }
        fn update(&self, done: u64, line: String) {
            self.0.lock().unwrap().push(format!("{done} {line}"));
        }
        fn finish(&self) {
            self.0.lock().unwrap().push("finish".into());
        }
    }

    fn small(orders: usize) -> SagaOptions {
        SagaOptions {
            orders,
            concurrency: 8,
            seed: 3,
            rate: None,
            order_ttl_secs: 1,
            settle_timeout: Duration::from_secs(60),
            endpoint: None,
            progress: Default::default(),
            keep_data_dir: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_saga_settles_every_order_with_no_violation_and_says_how_far_it_got() {
        let seen = Arc::new(Recorded::default());
        let r = run(SagaOptions { progress: crate::bench::progress::Reporter::to(seen.clone()), ..small(60) })
            .await
            .unwrap();
        assert!(r.ok(), "{}", r.text());
        assert_eq!(r.settled, 60);
        // Every phase was announced in order, the load and the settling
        // counted up to their totals, and the run closed its display.
        let log = seen.0.lock().unwrap().clone();
        let phases: Vec<&str> = log.iter().filter_map(|e| e.strip_prefix("phase ")).collect();
        assert_eq!(
            phases,
            [
                "seeding the catalog 0",
                "placing and paying 60",
                "quiescence (expiries, consumers, queues) 60",
                "checking every invariant 0",
                "measuring the engine's own limit 0"
            ]
        );
        for last in ["60 60 orders driven", "60 60 settled, 0 backlog"] {
            assert!(log.iter().any(|e| e.starts_with(last)), "{last:?} missing: {log:?}");
        }
        assert_eq!(log.last().map(String::as_str), Some("finish"));
        for p in Path::ALL {
            let ended = r.paths.get(&p).unwrap_or_else(|| panic!("no {p:?} order in the mix"));
            assert_eq!(ended.keys().copied().collect::<Vec<_>>(), vec![p.final_status()], "{p:?}");
        }
        assert!(
            r.time_to_settle_ms.n > 0 && r.store_calls_per_order_total > 0.0 && r.engine_transactions_per_sec > 0.0
        );
        // The stack's meter prices its calls in a benchmark.
        assert!(r.model_capacity_per_order.write > 0.0 && r.capacity_per_order.write > 0.0, "{}", r.text());
        // The embedded engine prices a transactional write as DynamoDB
        // does, so the bill is priced from what it reported.
        assert_eq!(r.transaction_write_factor, AWS_TRANSACTION_WRITE_FACTOR);
        assert!(r.capacity_per_order_at_aws_rates.write <= r.capacity_per_order.write);
    }

    /// Work still in flight when quiescence gives up is unsettled — its own
    /// figure and a failed run — and never a violated invariant: the data
    /// platform refuses every delivery, so no order's analytics completes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn orders_in_flight_at_the_bound_are_unsettled_not_violations() {
        let opts = SagaOptions { settle_timeout: Duration::from_secs(2), ..small(20) };
        let refuse = async |stack: &Stack| {
            stack.sink.arm(crate::sim::sink::SinkFault { fault: "error".into(), count: -1 }).await
        };
        let r = run_with(opts, refuse, async |_: &Stack| anyhow::Ok(())).await.unwrap();
        assert_eq!((r.unsettled, r.settled), (20, 0), "{}", r.text());
        assert_eq!(r.violations.total(), 0, "{}", r.text());
        assert!(!r.ok());
        let why = r.unsettled_examples.join("\n");
        assert!(r.unsettled_examples.len() == 5 && why.contains("analytics not done with"), "{why}");
        assert!(r.text().contains("unsettled: 20 order(s) still in flight"), "{}", r.text());
    }

    /// Each invariant broken once, behind the product's back: the checks must name every one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checks_catch_broken_invariants() {
        let r = run_with(
            small(40),
            async |_: &Stack| anyhow::Ok(()),
            async |stack: &Stack| {
                let app = &stack.app;
                // A unit of stock appears from nowhere.
                let mut product =
                    app.store.catalog().product(&shop_domain::ProductId::parse("sp0")?).await?.expect("sp0");
                product.available += 1;
                let mut tx = shop_store::Tx::new();
                tx.extend(app.store.catalog().ops_seed_product(&product)?);
                app.store.transact(tx).await?;
                // The data platform is sent a paid order twice.
                let all = stack.sink.deliveries(Default::default(), Page::FIRST).await?.items;
                let paid = all.iter().find(|d| d.detail_type == "OrderPaid").expect("a paid order");
                reqwest::Client::new()
                    .post(format!("{}/events", stack.sink_url()))
                    .header("idempotency-key", &paid.event_id)
                    .json(&json!({"detailType": "OrderPaid", "orderId": paid.order_id}))
                    .send()
                    .await?;
                // The PG captures money for an order that never got paid, and its
                // webhooks are lost (else compensation would cancel the capture).
                let unpaid = all.iter().find(|d| d.detail_type == "OrderExpired").expect("an expired order");
                let pg = reqwest::Client::new();
                pg.post(format!("{}/v1/sim/faults", stack.pg_url()))
                    .json(&json!({"op": "webhook", "fault": "error", "count": -1}))
                    .send()
                    .await?;
                let key: serde_json::Value = pg
                    .post(format!("{}/v1/sim/checkout", stack.pg_url()))
                    .json(&json!({"orderId": unpaid.order_id, "amount": 1000, "method": "CARD"}))
                    .send()
                    .await?
                    .json()
                    .await?;
                pg.post(format!("{}/v1/payments/confirm", stack.pg_url()))
                    .basic_auth(&stack.secrets.pg_secret_key, Some(""))
                    .json(&json!({"paymentKey": key["paymentKey"], "orderId": unpaid.order_id, "amount": 1000}))
                    .send()
                    .await?;
                // Part of a paid card order is cancelled at the PG behind the shop's back.
                let mut card = None;
                for d in all.iter().filter(|d| d.detail_type == "OrderPaid") {
                    let order = app.store.orders().get(&OrderId::parse(d.order_id.as_str())?).await?;
                    if let Some(o) = order.filter(|o| {
                        o.status == shop_domain::OrderStatus::Paid
                            && o.payment_method == Some(shop_domain::PaymentMethod::Card)
                    }) {
                        card = o.payment_key;
                        break;
                    }
                }
                let card = card.expect("a paid card order");
                pg.post(format!("{}/v1/payments/{card}/cancel", stack.pg_url()))
                    .basic_auth(&stack.secrets.pg_secret_key, Some(""))
                    .json(&json!({"cancelReason": "behind the shop's back", "cancelAmount": 100}))
                    .send()
                    .await?;
                // A message nobody can handle sits in a queue.
                Queues(&app.store).send("analytics", "not an event", app.clock.now()).await?;
                Ok(())
            },
        )
        .await
        .unwrap();
        let kinds: Vec<&str> = r.violations.kinds().map(|(k, _)| k).collect();
        for want in [
            "stock not conserved",
            "analytics delivered other than once",
            "PG capture without a PAID order",
            "PG balance != the cash the order holds",
            "queue not drained",
        ] {
            assert!(kinds.contains(&want), "{want} not reported: {}", r.text());
        }
        assert!(!r.ok());
    }
}
