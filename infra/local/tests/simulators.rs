//! The simulators' listings page and filter through their indexes, and their
//! state (payments, stored idempotent answers, deliveries) survives a
//! restart from the same data dir.

use serde_json::{Value, json};
use shop_local::{SimulatorOptions, Simulators};
use std::time::Duration;

/// The simulators' secret key in these tests.
const KEY: &str = "test_sk_simulators_test";

async fn start(dir: &std::path::Path) -> Simulators {
    start_on(dir, std::sync::Arc::new(shop_app::clock::SystemClock), Duration::from_secs(3 * 86_400)).await
}

async fn start_on(
    dir: &std::path::Path,
    clock: std::sync::Arc<dyn shop_app::clock::Clock>,
    va_due: Duration,
) -> Simulators {
    Simulators::start(SimulatorOptions {
        secret_key: KEY.to_owned(),
        pg_port: 0,
        sink_port: 0,
        webhook_url: None,
        webhook_secret: None,
        webhook_backoff: Duration::from_millis(10),
        stall: Duration::from_millis(10),
        delay: Duration::from_millis(1),
        clock,
        data_dir: Some(dir.to_owned()),
        va_due,
        limits: shop_local::listen::Limits::with_max_body(shop_local::listen::JSON_BODY),
    })
    .await
    .expect("simulators start")
}

/// The body and the `Link` header's target, if any.
async fn get(url: &str) -> (Value, Option<String>) {
    let resp = reqwest::get(url).await.expect("GET");
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    let next = resp
        .headers()
        .get("link")
        .and_then(|l| l.to_str().ok())
        .and_then(|l| l.strip_prefix('<')?.split_once(">; rel=\"next\"").map(|(target, _)| target.to_owned()));
    (resp.json().await.expect("JSON"), next)
}

async fn checkout(http: &reqwest::Client, pg: &str, order: &str, method: &str) -> String {
    let body: Value = http
        .post(format!("{pg}/v1/sim/checkout"))
        .json(&json!({"orderId": order, "amount": 1000, "method": method}))
        .send()
        .await
        .expect("checkout")
        .json()
        .await
        .expect("checkout body");
    body["paymentKey"].as_str().expect("paymentKey").to_owned()
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let resp = http.post(url).basic_auth(KEY, Some("")).json(&body).send().await.expect("POST");
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn confirm(http: &reqwest::Client, pg: &str, order: &str, key: &str) -> Value {
    http.post(format!("{pg}/v1/payments/confirm"))
        .basic_auth(KEY, Some(""))
        .header("idempotency-key", format!("confirm-{order}"))
        .json(&json!({"paymentKey": key, "orderId": order, "amount": 1000}))
        .send()
        .await
        .expect("confirm")
        .json()
        .await
        .expect("confirm body")
}

#[tokio::test]
async fn listings_page_and_filter_and_the_state_survives_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let sims = start(dir.path()).await;
    let (pg, sink) = (format!("http://{}", sims.pg_addr), format!("http://{}", sims.sink_addr));
    let http = reqwest::Client::new();
    let mut keys = Vec::new();
    for n in 0..5 {
        let order = format!("o{n}");
        let key = checkout(&http, &pg, &order, "CARD").await;
        assert_eq!(confirm(&http, &pg, &order, &key).await["status"], "DONE");
        http.post(format!("{sink}/events"))
            .header("idempotency-key", format!("{order}#2"))
            .json(&json!({"detailType": "OrderPaid", "orderId": order}))
            .send()
            .await
            .expect("delivery");
        keys.push(key);
    }

    // Pages of two follow the Link header to the end, in arrival order.
    let mut url = format!("{pg}/v1/sim/calls?op=confirm&limit=2");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (page, next) = get(&url).await;
        pages += 1;
        seen.extend(page.as_array().expect("array").iter().map(|c| c["orderId"].as_str().unwrap_or("").to_owned()));
        match next {
            Some(target) => url = format!("{pg}{target}"),
            None => break,
        }
    }
    assert_eq!(seen, ["o0", "o1", "o2", "o3", "o4"]);
    assert_eq!(pages, 3);
    // Each filter narrows to its rows.
    let key = keys.get(3).expect("key");
    let (by_key, next) = get(&format!("{pg}/v1/sim/payments?paymentKey={key}")).await;
    assert_eq!((by_key.as_array().map(Vec::len), next), (Some(1), None));
    assert_eq!(by_key[0]["orderId"], "o3");
    let (calls, _) = get(&format!("{pg}/v1/sim/calls?paymentKey={key}")).await;
    assert_eq!(calls.as_array().map(Vec::len), Some(1));
    let (by_event, _) = get(&format!("{sink}/sim/deliveries?eventId=o2%232")).await;
    assert_eq!(by_event.as_array().map(Vec::len), Some(1));
    assert_eq!(by_event[0]["orderId"], "o2");
    sims.stop().await;

    // A restart from the same dir: the payments, the stored answer of an
    // idempotency key and the sink's deduplication are all still there.
    let sims = start(dir.path()).await;
    let (pg, sink) = (format!("http://{}", sims.pg_addr), format!("http://{}", sims.sink_addr));
    let again = confirm(&http, &pg, "o1", keys.get(1).expect("key")).await;
    assert_eq!(again["status"], "DONE", "the stored answer, not ALREADY_PROCESSED: {again}");
    let (replayed, _) = get(&format!("{pg}/v1/sim/calls?orderId=o1&op=confirm")).await;
    assert_eq!(replayed.as_array().map(|c| c.len()), Some(2));
    assert_eq!(replayed[1]["outcome"], "replayed");
    let dup: Value = http
        .post(format!("{sink}/events"))
        .header("idempotency-key", "o4#2")
        .json(&json!({"detailType": "OrderPaid", "orderId": "o4"}))
        .send()
        .await
        .expect("delivery")
        .json()
        .await
        .expect("body");
    assert_eq!(dup["duplicate"], true);
    let (all, _) = get(&format!("{sink}/sim/deliveries?orderId=o4")).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    sims.stop().await;
}

#[tokio::test]
async fn a_virtual_account_is_due_after_va_due_and_refuses_deposits_then() {
    let dir = tempfile::tempdir().expect("dir");
    let t0 = shop_domain::Timestamp::from_millis(1_795_219_200_000);
    let clock = shop_app::clock::ManualClock::at(t0);
    let sims = start_on(dir.path(), std::sync::Arc::new(clock.clone()), Duration::from_secs(3_600)).await;
    let pg = format!("http://{}", sims.pg_addr);
    let http = reqwest::Client::new();
    let late = checkout(&http, &pg, "va-late", "VIRTUAL_ACCOUNT").await;
    let paid = checkout(&http, &pg, "va-paid", "VIRTUAL_ACCOUNT").await;
    let account = confirm(&http, &pg, "va-late", &late).await;
    assert_eq!(account["status"], "WAITING_FOR_DEPOSIT", "{account}");
    // Due an hour after the confirm, written in KST as Toss writes it.
    assert_eq!(account["virtualAccount"]["dueDate"], "2026-11-21T10:00:00.000+09:00");
    assert_eq!(account["virtualAccount"]["expired"], false);
    assert_eq!(confirm(&http, &pg, "va-paid", &paid).await["status"], "WAITING_FOR_DEPOSIT");

    // Within the hour a deposit lands; after it, the bank refuses one.
    clock.advance_secs(1_800);
    let (status, done) = post(&http, &format!("{pg}/v1/sim/deposit"), json!({"paymentKey": paid})).await;
    assert_eq!((status, &done["status"]), (200, &json!("DONE")), "{done}");
    clock.advance_secs(1_800);
    let (status, refused) = post(&http, &format!("{pg}/v1/sim/deposit"), json!({"paymentKey": late})).await;
    assert_eq!(status, 400, "{refused}");
    let looked = reqwest::Client::new()
        .get(format!("{pg}/v1/payments/{late}"))
        .basic_auth(KEY, Some(""))
        .send()
        .await
        .expect("lookup")
        .json::<Value>()
        .await
        .expect("lookup body");
    assert_eq!(
        (&looked["status"], &looked["virtualAccount"]["expired"]),
        (&json!("WAITING_FOR_DEPOSIT"), &json!(true))
    );
    // The shop closes the expired account by cancelling it.
    let (status, cancelled) =
        post(&http, &format!("{pg}/v1/payments/{late}/cancel"), json!({"cancelReason": "deposit due date passed"}))
            .await;
    assert_eq!((status, &cancelled["status"]), (200, &json!("CANCELED")), "{cancelled}");
    sims.stop().await;
}
