//! `shop up` killed with SIGKILL loses nothing: an order paid while the data
//! platform is down stays queued for export across the kill, and is
//! delivered exactly once after the restart.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
}

struct Ports {
    api: u16,
    pg: u16,
    sink: u16,
}

fn start(dir: &std::path::Path, p: &Ports) -> Child {
    Command::new(env!("CARGO_BIN_EXE_shop"))
        .args(["up", "--data-dir"])
        .arg(dir)
        .args(["--port", &p.api.to_string(), "--pg-port", &p.pg.to_string(), "--sink-port", &p.sink.to_string()])
        .args(["--visibility-timeout", "1", "--max-receive", "100", "--schedule-every", "3600"])
        .stdout(Stdio::null())
        // Kept beside the data, so a start that never answers can be read.
        .stderr(std::fs::File::create(dir.join("shop-up.log")).map(Stdio::from).unwrap_or_else(|_| Stdio::null()))
        .spawn()
        .expect("shop up starts")
}

async fn http(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, serde_json::Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = reqwest::Client::new().request(method, url).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.bearer_auth(t).header("idempotency-key", format!("sigkill-{url}"));
    }
    if let Some(b) = body {
        req = req.body(b.to_owned());
    }
    // Connection refused while the stack (re)starts: status 0.
    let Ok(resp) = req.send().await else { return (0, serde_json::Value::Null) };
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// Polls `f` until it returns `Some`, failing after `secs` seconds.
async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn deliveries(p: &Ports) -> Vec<serde_json::Value> {
    http("GET", &format!("http://127.0.0.1:{}/sim/deliveries", p.sink), None, None)
        .await
        .1
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn nothing_is_lost_across_sigkill() {
    let dir = tempfile::tempdir().expect("dir");
    let p = Ports { api: free_port(), pg: free_port(), sink: free_port() };
    let api = format!("http://127.0.0.1:{}", p.api);
    let mut shop = start(dir.path(), &p);
    wait_for("shop up", 30, || async {
        (http("GET", &format!("{api}/healthz"), None, None).await.0 == 200).then_some(())
    })
    .await;
    let token = String::from_utf8(
        Command::new(env!("CARGO_BIN_EXE_shop"))
            .args(["token", "--user", "u1", "--data-dir"])
            .arg(dir.path())
            .output()
            .expect("token")
            .stdout,
    )
    .expect("utf8");
    let token = token.trim();

    // The data platform is down; the order is placed and paid regardless.
    http("POST", &format!("http://127.0.0.1:{}/sim/faults", p.sink), None, Some(r#"{"fault":"error","count":-1}"#))
        .await;
    let (status, order) =
        http("POST", &format!("{api}/orders"), Some(token), Some(r#"{"items":[{"productId":"p1","quantity":1}]}"#))
            .await;
    assert_eq!(status, 201, "{order}");
    let id = order["orderId"].as_str().expect("orderId").to_owned();
    let (status, paid) =
        http("POST", &format!("{api}/payments/points"), Some(token), Some(&format!(r#"{{"orderId":"{id}"}}"#))).await;
    assert_eq!((status, paid["status"].as_str()), (200, Some("PAID")), "{paid}");
    wait_for("a failed export attempt", 30, || async {
        deliveries(&p).await.iter().any(|d| d["orderId"] == id.as_str()).then_some(())
    })
    .await;

    shop.kill().expect("SIGKILL");
    shop.wait().expect("reaped");

    let mut shop = start(dir.path(), &p);
    wait_for("shop up again", 30, || async {
        (http("GET", &format!("{api}/healthz"), None, None).await.0 == 200).then_some(())
    })
    .await;
    let (status, again) = http("GET", &format!("{api}/orders/{id}"), Some(token), None).await;
    assert_eq!((status, again["status"].as_str()), (200, Some("PAID")));
    http("DELETE", &format!("http://127.0.0.1:{}/sim/faults", p.sink), None, None).await;
    wait_for("the export after the restart", 30, || async {
        deliveries(&p).await.iter().any(|d| d["orderId"] == id.as_str() && d["status"] == 200).then_some(())
    })
    .await;
    // Once the consumer has recorded the export, the message is gone: no more deliveries.
    wait_for("the analytics outcome", 30, || async {
        let out = Command::new(env!("CARGO_BIN_EXE_shop"))
            .args(["timeline", &id, "--json", "--data-dir"])
            .arg(dir.path())
            .output()
            .ok()?;
        let t: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        t["timeline"].as_array()?.iter().any(|s| s["consumer"] == "analytics" && s["status"] == "DONE").then_some(())
    })
    .await;
    let accepted =
        deliveries(&p).await.into_iter().filter(|d| d["orderId"] == id.as_str() && d["status"] == 200).count();
    assert_eq!(accepted, 1);
    shop.kill().ok();
    shop.wait().ok();
}
