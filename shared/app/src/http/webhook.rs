//! `POST /webhooks/pg`: the PG's `PAYMENT_STATUS_CHANGED` and
//! `DEPOSIT_CALLBACK` notifications.
//!
//! The body is never trusted (Toss does not sign webhooks): it is parsed
//! strictly only to learn *which* payment changed, and the payment is then
//! fetched from the PG and applied through the same code path as a confirm
//! answer ([`apply_notification`]). READY / IN_PROGRESS are not outcomes and
//! change nothing (anybody holding a key can make a checkout show them). A
//! notification of what our record already says is answered from that one
//! read ([`already_recorded`]), so the PG's redeliveries of an applied
//! outcome cost no PG call (a deposit callback's, which names no status, is
//! looked up again). No idempotency record is kept (docs/adr/0023): applying
//! is idempotent by the records' versions. A payment or order we do not know is answered 200 (so the PG stops
//! retrying), logged and counted. When
//! `PG_WEBHOOK_SECRET` is set the request must carry
//! `Pg-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`
//! no older than 300 s.

use crate::App;
use crate::http::{self, Problem, RequestCtx};
use crate::ports::PgStatus;
use crate::usecases::pg_notification::{
    Notification, NotificationError, Recorded, already_recorded, apply_notification,
};
use hmac::{Hmac, Mac};
use lambda_http::{Body, Request, Response};
use sha2::Sha256;
use shop_domain::{OrderId, PaymentKey};

pub const SIGNATURE_HEADER: &str = "pg-signature";
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

fn bad(detail: impl Into<String>) -> Problem {
    Problem::bad_request(detail)
}

/// Parses a notification. Fields we do not use are ignored (Toss adds
/// fields over time); the ones we use must be present and valid.
pub fn parse(body: &[u8]) -> Result<Notification, Problem> {
    let v = http::parse_object(body)?;
    let obj = v.as_object().ok_or_else(|| bad("a webhook body is a JSON object"))?;
    let str_field = |o: &serde_json::Map<String, serde_json::Value>, k: &str| -> Result<String, Problem> {
        o.get(k).and_then(|v| v.as_str()).map(str::to_owned).ok_or_else(|| bad(format!("missing string field {k}")))
    };
    let order_of = |o: &serde_json::Map<String, serde_json::Value>| -> Result<OrderId, Problem> {
        OrderId::parse(str_field(o, "orderId")?).map_err(|e| bad(e.to_string()))
    };
    match obj.get("eventType").and_then(|t| t.as_str()) {
        Some("PAYMENT_STATUS_CHANGED") => {
            let data = obj.get("data").and_then(|d| d.as_object()).ok_or_else(|| bad("missing object data"))?;
            let status = str_field(data, "status")?;
            let claimed = PgStatus::parse(&status).ok_or_else(|| bad(format!("unknown payment status {status}")))?;
            Ok(Notification::StatusChanged {
                payment_key: PaymentKey::parse(str_field(data, "paymentKey")?).map_err(|e| bad(e.to_string()))?,
                order_id: order_of(data)?,
                claimed,
            })
        }
        Some("DEPOSIT_CALLBACK") => {
            let data = obj.get("data").and_then(|d| d.as_object()).ok_or_else(|| bad("missing object data"))?;
            str_field(data, "transactionKey")?;
            Ok(Notification::Deposit { order_id: order_of(data)? })
        }
        // The original DEPOSIT_CALLBACK has no eventType.
        None if obj.contains_key("transactionKey") && obj.contains_key("secret") => {
            str_field(obj, "transactionKey")?;
            str_field(obj, "secret")?;
            Ok(Notification::Deposit { order_id: order_of(obj)? })
        }
        Some(other) => Err(bad(format!("unsupported eventType {other}"))),
        None => Err(bad("missing eventType")),
    }
}

/// HMAC-SHA256 over `"<t>.<body>"`.
fn mac(secret: &str, t: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("any key length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Signs `body` at `t` (the simulator uses this; so can a test).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(mac(secret, t, body).finalize().into_bytes()))
}

/// Verifies a `Pg-Signature` header at `now_secs`.
pub fn verify(secret: &str, header: &str, body: &[u8], now_secs: i64) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(v),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now_secs - t).abs() > SIGNATURE_TOLERANCE_SECS {
        return false;
    }
    sigs.into_iter().any(|sig| {
        let Ok(sig) = hex::decode(sig) else { return false };
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("any key length"));
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&sig).is_ok()
    })
}

/// `POST /webhooks/pg`.
pub async fn pg_webhook(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("pg_webhook", req, |req, ctx| webhook_inner(app, req, ctx)).await
}

fn ok(ctx: &RequestCtx, note: &str) -> Response<Body> {
    http::json(200, &serde_json::json!({"received": true, "note": note}), ctx)
}

async fn webhook_inner(app: &App, req: Request, ctx: RequestCtx) -> Result<Response<Body>, Problem> {
    let body = http::json_body(&req)?;
    if let Some(secret) = &app.config.pg_webhook_secret {
        let header = req.headers().get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !verify(secret, header, body, app.clock.now().seconds()) {
            return Err(Problem::new(401, "bad-signature", "Bad signature", "missing, invalid or stale Pg-Signature"));
        }
    }
    let notification = parse(body)?;
    tracing::Span::current().record("order_id", notification.order_id().as_str());

    // What our record already says costs one read: no record, no PG call.
    let ours = match already_recorded(app, &notification).await {
        Ok(Recorded::Already) => return Ok(ok(&ctx, "already recorded")),
        Ok(Recorded::Not(ours)) => ours,
        Err(e) => return Err(http::internal(e)),
    };
    // Nothing else is remembered: applying a notification acts on the
    // payment's and the order's current state with conditional writes, so a
    // duplicate delivered at the same moment changes nothing the first did
    // not (it costs one more PG lookup), and one delivered later is answered
    // by `already_recorded`.
    match apply_notification(app, &notification, ours.as_ref(), &ctx.correlation_id).await {
        Ok(noted) => Ok(ok(&ctx, noted.as_str())),
        Err(NotificationError::PgUnavailable(pg)) => {
            tracing::warn!(error = %pg, "could not fetch the payment from the PG; the PG will retry");
            Err(http::pg_unavailable("the payment could not be verified yet"))
        }
        Err(NotificationError::Unexpected(err)) => Err(http::internal(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_notification_kinds_strictly() {
        let changed = br#"{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"2026-01-01T00:00:00.000000","data":{"paymentKey":"pk1","orderId":"o1","status":"DONE","extra":1}}"#;
        assert!(matches!(parse(changed), Ok(Notification::StatusChanged { .. })));
        let legacy = br#"{"createdAt":"2026-01-01T00:00:00.000","secret":"s","status":"DONE","transactionKey":"t","orderId":"o1"}"#;
        assert_eq!(parse(legacy).unwrap(), Notification::Deposit { order_id: OrderId::parse("o1").unwrap() });
        let wrapped = br#"{"eventType":"DEPOSIT_CALLBACK","data":{"secret":"s","status":"DONE","transactionKey":"t","orderId":"o1"}}"#;
        assert!(matches!(parse(wrapped), Ok(Notification::Deposit { .. })));
        for bad in [
            &br#"{"eventType":"PAYMENT_STATUS_CHANGED","data":{"paymentKey":"pk1","orderId":"o1","status":"PAID"}}"#[..],
            br#"{"eventType":"PAYMENT_STATUS_CHANGED","data":{"orderId":"o1","status":"DONE"}}"#,
            br#"{"eventType":"SOMETHING_ELSE"}"#,
            br#"[]"#,
            b"not json",
            br#"{"eventType":"PAYMENT_STATUS_CHANGED","data":{"paymentKey":"pk#1","orderId":"o1","status":"DONE"}}"#,
            // A DEPOSIT_CALLBACK with an eventType carries its fields in data.
            br#"{"eventType":"DEPOSIT_CALLBACK","transactionKey":"t","orderId":"o1"}"#,
            br#"{"secret":1,"transactionKey":"t","orderId":"o1"}"#,
        ] {
            assert_eq!(parse(bad).unwrap_err().status, 400, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn signatures() {
        let sig = sign("whsec", 1000, b"{}");
        assert!(verify("whsec", &sig, b"{}", 1000));
        assert!(verify("whsec", &sig, b"{}", 1300));
        assert!(!verify("whsec", &sig, b"{}", 1301), "stale");
        assert!(!verify("other", &sig, b"{}", 1000));
        assert!(!verify("whsec", &sig, b"{ }", 1000), "body changed");
        assert!(!verify("whsec", "v1=abc", b"{}", 1000));
        assert!(!verify("whsec", "", b"{}", 1000));
    }
}
