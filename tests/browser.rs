//! The saga console in a real browser: Debian's Chromium, headless, driven
//! through ChromeDriver by fantoccini (WebDriver). An operator signs in,
//! watches an order's saga fill in live, makes the data platform refuse,
//! sees three orders' messages reach the DLQ and the banner on one of
//! them, finds the three from the alert strip, redrives them at once
//! (dry run, reason, result), finds them in the audit trail and sees the
//! delivery; and, on a stack whose schedules the test drives, sees a
//! declined card in red with its code and settles a payment in doubt by
//! asking the PG from its banner. Every wait is for an element, with a deadline; no sleeps.
//! Screenshots of each page go to `target/console-screenshots/` (the
//! latest are committed under docs/console/).
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian packages
//! `chromium`, `chromium-driver`; CI installs them). Without them the test
//! says so and passes — except in CI (`CI` set), where it fails.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use shop_tests::{TestApp, spawn_app};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long any one element may take to appear.
const WAIT: Duration = Duration::from_secs(30);

/// ChromeDriver on a free port, killed when dropped.
struct Driver {
    child: tokio::process::Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Driver { child, url }
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            // As root in a container, offline: no sandbox, no GPU, and none
            // of the background connections this network refuses.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1400,1000",
                     format!("--user-data-dir={}", profile.display())],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// The element's text once `want` holds for it (a live region refreshes
/// itself), or a failure after the deadline.
async fn text_when(c: &Client, css: &str, what: &str, want: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
            && want(&t)
        {
            return t;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what} ({css})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reloads `path` until `css` appears: for pages that do not refresh themselves.
async fn reload_until(c: &Client, app: &TestApp, path: &str, css: &str, what: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        c.goto(&app.url(path)).await.unwrap();
        if c.find(Locator::Css(css)).await.is_ok() {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what} ({css} on {path})");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_follows_a_saga_and_redrives_a_dlq_in_a_real_browser() {
    if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        assert!(std::env::var_os("CI").is_none(), "CI must run the browser test: install chromium and chromium-driver");
        eprintln!("SKIPPED: no {CHROMIUM} / {CHROMEDRIVER} (apt-get install chromium chromium-driver)");
        return;
    }
    let app = spawn_app().await;
    let driver = driver().await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;

    // Signing in with an operator's token.
    let now = app.stack.app.clock.now().millis() / 1000;
    let token = shop_local::jwt::issue_operator(&app.stack.secrets.jwt_secret, "ops", now, 3600);
    c.goto(&app.url("/console/orders")).await.unwrap();
    assert!(c.source().await.unwrap().contains("operator"), "an anonymous visit is told to sign in");
    c.goto(&app.url("/console/login")).await.unwrap();
    shot(&c, "login").await;
    c.find(Locator::Css("#token")).await.unwrap().send_keys(&token).await.unwrap();
    c.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    c.wait().at_most(WAIT).for_element(Locator::Css("form.search")).await.unwrap();

    // An order placed and paid through the API fills in live on its page.
    let (order, amount) = app.order("u1", r#"{"items":[{"productId":"p1","quantity":1}],"couponId":"c1"}"#).await;
    c.goto(&app.url(&format!("/console/orders/{order}"))).await.unwrap();
    text_when(&c, "#status", "the order PENDING_PAYMENT", |t| t == "PENDING_PAYMENT").await;
    app.pay_by_card("u1", &order, amount).await;
    text_when(&c, "#status", "the page to show PAID by itself", |t| t == "PAID").await;
    text_when(&c, "#steps", "both consumers done with OrderPaid", |t| {
        t.contains("coupon ← OrderPaid") && t.contains("analytics ← OrderPaid") && !t.contains("Pending")
    })
    .await;
    shot(&c, "order").await;

    // The data platform refuses: armed from the simulators page.
    c.goto(&app.url("/console/simulators")).await.unwrap();
    c.find(Locator::Css("#sink-reason")).await.unwrap().send_keys("rehearsing an outage").await.unwrap();
    c.find(Locator::Css("#sink-fail")).await.unwrap().click().await.unwrap();
    c.wait().at_most(WAIT).for_element(Locator::Css("table#sink-faults")).await.unwrap();
    shot(&c, "simulators").await;
    // Three orders whose OrderPaid the data platform refuses: dead-lettered.
    let mut refused_orders = Vec::new();
    for _ in 0..3 {
        let (o, amount) = app.order("u2", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await;
        app.pay_by_card("u2", &o, amount).await;
        refused_orders.push(o);
    }
    let refused = refused_orders[0].clone();
    let in_dlq = format!("#queues ~ table a[href='/console/orders/{}']", refused_orders[2]);
    reload_until(&c, &app, "/console/queues", &in_dlq, "the refused OrderPaid in the analytics DLQ").await;
    shot(&c, "queues").await;
    // Its order's page opens with the banner: the error, and the redrive.
    c.goto(&app.url(&format!("/console/orders/{refused}"))).await.unwrap();
    let banner = text_when(&c, "#problem-analytics-3", "the dead-letter banner", |t| t.contains("dead-lettered")).await;
    assert!(banner.contains("Last error:") && banner.contains("Redrive"), "{banner}");
    shot(&c, "order-dead-lettered").await;

    // Recovered; then the three redriven at once from the filtered list.
    c.goto(&app.url("/console/simulators")).await.unwrap();
    c.find(Locator::Css("#sink-clear-reason")).await.unwrap().send_keys("rehearsal over").await.unwrap();
    c.find(Locator::Css("#sink-clear")).await.unwrap().click().await.unwrap();
    c.wait().at_most(WAIT).for_element(Locator::Css("p#sink-faults")).await.unwrap();
    // From the alert strip to the filtered list.
    c.goto(&app.url("/console/orders")).await.unwrap();
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#alerts a[href='/console/orders/find?stuck=dead-lettered']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let found = text_when(&c, "#found", "the three dead-lettered orders listed", |t| {
        refused_orders.iter().all(|o| t.contains(o.as_str()))
    })
    .await;
    assert!(!found.contains(&order), "the paid order is not stuck: {found}");
    shot(&c, "find").await;
    c.find(Locator::Css("#bulk-redrive")).await.unwrap().click().await.unwrap();
    let planned = text_when(&c, "#planned", "the dry run's count", |t| !t.is_empty()).await;
    assert!(planned.parse::<usize>().unwrap() >= 3, "{planned}");
    shot(&c, "bulk-confirm").await;
    c.find(Locator::Css("#reason")).await.unwrap().send_keys("the platform is back").await.unwrap();
    c.find(Locator::Css("#confirm")).await.unwrap().click().await.unwrap();
    let result = text_when(&c, "#result", "the bulk redrive finished", |t| t.starts_with("Finished")).await;
    assert!(result.contains(&format!("{planned} succeeded, 0 failed")), "{result}");
    shot(&c, "bulk-result").await;
    // The audit trail, where the redrive lands: the operator, the reason, the three orders.
    c.goto(&app.url("/console/audit")).await.unwrap();
    let audit = text_when(&c, "#audit", "the redrive in the audit trail", |t| t.contains("bulk.redrive")).await;
    assert!(audit.contains("ops") && audit.contains("the platform is back"), "{audit}");
    assert!(refused_orders.iter().all(|o| audit.contains(o.as_str())), "{audit}");
    shot(&c, "audit").await;

    // The delivery, seen on the order's page.
    c.goto(&app.url(&format!("/console/orders/{refused}"))).await.unwrap();
    text_when(&c, "#steps", "the redriven OrderPaid accepted by the data platform", |t| {
        t.lines().any(|l| l.contains("DataPlatform") && l.contains("OrderPaid") && l.contains("answered 200"))
    })
    .await;
    shot(&c, "order-redriven").await;
    c.goto(&app.url("/console/orders")).await.unwrap();
    shot(&c, "orders").await;

    // The overview counts the paid orders by itself (it refreshes every 5 s).
    c.goto(&app.url("/console/overview?range=15m")).await.unwrap();
    text_when(&c, "#status-PAID td.num", "the overview to count the four paid orders", |t| t == "4").await;
    // The charts are drawn, with axes; the cursor on one shows a minute's values.
    let plot = c.wait().at_most(WAIT).for_element(Locator::Css("#chart-orders .uplot canvas")).await.unwrap();
    let axes = c.find_all(Locator::Css("#chart-orders .u-axis")).await.unwrap();
    assert_eq!(axes.len(), 2, "a time axis and a value axis");
    let hover = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
        element: plot,
        duration: None,
        x: 100.0,
        y: 0.0,
    });
    c.perform_actions(hover).await.unwrap();
    let legend = text_when(&c, "#chart-orders .u-legend", "the legend to show the minute under the cursor", |t| {
        t.contains("UTC") && t.contains("settled (paid)")
    })
    .await;
    assert!(legend.lines().any(|l| l.contains("placed")), "{legend}");
    shot(&c, "overview").await;
    c.close().await.unwrap();
}

/// A declined card is red with the PG's code; a payment whose answer was
/// lost opens with the in-doubt banner, and "Ask the PG now", with a
/// reason, settles it while the operator watches (the reconciler is not
/// running: the stack's schedules are the test's to drive).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_is_red_and_a_payment_in_doubt_settles_when_the_operator_asks_the_pg() {
    if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        assert!(std::env::var_os("CI").is_none(), "CI must run the browser test: install chromium and chromium-driver");
        eprintln!("SKIPPED: no {CHROMIUM} / {CHROMEDRIVER} (apt-get install chromium chromium-driver)");
        return;
    }
    let app = shop_tests::spawn_app_driven().await;
    let driver = driver().await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    let now = app.stack.app.clock.now().millis() / 1000;
    let token = shop_local::jwt::issue_operator(&app.stack.secrets.jwt_secret, "ops", now, 3600);
    c.goto(&app.url("/console/login")).await.unwrap();
    c.find(Locator::Css("#token")).await.unwrap().send_keys(&token).await.unwrap();
    c.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    c.wait().at_most(WAIT).for_element(Locator::Css("form.search")).await.unwrap();
    let one = r#"{"items":[{"productId":"p1","quantity":1}]}"#;

    // Declined: red, with the PG's code.
    let (declined, amount) = app.order("u1", one).await;
    app.fault("confirm", "decline", 1).await;
    let key = app.checkout(&declined, amount, "CARD").await;
    assert!((400..500).contains(&app.confirm("u1", &declined, &key, amount).await.0));
    c.goto(&app.url(&format!("/console/orders/{declined}"))).await.unwrap();
    let line = text_when(&c, "#declined", "the decline with its code", |t| t.contains("REJECT_CARD_COMPANY")).await;
    let colour = c.find(Locator::Css("#declined")).await.unwrap().css_value("color").await.unwrap();
    assert!(colour.contains("179, 38, 30"), "red (--bad): {colour} for {line}");
    shot(&c, "order-declined").await;

    // The PG's answer lost: in doubt, then asked about by the operator.
    app.fault("confirm", "lost_response", 1).await;
    app.fault("webhook", "error", -1).await;
    let (order, amount) = app.order("u2", one).await;
    let key = app.checkout(&order, amount, "CARD").await;
    assert_eq!(app.confirm("u2", &order, &key, amount).await.0, 202);
    c.goto(&app.url(&format!("/console/orders/{order}"))).await.unwrap();
    text_when(&c, "#problem-payment", "the in-doubt banner", |t| t.contains("Payment in doubt")).await;
    shot(&c, "order-in-doubt").await;
    c.find(Locator::Css("#ask-pg")).await.unwrap().click().await.unwrap();
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#reason"))
        .await
        .unwrap()
        .send_keys("the shopper called")
        .await
        .unwrap();
    c.find(Locator::Css("#confirm")).await.unwrap().click().await.unwrap();
    text_when(&c, "#status", "the order PAID once the PG was asked", |t| t == "PAID").await;
    assert!(c.find(Locator::Css("#problem-payment")).await.is_err(), "the banner is gone");
    let done =
        text_when(&c, "#order-audit-entries", "the ask on the order's page", |t| t.contains("payment.ask-pg")).await;
    assert!(done.contains("the shopper called") && done.contains("ops"), "{done}");
    c.close().await.unwrap();
}
