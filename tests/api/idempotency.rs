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

/// A retry after a lost answer gets the order its first request placed,
/// even though placing it again would now be refused: that order took the
/// last units.
#[tokio::test]
async fn a_retry_gets_the_first_answer_where_running_it_again_would_be_refused() {
    let app = spawn_app().await;
    let all = r#"{"items":[{"productId":"scarce","quantity":5}]}"#;
    let (s1, first) = app.post_order("u1", "all-of-it", all).await;
    assert_eq!(s1, 201, "{first}");
    assert_eq!(app.stock("scarce").await, 0);
    let (s2, again) = app.post_order("u1", "all-of-it", all).await;
    assert_eq!((s2, &again), (201, &first), "the stored answer, not a 409 for want of stock");
    assert_eq!(app.orders_of("u1").await.len(), 1);
}

/// Requests with one key at the same moment all run; one commits and the
/// others answer with its answer: one order, one answer.
#[tokio::test]
async fn requests_with_one_key_at_the_same_moment_place_one_order_and_get_one_answer() {
    let app = spawn_app().await;
    let answers = futures::future::join_all((0..8).map(|_| app.post_order("u1", "twins", BODY))).await;
    let first = answers.first().map(|(_, b)| b.clone()).unwrap_or_default();
    for (status, body) in &answers {
        assert_eq!((*status, body), (201, &first));
    }
    assert_eq!(app.orders_of("u1").await.len(), 1);
    assert_eq!(app.stock("p1").await, 99);
    assert_eq!(app.points("u1").await, 4_900);
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
