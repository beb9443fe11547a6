use serde_json::json;
use shop_domain::{OrderId, UserId};
use shop_tests::{T0, eventually, spawn_app, spawn_app_in};

const FULL: &str =
    r#"{"items":[{"productId":"p1","quantity":2},{"productId":"p2","quantity":1}],"couponId":"c1","pointsToUse":1000}"#;

#[tokio::test]
async fn placing_an_order_reserves_stock_holds_coupon_spends_points_and_records_the_event() {
    let app = spawn_app().await;
    let (status, body) = app.post_order("u1", "k-1", FULL).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "PENDING_PAYMENT");
    assert_eq!(body["subtotal"], 69_000);
    assert_eq!(body["discount"], 3_000);
    assert_eq!(body["pointsUsed"], 1_000);
    assert_eq!(body["amountDue"], 65_000);
    assert_eq!(body["expiresAt"], T0.plus_secs(900).to_rfc3339());
    let order_id = body["orderId"].as_str().unwrap().to_owned();

    assert_eq!(app.stock("p1").await, 98);
    assert_eq!(app.stock("p2").await, 19);
    assert_eq!(app.coupon_status("c1").await, "HELD");
    assert_eq!(app.points("u1").await, 4_000);

    let user = UserId::parse("u1").unwrap();
    let ledger = app.store().points().ledger(&user).await.unwrap();
    let spend: Vec<_> = ledger.iter().filter(|e| e.order_id.as_ref().map(|o| o.as_str()) == Some(&order_id)).collect();
    assert_eq!(spend.len(), 1);
    assert_eq!(spend[0].delta, -1_000);
    assert_eq!(spend[0].balance_after.won(), 4_000);

    let id = OrderId::parse(order_id.as_str()).unwrap();
    let events = app.store().outbox().events_of(&id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail_type, "OrderPlaced");
    assert_eq!(events[0].event_id, format!("{order_id}#1"));
    // The publisher takes it out of the pending outbox once the bus has it.
    shop_tests::eventually(10, "OrderPlaced published", || async {
        (!app.store().outbox().events_of(&id).await.unwrap()[0].pending).then_some(())
    })
    .await;
    let detail: serde_json::Value = serde_json::from_str(&events[0].detail).unwrap();
    assert_eq!(detail["data"]["amountDue"], 65_000);
    assert_eq!(detail["aggregateVersion"], 1);

    // The order is in the expiry index once its time has come, never before.
    assert!(app.store().orders().due_to_expire(T0, 10).await.unwrap().is_empty());
    assert_eq!(app.store().orders().due_to_expire(T0.plus_secs(900), 10).await.unwrap(), vec![id]);
}

#[tokio::test]
async fn an_order_without_coupon_or_points_is_just_the_items() {
    let app = spawn_app().await;
    let (status, body) = app.post_order("u2", "k", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["amountDue"], 12_000);
    assert_eq!(body["discount"], 0);
    assert_eq!(body["pointsUsed"], 0);
}

#[tokio::test]
async fn points_can_cover_the_whole_amount() {
    let app = spawn_app().await;
    let (status, body) = app
        .post_order("u1", "k", r#"{"items":[{"productId":"p1","quantity":1}],"couponId":"c1","pointsToUse":5000}"#)
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["amountDue"], 4_000);
    assert_eq!(app.points("u1").await, 0);
}

#[tokio::test]
async fn owners_see_their_orders_and_nobody_else_does() {
    let app = spawn_app().await;
    let (_, created) = app.post_order("u1", "k", FULL).await;
    let id = created["orderId"].as_str().unwrap();

    let (status, body) = app.get_order("u1", id).await;
    assert_eq!(status, 200);
    assert_eq!(body["orderId"], id);
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    assert_eq!(body["amountDue"], created["amountDue"]);

    let (status, body) = app.get_order("u2", id).await;
    assert_eq!(status, 404);
    assert_eq!(body["type"], "https://shop.example/problems/order-not-found");
    let (status, _) = app.get_order("u1", "does-not-exist").await;
    assert_eq!(status, 404);
    let (status, _) = app.get_order("u1", "bad%23id").await;
    assert_eq!(status, 404);

    let anonymous = app.http.get(app.url(&format!("/orders/{id}"))).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["content-type"], "application/problem+json");
    let forged = app.http.get(app.url(&format!("/orders/{id}"))).bearer_auth("a.b.c").send().await.unwrap();
    assert_eq!(forged.status(), 401);
    let wrong_key = shop_local::jwt::issue("another-secret", "u1", T0.seconds(), 60);
    let resp = app.http.get(app.url(&format!("/orders/{id}"))).bearer_auth(wrong_key).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let expired = shop_local::jwt::issue(&app.stack.secrets.jwt_secret, "u1", T0.seconds() - 120, 60);
    let resp = app.http.get(app.url(&format!("/orders/{id}"))).bearer_auth(expired).send().await.unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn correlation_id_is_echoed_and_recorded_on_the_event() {
    let app = spawn_app().await;
    let resp = app
        .order_request("u2", "k", r#"{"items":[{"productId":"p1","quantity":1}]}"#)
        .header("x-correlation-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["x-correlation-id"], "trace-me-123");
    let body: serde_json::Value = resp.json().await.unwrap();
    let id = OrderId::parse(body["orderId"].as_str().unwrap()).unwrap();
    let events = app.store().outbox().events_of(&id).await.unwrap();
    let detail: serde_json::Value = serde_json::from_str(&events[0].detail).unwrap();
    assert_eq!(detail["correlationId"], "trace-me-123");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = spawn_app().await;
    let resp = app.http.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let resp = app.http.delete(app.url("/orders")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
}

#[tokio::test]
async fn openapi_document_is_served_and_covers_every_route() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app.http.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for route in shop_app::http::routes::ROUTES {
        let op = &doc["paths"][route.path][route.method.to_ascii_lowercase()];
        assert!(op.is_object(), "{} {} missing from docs/openapi.json", route.method, route.path);
        assert_eq!(op["operationId"], json!(route.function), "{} {}", route.method, route.path);
    }
    let documented: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(documented, shop_app::http::routes::ROUTES.len(), "openapi.json documents routes the API does not have");
}

#[tokio::test]
async fn data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(Some(dir.path().to_owned())).await;
    let (status, created) = app.post_order("u1", "k", FULL).await;
    assert_eq!(status, 201);
    app.stack.stop().await;

    let app = spawn_app_in(Some(dir.path().to_owned())).await;
    let (status, body) = app.get_order("u1", created["orderId"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body, created);
    // The catalog is loaded only into a new data dir: stock stays reserved.
    assert_eq!(app.stock("p1").await, 98);
}

/// Coupon and points covering the whole amount: the order is PAID by the
/// request that places it, its coupon becomes USED and it is exported like
/// any paid order — never left PENDING_PAYMENT to expire.
#[tokio::test]
async fn an_order_fully_covered_by_coupon_and_points_is_paid_when_placed() {
    use shop_local::seed::{Catalog, CatalogCoupon, Kind, seed};
    let app = spawn_app().await;
    let coupon = CatalogCoupon {
        id: shop_domain::CouponId::parse("c-rich").unwrap(),
        user_id: shop_domain::UserId::parse("rich").unwrap(),
        kind: Kind::Fixed,
        value: 2_000,
        min_order_amount: shop_domain::Money::ZERO,
        expires_at: "2030-01-01T00:00:00Z".into(),
    };
    seed(
        &app.stack.app,
        &Catalog { products: vec![], coupons: vec![coupon], users: vec![], campaigns: vec![], sales: vec![] },
    )
    .await
    .unwrap();
    let (status, body) = app
        .post_order(
            "rich",
            "covered",
            r#"{"items":[{"productId":"p1","quantity":1}],"couponId":"c-rich","pointsToUse":10000}"#,
        )
        .await;
    assert_eq!((status, &body["status"], &body["amountDue"]), (201, &json!("PAID"), &json!(0)), "{body}");
    assert_eq!(body["paymentMethod"], "POINTS");
    let order_id = body["orderId"].as_str().unwrap().to_owned();
    assert_eq!(app.event_types(&order_id).await, vec!["OrderPlaced", "OrderPaid"]);
    assert_eq!((app.points("rich").await, app.stock("p1").await), (90_000, 99));
    eventually(20, "coupon USED", || async { (app.coupon_status("c-rich").await == "USED").then_some(()) }).await;
    eventually(20, "exported", || async {
        app.exported(&order_id).await.iter().any(|d| d.detail_type == "OrderPaid").then_some(())
    })
    .await;
    // Nothing to expire.
    assert_eq!(app.get_order("rich", &order_id).await.1["status"], "PAID");
}

/// One stack per data dir: a second one is refused, naming the lock and
/// the process that holds it, and the first keeps serving; once the first
/// stops, the data dir is free again.
#[tokio::test]
async fn a_second_stack_on_one_data_dir_is_refused_naming_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(Some(dir.path().to_owned())).await;
    let second = shop_local::Stack::start(shop_local::StackOptions {
        data_dir: Some(dir.path().to_owned()),
        ..shop_local::StackOptions::default()
    })
    .await;
    let Err(refused) = second else { panic!("a second stack started on the same data dir") };
    let message = format!("{refused:#}");
    assert!(message.contains("shop.lock") && message.contains(&std::process::id().to_string()), "{message}");
    assert_eq!(app.get(None, "/products").await.0, 200, "the first stack still serves");
    app.stack.stop().await;
    let again = spawn_app_in(Some(dir.path().to_owned())).await;
    assert_eq!(again.get(None, "/products").await.0, 200);
}

/// An order reads back as its payment left it: a card-paid order shows the
/// payment key and status its confirm answered with; a points-paid order
/// shows the points that paid it (`pointsPaid`) beside those taken off at
/// placement (`pointsUsed`); and an issued coupon past its expiry reads
/// EXPIRED.
#[tokio::test]
async fn an_order_reads_back_as_its_payment_left_it_and_an_expired_coupon_reads_expired() {
    let app = spawn_app().await;
    let (card, amount) = app.order("u1", r#"{"items":[{"productId":"p1","quantity":1}],"pointsToUse":500}"#).await;
    let key = app.checkout(&card, amount, "CARD").await;
    let (status, confirmed) = app.confirm("u1", &card, &key, amount).await;
    assert_eq!(status, 200, "{confirmed}");
    let (status, _, read) = app.get(Some("u1"), &format!("/orders/{card}")).await;
    assert_eq!(status, 200);
    for field in ["status", "paymentKey", "paymentStatus", "paymentMethod", "amountDue", "pointsUsed", "pointsPaid"] {
        assert_eq!(read[field], confirmed[field], "{field}: read {read} vs confirmed {confirmed}");
    }
    assert_eq!((read["paymentKey"].as_str(), read["paymentStatus"].as_str()), (Some(key.as_str()), Some("DONE")));
    assert_eq!((read["pointsUsed"].as_u64(), read["pointsPaid"].as_u64()), (Some(500), Some(0)));

    let (points, due) = app.order("rich", r#"{"items":[{"productId":"p1","quantity":1}],"pointsToUse":700}"#).await;
    let (status, paid) = app.post("rich", "/payments/points", json!({"orderId": points})).await;
    assert_eq!(status, 200, "{paid}");
    let (_, _, read) = app.get(Some("rich"), &format!("/orders/{points}")).await;
    assert_eq!(read["paymentMethod"], "POINTS");
    assert_eq!((read["pointsUsed"].as_u64(), read["pointsPaid"].as_u64()), (Some(700), Some(due)), "{read}");
    assert!(read.get("paymentKey").is_none() && read.get("paymentStatus").is_none(), "no PG payment: {read}");
    assert_eq!(paid["pointsPaid"], read["pointsPaid"]);

    let (_, _, coupons) = app.get(Some("u1"), "/coupons").await;
    let coupon = |id: &str| {
        coupons["coupons"].as_array().and_then(|cs| cs.iter().find(|c| c["couponId"] == id)).cloned().expect(id)
    };
    assert_eq!(
        (coupon("c-old")["status"].as_str(), coupon("c-old")["usable"].as_bool()),
        (Some("EXPIRED"), Some(false))
    );
    assert_eq!((coupon("c1")["status"].as_str(), coupon("c1")["usable"].as_bool()), (Some("ISSUED"), Some(true)));
}
