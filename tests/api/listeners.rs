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

/// `shop up --dynamodb-port`: the store itself behind one door. A browser
/// page (any `Origin`, a CORS preflight) is refused, and so is every call
/// not signed by the data dir's credentials; a call the SDK signs with
/// them goes through to the same engine the stack uses.
#[tokio::test]
async fn the_dynamodb_port_takes_only_calls_signed_with_the_stacks_credentials() {
    let app = shop_tests::spawn_app_with_dynamodb_port().await;
    let addr = app.stack.dynamodb_addr.expect("the DynamoDB port");
    let url = format!("http://{addr}");
    let secrets = &app.stack.secrets;
    let table = app.stack.app.config.table_name.clone();

    // Signed with the data dir's key: the stack's own table and data.
    let signed = shop_local::engine::StoreEngine::signed_client(
        &url,
        &secrets.aws_access_key_id,
        &secrets.aws_secret_access_key,
    );
    let tables = signed.list_tables().send().await.expect("a signed call is served");
    assert_eq!(tables.table_names(), std::slice::from_ref(&table));

    // Signed with another secret, or by another key: refused as DynamoDB refuses.
    for (key_id, secret, error) in [
        (secrets.aws_access_key_id.as_str(), "not-the-secret", "InvalidSignatureException"),
        ("AKIDSOMEONEELSE", secrets.aws_secret_access_key.as_str(), "UnrecognizedClientException"),
    ] {
        let forged = shop_local::engine::StoreEngine::signed_client(&url, key_id, secret);
        let e = forged.scan().table_name(&table).send().await.expect_err("a forged call is refused");
        let code = aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&e).map(str::to_owned);
        assert_eq!(code.as_deref(), Some(error), "{e:?}");
    }

    // Unsigned, as a script or a page would send it.
    let call = |origin: Option<&str>| {
        let mut req = app
            .http
            .post(format!("{url}/"))
            .header("x-amz-target", "DynamoDB_20120810.Scan")
            .header("content-type", "application/x-amz-json-1.0")
            .body(format!(r#"{{"TableName":"{table}"}}"#));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let unsigned = call(None).await.expect("request");
    assert_eq!(unsigned.status().as_u16(), 400);
    let body: serde_json::Value = unsigned.json().await.expect("DynamoDB's error");
    assert!(body["__type"].as_str().is_some_and(|t| t.ends_with("#MissingAuthenticationTokenException")), "{body}");

    // A page in the browser: its Origin, or its CORS preflight.
    for origin in ["http://attacker.example", "null", &format!("http://127.0.0.1:{}", app.stack.addr.port())] {
        let resp = call(Some(origin)).await.expect("request");
        assert_eq!(resp.status().as_u16(), 403, "Origin {origin}");
        assert!(resp.headers().get("access-control-allow-origin").is_none());
    }
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, format!("{url}/"))
        .header("origin", "http://attacker.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-amz-target,authorization")
        .send()
        .await
        .expect("preflight");
    assert_eq!(preflight.status().as_u16(), 403);
    assert!(preflight.headers().keys().all(|h| !h.as_str().starts_with("access-control-")));

    // A stranger's body is never read: an unsigned request announcing 10 MB
    // and sending none is answered at once (not after the body timeout).
    {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: DynamoDB_20120810.Scan\r\nContent-Length: 10000000\r\n\r\n"
        );
        conn.write_all(head.as_bytes()).await.expect("head");
        let mut answer = [0u8; 64];
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), conn.read(&mut answer)).await;
        let line = read.ok().and_then(Result::ok).map(|n| String::from_utf8_lossy(&answer[..n]).into_owned());
        assert!(line.as_deref().is_some_and(|l| l.starts_with("HTTP/1.1 400")), "answered before the body: {line:?}");
    }

    // A rebinding page's Host, even signed, never reaches the store.
    assert_eq!(get_as(&app.http, &format!("{url}/"), "attacker.example").await, 403);
}

/// Slow-loris: 20 clients that send one byte every 2 s, half of them still
/// in their request's head, half in its body, are each cut off once their
/// part's timeout is up, and the listener answers everyone else meanwhile.
#[tokio::test]
async fn slow_clients_are_cut_off_within_the_read_timeouts() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let limits = shop_local::listen::Limits {
        header_timeout: std::time::Duration::from_secs(1),
        body_timeout: std::time::Duration::from_secs(3),
        ..shop_local::listen::Limits::with_max_body(shop_local::listen::JSON_BODY)
    };
    let app = shop_tests::spawn_app_limited(limits).await;
    let addr = app.stack.addr;
    let slow = |in_body: bool| async move {
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let started = std::time::Instant::now();
        if in_body {
            let head = format!("POST /webhooks/pg HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 1000\r\n\r\n");
            conn.write_all(head.as_bytes()).await.expect("head");
        }
        let dribble = if in_body {
            b"{".repeat(1000)
        } else {
            format!("GET /products HTTP/1.1\r\nHost: {addr}\r\n").into_bytes()
        };
        let mut answer = Vec::new();
        for byte in dribble {
            if conn.write_all(&[byte]).await.is_err() {
                break;
            }
            // One byte, then two seconds: read whatever the server says meanwhile.
            let mut buf = [0u8; 1024];
            match tokio::time::timeout(std::time::Duration::from_secs(2), conn.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(15), "a slow client was never cut off");
        }
        (started.elapsed(), String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned())
    };
    let clients: Vec<_> = (0..20).map(|i| tokio::spawn(slow(i % 2 == 1))).collect();
    // Everyone else is served meanwhile.
    let healthy = app.http.get(app.url("/healthz")).send().await.expect("healthz");
    assert_eq!(healthy.status(), 200);
    for (i, client) in clients.into_iter().enumerate() {
        let (took, answer) = client.await.expect("client");
        let (timeout, part) = if i % 2 == 1 { (limits.body_timeout, "body") } else { (limits.header_timeout, "head") };
        // Cut within its timeout, give or take one dribble (2 s) and scheduling.
        assert!(took <= timeout + std::time::Duration::from_secs(3), "slow {part}: cut after {took:?}");
        if part == "body" {
            assert!(answer.contains(" 408 "), "a body sent too slowly is answered 408: {answer:?}");
        }
    }
}
