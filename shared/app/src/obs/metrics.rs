//! Business metrics. In Lambda each count goes through the `metrics` facade
//! to the CloudWatch Embedded Metric Format collector of
//! `metrics_cloudwatch_embedded` ([`install`]), which writes one EMF document
//! per invocation (the [`run`](super::lambda) wrappers flush it), under the
//! namespace `METRICS_NAMESPACE` (the template's `MetricsNamespace`) with
//! the dimension `service`. Each [`App`](crate::App) also keeps its own
//! totals in memory — the local stack reports them and tests read them — so
//! apps in one process (tests running in parallel) never see each other's
//! counts.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The namespace when `METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "shop";

/// The name of the metric counting cold starts (one per execution environment).
pub const COLD_START: &str = "ColdStart";

/// Time from a request's arrival to its answer, per function (`serve`).
pub const REQUEST_LATENCY: &str = "RequestLatency";
/// Time from an outbox event's commit to EventBridge accepting it.
pub const OUTBOX_AGE: &str = "OutboxAge";
/// Time of one PG call (confirm, lookup, cancel).
pub const PG_LATENCY: &str = "PgLatency";

static COLLECTOR: std::sync::OnceLock<&'static metrics_cloudwatch_embedded::Collector> = std::sync::OnceLock::new();

/// Installs the EMF collector as the process's metrics recorder, once:
/// `namespace` (else [`DEFAULT_NAMESPACE`]), dimension `service`, a cold-start
/// count, and each document tagged with the invocation's request and trace
/// ids. Later calls return the first collector.
pub fn install(
    service: &'static str,
    namespace: Option<String>,
) -> anyhow::Result<&'static metrics_cloudwatch_embedded::Collector> {
    if let Some(c) = COLLECTOR.get() {
        return Ok(c);
    }
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(namespace.unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()))
        .with_dimension("service", service)
        .lambda_cold_start_metric(COLD_START)
        .with_lambda_request_id("function_request_id")
        .with_lambda_xray_trace_id("xray_trace_id")
        .init()
        .map_err(|e| anyhow::anyhow!("installing the metrics collector: {e}"))?;
    for name in [REQUEST_LATENCY, OUTBOX_AGE, PG_LATENCY] {
        metrics::describe_histogram!(name, metrics::Unit::Milliseconds, "milliseconds");
    }
    Ok(*COLLECTOR.get_or_init(|| collector))
}

/// [`install`] with the namespace Lambda's environment gives
/// (`METRICS_NAMESPACE`, the template's `MetricsNamespace`).
pub fn install_from_env(service: &'static str) -> anyhow::Result<&'static metrics_cloudwatch_embedded::Collector> {
    install(service, std::env::var("METRICS_NAMESPACE").ok().filter(|n| !n.is_empty()))
}

/// The installed collector, if any.
pub fn collector() -> Option<&'static metrics_cloudwatch_embedded::Collector> {
    COLLECTOR.get().copied()
}

/// One app's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    totals: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Adds `n` to the metric `name` (a `Count`); in Lambda the collector's
    /// `service` dimension says whose.
    pub fn count(&self, name: &'static str, n: u64) {
        if let Ok(mut t) = self.totals.lock() {
            *t.entry(name).or_default() += n;
        }
        emit(name, n);
    }

    /// This app's total of `name` since it started.
    pub fn total(&self, name: &str) -> u64 {
        self.totals.lock().map(|t| t.get(name).copied().unwrap_or(0)).unwrap_or(0)
    }

    /// All of this app's totals.
    pub fn totals(&self) -> BTreeMap<&'static str, u64> {
        self.totals.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

fn emit(name: &'static str, n: u64) {
    if COLLECTOR.get().is_some() {
        metrics::counter!(name).increment(n);
    } else {
        tracing::debug!(metric = name, value = n, "metric");
    }
}

/// Records one observation of `name` in milliseconds: in Lambda a value of
/// an EMF histogram (CloudWatch derives p50, p99, max from them).
pub fn observe_ms(name: &'static str, ms: f64) {
    if COLLECTOR.get().is_some() {
        metrics::histogram!(name).record(ms);
    } else {
        tracing::trace!(metric = name, ms, "observation");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The only test in this crate that installs the process-wide recorder.
    #[test]
    fn counts_and_durations_become_one_emf_document_in_the_stack_namespace() {
        let collector = install("create-order", Some("shop-test-ns".into())).expect("collector");
        let app_metrics = Metrics::default();
        app_metrics.count("OrdersPlaced", 2);
        app_metrics.count("OrdersPlaced", 1);
        observe_ms(REQUEST_LATENCY, 12.5);
        assert_eq!(app_metrics.total("OrdersPlaced"), 3);

        let mut out = Vec::new();
        collector.flush(&mut out).expect("flush");
        let doc: serde_json::Value = serde_json::from_slice(&out).expect("one JSON document");
        let cw = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "shop-test-ns");
        assert_eq!(cw["Dimensions"][0][0], "service");
        assert_eq!(doc["service"], "create-order");
        assert_eq!(doc["OrdersPlaced"], 3);
        let latency = cw["Metrics"].as_array().into_iter().flatten().find(|m| m["Name"] == REQUEST_LATENCY);
        assert_eq!(latency.map(|m| m["Unit"].clone()), Some(serde_json::Value::from("Milliseconds")));
    }
}
