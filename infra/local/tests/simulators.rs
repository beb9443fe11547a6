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
    start_stalling(dir, clock, va_due, Duration::from_millis(10)).await
}

async fn start_stalling(
    dir: &std::path::Path,
    clock: std::sync::Arc<dyn shop_app::clock::Clock>,
    va_due: Duration,
    stall: Duration,
) -> Simulators {
    Simulators::start(SimulatorOptions {
        secret_key: KEY.to_owned(),
        pg_port: 0,
        sink_port: 0,
        webhook_url: None,
        webhook_secret: None,
        webhook_backoff: Duration::from_millis(10),
        stall,
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

/// Partial cancels as Toss answers them: each in `cancels[]` with what
/// remains (`refundableAmount`) and its tax-free part, `balanceAmount`
/// down, PARTIAL_CANCELED then CANCELED; more than what remains is refused
/// and changes nothing; a payment that is not partial-cancelable refuses a
/// part but takes the whole; an Idempotency-Key over 300 characters is
/// refused.
#[tokio::test]
async fn partial_cancels_keep_a_list_and_a_balance_and_refuse_more_than_remains() {
    let dir = tempfile::tempdir().unwrap();
    let sims = start(dir.path()).await;
    let pg = format!("http://{}", sims.pg_addr);
    let http = reqwest::Client::new();
    let key = checkout(&http, &pg, "part-1", "CARD").await;
    assert_eq!(confirm(&http, &pg, "part-1", &key).await["status"], "DONE");
    let cancel_url = format!("{pg}/v1/payments/{key}/cancel");
    let cancel = |body: Value| post(&http, &cancel_url, body);

    let (status, p) = cancel(json!({"cancelReason": "one item back", "cancelAmount": 300, "taxFreeAmount": 100})).await;
    assert_eq!((status, &p["status"], &p["balanceAmount"]), (200, &json!("PARTIAL_CANCELED"), &json!(700)), "{p}");
    let first = &p["cancels"][0];
    assert_eq!(
        (&first["cancelAmount"], &first["taxFreeAmount"], &first["refundableAmount"]),
        (&json!(300), &json!(100), &json!(700))
    );
    assert!(first["transactionKey"].as_str().is_some_and(|k| !k.is_empty()), "{first}");

    let (status, refused) = cancel(json!({"cancelReason": "too much", "cancelAmount": 701})).await;
    assert_eq!((status, &refused["code"]), (403, &json!("NOT_CANCELABLE_AMOUNT")), "{refused}");
    let (status, refused) = cancel(json!({"cancelReason": "tax", "cancelAmount": 100, "taxFreeAmount": 101})).await;
    assert_eq!(status, 400, "{refused}");
    let (looked, _) = get(&format!("{pg}/v1/sim/payments?paymentKey={key}")).await;
    assert_eq!(looked[0]["balanceAmount"], 700, "nothing changed by the refusals: {looked}");

    let (status, p) = cancel(json!({"cancelReason": "the rest"})).await;
    assert_eq!((status, &p["status"], &p["balanceAmount"]), (200, &json!("CANCELED"), &json!(0)), "{p}");
    assert_eq!(p["cancels"].as_array().map(Vec::len), Some(2));
    assert_eq!(p["cancels"][1]["cancelAmount"], 700);

    // Not partial-cancelable: a part is refused, the whole is taken.
    let whole_only: Value = http
        .post(format!("{pg}/v1/sim/checkout"))
        .json(&json!({"orderId": "part-2", "amount": 1000, "method": "CARD", "partialCancelable": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key2 = whole_only["paymentKey"].as_str().unwrap().to_owned();
    assert_eq!(confirm(&http, &pg, "part-2", &key2).await["isPartialCancelable"], false);
    let (status, refused) =
        post(&http, &format!("{pg}/v1/payments/{key2}/cancel"), json!({"cancelReason": "a part", "cancelAmount": 10}))
            .await;
    assert_eq!((status, &refused["code"]), (403, &json!("NOT_CANCELABLE_PAYMENT")), "{refused}");
    let (status, p) = post(&http, &format!("{pg}/v1/payments/{key2}/cancel"), json!({"cancelReason": "all"})).await;
    assert_eq!((status, &p["status"]), (200, &json!("CANCELED")), "{p}");

    // Idempotency-Key: at most 300 characters.
    let key3 = checkout(&http, &pg, "part-3", "CARD").await;
    let long = http
        .post(format!("{pg}/v1/payments/confirm"))
        .basic_auth(KEY, Some(""))
        .header("idempotency-key", "k".repeat(301))
        .json(&json!({"paymentKey": key3, "orderId": "part-3", "amount": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(long.status().as_u16(), 400);
    assert_eq!(confirm(&http, &pg, "part-3", &key3).await["status"], "DONE", "nothing was done by the refused call");
}

/// Toss keeps an `Idempotency-Key`'s answer for 15 days: the same cancel
/// within them is answered again and changes nothing; after them the key is
/// a new request. A refusal is kept like any answer.
#[tokio::test]
async fn an_idempotency_key_is_kept_for_fifteen_days_refusals_included() {
    let dir = tempfile::tempdir().unwrap();
    let clock = shop_app::clock::ManualClock::at(shop_domain::Timestamp::from_millis(1_795_219_200_000));
    let sims = start_on(dir.path(), std::sync::Arc::new(clock.clone()), Duration::from_secs(3 * 86_400)).await;
    let pg = format!("http://{}", sims.pg_addr);
    let http = reqwest::Client::new();
    let key = checkout(&http, &pg, "idem-1", "CARD").await;
    assert_eq!(confirm(&http, &pg, "idem-1", &key).await["status"], "DONE");
    let cancel = |idem: &'static str, amount: u64| {
        http.post(format!("{pg}/v1/payments/{key}/cancel"))
            .basic_auth(KEY, Some(""))
            .header("idempotency-key", idem)
            .json(&json!({"cancelReason": "a part", "cancelAmount": amount}))
            .send()
    };
    let balance = || async {
        let (looked, _) = get(&format!("{pg}/v1/sim/payments?paymentKey={key}")).await;
        looked[0]["balanceAmount"].as_u64().unwrap()
    };
    let first: Value = cancel("part-1", 100).await.unwrap().json().await.unwrap();
    assert_eq!(first["balanceAmount"], 900);
    clock.advance_secs(15 * 86_400 - 1);
    let again: Value = cancel("part-1", 100).await.unwrap().json().await.unwrap();
    assert_eq!((again, balance().await), (first, 900), "within 15 days: the stored answer");
    clock.advance_secs(2);
    let later: Value = cancel("part-1", 100).await.unwrap().json().await.unwrap();
    assert_eq!((later["balanceAmount"].as_u64(), balance().await), (Some(800), 800), "after 15 days: a new request");

    // A refusal is kept too: the same cancel is refused again, never carried out.
    post(&http, &format!("{pg}/v1/sim/faults"), json!({"op": "cancel", "fault": "decline", "count": 1})).await;
    let refused = cancel("part-2", 100).await.unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    let refused_again = cancel("part-2", 100).await.unwrap();
    assert_eq!(refused_again.status().as_u16(), 403);
    assert_eq!(balance().await, 800);
}

/// Toss's windows: a READY payment not authenticated within 30 minutes,
/// or an IN_PROGRESS one not confirmed within 10 minutes of its
/// authentication, is EXPIRED — a lookup says so, and a confirm is refused
/// with 404 NOT_FOUND_PAYMENT_SESSION.
#[tokio::test]
async fn ready_and_in_progress_payments_expire_on_their_windows() {
    let dir = tempfile::tempdir().unwrap();
    let clock = shop_app::clock::ManualClock::at(shop_domain::Timestamp::from_millis(1_795_219_200_000));
    let sims = start_on(dir.path(), std::sync::Arc::new(clock.clone()), Duration::from_secs(3 * 86_400)).await;
    let pg = format!("http://{}", sims.pg_addr);
    let http = reqwest::Client::new();
    let status_of = |key: String| {
        let pg = pg.clone();
        async move { get(&format!("{pg}/v1/sim/payments?paymentKey={key}")).await.0[0]["status"].clone() }
    };
    let ready = checkout(&http, &pg, "win-1", "CARD").await;
    let authenticated = checkout(&http, &pg, "win-2", "CARD").await;
    clock.advance_secs(25 * 60);
    let (status, _) =
        post(&http, &format!("{pg}/v1/sim/status"), json!({"paymentKey": authenticated, "status": "IN_PROGRESS"}))
            .await;
    assert_eq!(status, 200);
    // 29:59 after it opened, READY is still confirmable in principle.
    clock.advance_secs(5 * 60 - 1);
    let looked = |key: &str| http.get(format!("{pg}/v1/payments/{key}")).basic_auth(KEY, Some("")).send();
    let p: Value = looked(&ready).await.unwrap().json().await.unwrap();
    assert_eq!(p["status"], "READY");
    clock.advance_secs(1);
    let p: Value = looked(&ready).await.unwrap().json().await.unwrap();
    assert_eq!(p["status"], "EXPIRED", "30 minutes READY: {p}");
    assert_eq!(status_of(ready.clone()).await, "EXPIRED");
    let (status, refused) = post(
        &http,
        &format!("{pg}/v1/payments/confirm"),
        json!({"paymentKey": ready, "orderId": "win-1", "amount": 1000}),
    )
    .await;
    assert_eq!((status, &refused["code"]), (404, &json!("NOT_FOUND_PAYMENT_SESSION")), "{refused}");

    // Authenticated at 25:00: confirmable until 34:59, gone at 35:00.
    clock.advance_secs(5 * 60 - 1);
    assert_eq!(status_of(authenticated.clone()).await, "IN_PROGRESS");
    clock.advance_secs(1);
    let (status, refused) = post(
        &http,
        &format!("{pg}/v1/payments/confirm"),
        json!({"paymentKey": authenticated, "orderId": "win-2", "amount": 1000}),
    )
    .await;
    assert_eq!((status, &refused["code"]), (404, &json!("NOT_FOUND_PAYMENT_SESSION")), "{refused}");
    assert_eq!(status_of(authenticated).await, "EXPIRED");
}

/// Toss refuses a request whose `Idempotency-Key` is still being worked on
/// (409 IDEMPOTENT_REQUEST_PROCESSING), and answers it from the stored
/// answer once the first is done: a retry after a timeout never cancels
/// twice. (The soak found a part cancelled twice when the retry of a
/// timed-out cancel overtook the first.)
#[tokio::test]
async fn a_key_still_being_worked_on_is_refused_until_its_answer_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let stall = Duration::from_secs(3);
    let sims = start_stalling(
        dir.path(),
        std::sync::Arc::new(shop_app::clock::SystemClock),
        Duration::from_secs(86_400),
        stall,
    )
    .await;
    let pg = format!("http://{}", sims.pg_addr);
    let http = reqwest::Client::new();
    let key = checkout(&http, &pg, "flight-1", "CARD").await;
    assert_eq!(confirm(&http, &pg, "flight-1", &key).await["status"], "DONE");
    post(&http, &format!("{pg}/v1/sim/faults"), json!({"op": "cancel", "fault": "timeout", "count": 1})).await;
    let cancel = {
        let (http, url) = (http.clone(), format!("{pg}/v1/payments/{key}/cancel"));
        move || {
            http.post(url.clone())
                .basic_auth(KEY, Some(""))
                .header("idempotency-key", "part-1")
                .json(&json!({"cancelReason": "a part", "cancelAmount": 100}))
                .send()
        }
    };
    // Two at once: one takes the stalled work, the other is refused while
    // the first holds the key (the stall outlasts both requests' sending).
    let (a, b) = tokio::join!(cancel(), cancel());
    let mut answers = Vec::new();
    for r in [a.unwrap(), b.unwrap()] {
        answers.push((r.status().as_u16(), r.json::<Value>().await.unwrap()));
    }
    answers.sort_by_key(|(status, _)| *status);
    let [(200, done), (409, refused)] = answers.as_slice() else { panic!("{answers:?}") };
    assert_eq!(refused["code"], "IDEMPOTENT_REQUEST_PROCESSING");
    assert_eq!(done["balanceAmount"], 900);
    let again: Value = cancel().await.unwrap().json().await.unwrap();
    assert_eq!(&again, done, "the stored answer");
    let (looked, _) = get(&format!("{pg}/v1/sim/payments?paymentKey={key}")).await;
    assert_eq!(looked[0]["cancels"].as_array().map(Vec::len), Some(1), "cancelled once: {looked}");
}
