//! `shop bench`: orders per second through the whole local stack — HTTP,
//! JWT check, handler, idempotency record, one DynamoDB transaction on the
//! embedded engine (file-backed, as `shop up` runs). Prints numbers; asserts
//! only correctness (every order placed, stock decremented exactly).

use crate::seed;
use crate::{Stack, StackOptions};
use futures::StreamExt;
use std::time::{Duration, Instant};

pub struct BenchOptions {
    pub orders: usize,
    pub concurrency: usize,
    /// Spend points and use a coupon on every order (more items per transaction).
    pub full: bool,
    /// Told how far the run got.
    pub progress: crate::bench::progress::Reporter,
}

pub async fn run(opts: BenchOptions) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let users = opts.orders.max(1);
    let mut catalog = String::from(r#"{"products":[{"id":"bench","name":"Bench item","price":1000,"stock":"#);
    catalog.push_str(&format!("{}}}],\"coupons\":[", opts.orders * 2));
    let coupons: Vec<String> = (0..users)
        .map(|i| format!(r#"{{"id":"bc{i}","userId":"bu{i}","kind":"FIXED","value":100,"minOrderAmount":0,"expiresAt":"2099-01-01T00:00:00Z"}}"#))
        .collect();
    if opts.full {
        catalog.push_str(&coupons.join(","));
    }
    catalog.push_str("],\"users\":[");
    let points: Vec<String> = (0..users).map(|i| format!(r#"{{"id":"bu{i}","points":1000}}"#)).collect();
    if opts.full {
        catalog.push_str(&points.join(","));
    }
    catalog.push_str("]}");
    let seed_start = Instant::now();
    let stack = Stack::start(StackOptions {
        data_dir: Some(dir.path().to_owned()),
        seed_if_new: Some(seed::Catalog::parse(&catalog)?),
        ..StackOptions::default()
    })
    .await?;
    let seeded = seed_start.elapsed();
    let client = reqwest::Client::builder().pool_max_idle_per_host(opts.concurrency).build()?;
    let url = format!("{}/orders", stack.url());
    let tokens: Vec<String> = (0..users).map(|i| stack.token(&format!("bu{i}"))).collect();

    let started = Instant::now();
    let progress = &opts.progress;
    progress.phase("placing orders", opts.orders as u64);
    let placed = std::sync::atomic::AtomicU64::new(0);
    let mut latencies: Vec<Duration> = futures::stream::iter(0..opts.orders)
        .map(|i| {
            let placed = &placed;
            let client = client.clone();
            let url = url.clone();
            let token = tokens[i % tokens.len()].clone();
            let body = if opts.full {
                format!(r#"{{"items":[{{"productId":"bench","quantity":1}}],"couponId":"bc{i}","pointsToUse":100}}"#)
            } else {
                r#"{"items":[{"productId":"bench","quantity":1}]}"#.to_owned()
            };
            async move {
                let t = Instant::now();
                let resp = client
                    .post(url)
                    .bearer_auth(token)
                    .header("idempotency-key", format!("bench-{i}"))
                    .body(body)
                    .send()
                    .await?;
                anyhow::ensure!(resp.status().as_u16() == 201, "order {i}: {} {}", resp.status(), resp.text().await?);
                let done = placed.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                progress.update(done, || {
                    format!("{:.0} orders/s", done as f64 / started.elapsed().as_secs_f64().max(1e-3))
                });
                Ok::<_, anyhow::Error>(t.elapsed())
            }
        })
        .buffer_unordered(opts.concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let elapsed = started.elapsed();

    // The outbox drains behind the orders (publisher → bus → archive → queues).
    let drain_start = Instant::now();
    progress.phase("draining the outbox", 0);
    while !stack.app.store.outbox().pending(1).await?.is_empty() {
        anyhow::ensure!(drain_start.elapsed() < Duration::from_secs(600), "outbox did not drain in 10 minutes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = started.elapsed();
    let left = stack.app.store.catalog().product(&shop_domain::ProductId::parse("bench")?).await?.map(|p| p.available);
    anyhow::ensure!(
        left == Some((opts.orders * 2 - opts.orders) as u64),
        "stock is {left:?} after {} orders",
        opts.orders
    );
    progress.finish();
    stack.stop().await;

    latencies.sort();
    let pct = |p: f64| {
        let idx = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(idx).copied().unwrap_or_default()
    };
    Ok(format!(
        "orders: {} (concurrency {}, {})\nelapsed: {:.2?}\nthroughput: {:.0} orders/s\nlatency p50 {:.2?}  p90 {:.2?}  p99 {:.2?}  max {:.2?}\noutbox drained (every OrderPlaced published) after {:.2?}: {:.0} events/s end to end\nseeding: {:.2?}\nstock check: ok",
        opts.orders,
        opts.concurrency,
        if opts.full { "stock + coupon + points + ledger per order" } else { "stock only" },
        elapsed,
        opts.orders as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        latencies.last().copied().unwrap_or_default(),
        drained,
        opts.orders as f64 / drained.as_secs_f64(),
        seeded,
    ))
}
