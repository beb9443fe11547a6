//! Partial refunds over HTTP (`POST /orders/{orderId}/refunds`,
//! docs/adr/0030-partial-refunds.md) against `shop up`'s handlers and the
//! PG simulator: each part cancelled at the PG under its own key, its
//! stock and points back, the money always adding up.

use futures::future::join_all;
use serde_json::{Value, json};
use shop_tests::{TestApp, eventually, spawn_app};

/// 12,000 + 45,000 + 3 × 1,000 = 60,000; 6,000 in points, 54,000 by card
/// (cash is nine tenths of every refund).
const THREE_LINES: &str = r#"{"items":[{"productId":"p1","quantity":1},{"productId":"p2","quantity":1},{"productId":"bulk","quantity":3}],"pointsToUse":6000}"#;

/// Waits until the order's refund `n` is `status`; the order then.
async fn refund_is(app: &TestApp, order_id: &str, n: u64, status: &str) -> Value {
    eventually(10, &format!("refund {n} of {order_id} {status}"), || async {
        let (_, order) = app.get_order("rich", order_id).await;
        let r = order["refunds"].as_array()?.iter().find(|r| r["refundNumber"] == n)?.clone();
        (r["status"] == status).then_some(order)
    })
    .await
}

/// The PG's payment of the order: (status, balanceAmount, each cancelAmount).
async fn at_pg(app: &TestApp, order_id: &str) -> (String, u64, Vec<u64>) {
    let payments = app.pg_payments(order_id).await;
    let p = payments.iter().find(|p| p["status"] != "READY").expect("a payment").clone();
    let cancels = p["cancels"].as_array().map(|c| c.iter().filter_map(|c| c["cancelAmount"].as_u64()).collect());
    (
        p["status"].as_str().unwrap_or_default().to_owned(),
        p["balanceAmount"].as_u64().unwrap_or(0),
        cancels.unwrap_or_default(),
    )
}

async fn paid_three_lines(app: &TestApp) -> String {
    let (order_id, amount) = app.order("rich", THREE_LINES).await;
    assert_eq!(amount, 54_000);
    app.pay_by_card("rich", &order_id, amount).await;
    order_id
}

#[tokio::test]
async fn one_line_of_three_then_another_then_the_rest() {
    let app = spawn_app().await;
    let id = paid_three_lines(&app).await;
    assert_eq!((app.stock("p1").await, app.stock("p2").await, app.stock("bulk").await), (99, 19, 99_997));
    assert_eq!(app.points("rich").await, 94_000);

    // The kettle back: 45,000 = 40,500 by card + 4,500 in points.
    let (status, body) = app.refund("rich", &id, "r-1", json!({"lines": [{"productId": "p2", "quantity": 1}]})).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        (
            &body["refund"]["refundNumber"],
            &body["refund"]["cash"],
            &body["refund"]["points"],
            &body["refund"]["status"]
        ),
        (&json!(1), &json!(40_500), &json!(4_500), &json!("REQUESTED"))
    );
    assert_eq!(body["order"]["status"], "PARTIALLY_REFUNDED");
    refund_is(&app, &id, 1, "DONE").await;
    assert_eq!((app.stock("p2").await, app.points("rich").await), (20, 98_500));
    assert_eq!(at_pg(&app, &id).await, ("PARTIAL_CANCELED".into(), 13_500, vec![40_500]));
    assert_eq!(app.status(&id).await, "PARTIALLY_REFUNDED");

    // The mug: 10,800 + 1,200.
    let (status, body) = app.refund("rich", &id, "r-2", json!({"lines": [{"productId": "p1", "quantity": 1}]})).await;
    assert_eq!((status, &body["refund"]["cash"]), (202, &json!(10_800)), "{body}");
    refund_is(&app, &id, 2, "DONE").await;
    assert_eq!((app.stock("p1").await, app.points("rich").await), (100, 99_700));
    assert_eq!(at_pg(&app, &id).await, ("PARTIAL_CANCELED".into(), 2_700, vec![40_500, 10_800]));

    // The filters are all that is left: the rest, through REFUND_PENDING.
    let (status, body) = app.refund("rich", &id, "r-3", json!({"lines": [{"productId": "bulk", "quantity": 3}]})).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        (&body["refund"]["rest"], &body["refund"]["cash"], &body["refund"]["points"]),
        (&json!(true), &json!(2_700), &json!(300))
    );
    app.wait_status(&id, "REFUNDED").await;
    refund_is(&app, &id, 3, "DONE").await;
    assert_eq!((app.stock("bulk").await, app.points("rich").await), (100_000, 100_000));
    let (status, balance, cancels) = at_pg(&app, &id).await;
    assert_eq!((status.as_str(), balance), ("CANCELED", 0));
    assert_eq!(cancels.iter().sum::<u64>(), 54_000, "captured − Σ cancels = 0 for a REFUNDED order");

    // The data platform got each part and the rest.
    app.settled().await;
    let exported: Vec<String> = app.exported(&id).await.iter().map(|d| d.detail_type.clone()).collect();
    assert_eq!(exported.iter().filter(|t| *t == "OrderPartiallyRefunded").count(), 2, "{exported:?}");
    assert_eq!(exported.iter().filter(|t| *t == "OrderRefunded").count(), 1, "{exported:?}");
    // Each cancel carried its own Idempotency-Key.
    let keys: std::collections::BTreeSet<String> = app
        .pg_calls(&id, "cancel")
        .await
        .iter()
        .filter_map(|c| c["idempotencyKey"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    // Nothing is left to refund.
    let (status, body) = app.refund("rich", &id, "r-4", json!({"amount": 1})).await;
    assert_eq!((status, &body["type"]), (409, &json!("https://shop.example/problems/order-not-refundable")), "{body}");
}

#[tokio::test]
async fn a_refund_larger_than_what_remains_is_422_and_changes_nothing() {
    let app = spawn_app().await;
    let id = paid_three_lines(&app).await;
    let before = app.event_types(&id).await;
    let (status, body) = app.refund("rich", &id, "big", json!({"amount": 60_001})).await;
    assert_eq!(
        (status, &body["type"], &body["held"]),
        (422, &json!("https://shop.example/problems/refund-exceeds-held"), &json!(60_000)),
        "{body}"
    );
    let (status, body) =
        app.refund("rich", &id, "units", json!({"lines": [{"productId": "bulk", "quantity": 4}]})).await;
    assert_eq!(
        (status, &body["type"], &body["held"]),
        (422, &json!("https://shop.example/problems/refund-units-not-held"), &json!(3)),
        "{body}"
    );
    let (status, _) = app.refund("rich", &id, "nope", json!({"lines": [{"productId": "scarce", "quantity": 1}]})).await;
    assert_eq!(status, 422);
    // Another's order is not found; a body of neither lines nor amount is a 400.
    assert_eq!(app.refund("u1", &id, "other", json!({"amount": 1})).await.0, 404);
    assert_eq!(app.refund("rich", &id, "empty", json!({})).await.0, 400);
    assert_eq!(app.event_types(&id).await, before, "nothing written");
    assert_eq!(app.status(&id).await, "PAID");
    assert!(app.pg_calls(&id, "cancel").await.is_empty());

    // The same key and body: the same answer, one refund; another body: 422.
    let (first, a) = app.refund("rich", &id, "once", json!({"amount": 1_000})).await;
    let (again, b) = app.refund("rich", &id, "once", json!({"amount": 1_000})).await;
    assert_eq!((first, again), (202, 202));
    assert_eq!(a, b);
    assert_eq!(app.refund("rich", &id, "once", json!({"amount": 2_000})).await.0, 422);
    let (_, order) = app.get_order("rich", &id).await;
    assert_eq!(order["refunds"].as_array().map(Vec::len), Some(1), "{order}");
}

#[tokio::test]
async fn concurrent_partial_refunds_never_exceed_the_paid_amount() {
    let app = spawn_app().await;
    let id = paid_three_lines(&app).await;
    // Ten refunds of 7,000 against 60,000 held: at most eight fit.
    let answers = join_all((0..10).map(|i| {
        let app = &app;
        let id = &id;
        async move { app.refund("rich", id, &format!("c-{i}"), json!({"amount": 7_000})).await }
    }))
    .await;
    let accepted = answers.iter().filter(|(s, _)| *s == 202).count() as u64;
    for (s, b) in &answers {
        assert!(matches!(s, 202 | 409 | 422), "{s} {b}");
    }
    assert!(accepted <= 8, "{accepted} accepted");
    app.settled().await;
    let (_, order) = app.get_order("rich", &id).await;
    let refunds = order["refunds"].as_array().cloned().unwrap_or_default();
    assert_eq!(refunds.len() as u64, accepted);
    let cash: u64 = refunds.iter().filter_map(|r| r["cash"].as_u64()).sum();
    let (_, balance, cancels) = at_pg(&app, &id).await;
    assert_eq!(cancels.iter().sum::<u64>(), cash, "each accepted refund cancelled once at the PG");
    assert_eq!(54_000 - balance, cash);
    assert!(refunds.iter().all(|r| r["status"] == "DONE"), "{refunds:?}");
}

#[tokio::test]
async fn a_part_the_pg_refuses_fails_with_its_reason_and_is_held_again() {
    let app = spawn_app().await;
    let (id, amount) = app.order("rich", THREE_LINES).await;
    // A payment Toss will not cancel in parts.
    let checkout = app
        .sim(
            reqwest::Method::POST,
            "/v1/sim/checkout",
            Some(json!({"orderId": id, "amount": amount, "partialCancelable": false})),
        )
        .await;
    let key = checkout["paymentKey"].as_str().expect("key").to_owned();
    assert_eq!(app.confirm("rich", &id, &key, amount).await.0, 200);
    let (status, _) = app.refund("rich", &id, "r-1", json!({"lines": [{"productId": "p2", "quantity": 1}]})).await;
    assert_eq!(status, 202);
    let order = refund_is(&app, &id, 1, "FAILED").await;
    let failure = order["refunds"][0]["failure"].as_str().unwrap_or_default();
    assert!(failure.starts_with("NOT_CANCELABLE_PAYMENT"), "{failure}");
    assert_eq!(order["status"], "PAID", "nothing given back: the order holds it all again");
    assert_eq!((app.stock("p2").await, app.points("rich").await), (19, 94_000));
    assert_eq!(app.event_types(&id).await.last().map(String::as_str), Some("RefundFailed"));
    // The whole order can still be refunded (a cancel of the whole is allowed).
    let (status, body) = app.post("rich", &format!("/orders/{id}/cancel"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    app.wait_status(&id, "REFUNDED").await;
    assert_eq!((app.stock("p2").await, app.points("rich").await), (20, 100_000));
}

#[tokio::test]
async fn a_coupon_discount_is_given_up_when_the_rest_falls_below_its_minimum() {
    let app = spawn_app().await;
    // c1: 3,000 off orders of at least 10,000. 12,000 + 2 × 1,000 − 3,000 = 11,000.
    let (id, amount) = app
        .order("u1", r#"{"items":[{"productId":"p1","quantity":1},{"productId":"bulk","quantity":2}],"couponId":"c1"}"#)
        .await;
    assert_eq!(amount, 11_000);
    app.pay_by_card("u1", &id, amount).await;
    app.settled().await;
    assert_eq!(app.coupon_status("c1").await, "USED");
    // The mug back leaves 2,000 of goods, below the minimum: 12,000 − 3,000.
    let (status, body) = app.refund("u1", &id, "r-1", json!({"lines": [{"productId": "p1", "quantity": 1}]})).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!((&body["refund"]["cash"], &body["refund"]["discountWithdrawn"]), (&json!(9_000), &json!(3_000)));
    eventually(10, "refund 1 done", || async {
        let (_, o) = app.get_order("u1", &id).await;
        (o["refunds"][0]["status"] == "DONE").then_some(())
    })
    .await;
    app.settled().await;
    assert_eq!(app.coupon_status("c1").await, "USED", "the coupon stays used while part of the order is kept");
    let (status, body) = app.refund("u1", &id, "r-2", json!({"lines": [{"productId": "bulk", "quantity": 2}]})).await;
    assert_eq!((status, &body["refund"]["cash"]), (202, &json!(2_000)), "{body}");
    app.wait_status(&id, "REFUNDED").await;
    app.settled().await;
    assert_eq!(app.coupon_status("c1").await, "ISSUED", "refunded whole: the coupon is released");
    let (_, _, cancels) = at_pg(&app, &id).await;
    assert_eq!(cancels.iter().sum::<u64>(), 11_000);
}

/// The compensation consumer "dies" after the PG refused a part and the
/// refund was recorded FAILED, before its outcome is recorded (the chaos
/// soak's `consumer.compensation.crash`): the redelivery finds the refund
/// settled and asks the PG nothing — a cancel sent again could be carried
/// out, and give back money the order still holds.
#[tokio::test]
async fn a_refused_part_redelivered_after_a_crash_asks_the_pg_nothing() {
    let app = spawn_app().await;
    let id = paid_three_lines(&app).await;
    app.fault("cancel", "decline", 1).await;
    app.stack.app.chaos.arm("consumer.compensation.crash", 1);
    let (status, _) = app.refund("rich", &id, "r-1", json!({"amount": 5_000})).await;
    assert_eq!(status, 202);
    refund_is(&app, &id, 1, "FAILED").await;
    assert!(!app.stack.app.chaos.fail("consumer.compensation.crash"), "the failpoint fired");
    // The crashed delivery's claim lapses (30 s on the stack's clock); the
    // redelivery finds the refund settled.
    app.clock.advance_secs(31);
    eventually(20, "the redelivery skipped", || async {
        let timeline = app.get(Some("rich"), &format!("/orders/{id}/timeline")).await.2.to_string();
        timeline.contains("already settled").then_some(())
    })
    .await;
    let key = app.get_order("rich", &id).await.1["paymentKey"].as_str().expect("key").to_owned();
    let calls = app.sim(reqwest::Method::GET, &format!("/v1/sim/calls?paymentKey={key}&op=cancel"), None).await;
    assert_eq!(calls.as_array().map(Vec::len), Some(1), "the redelivery did not call the PG: {calls}");
    assert_eq!(at_pg(&app, &id).await, ("DONE".into(), 54_000, vec![]));
    assert_eq!(app.status(&id).await, "PAID");
}
