use shop_app::clock::Clock;
use shop_store::idempotency::{Claim, payload_hash};
use shop_tests::spawn_app;

const BODY: &str = r#"{"items":[{"productId":"p1","quantity":1}],"pointsToUse":100}"#;

#[tokio::test]
async fn same_key_and_body_replays_the_first_response_and_places_one_order() {
    let app = spawn_app().await;
    let (s1, b1) = app.post_order("u1", "same", BODY).await;
    // Same JSON, other key order and spacing.
    let (s2, b2) =
        app.post_order("u1", "same", r#"{ "pointsToUse": 100, "items": [ {"quantity":1, "productId":"p1"} ] }"#).await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(b1, b2);
    assert_eq!(app.orders_of("u1").await.len(), 1);
    assert_eq!(app.stock("p1").await, 99);
    assert_eq!(app.points("u1").await, 4_900);

    let resp = app
        .http
        .post(app.url("/orders"))
        .bearer_auth(app.stack.token("u1"))
        .header("idempotency-key", "same")
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["idempotent-replayed"], "true");
}

#[tokio::test]
async fn same_key_with_another_body_is_422_and_changes_nothing() {
    let app = spawn_app().await;
    assert_eq!(app.post_order("u1", "k", BODY).await.0, 201);
    let (status, body) = app.post_order("u1", "k", r#"{"items":[{"productId":"p1","quantity":2}]}"#).await;
    assert_eq!(status, 422);
    assert_eq!(body["type"], "https://shop.example/problems/idempotency-key-reused");
    assert_eq!(app.stock("p1").await, 99);
    assert_eq!(app.orders_of("u1").await.len(), 1);
}

#[tokio::test]
async fn keys_are_per_user() {
    let app = spawn_app().await;
    assert_eq!(app.post_order("u1", "shared", BODY).await.0, 201);
    let (status, _) = app.post_order("u2", "shared", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await;
    assert_eq!(status, 201);
    assert_eq!(app.stock("p1").await, 98);
}

#[tokio::test]
async fn a_request_in_flight_answers_409_until_it_completes_or_its_lock_lapses() {
    let app = spawn_app().await;
    let payload: serde_json::Value = serde_json::from_str(BODY).unwrap();
    let now = app.clock.now();
    let policy = app.stack.app.config.idempotency;
    // Another invocation holds the key (it is still running).
    let claim =
        app.store().idempotency().claim("orders#u1", "busy", &payload_hash(&payload), now, policy).await.unwrap();
    assert!(matches!(claim, Claim::Acquired(_)));

    let (status, body) = app.post_order("u1", "busy", BODY).await;
    assert_eq!(status, 409);
    assert_eq!(body["type"], "https://shop.example/problems/idempotency-in-progress");
    assert_eq!(app.stock("p1").await, 100);

    // That invocation died: once its in-progress window passes, a retry proceeds.
    app.clock.advance_secs(policy.in_progress_ms / 1000 + 1);
    let (status, _) = app.post_order("u1", "busy", BODY).await;
    assert_eq!(status, 201);
    assert_eq!(app.stock("p1").await, 99);
}

#[tokio::test]
async fn a_refused_request_frees_its_key_for_a_retry() {
    let app = spawn_app().await;
    let big = r#"{"items":[{"productId":"scarce","quantity":6}]}"#;
    let (status, _) = app.post_order("u1", "retry-me", big).await;
    assert_eq!(status, 409);
    // Same key, same body: evaluated again (not a stored 409)...
    assert_eq!(app.post_order("u1", "retry-me", big).await.0, 409);
    // ...and the key can carry a corrected request.
    assert_eq!(app.post_order("u1", "retry-me", r#"{"items":[{"productId":"scarce","quantity":5}]}"#).await.0, 201);
}

#[tokio::test]
async fn completed_keys_are_forgotten_after_their_retention() {
    let app = spawn_app().await;
    let (_, first) = app.post_order("u1", "old", BODY).await;
    app.clock.advance_secs(app.stack.app.config.idempotency.keep_secs + 1);
    let (status, second) = app.post_order("u1", "old", BODY).await;
    assert_eq!(status, 201);
    assert_ne!(first["orderId"], second["orderId"]);
}
