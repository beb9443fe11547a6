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
//! Numbers come from the stored timestamps (settlement) and from the
//! engine's call counters (the stack's own calls; the checks read through an
//! [`shop_embedded::Engine::observer`] that is counted apart).

mod check;
mod client;
mod mix;

use crate::cli::seed;
use crate::emulate::queue::{Queues, dlq_of};
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
}

/// The store operations counted per settled order.
const OPS: [&str; 10] = [
    "GetItem",
    "BatchGetItem",
    "Query",
    "Scan",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "TransactGetItems",
];

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
    /// The stack's store calls per settled order, by operation.
    pub store_calls_per_order: BTreeMap<&'static str, f64>,
    pub store_calls_per_order_total: f64,
    /// Microseconds the engine thread spent per settled order, by operation.
    pub engine_us_per_order: BTreeMap<&'static str, f64>,
    /// Share of the run the engine thread was busy (1.0: it was the bottleneck).
    pub engine_busy_share: f64,
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
    let stack = Stack::start(StackOptions {
        data_dir: Some(dir.path().to_owned()),
        config: Config { order_ttl_secs: opts.order_ttl_secs, ..Config::default() },
        schedule_every: SCHEDULE,
        ..StackOptions::default()
    })
    .await?;
    seed_concurrently(&stack, &work.catalog).await?;
    let observer = Store::new(stack.engine.observer().client(), stack.app.config.table_name.clone());
    let rules = crate::emulate::rules::rules()?;

    // The load.
    let rss_start = crate::cli::rss_mb();
    let calls_start = calls(&stack);
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
    let deadline = Instant::now() + opts.settle_timeout;
    let mut unsettled: Vec<(usize, OrderId)> = runs
        .iter()
        .filter_map(|r| r.order_id.as_deref().and_then(|id| OrderId::parse(id).ok()).map(|id| (r.index, id)))
        .collect();
    let mut settled: Vec<Settled> = Vec::with_capacity(unsettled.len());
    loop {
        let pass: Vec<_> = futures::stream::iter(std::mem::take(&mut unsettled))
            .map(|(index, id)| {
                let (observer, rules) = (&observer, &rules);
                async move {
                    let done = async {
                        let Some(order) = observer.get_order(&id).await? else { return anyhow::Ok(None) };
                        let events = observer.events_of(&id).await?;
                        let outcomes = observer.outcomes_of(&id).await?;
                        anyhow::Ok(check::settlement(rules, &order, &events, &outcomes))
                    }
                    .await;
                    (index, id, done)
                }
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
            break;
        }
        tokio::time::sleep(SCHEDULE).await;
    }
    let calls_end = calls(&stack);
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
    let paths = check_all(&stack, &observer, &rules, &work, &runs, &mut v).await?;
    let engine_tps = engine_limit(&stack, opts.concurrency, opts.orders.clamp(2_000, 20_000)).await?;
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
    let per_order: BTreeMap<&'static str, f64> = OPS
        .iter()
        .zip(calls_start.iter().zip(&calls_end))
        .filter(|(_, (a, b))| b > a)
        .map(|(op, (a, b))| (*op, (b - a) as f64 / n))
        .collect();
    let engine_us: BTreeMap<&'static str, f64> = OPS
        .iter()
        .zip(busy_start.iter().zip(&busy_end))
        .filter(|(_, (a, b))| b > a)
        .map(|(op, (a, b))| (*op, (*b - *a).as_secs_f64() * 1e6 / n))
        .collect();
    let engine_busy_share = engine_us.values().sum::<f64>() * n / 1e6 / measured.as_secs_f64();
    let settled_per_sec = settled.len() as f64 / settle_secs;
    let tx_during = per_order.get("TransactWriteItems").copied().unwrap_or_default() * n / settle_secs;
    Ok(Report {
        orders: opts.orders,
        concurrency: opts.concurrency,
        seed: opts.seed,
        rate_limit: rate,
        engine: "embedded (dynoxide, file-backed)",
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
        store_calls_per_order_total: per_order.values().sum(),
        store_calls_per_order: per_order,
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

/// Loads the catalog in parallel chunks (the catalog of a large run has
/// tens of thousands of coupons and users).
async fn seed_concurrently(stack: &Stack, catalog: &seed::Catalog) -> anyhow::Result<()> {
    let products = seed::Catalog { products: catalog.products.clone(), coupons: vec![], users: vec![] };
    seed::seed(&stack.app, &products).await?;
    let mut chunks = Vec::new();
    for c in catalog.coupons.chunks(500) {
        chunks.push(seed::Catalog { products: vec![], coupons: c.to_vec(), users: vec![] });
    }
    for u in catalog.users.chunks(500) {
        chunks.push(seed::Catalog { products: vec![], coupons: vec![], users: u.to_vec() });
    }
    let results: Vec<anyhow::Result<seed::SeedReport>> =
        futures::stream::iter(chunks.iter().map(|c| seed::seed(&stack.app, c))).buffer_unordered(8).collect().await;
    for r in results {
        r?;
    }
    Ok(())
}

fn calls(stack: &Stack) -> Vec<u64> {
    OPS.iter().map(|op| stack.engine.calls(op)).collect()
}

fn busy(stack: &Stack) -> Vec<Duration> {
    OPS.iter().map(|op| stack.engine.busy(op)).collect()
}

/// Every check over the orders, the catalog and the queues. Returns how
/// each path's orders ended.
async fn check_all(
    stack: &Stack,
    observer: &Store,
    rules: &crate::emulate::rules::Rules,
    work: &mix::Workload,
    runs: &[client::Run],
    v: &mut Violations,
) -> anyhow::Result<BTreeMap<Path, BTreeMap<&'static str, usize>>> {
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
        check::check_order(rules, &seen, &mut totals, v);
    }
    drop(fetched);
    // Every PG payment belongs to an order of the run, page by page.
    let known: HashSet<&str> = runs.iter().filter_map(|r| r.order_id.as_deref()).collect();
    let mut page = Page { after: 0, limit: Some(crate::sim::db::MAX_LIMIT) };
    loop {
        let listed = stack.pg.payments(crate::sim::pg::Filter::default(), page).await?;
        for p in listed.items.iter().filter(|p| !known.contains(p.order_id.as_str())) {
            v.add("PG payment of an unknown order", || format!("order {}: payment {}", p.order_id, p.payment_key));
        }
        match listed.next {
            Some(after) => page.after = after,
            None => break,
        }
    }

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
    Ok(paths)
}

/// The engine's own limit: TransactWriteItems of four new items each (an
/// order placement's shape), at the benchmark's concurrency, through the
/// same in-process client the stack uses.
async fn engine_limit(stack: &Stack, concurrency: usize, count: usize) -> anyhow::Result<f64> {
    use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
    let client = stack.engine.client();
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
        out.push(format!(
            "store calls per settled order: {:.1} ({})",
            self.store_calls_per_order_total,
            self.store_calls_per_order.iter().map(|(k, v)| format!("{k} {v:.2}")).collect::<Vec<_>>().join(", ")
        ));
        out.push(format!(
            "engine thread per settled order: {:.0} µs ({}); busy {:.0}% of the run",
            self.engine_us_per_order.values().sum::<f64>(),
            self.engine_us_per_order.iter().map(|(k, v)| format!("{k} {v:.0}")).collect::<Vec<_>>().join(", "),
            self.engine_busy_share * 100.0
        ));
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
        for (path, ended) in &self.paths {
            let ended = ended.iter().map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(", ");
            out.push(format!("  {path:?}: {ended}"));
        }
        if self.ok() {
            out.push("violations: none".into());
        } else {
            out.push(format!("violations: {}", self.violations.total()));
            for (kind, k) in self.violations.kinds() {
                out.push(format!("  {kind}: {}", k.count));
                for e in &k.examples {
                    out.push(format!("    {e}"));
                }
            }
        }
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
            tx.push(app.store.op_seed_product(&product)?);
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
