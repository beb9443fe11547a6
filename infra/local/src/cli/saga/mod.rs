//! `shop bench --saga`: the whole saga through the local stack, measured.
//!
//! Seeded shoppers drive orders through the HTTP API and the PG simulator's
//! widget endpoints — card, virtual account + deposit, points; a share with
//! coupons and with points spent; some cancelled before payment, some
//! refunded after, some left to expire ([`mix`]). The run then waits until
//! every order is **settled** ([`check::settlement`]) and checks what the
//! product promises ([`check`]): stock conserved, points balance = ledger,
//! coupon USED iff its order is PAID, every PG capture matched by a PAID
//! order or cancelled, exactly one analytics delivery per event, outbox and
//! queues drained. Any violation is a non-zero exit.
//!
//! Numbers come from the stored timestamps (settlement) and from the meter
//! on the stack's store client ([`crate::engine::Meter`]: calls, capacity
//! units; the checks read through a client of their own, not counted). With
//! `--engine dynamodb-local` the same run is made on the embedded engine and
//! on DynamoDB Local, and both reports are printed with their ratio
//! ([`compare`]).

pub mod chaos;
mod check;
mod client;
mod mix;

use crate::cli::seed;
use crate::emulate::queue::{Queues, dlq_of};
use crate::engine::{Capacity, Meter, Usage};
use crate::sim::db::Page;
use crate::{Stack, StackOptions};
use check::{Seen, Settled, Totals, Violations};
use client::Endpoints;
use futures::StreamExt;
use mix::Path;
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
    /// How long to wait for the last order to settle after the load.
    pub settle_timeout: Duration,
    /// The store on this DynamoDB endpoint instead of the embedded engine.
    pub endpoint: Option<String>,
}

/// How often the scheduler (expiry, reconciliation) runs during the benchmark.
const SCHEDULE: Duration = Duration::from_millis(250);

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub orders: usize,
    pub concurrency: usize,
    pub seed: u64,
    pub rate_limit: Option<f64>,
    pub engine: &'static str,
    /// Seconds from the first order to the last shopper's last call.
    pub load_secs: f64,
    /// Seconds from the first order to the last settlement.
    pub settle_secs: f64,
    pub settled: usize,
    pub settled_per_sec: f64,
    /// Settled orders/s in each tenth of the load phase (flatness).
    pub tenths: Vec<f64>,
    /// Last tenth's rate over the first's.
    pub last_tenth_vs_first: f64,
    /// Orders that ended PAID: from the OrderPaid commit to the last consumer's completion.
    pub time_to_settle_ms: Percentiles,
    /// Refunded orders: from the RefundRequested commit to the last consumer's completion.
    pub refund_to_settle_ms: Percentiles,
    /// By route; the PG simulator's widget calls are listed apart.
    pub api_latency_ms: BTreeMap<&'static str, Percentiles>,
    /// The saga console's pages with every order of the run in the store,
    /// each loaded [`CONSOLE_LOADS`] times one after another.
    pub console_ms: BTreeMap<&'static str, Percentiles>,
    /// The app's store calls per settled order, by operation: what the
    /// Lambda functions would make on AWS.
    pub store_calls_per_order: BTreeMap<String, f64>,
    pub store_calls_per_order_total: f64,
    /// The emulated stream, EventBridge and SQS's own store calls per
    /// settled order (on AWS, not DynamoDB calls; polls of idle queues included).
    pub emulation_calls_per_order: BTreeMap<String, f64>,
    pub emulation_calls_per_order_total: f64,
    /// Capacity units per settled order as the engine reported them
    /// (`ConsumedCapacity`; DynamoDB Local's is the one AWS would bill).
    pub capacity_per_order: Capacity,
    /// The least the same calls cost on DynamoDB by the item model.
    pub model_capacity_per_order: Capacity,
    /// The same saga on AWS: requests per order and the price.
    pub aws: AwsModel,
    /// Microseconds the engine thread spent per settled order, by operation (embedded engine).
    pub engine_us_per_order: BTreeMap<&'static str, f64>,
    /// Share of the run the engine thread was busy (1.0: it was the bottleneck; embedded engine).
    pub engine_busy_share: Option<f64>,
    /// Raw TransactWriteItems/s of the same engine (4 puts each, same concurrency).
    pub engine_transactions_per_sec: f64,
    /// Settled orders/s over raw transactions/s.
    pub saga_vs_engine: f64,
    /// The stack's TransactWriteItems/s during the saga, over the raw rate.
    pub engine_utilisation: f64,
    pub rss_mb_start: Option<f64>,
    pub rss_mb_end: Option<f64>,
    /// Orders planned on each path, and how they ended.
    pub paths: BTreeMap<Path, BTreeMap<&'static str, usize>>,
    pub violations: Violations,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct Percentiles {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(mut ms: Vec<f64>) -> Percentiles {
        ms.sort_by(f64::total_cmp);
        let at = |p: f64| {
            let i = ((ms.len() as f64 - 1.0) * p).round() as usize;
            ms.get(i).copied().unwrap_or_default()
        };
        Percentiles { n: ms.len(), p50: at(0.5), p99: at(0.99), max: ms.last().copied().unwrap_or_default() }
    }

    fn text(&self) -> String {
        format!("p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n={})", self.p50, self.p99, self.max, self.n)
    }
}

/// The same saga on AWS, from what the local run did: per settled order,
/// the requests each service would bill and their price at on-demand list
/// prices (us-east-1). Batching is left out on purpose: every stream record
/// and SQS message is counted as its own invocation and its own receive and
/// delete (batch size 1, the upper bound); Lambda duration and storage are
/// not counted (they depend on memory size and retention, not on the saga).
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsModel {
    /// API Gateway requests: the shoppers' calls and the PG's webhooks.
    pub api_requests: f64,
    /// EventBridge PutEvents entries: one per outbox event.
    pub put_events_entries: f64,
    /// SQS: a send (the rule's target), a receive and a delete per routed message.
    pub sqs_requests: f64,
    /// API functions, the stream publisher (per event) and the consumers (per message).
    pub lambda_invocations: f64,
    pub capacity: Capacity,
    /// Dollars per million settled orders, by service, and the total.
    pub usd_per_million_orders: BTreeMap<&'static str, f64>,
}

/// On-demand list prices, us-east-1, dollars per million (2026-12).
const USD_PER_MILLION_WRU: f64 = 0.625;
const USD_PER_MILLION_RRU: f64 = 0.125;
const USD_PER_MILLION_PUT_EVENTS: f64 = 1.00;
const USD_PER_MILLION_SQS: f64 = 0.40;
const USD_PER_MILLION_LAMBDA: f64 = 0.20;
const USD_PER_MILLION_HTTP_API: f64 = 1.00;

impl AwsModel {
    fn new(api_requests: f64, events: f64, deliveries: f64, capacity: Capacity) -> AwsModel {
        let sqs_requests = 3.0 * deliveries;
        let lambda_invocations = api_requests + events + deliveries;
        // Per order × $ per million requests = $ per million orders.
        let usd = BTreeMap::from([
            ("DynamoDB", capacity.write * USD_PER_MILLION_WRU + capacity.read * USD_PER_MILLION_RRU),
            ("EventBridge", events * USD_PER_MILLION_PUT_EVENTS),
            ("SQS", sqs_requests * USD_PER_MILLION_SQS),
            ("Lambda requests", lambda_invocations * USD_PER_MILLION_LAMBDA),
            ("API Gateway", api_requests * USD_PER_MILLION_HTTP_API),
        ]);
        let total = usd.values().sum();
        let mut usd_per_million_orders = usd;
        usd_per_million_orders.insert("total", total);
        AwsModel {
            api_requests,
            put_events_entries: events,
            sqs_requests,
            lambda_invocations,
            capacity,
            usd_per_million_orders,
        }
    }

    fn text(&self) -> String {
        let usd: Vec<String> = self.usd_per_million_orders.iter().map(|(k, v)| format!("{k} ${v:.2}")).collect();
        format!(
            "on AWS, per settled order: {:.1} API requests, {:.1} PutEvents entries, {:.1} SQS requests, \
             {:.1} Lambda invocations, {:.1} RCU / {:.1} WCU; per million orders: {}",
            self.api_requests,
            self.put_events_entries,
            self.sqs_requests,
            self.lambda_invocations,
            self.capacity.read,
            self.capacity.write,
            usd.join(", ")
        )
    }
}

/// The same saga on the embedded engine and on DynamoDB Local, one after
/// the other, and how many times faster the first settled orders.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    pub embedded: Report,
    pub dynamodb_local: Report,
    /// Settled orders/s, embedded over DynamoDB Local.
    pub settled_per_sec_ratio: f64,
}

impl Comparison {
    pub fn ok(&self) -> bool {
        self.embedded.ok() && self.dynamodb_local.ok()
    }

    pub fn text(&self) -> String {
        format!(
            "{}\n\n{}\n\nembedded vs DynamoDB Local: {:.1}× the settled orders/s ({:.1} vs {:.1}); time to settle p50 {:.0} vs {:.0} ms",
            self.embedded.text(),
            self.dynamodb_local.text(),
            self.settled_per_sec_ratio,
            self.embedded.settled_per_sec,
            self.dynamodb_local.settled_per_sec,
            self.embedded.time_to_settle_ms.p50,
            self.dynamodb_local.time_to_settle_ms.p50,
        )
    }
}

/// [`run`] on the embedded engine, then on the DynamoDB endpoint `endpoint`.
pub async fn compare(opts: SagaOptions, endpoint: String) -> anyhow::Result<Comparison> {
    let embedded = run(SagaOptions { endpoint: None, ..opts.clone() }).await?;
    let dynamodb_local = run(SagaOptions { endpoint: Some(endpoint), ..opts }).await?;
    let settled_per_sec_ratio = embedded.settled_per_sec / dynamodb_local.settled_per_sec.max(f64::MIN_POSITIVE);
    Ok(Comparison { embedded, dynamodb_local, settled_per_sec_ratio })
}

pub async fn run(opts: SagaOptions) -> anyhow::Result<Report> {
    run_with(opts, async |_: &Stack| anyhow::Ok(())).await
}

/// [`run`], with `before_checks` run on the stack once every order settled
/// (the tests break an invariant there and expect the checks to say so).
async fn run_with(
    opts: SagaOptions,
    before_checks: impl AsyncFnOnce(&Stack) -> anyhow::Result<()>,
) -> anyhow::Result<Report> {
    anyhow::ensure!(opts.orders > 0 && opts.concurrency > 0, "orders and concurrency must be positive");
    anyhow::ensure!(opts.order_ttl_secs > 0, "the order TTL must be positive");
    let work = mix::workload(opts.orders, opts.seed)?;
    let dir = tempfile::tempdir()?;
    // A table of its own: an endpoint may hold earlier runs' tables.
    let table_name = match &opts.endpoint {
        Some(_) => format!("shop-bench-{}", uuid::Uuid::now_v7().simple()),
        None => Config::default().table_name,
    };
    let stack = Stack::start(StackOptions {
        data_dir: Some(dir.path().to_owned()),
        endpoint: opts.endpoint.clone(),
        price_store_calls: true,
        config: Config { order_ttl_secs: opts.order_ttl_secs, table_name, ..Config::default() },
        schedule_every: SCHEDULE,
        ..StackOptions::default()
    })
    .await?;
    seed_concurrently(&stack, &work.catalog).await?;
    let observer = Store::new(unmetered(&stack), stack.app.config.table_name.clone());
    let rules = crate::emulate::rules::rules()?;

    // The load.
    let rss_start = crate::cli::rss_mb();
    let used_start = stack.meter.snapshot();
    let emulation_start = stack.emulation_meter.snapshot();
    let busy_start = busy(&stack);
    let secret = stack.jwt_secret.clone();
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
    let runs: Vec<client::Run> = futures::stream::iter(work.plans.iter())
        .map(|plan| {
            let to = to.clone();
            async move {
                if let Some(r) = rate {
                    tokio::time::sleep_until((started + Duration::from_secs_f64(plan.index as f64 / r)).into()).await;
                }
                client::drive(&to, plan).await
            }
        })
        .buffer_unordered(opts.concurrency)
        .collect()
        .await;
    let load_secs = started.elapsed().as_secs_f64();

    // Settlement: wait for the expiring share, then for every order's consumers.
    tokio::time::sleep(Duration::from_secs(u64::try_from(opts.order_ttl_secs).unwrap_or(0)) + SCHEDULE * 2).await;
    let (settled, unsettled) = settle(&observer, &rules, placed(&runs), Instant::now() + opts.settle_timeout).await?;
    let used_end = stack.meter.snapshot();
    let emulation_end = stack.emulation_meter.snapshot();
    let busy_end = busy(&stack);
    let measured = started.elapsed();
    let rss_end = crate::cli::rss_mb();

    // The invariants. They read every order again rather than keep the
    // settlement pass's reads: 100,000 orders' events held in memory would
    // be what the RSS figure above measures.
    before_checks(&stack).await?;
    let mut v = Violations::default();
    for r in &runs {
        if let Some(e) = &r.error {
            v.add("request refused", || e.clone());
        }
    }
    for (index, id) in &unsettled {
        v.add("order not settled", || format!("order #{index} {id} after {:?}", opts.settle_timeout));
    }
    let (paths, totals) = check_all(&stack, &observer, &rules, &work, &runs, check::Delivery::Once, &mut v).await?;
    // The saga statistics agree with the orders: each order counted once,
    // in the status it ended in (what the console's overview shows).
    let stats = observer.stats_totals().await?;
    let mut ended: BTreeMap<&str, i64> = BTreeMap::new();
    for statuses in paths.values() {
        for (status, n) in statuses {
            *ended.entry(status).or_default() += i64::try_from(*n).unwrap_or(i64::MAX);
        }
    }
    for status in shop_domain::OrderStatus::ALL {
        let counted = stats.get(&format!("{}{}", shop_app::obs::stats::STATUS, status.as_str())).copied().unwrap_or(0);
        let actual = ended.get(status.as_str()).copied().unwrap_or(0);
        if counted != actual {
            v.add("saga statistics disagree", || format!("{status}: {counted} counted, {actual} orders"));
        }
    }
    let console_ms = console_latency(&stack, &work, &runs).await?;
    let webhooks = stack.pg.webhook_attempts().await?;
    let engine_tps = engine_limit(&stack, opts.concurrency, opts.orders.clamp(2_000, 20_000)).await?;
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
    let calls_per_order = |a: &Usage, b: &Usage| -> BTreeMap<String, f64> {
        b.calls
            .iter()
            .map(|(op, b)| (op, b.saturating_sub(a.calls.get(op).copied().unwrap_or(0))))
            .filter(|(_, d)| *d > 0)
            .map(|(op, d)| (op.clone(), d as f64 / n))
            .collect()
    };
    let per_order = calls_per_order(&used_start, &used_end);
    let emulation_per_order = calls_per_order(&emulation_start, &emulation_end);
    let per = |a: Capacity, b: Capacity| Capacity { read: (b.read - a.read) / n, write: (b.write - a.write) / n };
    let engine_us: BTreeMap<&'static str, f64> = busy_start
        .iter()
        .zip(&busy_end)
        .filter(|((_, a), (_, b))| b > a)
        .map(|((op, a), (_, b))| (*op, (*b - *a).as_secs_f64() * 1e6 / n))
        .collect();
    let engine_busy_share = embedded.then(|| engine_us.values().sum::<f64>() * n / 1e6 / measured.as_secs_f64());
    let capacity_per_order = per(used_start.consumed, used_end.consumed);
    let model_capacity_per_order = per(used_start.model, used_end.model);
    let api_requests = runs.iter().flat_map(|r| &r.calls).filter(|(c, _)| !c.is_simulator()).count() as f64;
    let aws = AwsModel::new(
        (api_requests + webhooks as f64) / n,
        totals.events as f64 / n,
        totals.deliveries as f64 / n,
        if capacity_per_order.write > 0.0 { capacity_per_order } else { model_capacity_per_order },
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
        emulation_calls_per_order_total: emulation_per_order.values().sum(),
        emulation_calls_per_order: emulation_per_order,
        capacity_per_order,
        model_capacity_per_order,
        aws,
        engine_us_per_order: engine_us,
        engine_busy_share,
        engine_transactions_per_sec: engine_tps,
        saga_vs_engine: settled_per_sec / engine_tps.max(f64::MIN_POSITIVE),
        engine_utilisation: tx_during / engine_tps.max(f64::MIN_POSITIVE),
        rss_mb_start: rss_start,
        rss_mb_end: rss_end,
        paths,
        violations: v,
    })
}

/// How each path's orders ended, a line per path (the reports' text).
fn path_lines(paths: &BTreeMap<Path, BTreeMap<&'static str, usize>>) -> Vec<String> {
    paths
        .iter()
        .map(|(path, ended)| {
            let ended = ended.iter().map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(", ");
            format!("  {path:?}: {ended}")
        })
        .collect()
}

/// The orders the shoppers placed, by plan index.
fn placed(runs: &[client::Run]) -> Vec<(usize, OrderId)> {
    runs.iter()
        .filter_map(|r| r.order_id.as_deref().and_then(|id| OrderId::parse(id).ok()).map(|id| (r.index, id)))
        .collect()
}

/// Waits until every order in `orders` is settled ([`check::settlement`])
/// or `deadline` passes; the settled ones, and those that were not.
async fn settle(
    observer: &Store,
    rules: &crate::emulate::rules::Rules,
    mut unsettled: Vec<(usize, OrderId)>,
    deadline: Instant,
) -> anyhow::Result<(Vec<Settled>, Vec<(usize, OrderId)>)> {
    let mut settled: Vec<Settled> = Vec::with_capacity(unsettled.len());
    loop {
        let pass: Vec<_> = futures::stream::iter(std::mem::take(&mut unsettled))
            .map(|(index, id)| async move {
                let done = async {
                    let Some(order) = observer.get_order(&id).await? else { return anyhow::Ok(None) };
                    let events = observer.events_of(&id).await?;
                    let outcomes = observer.outcomes_of(&id).await?;
                    anyhow::Ok(check::settlement(rules, &order, &events, &outcomes))
                }
                .await;
                (index, id, done)
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for (index, id, done) in pass {
            match done? {
                Some(s) => settled.push(s),
                None => unsettled.push((index, id)),
            }
        }
        if unsettled.is_empty() || Instant::now() >= deadline {
            return Ok((settled, unsettled));
        }
        tokio::time::sleep(SCHEDULE).await;
    }
}

/// Loads the catalog in parallel chunks (the catalog of a large run has
/// tens of thousands of coupons and users).
async fn seed_concurrently(stack: &Stack, catalog: &seed::Catalog) -> anyhow::Result<()> {
    let products =
        seed::Catalog { products: catalog.products.clone(), coupons: vec![], users: vec![], campaigns: vec![] };
    seed::seed(&stack.app, &products).await?;
    let mut chunks = Vec::new();
    for c in catalog.coupons.chunks(500) {
        chunks.push(seed::Catalog { products: vec![], coupons: c.to_vec(), users: vec![], campaigns: vec![] });
    }
    for u in catalog.users.chunks(500) {
        chunks.push(seed::Catalog { products: vec![], coupons: vec![], users: u.to_vec(), campaigns: vec![] });
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
fn unmetered(stack: &Stack) -> aws_sdk_dynamodb::Client {
    stack.engine.client(&Meter::default())
}

/// Every check over the orders, the catalog and the queues. Returns how
/// each path's orders ended.
async fn check_all(
    stack: &Stack,
    observer: &Store,
    rules: &crate::emulate::rules::Rules,
    work: &mix::Workload,
    runs: &[client::Run],
    delivery: check::Delivery,
    v: &mut Violations,
) -> anyhow::Result<(BTreeMap<Path, BTreeMap<&'static str, usize>>, Totals)> {
    let mut totals = Totals::default();
    let mut paths: BTreeMap<Path, BTreeMap<&'static str, usize>> = BTreeMap::new();
    // One order at a time through the checks: the run's state is never held
    // in memory whole.
    let mut fetched = futures::stream::iter(runs.iter().filter_map(|r| r.order_id.as_deref().map(|id| (r.path, id))))
        .map(|(path, id)| async move {
            let id = OrderId::parse(id)?;
            let Some(order) = observer.get_order(&id).await? else { anyhow::bail!("order {id} is gone") };
            let events = observer.events_of(&id).await?;
            let coupon = match &order.coupon_id {
                Some(c) => observer.get_coupon(c).await?,
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

    for p in &work.catalog.products {
        let available = observer.get_product(&p.id).await?.map(|p| p.available);
        let sold = totals.sold.get(p.id.as_str()).copied().unwrap_or(0);
        if available.map(|a| a + sold) != Some(p.stock) {
            v.add("stock not conserved", || format!("{}: {available:?} available + {sold} sold != {}", p.id, p.stock));
        }
    }
    let users: Vec<_> = futures::stream::iter(work.catalog.users.iter())
        .map(|u| async move {
            let balance = observer.get_points(&u.id).await?.won();
            let ledger: i128 = observer.ledger(&u.id).await?.iter().map(|e| i128::from(e.delta)).sum();
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

    if !observer.pending_events(1).await?.is_empty() {
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

/// Loads of each console page the benchmark times.
pub const CONSOLE_LOADS: usize = 10;

/// Each page of the saga console, timed with the run's orders in the store
/// (an operator's token; one request at a time, after the load).
async fn console_latency(
    stack: &Stack,
    work: &mix::Workload,
    runs: &[client::Run],
) -> anyhow::Result<BTreeMap<&'static str, Percentiles>> {
    let token = crate::jwt::issue_operator(&stack.jwt_secret, "bench", stack.app.clock.now().seconds(), 3600);
    let http = reqwest::Client::new();
    let order = runs.iter().rev().find_map(|r| r.order_id.clone()).unwrap_or_default();
    let user = work.plans.last().map(|p| p.user.to_string()).unwrap_or_default();
    let pages: [(&'static str, String); 9] = [
        ("overview (last hour)", "/console/overview?range=1h".into()),
        ("overview charts (last day)", "/console/overview/charts?range=24h".into()),
        ("orders (the stuck lists)", "/console/orders".into()),
        ("orders by status PAID", "/console/orders?status=PAID".into()),
        ("orders by status EXPIRED", "/console/orders?status=EXPIRED".into()),
        ("orders of a user", format!("/console/orders?q={user}")),
        ("one order's saga", format!("/console/orders/{order}")),
        ("one order's live lanes", format!("/console/orders/{order}/saga")),
        ("queues", "/console/queues".into()),
    ];
    let mut out = BTreeMap::new();
    for (name, path) in pages {
        let mut ms = Vec::with_capacity(CONSOLE_LOADS);
        for _ in 0..CONSOLE_LOADS {
            let started = Instant::now();
            let resp = http.get(format!("{}{path}", stack.url())).bearer_auth(&token).send().await?;
            anyhow::ensure!(resp.status().is_success(), "console {path}: {}", resp.status());
            resp.bytes().await?;
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        out.insert(name, Percentiles::of(ms));
    }
    Ok(out)
}

/// The engine's own limit: TransactWriteItems of four new items each (an
/// order placement's shape), at the benchmark's concurrency, through the
/// same in-process client the stack uses.
async fn engine_limit(stack: &Stack, concurrency: usize, count: usize) -> anyhow::Result<f64> {
    use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
    let client = unmetered(stack);
    let table = stack.app.config.table_name.clone();
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..count)
        .map(|i| {
            let (client, table) = (client.clone(), table.clone());
            async move {
                let mut items = Vec::with_capacity(4);
                for sk in ["A", "B", "C", "D"] {
                    let put = Put::builder()
                        .table_name(&table)
                        .item("pk", AttributeValue::S(format!("BENCH#{i}")))
                        .item("sk", AttributeValue::S(sk.into()))
                        .item("payload", AttributeValue::S("x".repeat(200)))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()?;
                    items.push(TransactWriteItem::builder().put(put).build());
                }
                client.transact_write_items().set_transact_items(Some(items)).send().await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

impl Report {
    pub fn ok(&self) -> bool {
        self.violations.total() == 0
    }

    pub fn text(&self) -> String {
        let mut out = vec![
            format!(
                "saga: {} orders (concurrency {}, seed {}{}) on the {} engine",
                self.orders,
                self.concurrency,
                self.seed,
                self.rate_limit.map(|r| format!(", at most {r}/s")).unwrap_or_default(),
                self.engine
            ),
            format!(
                "settled: {} orders in {:.2}s = {:.0} orders/s (load {:.2}s)",
                self.settled, self.settle_secs, self.settled_per_sec, self.load_secs
            ),
            format!(
                "settled per tenth of the load: {} orders/s (last/first {:.2})",
                self.tenths.iter().map(|t| format!("{t:.0}")).collect::<Vec<_>>().join(" "),
                self.last_tenth_vs_first
            ),
            format!("time to settle (OrderPaid → last consumer): {}", self.time_to_settle_ms.text()),
            format!("refund to settle (RefundRequested → last consumer): {}", self.refund_to_settle_ms.text()),
            "API latency:".into(),
        ];
        for (route, p) in &self.api_latency_ms {
            out.push(format!("  {route:<34} {}", p.text()));
        }
        out.push(format!("console pages with the run's {} orders in the store:", self.orders));
        for (page, p) in &self.console_ms {
            out.push(format!("  {page:<34} {}", p.text()));
        }
        let calls = |m: &BTreeMap<String, f64>| m.iter().map(|(k, v)| format!("{k} {v:.2}")).collect::<Vec<_>>();
        out.push(format!(
            "store calls per settled order: {:.1} by the app ({}); {:.1} by the emulated stream, bus and queues ({})",
            self.store_calls_per_order_total,
            calls(&self.store_calls_per_order).join(", "),
            self.emulation_calls_per_order_total,
            calls(&self.emulation_calls_per_order).join(", ")
        ));
        if let Some(busy) = self.engine_busy_share {
            out.push(format!(
                "engine thread per settled order: {:.0} µs ({}); busy {:.0}% of the run",
                self.engine_us_per_order.values().sum::<f64>(),
                self.engine_us_per_order.iter().map(|(k, v)| format!("{k} {v:.0}")).collect::<Vec<_>>().join(", "),
                busy * 100.0
            ));
        }
        let (c, m) = (self.capacity_per_order, self.model_capacity_per_order);
        out.push(format!(
            "capacity units per settled order: {:.1} RCU / {:.1} WCU reported by the engine; item-model lower bound {:.1} RCU / {:.1} WCU",
            c.read, c.write, m.read, m.write
        ));
        out.push(self.aws.text());
        out.push(format!(
            "engine limit: {:.0} TransactWriteItems/s (4 puts); saga/engine {:.3}; the saga used {:.0}% of it",
            self.engine_transactions_per_sec,
            self.saga_vs_engine,
            self.engine_utilisation * 100.0
        ));
        let mb = |m: Option<f64>| m.map(|m| format!("{m:.0} MB")).unwrap_or_else(|| "n/a".into());
        out.push(format!(
            "resident memory: {} at the start, {} at the end",
            mb(self.rss_mb_start),
            mb(self.rss_mb_end)
        ));
        out.extend(path_lines(&self.paths));
        out.extend(self.violations.lines());
        out.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn small(orders: usize) -> SagaOptions {
        SagaOptions {
            orders,
            concurrency: 8,
            seed: 3,
            rate: None,
            order_ttl_secs: 1,
            settle_timeout: Duration::from_secs(60),
            endpoint: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_saga_settles_every_order_with_no_violation() {
        let r = run(small(60)).await.unwrap();
        assert!(r.ok(), "{}", r.text());
        assert_eq!(r.settled, 60);
        for p in Path::ALL {
            let ended = r.paths.get(&p).unwrap_or_else(|| panic!("no {p:?} order in the mix"));
            assert_eq!(ended.keys().copied().collect::<Vec<_>>(), vec![p.final_status()], "{p:?}");
        }
        assert!(
            r.time_to_settle_ms.n > 0 && r.store_calls_per_order_total > 0.0 && r.engine_transactions_per_sec > 0.0
        );
        // The stack's meter prices its calls in a benchmark.
        assert!(r.model_capacity_per_order.write > 0.0 && r.capacity_per_order.write > 0.0, "{}", r.text());
    }

    /// Each invariant broken once, behind the product's back: the checks must name every one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checks_catch_broken_invariants() {
        let r = run_with(small(40), async |stack: &Stack| {
            let app = &stack.app;
            // A unit of stock appears from nowhere.
            let mut product = app.store.get_product(&shop_domain::ProductId::parse("sp0")?).await?.expect("sp0");
            product.available += 1;
            let mut tx = shop_store::Tx::new();
            tx.extend(app.store.ops_seed_product(&product)?);
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
                .basic_auth(crate::SIM_SECRET_KEY, Some(""))
                .json(&json!({"paymentKey": key["paymentKey"], "orderId": unpaid.order_id, "amount": 1000}))
                .send()
                .await?;
            // A message nobody can handle sits in a queue.
            Queues(&app.store).send("analytics", "not an event", app.clock.now()).await?;
            Ok(())
        })
        .await
        .unwrap();
        let kinds: Vec<&str> = r.violations.kinds().map(|(k, _)| k).collect();
        for want in [
            "stock not conserved",
            "analytics delivered other than once",
            "PG capture without a PAID order",
            "queue not drained",
        ] {
            assert!(kinds.contains(&want), "{want} not reported: {}", r.text());
        }
        assert!(!r.ok());
    }
}
