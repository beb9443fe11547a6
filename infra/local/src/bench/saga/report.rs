//! What a saga run reports: its numbers (JSON), rendered as text, and
//! the side-by-side comparison of two engines.

use super::check::Violations;
use super::mix::Path;
use super::pricing::AwsModel;
use crate::engine::Capacity;
use std::collections::BTreeMap;

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
    /// Orders still in flight when quiescence gave up: not checked, and a
    /// non-zero exit of their own (never counted as violations).
    pub unsettled: usize,
    /// Why the first few of them are not settled.
    pub unsettled_examples: Vec<String>,
    /// Seconds from the end of the load (and the expiring share's TTL) to quiescence.
    pub quiesce_secs: f64,
    /// The bound quiescence had, derived from the measured settle rate.
    pub quiesce_bound_secs: f64,
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
    /// The same calls by shape (operation and the kinds of item touched;
    /// [`crate::engine::shape`]): the call table of docs/adr/0023.
    pub store_call_shapes_per_order: BTreeMap<String, f64>,
    /// The emulated stream, EventBridge and SQS's own store calls per
    /// settled order (on AWS, not DynamoDB calls; polls of idle queues included).
    pub emulation_calls_per_order: BTreeMap<String, f64>,
    pub emulation_calls_per_order_total: f64,
    /// Capacity units per settled order as the engine reported them
    /// (`ConsumedCapacity`; DynamoDB Local's is the one AWS would bill).
    pub capacity_per_order: Capacity,
    /// The same by the calls' shapes (the call table's rows): where the
    /// units go, index writes included.
    pub capacity_per_order_by_shape: BTreeMap<String, Capacity>,
    /// Write units the engine reports for a one-item transaction over the
    /// same item written alone (DynamoDB: 2; DynamoDB Local 1.25: 4).
    pub transaction_write_factor: f64,
    /// `capacity_per_order` without the local-only pending index's writes
    /// and with the transactions' writes at DynamoDB's factor: what the
    /// bill is priced from.
    pub capacity_per_order_at_aws_rates: Capacity,
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
    /// The cost of an order early in the load and at its end.
    pub cost_window: Option<super::CostWindow>,
    pub rss_mb_start: Option<f64>,
    pub rss_mb_end: Option<f64>,
    /// Orders planned on each path, and how they ended.
    pub paths: BTreeMap<Path, BTreeMap<&'static str, usize>>,
    pub violations: Violations,
}

/// A saga benchmark's exit code: 1 when an invariant broke, else 2 when
/// orders were still unsettled at the bound, else 0.
pub fn exit_code(violations: u64, unsettled: usize) -> i32 {
    if violations > 0 {
        1
    } else if unsettled > 0 {
        2
    } else {
        0
    }
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Percentiles {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    pub(crate) fn of(mut ms: Vec<f64>) -> Percentiles {
        ms.sort_by(f64::total_cmp);
        let at = |p: f64| {
            let i = ((ms.len() as f64 - 1.0) * p).round() as usize;
            ms.get(i).copied().unwrap_or_default()
        };
        Percentiles { n: ms.len(), p50: at(0.5), p99: at(0.99), max: ms.last().copied().unwrap_or_default() }
    }

    pub fn text(&self) -> String {
        format!("p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n={})", self.p50, self.p99, self.max, self.n)
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

impl Report {
    /// No violation and nothing unsettled.
    pub fn ok(&self) -> bool {
        self.violations.total() == 0 && self.unsettled == 0
    }

    /// 0 clean, 1 a violation, 2 only orders unsettled ([`exit_code`]).
    pub fn exit_code(&self) -> i32 {
        exit_code(self.violations.total(), self.unsettled)
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
                "settled: {} orders in {:.2}s = {:.0} orders/s (load {:.2}s; quiescent {:.1}s after it, bound {:.0}s)",
                self.settled,
                self.settle_secs,
                self.settled_per_sec,
                self.load_secs,
                self.quiesce_secs,
                self.quiesce_bound_secs
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
        let mut line = format!(
            "capacity units per settled order: {:.1} RCU / {:.1} WCU reported by the engine; item-model lower bound {:.1} RCU / {:.1} WCU",
            c.read, c.write, m.read, m.write
        );
        line.push_str(&format!(
            "; {:.1} WCU as AWS bills it (no local-only pending index; a transactional write at 2× a plain one, the engine's {:.0}×)",
            self.capacity_per_order_at_aws_rates.write, self.transaction_write_factor
        ));
        out.push(line);
        out.push(self.aws.text());
        out.push(format!(
            "engine limit: {:.0} TransactWriteItems/s (4 puts); saga/engine {:.3}; the saga used {:.0}% of it",
            self.engine_transactions_per_sec,
            self.saga_vs_engine,
            self.engine_utilisation * 100.0
        ));
        if let Some(w) = &self.cost_window {
            let mut line = format!(
                "cost per order, orders {}–{} vs the last {}: {:.1} vs {:.1} store calls ({:.2}×)",
                w.orders,
                2 * w.orders,
                w.orders,
                w.first.store_calls_per_order,
                w.last.store_calls_per_order,
                w.calls_ratio
            );
            if let (Some(f), Some(l), Some(r)) =
                (w.first.engine_us_per_order, w.last.engine_us_per_order, w.engine_ratio)
            {
                line.push_str(&format!("; {f:.0} vs {l:.0} µs of engine time ({r:.2}×)"));
            }
            out.push(line);
        }
        let mb = |m: Option<f64>| m.map(|m| format!("{m:.0} MB")).unwrap_or_else(|| "n/a".into());
        out.push(format!(
            "resident memory: {} at the start, {} at the end",
            mb(self.rss_mb_start),
            mb(self.rss_mb_end)
        ));
        out.extend(path_lines(&self.paths));
        out.extend(unsettled_lines(self.unsettled, &self.unsettled_examples));
        out.extend(self.violations.lines());
        out.join("\n")
    }
}

/// "unsettled: none", or how many orders were still in flight and why.
pub(super) fn unsettled_lines(unsettled: usize, examples: &[String]) -> Vec<String> {
    if unsettled == 0 {
        return vec!["unsettled: none".into()];
    }
    let mut out = vec![format!(
        "unsettled: {unsettled} order(s) still in flight at the bound — not checked; the sums over stock, points and queues were skipped"
    )];
    out.extend(examples.iter().map(|e| format!("  {e}")));
    out
}

pub(super) fn path_lines(paths: &BTreeMap<Path, BTreeMap<&'static str, usize>>) -> Vec<String> {
    paths
        .iter()
        .map(|(path, ended)| {
            let ended = ended.iter().map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(", ");
            format!("  {path:?}: {ended}")
        })
        .collect()
}
