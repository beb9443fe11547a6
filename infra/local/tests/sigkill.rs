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
        .stderr(Stdio::null())
        .spawn()
        .expect("shop up starts")
}

fn http(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, serde_json::Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, url, "-H", "content-type: application/json"]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("authorization: Bearer {t}"), "-H", &format!("idempotency-key: sigkill-{url}")]);
    }
    if let Some(b) = body {
        cmd.args(["-d", b]);
    }
    let out = cmd.output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
}

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn deliveries(p: &Ports) -> Vec<serde_json::Value> {
    http("GET", &format!("http://127.0.0.1:{}/sim/deliveries", p.sink), None, None)
        .1
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn nothing_is_lost_across_sigkill() {
    let dir = tempfile::tempdir().expect("dir");
    let p = Ports { api: free_port(), pg: free_port(), sink: free_port() };
    let api = format!("http://127.0.0.1:{}", p.api);
    let mut shop = start(dir.path(), &p);
    wait_for("shop up", 30, || (http("GET", &format!("{api}/healthz"), None, None).0 == 200).then_some(()));
    let token = String::from_utf8(
        Command::new(env!("CARGO_BIN_EXE_shop")).args(["token", "--user", "u1"]).output().expect("token").stdout,
    )
    .expect("utf8");
    let token = token.trim();

    // The data platform is down; the order is placed and paid regardless.
    http("POST", &format!("http://127.0.0.1:{}/sim/faults", p.sink), None, Some(r#"{"fault":"error","count":-1}"#));
    let (status, order) =
        http("POST", &format!("{api}/orders"), Some(token), Some(r#"{"items":[{"productId":"p1","quantity":1}]}"#));
    assert_eq!(status, 201, "{order}");
    let id = order["orderId"].as_str().expect("orderId").to_owned();
    let (status, paid) =
        http("POST", &format!("{api}/payments/points"), Some(token), Some(&format!(r#"{{"orderId":"{id}"}}"#)));
    assert_eq!((status, paid["status"].as_str()), (200, Some("PAID")), "{paid}");
    wait_for("a failed export attempt", 30, || {
        deliveries(&p).iter().any(|d| d["orderId"] == id.as_str()).then_some(())
    });

    shop.kill().expect("SIGKILL");
    shop.wait().expect("reaped");

    let mut shop = start(dir.path(), &p);
    wait_for("shop up again", 30, || (http("GET", &format!("{api}/healthz"), None, None).0 == 200).then_some(()));
    let (status, again) = http("GET", &format!("{api}/orders/{id}"), Some(token), None);
    assert_eq!((status, again["status"].as_str()), (200, Some("PAID")));
    http("DELETE", &format!("http://127.0.0.1:{}/sim/faults", p.sink), None, None);
    wait_for("the export after the restart", 30, || {
        deliveries(&p).iter().any(|d| d["orderId"] == id.as_str() && d["status"] == 200).then_some(())
    });
    // Once the consumer has recorded the export, the message is gone: no more deliveries.
    wait_for("the analytics outcome", 30, || {
        let out = Command::new(env!("CARGO_BIN_EXE_shop"))
            .args(["timeline", &id, "--json", "--data-dir"])
            .arg(dir.path())
            .output()
            .ok()?;
        let t: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        t["timeline"].as_array()?.iter().any(|s| s["consumer"] == "analytics" && s["status"] == "DONE").then_some(())
    });
    let accepted = deliveries(&p).into_iter().filter(|d| d["orderId"] == id.as_str() && d["status"] == 200).count();
    assert_eq!(accepted, 1);
    shop.kill().ok();
    shop.wait().ok();
}
