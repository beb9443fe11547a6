//! The saga console (`/console`): operators only, and one refunded order's
//! saga shown whole with its money balanced.

use serde_json::json;
use shop_tests::{eventually, spawn_app};

/// A console action's form with the reason every action requires.
fn with_reason<'a>(form: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = form.to_vec();
    all.push(("reason", "a test of the console"));
    all
}

fn operator_token(app: &shop_tests::TestApp) -> String {
    let now = app.stack.app.clock.now().millis() / 1000;
    shop_local::jwt::issue_operator(&app.stack.secrets.jwt_secret, "ops", now, 600)
}

#[tokio::test]
async fn only_an_operator_gets_in_and_a_shopper_or_a_forgery_never_does() {
    let app = spawn_app().await;
    let (order, _) = app.order("u1", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await;
    let now = app.stack.app.clock.now().millis() / 1000;
    let forged = shop_local::jwt::issue_operator("a guessed secret", "ops", now, 600);
    let shopper = app.stack.token("u1");
    let routes = [
        ("GET", "/console".to_owned()),
        ("GET", "/console/overview".to_owned()),
        ("GET", "/console/overview/charts?range=24h".to_owned()),
        ("GET", "/console/orders".to_owned()),
        ("GET", "/console/orders?q=u1".to_owned()),
        ("GET", format!("/console/orders/{order}")),
        ("GET", format!("/console/orders/{order}/saga")),
        ("GET", format!("/console/orders/{order}/republish")),
        ("POST", format!("/console/orders/{order}/republish")),
        ("GET", format!("/console/orders/{order}/replay?version=1&consumer=analytics")),
        ("POST", format!("/console/orders/{order}/replay")),
        ("GET", "/console/orders?status=PAID".to_owned()),
        ("GET", "/console/queues".to_owned()),
        ("GET", "/console/sales".to_owned()),
        ("GET", "/console/sales/live".to_owned()),
        ("GET", "/console/queues/analytics/redrive".to_owned()),
        ("POST", "/console/queues/analytics/redrive".to_owned()),
        ("GET", "/console/simulators".to_owned()),
        ("POST", "/console/simulators/sink/faults".to_owned()),
        ("POST", "/console/simulators/sink/clear".to_owned()),
        ("POST", "/console/simulators/pg/faults".to_owned()),
        ("POST", "/console/simulators/pg/clear".to_owned()),
        ("POST", "/console/logout".to_owned()),
    ];
    for (method, path) in &routes {
        let send = |token: Option<&str>, cookie: Option<&str>| {
            let mut r = app.http.request(method.parse().unwrap(), app.url(path));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            if let Some(c) = cookie {
                r = r.header("cookie", format!("shop_console={c}"));
            }
            r.send()
        };
        assert_eq!(send(None, None).await.unwrap().status(), 401, "{method} {path} without a token");
        assert_eq!(send(Some(&shopper), None).await.unwrap().status(), 403, "{method} {path} with a shopper's token");
        // The cookie holds a session id: a token in it is no session.
        assert_eq!(send(None, Some(&shopper)).await.unwrap().status(), 401, "{method} {path} with a token as cookie");
        let op = operator_token(&app);
        assert_eq!(send(None, Some(&op)).await.unwrap().status(), 401, "{method} {path} with a token as cookie");
        assert_eq!(send(Some(&forged), None).await.unwrap().status(), 401, "{method} {path} with a forged token");
        assert_eq!(send(Some("not.a.jwt"), None).await.unwrap().status(), 401, "{method} {path} with garbage");
    }
    // Signing in: a shopper's token is refused, an operator's opens a session.
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = |token: String| no_redirects.post(app.url("/console/login")).form(&[("token", token)]).send();
    assert_eq!(login(shopper.clone()).await.unwrap().status(), 403);
    assert_eq!(login(forged).await.unwrap().status(), 401);
    let ok = login(operator_token(&app)).await.unwrap();
    assert_eq!(ok.status(), 303);
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/console"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let page = app.http.get(app.url("/console/orders")).header("cookie", pair).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Payments in doubt"));
    // The assets need no token (they hold nothing) and come from the binary.
    let htmx = app.http.get(app.url("/console/assets/htmx.min.js")).send().await.unwrap();
    assert_eq!(htmx.status(), 200);
    assert!(htmx.text().await.unwrap().contains("htmx"));
}

#[tokio::test]
async fn a_refunded_order_with_a_coupon_and_points_shows_every_step_and_balances() {
    let app = spawn_app().await;
    let body = r#"{"items":[{"productId":"p2","quantity":1}],"couponId":"c1","pointsToUse":1000}"#;
    let (order, amount) = app.order("u1", body).await;
    let key = app.checkout(&order, amount, "CARD").await;
    assert_eq!(app.confirm("u1", &order, &key, amount).await.0, 200);
    assert_eq!(app.post("u1", &format!("/orders/{order}/cancel"), json!({})).await.0, 200);
    app.wait_status(&order, "REFUNDED").await;
    app.settled().await;

    let token = operator_token(&app);
    let html = eventually(10, "the order's page with its saga settled", || {
        let req = app.http.get(app.url(&format!("/console/orders/{order}"))).bearer_auth(&token);
        async move {
            let html = req.send().await.ok()?.text().await.ok()?;
            (html.contains("RefundRequested") && !html.contains("class=\"Pending\"")).then_some(html)
        }
    })
    .await;
    let cell = |id: &str| -> String {
        let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("#{id} missing"));
        let rest = &html[at..];
        rest[rest.find('>').unwrap() + 1..rest.find('<').unwrap()].to_owned()
    };
    // The money: 45,000 - 3,000 coupon - 1,000 points = 41,000 captured and cancelled; 1,000 points out and back.
    assert_eq!(amount, 41_000);
    assert_eq!((cell("captured"), cell("cancelled")), ("41000".to_owned(), "41000".to_owned()));
    assert_eq!((cell("points-spent"), cell("points-refunded")), ("1000".to_owned(), "1000".to_owned()));
    assert!(
        html.contains(
            "<p class=\"balanced\" id=\"balance\">Balanced: captured − cancelled = 0, points spent − refunded = 0."
        ),
        "{html}"
    );
    // Every step: the events in order, each published; the consumers' outcomes; the PG's calls; the deliveries.
    for step in ["OrderPlaced", "PaymentConfirmationStarted", "OrderPaid", "RefundRequested", "OrderRefunded"] {
        assert!(html.contains(step), "{step} missing");
    }
    for lane in ["Order", "Outbox", "Consumer", "Pg", "DataPlatform"] {
        assert!(html.contains(&format!("<td class=\"lane\">{lane}</td>")), "lane {lane} missing");
    }
    for actor in
        ["coupon ← OrderPaid", "compensation ← RefundRequested", "analytics ← OrderRefunded", "confirm", "cancel"]
    {
        assert!(html.contains(actor), "{actor} missing");
    }
    assert!(html.contains("REFUNDED"));
    // The live part alone, for htmx.
    let live =
        app.http.get(app.url(&format!("/console/orders/{order}/saga"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(live.status(), 200);
    let live = live.text().await.unwrap();
    assert!(live.contains("id=\"steps\"") && !live.contains("<nav>"));
}

/// A deposit given back in two refunds to the shopper's account: the
/// Money panel lists each refund, says where its cash went, balances — and
/// never shows the account.
#[tokio::test]
async fn a_deposit_refunded_in_parts_shows_each_refund_and_never_the_account() {
    let app = spawn_app().await;
    let (order, amount) =
        app.order("u1", r#"{"items":[{"productId":"p2","quantity":1},{"productId":"p1","quantity":1}]}"#).await;
    let key = app.checkout(&order, amount, "VIRTUAL_ACCOUNT").await;
    assert_eq!(app.confirm("u1", &order, &key, amount).await.0, 200);
    app.sim(reqwest::Method::POST, "/v1/sim/deposit", Some(json!({"paymentKey": key}))).await;
    app.wait_status(&order, "PAID").await;
    let account = json!({"bank": "90", "accountNumber": "3333012345678", "holderName": "콘솔확인"});
    let part = json!({"lines": [{"productId": "p1", "quantity": 1}], "refundAccount": account.clone()});
    assert_eq!(app.refund("u1", &order, "console-part", part).await.0, 202);
    eventually(10, "the part done", || async {
        let (_, o) = app.get_order("u1", &order).await;
        (o["refunds"][0]["status"] == "DONE").then_some(())
    })
    .await;
    assert_eq!(app.post("u1", &format!("/orders/{order}/cancel"), json!({"refundAccount": account})).await.0, 200);
    app.wait_status(&order, "REFUNDED").await;
    app.settled().await;

    let token = operator_token(&app);
    let html = eventually(10, "the order's page with both refunds done", || {
        let req = app.http.get(app.url(&format!("/console/orders/{order}"))).bearer_auth(&token);
        async move {
            let html = req.send().await.ok()?.text().await.ok()?;
            (html.contains("id=\"refund-2\"") && !html.contains("class=\"Pending\"")).then_some(html)
        }
    })
    .await;
    let refunds = &html[html.find("id=\"refunds\"").expect("the Refunds table")..];
    let refunds = &refunds[..refunds.find("</table>").unwrap_or(refunds.len())];
    for n in ["refund-1", "refund-2"] {
        let row = &refunds[refunds.find(&format!("id=\"{n}\"")).unwrap_or_else(|| panic!("{n} missing"))..];
        let row = &row[..row.find("</tr>").unwrap_or(row.len())];
        assert!(row.contains("DONE") && row.contains("by bank transfer"), "{row}");
    }
    assert!(refunds.contains("the rest") && refunds.contains("p1"), "{refunds}");
    assert!(html.contains("<p class=\"balanced\" id=\"balance\">Balanced"), "the money balances");
    assert!(!html.contains("12345678") && !html.contains("콘솔확인"), "the console never shows the account");
}

#[tokio::test]
async fn a_message_the_sink_refused_reaches_the_dlq_and_is_redriven_from_the_console() {
    let app = spawn_app().await;
    let token = operator_token(&app);
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let post = |path: &str, form: &[(&str, &str)]| {
        no_redirects.post(app.url(path)).bearer_auth(&token).form(&with_reason(form)).send()
    };
    let get = |path: &str| app.http.get(app.url(path)).bearer_auth(&token).send();

    // The data platform refuses everything, set from the simulators page.
    assert_eq!(
        post("/console/simulators/sink/faults", &[("fault", "error"), ("count", "-1")]).await.unwrap().status(),
        303
    );
    assert_eq!(
        post("/console/simulators/sink/faults", &[("fault", "melt"), ("count", "1")]).await.unwrap().status(),
        400
    );
    let (order, amount) = app.order("u2", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await;
    app.pay_by_card("u2", &order, amount).await;
    let queues = eventually(20, "order's OrderPaid in the analytics DLQ, on the queues page", || async {
        let html = get("/console/queues").await.ok()?.text().await.ok()?;
        html.contains(&format!("/console/orders/{order}")).then_some(html)
    })
    .await;
    assert!(queues.contains("/console/queues/analytics/redrive"), "{queues}");
    assert!(app.exported(&order).await.iter().all(|d| d.status != 200), "nothing accepted yet");

    assert_eq!(post("/console/simulators/sink/clear", &[]).await.unwrap().status(), 303);
    let confirm = get("/console/queues/analytics/redrive").await.unwrap().text().await.unwrap();
    assert!(confirm.contains("1 message(s) go back"), "{confirm}");
    let moved = post("/console/queues/analytics/redrive", &[]).await.unwrap();
    assert_eq!(moved.status(), 303);
    assert_eq!(moved.headers()["location"], "/console/audit");
    eventually(20, "the redriven OrderPaid delivered", || async {
        app.exported(&order).await.iter().any(|d| d.detail_type == "OrderPaid" && d.status == 200).then_some(())
    })
    .await;
    assert!(app.dlq("analytics").await.is_empty());

    // Republishing the order's events from its page: consumers dedupe, nothing new is delivered.
    let delivered = app.exported(&order).await.iter().filter(|d| d.status == 200 && !d.duplicate).count();
    assert!(
        get(&format!("/console/orders/{order}/republish")).await.unwrap().text().await.unwrap().contains("Republish")
    );
    assert_eq!(post(&format!("/console/orders/{order}/republish"), &[]).await.unwrap().status(), 303);
    let paid_event = format!("{order}#3");
    eventually(20, "the republished OrderPaid on the bus a second time", || async {
        let now = shop_app::clock::Clock::now(&shop_app::clock::SystemClock);
        let archived = shop_local::emulate::queue::Queues(&app.stack.app.store)
            .archived_between(now.plus_secs(-600), now.plus_secs(600))
            .await
            .ok()?;
        (archived.iter().filter(|a| a.event_id == paid_event).count() >= 2).then_some(())
    })
    .await;
    app.settled().await;
    let after = app.exported(&order).await;
    assert_eq!(after.iter().filter(|d| d.status == 200 && !d.duplicate).count(), delivered, "consumers deduped it");
}

/// The overview counts from the saga statistics: each order once in its
/// status, however often its events are published; settled orders, time
/// to settle and PG calls over the range.
#[tokio::test]
async fn the_overview_counts_each_order_once_in_its_status_even_when_republished() {
    let app = spawn_app().await;
    let token = operator_token(&app);
    let one = r#"{"items":[{"productId":"p1","quantity":1}]}"#;
    let (paid, amount) = app.order("u1", one).await;
    app.pay_by_card("u1", &paid, amount).await;
    let (cancelled, _) = app.order("u2", one).await;
    assert_eq!(app.post("u2", &format!("/orders/{cancelled}/cancel"), json!({})).await.0, 200);
    let (_waiting, _) = app.order("u3", one).await;
    app.wait_status(&paid, "PAID").await;
    app.settled().await;

    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let republish = no_redirects
        .post(app.url(&format!("/console/orders/{paid}/republish")))
        .bearer_auth(&token)
        .form(&[("reason", "a test")]);
    assert_eq!(republish.send().await.unwrap().status(), 303);
    app.settled().await;

    let charts = |range: &'static str| {
        let req = app.http.get(app.url(&format!("/console/overview/charts?range={range}"))).bearer_auth(&token);
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let html = charts("15m").await;
    let now_in = |status: &str| -> i64 {
        let at = html.find(&format!("id=\"status-{status}\"")).unwrap_or_else(|| panic!("{status} missing: {html}"));
        let rest = &html[at..];
        let cell = &rest[rest.find("<td class=\"num\">").unwrap() + 16..];
        cell[..cell.find('<').unwrap()].parse().unwrap()
    };
    let counts: Vec<(&str, i64)> =
        ["PENDING_PAYMENT", "CONFIRMING", "PAID", "CANCELLED", "REFUNDED"].iter().map(|s| (*s, now_in(s))).collect();
    assert_eq!(
        counts,
        vec![("PENDING_PAYMENT", 1), ("CONFIRMING", 0), ("PAID", 1), ("CANCELLED", 1), ("REFUNDED", 0)],
        "{html}"
    );
    let stat = |title: &str| {
        let at = html
            .find(&format!("<div class=\"title\">{title}</div><div class=\"value"))
            .unwrap_or_else(|| panic!("{title}: {html}"));
        let rest = &html[at..];
        let value = &rest[rest.find("\">").unwrap() + 2..];
        let value = &value[value.find("\">").unwrap() + 2..];
        value[..value.find('<').unwrap()].to_owned()
    };
    assert_eq!(stat("Settled (paid)"), "1", "{html}");
    assert_eq!(stat("Placed"), "3", "{html}");
    assert!(stat("Time to settle p50 / p99").starts_with("≤ "), "a time to settle: {html}");
    assert_ne!(stat("PG calls"), "0", "the confirm was counted: {html}");
    // The charts carry their series: the minutes and each line's values.
    let chart = |id: &str| -> serde_json::Value {
        let at = html.find(&format!("id=\"{id}\" data-chart=\"")).unwrap_or_else(|| panic!("{id}: {html}"));
        let rest = &html[at + id.len() + 18..];
        let raw = rest[..rest.find('"').unwrap()].replace("&quot;", "\"").replace("&amp;", "&");
        serde_json::from_str(&raw).unwrap()
    };
    let orders = chart("chart-orders");
    let total = |label: &str| -> i64 {
        let s = orders["series"].as_array().unwrap().iter().find(|s| s["label"] == label).unwrap();
        s["values"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).sum()
    };
    assert_eq!((total("placed"), total("settled (paid)")), (3, 1), "{orders}");
    assert_eq!(orders["x"].as_array().unwrap().len(), 15, "a value a minute of the range");
    assert_eq!(chart("chart-settle")["unit"], "ms");
    // The whole page, and every range, render.
    for range in ["1h", "6h", "24h"] {
        assert!(charts(range).await.contains("id=\"statuses\""));
    }
    let page = app.http.get(app.url("/console/overview")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("hx-get=\"/console/overview/charts?range=1h\""));
}

/// Finding orders (by correlation id, by status), the list of orders whose
/// consumers failed, and replaying one event to one consumer from the
/// console: the replayed event is delivered, and its failure leaves the list.
#[tokio::test]
async fn the_console_finds_orders_lists_failing_consumers_and_replays_one_event_to_one_consumer() {
    let app = spawn_app().await;
    let token = operator_token(&app);
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let post = |path: &str, form: &[(&str, &str)]| {
        no_redirects.post(app.url(path)).bearer_auth(&token).form(&with_reason(form)).send()
    };
    let get = |path: String| {
        let req = app.http.get(app.url(&path)).bearer_auth(&token);
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let one = r#"{"items":[{"productId":"p1","quantity":1}]}"#;

    // The data platform refuses everything: the analytics consumer fails.
    assert_eq!(
        post("/console/simulators/sink/faults", &[("fault", "error"), ("count", "-1")]).await.unwrap().status(),
        303
    );
    let (paid, amount) = app.order("u4", one).await;
    app.pay_by_card("u4", &paid, amount).await;
    let paid_failed = |failures: &[shop_store::saga::Failure]| {
        failures
            .iter()
            .any(|f| f.order_id == paid && f.outcome.consumer == "analytics" && f.outcome.detail_type == "OrderPaid")
    };
    // Retrying, then (five receives later) dead-lettered: listed either way.
    let failure_listed = || async {
        let saga = app.store().saga();
        Some(paid_failed(&saga.failures(20).await.ok()?) || paid_failed(&saga.dead_letters(20).await.ok()?))
    };
    eventually(20, "the analytics failure on OrderPaid listed", || async { failure_listed().await?.then_some(()) })
        .await;
    eventually(20, "the failing order on the orders page", || async {
        let orders = get("/console/orders".into()).await;
        let in_table = |id: &str| {
            let Some(at) = orders.find(&format!("id=\"{id}\"")) else { return false };
            let table = &orders[at..];
            table[..table.find("</table>").unwrap_or(table.len())].contains(&format!("/console/orders/{paid}"))
        };
        (in_table("failing") || in_table("dead-lettered")).then_some(())
    })
    .await;

    // An order cancelled by a request carrying a correlation id.
    let (cancelled, _) = app.order("u5", one).await;
    let resp = app
        .http
        .post(app.url(&format!("/orders/{cancelled}/cancel")))
        .bearer_auth(app.stack.token("u5"))
        .header("x-correlation-id", "corr-console-1")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let found = get("/console/orders?q=corr-console-1".into()).await;
    let table = |html: &str, id: &str| -> String {
        let from = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("#{id} missing: {html}"));
        let rest = &html[from..];
        rest[..rest.find("</table>").unwrap()].to_owned()
    };
    let correlated = table(&found, "correlated");
    assert!(correlated.contains(&format!("/console/orders/{cancelled}")) && correlated.contains("OrderCancelled"));
    assert!(!correlated.contains(&format!("/console/orders/{paid}")));

    // By status: the orders that entered it, with where they are now.
    let by = |status: &'static str| get(format!("/console/orders?status={status}"));
    let html = by("CANCELLED").await;
    let listed = table(&html, "by-status");
    assert!(
        listed.contains(&format!("/console/orders/{cancelled}"))
            && !listed.contains(&format!("/console/orders/{paid}"))
    );
    let html = by("PAID").await;
    let listed = table(&html, "by-status");
    assert!(
        listed.contains(&format!("/console/orders/{paid}"))
            && !listed.contains(&format!("/console/orders/{cancelled}"))
    );

    // Replay the OrderPaid (version 3) to analytics alone, once the platform is back.
    assert_eq!(post("/console/simulators/sink/clear", &[]).await.unwrap().status(), 303);
    let confirm = get(format!("/console/orders/{paid}/replay?version=3&consumer=analytics")).await;
    assert!(confirm.contains("Replay to analytics"), "{confirm}");
    let replayed =
        post(&format!("/console/orders/{paid}/replay"), &[("version", "3"), ("consumer", "analytics")]).await.unwrap();
    assert_eq!(replayed.status(), 303);
    eventually(20, "the replayed OrderPaid delivered", || async {
        app.exported(&paid).await.iter().any(|d| d.detail_type == "OrderPaid" && d.status == 200).then_some(())
    })
    .await;
    eventually(20, "its failure off both lists", || async { (!failure_listed().await?).then_some(()) }).await;
    // A consumer whose rule does not take the event: nothing is sent.
    let refused = post(&format!("/console/orders/{paid}/replay"), &[("version", "1"), ("consumer", "compensation")])
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
}

/// The PG's faults armed and cleared from the simulators page: an armed
/// decline declines the next confirm, and is listed until it is used up.
#[tokio::test]
async fn pg_faults_are_armed_and_cleared_from_the_simulators_page() {
    let app = spawn_app().await;
    let token = operator_token(&app);
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let post = |path: &str, form: &[(&str, &str)]| {
        no_redirects.post(app.url(path)).bearer_auth(&token).form(&with_reason(form)).send()
    };
    let page = || async {
        app.http.get(app.url("/console/simulators")).bearer_auth(&token).send().await.unwrap().text().await.unwrap()
    };
    for bad in [
        [("op", "confirm"), ("fault", "melt"), ("count", "1")],
        [("op", "refund"), ("fault", "error"), ("count", "1")],
        [("op", "confirm"), ("fault", "error"), ("count", "0")],
        // Combinations the simulator would arm and never act on.
        [("op", "confirm"), ("fault", "lost"), ("count", "1")],
        [("op", "lookup"), ("fault", "reorder"), ("count", "1")],
        [("op", "webhook"), ("fault", "decline"), ("count", "1")],
    ] {
        assert_eq!(post("/console/simulators/pg/faults", &bad).await.unwrap().status(), 400, "{bad:?}");
    }
    let direct = reqwest::Client::new()
        .post(format!("{}/v1/sim/faults", app.stack.pg_url()))
        .json(&json!({"op": "confirm", "fault": "reorder", "count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 400, "the simulator's own API refuses it too");
    assert!(page().await.contains("No PG fault armed."));
    let armed = post("/console/simulators/pg/faults", &[("op", "confirm"), ("fault", "decline"), ("count", "1")]);
    assert_eq!(armed.await.unwrap().status(), 303);
    let html = page().await;
    let listed = &html[html.find("id=\"pg-faults\"").unwrap()..];
    assert!(listed.contains("confirm") && listed.contains("decline"), "{html}");

    let (order, amount) = app.order("u1", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await;
    let key = app.checkout(&order, amount, "CARD").await;
    let (status, body) = app.confirm("u1", &order, &key, amount).await;
    assert!((400..500).contains(&status), "the armed decline: {status} {body}");
    assert!(page().await.contains("No PG fault armed."), "the decline was used up");

    assert_eq!(
        post("/console/simulators/pg/faults", &[("op", "lookup"), ("fault", "error"), ("count", "-1")])
            .await
            .unwrap()
            .status(),
        303
    );
    assert!(page().await.contains("until cleared"));
    assert_eq!(post("/console/simulators/pg/clear", &[]).await.unwrap().status(), 303);
    assert!(page().await.contains("No PG fault armed."));
}

/// A page on another origin — another port of 127.0.0.1 is the same site
/// for `SameSite`, not the same origin — cannot make the operator's browser
/// act: every action's POST from it is refused, whatever it carries; from
/// the console's own origin it goes through. No console page may be framed.
#[tokio::test]
async fn a_cross_origin_post_to_any_console_action_is_refused_and_no_page_may_be_framed() {
    let app = spawn_app().await;
    let (order, _) = app.order("u1", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await;
    // Cancelled: its OrderCancelled (#2) is one the analytics consumer's rule takes.
    assert_eq!(app.post("u1", &format!("/orders/{order}/cancel"), json!({})).await.0, 200);
    let token = operator_token(&app);
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let own = format!("http://{}", app.stack.addr);
    let other_port = format!("http://127.0.0.1:{}", app.stack.addr.port() + 1);
    let actions: [(String, &[(&str, &str)]); 8] = [
        (format!("/console/orders/{order}/republish"), &[]),
        (format!("/console/orders/{order}/replay"), &[("version", "2"), ("consumer", "analytics")]),
        ("/console/queues/analytics/redrive".to_owned(), &[]),
        ("/console/simulators/sink/faults".to_owned(), &[("fault", "error"), ("count", "1")]),
        ("/console/simulators/sink/clear".to_owned(), &[]),
        ("/console/simulators/pg/faults".to_owned(), &[("op", "confirm"), ("fault", "error"), ("count", "1")]),
        ("/console/simulators/pg/clear".to_owned(), &[]),
        ("/console/logout".to_owned(), &[]),
    ];
    for (path, form) in &actions {
        let post = |headers: &[(&'static str, &str)]| {
            let mut req = no_redirects.post(app.url(path)).bearer_auth(&token).form(&with_reason(form));
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.send()
        };
        for evil in [
            vec![("origin", other_port.as_str())],
            vec![("origin", "http://attacker.example")],
            vec![("origin", "null")],
            vec![("origin", own.as_str()), ("sec-fetch-site", "same-site")],
            vec![("sec-fetch-site", "cross-site")],
        ] {
            let resp = post(&evil).await.unwrap();
            assert_eq!(resp.status(), 403, "POST {path} with {evil:?}");
        }
        let ok = post(&[("origin", own.as_str()), ("sec-fetch-site", "same-origin")]).await.unwrap();
        assert_ne!(ok.status(), 403, "POST {path} from the console's own origin");
        assert!(ok.status().is_redirection() || ok.status().is_success(), "POST {path}: {}", ok.status());
    }
    // Every page, the sign-in page too, forbids being framed and foreign scripts.
    for path in ["/console/login", "/console/overview", "/console/orders", "/console/queues"] {
        let resp = app.http.get(app.url(path)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.headers()["x-frame-options"], "DENY", "{path}");
        let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{path}: {csp}");
    }
}

/// A browser opening the console without signing in is sent to sign in;
/// `/console/` is `/console`. A script without a token still gets its 401.
#[tokio::test]
async fn the_console_sends_a_browser_that_is_not_signed_in_to_sign_in() {
    let app = spawn_app().await;
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let html = "text/html,application/xhtml+xml,*/*;q=0.8";
    for path in ["/console", "/console/overview", "/console/orders"] {
        let resp = no_redirects.get(app.url(path)).header("accept", html).send().await.unwrap();
        assert_eq!(resp.status(), 303, "{path}");
        assert_eq!(resp.headers()["location"], "/console/login", "{path}");
        let script = no_redirects.get(app.url(path)).send().await.unwrap();
        assert_eq!(script.status(), 401, "{path} without a browser's Accept");
    }
    let slash = no_redirects.get(app.url("/console/")).header("accept", html).send().await.unwrap();
    assert_eq!((slash.status().as_u16(), slash.headers()["location"].to_str().unwrap()), (303, "/console"));
}

/// The value of the first hidden CSRF field in `html`.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    html[at..at + html[at..].find('"').expect("end of the value")].to_owned()
}

/// A browser's session lives on the server: its cookie is a random id (not
/// the token), every form it is shown carries the session's CSRF token and
/// every POST it makes must carry it back; signing out ends the session for
/// any copy of the cookie, and a session ends by itself.
#[tokio::test]
async fn a_session_is_server_side_its_forms_carry_its_csrf_token_and_logout_revokes_it() {
    let app = spawn_app().await;
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let token = operator_token(&app);
    let sign_in = || async {
        let resp = no_redirects.post(app.url("/console/login")).form(&[("token", token.clone())]).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(set.contains("Max-Age="), "{set}");
        set.split(';').next().unwrap().to_owned()
    };
    let cookie = sign_in().await;
    assert!(!cookie.contains(&token) && cookie.len() > "shop_console=".len() + 32, "{cookie}");
    assert_ne!(cookie, sign_in().await, "every sign-in is a session of its own");

    let get = |path: &str, cookie: &str| no_redirects.get(app.url(path)).header("cookie", cookie.to_owned()).send();
    let page = get("/console/simulators", &cookie).await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    // Every state-changing form on the page carries the token.
    let forms = html.matches("method=\"post\"").count();
    assert!(forms >= 5, "the simulators' four forms and sign-out: {forms}");
    assert_eq!(html.matches("name=\"csrf\"").count(), forms, "{html}");
    let csrf = csrf_of(&html);
    assert_eq!(csrf_of(&get("/console/queues", &cookie).await.unwrap().text().await.unwrap()), csrf);

    let post = |path: &str, cookie: &str, csrf: Option<&str>| {
        let mut form = vec![
            ("op", "confirm".to_owned()),
            ("fault", "error".to_owned()),
            ("count", "1".to_owned()),
            ("reason", "a test".to_owned()),
        ];
        if let Some(c) = csrf {
            form.push(("csrf", c.to_owned()));
        }
        no_redirects.post(app.url(path)).header("cookie", cookie.to_owned()).form(&form).send()
    };
    let faults = "/console/simulators/pg/faults";
    assert_eq!(post(faults, &cookie, None).await.unwrap().status(), 403, "no CSRF token");
    assert_eq!(post(faults, &cookie, Some("0000")).await.unwrap().status(), 403, "a wrong one");
    let other = sign_in().await;
    let others = csrf_of(&get("/console/queues", &other).await.unwrap().text().await.unwrap());
    assert_eq!(post(faults, &cookie, Some(&others)).await.unwrap().status(), 403, "another session's");
    assert!(app.stack.pg.faults().await.unwrap().is_empty(), "nothing was armed by a refused form");
    assert_eq!(post(faults, &cookie, Some(&csrf)).await.unwrap().status(), 303, "its own");
    assert_eq!(app.stack.pg.faults().await.unwrap().len(), 1);

    // Signing out ends the session: the same cookie, replayed, is nobody.
    assert_eq!(post("/console/logout", &cookie, None).await.unwrap().status(), 403, "sign-out needs the token too");
    assert_eq!(post("/console/logout", &cookie, Some(&csrf)).await.unwrap().status(), 303);
    assert_eq!(get("/console/queues", &cookie).await.unwrap().status(), 401, "revoked");
    assert_eq!(post(faults, &cookie, Some(&csrf)).await.unwrap().status(), 401, "revoked");
    // The other session lives on, until its time is up.
    assert_eq!(get("/console/queues", &other).await.unwrap().status(), 200);
    app.clock.advance_secs(601);
    assert_eq!(get("/console/queues", &other).await.unwrap().status(), 401, "the session ended with its token");
}

/// PG calls are counted in the process and written together, at most a
/// second apart (docs/adr/0025): once the process writes what it holds, the
/// statistics count every call the PG saw, none lost and none twice.
#[tokio::test]
async fn every_pg_call_is_in_the_statistics_once_the_process_writes_its_counts() {
    use shop_local::sim::{db::MAX_LIMIT, db::Page, pg::Filter, pg::Op};
    let app = spawn_app().await;
    let one = r#"{"items":[{"productId":"p1","quantity":1}]}"#;
    for user in ["u1", "u2", "u3"] {
        let (id, amount) = app.order(user, one).await;
        app.pay_by_card(user, &id, amount).await;
    }
    app.settled().await;
    let (seen, counted) = eventually(20, "the statistics count what the PG saw", || async {
        app.stack.app.flush_stats().await;
        let all = Filter { order_id: None, payment_key: None, op: None };
        let calls = app.stack.pg.calls(all, Page { after: 0, limit: Some(MAX_LIMIT) }).await.expect("calls");
        let seen = calls.items.iter().filter(|c| c.op != Op::Webhook).count();
        let now = app.stack.app.clock.now();
        let stats = app.store().stats().between(now.plus_secs(-900), now).await.expect("stats");
        let counted: i64 = stats.values().map(|v| v.get("pg.calls").copied().unwrap_or(0)).sum();
        (usize::try_from(counted).ok() == Some(seen)).then_some((seen, counted))
    })
    .await;
    assert!(seen >= 3 && counted >= 3, "three confirms at least: {seen}");
}

/// Every console action needs a reason and is recorded with the signed-in
/// operator: without one it is refused and nothing changes; done, it is on
/// the Audit page with the orders it touched and how it ended, newest
/// first, 50 a page.
#[tokio::test]
async fn every_action_needs_a_reason_and_the_audit_page_shows_who_did_what_to_which_orders_and_why() {
    let app = spawn_app().await;
    let token = operator_token(&app);
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let post = |path: &str, form: Vec<(&str, String)>| {
        let req = no_redirects.post(app.url(path)).bearer_auth(&token).form(&form);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let get = |path: String| {
        let req = app.http.get(app.url(&path)).bearer_auth(&token);
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let arm = |reason: Option<String>| {
        let mut form = vec![("fault", "error".to_owned()), ("count", "-1".to_owned())];
        form.extend(reason.map(|r| ("reason", r)));
        post("/console/simulators/sink/faults", form)
    };
    for refused in [None, Some("   ".to_owned()), Some("x".repeat(501)), Some("two\nlines".to_owned())] {
        assert_eq!(arm(refused.clone()).await, 400, "{refused:?}");
    }
    assert!(app.stack.sink.faults().await.unwrap().is_empty(), "nothing armed without a reason");
    assert!(app.store().audit().page(10, None).await.unwrap().0.is_empty(), "nothing recorded");

    assert_eq!(arm(Some("rehearsing an outage".into())).await, 303);
    let (order, amount) = app.order("u2", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await;
    app.pay_by_card("u2", &order, amount).await;
    eventually(20, "the OrderPaid in the analytics DLQ", || async {
        app.dlq("analytics").await.iter().any(|m| m.order_id == order).then_some(())
    })
    .await;
    assert_eq!(post("/console/simulators/sink/clear", vec![("reason", "rehearsal over".into())]).await, 303);
    assert_eq!(post("/console/queues/analytics/redrive", vec![]).await, 400, "a redrive without a reason");
    assert_eq!(app.dlq("analytics").await.len(), 1, "nothing moved");
    assert_eq!(post("/console/queues/analytics/redrive", vec![("reason", "the platform is back".into())]).await, 303);

    let audit = get("/console/audit".into()).await;
    let row = |needle: &str| {
        let at = audit.find(needle).unwrap_or_else(|| panic!("{needle} not on {audit}"));
        let start = audit[..at].rfind("<tr").unwrap();
        let end = at + audit[at..].find("</tr>").unwrap();
        audit[start..end].to_owned()
    };
    let redrive = row("the platform is back");
    for shown in [
        "ops",
        "console · local",
        "dlq.redrive",
        "queue:analytics-dlq",
        "SUCCEEDED: 1 message(s) moved back to analytics",
    ] {
        assert!(redrive.contains(shown), "{shown} in {redrive}");
    }
    assert!(redrive.contains(&format!("href=\"/console/orders/{order}\"")), "the order linked: {redrive}");
    assert!(row("rehearsing an outage").contains("sink.fault.arm"));
    assert!(
        audit.find("the platform is back") < audit.find("rehearsal over")
            && audit.find("rehearsal over") < audit.find("rehearsing an outage"),
        "newest first"
    );

    // Fifty more: the first three are on the second page.
    for i in 0..50 {
        assert_eq!(post("/console/simulators/sink/clear", vec![("reason", format!("clear number {i}"))]).await, 303);
    }
    let first = get("/console/audit".into()).await;
    assert!(first.contains("clear number 49") && !first.contains("rehearsing an outage"));
    let older = first.split("id=\"older\" href=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    let second = get(older).await;
    assert!(second.contains("rehearsing an outage") && !second.contains("clear number 49"), "{second}");
    assert_eq!(
        app.http.get(app.url("/console/audit?before=nonsense")).bearer_auth(&token).send().await.unwrap().status(),
        400
    );
}

/// An order whose analytics message is dead-lettered opens with a banner:
/// what is stuck, since when, the last error, that nothing retries it, and
/// the actions that resolve it; the redrive clears it.
#[tokio::test]
async fn an_order_whose_message_is_dead_lettered_opens_with_a_banner_that_says_why_and_what_resolves_it() {
    let app = spawn_app().await;
    let token = operator_token(&app);
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let post = |path: &str, form: &[(&str, &str)]| {
        no_redirects.post(app.url(path)).bearer_auth(&token).form(&with_reason(form)).send()
    };
    let page = |order: String| {
        let req = app.http.get(app.url(&format!("/console/orders/{order}"))).bearer_auth(&token);
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(
        post("/console/simulators/sink/faults", &[("fault", "error"), ("count", "-1")]).await.unwrap().status(),
        303
    );
    let (order, amount) = app.order("u2", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await;
    app.pay_by_card("u2", &order, amount).await;
    eventually(30, "the OrderPaid's analytics outcome dead-lettered", || async {
        let dead = app.store().saga().dead_letters(20).await.ok()?;
        dead.iter().any(|f| f.order_id == order && f.outcome.consumer == "analytics").then_some(())
    })
    .await;
    let html = page(order.clone()).await;
    let banner = &html[html.find("id=\"problem-analytics-3\"").unwrap_or_else(|| panic!("no banner: {html}"))..];
    let banner = &banner[..banner.find("</div>").unwrap()];
    for said in [
        "analytics could not take OrderPaid",
        "dead-lettered",
        "after 5 attempt(s)",
        "nothing retries it",
        "Last error:",
    ] {
        assert!(banner.contains(said), "{said} in {banner}");
    }
    assert!(banner.contains("/console/queues/analytics/redrive"), "the redrive: {banner}");
    assert!(banner.contains(&format!("/console/orders/{order}/replay?version=3&amp;consumer=analytics")), "{banner}");
    // Every page's alert strip says so, linking to the list.
    let alerts = || async {
        app.http.get(app.url("/console/alerts")).bearer_auth(&token).send().await.unwrap().text().await.unwrap()
    };
    let strip = alerts().await;
    assert!(
        strip.contains("dead-lettered") && strip.contains("href=\"/console/orders/find?stuck=dead-lettered\""),
        "{strip}"
    );
    assert!(html.contains("hx-get=\"/console/alerts\""), "the page loads the strip");
    // The orders page lists it as dead-lettered, not retrying.
    let orders =
        app.http.get(app.url("/console/orders")).bearer_auth(&token).send().await.unwrap().text().await.unwrap();
    let dead = &orders[orders.find("id=\"dead-lettered\"").unwrap()..];
    assert!(dead[..dead.find("</table>").unwrap()].contains(&order), "{orders}");

    assert_eq!(post("/console/simulators/sink/clear", &[]).await.unwrap().status(), 303);
    // The queue moves the message once its visibility timeout passes.
    eventually(30, "the message in the DLQ", || async {
        app.dlq("analytics").await.iter().any(|m| m.order_id == order).then_some(())
    })
    .await;
    assert_eq!(post("/console/queues/analytics/redrive", &[]).await.unwrap().status(), 303);
    eventually(30, "the banner gone once the redriven message is done", || async {
        (!page(order.clone()).await.contains("id=\"problem-analytics-3\"")).then_some(())
    })
    .await;
    eventually(30, "the alert strip clear", || async { alerts().await.contains("id=\"all-clear\"").then_some(()) })
        .await;
}

/// A payment whose PG answer was lost opens its order's page with a banner
/// that says it is in doubt and when the reconciler asks; "Ask the PG
/// now" (with a reason) settles it at once, and the audit trail says so.
/// A declined payment is shown in red with the PG's code; a payable order
/// says until when.
#[tokio::test]
async fn a_payment_in_doubt_offers_ask_the_pg_now_and_settles_when_asked() {
    let app = shop_tests::spawn_app_driven().await;
    let token = operator_token(&app);
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = |order: String| {
        let req = app.http.get(app.url(&format!("/console/orders/{order}"))).bearer_auth(&token);
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let one = r#"{"items":[{"productId":"p1","quantity":1}]}"#;

    // Declined: red, with the PG's code; payable again until its expiry.
    let (declined, amount) = app.order("u1", one).await;
    app.fault("confirm", "decline", 1).await;
    let key = app.checkout(&declined, amount, "CARD").await;
    assert!((400..500).contains(&app.confirm("u1", &declined, &key, amount).await.0));
    let html = page(declined.clone()).await;
    let payment = app.store().payments().get(&shop_domain::PaymentKey::parse(&key).unwrap()).await.unwrap().unwrap();
    let code = payment.failure_code.expect("a decline code");
    assert!(html.contains("id=\"declined\"") && html.contains(&code), "{code} on {html}");
    assert!(html.contains("id=\"next\"") && html.contains("Payable until"), "{html}");

    // The PG's answer lost: in doubt.
    app.fault("confirm", "lost_response", 1).await;
    app.fault("webhook", "error", -1).await;
    let (order, amount) = app.order("u2", one).await;
    let key = app.checkout(&order, amount, "CARD").await;
    assert_eq!(app.confirm("u2", &order, &key, amount).await.0, 202);
    let html = page(order.clone()).await;
    let banner = &html[html.find("id=\"problem-payment\"").unwrap_or_else(|| panic!("no banner: {html}"))..];
    let banner = &banner[..banner.find("</div>").unwrap()];
    assert!(banner.contains("Payment in doubt") && banner.contains("The reconciler asks the PG from"), "{banner}");
    assert!(banner.contains(&format!("/console/orders/{order}/ask-pg")), "{banner}");

    let ask = |reason: Option<&str>| {
        let form: Vec<(&str, &str)> = reason.map(|r| vec![("reason", r)]).unwrap_or_default();
        no_redirects.post(app.url(&format!("/console/orders/{order}/ask-pg"))).bearer_auth(&token).form(&form).send()
    };
    assert_eq!(ask(None).await.unwrap().status(), 400);
    assert_eq!(app.status(&order).await, "CONFIRMING", "nothing asked without a reason");
    assert_eq!(ask(Some("the shopper called")).await.unwrap().status(), 303);
    assert_eq!(app.status(&order).await, "PAID", "settled as the PG said, before any reconciler run");
    assert!(!page(order.clone()).await.contains("id=\"problem-payment\""));
    assert_eq!(ask(Some("again")).await.unwrap().status(), 409, "nothing in doubt any more");
    let audit = app.store().audit().page(10, None).await.unwrap().0;
    let asked = audit.iter().find(|e| e.action.action == "payment.ask-pg").expect("recorded");
    assert_eq!(asked.outcome.as_deref(), Some("the PG said; the order is PAID"));
    assert!(asked.action.targets.contains(&format!("order:{order}")));
}

/// The simulators page shows the PG's calls newest first, twenty a page,
/// with the older ones a link away.
#[tokio::test]
async fn the_simulators_page_lists_the_newest_calls_first_twenty_a_page() {
    let app = spawn_app().await;
    let token = operator_token(&app);
    let (first, amount) = app.order("u1", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await;
    app.pay_by_card("u1", &first, amount).await;
    // 25 calls after it: lookups without the secret key (recorded, refused).
    for i in 0..25 {
        let resp = reqwest::get(format!("{}/v1/payments/sim-nobody-{i}", app.stack.pg_url())).await.unwrap();
        assert_eq!(resp.status(), 401);
    }
    let get = |path: String| {
        let req = app.http.get(app.url(&path)).bearer_auth(&token);
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let html = get("/console/simulators".into()).await;
    let calls = &html[html.find("id=\"pg-calls\"").unwrap()..];
    let calls = &calls[..calls.find("</table>").unwrap()];
    assert_eq!(calls.matches("<tr>").count(), 21, "a header and 20 calls: {calls}");
    assert!(calls.contains("unauthorized") && !calls.contains(&first), "the newest first: {calls}");
    let older = html.split("id=\"older-calls\" href=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let second = get(older).await;
    let calls = &second[second.find("id=\"pg-calls\"").unwrap()..];
    assert!(calls[..calls.find("</table>").unwrap()].contains(&first), "the order's confirm, older: {second}");
}

/// Three orders whose analytics messages are dead-lettered, one that is
/// not: the finder lists exactly the three (from the index of dead-lettered
/// outcomes, and says so), exports them as CSV and JSON, refuses a filter
/// that is none, and one bulk redrive — dry run, confirmation with a
/// reason, progress, result — moves exactly their messages back; every
/// outcome settles, the audit trail names the three orders with the
/// reason, and each order's page shows what was done to it.
#[tokio::test]
async fn the_finder_lists_exports_and_redrives_three_dead_lettered_orders_at_once() {
    let app = spawn_app().await;
    let token = operator_token(&app);
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let get = |path: String| {
        let req = app.http.get(app.url(&path)).bearer_auth(&token);
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let post = |path: String, form: Vec<(&'static str, String)>| {
        let req = no_redirects.post(app.url(&path)).bearer_auth(&token).form(&form);
        async move { req.send().await.unwrap() }
    };
    let arm = vec![("fault", "error".to_owned()), ("count", "-1".to_owned()), ("reason", "outage drill".to_owned())];
    assert_eq!(post("/console/simulators/sink/faults".into(), arm).await.status(), 303);
    let one = r#"{"items":[{"productId":"p1","quantity":1}]}"#;
    let mut stuck = Vec::new();
    for _ in 0..3 {
        let (order, amount) = app.order("u2", one).await;
        app.pay_by_card("u2", &order, amount).await;
        stuck.push(order);
    }
    eventually(60, "the three OrderPaid analytics outcomes dead-lettered", || async {
        let dead = app.store().saga().dead_letters(50).await.ok()?;
        let paid_dead = |o: &String| dead.iter().any(|f| &f.order_id == o && f.outcome.detail_type == "OrderPaid");
        stuck.iter().all(paid_dead).then_some(())
    })
    .await;
    eventually(30, "their messages in the DLQ", || async {
        let dlq = app.dlq("analytics").await;
        stuck.iter().all(|o| dlq.iter().any(|m| &m.order_id == o)).then_some(())
    })
    .await;
    assert_eq!(
        post("/console/simulators/sink/clear".into(), vec![("reason", "drill over".into())]).await.status(),
        303
    );
    let (fine, amount) = app.order("u2", one).await;
    app.pay_by_card("u2", &fine, amount).await;

    let filter = "stuck=dead-lettered&consumer=analytics";
    let (status, page) = get(format!("/console/orders/find?{filter}")).await;
    assert_eq!(status, 200, "{page}");
    let table = &page[page.find("id=\"found\"").unwrap_or_else(|| panic!("no rows: {page}"))..];
    for o in &stuck {
        assert!(table.contains(o.as_str()), "{o} listed: {table}");
    }
    assert!(!table.contains(fine.as_str()), "the order that is not stuck is not listed");
    assert!(page.contains("the index of dead-lettered outcomes"), "says where it read from: {page}");
    for bad in ["stuck=sideways", "consumer=analytics", "colour=red", "status=PAID&status=CANCELLED"] {
        assert_eq!(get(format!("/console/orders/find?{bad}")).await.0, 400, "{bad}");
    }
    // By status: a capped window of the event log, said so.
    let (_, paid) = get("/console/orders/find?status=PAID&method=card".into()).await;
    assert!(paid.contains(fine.as_str()) && paid.contains("capped window"), "{paid}");

    let (status, csv) = get(format!("/console/orders/find/export?format=csv&{filter}")).await;
    assert_eq!(status, 200);
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("orderId,status,userId"), "{csv}");
    let csv_orders: std::collections::BTreeSet<&str> = lines.filter_map(|l| l.split(',').next()).collect();
    assert_eq!(csv_orders, stuck.iter().map(String::as_str).collect(), "{csv}");
    let (_, json) = get(format!("/console/orders/find/export?format=json&{filter}")).await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(json.as_array().unwrap().iter().all(|r| r["deadLetteredAt"].is_string() && r["consumer"] == "analytics"));

    // The dry run counts every dead-lettered event of the three, and nothing moves.
    let (_, confirm) = get(format!("/console/orders/bulk/redrive?{filter}")).await;
    let planned: usize = confirm.split("id=\"planned\">").nth(1).unwrap().split('<').next().unwrap().parse().unwrap();
    assert!(planned >= 3, "{confirm}");
    assert!(stuck.iter().all(|o| confirm.contains(o.as_str())), "{confirm}");
    assert!(app.dlq("analytics").await.len() >= 3, "a dry run moves nothing");
    let query = filter.to_owned();
    let form = |reason: &str| {
        vec![("query", query.clone()), ("confirmed", planned.to_string()), ("reason", reason.to_owned())]
    };
    assert_eq!(post("/console/orders/bulk/redrive".into(), form("")).await.status(), 400, "a reason is required");
    let started = post("/console/orders/bulk/redrive".into(), form("the data platform is back")).await;
    assert_eq!(started.status(), 303);
    let job = started.headers()["location"].to_str().unwrap().to_owned();
    let result = eventually(30, "the run finished", || async {
        let (_, html) = get(format!("{job}/status")).await;
        html.contains("id=\"result\"").then_some(html)
    })
    .await;
    assert!(
        result.contains(&format!("id=\"succeeded\">{planned}<")) && result.contains("id=\"failed\">0<"),
        "{result}"
    );
    eventually(60, "every redriven outcome done, the DLQ empty", || async {
        let dead = app.store().saga().dead_letters(50).await.ok()?;
        let left = dead.iter().any(|f| stuck.contains(&f.order_id));
        (!left && app.dlq("analytics").await.is_empty()).then_some(())
    })
    .await;
    let (_, after) = get(format!("/console/orders/find?{filter}")).await;
    assert!(after.contains("id=\"no-rows\""), "nothing dead-lettered any more: {after}");

    let entry = app.store().audit().page(1, None).await.unwrap().0.remove(0);
    assert_eq!(entry.action.action, "bulk.redrive");
    assert_eq!(entry.action.reason.as_str(), "the data platform is back");
    assert_eq!(entry.action.target_count, planned);
    assert!(stuck.iter().all(|o| entry.action.targets.iter().any(|t| t.starts_with(&format!("order:{o}#")))));
    let (_, order_page) = get(format!("/console/orders/{}", stuck[0])).await;
    let done = &order_page[order_page.find("id=\"order-audit\"").unwrap()..];
    assert!(done.contains("bulk.redrive") && done.contains("the data platform is back"), "{done}");
    let (_, fine_page) = get(format!("/console/orders/{fine}")).await;
    let untouched = &fine_page[fine_page.find("id=\"order-audit\"").unwrap()..];
    assert!(!untouched.contains("bulk.redrive"), "{untouched}");

    // A saved view is listed for every operator and opens the same filter.
    let save = vec![("name", "analytics stuck".to_owned()), ("query", query.clone())];
    assert_eq!(post("/console/views".into(), save).await.status(), 303);
    let (_, with_view) = get("/console/orders/find".into()).await;
    // Saved as the finder writes a filter (its keys in order).
    let saved = "href=\"/console/orders/find?consumer=analytics&amp;stuck=dead-lettered\"";
    assert!(with_view.contains(saved) && with_view.contains("analytics stuck"), "{with_view}");
    let bad_name = vec![("name", "<script>".to_owned()), ("query", query.clone())];
    assert_eq!(post("/console/views".into(), bad_name).await.status(), 400);
}
