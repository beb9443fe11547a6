//! The simulators' listings page and filter through their indexes, and their
//! state (payments, stored idempotent answers, deliveries) survives a
//! restart from the same data dir.

use serde_json::{Value, json};
use shop_local::{SimulatorOptions, Simulators};
use std::time::Duration;

async fn start(dir: &std::path::Path) -> Simulators {
    Simulators::start(SimulatorOptions {
        pg_port: 0,
        sink_port: 0,
        webhook_url: None,
        webhook_secret: None,
        webhook_backoff: Duration::from_millis(10),
        stall: Duration::from_millis(10),
        delay: Duration::from_millis(1),
        clock: std::sync::Arc::new(shop_app::clock::SystemClock),
        data_dir: Some(dir.to_owned()),
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

async fn confirm(http: &reqwest::Client, pg: &str, order: &str, key: &str) -> Value {
    http.post(format!("{pg}/v1/payments/confirm"))
        .basic_auth(shop_local::SIM_SECRET_KEY, Some(""))
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
        let body: Value = http
            .post(format!("{pg}/v1/sim/checkout"))
            .json(&json!({"orderId": order, "amount": 1000}))
            .send()
            .await
            .expect("checkout")
            .json()
            .await
            .expect("checkout body");
        let key = body["paymentKey"].as_str().expect("paymentKey").to_owned();
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
