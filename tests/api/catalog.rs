//! The public catalog: `GET /products` (paged, product id order) and
//! `GET /products/{productId}`, cacheable; the stock it shows is the stock
//! that live orders do not hold.

use futures::future::join_all;
use serde_json::{Value, json};
use shop_tests::{TestApp, spawn_app_driven};
use std::collections::HashMap;

#[tokio::test]
async fn the_catalog_is_public_paged_in_id_order_and_answers_304_while_unchanged() {
    let app = spawn_app_driven().await;
    let products = app.all_pages(None, "/products?limit=2", "products").await;
    let ids: Vec<&str> = products.iter().filter_map(|p| p["productId"].as_str()).collect();
    assert_eq!(ids, ["bulk", "p1", "p2", "scarce"], "every product once, in id order");
    assert_eq!(products[1], json!({"productId": "p1", "name": "Mug", "price": 12000, "available": 100}));
    let (status, _, first) = app.get(None, "/products?limit=2").await;
    assert_eq!((status, first["products"].as_array().map(Vec::len)), (200, Some(2)));
    let (_, _, last) =
        app.get(None, &format!("/products?limit=2&cursor={}", first["nextCursor"].as_str().unwrap())).await;
    assert_eq!(last["nextCursor"], Value::Null, "no cursor to an empty page");

    // Cacheable: an ETag, and 304 without a body while it still matches.
    let (status, headers, body) = app.get(None, "/products/p1").await;
    assert_eq!((status, &body["available"]), (200, &json!(100)));
    assert_eq!(headers["cache-control"], "public, max-age=5");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let revalidate = |tag: String| {
        let app = &app;
        async move {
            let resp = app.http.get(app.url("/products/p1")).header("if-none-match", tag).send().await.unwrap();
            (resp.status().as_u16(), resp.headers().get("etag").cloned(), resp.text().await.unwrap())
        }
    };
    let (status, tag, text) = revalidate(etag.clone()).await;
    assert_eq!((status, text.as_str()), (304, ""));
    assert_eq!(tag.unwrap().to_str().unwrap(), etag);
    assert_eq!(revalidate(format!("\"other\", W/{etag}")).await.0, 304, "a list, and a weak comparison");
    assert_eq!(revalidate("*".into()).await.0, 304);
    // An order moves the stock: the old tag no longer matches.
    app.order("u1", r#"{"items":[{"productId":"p1","quantity":3}]}"#).await;
    let (status, tag, text) = revalidate(etag.clone()).await;
    assert_eq!(status, 200);
    assert_ne!(tag.unwrap().to_str().unwrap(), etag);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["available"], 97);
}

#[tokio::test]
async fn unknown_products_are_404_and_bad_pages_400() {
    let app = spawn_app_driven().await;
    for path in ["/products/nope", "/products/bad%23id"] {
        let (status, headers, body) = app.get(None, path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(body["type"], "https://shop.example/problems/product-not-found");
    }
    // A method the route does not take: 405, naming the ones it does (RFC 9110).
    for (method, path, allow) in [("PUT", "/products", "GET"), ("DELETE", "/orders", "POST, GET")] {
        let resp = app.http.request(method.parse().unwrap(), app.url(path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 405, "{method} {path}");
        assert_eq!(resp.headers()["allow"], allow);
    }
    // Any cursor of the documented shape is a place to start, handed out or not.
    let (status, _, after_p1) = app.get(None, "/products?cursor=p1").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> =
        after_p1["products"].as_array().unwrap().iter().filter_map(|p| p["productId"].as_str()).collect();
    assert_eq!(ids, ["p2", "scarce"]);
    assert_eq!(app.get(None, "/products?cursor=zzz").await.2["products"], json!([]));
    for query in ["?limit=0", "?limit=101", "?cursor=a~b", "?cursor=%41", "?cursor="] {
        let (status, _, body) = app.get(None, &format!("/products{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
    }
}

/// Units each product's live orders hold: every order not EXPIRED,
/// CANCELLED or REFUNDED (those gave their stock back).
async fn held_by_live_orders(app: &TestApp, users: &[String]) -> HashMap<String, u64> {
    let mut held: HashMap<String, u64> = HashMap::new();
    for u in users {
        for o in app.all_pages(Some(u), "/orders?limit=100", "orders").await {
            if ["EXPIRED", "CANCELLED", "REFUNDED"].contains(&o["status"].as_str().unwrap_or("")) {
                continue;
            }
            for line in o["items"].as_array().into_iter().flatten() {
                *held.entry(line["productId"].as_str().unwrap().to_owned()).or_default() +=
                    line["quantity"].as_u64().unwrap();
            }
        }
    }
    held
}

#[tokio::test]
async fn the_stock_shown_is_the_initial_stock_minus_what_live_orders_hold_after_a_race() {
    let app = spawn_app_driven().await;
    let users: Vec<String> = (0..12).map(|i| format!("racer{i}")).collect();
    // 48 orders at once for 20 kettles and 5 grinders: one to three units each.
    let attempts = join_all((0..48).map(|i| {
        let (app, user) = (&app, users[i % users.len()].clone());
        async move {
            let product = if i % 3 == 0 { "scarce" } else { "p2" };
            let body = format!(r#"{{"items":[{{"productId":"{product}","quantity":{}}}]}}"#, 1 + i % 3);
            let (status, body) = app.post_order(&user, &format!("race-{i}"), &body).await;
            (user, status, body)
        }
    }))
    .await;
    let placed: Vec<(&String, &Value)> =
        attempts.iter().filter(|(_, s, _)| *s == 201).map(|(u, _, b)| (u, b)).collect();
    assert!(
        attempts
            .iter()
            .all(|(_, s, b)| *s == 201
                || (*s == 409 && b["type"].as_str().unwrap_or("").ends_with("insufficient-stock")))
    );
    assert!(placed.len() < 48, "the race sold out");
    // Some are paid, some cancelled before payment, the rest expire; then
    // two more are placed and wait.
    for (n, (owner, o)) in placed.iter().enumerate() {
        let (id, due) = (o["orderId"].as_str().unwrap(), o["amountDue"].as_u64().unwrap());
        match n % 4 {
            0 => drop(app.pay_by_card(owner, id, due).await),
            1 => assert_eq!(app.post(owner, &format!("/orders/{id}/cancel"), json!({})).await.0, 200),
            _ => {}
        }
    }
    app.clock.advance_secs(900);
    assert!(app.expire().await.expired > 0);
    app.order("racer0", r#"{"items":[{"productId":"p2","quantity":1}]}"#).await;
    app.order("racer1", r#"{"items":[{"productId":"scarce","quantity":1}]}"#).await;

    let held = held_by_live_orders(&app, &users).await;
    for (product, initial) in [("p2", 20), ("scarce", 5)] {
        let (status, _, shown) = app.get(None, &format!("/products/{product}")).await;
        assert_eq!(status, 200);
        let live = held.get(product).copied().unwrap_or(0);
        assert!(live > 0, "{product}: some orders still hold it");
        assert_eq!(
            shown["available"].as_u64(),
            Some(initial - live),
            "{product}: shown = initial − held by live orders"
        );
        // The list says the same.
        let listed = app.all_pages(None, "/products?limit=100", "products").await;
        let row = listed.iter().find(|p| p["productId"] == product).unwrap();
        assert_eq!(row["available"], shown["available"]);
    }
}
