//! Paying for orders over HTTP against `shop up`'s handlers and the PG simulator.

use futures::future::join_all;
use serde_json::json;
use shop_tests::{PG_STALL, RECONCILE_AFTER_SECS, TestApp, eventually, spawn_app, spawn_app_driven};

const ORDER: &str = r#"{"items":[{"productId":"p1","quantity":2}],"couponId":"c1","pointsToUse":1000}"#;

fn count(types: &[String], t: &str) -> usize {
    types.iter().filter(|x| *x == t).count()
}

async fn done_payments(app: &TestApp, order_id: &str) -> usize {
    app.pg_payments(order_id).await.iter().filter(|p| p["status"] == "DONE").count()
}

async fn delivered_webhooks(app: &TestApp, order_id: &str) -> usize {
    let hooks = app.sim(reqwest::Method::GET, &format!("/v1/sim/webhooks?orderId={order_id}"), None).await;
    hooks.as_array().map(|a| a.iter().filter(|h| h["orderId"] == order_id && h["status"] == 200).count()).unwrap_or(0)
}

#[tokio::test]
async fn card_payment_happy_path() {
    let app = spawn_app().await;
    let (order_id, amount) = app.order("u1", ORDER).await;
    let key = app.checkout(&order_id, amount, "CARD").await;
    let (status, body) = app.confirm("u1", &order_id, &key, amount).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "PAID");
    assert_eq!(body["paymentStatus"], "DONE");
    assert_eq!(body["paymentMethod"], "CARD");
    // The PG's webhook arrives too and changes nothing.
    eventually(10, "webhook delivered", || async { (delivered_webhooks(&app, &order_id).await >= 1).then_some(()) })
        .await;
    let types = app.event_types(&order_id).await;
    assert_eq!(types, vec!["OrderPlaced", "PaymentConfirmationStarted", "OrderPaid"]);
    assert_eq!(done_payments(&app, &order_id).await, 1);
    // Confirming again answers the same, without a second PG call.
    let (status, again) = app.confirm("u1", &order_id, &key, amount).await;
    assert_eq!((status, &again["status"]), (200, &json!("PAID")));
    assert_eq!(app.pg_calls(&order_id, "confirm").await.len(), 1);
    // Another user cannot pay (or probe) it.
    let (status, _) = app.confirm("u2", &order_id, &key, amount).await;
    assert_eq!(status, 404);
}

/// The PG notifies every payment we confirmed ourselves: a notification of
/// what our record already says is answered from one read, with no PG
/// call; one that says something else is still checked with the PG.
#[tokio::test]
async fn a_webhook_of_what_is_already_recorded_asks_the_pg_nothing() {
    let app = &spawn_app().await;
    app.fault("webhook", "error", -1).await;
    let (order_id, amount) = app.order("u1", ORDER).await;
    let key = app.checkout(&order_id, amount, "CARD").await;
    assert_eq!(app.confirm("u1", &order_id, &key, amount).await.0, 200);
    let lookups_of = |key: String| async move {
        let calls = app.sim(reqwest::Method::GET, &format!("/v1/sim/calls?paymentKey={key}&op=lookup"), None).await;
        calls.as_array().map_or(0, Vec::len)
    };
    let lookups = lookups_of(key.clone()).await;
    let hook = |status: &str| json!({"eventType": "PAYMENT_STATUS_CHANGED", "data": {"paymentKey": key, "orderId": order_id, "status": status}});
    let note = |body: serde_json::Value| async move {
        let resp = app.http.post(app.url("/webhooks/pg")).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.json::<serde_json::Value>().await.unwrap()["note"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(note(hook("DONE")).await, "already recorded");
    assert_eq!(lookups_of(key.clone()).await, lookups, "no PG call");
    // A claim our record does not show is looked up; the PG's word stands.
    assert_eq!(note(hook("CANCELED")).await, "applied");
    assert_eq!(lookups_of(key.clone()).await, lookups + 1);
    assert_eq!(app.status(&order_id).await, "PAID");
}

#[tokio::test]
async fn virtual_account_is_paid_on_deposit() {
    let app = spawn_app().await;
    let (order_id, amount) = app.order("u1", ORDER).await;
    let key = app.checkout(&order_id, amount, "VIRTUAL_ACCOUNT").await;
    let (status, body) = app.confirm("u1", &order_id, &key, amount).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "AWAITING_DEPOSIT");
    assert!(body["virtualAccount"]["accountNumber"].is_string(), "{body}");
    app.sim(reqwest::Method::POST, "/v1/sim/deposit", Some(json!({"paymentKey": key}))).await;
    app.wait_status(&order_id, "PAID").await;
    let types = app.event_types(&order_id).await;
    assert_eq!(count(&types, "VirtualAccountIssued"), 1);
    assert_eq!(count(&types, "OrderPaid"), 1);
    let order = app.get_order("u1", &order_id).await.1;
    assert_eq!(order["paymentMethod"], "VIRTUAL_ACCOUNT");
}

/// Every deposit webhook lost for good: the reconciler asks the PG about a
/// waiting virtual account once per reconcile interval, and settles it.
#[tokio::test]
async fn a_virtual_account_whose_deposit_webhooks_are_lost_is_paid_by_the_reconciler() {
    let app = spawn_app_driven().await;
    app.fault("webhook", "error", -1).await;
    let (order_id, amount) = app.order("u1", ORDER).await;
    let key = app.checkout(&order_id, amount, "VIRTUAL_ACCOUNT").await;
    let (status, body) = app.confirm("u1", &order_id, &key, amount).await;
    assert_eq!((status, &body["status"]), (200, &json!("AWAITING_DEPOSIT")), "{body}");
    let order = app.get_order("u1", &order_id).await.1;
    let due = order["depositDueAt"].as_str().expect("the order shows the account's due date").to_owned();
    assert_eq!(shop_domain::Timestamp::parse_rfc3339(&due), Some(shop_tests::T0.plus_secs(3 * 86_400)), "{order}");
    app.sim(reqwest::Method::POST, "/v1/sim/deposit", Some(json!({"paymentKey": key}))).await;
    assert_eq!(delivered_webhooks(&app, &order_id).await, 0);
    // Before its check is due, a run does not ask the PG.
    app.clock.advance_secs(RECONCILE_AFTER_SECS - 1);
    let lookups = app.pg_calls(&order_id, "lookup").await.len();
    let report = app.reconcile().await;
    assert_eq!((report.deposits_settled, report.deposits_waiting), (0, 0), "{report:?}");
    assert_eq!(app.pg_calls(&order_id, "lookup").await.len(), lookups);
    assert_eq!(app.status(&order_id).await, "AWAITING_DEPOSIT");
    // One reconcile interval after the account was issued: asked, and paid.
    app.clock.advance_secs(1);
    assert_eq!(app.reconcile().await.deposits_settled, 1);
    assert_eq!(app.status(&order_id).await, "PAID");
    let types = app.event_types(&order_id).await;
    assert_eq!((count(&types, "VirtualAccountIssued"), count(&types, "OrderPaid")), (1, 1));
    assert!(app.get_order("u1", &order_id).await.1.get("depositDueAt").is_none());
    // Settled: it leaves the reconciler's index.
    app.clock.advance_secs(RECONCILE_AFTER_SECS);
    assert_eq!(app.reconcile().await, Default::default());
}

/// A virtual account never paid: checked while it waits, then at its due
/// date the order expires with stock and points back, and compensation
/// closes the account at the PG.
#[tokio::test]
async fn a_virtual_account_never_paid_expires_at_its_due_date_and_is_closed_at_the_pg() {
    let app = spawn_app_driven().await;
    let (order_id, amount) = app.order("u1", ORDER).await;
    assert_eq!((app.stock("p1").await, app.points("u1").await), (98, 4_000));
    let key = app.checkout(&order_id, amount, "VIRTUAL_ACCOUNT").await;
    let (status, body) = app.confirm("u1", &order_id, &key, amount).await;
    assert_eq!(status, 200, "{body}");
    // The order's own expiry passes; the account's due date has not.
    app.clock.advance_secs(3600);
    assert_eq!(app.expire().await.expired, 0);
    let report = app.reconcile().await;
    assert_eq!((report.deposits_waiting, report.deposits_expired), (1, 0), "{report:?}");
    // Checked again one interval later, not before.
    assert_eq!(app.reconcile().await.deposits_waiting, 0);
    app.clock.advance_secs(RECONCILE_AFTER_SECS);
    assert_eq!(app.reconcile().await.deposits_waiting, 1);
    assert_eq!(app.status(&order_id).await, "AWAITING_DEPOSIT");
    // At the due date (3 days after the confirm, on the simulator's clock too).
    app.clock.advance_secs(3 * 86_400 - 3600 - RECONCILE_AFTER_SECS);
    let report = app.reconcile().await;
    assert_eq!(report.deposits_expired, 1, "{report:?}");
    assert_eq!(app.status(&order_id).await, "EXPIRED");
    assert_eq!((app.stock("p1").await, app.points("u1").await), (100, 5_000));
    assert_eq!(app.stack.app.metrics.total("DepositsExpired"), 1);
    let pg = eventually(10, "the account closed at the PG", || async {
        app.pg_payments(&order_id).await.into_iter().find(|p| p["status"] == "CANCELED")
    })
    .await;
    assert_eq!(pg["paymentKey"], json!(key));
    eventually(10, "the coupon released", || async { (app.coupon_status("c1").await == "ISSUED").then_some(()) }).await;
    let types = app.event_types(&order_id).await;
    assert_eq!((count(&types, "OrderExpired"), count(&types, "OrderPaid")), (1, 0));
    // Nothing is left for the reconciler.
    app.clock.advance_secs(RECONCILE_AFTER_SECS);
    let report = app.reconcile().await;
    assert_eq!(report.deposits_waiting + report.deposits_expired + report.still_unknown, 0, "{report:?}");
}

/// A PG that cannot answer about a waiting account settles nothing: the
/// account is asked about again one interval later (not at every run, so
/// failing accounts never crowd out the others), and then settled.
#[tokio::test]
async fn a_waiting_account_the_pg_cannot_answer_about_is_asked_again_later() {
    let app = spawn_app_driven().await;
    app.fault("webhook", "error", -1).await;
    let (order_id, amount) = app.order("u1", ORDER).await;
    let key = app.checkout(&order_id, amount, "VIRTUAL_ACCOUNT").await;
    assert_eq!(app.confirm("u1", &order_id, &key, amount).await.0, 200);
    app.sim(reqwest::Method::POST, "/v1/sim/deposit", Some(json!({"paymentKey": key}))).await;
    app.fault("lookup", "error", 1).await;
    app.clock.advance_secs(RECONCILE_AFTER_SECS);
    let report = app.reconcile().await;
    assert_eq!((report.still_unknown, report.deposits_settled), (1, 0), "{report:?}");
    assert_eq!(app.status(&order_id).await, "AWAITING_DEPOSIT");
    // Postponed: the next run does not ask again at once...
    let lookups = app.pg_calls(&order_id, "lookup").await.len();
    assert_eq!(app.reconcile().await, Default::default());
    assert_eq!(app.pg_calls(&order_id, "lookup").await.len(), lookups);
    // ...but one interval on, and finds the deposit.
    app.clock.advance_secs(RECONCILE_AFTER_SECS);
    assert_eq!(app.reconcile().await.deposits_settled, 1);
    assert_eq!(app.status(&order_id).await, "PAID");
}

#[tokio::test]
async fn points_pay_the_whole_amount_due() {
    let app = spawn_app().await;
    // u1 has 5,000 points; the order needs 9,000.
    let (short, due) = app.order("u1", r#"{"items":[{"productId":"p1","quantity":1}],"couponId":"c1"}"#).await;
    assert_eq!(due, 9_000);
    let (status, body) = app.post("u1", "/payments/points", json!({"orderId": short})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "https://shop.example/problems/insufficient-points");
    assert_eq!((app.status(&short).await.as_str(), app.points("u1").await), ("PENDING_PAYMENT", 5_000));

    let (order_id, due) = app.order("rich", r#"{"items":[{"productId":"p2","quantity":1}],"pointsToUse":5000}"#).await;
    assert_eq!(due, 40_000);
    let (status, body) = app.post("rich", "/payments/points", json!({"orderId": order_id})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "PAID");
    assert_eq!(body["paymentMethod"], "POINTS");
    assert_eq!(app.points("rich").await, 55_000);
    // A repeat is answered, not charged twice.
    let (status, _) = app.post("rich", "/payments/points", json!({"orderId": order_id})).await;
    assert_eq!(status, 200);
    assert_eq!(app.points("rich").await, 55_000);
    assert_eq!(count(&app.event_types(&order_id).await, "OrderPaid"), 1);
    let ledger = app.store().points().ledger(&shop_domain::UserId::parse("rich").unwrap()).await.unwrap();
    assert_eq!(ledger.iter().map(|e| e.delta).collect::<Vec<_>>(), vec![100_000, -5_000, -40_000]);
}

#[tokio::test]
async fn a_tampered_amount_is_refused_before_the_pg_hears_of_it() {
    let app = spawn_app().await;
    let (order_id, amount) = app.order("u1", ORDER).await;
    let key = app.checkout(&order_id, amount, "CARD").await;
    let (status, body) = app.confirm("u1", &order_id, &key, amount - 1).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["type"], "https://shop.example/problems/amount-mismatch");
    assert_eq!(body["amountDue"], amount);
    assert!(app.pg_calls(&order_id, "confirm").await.is_empty(), "the simulator saw a confirm call");
    assert_eq!(app.status(&order_id).await, "PENDING_PAYMENT");
}

#[tokio::test]
async fn a_declined_card_leaves_the_order_payable_and_another_card_pays_it() {
    let app = spawn_app().await;
    let (order_id, amount) = app.order("u1", ORDER).await;
    app.fault("confirm", "decline", 1).await;
    let key = app.checkout(&order_id, amount, "CARD").await;
    let (status, body) = app.confirm("u1", &order_id, &key, amount).await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["pgCode"], "REJECT_CARD_COMPANY");
    assert!(body["detail"].as_str().unwrap().contains("simulated decline"));
    assert_eq!(app.status(&order_id).await, "PENDING_PAYMENT");
    // The declined key cannot be reused...
    let (status, _) = app.confirm("u1", &order_id, &key, amount).await;
    assert_eq!(status, 409);
    // ...a second card pays.
    let key2 = app.checkout(&order_id, amount, "CARD").await;
    let (status, body) = app.confirm("u1", &order_id, &key2, amount).await;
    assert_eq!((status, &body["status"]), (200, &json!("PAID")), "{body}");
    let types = app.event_types(&order_id).await;
    assert_eq!(count(&types, "PaymentFailed"), 1);
    assert_eq!(count(&types, "OrderPaid"), 1);
    let calls = app.pg_calls(&order_id, "confirm").await;
    assert_ne!(calls[0]["idempotencyKey"], calls[1]["idempotencyKey"], "a new payment gets a new Idempotency-Key");
}

/// The PG is slow: our call times out (202), the PG finishes afterwards and
/// its webhook settles the order.
#[tokio::test]
async fn a_timed_out_confirm_is_settled_by_the_webhook() {
    let app = spawn_app().await;
    let (order_id, amount) = app.order("u1", ORDER).await;
    app.fault("confirm", "timeout", 1).await;
    let key = app.checkout(&order_id, amount, "CARD").await;
    let (status, body) = app.confirm("u1", &order_id, &key, amount).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "CONFIRMING");
    let payment =
        app.store().payments().get(&shop_domain::PaymentKey::parse(key.as_str()).unwrap()).await.unwrap().unwrap();
    assert_eq!(payment.status, shop_domain::PaymentStatus::Unknown);
    app.wait_status(&order_id, "PAID").await;
    assert_eq!(done_payments(&app, &order_id).await, 1);
    assert_eq!(count(&app.event_types(&order_id).await, "OrderPaid"), 1);
}

/// The PG did the work but its answer was lost, and its webhooks fail:
/// the reconciler finds out — once the payment has been in doubt long enough.
#[tokio::test]
async fn a_lost_response_is_settled_by_the_reconciler() {
    let app = spawn_app_driven().await;
    let (order_id, amount) = app.order("u1", ORDER).await;
    app.fault("confirm", "lost_response", 1).await;
    app.fault("webhook", "error", -1).await;
    let key = app.checkout(&order_id, amount, "CARD").await;
    let (status, _) = app.confirm("u1", &order_id, &key, amount).await;
    assert_eq!(status, 202);
    assert_eq!(app.status(&order_id).await, "CONFIRMING");
    // Not before the threshold: the run does not even ask the PG...
    app.clock.advance_secs(RECONCILE_AFTER_SECS - 1);
    let lookups = app.pg_calls(&order_id, "lookup").await.len();
    assert_eq!(app.reconcile().await.resolved, 0);
    assert_eq!(app.pg_calls(&order_id, "lookup").await.len(), lookups);
    assert_eq!(app.status(&order_id).await, "CONFIRMING");
    // ...then it asks and settles.
    app.clock.advance_secs(2);
    assert_eq!(app.reconcile().await.resolved, 1);
    assert_eq!(app.status(&order_id).await, "PAID");
    assert!(app.pg_calls(&order_id, "lookup").await.len() > lookups);
    assert_eq!(done_payments(&app, &order_id).await, 1);
    assert_eq!(app.pg_calls(&order_id, "confirm").await.len(), 1);
    assert_eq!(count(&app.event_types(&order_id).await, "OrderPaid"), 1);
}

/// A 5xx from the PG means nothing happened there; the reconciler fails the
/// attempt and the order is payable again.
#[tokio::test]
async fn a_pg_error_is_resolved_as_not_paid() {
    let app = spawn_app().await;
    let (order_id, amount) = app.order("u1", ORDER).await;
    app.fault("confirm", "error", 1).await;
    let key = app.checkout(&order_id, amount, "CARD").await;
    assert_eq!(app.confirm("u1", &order_id, &key, amount).await.0, 202);
    app.clock.advance_secs(RECONCILE_AFTER_SECS + 1);
    app.wait_status(&order_id, "PENDING_PAYMENT").await;
    let key2 = app.checkout(&order_id, amount, "CARD").await;
    assert_eq!(app.confirm("u1", &order_id, &key2, amount).await.0, 200);
    assert_eq!(done_payments(&app, &order_id).await, 1);
}

async fn send_webhook(app: &TestApp, body: &serde_json::Value) -> u16 {
    app.http.post(app.url("/webhooks/pg")).json(body).send().await.unwrap().status().as_u16()
}

/// Confirm and webhook race, in both orders, with every message five times:
/// one PAID order, one OrderPaid event.
#[tokio::test]
async fn confirm_and_webhook_racing_give_one_paid_order() {
    let app = spawn_app().await;
    // Webhook first: the PG's answer to us is delayed, its webhook is not.
    let (first, amount) = app.order("u1", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await;
    app.fault("confirm", "delay", 1).await;
    let key_a = app.checkout(&first, amount, "CARD").await;
    // Confirm first: the webhook is delayed.
    let (second, amount_b) = app.order("u1", r#"{"items":[{"productId":"p2","quantity":1}]}"#).await;
    let key_b = app.checkout(&second, amount_b, "CARD").await;

    let webhook = |key: &str, order: &str| {
        json!({"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": "2026-11-21T00:00:00.000",
               "data": {"paymentKey": key, "orderId": order, "status": "DONE"}})
    };
    let a = async {
        let confirms = join_all((0..5).map(|_| app.confirm("u1", &first, &key_a, amount)));
        let hook = webhook(&key_a, &first);
        let hooks = join_all((0..5).map(|_| send_webhook(&app, &hook)));
        futures::join!(confirms, hooks)
    };
    app.fault("webhook", "delay", 1).await;
    let b = async {
        let confirms = join_all((0..5).map(|_| app.confirm("u1", &second, &key_b, amount_b)));
        let hook = webhook(&key_b, &second);
        let hooks = join_all((0..5).map(|_| send_webhook(&app, &hook)));
        futures::join!(confirms, hooks)
    };
    let ((confirms_a, hooks_a), (confirms_b, hooks_b)) = futures::join!(a, b);
    for (status, body) in confirms_a.iter().chain(&confirms_b) {
        assert!([200, 202].contains(status), "{status} {body}");
    }
    for status in hooks_a.iter().chain(&hooks_b) {
        assert!([200, 409].contains(status), "webhook answered {status}");
    }
    for (order, key) in [(&first, &key_a), (&second, &key_b)] {
        app.wait_status(order, "PAID").await;
        // Let the simulator's own webhooks land too.
        eventually(10, "simulator webhook", || async { (delivered_webhooks(&app, order).await >= 1).then_some(()) })
            .await;
        let types = app.event_types(order).await;
        assert_eq!(count(&types, "OrderPaid"), 1, "{order}: {types:?}");
        assert_eq!(count(&types, "PaymentOrphaned"), 0, "{order}: {types:?}");
        assert_eq!(done_payments(&app, order).await, 1);
        let confirms = app.pg_calls(order, "confirm").await;
        assert!(confirms.iter().all(|c| c["idempotencyKey"] == confirms[0]["idempotencyKey"]), "{key}");
    }
}

/// The PG says DONE for an order that expired meanwhile: recorded as an
/// orphaned payment, compensation cancels it at the PG, the order stays
/// EXPIRED and its stock is released exactly once.
#[tokio::test]
async fn a_payment_for_an_expired_order_is_orphaned() {
    let app = spawn_app().await;
    let before = app.stock("p1").await;
    let (order_id, amount) = app.order("u1", ORDER).await;
    app.fault("confirm", "timeout", 1).await;
    let key = app.checkout(&order_id, amount, "CARD").await;
    let started = tokio::time::Instant::now();
    assert_eq!(app.confirm("u1", &order_id, &key, amount).await.0, 202);
    // While the PG still sits on it: the reconciler sees READY and gives up,
    // then the order expires and its stock and points come back.
    app.clock.advance_secs(900 + RECONCILE_AFTER_SECS);
    app.wait_status(&order_id, "EXPIRED").await;
    assert!(started.elapsed() < PG_STALL, "the PG finished before the order expired; the test proves nothing");
    assert_eq!(app.stock("p1").await, before);
    assert_eq!(app.points("u1").await, 5_000);
    // Then the PG finishes and tells us.
    eventually(10, "PaymentOrphaned", || async {
        (count(&app.event_types(&order_id).await, "PaymentOrphaned") == 1).then_some(())
    })
    .await;
    assert_eq!(app.status(&order_id).await, "EXPIRED");
    assert_eq!(app.stock("p1").await, before, "stock released once");
    // Recorded as orphaned, and compensation cancels it at the PG (at
    // once: the consumers wake on the enqueue, so DONE may never be seen here).
    let pk = shop_domain::PaymentKey::parse(key.as_str()).unwrap();
    eventually(10, "the orphaned payment cancelled", || async {
        let payment = app.store().payments().get(&pk).await.unwrap().unwrap();
        (payment.orphaned && payment.status == shop_domain::PaymentStatus::Canceled).then_some(())
    })
    .await;
    assert_eq!(app.pg_payments(&order_id).await[0]["status"], "CANCELED");
    // Redeliveries do not orphan it twice.
    send_webhook(&app, &json!({"eventType": "PAYMENT_STATUS_CHANGED", "data": {"paymentKey": key, "orderId": order_id, "status": "DONE"}})).await;
    assert_eq!(count(&app.event_types(&order_id).await, "PaymentOrphaned"), 1);
}

#[tokio::test]
async fn unpaid_orders_expire_and_give_everything_back() {
    let app = spawn_app_driven().await;
    let (order_id, _) = app.order("u1", ORDER).await;
    assert_eq!((app.stock("p1").await, app.points("u1").await), (98, 4_000));
    // One second before expiresAt, a run expires nothing.
    app.clock.advance_secs(899);
    assert_eq!(app.expire().await.expired, 0);
    assert_eq!(app.status(&order_id).await, "PENDING_PAYMENT");
    app.clock.advance_secs(1);
    assert_eq!(app.expire().await.expired, 1);
    assert_eq!(app.status(&order_id).await, "EXPIRED");
    assert_eq!(app.stack.app.metrics.total("ExpiredByRun"), 1);
    assert_eq!((app.stock("p1").await, app.points("u1").await), (100, 5_000));
    assert_eq!(count(&app.event_types(&order_id).await, "OrderExpired"), 1);
    // Runs after that change nothing.
    assert_eq!(app.expire().await.expired, 0);
    let (status, body) = app.confirm("u1", &order_id, "late-key", 1).await;
    assert_eq!(status, 422, "amount is checked first: {body}");
}

#[tokio::test]
async fn an_order_being_confirmed_is_not_expired_blindly() {
    let app = spawn_app().await;
    let (order_id, amount) = app.order("u1", ORDER).await;
    app.fault("confirm", "lost_response", 1).await;
    app.fault("webhook", "error", -1).await;
    let key = app.checkout(&order_id, amount, "CARD").await;
    assert_eq!(app.confirm("u1", &order_id, &key, amount).await.0, 202);
    // From now on (the confirm itself looks the key up first).
    app.fault("lookup", "error", -1).await;
    app.clock.advance_secs(3600);
    // The reconciler cannot reach the PG; the order stays CONFIRMING however long it takes.
    eventually(10, "reconciler tried", || async {
        (!app.pg_calls(&order_id, "lookup").await.is_empty()).then_some(())
    })
    .await;
    assert_eq!(app.status(&order_id).await, "CONFIRMING");
    app.sim(reqwest::Method::DELETE, "/v1/sim/faults", None).await;
    app.wait_status(&order_id, "PAID").await;
}

#[tokio::test]
async fn cancelling_before_and_after_payment() {
    let app = spawn_app().await;
    let (unpaid, _) = app.order("u1", ORDER).await;
    let (status, body) = app.post("u1", &format!("/orders/{unpaid}/cancel"), json!({})).await;
    assert_eq!((status, &body["status"]), (200, &json!("CANCELLED")), "{body}");
    assert_eq!((app.stock("p1").await, app.points("u1").await), (100, 5_000));
    // Again: same answer, nothing released twice.
    assert_eq!(app.post("u1", &format!("/orders/{unpaid}/cancel"), json!({})).await.0, 200);
    assert_eq!((app.stock("p1").await, app.points("u1").await), (100, 5_000));
    assert_eq!(app.post("u2", &format!("/orders/{unpaid}/cancel"), json!({})).await.0, 404);

    let (paid, amount) = app.order("u1", r#"{"items":[{"productId":"p2","quantity":1}]}"#).await;
    let key = app.checkout(&paid, amount, "CARD").await;
    assert_eq!(app.confirm("u1", &paid, &key, amount).await.0, 200);
    let (status, body) = app.post("u1", &format!("/orders/{paid}/cancel"), json!({})).await;
    assert_eq!((status, &body["status"]), (200, &json!("REFUND_PENDING")), "{body}");
    assert_eq!(count(&app.event_types(&paid).await, "RefundRequested"), 1);
    // Compensation refunds: PG cancel, stock back, order REFUNDED.
    app.wait_status(&paid, "REFUNDED").await;
    assert_eq!(app.stock("p2").await, 20);
    assert!(app.pg_payments(&paid).await.iter().all(|p| p["status"] == "CANCELED"));

    let (expired, _) = app.order("u1", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await;
    app.clock.advance_secs(901);
    app.wait_status(&expired, "EXPIRED").await;
    let (status, body) = app.post("u1", &format!("/orders/{expired}/cancel"), json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "https://shop.example/problems/order-not-cancellable");
    // The order's status is an extension member; `status` stays the problem's HTTP status.
    assert_eq!((&body["status"], &body["orderStatus"]), (&json!(409), &json!("EXPIRED")));
}

#[tokio::test]
async fn webhooks_for_unknown_payments_are_acknowledged_and_counted() {
    let app = spawn_app().await;
    let before = app.stack.app.metrics.total("WebhookUnknownPayment");
    let body = json!({"eventType": "PAYMENT_STATUS_CHANGED", "data": {"paymentKey": "nope", "orderId": "nope", "status": "DONE"}});
    assert_eq!(send_webhook(&app, &body).await, 200);
    assert_eq!(app.stack.app.metrics.total("WebhookUnknownPayment"), before + 1);
    // A PG payment for an order we do not have.
    let key = app.checkout("ghost-order", 1000, "CARD").await;
    let body = json!({"eventType": "PAYMENT_STATUS_CHANGED", "data": {"paymentKey": key, "orderId": "ghost-order", "status": "DONE"}});
    assert_eq!(send_webhook(&app, &body).await, 200);
    // Malformed: 400.
    assert_eq!(send_webhook(&app, &json!({"eventType": "PAYMENT_STATUS_CHANGED"})).await, 400);
    assert_eq!(send_webhook(&app, &json!({"hello": 1})).await, 400);
}

#[tokio::test]
async fn signed_webhooks_when_a_secret_is_configured() {
    let config = shop_app::config::Config { pg_webhook_secret: Some("whsec_test".into()), ..shop_tests::test_config() };
    let app = shop_tests::spawn_app_with(None, config).await;
    let (order_id, amount) = app.order("u1", ORDER).await;
    app.fault("webhook", "error", -1).await;
    let key = app.checkout(&order_id, amount, "VIRTUAL_ACCOUNT").await;
    assert_eq!(app.confirm("u1", &order_id, &key, amount).await.0, 200);
    app.sim(reqwest::Method::DELETE, "/v1/sim/faults", None).await;
    let body = json!({"eventType": "PAYMENT_STATUS_CHANGED", "data": {"paymentKey": key, "orderId": order_id, "status": "DONE"}});
    // Unsigned or badly signed: refused.
    assert_eq!(send_webhook(&app, &body).await, 401);
    let raw = body.to_string();
    let bad = shop_app::http::webhook::sign("wrong", shop_tests::T0.seconds(), raw.as_bytes());
    let resp =
        app.http.post(app.url("/webhooks/pg")).header("pg-signature", bad).body(raw.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    // The simulator signs its own deliveries: the deposit goes through.
    app.sim(reqwest::Method::POST, "/v1/sim/deposit", Some(json!({"paymentKey": key}))).await;
    app.wait_status(&order_id, "PAID").await;
}

/// Toss documents a virtual-account payment moving from DONE back to
/// WAITING_FOR_DEPOSIT in rare network cases (ADR 0031): the order stays
/// PAID and nothing it took is given back; the payment says so, the
/// reconciler watches the account and never closes it, and the deposit
/// confirmed again settles once — one `OrderPaid`, one export.
#[tokio::test]
async fn a_deposit_the_pg_takes_back_and_confirms_again_settles_once() {
    let app = spawn_app_driven().await;
    let (order_id, amount) = app.order("u1", ORDER).await;
    let key = app.checkout(&order_id, amount, "VIRTUAL_ACCOUNT").await;
    assert_eq!(app.confirm("u1", &order_id, &key, amount).await.0, 200);
    app.sim(reqwest::Method::POST, "/v1/sim/deposit", Some(json!({"paymentKey": key}))).await;
    app.wait_status(&order_id, "PAID").await;
    app.settled().await;
    let before = (app.event_types(&order_id).await, app.stock("p1").await, app.points("u1").await);
    assert_eq!(app.coupon_status("c1").await, "USED");

    let regressed = app.sim(reqwest::Method::POST, "/v1/sim/regress", Some(json!({"paymentKey": key}))).await;
    assert_eq!(regressed["status"], "WAITING_FOR_DEPOSIT", "{regressed}");
    eventually(10, "the payment back to waiting", || async {
        (app.get_order("u1", &order_id).await.1["paymentStatus"] == "WAITING_FOR_DEPOSIT").then_some(())
    })
    .await;
    assert_eq!(app.status(&order_id).await, "PAID");
    // The reconciler asks about it, and leaves it open: the order holds it.
    app.clock.advance_secs(RECONCILE_AFTER_SECS + 1);
    let report = app.reconcile().await;
    assert_eq!(report.deposits_waiting, 1, "{report:?}");
    assert!(app.pg_payments(&order_id).await.iter().all(|p| p["status"] != "CANCELED"));

    app.sim(reqwest::Method::POST, "/v1/sim/deposit", Some(json!({"paymentKey": key}))).await;
    eventually(10, "the payment DONE again", || async {
        (app.get_order("u1", &order_id).await.1["paymentStatus"] == "DONE").then_some(())
    })
    .await;
    app.settled().await;
    assert_eq!((app.event_types(&order_id).await, app.stock("p1").await, app.points("u1").await), before);
    assert_eq!(app.coupon_status("c1").await, "USED");
    let exported = app.exported(&order_id).await;
    assert_eq!(exported.iter().filter(|d| d.detail_type == "OrderPaid").count(), 1);
    // Settled: it leaves the reconciler's index.
    app.clock.advance_secs(RECONCILE_AFTER_SECS + 1);
    assert_eq!(app.reconcile().await, Default::default());
}

/// Toss expires an authenticated payment not confirmed within 10 minutes:
/// our confirm after that is declined with the PG's reason
/// (NOT_FOUND_PAYMENT_SESSION), nothing is taken, and the order stays
/// payable — a new checkout pays it.
#[tokio::test]
async fn a_payment_confirmed_past_its_window_is_declined_and_the_order_stays_payable() {
    let app = spawn_app().await;
    let (order_id, amount) = app.order("u1", ORDER).await;
    let key = app.checkout(&order_id, amount, "CARD").await;
    app.sim(reqwest::Method::POST, "/v1/sim/status", Some(json!({"paymentKey": key, "status": "IN_PROGRESS"}))).await;
    // Its webhook (IN_PROGRESS proves nothing: not recorded) handled first.
    eventually(10, "the IN_PROGRESS webhook delivered", || async {
        (delivered_webhooks(&app, &order_id).await >= 1).then_some(())
    })
    .await;
    app.clock.advance_secs(10 * 60);
    let (status, body) = app.confirm("u1", &order_id, &key, amount).await;
    assert_eq!((status, &body["pgCode"]), (402, &json!("NOT_FOUND_PAYMENT_SESSION")), "{body}");
    assert_eq!(app.status(&order_id).await, "PENDING_PAYMENT");
    let paid = app.pay_by_card("u1", &order_id, amount).await;
    assert_eq!(paid["status"], "PAID");
    assert_eq!(done_payments(&app, &order_id).await, 1);
}

/// Toss recycles virtual-account numbers: a closed account's number is
/// issued to another order. Nothing is keyed on the number: the second
/// order's deposit pays the second order only.
#[tokio::test]
async fn a_recycled_account_number_never_confuses_two_orders() {
    let app = spawn_app().await;
    let (first, amount) = app.order("u1", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await;
    let key = app.checkout(&first, amount, "VIRTUAL_ACCOUNT").await;
    let (_, issued) = app.confirm("u1", &first, &key, amount).await;
    let number = issued["virtualAccount"]["accountNumber"].as_str().expect("an account").to_owned();
    assert_eq!(app.post("u1", &format!("/orders/{first}/cancel"), json!({})).await.0, 200);
    eventually(10, "the first account closed", || async {
        app.pg_payments(&first).await.iter().any(|p| p["status"] == "CANCELED").then_some(())
    })
    .await;

    let (second, amount) = app.order("u1", r#"{"items":[{"productId":"p2","quantity":1}]}"#).await;
    let key2 = app.checkout(&second, amount, "VIRTUAL_ACCOUNT").await;
    let (_, issued) = app.confirm("u1", &second, &key2, amount).await;
    assert_eq!(issued["virtualAccount"]["accountNumber"], number.as_str(), "the number was issued again: {issued}");
    app.sim(reqwest::Method::POST, "/v1/sim/deposit", Some(json!({"paymentKey": key2}))).await;
    app.wait_status(&second, "PAID").await;
    app.settled().await;
    assert_eq!(app.status(&first).await, "CANCELLED");
    assert_eq!(count(&app.event_types(&first).await, "OrderPaid"), 0);
    assert!(app.pg_payments(&first).await.iter().all(|p| p["status"] == "CANCELED"));
}
