//! `GET /me/points`: the caller's balance and ledger, newest first, a page
//! at a time; the balance always equals the ledger's sum.

use serde_json::{Value, json};
use shop_tests::{TestApp, spawn_app_driven};

async fn points_page(app: &TestApp, user: &str, query: &str) -> (u16, Value) {
    let resp = app
        .http
        .get(app.url(&format!("/me/points{query}")))
        .bearer_auth(app.stack.token(user))
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Every page of the caller's ledger, following `nextCursor`.
async fn whole_ledger(app: &TestApp, user: &str, limit: usize) -> (u64, Vec<Value>) {
    let (mut rows, mut query, mut balance) = (Vec::new(), format!("?limit={limit}"), None);
    loop {
        let (status, page) = points_page(app, user, &query).await;
        assert_eq!(status, 200, "{page}");
        balance.get_or_insert(page["balance"].as_u64().expect("balance"));
        let got = page["ledger"].as_array().cloned().unwrap_or_default();
        assert!(got.len() <= limit && !got.is_empty(), "{page}");
        rows.extend(got);
        match page["nextCursor"].as_str() {
            Some(c) => query = format!("?limit={limit}&cursor={c}"),
            None => return (balance.unwrap_or(0), rows),
        }
    }
}

#[tokio::test]
async fn the_balance_is_the_ledgers_sum_after_orders_a_refund_and_an_expiry() {
    let app = spawn_app_driven().await;
    let with_points = |n: u64| format!(r#"{{"items":[{{"productId":"p1","quantity":1}}],"pointsToUse":{n}}}"#);
    // Spent and paid, spent and refunded, spent and expired.
    let (paid, due) = app.order("u1", &with_points(1_000)).await;
    app.pay_by_card("u1", &paid, due).await;
    let (refunded, due) = app.order("u1", &with_points(700)).await;
    app.pay_by_card("u1", &refunded, due).await;
    let (status, _) = app.post("u1", &format!("/orders/{refunded}/cancel"), json!({})).await;
    assert_eq!(status, 200);
    app.wait_status(&refunded, "REFUNDED").await;
    let (expired, _) = app.order("u1", &with_points(300)).await;
    app.clock.advance_secs(900);
    assert_eq!(app.expire().await.expired, 1);
    assert_eq!(app.status(&expired).await, "EXPIRED");

    let (balance, rows) = whole_ledger(&app, "u1", 2).await;
    // initial 5,000 − 1,000 (paid) − 700 + 700 (refunded) − 300 + 300 (expired)
    assert_eq!(balance, 4_000);
    let sum: i64 = rows.iter().map(|r| r["delta"].as_i64().expect("delta")).sum();
    assert_eq!(sum, 4_000, "the balance is the ledger's sum: {rows:#?}");
    let reasons: Vec<&str> = rows.iter().map(|r| r["reason"].as_str().unwrap_or("")).collect();
    assert_eq!(
        reasons,
        ["ORDER_RELEASE", "ORDER_SPEND", "REFUND", "ORDER_SPEND", "ORDER_SPEND", "GRANT"],
        "newest first"
    );
    assert_eq!(rows[0]["orderId"], json!(expired));
    assert_eq!(rows[0]["balanceAfter"], 4_000);
    assert_eq!(rows[2]["orderId"], json!(refunded));
    // One page with everything says the same.
    let (_, all) = points_page(&app, "u1", "?limit=100").await;
    assert_eq!(all["ledger"].as_array().map(Vec::len), Some(6));
    assert_eq!(all["nextCursor"], Value::Null);
    // Another user sees only their own.
    let (status, rich) = points_page(&app, "rich", "").await;
    assert_eq!((status, &rich["balance"]), (200, &json!(100_000)));
    assert_eq!(rich["ledger"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn bad_pages_are_400_and_no_token_is_401() {
    let app = spawn_app_driven().await;
    for query in ["?limit=0", "?limit=101", "?limit=ten", "?limit=2.5", "?cursor=zz", "?cursor=abc", "?cursor=6869"] {
        let (status, body) = points_page(&app, "u1", query).await;
        assert_eq!(
            (status, &body["type"]),
            (400, &json!("https://shop.example/problems/invalid-request")),
            "{query}: {body}"
        );
    }
    let resp = app.http.get(app.url("/me/points")).send().await.expect("request");
    assert_eq!(resp.status().as_u16(), 401);
}

/// Paying an order with points answers with the paid order whether this
/// request paid it or lost the race to another points payment of the same
/// order: 20 at once all answer 200 PAID, and the points are debited once.
/// A points payment of an order paid by card is still refused.
#[tokio::test]
async fn twenty_points_payments_of_one_order_all_answer_the_paid_order_and_debit_once() {
    let app = shop_tests::spawn_app().await;
    let (order_id, due) = app.order("rich", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await;
    let before = app.points("rich").await;
    let payments = (0..20).map(|_| app.post("rich", "/payments/points", json!({"orderId": order_id})));
    for (status, body) in futures::future::join_all(payments).await {
        assert_eq!((status, body["status"].as_str()), (200, Some("PAID")), "{body}");
        assert_eq!(body["orderId"], order_id.as_str());
    }
    assert_eq!(app.points("rich").await, before - due, "debited once");
    let ledger = app.store().points().ledger(&shop_domain::UserId::parse("rich").unwrap()).await.unwrap();
    let spends = ledger.iter().filter(|e| e.order_id.as_ref().map(|o| o.as_str()) == Some(order_id.as_str()));
    assert_eq!(spends.count(), 1);

    let (card, amount) = app.order("rich", r#"{"items":[{"productId":"p2","quantity":1}]}"#).await;
    app.pay_by_card("rich", &card, amount).await;
    let (status, body) = app.post("rich", "/payments/points", json!({"orderId": card})).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (409, Some("https://shop.example/problems/order-not-payable")),
        "{body}"
    );
}
