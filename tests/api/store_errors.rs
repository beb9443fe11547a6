//! How each class of store error reaches the client, with the engine's
//! failpoints standing in for DynamoDB's cancellation codes: throttling is
//! retried with backoff, a real conflict is re-read and decided again (and
//! a 409 once it keeps happening), anything else is a 500 on the first try.
//! The engine's failpoints take the next transactions whoever makes them,
//! and the local stream's checkpoint is a transaction too (docs/adr/0024):
//! each test lets the pipeline settle before it arms one.

use shop_tests::{TestApp, spawn_app};

const ORDER: &str = r#"{"items":[{"productId":"p1","quantity":1}]}"#;

/// The app's transactions (the stack's meter), not the emulation's.
fn transactions(app: &TestApp) -> u64 {
    app.stack.meter.snapshot().calls.get("TransactWriteItems").copied().unwrap_or(0)
}

#[tokio::test]
async fn a_throttled_transaction_is_retried() {
    let app = spawn_app().await;
    app.engine().cancel_next_transactions("ThrottlingError", 2);
    let before = transactions(&app);
    let (status, body) = app.post_order("u1", "throttled", ORDER).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(transactions(&app) - before, 3, "two throttled attempts, then the write");
    assert_eq!(app.stock("p1").await, 99);
}

#[tokio::test]
async fn a_validation_error_is_a_500_on_the_first_try_and_writes_nothing() {
    let app = spawn_app().await;
    app.engine().cancel_next_transactions("ValidationError", 1);
    let before = transactions(&app);
    let (status, body) = app.post_order("u1", "invalid", ORDER).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["type"], "https://shop.example/problems/internal");
    assert!(!body["detail"].as_str().unwrap_or("").contains("ValidationError"), "no internals: {body}");
    assert_eq!(transactions(&app) - before, 1, "not retried");
    assert_eq!(app.stock("p1").await, 100);
    // The key was released: the same request goes through now.
    let (status, body) = app.post_order("u1", "invalid", ORDER).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_conflict_is_decided_again_and_a_409_when_it_never_ends() {
    let app = spawn_app().await;
    app.settled().await;
    // A lost condition: re-read, and the domain says yes.
    app.engine().cancel_next_transactions("ConditionalCheckFailed", 1);
    let before = transactions(&app);
    let (status, body) = app.post_order("u1", "raced", ORDER).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(transactions(&app) - before, 2);
    // Conflicting transactions every time: 409 after the retry loop's attempts.
    app.settled().await;
    let attempts = shop_app::usecases::retry::ATTEMPTS as usize;
    app.engine().cancel_next_transactions("TransactionConflict", attempts);
    let before = transactions(&app);
    let (status, body) = app.post_order("u1", "contended", ORDER).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "https://shop.example/problems/contention");
    assert_eq!(transactions(&app) - before, attempts as u64);
    assert_eq!(app.stock("p1").await, 99, "only the first order reserved stock");
    // A real conflict the domain refuses is its precise 409, as before.
    let (status, body) = app.post_order("u1", "too-many", r#"{"items":[{"productId":"scarce","quantity":6}]}"#).await;
    assert_eq!((status, body["type"].as_str()), (409, Some("https://shop.example/problems/insufficient-stock")));
}

#[tokio::test]
async fn a_store_that_throttles_every_attempt_is_a_503_not_a_conflict() {
    let app = spawn_app().await;
    let attempts = shop_app::usecases::retry::ATTEMPTS as usize;
    app.engine().cancel_next_transactions("ThrottlingError", attempts);
    let before = transactions(&app);
    let resp = app.order_request("u1", "throttled-out", ORDER).send().await.expect("request");
    assert_eq!(resp.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let (status, body): (u16, serde_json::Value) = (resp.status().as_u16(), resp.json().await.expect("problem"));
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["type"], "https://shop.example/problems/store-busy");
    assert_eq!(transactions(&app) - before, attempts as u64);
    assert_eq!(app.stock("p1").await, 100, "nothing was written");
    // The same request, once the store has capacity again, goes through.
    let (status, body) = app.post_order("u1", "throttled-out", ORDER).await;
    assert_eq!(status, 201, "{body}");
}
