//! `GET /orders`: the caller's orders, newest first, a page at a time,
//! optionally by status; never anyone else's.

use serde_json::json;
use shop_tests::spawn_app_driven;

#[tokio::test]
async fn my_orders_are_newest_first_in_pages_by_status_and_never_anothers() {
    let app = spawn_app_driven().await;
    let mut mine = Vec::new();
    for _ in 0..5 {
        mine.push(app.order("u1", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await.0);
        app.clock.advance_secs(1);
    }
    let (theirs, _) = app.order("u2", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await;
    assert_eq!(app.post("u1", &format!("/orders/{}/cancel", mine[1]), json!({})).await.0, 200);

    let listed = app.all_pages(Some("u1"), "/orders?limit=2", "orders").await;
    let ids: Vec<&str> = listed.iter().filter_map(|o| o["orderId"].as_str()).collect();
    let newest_first: Vec<&str> = mine.iter().rev().map(String::as_str).collect();
    assert_eq!(ids, newest_first);
    assert!(!ids.contains(&theirs.as_str()));
    // Each row is the order as GET /orders/{id} shows it.
    let (_, one) = app.get_order("u1", &mine[4]).await;
    assert_eq!(listed[0], one);

    let cancelled = app.all_pages(Some("u1"), "/orders?status=CANCELLED", "orders").await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(
        (cancelled[0]["orderId"].as_str(), &cancelled[0]["status"]),
        (Some(mine[1].as_str()), &json!("CANCELLED"))
    );
    assert_eq!(app.all_pages(Some("u1"), "/orders?status=PAID", "orders").await, Vec::<serde_json::Value>::new());
    // A cursor of the documented shape that was never handed out: the orders older than it.
    let (status, _, older) = app.get(Some("u1"), "/orders?cursor=9999999999999~x").await;
    assert_eq!((status, older["orders"].as_array().map(Vec::len)), (200, Some(5)));
    let theirs_listed = app.all_pages(Some("u2"), "/orders?limit=100", "orders").await;
    assert_eq!(theirs_listed.len(), 1);
    assert_eq!(theirs_listed[0]["orderId"], json!(theirs));
    // A user with no orders has an empty first and last page.
    let (status, _, none) = app.get(Some("nobody"), "/orders").await;
    assert_eq!((status, none), (200, json!({"orders": [], "nextCursor": null})));
}

#[tokio::test]
async fn a_rare_status_costs_a_bounded_read_per_page_and_is_still_found() {
    let app = spawn_app_driven().await;
    let (oldest, _) = app.order("u1", r#"{"items":[{"productId":"bulk","quantity":1}]}"#).await;
    assert_eq!(app.post("u1", &format!("/orders/{oldest}/cancel"), json!({})).await.0, 200);
    let newer = shop_store::orders::ORDERS_EXAMINED as usize + 20;
    for _ in 0..newer {
        app.clock.advance_secs(1);
        app.order("u1", r#"{"items":[{"productId":"bulk","quantity":1}]}"#).await;
    }
    // The first page examines its budget of newer orders and stops short,
    // with a cursor; the next one finds the cancelled order.
    let (status, _, first) = app.get(Some("u1"), "/orders?status=CANCELLED&limit=10").await;
    assert_eq!(status, 200);
    assert_eq!(first["orders"], json!([]));
    let cursor = first["nextCursor"].as_str().expect("a short page says where to go on");
    let (_, _, second) = app.get(Some("u1"), &format!("/orders?status=CANCELLED&limit=10&cursor={cursor}")).await;
    assert_eq!(second["orders"][0]["orderId"], json!(oldest));
    assert_eq!(second["nextCursor"], json!(null));
    assert_eq!(app.all_pages(Some("u1"), "/orders?limit=100", "orders").await.len(), newer + 1);
}

#[tokio::test]
async fn bad_queries_are_400_and_no_token_is_401() {
    let app = spawn_app_driven().await;
    for query in [
        "?status=paid",
        "?status=",
        "?limit=0",
        "?limit=101",
        "?cursor=zz",
        "?cursor=6869",
        "?cursor=123~x",
        "?cursor=1795219200000~a~b",
    ] {
        let (status, _, body) = app.get(Some("u1"), &format!("/orders{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["type"], "https://shop.example/problems/invalid-request");
    }
    assert_eq!(app.get(None, "/orders").await.0, 401);
}
