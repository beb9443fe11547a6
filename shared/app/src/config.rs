//! Configuration from the environment, read once at cold start.

use shop_store::idempotency::IdemPolicy;

#[derive(Clone)]
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
    /// Signs and verifies the waiting room's admission tokens
    /// (`ADMISSION_SECRET`; in AWS resolved from SSM at cold start by the
    /// functions that need it). Without it no admission token is issued or
    /// accepted: a sale's gated products cannot be ordered. Never logged.
    pub admission_secret: Option<String>,
    /// Receives of a message before its queue moves it to the DLQ
    /// (`MAX_RECEIVE_COUNT`, default 5: the template's `maxReceiveCount`,
    /// `shop up --max-receive` locally): a consumer that fails on the last
    /// one records its outcome as dead-lettered.
    pub max_receives: u32,
    /// The 256-bit key refund accounts are sealed with when no KMS key is
    /// given (`REFUND_ACCOUNT_KEY`, 64 hex digits: the local stack's, derived
    /// from its data dir's secrets, for `cargo lambda watch` against it).
    /// In AWS the functions that seal or open use KMS data keys instead
    /// (`REFUND_ACCOUNT_KEY_ID`). Never logged.
    pub refund_account_key: Option<[u8; 32]>,
}

/// Everything but the secrets: a `Config` may be logged.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("table_name", &self.table_name)
            .field("order_ttl_secs", &self.order_ttl_secs)
            .field("idempotency", &self.idempotency)
            .field("pg_base_url", &self.pg_base_url)
            .field("pg_secret_key", &if self.pg_secret_key.is_empty() { "<unset>" } else { "<redacted>" })
            .field("pg_timeout_ms", &self.pg_timeout_ms)
            .field("pg_webhook_secret", &self.pg_webhook_secret.as_ref().map(|_| "<redacted>"))
            .field("reconcile_after_secs", &self.reconcile_after_secs)
            .field("admission_secret", &self.admission_secret.as_ref().map(|_| "<redacted>"))
            .field("max_receives", &self.max_receives)
            .field("refund_account_key", &self.refund_account_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
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
            admission_secret: None,
            max_receives: 5,
            refund_account_key: None,
        }
    }
}

impl Config {
    /// Reads `TABLE_NAME`, `ORDER_TTL_SECS`, `IDEMPOTENCY_KEEP_SECS`,
    /// `IDEMPOTENCY_IN_PROGRESS_MS`, `PG_BASE_URL`, `PG_SECRET_KEY`,
    /// `PG_TIMEOUT_MS`, `PG_WEBHOOK_SECRET`, `RECONCILE_AFTER_SECS`,
    /// `ADMISSION_SECRET`, `MAX_RECEIVE_COUNT`, `REFUND_ACCOUNT_KEY`.
    pub fn from_env() -> anyhow::Result<Config> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// The configuration from `var` (the environment, or a test's map);
    /// anything invalid fails here, at cold start.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Config> {
        let d = Config::default();
        let int = |name: &str, default: i64| -> anyhow::Result<i64> {
            match var(name) {
                Some(v) => v.parse().map_err(|e| anyhow::anyhow!("{name}={v}: {e}")),
                None => Ok(default),
            }
        };
        let config = Config {
            table_name: var("TABLE_NAME").unwrap_or(d.table_name),
            order_ttl_secs: int("ORDER_TTL_SECS", d.order_ttl_secs)?,
            idempotency: IdemPolicy {
                keep_secs: int("IDEMPOTENCY_KEEP_SECS", d.idempotency.keep_secs)?,
                in_progress_ms: int("IDEMPOTENCY_IN_PROGRESS_MS", d.idempotency.in_progress_ms)?,
            },
            pg_base_url: var("PG_BASE_URL").unwrap_or(d.pg_base_url),
            pg_secret_key: var("PG_SECRET_KEY").unwrap_or_default(),
            pg_timeout_ms: u64::try_from(int("PG_TIMEOUT_MS", 10_000)?)
                .ok()
                .filter(|ms| *ms > 0)
                .ok_or_else(|| anyhow::anyhow!("PG_TIMEOUT_MS must be a positive number of milliseconds"))?,
            pg_webhook_secret: var("PG_WEBHOOK_SECRET").filter(|s| !s.is_empty()),
            reconcile_after_secs: int("RECONCILE_AFTER_SECS", d.reconcile_after_secs)?,
            admission_secret: var("ADMISSION_SECRET").filter(|s| !s.is_empty()),
            max_receives: u32::try_from(int("MAX_RECEIVE_COUNT", i64::from(d.max_receives))?)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| anyhow::anyhow!("MAX_RECEIVE_COUNT must be a positive count"))?,
            refund_account_key: match var("REFUND_ACCOUNT_KEY").filter(|s| !s.is_empty()) {
                Some(v) => Some(
                    hex::decode(v.trim())
                        .ok()
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .ok_or_else(|| anyhow::anyhow!("REFUND_ACCOUNT_KEY must be 64 hex digits (256 bits)"))?,
                ),
                None => None,
            },
        };
        anyhow::ensure!(config.order_ttl_secs > 0, "ORDER_TTL_SECS must be positive");
        anyhow::ensure!(config.idempotency.keep_secs >= 24 * 3600, "IDEMPOTENCY_KEEP_SECS must be at least 86400");
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> anyhow::Result<Config> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn a_timeout_that_is_not_positive_fails_at_start() {
        for bad in ["-1", "0", "ten"] {
            let err = with(&[("PG_TIMEOUT_MS", bad)]).expect_err(bad);
            assert!(err.to_string().contains("PG_TIMEOUT_MS"), "{err}");
        }
        assert_eq!(with(&[("PG_TIMEOUT_MS", "250")]).unwrap().pg_timeout_ms, 250);
        assert_eq!(with(&[]).unwrap().pg_timeout_ms, 10_000);
    }

    #[test]
    fn debug_never_prints_the_secrets() {
        let c = Config {
            pg_secret_key: "test_sk_SECRET".into(),
            pg_webhook_secret: Some("whsec_SECRET".into()),
            admission_secret: Some("adm_SECRET".into()),
            ..Config::default()
        };
        let printed = format!("{c:?}");
        assert!(!printed.contains("SECRET"), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
    }
}
