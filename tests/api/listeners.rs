//! Every local listener answers only its own loopback `Host`: a page the
//! developer's browser opened elsewhere, pointed at 127.0.0.1 by DNS
//! rebinding, sends its own host name and is refused before any route runs.

use shop_tests::spawn_app;

/// `GET url` with `host` as the `Host` header: the status.
async fn get_as(http: &reqwest::Client, url: &str, host: &str) -> u16 {
    http.get(url).header(reqwest::header::HOST, host).send().await.expect("request").status().as_u16()
}

#[tokio::test]
async fn every_listener_refuses_a_host_that_is_not_its_loopback_address() {
    let app = spawn_app().await;
    let listeners = [
        ("the API", app.stack.addr, "/products"),
        ("the console", app.stack.addr, "/console/login"),
        ("the PG simulator", app.stack.pg_addr, "/v1/sim/calls"),
        ("the data-platform sink", app.stack.sink_addr, "/sim/deliveries"),
    ];
    for (name, addr, path) in listeners {
        let url = format!("http://{addr}{path}");
        let port = addr.port();
        for evil in
            ["attacker.example".to_owned(), format!("attacker.example:{port}"), format!("127.0.0.1:{}", port + 1)]
        {
            assert_eq!(get_as(&app.http, &url, &evil).await, 403, "{name} answered Host {evil}");
        }
        for own in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")] {
            assert_eq!(get_as(&app.http, &url, &own).await, 200, "{name} refused Host {own}");
        }
    }
    // A refused request reaches no route: nothing was placed.
    let refused = app
        .http
        .post(app.url("/orders"))
        .header(reqwest::header::HOST, "attacker.example")
        .bearer_auth(app.stack.token("u1"))
        .header("idempotency-key", "rebound")
        .body(r#"{"items":[{"productId":"p1","quantity":1}]}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status().as_u16(), 403);
    let problem: serde_json::Value = refused.json().await.expect("problem");
    assert_eq!(problem["type"], "https://shop.example/problems/host-refused");
    assert!(app.orders_of("u1").await.is_empty());
}
