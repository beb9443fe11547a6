//! The contract cases. Each takes a store on a fresh, empty table.

use aws_sdk_dynamodb::types::AttributeValue;
use shop_domain::coupon::Transition;
use shop_domain::points::{LedgerEntry, LedgerReason};
use shop_domain::{
    Coupon, CouponId, CouponKind, CouponStatus, Money, Order, OrderCommand, OrderId, OrderStatus, Product, ProductId,
    Quantity, Timestamp, UserId,
};
use shop_store::idempotency::{Claim, IdemPolicy, StoredResponse};
use shop_store::{ConflictReason, Store, StoreError, Tx, TxItem, keys};

pub(crate) const T0: Timestamp = Timestamp::from_millis(1_795_219_200_000);

/// The order before its first event (the statistics' attributes).
pub(crate) fn before() -> shop_store::outbox::Before {
    shop_store::outbox::Before { status: None, placed_at: shop_domain::Timestamp::from_millis(0) }
}

pub(crate) fn m(v: i128) -> Money {
    Money::new(v).unwrap()
}
pub(crate) fn q(n: i128) -> Quantity {
    Quantity::new(n).unwrap()
}
pub(crate) fn pid(s: &str) -> ProductId {
    ProductId::parse(s).unwrap()
}
pub(crate) fn uid(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}
pub(crate) fn oid(s: &str) -> OrderId {
    OrderId::parse(s).unwrap()
}

pub(crate) async fn run(store: &Store, ops: Vec<shop_store::TxOp>) -> Result<(), StoreError> {
    let mut tx = Tx::new();
    tx.extend(ops);
    store.transact(tx).await
}

pub(crate) fn assert_conflict(result: Result<(), StoreError>, item: TxItem, reason: ConflictReason) {
    match result {
        Err(StoreError::Conflict { item: i, reason: r }) => assert_eq!((i, r), (item, reason)),
        other => panic!("expected a conflict on {item}, got {other:?}"),
    }
}

pub(crate) async fn seed_product(store: &Store, id: &str, price: i128, available: u64) -> Product {
    let p = Product { id: pid(id), name: id.to_owned(), price: m(price), available };
    run(store, store.catalog().ops_seed_product(&p).unwrap().into()).await.unwrap();
    p
}

pub(crate) fn coupon(id: &str, owner: &str) -> Coupon {
    Coupon {
        id: CouponId::parse(id).unwrap(),
        owner: uid(owner),
        kind: CouponKind::Fixed(m(1000)),
        min_order_amount: Money::ZERO,
        expires_at: T0.plus_secs(86_400),
        status: CouponStatus::Issued,
    }
}

pub(crate) fn order(id: &str, user: &str, expires_in: i64) -> Order {
    placed(id, user, expires_in).0
}

pub(crate) fn placed(id: &str, user: &str, expires_in: i64) -> (Order, shop_domain::OrderEvent) {
    let items = [(Product { id: pid("p1"), name: "p1".into(), price: m(1000), available: 10 }, q(1))];
    let p = shop_domain::order::place(shop_domain::order::PlaceOrder {
        order_id: oid(id),
        user_id: uid(user),
        items: &items,
        coupon: None,
        points_to_use: Money::ZERO,
        points_balance: Money::ZERO,
        now: T0,
        ttl_secs: expires_in,
        sale: None,
    })
    .unwrap();
    let event = p.events.into_iter().next().expect("OrderPlaced");
    (p.order, event)
}

pub async fn table_has_indexes_ttl_and_is_created_once(store: Store) {
    shop_store::schema::ensure_table(store.client(), store.table(), shop_store::schema::Streams::Disabled)
        .await
        .unwrap();
    let d = store.client().describe_table().table_name(store.table()).send().await.unwrap();
    let table = d.table().unwrap();
    let mut names: Vec<_> = table.global_secondary_indexes().iter().filter_map(|g| g.index_name()).collect();
    names.sort_unstable();
    assert_eq!(names, vec![keys::GSI_DUE, keys::GSI_USER, keys::GSI_OUTBOX]);
    let ttl = store.client().describe_time_to_live().table_name(store.table()).send().await.unwrap();
    let desc = ttl.time_to_live_description().unwrap();
    assert_eq!(desc.attribute_name(), Some(shop_store::schema::TTL_ATTRIBUTE));
}

pub async fn stock_reservation_is_conditional(store: Store) {
    let p = seed_product(&store, "p1", 1000, 2).await;
    run(&store, vec![store.catalog().op_reserve_stock(&p, q(2)).unwrap()]).await.unwrap();
    assert_eq!(store.catalog().product(&p.id).await.unwrap().unwrap().available, 0);
    assert_conflict(
        run(&store, vec![store.catalog().op_reserve_stock(&p, q(1)).unwrap()]).await,
        TxItem::Stock("p1".into()),
        ConflictReason::ConditionFailed,
    );
    run(&store, vec![store.catalog().op_release_stock(&p.id, q(2)).unwrap()]).await.unwrap();
    // The price changed since the order was priced: refused.
    let repriced = Product { price: m(999), ..p.clone() };
    assert_conflict(
        run(&store, vec![store.catalog().op_reserve_stock(&repriced, q(1)).unwrap()]).await,
        TxItem::Stock("p1".into()),
        ConflictReason::ConditionFailed,
    );
    // Releasing stock of a product that does not exist is refused too.
    assert_conflict(
        run(&store, vec![store.catalog().op_release_stock(&pid("ghost"), q(1)).unwrap()]).await,
        TxItem::Stock("ghost".into()),
        ConflictReason::ConditionFailed,
    );
    assert_eq!(store.catalog().product(&p.id).await.unwrap().unwrap().available, 2);
}

pub async fn a_cancelled_transaction_names_its_item_and_writes_nothing(store: Store) {
    let p1 = seed_product(&store, "p1", 1000, 5).await;
    let p2 = seed_product(&store, "p2", 1000, 1).await;
    let (o, e) = placed("o1", "u1", 900);
    let result = run(
        &store,
        vec![
            store.catalog().op_reserve_stock(&p1, q(3)).unwrap(),
            store.catalog().op_reserve_stock(&p2, q(2)).unwrap(),
            store.orders().op_create(&o).unwrap(),
            store.outbox().op_put(&e, "c", None, &before()).unwrap(),
        ],
    )
    .await;
    assert_conflict(result, TxItem::Stock("p2".into()), ConflictReason::ConditionFailed);
    assert_eq!(store.catalog().product(&p1.id).await.unwrap().unwrap().available, 5);
    assert!(store.orders().get(&o.id).await.unwrap().is_none());
    assert!(store.outbox().events_of(&o.id).await.unwrap().is_empty());
}

pub async fn coupon_transitions_are_conditional(store: Store) {
    let c = coupon("c1", "u1");
    run(&store, vec![store.coupons().op_create(&c).unwrap()]).await.unwrap();
    // Seeding again never resets a coupon.
    assert_conflict(
        run(&store, vec![store.coupons().op_create(&c).unwrap()]).await,
        TxItem::Coupon("c1".into()),
        ConflictReason::ConditionFailed,
    );
    let held = c.hold(&uid("u1"), &oid("o1"), m(5000), T0).unwrap();
    run(&store, vec![store.coupons().op_transition(&c, &held).unwrap()]).await.unwrap();
    assert_eq!(store.coupons().get(&c.id).await.unwrap().unwrap(), held);
    // A second order decided on the stale ISSUED coupon loses.
    let held2 = c.hold(&uid("u1"), &oid("o2"), m(5000), T0).unwrap();
    assert_conflict(
        run(&store, vec![store.coupons().op_transition(&c, &held2).unwrap()]).await,
        TxItem::Coupon("c1".into()),
        ConflictReason::ConditionFailed,
    );
    let Transition::Changed(used) = held.mark_used(&oid("o1")).unwrap() else { panic!() };
    run(&store, vec![store.coupons().op_transition(&held, &used).unwrap()]).await.unwrap();
    assert_eq!(store.coupons().get(&c.id).await.unwrap().unwrap().status, CouponStatus::Used { order_id: oid("o1") });
    // Releasing from the stale HELD state loses: the coupon is USED now.
    let Transition::Changed(released) = held.release(&oid("o1"), T0) else { panic!() };
    assert_conflict(
        run(&store, vec![store.coupons().op_transition(&held, &released).unwrap()]).await,
        TxItem::Coupon("c1".into()),
        ConflictReason::ConditionFailed,
    );
}

pub(crate) fn entry(user: &str, tx: &str, delta: i64, after: i128, at: i64) -> LedgerEntry {
    LedgerEntry {
        user_id: uid(user),
        tx_id: tx.into(),
        delta,
        reason: if delta < 0 { LedgerReason::OrderSpend } else { LedgerReason::Grant },
        order_id: None,
        balance_after: m(after),
        at: T0.plus_secs(at),
    }
}

pub async fn points_balance_is_exact_and_ledgered(store: Store) {
    let u = uid("u1");
    assert_eq!(store.points().balance(&u).await.unwrap(), Money::ZERO);
    run(&store, store.points().ops_move(Money::ZERO, &entry("u1", "t1", 100, 100, 0)).unwrap().into()).await.unwrap();
    // Decided on a stale zero balance: refused.
    assert_conflict(
        run(&store, store.points().ops_move(Money::ZERO, &entry("u1", "t2", 100, 100, 1)).unwrap().into()).await,
        TxItem::Points("u1".into()),
        ConflictReason::ConditionFailed,
    );
    run(&store, store.points().ops_move(m(100), &entry("u1", "t3", -60, 40, 2)).unwrap().into()).await.unwrap();
    assert_eq!(store.points().balance(&u).await.unwrap(), m(40));
    // A ledger row is written once.
    assert_conflict(
        run(&store, store.points().ops_move(m(40), &entry("u1", "t3", -60, 40, 2)).unwrap().into()).await,
        TxItem::Ledger("t3".into()),
        ConflictReason::ConditionFailed,
    );
    let ledger = store.points().ledger(&u).await.unwrap();
    assert_eq!(ledger.iter().map(|e| e.tx_id.as_str()).collect::<Vec<_>>(), vec!["t1", "t3"]);
    assert_eq!(ledger.iter().map(|e| e.delta).sum::<i64>(), 40);
    assert_eq!(ledger[1], entry("u1", "t3", -60, 40, 2));
}

pub async fn orders_are_versioned(store: Store) {
    let o = order("o1", "u1", 900);
    run(&store, vec![store.orders().op_create(&o).unwrap()]).await.unwrap();
    assert_conflict(
        run(&store, vec![store.orders().op_create(&o).unwrap()]).await,
        TxItem::Order("o1".into()),
        ConflictReason::ConditionFailed,
    );
    let (cancelled, events) = o.execute(&OrderCommand::Cancel { refund_account: false }, T0).unwrap();
    run(
        &store,
        vec![
            store.orders().op_update(o.version, &cancelled).unwrap(),
            store.outbox().op_put(&events[0], "c", None, &before()).unwrap(),
        ],
    )
    .await
    .unwrap();
    let stored = store.orders().get(&o.id).await.unwrap().unwrap();
    assert_eq!(stored, cancelled);
    assert_eq!(stored.status, OrderStatus::Cancelled);
    // A second writer that decided on version 1 loses.
    let (expired, _) = o.execute(&OrderCommand::Expire, T0.plus_secs(900)).unwrap();
    assert_conflict(
        run(&store, vec![store.orders().op_update(o.version, &expired).unwrap()]).await,
        TxItem::Order("o1".into()),
        ConflictReason::ConditionFailed,
    );
    run(&store, vec![store.orders().op_check_version(&cancelled).unwrap()]).await.unwrap();
    assert_conflict(
        run(&store, vec![store.orders().op_check_version(&o).unwrap()]).await,
        TxItem::Order("o1".into()),
        ConflictReason::ConditionFailed,
    );
}

pub async fn expiry_index_holds_only_due_pending_orders(store: Store) {
    for (id, ttl) in [("a", 60), ("b", 120), ("c", 180), ("d", 3600)] {
        run(&store, vec![store.orders().op_create(&order(id, "u1", ttl)).unwrap()]).await.unwrap();
    }
    let mut due = store.orders().due_to_expire(T0.plus_secs(180), 10).await.unwrap();
    due.sort();
    assert_eq!(due, vec![oid("a"), oid("b"), oid("c")]);
    assert!(store.orders().due_to_expire(T0.plus_secs(59), 10).await.unwrap().is_empty());
    assert_eq!(store.orders().due_to_expire(T0.plus_secs(3600), 2).await.unwrap().len(), 2);
    // Leaving PENDING_PAYMENT takes an order out of the index.
    let b = order("b", "u1", 120);
    let (cancelled, _) = b.execute(&OrderCommand::Cancel { refund_account: false }, T0).unwrap();
    run(&store, vec![store.orders().op_update(1, &cancelled).unwrap()]).await.unwrap();
    let mut due = store.orders().due_to_expire(T0.plus_secs(180), 10).await.unwrap();
    due.sort();
    assert_eq!(due, vec![oid("a"), oid("c")]);
}

pub async fn user_index_lists_orders_and_coupons(store: Store) {
    for c in [coupon("c1", "u1"), coupon("c2", "u1"), coupon("c3", "u2")] {
        run(&store, vec![store.coupons().op_create(&c).unwrap()]).await.unwrap();
    }
    run(&store, vec![store.orders().op_create(&order("o1", "u1", 60)).unwrap()]).await.unwrap();
    run(&store, vec![store.orders().op_create(&order("o2", "u2", 60)).unwrap()]).await.unwrap();
    let mut mine: Vec<_> =
        store.coupons().of_user(&uid("u1")).await.unwrap().into_iter().map(|c| c.id.to_string()).collect();
    mine.sort();
    assert_eq!(mine, vec!["c1", "c2"]);
    let orders = store.orders().of_user(&uid("u1"), 10).await.unwrap();
    assert_eq!(orders.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), vec!["o1"]);
    // The index holds keys only: a status change writes no entry, and a
    // list reads each order as it is now, its status filter included.
    let (cancelled, _) = order("o1", "u1", 60).execute(&OrderCommand::Cancel { refund_account: false }, T0).unwrap();
    run(&store, vec![store.orders().op_update(1, &cancelled).unwrap()]).await.unwrap();
    let entries = store
        .client()
        .query()
        .table_name(store.table())
        .index_name(keys::GSI_USER)
        .key_condition_expression("userPk = :u")
        .expression_attribute_values(":u", AttributeValue::S(keys::user_pk(&uid("u1"))))
        .send()
        .await
        .unwrap();
    let mut attrs: Vec<String> = entries.items().iter().flat_map(|it| it.keys().cloned()).collect();
    attrs.sort();
    attrs.dedup();
    assert_eq!(attrs, vec!["pk", "sk", "userPk", "userSk"], "byUser projects keys only");
    let u1 = uid("u1");
    let orders = store.orders();
    let of = |st| orders.page(&u1, Some(st), 10, None);
    let (now, _) = of(OrderStatus::Cancelled).await.unwrap();
    assert_eq!(now.iter().map(|o| (o.id.as_str(), o.status)).collect::<Vec<_>>(), vec![("o1", OrderStatus::Cancelled)]);
    assert!(of(OrderStatus::PendingPayment).await.unwrap().0.is_empty());
}

pub async fn placement_inputs_are_one_snapshot(store: Store) {
    seed_product(&store, "p1", 1000, 3).await;
    let c = coupon("c1", "u1");
    run(&store, vec![store.coupons().op_create(&c).unwrap()]).await.unwrap();
    run(&store, store.points().ops_move(Money::ZERO, &entry("u1", "t1", 700, 700, 0)).unwrap().into()).await.unwrap();
    let inputs = store.orders().load_placement(&uid("u1"), &[pid("p1"), pid("nope")], Some(&c.id), None).await.unwrap();
    assert_eq!(inputs.products[0].as_ref().unwrap().available, 3);
    assert!(inputs.products[1].is_none());
    assert_eq!(inputs.coupon, Some(Some(c)));
    assert_eq!(inputs.points_balance, m(700));
    assert_eq!(inputs.gates, vec![None, None]);
    assert_eq!(inputs.ticket, None, "no ticket asked for");
    let none = store
        .orders()
        .load_placement(&uid("u9"), &[pid("p1")], Some(&CouponId::parse("zz").unwrap()), None)
        .await
        .unwrap();
    assert_eq!(none.coupon, Some(None));
    assert_eq!(none.points_balance, Money::ZERO);
    assert!(store.orders().load_placement(&uid("u9"), &[pid("p1")], None, None).await.unwrap().coupon.is_none());

    // A sale's gate is read with the product, and a ticket with them.
    let sale = shop_domain::SaleId::parse("flash").unwrap();
    let gate = shop_domain::sale::Gate { sale: sale.clone(), until: T0.plus_secs(3_600) };
    run(&store, vec![store.catalog().op_gate(&pid("p1"), &gate, T0).unwrap()]).await.unwrap();
    let gated = store.orders().load_placement(&uid("u1"), &[pid("p1")], None, Some(&sale)).await.unwrap();
    assert_eq!(gated.gates, vec![Some(gate.clone())]);
    assert_eq!(gated.ticket, Some(None), "asked for, none held");
    // One sale per product at a time: another's gate is refused while this
    // one applies, taken once it lapsed; the same sale's again is no change.
    let other =
        shop_domain::sale::Gate { sale: shop_domain::SaleId::parse("other").unwrap(), until: T0.plus_secs(9_000) };
    let refused = run(&store, vec![store.catalog().op_gate(&pid("p1"), &other, T0.plus_secs(60)).unwrap()]).await;
    assert!(matches!(refused, Err(StoreError::Conflict { item: TxItem::Gate(ref p), .. }) if p == "p1"), "{refused:?}");
    run(&store, vec![store.catalog().op_gate(&pid("p1"), &gate, T0.plus_secs(60)).unwrap()]).await.unwrap();
    run(&store, vec![store.catalog().op_gate(&pid("p1"), &other, T0.plus_secs(3_600)).unwrap()]).await.unwrap();
    assert_eq!(store.catalog().product_with_gate(&pid("p1")).await.unwrap().unwrap().1, Some(other));
    let unknown = run(&store, vec![store.catalog().op_gate(&pid("nope"), &gate, T0).unwrap()]).await;
    assert!(matches!(unknown, Err(StoreError::Conflict { item: TxItem::Gate(_), .. })), "{unknown:?}");
}

pub async fn idempotency_keys_are_recorded_with_their_answer(store: Store) {
    let policy = IdemPolicy { keep_secs: 86_400, in_progress_ms: 10_000 };
    let idem = store.idempotency();
    let response = StoredResponse { status: 201, body: "{\"ok\":true}".into() };
    let t = idem.ticket("s", "k", "h1", T0, policy);
    assert_eq!(idem.recorded(&t).await.unwrap(), None, "nothing is written before the work");
    // The business write fails: nothing is recorded, the key stays free.
    let p = seed_product(&store, "p1", 1000, 0).await;
    assert_conflict(
        run(&store, vec![store.catalog().op_reserve_stock(&p, q(1)).unwrap(), idem.op_record(&t, &response).unwrap()])
            .await,
        TxItem::Stock("p1".into()),
        ConflictReason::ConditionFailed,
    );
    assert_eq!(idem.recorded(&t).await.unwrap(), None);
    // Both commit together.
    let o = order("o1", "u1", 60);
    run(&store, vec![store.orders().op_create(&o).unwrap(), idem.op_record(&t, &response).unwrap()]).await.unwrap();
    assert_eq!(idem.recorded(&t).await.unwrap(), Some(Claim::Replay(response.clone())));
    // The key cannot be recorded again, with any payload; another payload is a mismatch.
    assert_conflict(
        run(&store, vec![idem.op_record(&t, &response).unwrap()]).await,
        TxItem::Idempotency,
        ConflictReason::ConditionFailed,
    );
    assert_eq!(idem.recorded(&idem.ticket("s", "k", "h2", T0, policy)).await.unwrap(), Some(Claim::PayloadMismatch));
    // Another scope, same key: independent.
    let other = idem.ticket("s2", "k", "h1", T0, policy);
    assert_eq!(idem.recorded(&other).await.unwrap(), None);
    run(&store, vec![idem.op_record(&other, &response).unwrap()]).await.unwrap();
    // Kept for keep_secs, then forgotten: the key carries a new request.
    let later = idem.ticket("s", "k", "h2", T0.plus_secs(86_401), policy);
    assert_eq!(idem.recorded(&later).await.unwrap(), None);
    run(&store, vec![idem.op_record(&later, &response).unwrap()]).await.unwrap();
    assert_eq!(idem.recorded(&later).await.unwrap(), Some(Claim::Replay(response.clone())));

    // A lock of the earlier protocol (claimed before the work, INPROGRESS)
    // is honoured until it lapses.
    let (pk, sk) = keys::idempotency("s3", "k");
    let mut lock = shop_store::attr::item([
        ("type", shop_store::attr::s("IDEM")),
        ("status", shop_store::attr::s("INPROGRESS")),
        ("payloadHash", shop_store::attr::s("h")),
        ("lockToken", shop_store::attr::s("t")),
        ("inProgressUntil", shop_store::attr::n(T0.plus_secs(10).millis())),
        ("keepUntil", shop_store::attr::n(T0.plus_secs(86_400).millis())),
    ]);
    lock.extend(shop_store::attr::key(pk, sk));
    store.client().put_item().table_name(store.table()).set_item(Some(lock)).send().await.unwrap();
    let held = idem.ticket("s3", "k", "h", T0, policy);
    assert_eq!(idem.recorded(&held).await.unwrap(), Some(Claim::InProgress));
    assert_conflict(
        run(&store, vec![idem.op_record(&held, &response).unwrap()]).await,
        TxItem::Idempotency,
        ConflictReason::ConditionFailed,
    );
    let lapsed = idem.ticket("s3", "k", "h", T0.plus_secs(11), policy);
    assert_eq!(idem.recorded(&lapsed).await.unwrap(), None);
    run(&store, vec![idem.op_record(&lapsed, &response).unwrap()]).await.unwrap();
    assert_eq!(idem.recorded(&lapsed).await.unwrap(), Some(Claim::Replay(response)));
}

pub async fn batch_get_reads_many_keys(store: Store) {
    let mut wanted = Vec::new();
    for i in 0..130 {
        let p = seed_product(&store, &format!("p{i}"), 1000, i).await;
        wanted.push(keys::product(&p.id));
    }
    wanted.push(keys::product(&pid("missing")));
    let items = store.batch_get(wanted).await.unwrap();
    assert_eq!(items.len(), 130);
}

pub(crate) fn payment(key: &str, order: &str) -> shop_domain::Payment {
    shop_domain::Payment::started(
        shop_domain::PaymentKey::parse(key).unwrap(),
        oid(order),
        uid("u1"),
        m(1000),
        shop_domain::PaymentMethod::Card,
        T0,
    )
}

pub async fn payments_are_versioned_and_in_doubt_ones_are_due_for_reconciliation(store: Store) {
    let p = payment("pk1", "o1");
    run(&store, vec![store.payments().op_create(&p).unwrap()]).await.unwrap();
    // A payment key is recorded once.
    assert_conflict(
        run(&store, vec![store.payments().op_create(&p).unwrap()]).await,
        TxItem::Payment("pk1".into()),
        ConflictReason::ConditionFailed,
    );
    let q = payment("pk2", "o2");
    run(&store, vec![store.payments().op_create(&q).unwrap()]).await.unwrap();
    // CONFIRMING payments are due once untouched since `before`.
    assert!(store.payments().in_doubt(T0.plus_secs(-1), 10).await.unwrap().is_empty());
    let mut due: Vec<_> =
        store.payments().in_doubt(T0, 10).await.unwrap().into_iter().map(|p| p.payment_key.to_string()).collect();
    due.sort();
    assert_eq!(due, vec!["pk1", "pk2"]);
    // UNKNOWN stays due (from its update time); DONE leaves the index.
    let unknown = p.moved_to(shop_domain::PaymentStatus::Unknown, T0.plus_secs(10)).unwrap();
    run(&store, vec![store.payments().op_update(p.version, &unknown).unwrap()]).await.unwrap();
    let done = q.moved_to(shop_domain::PaymentStatus::Done, T0.plus_secs(10)).unwrap();
    run(&store, vec![store.payments().op_update(q.version, &done).unwrap()]).await.unwrap();
    assert!(store.payments().in_doubt(T0.plus_secs(9), 10).await.unwrap().is_empty());
    let due = store.payments().in_doubt(T0.plus_secs(10), 10).await.unwrap();
    assert_eq!(due, vec![unknown.clone()]);
    // A writer that decided on the old version loses.
    let stale = p.moved_to(shop_domain::PaymentStatus::Aborted, T0.plus_secs(11)).unwrap();
    assert_conflict(
        run(&store, vec![store.payments().op_update(p.version, &stale).unwrap()]).await,
        TxItem::Payment("pk1".into()),
        ConflictReason::ConditionFailed,
    );
    assert_eq!(store.payments().get(&unknown.payment_key).await.unwrap(), Some(unknown));
    // Orders and payments share the due index without mixing.
    run(&store, vec![store.orders().op_create(&order("o9", "u1", 60)).unwrap()]).await.unwrap();
    assert_eq!(store.orders().due_to_expire(T0.plus_secs(3600), 10).await.unwrap(), vec![oid("o9")]);
    assert_eq!(store.payments().in_doubt(T0.plus_secs(3600), 10).await.unwrap().len(), 1);
}

/// Virtual accounts waiting for their deposit are due at their next check,
/// least recently checked first; apart from payments in doubt; and leave
/// the index when the deposit (or anything else) settles them.
pub async fn waiting_virtual_accounts_are_due_at_their_next_check(store: Store) {
    use shop_domain::PaymentStatus as P;
    let waiting = |key: &str, check_in: i64| {
        let p = payment(key, &format!("o-{key}")).moved_to(P::WaitingForDeposit, T0).unwrap();
        shop_domain::Payment { check_at: Some(T0.plus_secs(check_in)), ..p }
    };
    let (a, b) = (waiting("va-a", 300), waiting("va-b", 60));
    run(&store, vec![store.payments().op_create(&a).unwrap(), store.payments().op_create(&b).unwrap()]).await.unwrap();
    run(&store, vec![store.payments().op_create(&payment("card", "o-card")).unwrap()]).await.unwrap();
    let keys = |ps: Vec<shop_domain::Payment>| ps.into_iter().map(|p| p.payment_key.to_string()).collect::<Vec<_>>();
    assert!(store.payments().deposits_due(T0.plus_secs(59), 10).await.unwrap().is_empty());
    assert_eq!(keys(store.payments().deposits_due(T0.plus_secs(60), 10).await.unwrap()), vec!["va-b"]);
    assert_eq!(keys(store.payments().deposits_due(T0.plus_secs(300), 10).await.unwrap()), vec!["va-b", "va-a"]);
    assert_eq!(keys(store.payments().in_doubt(T0.plus_secs(300), 10).await.unwrap()), vec!["card"]);
    // Checked: due again one interval on. Deposited: out of the index.
    let checked = shop_domain::Payment { check_at: Some(T0.plus_secs(400)), version: b.version + 1, ..b.clone() };
    run(&store, vec![store.payments().op_update(b.version, &checked).unwrap()]).await.unwrap();
    let paid = a.moved_to(P::Done, T0.plus_secs(200)).unwrap();
    assert_eq!(paid.check_at, None);
    run(&store, vec![store.payments().op_update(a.version, &paid).unwrap()]).await.unwrap();
    assert!(store.payments().deposits_due(T0.plus_secs(399), 10).await.unwrap().is_empty());
    assert_eq!(keys(store.payments().deposits_due(T0.plus_secs(400), 10).await.unwrap()), vec!["va-b"]);
}

/// The saga log: each write counts an attempt; a duplicate's write fills
/// a missing or failed entry and never overwrites DONE or SKIPPED.
pub async fn saga_log_entries_count_attempts_and_a_duplicate_never_overwrites_an_outcome(store: Store) {
    use shop_store::saga::Outcome;
    let entry = |consumer: &str, status: &str| Outcome {
        consumer: consumer.into(),
        event_id: "o1#2".into(),
        detail_type: "OrderPaid".into(),
        status: status.into(),
        attempts: 0,
        detail: Some(status.to_lowercase()),
        at: T0,
        dead_lettered_at: None,
    };
    let id = oid("o1");
    store.saga().put(&id, 2, &entry("coupon", "FAILED")).await.unwrap();
    store.saga().put(&id, 2, &entry("coupon", "DONE")).await.unwrap();
    store.saga().put_if_unfinished(&id, 2, &entry("coupon", "SKIPPED")).await.unwrap();
    store.saga().put(&id, 2, &entry("analytics", "FAILED")).await.unwrap();
    store.saga().put_if_unfinished(&id, 2, &entry("analytics", "SKIPPED")).await.unwrap();
    store.saga().put_if_unfinished(&id, 2, &entry("compensation", "SKIPPED")).await.unwrap();
    let mut got: Vec<(String, String, u32)> =
        store.saga().outcomes_of(&id).await.unwrap().into_iter().map(|o| (o.consumer, o.status, o.attempts)).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("analytics".into(), "SKIPPED".into(), 2),
            ("compensation".into(), "SKIPPED".into(), 1),
            ("coupon".into(), "DONE".into(), 2),
        ]
    );
}

/// The saga log's item is a consumer's claim (ADR 0023): one delivery
/// holds an event under a lease; another is told it is busy until the lease
/// lapses; a finished event (DONE or SKIPPED) is never claimed again; a
/// FAILED one is, and stays listed as failing until it is finished
/// otherwise; a lapsed holder's record is refused.
pub async fn a_consumer_claims_an_event_in_the_saga_log_under_a_lease(store: Store) {
    use shop_store::saga::{Begun, Outcome};
    let at = |secs: i64, consumer: &str| Outcome {
        consumer: consumer.into(),
        event_id: "o1#2".into(),
        detail_type: "OrderPaid".into(),
        status: shop_store::saga::RUNNING.into(),
        attempts: 0,
        detail: None,
        at: T0.plus_secs(secs),
        dead_lettered_at: None,
    };
    let id = oid("o1");
    let log = store.saga();
    let Begun::Claimed(first) = log.begin(&id, 2, &at(0, "coupon"), 30_000).await.unwrap() else { panic!("claimed") };
    assert_eq!(log.begin(&id, 2, &at(10, "coupon"), 30_000).await.unwrap(), Begun::Busy);
    let id_ = &id;
    let status = |consumer: &'static str| async move {
        let all = log.outcomes_of(id_).await.unwrap();
        all.into_iter().find(|o| o.consumer == consumer).map(|o| (o.status, o.attempts))
    };
    assert_eq!(status("coupon").await, Some(("RUNNING".into(), 1)));
    // The holder died: past its lease another delivery takes the event.
    let Begun::Claimed(second) = log.begin(&id, 2, &at(31, "coupon"), 30_000).await.unwrap() else { panic!("lapsed") };
    assert!(!log.finish(&id, &first, "DONE", Some("late"), T0.plus_secs(32)).await.unwrap(), "the lapsed holder");
    assert!(log.finish(&id, &second, "FAILED", Some("PG down"), T0.plus_secs(33)).await.unwrap());
    assert_eq!(log.failures(10).await.unwrap().len(), 1);
    // A failed event is claimed again; it stays listed until it is done.
    let Begun::Claimed(third) = log.begin(&id, 2, &at(40, "coupon"), 30_000).await.unwrap() else { panic!("retry") };
    assert_eq!(log.failures(10).await.unwrap().len(), 1);
    assert!(log.finish(&id, &third, "DONE", Some("used"), T0.plus_secs(41)).await.unwrap());
    assert!(log.failures(10).await.unwrap().is_empty());
    assert_eq!(status("coupon").await, Some(("DONE".into(), 3)));
    // Finished for good: duplicates, replays and redrives stop at the claim.
    assert_eq!(log.begin(&id, 2, &at(100_000, "coupon"), 30_000).await.unwrap(), Begun::Finished);
    // SKIPPED is finished too; other consumers' entries are their own.
    let Begun::Claimed(other) = log.begin(&id, 2, &at(0, "analytics"), 30_000).await.unwrap() else { panic!("own") };
    assert!(log.finish(&id, &other, "SKIPPED", None, T0.plus_secs(1)).await.unwrap());
    assert_eq!(log.begin(&id, 2, &at(2, "analytics"), 30_000).await.unwrap(), Begun::Finished);
    let done = log.outcomes_of(&id).await.unwrap();
    assert!(done.iter().all(|o| o.status != "RUNNING"), "{done:?}");
}

/// A partition larger than one page is read whole, page by page, in order.
pub async fn a_partition_larger_than_a_page_is_read_whole(store: Store) {
    let n = usize::try_from(shop_store::PAGE_ITEMS).unwrap() * 2 + 7;
    let items: Vec<shop_store::attr::Item> = (0..n)
        .map(|i| {
            let mut it = shop_store::attr::Item::new();
            it.insert("pk".into(), shop_store::attr::s("BIG#1"));
            it.insert("sk".into(), shop_store::attr::s(format!("ROW#{i:06}")));
            it
        })
        .collect();
    store.batch_put(items).await.unwrap();
    let read = store.query_prefix("BIG#1", "ROW#").await.unwrap();
    assert_eq!(read.len(), n);
    let sks: Vec<String> = read.iter().map(|it| shop_store::attr::get_s(it, "sk").unwrap().to_owned()).collect();
    assert!(sks.windows(2).all(|w| w[0] < w[1]), "in order");
}

/// An item exactly as stored.
pub(crate) async fn raw_item(store: &Store, (pk, sk): (String, String)) -> Option<shop_store::attr::Item> {
    let out = store
        .client()
        .get_item()
        .table_name(store.table())
        .key("pk", shop_store::attr::s(pk))
        .key("sk", shop_store::attr::s(sk))
        .send()
        .await
        .unwrap();
    out.item
}

pub(crate) fn claim_ops(store: &Store, campaign: &shop_domain::Campaign, user: &str, n: u32) -> Vec<shop_store::TxOp> {
    let coupon = campaign.claim(&uid(user), CouponId::parse(format!("k{n}")).unwrap(), T0).unwrap();
    let event = shop_domain::campaign::CouponIssued::new(
        format!("{}#1", keys::claim_pk(&campaign.id, &uid(user))),
        &campaign.id,
        &coupon,
        T0,
        "corr",
    );
    vec![
        store.campaigns().op_count_claim(&campaign.id).unwrap(),
        store.campaigns().op_put_claim(&campaign.id, &coupon, T0).unwrap(),
        store.coupons().op_create(&coupon).unwrap(),
        store.outbox().op_put_coupon_issued(&event, T0).unwrap(),
    ]
}

pub async fn a_campaign_counts_claims_up_to_its_total_and_one_per_user(store: Store) {
    use shop_domain::campaign::{Campaign, CouponTerms};
    let terms =
        CouponTerms { kind: CouponKind::Fixed(m(500)), min_order_amount: Money::ZERO, expires_at: T0.plus_secs(60) };
    let id = shop_domain::CampaignId::parse("rush").unwrap();
    let campaign = Campaign::new(id.clone(), "Rush".into(), 2, T0, T0.plus_secs(60), terms).unwrap();
    run(&store, vec![store.campaigns().op_create(&campaign).unwrap()]).await.unwrap();
    assert_conflict(
        run(&store, vec![store.campaigns().op_create(&campaign).unwrap()]).await,
        TxItem::Campaign("rush".into()),
        ConflictReason::ConditionFailed,
    );
    run(&store, claim_ops(&store, &campaign, "u1", 1)).await.unwrap();
    // The same user again (a new coupon id): the marker refuses, nothing is written.
    assert_conflict(
        run(&store, claim_ops(&store, &campaign, "u1", 2)).await,
        TxItem::Claim("u1".into()),
        ConflictReason::ConditionFailed,
    );
    assert!(store.coupons().get(&CouponId::parse("k2").unwrap()).await.unwrap().is_none());
    run(&store, claim_ops(&store, &campaign, "u2", 3)).await.unwrap();
    // Past the total: the counter refuses, whatever the claim's read said.
    assert_conflict(
        run(&store, claim_ops(&store, &campaign, "u3", 4)).await,
        TxItem::Campaign("rush".into()),
        ConflictReason::ConditionFailed,
    );
    let stored = store.campaigns().get(&id).await.unwrap().unwrap();
    assert_eq!((stored.issued, stored.total, stored.remaining()), (2, 2, 0));
    assert_eq!(store.campaigns().claimed_coupon(&id, &uid("u1")).await.unwrap(), Some(CouponId::parse("k1").unwrap()));
    assert_eq!(store.campaigns().claimed_coupon(&id, &uid("u3")).await.unwrap(), None);
    // Each claim's CouponIssued is pending publication.
    let pending = store.outbox().pending(10).await.unwrap();
    assert_eq!(pending.iter().filter(|e| e.source == "shop.campaigns").count(), 2);
}

pub async fn the_catalog_and_a_users_orders_are_read_a_page_at_a_time(store: Store) {
    for n in 0..5 {
        seed_product(&store, &format!("p{n}"), 1000, n).await;
    }
    let (first, next) = store.catalog().page(2, None).await.unwrap();
    assert_eq!(first.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["p0", "p1"]);
    assert_eq!(first[1].available, 1);
    let (second, next) = store.catalog().page(2, next.as_ref()).await.unwrap();
    assert_eq!(second.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["p2", "p3"]);
    let (last, next) = store.catalog().page(2, next.as_ref()).await.unwrap();
    assert_eq!((last.len(), next), (1, None));

    // Seven orders of u1 a second apart (every other one cancelled), one of u2.
    for n in 0..7 {
        let mut o = order(&format!("o{n}"), "u1", 900);
        o.created_at = T0.plus_secs(n);
        if n % 2 == 1 {
            o.status = OrderStatus::Cancelled;
        }
        run(&store, vec![store.orders().op_create(&o).unwrap()]).await.unwrap();
    }
    run(&store, vec![store.orders().op_create(&order("theirs", "u2", 900)).unwrap()]).await.unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = store.orders().page(&uid("u1"), None, 3, after.as_ref()).await.unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.into_iter().map(|o| o.id.to_string()));
        match next {
            Some(p) => after = Some(p),
            None => break,
        }
    }
    assert_eq!(seen, ["o6", "o5", "o4", "o3", "o2", "o1", "o0"], "newest first, only u1's");
    let (cancelled, next) = store.orders().page(&uid("u1"), Some(OrderStatus::Cancelled), 2, None).await.unwrap();
    assert_eq!(cancelled.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), ["o5", "o3"]);
    let (rest, next) = store.orders().page(&uid("u1"), Some(OrderStatus::Cancelled), 2, next.as_ref()).await.unwrap();
    assert_eq!((rest.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), next), (vec!["o1"], None));
}

/// The saga statistics: counters add up per minute across shards, status
/// deltas also reach the running totals, gauges keep the last sample, a
/// range reads only its own minutes.
pub async fn saga_statistics_add_per_minute_and_keep_running_totals(store: Store) {
    let s = |name: &str, n: i64| (name.to_owned(), n);
    let minute = |m: i64| T0.plus_secs(m * 60 + 7);
    store.stats().add(minute(0), 0, &[s("e.OrderPlaced", 2)], &[s("s.PENDING_PAYMENT", 2)]).await.unwrap();
    store.stats().add(minute(0), 3, &[s("e.OrderPlaced", 1)], &[s("s.PENDING_PAYMENT", 1)]).await.unwrap();
    store
        .stats()
        .add(minute(1), 1, &[s("e.OrderPaid", 1)], &[s("s.PENDING_PAYMENT", -1), s("s.PAID", 1)])
        .await
        .unwrap();
    // A shard beyond the count folds into one that exists.
    store.stats().add(minute(90), shop_store::keys::SHARDS + 2, &[s("pg.calls", 4)], &[]).await.unwrap();
    store.stats().sample(minute(1), &[s("q.analytics", 5)]).await.unwrap();
    store.stats().sample(minute(1), &[s("q.analytics", 3), s("outbox.ageMs", 120)]).await.unwrap();

    let range = store.stats().between(minute(0), minute(1)).await.unwrap();
    let at = |m: i64| shop_store::stats::minute_of(minute(m));
    assert_eq!(range.keys().copied().collect::<Vec<_>>(), vec![at(0), at(1)], "{range:?}");
    assert_eq!(range[&at(0)]["e.OrderPlaced"], 3);
    assert_eq!(range[&at(0)]["s.PENDING_PAYMENT"], 3);
    assert_eq!(range[&at(1)]["s.PAID"], 1);
    assert_eq!((range[&at(1)]["q.analytics"], range[&at(1)]["outbox.ageMs"]), (3, 120), "the last sample stands");
    let later = store.stats().between(minute(60), minute(120)).await.unwrap();
    assert_eq!(later.values().map(|v| v["pg.calls"]).sum::<i64>(), 4, "another hour's partition: {later:?}");
    let totals = store.stats().totals().await.unwrap();
    assert_eq!((totals["s.PENDING_PAYMENT"], totals["s.PAID"]), (2, 1));
    assert!(!totals.contains_key("e.OrderPlaced"), "only status deltas are totalled");
}

/// The console's reads: events by correlation id, orders that entered a
/// status (a capped, filtered read of the event log), failing consumers
/// (listed until done), and one user's ledger rows in a time range.
// The outbox and the event log (written once, pending, published, searched,
// read back from the stream) are in their own file.
pub use crate::outbox_cases::*;

/// The waiting room's items (docs/adr/0027): counter shards hand out
/// distinct places, a ticket is put once per user, the queue lists waiting
/// tickets lowest place first (the pre-queue before counted places) and
/// drops them once admitted, and the freed counters add up.
pub async fn sale_queue_counters_and_tickets(store: Store) {
    use shop_domain::SaleId;
    use shop_domain::sale::{Place, Sale, SaleTerms, Ticket};
    let terms = SaleTerms::new("Drop".into(), vec![pid("p1")], T0, T0.plus_secs(3600), 2, 10, 60, Some(2)).unwrap();
    let sale = Sale::new(SaleId::parse("drop").unwrap(), terms, 9);
    run(&store, vec![store.sales().op_create(&sale).unwrap()]).await.unwrap();
    assert_eq!(store.sales().get(&sale.id).await.unwrap(), Some(sale.clone()));
    let mut places = Vec::new();
    for u in ["a", "b", "c"] {
        let place = store.sales().take_number(&sale, &uid(u)).await.unwrap();
        let t = Ticket::enter(sale.id.clone(), uid(u), place, T0);
        run(&store, vec![store.sales().op_put_ticket(&t, &sale).unwrap()]).await.unwrap();
        places.push(place);
    }
    let early = Ticket::enter(sale.id.clone(), uid("early"), sale.early_place(&uid("early")), T0);
    let early_ops = vec![
        store.sales().op_put_ticket(&early, &sale).unwrap(),
        store.sales().op_count_early(&sale, &uid("early")).unwrap(),
    ];
    run(&store, early_ops).await.unwrap();
    let again = Ticket::enter(sale.id.clone(), uid("a"), places[0], T0);
    assert_conflict(
        run(&store, vec![store.sales().op_put_ticket(&again, &sale).unwrap()]).await,
        TxItem::Ticket("a".into()),
        ConflictReason::ConditionFailed,
    );
    let distinct: std::collections::HashSet<Place> = places.iter().copied().collect();
    assert_eq!(distinct.len(), 3);
    // As the admitter reads the sale: one pre-queue ticket counted, none admitted.
    let sale = Sale { early: store.sales().early_total(&sale).await.unwrap(), ..sale };
    assert_eq!(sale.early, 1, "the pre-queue entry counted with its ticket");
    let waiting = store.sales().waiting(&sale, 10).await.unwrap();
    let mut expected: Vec<Place> = places.clone();
    expected.sort();
    expected.insert(0, early.place);
    assert_eq!(waiting.iter().map(|t| t.place).collect::<Vec<_>>(), expected, "lowest first, pre-queue first");
    // Admitted tickets leave the queue; their slots, freed, add up.
    let first = &waiting[0];
    let admitted = first.admit("adm".into(), T0, 60).unwrap();
    run(&store, vec![store.sales().op_update_ticket(first.version, &admitted, &sale).unwrap()]).await.unwrap();
    assert_eq!(store.sales().waiting(&sale, 10).await.unwrap().len(), 3);
    assert_eq!(store.sales().sessions_ended(T0.plus_secs(59), 10).await.unwrap().len(), 0);
    assert_eq!(store.sales().sessions_ended(T0.plus_secs(60), 10).await.unwrap().len(), 1);
    for u in ["a", "b", "c", "a"] {
        run(&store, vec![store.sales().op_free(&sale.id, &uid(u)).unwrap()]).await.unwrap();
    }
    assert_eq!(store.sales().freed(&sale.id).await.unwrap(), 4);
    // Orders holding their slots: +1 as placed, −1 as freed, on the user's shard.
    for (u, delta) in [("a", 1), ("b", 1), ("c", 1), ("a", -1)] {
        run(&store, vec![store.sales().op_hold(&sale.id, &uid(u), delta).unwrap()]).await.unwrap();
    }
    assert_eq!(store.sales().holding(&sale.id).await.unwrap(), 2);
    // The sale's own writes are conditional on its version.
    let next = sale.after_step(
        &[first.place],
        shop_domain::sale::plan_step(&sale, Default::default(), u64::MAX, T0.plus_secs(1)),
        10.0,
    );
    run(&store, vec![store.sales().op_update(sale.version, &next).unwrap()]).await.unwrap();
    assert_conflict(
        run(&store, vec![store.sales().op_update(sale.version, &next).unwrap()]).await,
        TxItem::Sale("drop".into()),
        ConflictReason::ConditionFailed,
    );
}

/// The audit trail: an entry is put once, finished once, and read back
/// newest first a page at a time (the cursor is the last entry's key).
pub async fn the_audit_trail_is_appended_finished_once_and_paged_newest_first(store: Store) {
    use shop_domain::audit::{AuditStatus, Channel, Operator, Reason};
    use shop_store::audit::{Action, AuditCursor};
    let action = |i: i64| Action {
        id: format!("0190000{i:02}-aaaa-7000-8000-000000000000"),
        at: Timestamp::from_millis(1_800_000_000_000 + i * 1_000),
        operator: Operator::parse("ana").unwrap(),
        channel: Channel::Cli,
        stack: "local".into(),
        action: "dlq.redrive".into(),
        targets: vec![format!("order:o{i}")],
        target_count: 1,
        reason: Reason::parse(format!("reason {i}")).unwrap(),
    };
    let audit = store.audit();
    for i in 0..5 {
        audit.begin(&action(i)).await.unwrap();
    }
    assert!(audit.begin(&action(2)).await.is_err(), "an entry is never put twice");
    let done = Timestamp::from_millis(1_800_000_010_000);
    audit.finish(&action(3), AuditStatus::Succeeded, "1 message(s) moved", done).await.unwrap();
    assert!(audit.finish(&action(3), AuditStatus::Failed, "rewritten", done).await.is_err(), "finished once");

    let (first, next) = audit.page(2, None).await.unwrap();
    let reasons: Vec<&str> = first.iter().map(|e| e.action.reason.as_str()).collect();
    assert_eq!(reasons, ["reason 4", "reason 3"]);
    assert_eq!(first[0].status, AuditStatus::Started);
    assert_eq!(
        (first[1].status, first[1].outcome.as_deref(), first[1].finished_at),
        (AuditStatus::Succeeded, Some("1 message(s) moved"), Some(done))
    );
    assert_eq!(first[1].action, action(3), "the document as written");
    let next = next.expect("more");
    assert_eq!(AuditCursor::parse(&next.to_param()), Some(next.clone()));
    let (second, next) = audit.page(2, Some(&next)).await.unwrap();
    assert_eq!(second.iter().map(|e| e.action.reason.as_str()).collect::<Vec<_>>(), ["reason 2", "reason 1"]);
    let (last, end) = audit.page(2, next.as_ref()).await.unwrap();
    assert_eq!((last.len(), end), (1, None));
    assert_eq!(AuditCursor::parse("nonsense"), None);
    assert_eq!(AuditCursor::parse("123.x"), None);
    assert_eq!(AuditCursor::parse("1800000000000#x"), None, "the key is not the cursor");
}
