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
    assert_eq!(sales::create_sale(&app.stack.app, &s).await.unwrap(), Created::New);
    s
}

async fn step(app: &TestApp) -> sales::Admitted {
    sales::admit_step(&app.stack.app, &sid(), Health::default()).await.unwrap().unwrap()
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
