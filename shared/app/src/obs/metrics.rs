//! Business metrics. In Lambda each count is one CloudWatch Embedded Metric
//! Format line on stdout (CloudWatch turns it into a metric, no API call).
//! Each [`App`](crate::App) also keeps its own totals in memory — the local
//! stack reports them and tests read them — so apps in one process (tests
//! running in parallel) never see each other's counts.

use std::collections::BTreeMap;
use std::sync::Mutex;

pub const NAMESPACE: &str = "shop";

/// One app's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    totals: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Adds `n` to the metric `name` (a `Count`) of `service`.
    pub fn count(&self, service: &str, name: &'static str, n: u64) {
        if let Ok(mut t) = self.totals.lock() {
            *t.entry(name).or_default() += n;
        }
        emit(service, name, n);
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

fn emit(service: &str, name: &'static str, n: u64) {
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let line = serde_json::json!({
            "_aws": {
                "Timestamp": ts,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["service"]],
                    "Metrics": [{"Name": name, "Unit": "Count"}],
                }],
            },
            "service": service,
            name: n,
        });
        println!("{line}");
    } else {
        tracing::info!(metric = name, value = n, "metric");
    }
}
