//! The waiting room's use cases on the local stack (docs/adr/0027): a rush
//! of entries gives one ticket per user at distinct places; the admitter
//! never holds more than the sale's capacity and admits in place order; a
//! slot is freed once by its order's end however often the end is told;
//! the session timer frees what no order took.

use futures::StreamExt;
use shop_app::usecases::sales::{self, Created, Released};
use shop_domain::sale::admit::Health;
use shop_domain::sale::{Place, Sale, SaleTerms, Shown, TicketStatus};
use shop_domain::{OrderId, ProductId, SaleId, UserId};
use shop_tests::{T0, TestApp, spawn_app_driven};
use std::collections::HashSet;

fn uid(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn sid() -> SaleId {
    SaleId::parse("drop").unwrap()
}

/// A sale of `bulk` (100,000 units) from T0 + `starts` seconds, `capacity`
/// at once, 10 a second.
async fn sale(app: &TestApp, starts: i64, capacity: u64) -> Sale {
    let terms = SaleTerms::new(
        "Grinder drop".into(),
        vec![ProductId::parse("bulk").unwrap()],
        T0.plus_secs(starts),
        T0.plus_secs(3_600),
        capacity,
        10,
        300,
        Some(4),
    )
    .unwrap();
    let s = Sale::new(sid(), terms, 7);
    match sales::create_sale(&app.stack.app, &s).await.unwrap() {
        Created::New(created) => *created,
        Created::Existing(e) => panic!("{e:?} existed"),
    }
}

/// A sale of `scarce` (5 units) from T0, 10 at once and 10 a second.
async fn scarce_sale(app: &TestApp) {
    let terms = SaleTerms::new(
        "Scarce drop".into(),
        vec![ProductId::parse("scarce").unwrap()],
        T0,
        T0.plus_secs(3_600),
        10,
        10,
        300,
        Some(4),
    )
    .unwrap();
    sales::create_sale(&app.stack.app, &Sale::new(sid(), terms, 7)).await.unwrap();
}

async fn step(app: &TestApp) -> sales::Admitted {
    sales::admit_step(&app.stack.app, &sid(), Some(Health::default())).await.unwrap().unwrap()
}

#[tokio::test]
async fn ten_thousand_entries_from_five_thousand_users_give_five_thousand_distinct_places() {
    let app = spawn_app_driven().await;
    sale(&app, 0, 10).await;
    let users: Vec<UserId> = (0..10_000).map(|i| uid(&format!("fan{}", i / 2))).collect();
    let entered: Vec<(UserId, Place)> = futures::stream::iter(users.iter())
        .map(|u| {
            let app = &app;
            async move { (u.clone(), sales::enter(&app.stack.app, &sid(), u).await.unwrap().ticket.place) }
        })
        .buffer_unordered(500)
        .collect()
        .await;
    // Both entries of a user got the same place; no two users share one.
    let mut by_user = std::collections::HashMap::new();
    for (u, p) in &entered {
        assert_eq!(*by_user.entry(u.clone()).or_insert(*p), *p, "{u} entered twice, one place");
    }
    assert_eq!(by_user.len(), 5_000);
    let places: HashSet<Place> = by_user.values().copied().collect();
    assert_eq!(places.len(), 5_000, "distinct places");
    assert!(places.iter().all(|p| matches!(p, Place::Counted { .. })));
}

#[tokio::test]
async fn the_admitter_keeps_to_capacity_admits_in_place_order_and_a_release_frees_once() {
    let app = spawn_app_driven().await;
    sale(&app, 0, 3).await;
    let mut places = Vec::new();
    for i in 0..8 {
        places.push(sales::enter(&app.stack.app, &sid(), &uid(&format!("s{i}"))).await.unwrap().ticket);
    }
    app.clock.advance_secs(1);
    let first = step(&app).await;
    assert_eq!((first.tickets.len(), first.active), (3, 3), "the capacity, though 10 tokens are there");
    let mut lowest: Vec<Place> = places.iter().map(|t| t.place).collect();
    lowest.sort();
    let admitted: Vec<Place> = first.tickets.iter().map(|t| t.place).collect();
    assert_eq!(admitted, lowest[..3].to_vec(), "lowest places first");
    app.clock.advance_secs(1);
    assert!(step(&app).await.tickets.is_empty(), "no free slot, no admission");

    // The first admitted places an order; its end frees the slot once.
    let t = &first.tickets[0];
    let order = OrderId::parse("o-1").unwrap();
    let admission = t.admission.clone().unwrap();
    let ordered = t.order(&admission.id, order.clone(), app.stack.app.clock.now()).unwrap();
    let mut tx = shop_store::Tx::new();
    let s = app.store().sales().get(&sid()).await.unwrap().unwrap();
    tx.push(app.store().sales().op_update_ticket(t.version, &ordered, &s).unwrap());
    app.store().transact(tx).await.unwrap();
    let drop = sid();
    let release = || sales::release_for_order(&app.stack.app, &drop, &t.user, &order);
    assert_eq!(release().await.unwrap(), Released::Freed);
    assert_eq!(release().await.unwrap(), Released::Already, "a replayed end frees nothing");
    let other = OrderId::parse("o-2").unwrap();
    assert_eq!(sales::release_for_order(&app.stack.app, &sid(), &t.user, &other).await.unwrap(), Released::NotHeld);
    app.clock.advance_secs(1);
    let next = step(&app).await;
    assert_eq!((next.tickets.len(), next.active), (1, 3), "one slot freed, one admitted");
    assert_eq!(next.tickets[0].place, lowest[3]);
}

#[tokio::test]
async fn a_session_without_an_order_ends_and_frees_its_slot() {
    let app = spawn_app_driven().await;
    sale(&app, 0, 1).await;
    for u in ["a", "b"] {
        sales::enter(&app.stack.app, &sid(), &uid(u)).await.unwrap();
    }
    app.clock.advance_secs(1);
    let admitted = step(&app).await.tickets;
    assert_eq!(admitted.len(), 1);
    assert_eq!(sales::end_sessions(&app.stack.app, 100).await.unwrap(), 0, "the session still runs");
    app.clock.advance_secs(300);
    assert_eq!(sales::end_sessions(&app.stack.app, 100).await.unwrap(), 1);
    assert_eq!(sales::end_sessions(&app.stack.app, 100).await.unwrap(), 0, "ended once");
    let gone = app.store().sales().ticket(&sid(), &admitted[0].user).await.unwrap().unwrap();
    assert_eq!(gone.status, TicketStatus::Expired);
    let next = step(&app).await;
    assert_eq!((next.tickets.len(), next.active), (1, 1));
}

#[tokio::test]
async fn early_shoppers_are_admitted_in_draw_order_before_anyone_counted() {
    let app = spawn_app_driven().await;
    sale(&app, 60, 100).await;
    for i in 0..20 {
        let t = sales::enter(&app.stack.app, &sid(), &uid(&format!("early{i}"))).await.unwrap().ticket;
        assert!(matches!(t.place, Place::Early { .. }));
    }
    let view = sales::my_ticket(&app.stack.app, &sid(), &uid("early0")).await.unwrap().unwrap();
    assert_eq!(view.shown, Shown::Waiting);
    assert!(view.position.is_some_and(|p| p.estimate));
    assert!(step(&app).await.tickets.is_empty(), "nobody before the start");
    app.clock.advance_secs(60);
    let late = sales::enter(&app.stack.app, &sid(), &uid("late")).await.unwrap().ticket;
    assert!(matches!(late.place, Place::Counted { number: 0..4 }), "the first number of its shard");
    app.clock.advance_secs(1);
    let admitted = step(&app).await.tickets;
    assert_eq!(admitted.len(), 10, "the rate's tokens");
    assert!(admitted.windows(2).all(|w| w[0].place < w[1].place), "draw order");
    assert!(admitted.iter().all(|t| matches!(t.place, Place::Early { .. })));
    app.clock.advance_secs(1);
    let rest = step(&app).await.tickets;
    assert_eq!(rest.len(), 10);
    assert!(rest.iter().all(|t| matches!(t.place, Place::Early { .. })), "the pre-queue first");
    app.clock.advance_secs(1);
    let last = step(&app).await.tickets;
    assert_eq!(last.iter().map(|t| t.user.as_str()).collect::<Vec<_>>(), vec!["late"]);
}

#[tokio::test]
async fn leaving_takes_a_ticket_out_and_gives_an_admission_back() {
    let app = spawn_app_driven().await;
    sale(&app, 0, 1).await;
    for u in ["a", "b", "c"] {
        sales::enter(&app.stack.app, &sid(), &uid(u)).await.unwrap();
    }
    let b = sales::leave(&app.stack.app, &sid(), &uid("b")).await.unwrap();
    assert_eq!(b.status, TicketStatus::Left);
    assert_eq!(sales::leave(&app.stack.app, &sid(), &uid("b")).await.unwrap().status, TicketStatus::Left);
    app.clock.advance_secs(1);
    let first = step(&app).await.tickets;
    assert_eq!(first.iter().map(|t| t.user.as_str()).collect::<Vec<_>>(), vec!["a"]);
    sales::leave(&app.stack.app, &sid(), &uid("a")).await.unwrap();
    app.clock.advance_secs(1);
    let next = step(&app).await;
    assert_eq!((next.tickets.iter().map(|t| t.user.as_str()).collect::<Vec<_>>(), next.active), (vec!["c"], 1));
    let view = sales::my_ticket(&app.stack.app, &sid(), &uid("b")).await.unwrap().unwrap();
    assert_eq!(view.shown, Shown::Left);
}

/// `req` with `Admission: token` when there is one.
fn admitted(req: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
    match token {
        Some(t) => req.header("admission", t),
        None => req,
    }
}

async fn order_with(app: &TestApp, user: &str, product: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let body = format!(r#"{{"items":[{{"productId":"{product}","quantity":1}}]}}"#);
    let key = format!("k-{}", uuid::Uuid::now_v7());
    let resp = admitted(app.order_request(user, &key, &body), token).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or_default())
}

/// `POST /sales` as an operator: the status and body.
async fn create_over_http(
    app: &TestApp,
    body: serde_json::Value,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let token = shop_local::jwt::issue_operator(&app.stack.secrets.jwt_secret, "ops", T0.seconds(), 600);
    let resp = app.http.post(app.url("/sales")).bearer_auth(token).json(&body).send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.json().await.unwrap_or_default())
}

fn sale_body(id: &str, product: &str, capacity: u64) -> serde_json::Value {
    serde_json::json!({
        "saleId": id, "name": "Drop", "products": [product],
        "startsAt": T0.to_rfc3339(), "endsAt": T0.plus_secs(3_600).to_rfc3339(),
        "capacity": capacity, "maxAdmissionsPerSec": 10, "sessionSecs": 300
    })
}

/// The caller's admission token once admitted.
async fn token_of(app: &TestApp, user: &str, sale: &str) -> String {
    let (status, headers, me) = app.get(Some(user), &format!("/sales/{sale}/queue/me")).await;
    assert_eq!((status, me["status"].as_str()), (200, Some("ADMITTED")), "{me}");
    assert!(headers.get("retry-after").is_none(), "an admitted shopper has nothing to wait for");
    me["admission"]["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_gated_product_is_ordered_only_with_a_valid_admission_to_its_sale_once() {
    let app = spawn_app_driven().await;
    let (status, headers, created) = create_over_http(&app, sale_body("drop", "scarce", 5)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(headers["location"], "/sales/drop");
    assert_eq!((created["state"].as_str(), created["unitsLeft"].as_u64()), (Some("OPEN"), Some(5)));
    assert_eq!(create_over_http(&app, sale_body("drop", "scarce", 5)).await.0, 200, "the same sale again");
    let (status, _, other) = create_over_http(&app, sale_body("drop", "scarce", 6)).await;
    assert_eq!((status, other["type"].as_str()), (409, Some("https://shop.example/problems/sale-exists")), "{other}");
    let (status, _, taken) = create_over_http(&app, sale_body("rival", "scarce", 5)).await;
    assert_eq!((status, taken["saleId"].as_str()), (409, Some("drop")), "one sale per product: {taken}");
    assert_eq!(create_over_http(&app, sale_body("kettles", "p2", 5)).await.0, 201);

    for (user, sale) in [("alice", "drop"), ("bob", "drop"), ("alice", "kettles")] {
        let (status, body) = app.post(user, &format!("/sales/{sale}/queue"), serde_json::json!({})).await;
        assert_eq!((status, body["status"].as_str()), (201, Some("WAITING")), "{body}");
    }
    let (status, again) = app.post("alice", "/sales/drop/queue", serde_json::json!({})).await;
    assert_eq!((status, again["status"].as_str()), (200, Some("WAITING")), "entering again: the same ticket");
    let (_, headers, me) = app.get(Some("bob"), "/sales/drop/queue/me").await;
    assert!(me["ahead"].as_u64().is_some() && headers.get("retry-after").is_some(), "{me}");
    app.clock.advance_secs(1);
    for sale in ["drop", "kettles"] {
        let s = SaleId::parse(sale).unwrap();
        sales::admit_step(&app.stack.app, &s, Some(Health::default())).await.unwrap().unwrap();
    }
    let (alice, bob, kettles) = (
        token_of(&app, "alice", "drop").await,
        token_of(&app, "bob", "drop").await,
        token_of(&app, "alice", "kettles").await,
    );

    // Refused, writing nothing: no admission, another user's, another
    // sale's, a forged one.
    let forged = format!("{}x", &alice[..alice.len() - 1]);
    for (token, why) in
        [(None, "none"), (Some(&bob), "bob's"), (Some(&kettles), "another sale's"), (Some(&forged), "forged")]
    {
        let (status, body) = order_with(&app, "alice", "scarce", token.map(String::as_str)).await;
        assert_eq!(
            (status, body["type"].as_str()),
            (403, Some("https://shop.example/problems/not-admitted")),
            "{why}: {body}"
        );
    }
    assert_eq!(app.stock("scarce").await, 5, "nothing reserved");
    assert!(app.orders_of("alice").await.is_empty(), "no order written");
    // An ungated product needs nothing.
    assert_eq!(order_with(&app, "carol", "p1", None).await.0, 201);

    // A valid admission places one order, in the sale.
    let (status, order) = order_with(&app, "alice", "scarce", Some(&alice)).await;
    assert_eq!((status, order["saleId"].as_str()), (201, Some("drop")), "{order}");
    let (status, body) = order_with(&app, "alice", "scarce", Some(&alice)).await;
    assert_eq!(status, 403, "one order per admission: {body}");
    let (_, _, me) = app.get(Some("alice"), "/sales/drop/queue/me").await;
    assert_eq!((me["status"].as_str(), &me["orderId"]), (Some("DONE"), &order["orderId"]), "{me}");

    // Past its session, an admission places nothing.
    app.clock.advance_secs(300);
    let (status, body) = order_with(&app, "bob", "scarce", Some(&bob)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(app.stock("scarce").await, 4, "only alice's unit");

    // Alice pays: the waiting room's consumer frees her slot, once.
    let order_id = order["orderId"].as_str().unwrap();
    app.pay_by_card("alice", order_id, order["amountDue"].as_u64().unwrap()).await;
    let drop = SaleId::parse("drop").unwrap();
    shop_tests::eventually(10, "alice's slot freed", || async {
        let t = app.store().sales().ticket(&drop, &uid("alice")).await.unwrap().unwrap();
        (t.status == TicketStatus::Done).then_some(())
    })
    .await;
    assert_eq!(app.store().sales().freed(&drop).await.unwrap(), 1);
    let (status, _, figures) = app.get(None, "/sales/drop").await;
    assert_eq!((status, figures["sold"].as_u64(), figures["admitted"].as_u64()), (200, Some(1), Some(2)), "{figures}");
}

/// A WebSocket to `/live` offering `protocols`, from `origin` if given:
/// the socket, or the refused handshake's status.
async fn live_socket(
    app: &TestApp,
    protocols: &str,
    origin: Option<&str>,
) -> Result<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>, u16> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let url = app.url("/live").replacen("http://", "ws://", 1);
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert("sec-websocket-protocol", protocols.parse().unwrap());
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((socket, resp)) => {
            assert_eq!(resp.headers()["sec-websocket-protocol"], "shop-live.v1");
            Ok(socket)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

/// The next message on `socket`, as JSON (within 10 s).
async fn next_message<S>(socket: &mut S) -> serde_json::Value
where
    S: futures::Stream<Item = Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
{
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("the socket is open")
            .expect("a message");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// Messages from `socket` (kept in `told`) until one `matches` it.
async fn message_where<S>(
    socket: &mut S,
    told: &mut Vec<serde_json::Value>,
    matches: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value
where
    S: futures::Stream<Item = Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
{
    for _ in 0..100 {
        let m = next_message(socket).await;
        told.push(m.clone());
        if matches(&m) {
            return m;
        }
    }
    panic!("no such message in 100: {told:?}");
}

#[tokio::test]
async fn a_websocket_client_sees_its_position_fall_and_its_admission_arrive() {
    // The stack's own admitter and pusher run (every 25 ms of real time, on
    // the manual clock): nothing here steps or pushes by hand.
    let app = shop_tests::spawn_app().await;
    sale(&app, 0, 1).await;
    let mut entered = Vec::new();
    for user in ["a", "b", "c"] {
        assert_eq!(app.post(user, "/sales/drop/queue", serde_json::json!({})).await.0, 201);
        let t = app.store().sales().ticket(&sid(), &uid(user)).await.unwrap().unwrap();
        entered.push((t.place, user));
    }
    // Admitted lowest place first: the watcher is the one with the highest.
    entered.sort();
    let (first_in, second_in, watcher) = (entered[0].1, entered[1].1, entered[2].1);
    let (_, _, me) = app.get(Some(watcher), "/sales/drop/queue/me").await;
    let token = me["liveToken"].as_str().expect("a waiting ticket has a live token").to_owned();

    // Refused: no token, a forged one, another origin.
    assert_eq!(live_socket(&app, "shop-live.v1", None).await.err(), Some(401));
    assert_eq!(live_socket(&app, &format!("shop-live.v1, {token}x"), None).await.err(), Some(403));
    let evil = Some("http://attacker.example");
    assert_eq!(live_socket(&app, &format!("shop-live.v1, {token}"), evil).await.err(), Some(403));

    let mut socket = live_socket(&app, &format!("shop-live.v1, {token}"), None).await.unwrap();
    let first = next_message(&mut socket).await;
    assert_eq!((first["type"].as_str(), first["status"].as_str()), (Some("ticket"), Some("WAITING")), "{first}");
    let mut ahead = first["ahead"].as_u64().unwrap();
    assert!(ahead >= 2, "two places before the watcher's: {first}");

    // The sale opens its bucket: the first is admitted, and the watcher is
    // told it moved up (a broadcast may repeat the position first).
    app.clock.advance_secs(1);
    let mut told = Vec::new();
    let moved = message_where(&mut socket, &mut told, |m| m["ahead"].as_u64().is_some_and(|a| a < ahead)).await;
    ahead = moved["ahead"].as_u64().unwrap();
    // The first gives the slot back: the second is admitted, and the
    // watcher moves up again; the second too: the watcher is admitted.
    let leave = |user: &'static str| {
        let req = app.http.delete(app.url("/sales/drop/queue/me")).bearer_auth(app.stack.token(user));
        async move { assert_eq!(req.send().await.unwrap().status(), 200) }
    };
    leave(first_in).await;
    message_where(&mut socket, &mut told, |m| m["ahead"].as_u64().is_some_and(|a| a < ahead)).await;
    leave(second_in).await;
    message_where(&mut socket, &mut told, |m| m["status"] == "ADMITTED").await;
    let aheads: Vec<u64> = told.iter().filter_map(|m| m["ahead"].as_u64()).collect();
    assert!(aheads.windows(2).all(|w| w[1] <= w[0]), "the position only falls: {told:?}");
    let (_, _, me) = app.get(Some(watcher), "/sales/drop/queue/me").await;
    assert!(me["admission"]["token"].is_string(), "and its token is the ticket's: {me}");

    // Any message asks for the position now.
    futures::SinkExt::send(&mut socket, tokio_tungstenite::tungstenite::Message::text("?")).await.unwrap();
    assert_eq!(next_message(&mut socket).await["status"], "ADMITTED");
    // Closing forgets the connection.
    futures::SinkExt::close(&mut socket).await.unwrap();
    let drop = SaleId::parse("drop").unwrap();
    shop_tests::eventually(10, "the closed connection forgotten", || async {
        app.store().connections().of_sale(&drop).await.unwrap().is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_replayed_or_reordered_end_of_an_order_frees_its_slot_once() {
    use shop_app::events::consumers::{Consumer, Done, WaitingRoomConsumer};
    use shop_domain::{EventDetail, Money, OrderEvent, OrderEventKind, PaymentKey, PaymentMethod};
    let app = spawn_app_driven().await;
    sale(&app, 0, 2).await;
    sales::enter(&app.stack.app, &sid(), &uid("ann")).await.unwrap();
    app.clock.advance_secs(1);
    step(&app).await;
    let token = token_of(&app, "ann", "drop").await;
    let (status, order) = order_with(&app, "ann", "bulk", Some(&token)).await;
    assert_eq!(status, 201, "{order}");
    let order_id = OrderId::parse(order["orderId"].as_str().unwrap()).unwrap();
    let event = |version: u64, kind: OrderEventKind| OrderEvent {
        order_id: order_id.clone(),
        aggregate_version: version,
        occurred_at: T0,
        kind,
    };
    let (user, amount, key) = (uid("ann"), Money::new(1_000).unwrap(), PaymentKey::parse("pk").unwrap());
    let issued = event(
        2,
        OrderEventKind::VirtualAccountIssued {
            user_id: user.clone(),
            payment_key: key.clone(),
            amount,
            due_at: None,
            sale_id: Some(sid()),
        },
    );
    let paid = event(
        3,
        OrderEventKind::OrderPaid {
            user_id: user.clone(),
            payment_key: Some(key),
            method: PaymentMethod::VirtualAccount,
            amount,
            coupon_id: None,
            sale_id: Some(sid()),
        },
    );
    let handle = |e: OrderEvent| {
        let app = &app;
        async move {
            let detail = EventDetail::new(&e, "corr", None);
            WaitingRoomConsumer.handle(&app.stack.app, &e, &detail).await.unwrap()
        }
    };
    // The later event first (reordered), then the earlier, then both again.
    assert!(matches!(handle(paid.clone()).await, Done::Applied(_)));
    for again in [issued.clone(), paid.clone(), issued] {
        assert!(matches!(handle(again).await, Done::Skipped(_)), "frees nothing twice");
    }
    assert_eq!(app.store().sales().freed(&sid()).await.unwrap(), 1);
    // Another order's end, and an order in no sale, free nothing.
    let other = OrderEvent { order_id: OrderId::parse("not-hers").unwrap(), ..paid.clone() };
    assert!(matches!(handle(other).await, Done::Skipped(_)));
    let unsold = OrderEvent {
        kind: OrderEventKind::OrderPaid {
            user_id: user,
            payment_key: None,
            method: PaymentMethod::Points,
            amount,
            coupon_id: None,
            sale_id: None,
        },
        ..paid
    };
    assert!(matches!(handle(unsold).await, Done::Skipped(_)));
    assert_eq!(app.store().sales().freed(&sid()).await.unwrap(), 1);
}

#[tokio::test]
async fn the_console_shows_a_running_sale_its_slots_and_its_admissions() {
    let app = spawn_app_driven().await;
    sale(&app, 0, 2).await;
    for u in ["a", "b", "c"] {
        sales::enter(&app.stack.app, &sid(), &uid(u)).await.unwrap();
    }
    app.clock.advance_secs(1);
    let admitted = step(&app).await.tickets;
    sales::leave(&app.stack.app, &sid(), &admitted[0].user).await.unwrap();
    let op =
        shop_local::jwt::issue_operator(&app.stack.secrets.jwt_secret, "ops", app.stack.app.clock.now().seconds(), 600);
    let resp = app.http.get(app.url("/console/sales")).bearer_auth(&op).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains(r#"id="sale-drop""#), "{page}");
    assert!(page.contains("1 / 2"), "one of two slots in use: {page}");
    assert!(page.contains("2 in the last hour"), "two admissions this hour: {page}");
    assert!(page.contains("1 in the last hour"), "one slot freed: {page}");
    let live = app.http.get(app.url("/console/sales/live")).bearer_auth(&op).send().await.unwrap();
    assert!(live.text().await.unwrap().contains(r#"id="sale-drop""#));
}

#[tokio::test]
async fn a_sale_sells_out_when_its_last_units_are_paid_and_every_waiting_ticket_ends_with_it() {
    let app = spawn_app_driven().await;
    scarce_sale(&app).await;
    for i in 0..8 {
        sales::enter(&app.stack.app, &sid(), &uid(&format!("s{i}"))).await.unwrap();
    }
    app.clock.advance_secs(1);
    let first = step(&app).await;
    assert_eq!(first.tickets.len(), 5, "five units, five shoppers");
    for t in &first.tickets {
        let token = token_of(&app, t.user.as_str(), "drop").await;
        let (status, order) = order_with(&app, t.user.as_str(), "scarce", Some(&token)).await;
        assert_eq!(status, 201, "{order}");
        let (id, amount) = (order["orderId"].as_str().unwrap(), order["amountDue"].as_u64().unwrap());
        app.pay_by_card(t.user.as_str(), id, amount).await;
    }
    shop_tests::eventually(10, "every paid order's slot freed", || async {
        (app.store().sales().freed(&sid()).await.unwrap() == 5).then_some(())
    })
    .await;
    app.clock.advance_secs(1);
    assert!(step(&app).await.tickets.is_empty(), "nothing left to sell");
    let (_, _, figures) = app.get(None, "/sales/drop").await;
    assert_eq!(
        (figures["state"].as_str(), figures["waiting"].as_u64(), figures["sold"].as_u64()),
        (Some("SOLD_OUT"), Some(0), Some(5)),
        "{figures}"
    );
    let waiting: Vec<_> =
        (0..8).map(|i| format!("s{i}")).filter(|u| first.tickets.iter().all(|t| t.user.as_str() != u)).collect();
    assert_eq!(waiting.len(), 3);
    for u in &waiting {
        let (status, _, me) = app.get(Some(u), "/sales/drop/queue/me").await;
        assert_eq!((status, me["status"].as_str()), (200, Some("SOLD_OUT")), "{me}");
    }
}

/// The `data-values` of the sparkline after `title` on a console page.
fn chart_after(page: &str, title: &str) -> Vec<i64> {
    let from = page.find(title).unwrap_or_else(|| panic!("no {title} on {page}"));
    let rest = &page[from..];
    let start = rest.find(r#"data-values=""#).expect("a chart") + r#"data-values=""#.len();
    let len = rest[start..].find('"').expect("the values end");
    rest[start..start + len].split(',').map(|v| v.parse().unwrap()).collect()
}

#[tokio::test]
async fn the_sales_page_plots_the_rate_falling_while_the_saga_lags_and_recovering_after() {
    let app = spawn_app_driven().await;
    sale(&app, 0, 2).await;
    // Six minutes of admitter passes, every 5 s. Orders settle in 200 ms
    // but in minutes 1 and 2, where they take 5 s (a slow PG): above the
    // 2.5 s target, so each pass halves the rate; the health is read over
    // the last 60 s, so minute 3 still sees minute 2.
    let app_ = &app.stack.app;
    for minute in 0..6 {
        let took_ms = if matches!(minute, 1 | 2) { 5_000 } else { 200 };
        app.store()
            .stats()
            .add(app_.clock.now(), 0, &[(shop_app::obs::stats::settle_bucket(took_ms), 50)], &[])
            .await
            .unwrap();
        for _ in 0..12 {
            app.clock.advance_secs(5);
            let health = shop_app::obs::stats::saga_health(app_).await.unwrap();
            sales::admit_pass(app_, health).await.unwrap();
        }
    }
    let op = shop_local::jwt::issue_operator(&app.stack.secrets.jwt_secret, "ops", app_.clock.now().seconds(), 600);
    let page = app.http.get(app.url("/console/sales")).bearer_auth(&op).send().await.unwrap().text().await.unwrap();
    // Minutes -1 to 6, the last rate sampled in each (per second): none
    // before the sale, the ceiling of 10, the floor of 1 while the saga
    // lags and in the minute after, then back to the ceiling by additive
    // steps (a pass at 6:00 samples minute 6).
    let rate = chart_after(&page, "Admission rate (adaptive)");
    assert_eq!(rate[rate.len() - 8..], [0, 10, 1, 1, 1, 10, 10, 10], "{rate:?}");
    // The p99 plotted: the bucket bounds of 200 ms and of 5 s; nothing paid in minute 6.
    let settle = chart_after(&page, "Saga settle p99");
    assert_eq!(settle[settle.len() - 8..], [0, 250, 5_000, 5_000, 250, 250, 250, 0], "{settle:?}");
}

#[tokio::test]
async fn no_more_shoppers_are_admitted_than_units_left_and_units_that_come_back_admit_more() {
    let app = spawn_app_driven().await;
    scarce_sale(&app).await;
    for i in 0..8 {
        sales::enter(&app.stack.app, &sid(), &uid(&format!("s{i}"))).await.unwrap();
    }
    app.clock.advance_secs(1);
    let first = step(&app).await;
    assert_eq!(first.tickets.len(), 5, "five units, five shoppers, though ten slots are free");
    // Every unit reserved by an admitted shopper's order: nobody more, and
    // the sale is not over while those orders may give units back.
    for t in &first.tickets {
        let token = token_of(&app, t.user.as_str(), "drop").await;
        assert_eq!(order_with(&app, t.user.as_str(), "scarce", Some(&token)).await.0, 201);
    }
    app.clock.advance_secs(1);
    assert!(step(&app).await.tickets.is_empty());
    let (_, _, figures) = app.get(None, "/sales/drop").await;
    assert_eq!(figures["state"], "OPEN", "units may come back: {figures}");
    // The orders expire: their units come back, and the three still
    // waiting are admitted.
    app.clock.advance_secs(900);
    app.expire().await;
    shop_tests::eventually(10, "the expired order's slot freed", || async {
        (app.store().sales().freed(&sid()).await.unwrap() == 5).then_some(())
    })
    .await;
    // The releases admitted them themselves (each freed slot admits the next).
    shop_tests::eventually(10, "the three admitted", || async {
        (app.store().sales().get(&sid()).await.unwrap().unwrap().admitted == 8).then_some(())
    })
    .await;
}
