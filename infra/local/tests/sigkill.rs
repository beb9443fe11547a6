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

/// A shopper's request to the waiting room: the status and body (0 while
/// the stack is down).
async fn as_shopper(
    method: &str,
    url: &str,
    token: &str,
    admission: Option<&str>,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req =
        reqwest::Client::new().request(method, url).bearer_auth(token).header("content-type", "application/json");
    if let Some(a) = admission {
        req = req.header("admission", a).header("idempotency-key", format!("sale-order-{a}"));
    }
    if let Some(b) = body {
        req = req.body(b.to_owned());
    }
    let Ok(resp) = req.send().await else { return (0, serde_json::Value::Null) };
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// The demo catalog's sale `launch` (20 shoppers at a time, drop1) while
/// `shop up` is SIGKILLed twice: in the middle of a rush of entries, and
/// while admitted shoppers order and others leave. After quiescence no
/// ticket answered before a kill is lost or moved, each user has one, and
/// the slots add up: every admission is counted once and every slot freed
/// is a ticket that gave one back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_mid_sale_loses_no_ticket_and_no_slot() {
    use shop_domain::sale::TicketStatus;
    use shop_domain::{SaleId, UserId};
    let dir = tempfile::tempdir().expect("dir");
    let p = Ports { api: free_port(), pg: free_port(), sink: free_port() };
    let api = format!("http://127.0.0.1:{}", p.api);
    let up = |api: String| async move {
        wait_for("shop up", 30, || async {
            (http("GET", &format!("{api}/healthz"), None, None).await.0 == 200).then_some(())
        })
        .await
    };
    let mut shop = start(dir.path(), &p);
    up(api.clone()).await;
    let secret = shop_local::secrets::Secrets::of_data_dir(dir.path()).expect("secrets").jwt_secret;
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let users: Vec<String> = (0..120).map(|i| format!("fan{i:03}")).collect();
    let tokens: Vec<String> =
        users.iter().map(|u| shop_local::jwt::issue(&secret, u, i64::try_from(now()).unwrap_or(0), 3600)).collect();
    let enter = |i: usize| {
        let (api, token) = (api.clone(), tokens[i].clone());
        async move { as_shopper("POST", &format!("{api}/sales/launch/queue"), &token, None, None).await }
    };

    // The rush, killed in the middle.
    let rush: Vec<_> = (0..users.len()).map(|i| tokio::spawn(enter(i))).collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    shop.kill().expect("SIGKILL");
    shop.wait().expect("reaped");
    let mut answered = std::collections::HashMap::new();
    for (i, r) in rush.into_iter().enumerate() {
        let (status, t) = r.await.expect("task");
        if status == 201 || status == 200 {
            answered.insert(i, t["enteredAt"].clone());
        }
    }
    eprintln!("{} of {} entries answered before the first kill", answered.len(), users.len());
    let mut shop = start(dir.path(), &p);
    up(api.clone()).await;
    // Everyone enters (again): a ticket answered before the kill is the one
    // held now.
    for (i, user) in users.iter().enumerate() {
        let (status, t) = enter(i).await;
        assert!(status == 200 || status == 201, "{status} {t}");
        if let Some(entered_at) = answered.get(&i) {
            assert_eq!((status, &t["enteredAt"]), (200, entered_at), "{user}'s ticket survived the kill");
        }
    }

    // Admitted shoppers order or leave while the stack is killed again.
    let admitted = wait_for("admissions", 30, || async {
        let mut found = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            let (_, me) = as_shopper("GET", &format!("{api}/sales/launch/queue/me"), token, None, None).await;
            if let Some(a) = me["admission"]["token"].as_str() {
                found.push((i, a.to_owned()));
            }
        }
        (found.len() >= 10).then_some(found)
    })
    .await;
    let acts: Vec<_> = admitted
        .into_iter()
        .map(|(i, admission)| {
            let (api, token) = (api.clone(), tokens[i].clone());
            tokio::spawn(async move {
                if i % 3 == 0 {
                    as_shopper("DELETE", &format!("{api}/sales/launch/queue/me"), &token, None, None).await
                } else {
                    let body = r#"{"items":[{"productId":"drop1","quantity":1}]}"#;
                    as_shopper("POST", &format!("{api}/orders"), &token, Some(&admission), Some(body)).await
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(5)).await;
    shop.kill().expect("SIGKILL");
    shop.wait().expect("reaped");
    let mut done = 0;
    for a in acts {
        if a.await.is_ok_and(|(status, _)| status == 200 || status == 201) {
            done += 1;
        }
    }
    eprintln!("{done} orders and leaves answered before the second kill");
    let mut shop = start(dir.path(), &p);
    up(api.clone()).await;
    // Quiescence: the admitter fills the capacity again.
    wait_for("the sale's slots in use again", 30, || async {
        let (_, sale) = http("GET", &format!("{api}/sales/launch"), None, None).await;
        (sale["active"].as_u64() == Some(20)).then_some(())
    })
    .await;
    shop.kill().expect("SIGKILL");
    shop.wait().expect("reaped");

    // The store as the stack left it.
    let (_engine, app, _) =
        shop_local::open(Some(dir.path()), shop_app::config::Config::default(), None, None).await.expect("open");
    let sale_id = SaleId::parse("launch").unwrap();
    let sale = app.store.sales().get(&sale_id).await.unwrap().unwrap();
    let freed = app.store.sales().freed(&sale_id).await.unwrap();
    let mut places = std::collections::HashSet::new();
    let (mut with_admission, mut gave_back, mut holding) = (0u64, 0u64, 0u64);
    for u in &users {
        let t = app.store.sales().ticket(&sale_id, &UserId::parse(u).unwrap()).await.unwrap();
        let t = t.unwrap_or_else(|| panic!("{u} entered and has no ticket"));
        assert!(places.insert(t.place), "{u}'s place is unique");
        if t.admission.is_some() {
            with_admission += 1;
            match t.status {
                TicketStatus::Admitted | TicketStatus::Ordered => holding += 1,
                TicketStatus::Done | TicketStatus::Left | TicketStatus::Expired => gave_back += 1,
                TicketStatus::Waiting => panic!("{u}: an admission on a waiting ticket"),
            }
        }
    }
    assert_eq!(sale.admitted, with_admission, "every admission counted once");
    assert_eq!(freed, gave_back, "every slot freed is a ticket that gave one back, once");
    assert_eq!(sale.admitted - freed, holding, "the slots in use are the tickets holding one");
    assert!(holding <= u64::from(sale.terms.capacity));
}
