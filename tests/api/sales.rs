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

/// A sale of `scarce` from T0 + `starts` seconds, `capacity` at once, 10 a second.
async fn sale(app: &TestApp, starts: i64, capacity: u64) -> Sale {
    let terms = SaleTerms::new(
        "Grinder drop".into(),
        vec![ProductId::parse("scarce").unwrap()],
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
