//! The Toss Payments adapter of [`PaymentGateway`]: Basic auth with the
//! secret key, an `Idempotency-Key` on every mutating call, and Toss's
//! `{code, message}` errors mapped to [`PgError`]. The local stack's PG
//! simulator speaks the same API, so the same client talks to both.

use crate::ports::{PaymentGateway, PgCancel, PgError, PgPayment, PgStatus, idempotency_key};
use shop_domain::{Money, OrderId, PaymentKey, PaymentMethod, Timestamp};
use std::time::Duration;

/// Toss's `method` is Korean ("카드", "가상계좌", ...); the simulator may send
/// the English enum. Everything that is not a virtual account settles like a card.
pub fn method_of(method: Option<&str>) -> PaymentMethod {
    match method {
        Some("가상계좌" | "VIRTUAL_ACCOUNT") => PaymentMethod::VirtualAccount,
        _ => PaymentMethod::Card,
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TossPayment {
    payment_key: String,
    order_id: String,
    status: String,
    #[serde(default)]
    method: Option<String>,
    total_amount: i64,
    #[serde(default)]
    balance_amount: Option<i64>,
    #[serde(default)]
    approved_at: Option<String>,
    #[serde(default)]
    virtual_account: Option<serde_json::Value>,
}

/// Parses a Toss `Payment` object.
pub fn parse_payment(body: &[u8]) -> Result<PgPayment, String> {
    let p: TossPayment = serde_json::from_slice(body).map_err(|e| format!("unreadable payment: {e}"))?;
    let money = |v: i64| Money::new(i128::from(v)).map_err(|e| e.to_string());
    Ok(PgPayment {
        payment_key: PaymentKey::parse(p.payment_key).map_err(|e| e.to_string())?,
        order_id: OrderId::parse(p.order_id).map_err(|e| e.to_string())?,
        status: PgStatus::parse(&p.status).ok_or_else(|| format!("unknown status {}", p.status))?,
        method: method_of(p.method.as_deref()),
        total_amount: money(p.total_amount)?,
        balance_amount: money(p.balance_amount.unwrap_or(p.total_amount))?,
        approved_at: p.approved_at,
        deposit_due: p
            .virtual_account
            .as_ref()
            .and_then(|v| v.get("dueDate"))
            .and_then(serde_json::Value::as_str)
            .and_then(Timestamp::parse_rfc3339),
        virtual_account: p.virtual_account.filter(|v| !v.is_null()),
    })
}

/// Maps a non-2xx Toss answer (`{"code","message"}`) to an outcome.
pub fn classify_error(status: u16, body: &[u8]) -> PgError {
    #[derive(serde::Deserialize)]
    struct TossError {
        code: String,
        #[serde(default)]
        message: String,
    }
    let err: Option<TossError> = serde_json::from_slice(body).ok();
    match (status, err) {
        (_, Some(e)) if e.code == "ALREADY_PROCESSED_PAYMENT" => PgError::AlreadyProcessed,
        // The same Idempotency-Key's first request is still being worked on:
        // its outcome is not known yet (never a refusal); ask again later.
        (_, Some(e)) if e.code == "IDEMPOTENT_REQUEST_PROCESSING" => PgError::Unknown(e.code),
        // The payment window lapsed (READY 30 minutes, IN_PROGRESS 10): a
        // definite refusal of this confirm, with the PG's reason kept.
        (_, Some(e)) if e.code == "NOT_FOUND_PAYMENT_SESSION" => PgError::Declined { code: e.code, message: e.message },
        (404, _) => PgError::NotFound,
        (_, Some(e)) if e.code == "NOT_FOUND_PAYMENT" => PgError::NotFound,
        // 4xx other than rate limiting: a definite refusal; nothing happened.
        (400..=499, Some(e)) if status != 429 && status != 408 => {
            PgError::Declined { code: e.code, message: e.message }
        }
        (s, e) => PgError::Unknown(format!("HTTP {s} {}", e.map(|e| e.code).unwrap_or_default())),
    }
}

/// HTTP client for the Toss Payments API (or the simulator).
#[derive(Clone)]
pub struct TossClient {
    http: reqwest::Client,
    base: String,
    /// `Basic base64(secretKey + ":")`; never logged.
    authorization: String,
}

impl std::fmt::Debug for TossClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TossClient").field("base", &self.base).field("authorization", &"<redacted>").finish()
    }
}

impl TossClient {
    /// `base` is e.g. `https://api.tosspayments.com`; `timeout` bounds every call.
    pub fn new(base: &str, secret_key: &str, timeout: Duration) -> anyhow::Result<TossClient> {
        use base64::Engine as _;
        let http =
            reqwest::Client::builder().timeout(timeout).connect_timeout(timeout.min(Duration::from_secs(3))).build()?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{secret_key}:"));
        Ok(TossClient { http, base: base.trim_end_matches('/').to_owned(), authorization: format!("Basic {token}") })
    }

    async fn send(&self, req: reqwest::RequestBuilder, idempotency_key: Option<&str>) -> Result<PgPayment, PgError> {
        let mut req = req.header("authorization", &self.authorization);
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        // Which request of ours made the call, for the PG's logs and ours.
        if let Some(c) = crate::obs::telemetry::current_field("correlation_id") {
            req = req.header("x-correlation-id", c);
        }
        if let Some(t) = crate::obs::trace::current_traceparent() {
            req = req.header(crate::obs::trace::TRACEPARENT, t);
        }
        let started = std::time::Instant::now();
        let sent = req.send().await;
        crate::obs::metrics::observe_ms(crate::obs::metrics::PG_LATENCY, started.elapsed().as_secs_f64() * 1e3);
        let resp = sent.map_err(|e| {
            // A timeout after sending means the PG may have acted.
            PgError::Unknown(if e.is_timeout() { "timeout".to_owned() } else { format!("transport: {e}") })
        })?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| PgError::Unknown(format!("reading body: {e}")))?;
        if (200..300).contains(&status) {
            parse_payment(&body).map_err(PgError::Unknown)
        } else {
            Err(classify_error(status, &body))
        }
    }
}

#[async_trait::async_trait]
impl PaymentGateway for TossClient {
    async fn confirm(&self, payment_key: &PaymentKey, order_id: &OrderId, amount: Money) -> Result<PgPayment, PgError> {
        let body = serde_json::json!({"paymentKey": payment_key, "orderId": order_id, "amount": amount.won()});
        let key = idempotency_key("confirm", &[order_id.as_str(), payment_key.as_str()]);
        self.send(self.http.post(format!("{}/v1/payments/confirm", self.base)).json(&body), Some(&key)).await
    }

    async fn cancel(&self, payment_key: &PaymentKey, cancel: &PgCancel) -> Result<PgPayment, PgError> {
        let mut body = serde_json::json!({"cancelReason": cancel.reason});
        if let (Some(a), Some(obj)) = (cancel.amount, body.as_object_mut()) {
            obj.insert("cancelAmount".into(), a.won().into());
        }
        if let (Some(account), Some(obj)) = (&cancel.refund_account, body.as_object_mut()) {
            let (bank, number, holder) = account.fields();
            obj.insert(
                "refundReceiveAccount".into(),
                serde_json::json!({"bank": bank, "accountNumber": number, "holderName": holder}),
            );
        }
        let key = cancel.idempotency_key(payment_key);
        let url = format!("{}/v1/payments/{}/cancel", self.base, payment_key);
        self.send(self.http.post(url).json(&body), Some(&key)).await
    }

    async fn payment(&self, payment_key: &PaymentKey) -> Result<PgPayment, PgError> {
        self.send(self.http.get(format!("{}/v1/payments/{}", self.base, payment_key)), None).await
    }

    async fn payment_by_order(&self, order_id: &OrderId) -> Result<PgPayment, PgError> {
        self.send(self.http.get(format!("{}/v1/payments/orders/{}", self.base, order_id)), None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_outcomes() {
        let e = |s, b: &str| classify_error(s, b.as_bytes());
        assert_eq!(e(400, r#"{"code":"ALREADY_PROCESSED_PAYMENT","message":"x"}"#), PgError::AlreadyProcessed);
        assert_eq!(e(404, r#"{"code":"NOT_FOUND_PAYMENT","message":"x"}"#), PgError::NotFound);
        assert!(
            matches!(e(404, r#"{"code":"NOT_FOUND_PAYMENT_SESSION","message":"expired"}"#), PgError::Declined { code, .. } if code == "NOT_FOUND_PAYMENT_SESSION")
        );
        assert!(
            matches!(e(403, r#"{"code":"REJECT_CARD_COMPANY","message":"no"}"#), PgError::Declined { code, .. } if code == "REJECT_CARD_COMPANY")
        );
        assert!(matches!(e(500, r#"{"code":"FAILED_INTERNAL_SYSTEM_PROCESSING","message":"x"}"#), PgError::Unknown(_)));
        assert!(matches!(e(429, r#"{"code":"TOO_MANY_REQUESTS","message":"x"}"#), PgError::Unknown(_)));
        assert!(matches!(e(409, r#"{"code":"IDEMPOTENT_REQUEST_PROCESSING","message":"x"}"#), PgError::Unknown(_)));
        assert!(matches!(e(502, "<html>"), PgError::Unknown(_)));
    }

    #[test]
    fn idempotency_keys_differ_per_payment_and_operation() {
        assert_eq!(idempotency_key("confirm", &["o1", "pk_a"]), idempotency_key("confirm", &["o1", "pk_a"]));
        assert_ne!(idempotency_key("confirm", &["o1", "pk_a"]), idempotency_key("confirm", &["o1", "pk_b"]));
        assert_ne!(idempotency_key("confirm", &["o1", "pk_a"]), idempotency_key("cancel", &["o1", "pk_a"]));
        // Parts cannot run into each other.
        assert_ne!(idempotency_key("confirm", &["o1", "pk"]), idempotency_key("confirm", &["o1p", "k"]));
        assert!(idempotency_key("confirm", &["o1", "pk_a"]).len() <= 300);
    }

    #[test]
    fn parses_toss_payment_objects() {
        let p = parse_payment(
            r#"{"paymentKey":"pk1","orderId":"o1","status":"WAITING_FOR_DEPOSIT","method":"가상계좌","totalAmount":15000,
                "virtualAccount":{"accountNumber":"X123","bank":"88","dueDate":"2026-11-24T09:00:00+09:00"},
                "approvedAt":null,"unknownField":1}"#
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(p.status, PgStatus::WaitingForDeposit);
        assert_eq!(p.method, PaymentMethod::VirtualAccount);
        assert_eq!(p.total_amount.won(), 15000);
        assert!(p.virtual_account.is_some());
        assert_eq!(p.deposit_due, Timestamp::parse_rfc3339("2026-11-24T00:00:00Z"));
        assert!(parse_payment(br#"{"paymentKey":"pk1","orderId":"o1","status":"WAT","totalAmount":1}"#).is_err());
    }

    #[test]
    fn secret_key_is_not_in_debug_output() {
        let c = TossClient::new("http://pg", "test_sk_secret", Duration::from_secs(1)).unwrap();
        assert!(!format!("{c:?}").contains("test_sk_secret"));
    }
}
