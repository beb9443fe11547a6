//! `shop bench --sim`: the simulators alone (file-backed, as `shop up` runs
//! them), driven over HTTP by one payment's calls per iteration — checkout,
//! confirm (with an `Idempotency-Key`), lookup by order id, and one delivery
//! to the data-platform sink. What it shows: a call costs the same at the
//! 100,000th payment as at the first (rate per tenth of the run), and the
//! simulators' memory does not grow with what they hold.

use crate::{SimulatorOptions, Simulators};
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;
use std::time::{Duration, Instant};

pub struct SimBenchOptions {
    pub payments: usize,
    pub concurrency: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimReport {
    pub payments: usize,
    pub concurrency: usize,
    pub secs: f64,
    pub payments_per_sec: f64,
    /// HTTP calls per second (four per payment).
    pub calls_per_sec: f64,
    /// Payments per second in each tenth of the run, by count.
    pub tenths: Vec<f64>,
    pub last_tenth_vs_first: f64,
    pub rss_mb_start: Option<f64>,
    pub rss_mb_end: Option<f64>,
    /// The simulators' database files at the end.
    pub disk_mb: f64,
}

impl SimReport {
    pub fn text(&self) -> String {
        let tenths: Vec<String> = self.tenths.iter().map(|t| format!("{t:.0}")).collect();
        let mb = |v: Option<f64>| v.map_or("?".to_owned(), |v| format!("{v:.0} MB"));
        format!(
            "{} payments, {} concurrent, in {:.1} s: {:.0} payments/s ({:.0} calls/s)\n\
             per tenth: {} (last/first {:.2})\n\
             resident memory: {} at the start, {} at the end; state on disk {:.0} MB",
            self.payments,
            self.concurrency,
            self.secs,
            self.payments_per_sec,
            self.calls_per_sec,
            tenths.join(" "),
            self.last_tenth_vs_first,
            mb(self.rss_mb_start),
            mb(self.rss_mb_end),
            self.disk_mb,
        )
    }
}

pub async fn run(opts: SimBenchOptions) -> anyhow::Result<SimReport> {
    anyhow::ensure!(opts.payments > 0 && opts.concurrency > 0, "payments and concurrency must be positive");
    let dir = tempfile::tempdir()?;
    let key = format!("test_sk_{}", crate::secrets::random_hex(16)?);
    let sims = Simulators::start(SimulatorOptions {
        secret_key: key.clone(),
        pg_port: 0,
        sink_port: 0,
        webhook_url: None,
        webhook_secret: None,
        webhook_backoff: Duration::from_secs(1),
        stall: Duration::from_secs(1),
        delay: Duration::from_millis(100),
        clock: std::sync::Arc::new(shop_app::clock::SystemClock),
        data_dir: Some(dir.path().to_owned()),
        va_due: crate::sim::pg::VA_DUE,
        limits: crate::listen::Limits::with_max_body(crate::listen::JSON_BODY),
    })
    .await?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(opts.concurrency).build()?;
    let (pg, sink) = (format!("http://{}", sims.pg_addr), format!("http://{}", sims.sink_addr));
    let rss_start = crate::bench::rss_mb();
    let started = Instant::now();
    let mut done = futures::stream::iter(0..opts.payments)
        .map(|i| one_payment(&http, &pg, &sink, &key, i))
        .buffer_unordered(opts.concurrency);
    let tenth = (opts.payments / 10).max(1);
    let mut marks = vec![Duration::ZERO];
    let mut finished = 0usize;
    while let Some(r) = done.next().await {
        r?;
        finished += 1;
        if finished.is_multiple_of(tenth) && marks.len() <= 10 {
            marks.push(started.elapsed());
        }
    }
    drop(done);
    let secs = started.elapsed().as_secs_f64();
    let rss_end = crate::bench::rss_mb();
    let disk_mb = std::fs::read_dir(dir.path())?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len() as f64 / 1_048_576.0)
        .sum();
    sims.stop().await;
    let tenths: Vec<f64> =
        marks.windows(2).filter_map(|w| Some(tenth as f64 / (*w.get(1)? - *w.first()?).as_secs_f64())).collect();
    Ok(SimReport {
        payments: opts.payments,
        concurrency: opts.concurrency,
        secs,
        payments_per_sec: opts.payments as f64 / secs,
        calls_per_sec: 4.0 * opts.payments as f64 / secs,
        last_tenth_vs_first: match (tenths.first(), tenths.last()) {
            (Some(f), Some(l)) if *f > 0.0 => l / f,
            _ => 0.0,
        },
        tenths,
        rss_mb_start: rss_start,
        rss_mb_end: rss_end,
        disk_mb,
    })
}

async fn one_payment(http: &reqwest::Client, pg: &str, sink: &str, key: &str, i: usize) -> anyhow::Result<()> {
    let order_id = format!("simbench-{i}");
    let amount = 1_000 + (i % 50) as u64 * 100;
    let method = if i % 4 == 3 { "VIRTUAL_ACCOUNT" } else { "CARD" };
    let payment = http
        .post(format!("{pg}/v1/sim/checkout"))
        .json(&json!({"orderId": order_id, "amount": amount, "method": method}))
        .send()
        .await?
        .error_for_status()?
        .json::<serde_json::Value>()
        .await?;
    let payment = payment.get("paymentKey").and_then(|k| k.as_str()).unwrap_or_default().to_owned();
    http.post(format!("{pg}/v1/payments/confirm"))
        .basic_auth(key, Some(""))
        .header("idempotency-key", format!("confirm-{order_id}"))
        .json(&json!({"paymentKey": payment, "orderId": order_id, "amount": amount}))
        .send()
        .await?
        .error_for_status()?;
    http.get(format!("{pg}/v1/payments/orders/{order_id}"))
        .basic_auth(key, Some(""))
        .send()
        .await?
        .error_for_status()?;
    http.post(format!("{sink}/events"))
        .header("idempotency-key", format!("{order_id}#2"))
        .json(&json!({"detailType": "OrderPaid", "orderId": order_id}))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}
