//! The payment edge, tried as an attacker would (docs/payments.md, "Threat
//! model"). A Toss `paymentKey` travels in the shopper's redirect URL, and
//! `POST /webhooks/pg` is open to anybody: every row below sends what an
//! outsider can send and checks the orders, payments and PG calls before and
//! after, then the three promises of the payment edge:
//!
//! - no blocked payment: an order that is still payable can be paid by its owner;
//! - no charge without a PAID order: every capture at the PG belongs to the
//!   order's payment, or compensation cancelled it;
//! - no PAID order without its capture.

use futures::future::join_all;
use serde_json::{Value, json};
use shop_domain::{OrderId, PaymentKey, PaymentStatus};
use shop_tests::{TestApp, eventually, spawn_app};

const MUG: &str = r#"{"items":[{"productId":"p1","quantity":1}]}"#;
const PG_STATUSES: [&str; 8] =
    ["READY", "IN_PROGRESS", "WAITING_FOR_DEPOSIT", "DONE", "CANCELED", "PARTIAL_CANCELED", "ABORTED", "EXPIRED"];

/// A `PAYMENT_STATUS_CHANGED` anybody can send: no signature, any status.
fn forged(key: &str, order_id: &str, status: &str) -> Value {
    json!({"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": "2026-11-21T00:00:01.000",
           "data": {"paymentKey": key, "orderId": order_id, "status": status}})
}

async fn send_webhook(app: &TestApp, body: &Value) -> (u16, Value) {
    let resp = app.http.post(app.url("/webhooks/pg")).json(body).send().await.expect("webhook");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Everything an attack could change, on our side and at the PG.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    order: (String, u64, Option<String>),
    events: Vec<String>,
    /// Our payment records for the keys the row is about: (key, status, version).
    payments: Vec<(String, Option<(PaymentStatus, u64)>)>,
    pg_payments: Vec<(String, String)>,
    pg_confirms: usize,
    pg_cancels: usize,
}

async fn snapshot(app: &TestApp, order_id: &str, keys: &[&str]) -> Snapshot {
    let id = OrderId::parse(order_id).expect("id");
    let order = app.store().orders().get(&id).await.expect("read").expect("order");
    let mut payments = Vec::new();
    for key in keys {
        let p = app.store().payments().get(&PaymentKey::parse(*key).expect("key")).await.expect("read");
        payments.push((key.to_string(), p.map(|p| (p.status, p.version))));
    }
    let mut pg_payments: Vec<(String, String)> = app
        .pg_payments(order_id)
        .await
        .iter()
        .map(|p| (p["paymentKey"].as_str().unwrap_or("").to_owned(), p["status"].as_str().unwrap_or("").to_owned()))
        .collect();
    pg_payments.sort();
    Snapshot {
        order: (order.status.as_str().to_owned(), order.version, order.payment_key.map(|k| k.as_str().to_owned())),
        events: app.event_types(order_id).await,
        payments,
        pg_payments,
        pg_confirms: app.pg_calls(order_id, "confirm").await.len(),
        pg_cancels: app.pg_calls(order_id, "cancel").await.len(),
    }
}

/// No charge without a PAID order, no PAID order without its capture, once
/// every event has been published and every consumer has run.
async fn assert_money_consistent(app: &TestApp, order_id: &str, row: &str) {
    app.settled().await;
    let id = OrderId::parse(order_id).expect("id");
    let order = app.store().orders().get(&id).await.expect("read").expect("order");
    let key = order.payment_key.as_ref().map(|k| k.as_str().to_owned());
    let pg = app.pg_payments(order_id).await;
    for p in &pg {
        let (pk, status) = (p["paymentKey"].as_str().unwrap_or(""), p["status"].as_str().unwrap_or(""));
        match status {
            "DONE" | "PARTIAL_CANCELED" => assert!(
                order.status.as_str() == "PAID" && key.as_deref() == Some(pk),
                "{row}: the PG holds a capture {pk} but the order is {} with key {key:?}",
                order.status
            ),
            "WAITING_FOR_DEPOSIT" => assert!(
                order.status.as_str() == "AWAITING_DEPOSIT" && key.as_deref() == Some(pk),
                "{row}: an open virtual account {pk} for an order {}",
                order.status
            ),
            _ => {}
        }
    }
    if order.status.as_str() == "PAID" && order.payment_method != Some(shop_domain::PaymentMethod::Points) {
        let capture = pg.iter().find(|p| Some(p["paymentKey"].as_str().unwrap_or("")) == key.as_deref());
        assert!(
            capture.is_some_and(|p| p["status"] == "DONE" && p["totalAmount"] == order.amount_due.won()),
            "{row}: PAID without its capture: {capture:?}"
        );
    }
    for consumer in shop_local::ops::CONSUMERS {
        assert!(app.dlq(consumer).await.is_empty(), "{row}: {consumer} DLQ not empty");
    }
}

/// No blocked payment: if the order is still payable, its owner pays it —
/// with the open checkout when there is one, else with a new one.
async fn assert_owner_can_pay(app: &TestApp, user: &str, order_id: &str, row: &str) {
    if app.status(order_id).await != "PENDING_PAYMENT" {
        return;
    }
    let amount = app.get_order(user, order_id).await.1["amountDue"].as_u64().expect("amountDue");
    let open = app.pg_payments(order_id).await.into_iter().find(|p| {
        (p["status"] == "READY" || p["status"] == "IN_PROGRESS") && p["totalAmount"].as_u64() == Some(amount)
    });
    let key = match open {
        Some(p) => p["paymentKey"].as_str().expect("key").to_owned(),
        None => app.checkout(order_id, amount, "CARD").await,
    };
    let (status, body) = app.confirm(user, order_id, &key, amount).await;
    assert_eq!((status, &body["status"]), (200, &json!("PAID")), "{row}: the owner's confirm was blocked: {body}");
    assert_money_consistent(app, order_id, row).await;
}

/// Puts a fresh order's payment into `state` at the PG the way it really
/// gets there; returns (orderId, paymentKey). The caller waits for the
/// pipeline to settle.
async fn payment_in(app: &TestApp, state: &str) -> (String, String) {
    let (order_id, amount) = app.order("u1", MUG).await;
    let method = if state == "WAITING_FOR_DEPOSIT" { "VIRTUAL_ACCOUNT" } else { "CARD" };
    if state == "ABORTED" {
        app.fault("confirm", "decline", 1).await;
    }
    let key = app.checkout(&order_id, amount, method).await;
    let set = |status: &str| {
        app.sim(
            reqwest::Method::POST,
            "/v1/sim/status",
            Some(json!({"paymentKey": key, "status": status, "notify": false})),
        )
    };
    match state {
        "READY" => {}
        "IN_PROGRESS" | "EXPIRED" => {
            let p = set(state).await;
            assert_eq!(p["status"], state, "{p}");
        }
        "WAITING_FOR_DEPOSIT" | "DONE" => assert_eq!(app.confirm("u1", &order_id, &key, amount).await.0, 200),
        "ABORTED" => assert_eq!(app.confirm("u1", &order_id, &key, amount).await.0, 402),
        "CANCELED" => {
            assert_eq!(app.confirm("u1", &order_id, &key, amount).await.0, 200);
            assert_eq!(app.post("u1", &format!("/orders/{order_id}/cancel"), json!({})).await.0, 200);
        }
        other => panic!("no way to put a payment in {other}"),
    }
    (order_id, key)
}

/// Every PG status an attacker can claim, against a payment in every state
/// the PG can hold it in: our side changes only as far as the PG's own
/// answer says, and the owner can still pay. One row per (state, claim);
/// the rows of one state run side by side.
#[tokio::test]
async fn forged_webhooks_claim_every_status_against_every_payment_state() {
    let app = spawn_app().await;
    for real in ["READY", "IN_PROGRESS", "WAITING_FOR_DEPOSIT", "DONE", "CANCELED", "ABORTED", "EXPIRED"] {
        let mut rows = Vec::new();
        for claimed in PG_STATUSES {
            let (order_id, key) = payment_in(&app, real).await;
            rows.push((format!("PG holds {real}, webhook claims {claimed}"), claimed, order_id, key));
        }
        if real == "CANCELED" {
            for (_, _, order_id, _) in &rows {
                app.wait_status(order_id, "REFUNDED").await;
            }
        }
        app.settled().await;
        let mut befores = Vec::new();
        for (row, _, order_id, key) in &rows {
            let at_pg = app.pg_payments(order_id).await;
            assert!(at_pg.iter().any(|p| p["paymentKey"] == *key && p["status"] == real), "{row}: {at_pg:?}");
            befores.push(snapshot(&app, order_id, &[key]).await);
        }
        let hooks: Vec<Value> = rows.iter().map(|(_, claimed, order_id, key)| forged(key, order_id, claimed)).collect();
        let answers = join_all(hooks.iter().map(|hook| send_webhook(&app, hook))).await;
        app.settled().await;
        for (((row, _, order_id, key), before), (status, body)) in rows.iter().zip(befores).zip(answers) {
            assert_eq!(status, 200, "{row}: {body}");
            let mut expected = before.clone();
            match real {
                // A checkout nobody confirmed is no outcome: nothing recorded.
                "READY" | "IN_PROGRESS" => assert_eq!(body["note"], "not final", "{row}"),
                // The PG ended the checkout on its own and we had not heard:
                // its record is adopted; the order stays payable.
                "EXPIRED" => expected.payments = vec![(key.clone(), Some((PaymentStatus::Aborted, 2)))],
                // Already applied when it happened.
                _ => {}
            }
            assert_eq!(snapshot(&app, order_id, &[key]).await, expected, "{row}");
            assert_money_consistent(&app, order_id, row).await;
        }
        join_all(rows.iter().map(|(row, _, order_id, _)| assert_owner_can_pay(&app, "u1", order_id, row))).await;
    }
}

/// Reproduction 1: an unsigned "DONE" for a checkout that is only READY used
/// to record the key as used, and every confirm then answered 409.
#[tokio::test]
async fn a_forged_done_before_the_confirm_blocks_nothing() {
    let app = spawn_app().await;
    let (order_id, amount) = app.order("u1", MUG).await;
    let key = app.checkout(&order_id, amount, "CARD").await;
    let before = snapshot(&app, &order_id, &[&key]).await;
    let (status, body) = send_webhook(&app, &forged(&key, &order_id, "DONE")).await;
    assert_eq!((status, &body["note"]), (200, &json!("not final")), "{body}");
    assert_eq!(snapshot(&app, &order_id, &[&key]).await, before);
    let (status, body) = app.confirm("u1", &order_id, &key, amount).await;
    assert_eq!((status, &body["status"]), (200, &json!("PAID")), "{body}");
    assert_eq!(app.pg_calls(&order_id, "confirm").await.len(), 1, "the PG received the confirm");
    assert_money_consistent(&app, &order_id, "forged DONE first").await;
}

/// Reproduction 2: confirming your own order with somebody else's key (same
/// amount) used to mark that key used, so its owner could no longer pay.
#[tokio::test]
async fn a_confirm_with_another_orders_key_leaves_that_key_untouched() {
    let app = spawn_app().await;
    let (mine, amount) = app.order("u1", MUG).await;
    let (theirs, their_amount) = app.order("u2", MUG).await;
    assert_eq!(amount, their_amount);
    let their_key = app.checkout(&theirs, their_amount, "CARD").await;
    let (mine_before, theirs_before) =
        (snapshot(&app, &mine, &[&their_key]).await, snapshot(&app, &theirs, &[&their_key]).await);
    let (status, body) = app.confirm("u1", &mine, &their_key, amount).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["type"], "https://shop.example/problems/payment-key-mismatch");
    assert_eq!(snapshot(&app, &mine, &[&their_key]).await, mine_before, "nothing written for my order");
    assert_eq!(snapshot(&app, &theirs, &[&their_key]).await, theirs_before, "their key untouched, no PG confirm");
    let (status, body) = app.confirm("u2", &theirs, &their_key, their_amount).await;
    assert_eq!((status, &body["status"]), (200, &json!("PAID")), "{body}");
    assert_money_consistent(&app, &theirs, "their order").await;
    assert_owner_can_pay(&app, "u1", &mine, "my order").await;
}

/// Reproduction 3: five confirms and five webhooks for one fresh payment,
/// thirty times: all at once, the webhooks ahead, or the confirms ahead
/// (one run in three each). No confirm may be told the key is used.
#[tokio::test]
async fn confirms_and_webhooks_for_a_fresh_payment_racing_never_block_it() {
    let app = spawn_app().await;
    for run in 0..30 {
        let (order_id, amount) = app.order("u1", MUG).await;
        let key = app.checkout(&order_id, amount, "CARD").await;
        let hook = forged(&key, &order_id, "DONE");
        let confirms = join_all((0..5).map(|_| app.confirm("u1", &order_id, &key, amount)));
        let hooks = join_all((0..5).map(|_| send_webhook(&app, &hook)));
        let (confirms, hooks) = match run % 3 {
            0 => futures::join!(confirms, hooks),
            1 => {
                let hooks = hooks.await;
                (confirms.await, hooks)
            }
            _ => {
                let confirms = confirms.await;
                (confirms, hooks.await)
            }
        };
        for (status, body) in &confirms {
            assert!([200, 202].contains(status), "run {run}: confirm answered {status} {body}");
        }
        for (status, body) in &hooks {
            assert!([200, 409].contains(status), "run {run}: webhook answered {status} {body}");
        }
        app.wait_status(&order_id, "PAID").await;
        assert_eq!(app.event_types(&order_id).await.iter().filter(|t| *t == "OrderPaid").count(), 1);
        assert_money_consistent(&app, &order_id, &format!("run {run}")).await;
        // Give back the stock for the next run.
        assert_eq!(app.post("u1", &format!("/orders/{order_id}/cancel"), json!({})).await.0, 200);
    }
}

/// The body names one order, the key belongs to another: only the PG's
/// record of the key counts, and neither order is blocked.
#[tokio::test]
async fn a_webhook_pairing_one_orders_id_with_another_orders_key_changes_neither() {
    let app = spawn_app().await;
    let (a, amount_a) = app.order("u1", MUG).await;
    let (b, amount_b) = app.order("u2", MUG).await;
    let key_a = app.checkout(&a, amount_a, "CARD").await;
    let key_b = app.checkout(&b, amount_b, "CARD").await;
    let before = (snapshot(&app, &a, &[&key_a, &key_b]).await, snapshot(&app, &b, &[&key_a, &key_b]).await);
    for status in PG_STATUSES {
        assert_eq!(send_webhook(&app, &forged(&key_b, &a, status)).await.0, 200);
        assert_eq!(send_webhook(&app, &forged(&key_a, &b, status)).await.0, 200);
    }
    let after = (snapshot(&app, &a, &[&key_a, &key_b]).await, snapshot(&app, &b, &[&key_a, &key_b]).await);
    assert_eq!(after, before);
    // B pays; a webhook naming A with B's (now DONE) key still leaves A alone.
    assert_eq!(app.confirm("u2", &b, &key_b, amount_b).await.0, 200);
    let a_before = snapshot(&app, &a, &[&key_a]).await;
    assert_eq!(send_webhook(&app, &forged(&key_b, &a, "DONE")).await.0, 200);
    assert_eq!(snapshot(&app, &a, &[&key_a]).await, a_before);
    assert_money_consistent(&app, &b, "B").await;
    assert_owner_can_pay(&app, "u1", &a, "A").await;
}

/// A captured genuine webhook sent again later, after the payment moved on:
/// the PG's current answer is applied, which changes nothing.
#[tokio::test]
async fn replayed_webhooks_change_nothing() {
    let app = spawn_app().await;
    // Card: paid, then refunded; the DONE notification replayed.
    let (order_id, amount) = app.order("u1", MUG).await;
    let key = app.checkout(&order_id, amount, "CARD").await;
    assert_eq!(app.confirm("u1", &order_id, &key, amount).await.0, 200);
    let done = app.pg_payments(&order_id).await.into_iter().next().expect("payment");
    let genuine = json!({"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": "2026-11-21T00:00:00.000", "data": done});
    assert_eq!(send_webhook(&app, &genuine).await.0, 200);
    assert_eq!(app.post("u1", &format!("/orders/{order_id}/cancel"), json!({})).await.0, 200);
    app.wait_status(&order_id, "REFUNDED").await;
    app.settled().await;
    let before = snapshot(&app, &order_id, &[&key]).await;
    // Our record says CANCELED, the body DONE: the PG is asked, and its
    // CANCELED changes nothing.
    for _ in 0..3 {
        assert_eq!(send_webhook(&app, &genuine).await, (200, json!({"received": true, "note": "applied"})));
    }
    let mut later = genuine.clone();
    later["createdAt"] = json!("2026-11-21T00:05:00.000");
    assert_eq!(send_webhook(&app, &later).await.0, 200);
    app.settled().await;
    assert_eq!(snapshot(&app, &order_id, &[&key]).await, before);
    assert_money_consistent(&app, &order_id, "refunded card").await;

    // Virtual account: the WAITING_FOR_DEPOSIT notification replayed after the deposit.
    let (va_order, amount) = app.order("u1", MUG).await;
    let va_key = app.checkout(&va_order, amount, "VIRTUAL_ACCOUNT").await;
    assert_eq!(app.confirm("u1", &va_order, &va_key, amount).await.0, 200);
    let waiting = app.pg_payments(&va_order).await.into_iter().next().expect("payment");
    let waiting =
        json!({"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": "2026-11-21T00:00:02.000", "data": waiting});
    app.sim(reqwest::Method::POST, "/v1/sim/deposit", Some(json!({"paymentKey": va_key}))).await;
    app.wait_status(&va_order, "PAID").await;
    app.settled().await;
    let before = snapshot(&app, &va_order, &[&va_key]).await;
    assert_eq!(send_webhook(&app, &waiting).await.0, 200);
    let deposit = json!({"createdAt": "2026-11-21T00:00:03.000", "secret": "guessed", "status": "DONE",
                         "transactionKey": "tx-forged", "orderId": va_order});
    assert_eq!(send_webhook(&app, &deposit).await.0, 200);
    app.settled().await;
    assert_eq!(snapshot(&app, &va_order, &[&va_key]).await, before);
    assert_money_consistent(&app, &va_order, "virtual account").await;
}

/// A deposit notification is checked against the order's own virtual
/// account, not the latest checkout anybody opened for its orderId.
#[tokio::test]
async fn a_checkout_opened_by_someone_else_does_not_hide_a_deposit() {
    let app = spawn_app().await;
    let (order_id, amount) = app.order("u1", MUG).await;
    let key = app.checkout(&order_id, amount, "VIRTUAL_ACCOUNT").await;
    assert_eq!(app.confirm("u1", &order_id, &key, amount).await.0, 200);
    // Anybody can open a checkout for our orderId in the widget.
    let decoy = app.checkout(&order_id, amount, "CARD").await;
    app.sim(reqwest::Method::POST, "/v1/sim/deposit", Some(json!({"paymentKey": key}))).await;
    app.wait_status(&order_id, "PAID").await;
    let snap = snapshot(&app, &order_id, &[&key, &decoy]).await;
    assert_eq!(snap.payments[1], (decoy.clone(), None), "the decoy is not recorded");
    assert_money_consistent(&app, &order_id, "deposit with a decoy").await;
}

/// Somebody else's order, with its real key and amount: 404, nothing at the PG.
#[tokio::test]
async fn a_confirm_of_another_users_order_is_not_found() {
    let app = spawn_app().await;
    let (order_id, amount) = app.order("u1", MUG).await;
    let key = app.checkout(&order_id, amount, "CARD").await;
    let before = snapshot(&app, &order_id, &[&key]).await;
    let lookups = app.pg_calls(&order_id, "lookup").await.len();
    let (status, body) = app.confirm("u2", &order_id, &key, amount).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(snapshot(&app, &order_id, &[&key]).await, before);
    assert_eq!(app.pg_calls(&order_id, "lookup").await.len(), lookups, "not even a lookup");
    assert_owner_can_pay(&app, "u1", &order_id, "another user's order").await;
}

/// The amount tampered on either side: in our request (422 amount-mismatch)
/// or at the PG, by opening the checkout for less (422 payment-key-mismatch).
/// Neither reaches the PG's confirm or writes anything.
#[tokio::test]
async fn a_tampered_amount_is_refused_on_either_side() {
    let app = spawn_app().await;
    let (order_id, amount) = app.order("u1", MUG).await;
    let cheap = app.checkout(&order_id, 1, "CARD").await;
    let before = snapshot(&app, &order_id, &[&cheap]).await;
    let (status, body) = app.confirm("u1", &order_id, &cheap, 1).await;
    assert_eq!((status, &body["type"]), (422, &json!("https://shop.example/problems/amount-mismatch")), "{body}");
    let (status, body) = app.confirm("u1", &order_id, &cheap, amount).await;
    assert_eq!((status, &body["type"]), (422, &json!("https://shop.example/problems/payment-key-mismatch")), "{body}");
    assert_eq!(snapshot(&app, &order_id, &[&cheap]).await, before);
    assert_eq!(app.pg_calls(&order_id, "confirm").await.len(), 0);
    assert_owner_can_pay(&app, "u1", &order_id, "tampered amount").await;
}

/// A key the PG never issued: refused, nothing recorded.
#[tokio::test]
async fn a_made_up_key_is_refused() {
    let app = spawn_app().await;
    let (order_id, amount) = app.order("u1", MUG).await;
    let before = snapshot(&app, &order_id, &["made-up"]).await;
    let (status, body) = app.confirm("u1", &order_id, "made-up", amount).await;
    assert_eq!((status, &body["type"]), (422, &json!("https://shop.example/problems/payment-key-mismatch")), "{body}");
    assert_eq!(snapshot(&app, &order_id, &["made-up"]).await, before);
    assert_owner_can_pay(&app, "u1", &order_id, "made-up key").await;
}

/// The PG cannot be asked whose a key is: 503, nothing written, a retry pays.
#[tokio::test]
async fn a_key_that_cannot_be_verified_is_not_recorded() {
    let app = spawn_app().await;
    let (order_id, amount) = app.order("u1", MUG).await;
    let key = app.checkout(&order_id, amount, "CARD").await;
    let before = snapshot(&app, &order_id, &[&key]).await;
    app.fault("lookup", "error", 1).await;
    let (status, body) = app.confirm("u1", &order_id, &key, amount).await;
    assert_eq!((status, &body["type"]), (503, &json!("https://shop.example/problems/pg-unavailable")), "{body}");
    assert_eq!(snapshot(&app, &order_id, &[&key]).await, before);
    assert_owner_can_pay(&app, "u1", &order_id, "lookup failed").await;
}

/// Card confirm and points payment at once, with the PG slow: one of them
/// pays; the other is refused or its capture cancelled; points move once.
#[tokio::test]
async fn confirm_and_points_payment_racing() {
    let app = spawn_app().await;
    for run in 0..6 {
        let (order_id, amount) = app.order("rich", MUG).await;
        let points = app.points("rich").await;
        let key = app.checkout(&order_id, amount, "CARD").await;
        if run % 2 == 0 {
            app.fault("confirm", "delay", 1).await;
        }
        let (card, pts) = futures::join!(app.confirm("rich", &order_id, &key, amount), async {
            app.post("rich", "/payments/points", json!({"orderId": order_id})).await
        });
        let row = format!("run {run}: card {} points {}", card.0, pts.0);
        assert!([200, 202, 409].contains(&card.0) && [200, 409].contains(&pts.0), "{row} {card:?} {pts:?}");
        eventually(10, "settled", || async { (app.status(&order_id).await != "CONFIRMING").then_some(()) }).await;
        app.settled().await;
        let order = app.get_order("rich", &order_id).await.1;
        let paid_by_points = order["paymentMethod"] == "POINTS";
        let expected_points = if paid_by_points { points - amount } else { points };
        assert_eq!(app.points("rich").await, expected_points, "{row}: points moved once, or not at all");
        assert_money_consistent(&app, &order_id, &row).await;
        assert_owner_can_pay(&app, "rich", &order_id, &row).await;
    }
}

/// Confirm and cancel at once: whichever wins, no capture survives on a
/// cancelled order and a paid one is refunded in full.
#[tokio::test]
async fn confirm_and_cancel_racing() {
    let app = spawn_app().await;
    for run in 0..6 {
        let (order_id, amount) = app.order("u1", MUG).await;
        let key = app.checkout(&order_id, amount, "CARD").await;
        if run % 2 == 0 {
            app.fault("confirm", "delay", 1).await;
        }
        let (card, cancel) = futures::join!(app.confirm("u1", &order_id, &key, amount), async {
            app.post("u1", &format!("/orders/{order_id}/cancel"), json!({})).await
        });
        let row = format!("run {run}: confirm {} cancel {}", card.0, cancel.0);
        assert!([200, 202, 409].contains(&card.0) && [200, 409].contains(&cancel.0), "{row} {card:?} {cancel:?}");
        eventually(10, "settled", || async {
            let s = app.status(&order_id).await;
            (s != "CONFIRMING" && s != "REFUND_PENDING").then_some(())
        })
        .await;
        assert_money_consistent(&app, &order_id, &row).await;
        let status = app.status(&order_id).await;
        assert!(["PAID", "CANCELLED", "REFUNDED", "PENDING_PAYMENT"].contains(&status.as_str()), "{row}: {status}");
    }
}

/// Confirm at the moment the order expires: either the order expires and
/// the PG never confirms, or the confirm started first and the order is paid.
#[tokio::test]
async fn confirm_and_expiry_racing() {
    let app = spawn_app().await;
    for run in 0..6 {
        let (order_id, amount) = app.order("u1", MUG).await;
        let key = app.checkout(&order_id, amount, "CARD").await;
        // The order expires 900 s after it was placed; stand just before it.
        let order = app.store().orders().get(&OrderId::parse(order_id.as_str()).unwrap()).await.unwrap().unwrap();
        let to_expiry = (order.expires_at.millis() - app.stack.app.clock.now().millis()) / 1000;
        app.clock.advance_secs(to_expiry - 1);
        if run % 2 == 0 {
            app.fault("confirm", "delay", 1).await;
        }
        let (card, ()) = futures::join!(app.confirm("u1", &order_id, &key, amount), async {
            app.clock.advance_secs(2);
        });
        let row = format!("run {run}: confirm {}", card.0);
        assert!([200, 202, 409].contains(&card.0), "{row} {card:?}");
        eventually(10, "settled", || async {
            let s = app.status(&order_id).await;
            (s == "PAID" || s == "EXPIRED").then_some(())
        })
        .await;
        if app.status(&order_id).await == "EXPIRED" {
            assert_eq!(app.pg_payments(&order_id).await[0]["status"], "READY", "{row}: never confirmed at the PG");
        }
        assert_money_consistent(&app, &order_id, &row).await;
    }
}
