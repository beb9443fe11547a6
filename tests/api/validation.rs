//! Bad input gets a clear problem+json 4xx and changes nothing.

use shop_tests::{TestApp, spawn_app};

/// Stock, points, coupons and orders as they were seeded.
async fn assert_untouched(app: &TestApp) {
    assert_eq!(app.stock("p1").await, 100);
    assert_eq!(app.stock("p2").await, 20);
    assert_eq!(app.stock("scarce").await, 5);
    assert_eq!(app.points("u1").await, 5_000);
    assert_eq!(app.coupon_status("c1").await, "ISSUED");
    assert_eq!(app.coupon_status("c2").await, "ISSUED");
    assert!(app.orders_of("u1").await.is_empty());
}

async fn expect(app: &TestApp, body: &str, status: u16, kind: &str) {
    let (got, problem) = app.post_order("u1", &format!("key-{}", uuid::Uuid::now_v7()), body).await;
    assert_eq!(got, status, "{body} -> {problem}");
    assert_eq!(problem["type"], format!("https://shop.example/problems/{kind}"), "{body}");
    assert_eq!(problem["status"], status);
    assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(problem["correlationId"].is_string());
}

#[tokio::test]
async fn malformed_and_invalid_bodies_are_400() {
    let app = spawn_app().await;
    for body in [
        "",
        "{not json",
        "[]",
        "{}",
        r#"{"items":[]}"#,
        r#"{"items":[{"productId":"p1"}]}"#,
        r#"{"items":[{"productId":"p1","quantity":0}]}"#,
        r#"{"items":[{"productId":"p1","quantity":-2}]}"#,
        r#"{"items":[{"productId":"p1","quantity":100000}]}"#,
        r#"{"items":[{"productId":"p1","quantity":1.5}]}"#,
        r#"{"items":[{"productId":"p1","quantity":1}],"pointsToUse":-1}"#,
        r#"{"items":[{"productId":"","quantity":1}]}"#,
        r#"{"items":[{"productId":"p1","quantity":1}],"userId":"u2"}"#,
    ] {
        expect(&app, body, 400, "invalid-request").await;
    }
    assert_untouched(&app).await;
}

#[tokio::test]
async fn business_rule_violations_have_documented_statuses() {
    let app = spawn_app().await;
    let cases = [
        (r#"{"items":[{"productId":"nope","quantity":1}]}"#, 404, "product-not-found"),
        (r#"{"items":[{"productId":"p1","quantity":1}],"couponId":"nope"}"#, 404, "coupon-not-found"),
        (r#"{"items":[{"productId":"scarce","quantity":6}]}"#, 409, "insufficient-stock"),
        (r#"{"items":[{"productId":"p1","quantity":1}],"couponId":"c-u2"}"#, 422, "coupon-not-owned"),
        (r#"{"items":[{"productId":"p1","quantity":1}],"couponId":"c-old"}"#, 422, "coupon-expired"),
        (r#"{"items":[{"productId":"p1","quantity":1}],"couponId":"c2"}"#, 422, "coupon-minimum-not-met"),
        (r#"{"items":[{"productId":"p2","quantity":1}],"pointsToUse":5001}"#, 409, "insufficient-points"),
        (r#"{"items":[{"productId":"p1","quantity":1}],"pointsToUse":12001}"#, 422, "points-exceed-amount"),
        (r#"{"items":[{"productId":"p1","quantity":1},{"productId":"p1","quantity":2}]}"#, 422, "duplicate-line"),
        // One bad line spoils the whole order: the good line is not reserved.
        (
            r#"{"items":[{"productId":"p1","quantity":1},{"productId":"scarce","quantity":9}]}"#,
            409,
            "insufficient-stock",
        ),
    ];
    for (body, status, kind) in cases {
        expect(&app, body, status, kind).await;
    }
    assert_untouched(&app).await;
}

#[tokio::test]
async fn a_coupon_held_by_one_order_cannot_be_used_by_another() {
    let app = spawn_app().await;
    let with_coupon = r#"{"items":[{"productId":"p1","quantity":1}],"couponId":"c1"}"#;
    assert_eq!(app.post_order("u1", "a", with_coupon).await.0, 201);
    let (status, problem) = app.post_order("u1", "b", with_coupon).await;
    assert_eq!(status, 409);
    assert_eq!(problem["type"], "https://shop.example/problems/coupon-unavailable");
    assert_eq!(problem["couponStatus"], "HELD");
    assert_eq!(app.stock("p1").await, 99);
}

#[tokio::test]
async fn transport_level_problems() {
    let app = spawn_app().await;
    // 64 KiB + 1: refused before parsing.
    let huge = format!(r#"{{"items":[{{"productId":"p1","quantity":1}}],"pad":"{}"}}"#, "x".repeat(64 * 1024));
    expect(&app, &huge, 413, "payload-too-large").await;

    let no_key = app
        .http
        .post(app.url("/orders"))
        .bearer_auth(app.stack.token("u1"))
        .body(r#"{"items":[{"productId":"p1","quantity":1}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 400);

    let no_token = app
        .http
        .post(app.url("/orders"))
        .header("idempotency-key", "k")
        .body(r#"{"items":[{"productId":"p1","quantity":1}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    assert_eq!(no_token.headers()["www-authenticate"], "Bearer");
    assert_untouched(&app).await;
}
