//! Business metrics. In Lambda each count is one CloudWatch Embedded Metric
//! Format line on stdout (CloudWatch turns it into a metric, no API call);
//! every process also keeps the totals in memory, which the local stack
//! reports and tests read.

use std::collections::BTreeMap;
use std::sync::Mutex;

pub const NAMESPACE: &str = "shop";

static TOTALS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());

/// Adds `n` to the metric `name` (a `Count`).
pub fn count(service: &str, name: &'static str, n: u64) {
    if let Ok(mut t) = TOTALS.lock() {
        *t.entry(name).or_default() += n;
    }
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

/// The in-process total of `name` since start.
pub fn total(name: &str) -> u64 {
    TOTALS.lock().map(|t| t.get(name).copied().unwrap_or(0)).unwrap_or(0)
}

/// All in-process totals.
pub fn totals() -> BTreeMap<&'static str, u64> {
    TOTALS.lock().map(|t| t.clone()).unwrap_or_default()
}
