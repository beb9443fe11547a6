//! Concurrent orders never oversell stock, double-use a coupon or take points
//! below zero.

use futures::future::join_all;
use shop_tests::spawn_app;

#[tokio::test]
async fn twenty_buyers_for_five_units_sell_exactly_five() {
    let app = spawn_app().await;
    let users: Vec<String> = (0..20).map(|i| format!("buyer{i}")).collect();
    let results =
        join_all(users.iter().map(|u| app.post_order(u, "k", r#"{"items":[{"productId":"scarce","quantity":1}]}"#)))
            .await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let refused = results
        .iter()
        .filter(|(s, b)| *s == 409 && b["type"].as_str().is_some_and(|t| t.ends_with("insufficient-stock")))
        .count();
    assert_eq!(created, 5, "{results:?}");
    assert_eq!(refused, 15, "{results:?}");
    assert_eq!(app.stock("scarce").await, 0);
}

#[tokio::test]
async fn one_coupon_and_one_balance_under_concurrent_orders() {
    let app = spawn_app().await;
    // Ten orders at once from u1, each wanting coupon c1 and 1,000 of the 5,000 points.
    let app = &app;
    let results = join_all((0..10).map(|i| {
        let key = format!("k{i}");
        async move {
            let body = if i % 2 == 0 {
                r#"{"items":[{"productId":"p1","quantity":1}],"couponId":"c1","pointsToUse":1000}"#
            } else {
                r#"{"items":[{"productId":"p1","quantity":1}],"pointsToUse":1000}"#
            };
            app.post_order("u1", &key, body).await
        }
    }))
    .await;
    let created: Vec<_> = results.iter().filter(|(s, _)| *s == 201).collect();
    let with_coupon = created.iter().filter(|(_, b)| b["couponId"] == "c1").count();
    assert_eq!(with_coupon, 1, "{results:?}");
    assert_eq!(created.len(), 5, "exactly 5 x 1,000 points fit: {results:?}");
    assert_eq!(app.points("u1").await, 0);
    assert_eq!(app.stock("p1").await, 95);
    let ledger = app.store().points().ledger(&shop_domain::UserId::parse("u1").unwrap()).await.unwrap();
    let balance: i64 = ledger.iter().map(|e| e.delta).sum();
    assert_eq!(balance, 0, "ledger rows add up to the balance");
}
