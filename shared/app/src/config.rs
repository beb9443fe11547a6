//! Configuration from the environment, read once at cold start.

use shop_store::idempotency::IdemPolicy;

#[derive(Debug, Clone)]
pub struct Config {
    /// The single DynamoDB table (`TABLE_NAME`).
    pub table_name: String,
    /// How long a new order stays payable (`ORDER_TTL_SECS`, default 900).
    pub order_ttl_secs: i64,
    pub idempotency: IdemPolicy,
    /// Base URL of the Toss-compatible PG (`PG_BASE_URL`).
    pub pg_base_url: String,
    /// The PG secret key (`PG_SECRET_KEY`; in AWS resolved from SSM/Secrets
    /// Manager at cold start). Never logged.
    pub pg_secret_key: String,
    /// Timeout of every PG call (`PG_TIMEOUT_MS`, default 10,000).
    pub pg_timeout_ms: u64,
    /// When set, `/webhooks/pg` requires a valid `Pg-Signature` (`PG_WEBHOOK_SECRET`).
    pub pg_webhook_secret: Option<String>,
    /// Payments in doubt this long are asked about at the PG (`RECONCILE_AFTER_SECS`, default 300).
    pub reconcile_after_secs: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            table_name: "shop".into(),
            order_ttl_secs: 900,
            idempotency: IdemPolicy::default(),
            pg_base_url: "https://api.tosspayments.com".into(),
            pg_secret_key: String::new(),
            pg_timeout_ms: 10_000,
            pg_webhook_secret: None,
            reconcile_after_secs: 300,
        }
    }
}

impl Config {
    /// Reads `TABLE_NAME`, `ORDER_TTL_SECS`, `IDEMPOTENCY_KEEP_SECS`,
    /// `IDEMPOTENCY_IN_PROGRESS_MS`, `PG_BASE_URL`, `PG_SECRET_KEY`,
    /// `PG_TIMEOUT_MS`, `PG_WEBHOOK_SECRET`, `RECONCILE_AFTER_SECS`.
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
            pg_base_url: std::env::var("PG_BASE_URL").unwrap_or(d.pg_base_url),
            pg_secret_key: std::env::var("PG_SECRET_KEY").unwrap_or_default(),
            pg_timeout_ms: u64::try_from(int("PG_TIMEOUT_MS", 10_000)?).unwrap_or(10_000),
            pg_webhook_secret: std::env::var("PG_WEBHOOK_SECRET").ok().filter(|s| !s.is_empty()),
            reconcile_after_secs: int("RECONCILE_AFTER_SECS", d.reconcile_after_secs)?,
        };
        anyhow::ensure!(config.order_ttl_secs > 0, "ORDER_TTL_SECS must be positive");
        anyhow::ensure!(config.idempotency.keep_secs >= 24 * 3600, "IDEMPOTENCY_KEEP_SECS must be at least 86400");
        Ok(config)
    }
}
