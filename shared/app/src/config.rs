//! Configuration from the environment, read once at cold start.

use shop_store::idempotency::IdemPolicy;

#[derive(Debug, Clone)]
pub struct Config {
    /// The single DynamoDB table (`TABLE_NAME`).
    pub table_name: String,
    /// How long a new order stays payable (`ORDER_TTL_SECS`, default 900).
    pub order_ttl_secs: i64,
    pub idempotency: IdemPolicy,
}

impl Default for Config {
    fn default() -> Self {
        Self { table_name: "shop".into(), order_ttl_secs: 900, idempotency: IdemPolicy::default() }
    }
}

impl Config {
    /// Reads `TABLE_NAME`, `ORDER_TTL_SECS`, `IDEMPOTENCY_KEEP_SECS`.
    pub fn from_env() -> anyhow::Result<Config> {
        let d = Config::default();
        let int = |name: &str, default: i64| -> anyhow::Result<i64> {
            match std::env::var(name) {
                Ok(v) => v.parse().map_err(|e| anyhow::anyhow!("{name}={v}: {e}")),
                Err(_) => Ok(default),
            }
        };
        let config = Config {
            table_name: std::env::var("TABLE_NAME").unwrap_or(d.table_name),
            order_ttl_secs: int("ORDER_TTL_SECS", d.order_ttl_secs)?,
            idempotency: IdemPolicy {
                keep_secs: int("IDEMPOTENCY_KEEP_SECS", d.idempotency.keep_secs)?,
                in_progress_ms: int("IDEMPOTENCY_IN_PROGRESS_MS", d.idempotency.in_progress_ms)?,
            },
        };
        anyhow::ensure!(config.order_ttl_secs > 0, "ORDER_TTL_SECS must be positive");
        anyhow::ensure!(config.idempotency.keep_secs >= 24 * 3600, "IDEMPOTENCY_KEEP_SECS must be at least 86400");
        Ok(config)
    }
}
