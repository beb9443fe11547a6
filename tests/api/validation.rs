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

/// One parsing point for every request body: a JSON object, with no `null`
/// in it (no request field of docs/openapi.json is nullable). An array is
/// refused before serde could fill a struct's fields from it, and a `null`
/// optional field before it could read as "absent". Nothing is written.
#[tokio::test]
async fn an_array_body_and_a_null_field_are_400_on_every_route_with_a_body() {
    use serde_json::{Value, json};
    let app = spawn_app().await;
    let (order_id, _) = app.order("rich", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await;
    let operator =
        shop_local::jwt::issue_operator(&app.stack.secrets.jwt_secret, "ops", app.stack.app.clock.now().seconds(), 600);
    let send = |path: &'static str, body: String, token: Option<String>| {
        let app = &app;
        async move {
            let mut req = app
                .http
                .post(app.url(path))
                .header("content-type", "application/json")
                .header("idempotency-key", uuid::Uuid::now_v7().to_string())
                .body(body.clone());
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.expect("request");
            let status = resp.status().as_u16();
            let problem: Value = resp.json().await.unwrap_or(Value::Null);
            assert_eq!(status, 400, "POST {path} {body} -> {problem}");
            assert_eq!(problem["type"], "https://shop.example/problems/invalid-request", "{path} {body}");
            problem["detail"].as_str().unwrap_or_default().to_owned()
        }
    };
    let shopper = Some(app.stack.token("rich"));
    let campaign = json!({"campaignId": "nul", "name": "N", "total": 2, "endsAt": "2030-01-01T00:00:00Z",
                          "coupon": {"kind": "FIXED", "value": 1000, "expiresAt": "2030-01-01T00:00:00Z"}});
    // The same bodies, each wrapped in an array (the order serde would read as the struct's fields).
    let bodies: [(&'static str, Value, Option<String>); 5] = [
        ("/orders", json!({"items": [{"productId": "p3", "quantity": 1}]}), shopper.clone()),
        ("/payments/confirm", json!({"orderId": order_id, "paymentKey": "k", "amount": 12000}), shopper.clone()),
        ("/payments/points", json!({"orderId": order_id}), shopper.clone()),
        ("/campaigns", campaign.clone(), Some(operator.clone())),
        ("/webhooks/pg", json!({"eventType": "PAYMENT_STATUS_CHANGED", "data": {}}), None),
    ];
    for (path, body, token) in bodies {
        let as_array = Value::Array(body.as_object().unwrap().values().cloned().collect());
        let detail = send(path, as_array.to_string(), token.clone()).await;
        assert!(detail.contains("must be a JSON object, not an array"), "{path}: {detail}");
        assert!(send(path, "17".into(), token).await.contains("not a number"), "{path}");
    }
    // Every optional field of a request, sent as null.
    let nulls: [(&'static str, Value, Option<String>); 4] = [
        ("/orders", json!({"items": [{"productId": "p1", "quantity": 1}], "couponId": null}), shopper.clone()),
        ("/orders", json!({"items": [{"productId": "p1", "quantity": 1}], "pointsToUse": null}), shopper.clone()),
        ("/campaigns", json!({"startsAt": null}), Some(operator.clone())),
        (
            "/campaigns",
            json!({"coupon": {"kind": "FIXED", "value": 1000, "expiresAt": "2030-01-01T00:00:00Z", "minOrderAmount": null}}),
            Some(operator),
        ),
    ];
    for (path, fields, token) in nulls {
        let mut body = if path == "/campaigns" { campaign.clone() } else { json!({}) };
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        let detail = send(path, body.to_string(), token).await;
        assert!(detail.contains("is null"), "{path} {body}: {detail}");
    }
    // Nothing was written: one order (the test's own), no campaign.
    assert_eq!(app.orders_of("rich").await.len(), 1);
    assert_eq!(app.get(None, "/campaigns/nul").await.0, 404);
}
