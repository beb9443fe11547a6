//! Nothing personal reaches a log line (its own binary: it installs the
//! process's subscriber, the production one — `obs::telemetry`'s JSON lines
//! with every span's fields — at TRACE for every target, writing to memory).
//!
//! A paid virtual account refunded to the shopper's account, a malformed
//! account refused, an account the bank refuses: the account number and
//! the holder's name appear in no line, while the lines of that work are
//! there.

use serde_json::{Value, json};
use shop_app::obs::telemetry::{Format, layers};
use shop_tests::{eventually, spawn_app};
use std::sync::{Arc, Mutex};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

const NUMBER: &str = "30212345678";
const HOLDER: &str = "박계좌";

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_refund_account_is_never_logged() {
    let lines = Lines::default();
    let writer = lines.clone();
    let (context, fmt) = layers("test", Format::Json, move || writer.clone());
    tracing_subscriber::registry()
        .with(tracing_subscriber::filter::Targets::new().with_default(tracing::Level::TRACE))
        .with(context)
        .with(fmt)
        .try_init()
        .expect("the only subscriber of this binary");

    let app = spawn_app().await;
    let (id, amount) = app.order("u1", r#"{"items":[{"productId":"p2","quantity":1}]}"#).await;
    let key = app.checkout(&id, amount, "VIRTUAL_ACCOUNT").await;
    assert_eq!(app.confirm("u1", &id, &key, amount).await.0, 200);
    app.sim(reqwest::Method::POST, "/v1/sim/deposit", Some(json!({"paymentKey": key}))).await;
    app.wait_status(&id, "PAID").await;
    let account = |number: &str| json!({"bank": "11", "accountNumber": number, "holderName": HOLDER});
    let refund = |key: &'static str, body: Value| {
        app.http
            .post(app.url(&format!("/orders/{id}/refunds")))
            .bearer_auth(app.stack.token("u1"))
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    // Malformed (a number where a string goes): refused, and logged as refused.
    let bad = json!({"amount": 1_000, "refundAccount": {"bank": "11", "accountNumber": 30212345678_u64, "holderName": HOLDER}});
    assert_eq!(refund("bad", bad).await.expect("refund").status(), 422);
    // The bank refuses the holder, then a part and the rest go through.
    app.fault("cancel", "refund_account", 1).await;
    assert_eq!(
        refund("r-1", json!({"amount": 1_000, "refundAccount": account(NUMBER)})).await.expect("refund").status(),
        202
    );
    assert_eq!(
        refund("r-2", json!({"amount": 1_000, "refundAccount": account(NUMBER)})).await.expect("refund").status(),
        202
    );
    eventually(10, "both refunds settled", || async {
        let (_, order) = app.get_order("u1", &id).await;
        let statuses: Vec<&str> = order["refunds"].as_array()?.iter().filter_map(|r| r["status"].as_str()).collect();
        (statuses == ["FAILED", "DONE"]).then_some(())
    })
    .await;
    let (status, _) = app.post("u1", &format!("/orders/{id}/cancel"), json!({"refundAccount": account(NUMBER)})).await;
    assert_eq!(status, 200);
    app.wait_status(&id, "REFUNDED").await;

    let logged = String::from_utf8(lines.0.lock().expect("lines").clone()).expect("UTF-8");
    assert!(
        logged.contains("refund requested") && logged.contains("INVALID_REFUND_ACCOUNT_INFO"),
        "the work was logged"
    );
    for secret in [NUMBER, &NUMBER[3..], HOLDER] {
        let line = logged.lines().find(|l| l.contains(secret));
        assert!(line.is_none(), "{secret} logged: {}", line.unwrap_or_default());
    }
}
