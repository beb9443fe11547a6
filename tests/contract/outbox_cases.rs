//! The contract cases of the outbox and the event log: written once,
//! pending until published, read back from the event log and by the
//! console's searches, and read back from the table's own stream exactly as
//! the codec wrote them.

use crate::cases::*;
use shop_domain::{Coupon, CouponId, CouponKind, CouponStatus, Money, OrderCommand, OrderStatus};
use shop_store::{ConflictReason, Store, TxItem, keys};

pub async fn events_are_written_once_and_leave_the_outbox_index(store: Store) {
    let (o, e1) = placed("o1", "u1", 900);
    run(
        &store,
        vec![
            store.orders().op_create(&o).unwrap(),
            store.outbox().op_put(&e1, "corr", Some("00-abc-def-01"), &before()).unwrap(),
        ],
    )
    .await
    .unwrap();
    let (o2, later) = o.execute(&OrderCommand::Cancel { refund_account: false }, T0.plus_secs(5)).unwrap();
    run(
        &store,
        vec![
            store.orders().op_update(1, &o2).unwrap(),
            store.outbox().op_put(&later[0], "corr", None, &before()).unwrap(),
        ],
    )
    .await
    .unwrap();
    assert_conflict(
        run(&store, vec![store.outbox().op_put(&e1, "corr", None, &before()).unwrap()]).await,
        TxItem::Event("o1#1".into()),
        ConflictReason::ConditionFailed,
    );
    let events = store.outbox().events_of(&o.id).await.unwrap();
    assert_eq!(events.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), vec!["o1#1", "o1#2"]);
    assert_eq!(events[1].detail_type, "OrderCancelled");
    let detail: shop_domain::EventDetail = serde_json::from_str(&events[0].detail).unwrap();
    assert_eq!(detail.traceparent.as_deref(), Some("00-abc-def-01"));
    assert_eq!(detail.to_event(&events[0].detail_type).unwrap(), e1);

    let pending = store.outbox().pending(10).await.unwrap();
    assert_eq!(pending.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), vec!["o1#1", "o1#2"]);
    // The local stream's checkpoint: one call for the batch; an item that
    // no longer exists (TTL-deleted) is left out, not recreated, and does
    // not keep the others pending.
    let gone = keys::event(&oid("gone"), 1);
    let batch = vec![(pending[0].pk.clone(), pending[0].sk.clone()), gone.clone()];
    store.outbox().clear_pending(&batch, T0).await.unwrap();
    assert!(raw_item(&store, gone).await.is_none());
    let pending = store.outbox().pending(10).await.unwrap();
    assert_eq!(pending.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), vec!["o1#2"]);
    let first = store.outbox().events_of(&o.id).await.unwrap().remove(0);
    assert!(!first.pending);
    assert_eq!(first.published_at, Some(T0));
    // A republish makes it pending again; its first hand-over keeps its date.
    store.outbox().mark_pending(&first).await.unwrap();
    store.outbox().clear_pending(&[(first.pk.clone(), first.sk.clone())], T0.plus_secs(9)).await.unwrap();
    let again = store.outbox().events_of(&o.id).await.unwrap().remove(0);
    assert_eq!((again.pending, again.published_at, again.republishes), (false, Some(T0), Some(1)));
    // More than one transaction's worth of events, cleared in one call.
    let many: Vec<(String, String)> = (0..150).map(|i| keys::event(&oid(&format!("m{i}")), 1)).collect();
    store.outbox().clear_pending(&many, T0).await.unwrap();
    // Outbox items expire 30 days after they were written.
    let raw = raw_item(&store, keys::event(&o.id, 1)).await.unwrap();
    let ttl: i64 = shop_store::attr::get_n(&raw, "ttl").unwrap();
    assert_eq!(ttl, T0.seconds() + 30 * 86_400);
}

/// Order `name` placed at `at`, with its `OrderPlaced` in the event log: the event's id.
async fn placed_at(store: &Store, name: &str, at: shop_domain::Timestamp) -> String {
    let (mut o, mut e) = placed(name, "u1", 900);
    o.created_at = at;
    e.occurred_at = at;
    run(store, vec![store.orders().op_create(&o).unwrap(), store.outbox().op_put(&e, "c", None, &before()).unwrap()])
        .await
        .unwrap();
    e.event_id().to_string()
}

pub async fn the_event_log_reads_every_shard_of_a_day_oldest_first(store: Store) {
    // Placed a second apart over two days, so the log interleaves its shards.
    let mut placed_ids = Vec::new();
    for n in 0..24 {
        placed_ids.push(placed_at(&store, &format!("log{n}"), T0.plus_secs(n * 7_200)).await);
    }
    // One event written before the log was sharded, in the day's old partition.
    let legacy = keys::event(&oid("log0"), 1);
    store
        .client()
        .update_item()
        .table_name(store.table())
        .key("pk", shop_store::attr::s(legacy.0))
        .key("sk", shop_store::attr::s(legacy.1))
        .update_expression("SET dueShard = :d")
        .expression_attribute_values(":d", shop_store::attr::s(keys::legacy_event_log_shard(T0)))
        .send()
        .await
        .unwrap();
    let shards: std::collections::BTreeSet<String> =
        (1..24).map(|n| keys::event_log_shard(T0, &oid(&format!("log{n}")))).collect();
    assert!(shards.len() > 1, "the orders fall on several shards: {shards:?}");

    let all = store.outbox().since(T0, T0.plus_secs(3 * 86_400)).await.unwrap();
    assert_eq!(all.iter().map(|e| e.event_id.clone()).collect::<Vec<_>>(), placed_ids, "every event, oldest first");
    let later = store.outbox().since(T0.plus_secs(12 * 7_200), T0.plus_secs(3 * 86_400)).await.unwrap();
    assert_eq!(later.iter().map(|e| e.event_id.clone()).collect::<Vec<_>>(), placed_ids[12..].to_vec());
}

/// A capped search of the event log, resumed where each read stopped,
/// finds every match exactly once, newest first, however the shards
/// interleave: a partition cut short marks where the answer stops being
/// complete, and nothing older than that is answered before the next read.
pub async fn a_capped_search_of_the_event_log_pages_through_every_shard_without_a_gap(store: Store) {
    // The newest ten all on one shard, thirty older ones on the others:
    // reading a few of every partition, the newest of the other shards
    // are far older than what that one shard still holds.
    let shard_of = |id: &str| keys::event_log_shard(T0, &oid(id));
    let crowded = shard_of("win0");
    let names: Vec<String> = (0..1000).map(|n| format!("win{n}")).collect();
    let newest: Vec<&String> = names.iter().filter(|n| shard_of(n) == crowded).take(10).collect();
    let older: Vec<&String> = names.iter().filter(|n| shard_of(n) != crowded).take(30).collect();
    let mut placed_ids = Vec::new();
    for (n, name) in older.iter().chain(newest.iter()).enumerate() {
        let at = shop_domain::Timestamp::from_millis(T0.millis() + i64::try_from(n).unwrap() * 100);
        placed_ids.push((at, placed_at(&store, name, at).await));
    }
    let outbox = store.outbox();
    let mut window = shop_store::outbox::Window { after: T0, before: T0.plus_secs(60) };
    let mut seen = std::collections::BTreeSet::new();
    let mut reads = 0;
    loop {
        reads += 1;
        assert!(reads < 100, "the reads end");
        let found = outbox
            .search_window(shop_store::outbox::EventField::DetailType, "OrderPlaced", window, 7, 10)
            .await
            .unwrap();
        let times: Vec<_> = found.events.iter().map(|e| e.occurred_at).collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
        if let Some(at) = found.complete_after {
            assert!(times.iter().all(|t| *t > at), "nothing at or before where the read stopped");
        }
        seen.extend(found.events.iter().map(|e| (e.occurred_at, e.event_id.clone())));
        // Resume at the older of where the read stopped and the last event
        // answered (events sharing that millisecond are answered again).
        window.before = match (found.events.len() == 7, found.complete_after, found.events.last()) {
            (true, _, Some(last)) => last.occurred_at,
            (false, Some(at), _) => at,
            _ => break,
        };
    }
    let expected: std::collections::BTreeSet<_> = placed_ids.into_iter().collect();
    assert_eq!(seen, expected, "every event, none skipped ({reads} reads)");
    assert!(reads > 3, "the cap cut the reads: {reads}");
}

pub async fn the_console_finds_events_by_correlation_status_and_failure(store: Store) {
    let (o1, placed1) = placed("o1", "u1", 900);
    let (o2, placed2) = placed("o2", "u1", 900);
    let new = before();
    run(
        &store,
        vec![store.orders().op_create(&o1).unwrap(), store.outbox().op_put(&placed1, "corr-a", None, &new).unwrap()],
    )
    .await
    .unwrap();
    run(
        &store,
        vec![store.orders().op_create(&o2).unwrap(), store.outbox().op_put(&placed2, "corr-b", None, &new).unwrap()],
    )
    .await
    .unwrap();
    let (cancelled, events) = o1.execute(&OrderCommand::Cancel { refund_account: false }, T0.plus_secs(5)).unwrap();
    let was = shop_store::outbox::Before { status: Some(o1.status), placed_at: o1.created_at };
    run(
        &store,
        vec![
            store.orders().op_update(o1.version, &cancelled).unwrap(),
            store.outbox().op_put(&events[0], "corr-b", None, &was).unwrap(),
        ],
    )
    .await
    .unwrap();

    let ids = |events: Vec<shop_store::outbox::StoredEvent>| events.into_iter().map(|e| e.event_id).collect::<Vec<_>>();
    let now = T0.plus_secs(60);
    use shop_store::outbox::EventField::CorrelationId;
    let outbox = store.outbox();
    let by = |c: &'static str| outbox.search(CorrelationId, c, now, 2, 10, 1_000);
    assert_eq!(ids(by("corr-a").await.unwrap().0), vec!["o1#1"]);
    assert_eq!(ids(by("corr-b").await.unwrap().0), vec!["o1#2", "o2#1"], "newest first");
    assert!(by("corr-c").await.unwrap().0.is_empty());

    let (entered, cut) = store.outbox().entering("CANCELLED", now, 2, 10, 1_000).await.unwrap();
    assert_eq!((ids(entered), cut), (vec!["o1#2".to_owned()], false));
    let (entered, _) = store.outbox().entering("PENDING_PAYMENT", now, 2, 10, 1_000).await.unwrap();
    assert_eq!(ids(entered), vec!["o2#1", "o1#1"]);
    let (_, cut) = store.outbox().entering("PAID", now, 2, 10, 2).await.unwrap();
    assert!(cut, "a read cap below the log's size cuts the search short");
    let raw = raw_item(&store, keys::event(&o1.id, 2)).await.unwrap();
    let stored = shop_store::outbox::codec::from_item(&raw).unwrap();
    assert_eq!(
        (stored.status_from.as_deref(), stored.status_to.as_deref()),
        (Some("PENDING_PAYMENT"), Some("CANCELLED"))
    );

    use shop_store::saga::Outcome;
    let outcome = |status: &str| Outcome {
        consumer: "analytics".into(),
        event_id: "o1#2".into(),
        detail_type: "OrderCancelled".into(),
        status: status.into(),
        attempts: 0,
        detail: Some("the platform refused".into()),
        at: T0,
        dead_lettered_at: None,
    };
    store.saga().put(&o1.id, 2, &outcome("FAILED")).await.unwrap();
    let failures = store.saga().failures(10).await.unwrap();
    assert_eq!(failures.iter().map(|f| (f.order_id.as_str(), f.outcome.attempts)).collect::<Vec<_>>(), vec![("o1", 1)]);
    store.saga().put(&o1.id, 2, &outcome("FAILED")).await.unwrap();
    assert_eq!(store.saga().failures(10).await.unwrap()[0].outcome.attempts, 2, "listed once, attempts counted");
    // Its last allowed receive failed: dead-lettered, listed apart.
    assert!(store.saga().dead_lettered(&o1.id, 2, "analytics", T0.plus_secs(9)).await.unwrap());
    assert!(store.saga().failures(10).await.unwrap().is_empty(), "no longer retrying");
    let dead = store.saga().dead_letters(10).await.unwrap();
    assert_eq!((dead.len(), dead[0].outcome.dead_lettered_at), (1, Some(T0.plus_secs(9))));
    assert!(!store.saga().dead_lettered(&o1.id, 2, "coupon", T0).await.unwrap(), "no such failure: nothing marked");
    // Redriven, it fails again: retrying once more, no longer dead.
    store.saga().put(&o1.id, 2, &outcome("FAILED")).await.unwrap();
    assert!(store.saga().dead_letters(10).await.unwrap().is_empty());
    assert_eq!(store.saga().failures(10).await.unwrap()[0].outcome.dead_lettered_at, None);
    store.saga().put(&o1.id, 2, &outcome("DONE")).await.unwrap();
    assert!(store.saga().failures(10).await.unwrap().is_empty(), "done: off the list");
    assert!(!store.saga().dead_lettered(&o1.id, 2, "analytics", T0).await.unwrap(), "done stays done");

    let u = uid("u1");
    run(&store, store.points().ops_move(Money::ZERO, &entry("u1", "t0", 10, 10, 0)).unwrap().into()).await.unwrap();
    run(&store, store.points().ops_move(m(10), &entry("u1", "t1", 20, 30, 100)).unwrap().into()).await.unwrap();
    run(&store, store.points().ops_move(m(30), &entry("u1", "t2", 30, 60, 200)).unwrap().into()).await.unwrap();
    let between = store.points().ledger_between(&u, T0.plus_secs(50), T0.plus_secs(200)).await.unwrap();
    assert_eq!(between.iter().map(|e| e.delta).collect::<Vec<_>>(), vec![20, 30], "both ends included");
}

/// One event of every kind an order has (the match has no `_` arm: a new
/// kind does not compile until it is here), each as a use case writes it.
fn every_order_event() -> Vec<shop_domain::OrderEvent> {
    use shop_domain::{OrderEventKind as K, OrderLine, PaymentKey, PaymentMethod};
    let (user, key) = (uid("u1"), PaymentKey::parse("pk-1").unwrap());
    let lines = vec![OrderLine {
        product_id: pid("p1"),
        name: "Tea \"Sencha\" 한국".into(),
        unit_price: m(12_000),
        quantity: q(2),
        line_total: m(24_000),
    }];
    let coupon = Some(CouponId::parse("c1").unwrap());
    let sale = shop_domain::SaleId::parse("flash-1").unwrap();
    let kinds = vec![
        K::OrderPlaced {
            user_id: user.clone(),
            lines: lines.clone(),
            coupon_id: coupon.clone(),
            subtotal: m(24_000),
            discount: m(1_000),
            points_used: m(500),
            amount_due: m(22_500),
            expires_at: T0.plus_secs(900),
            sale_id: None,
        },
        K::PaymentConfirmationStarted {
            user_id: user.clone(),
            payment_key: key.clone(),
            method: PaymentMethod::Card,
            amount: m(22_500),
        },
        K::VirtualAccountIssued {
            user_id: user.clone(),
            payment_key: key.clone(),
            amount: m(22_500),
            due_at: Some(T0.plus_secs(86_400)),
            sale_id: Some(sale.clone()),
        },
        K::OrderPaid {
            user_id: user.clone(),
            payment_key: Some(key.clone()),
            method: PaymentMethod::VirtualAccount,
            amount: m(22_500),
            coupon_id: coupon.clone(),
            sale_id: Some(sale.clone()),
        },
        K::PaymentFailed {
            user_id: user.clone(),
            payment_key: key.clone(),
            code: "REJECT_CARD_COMPANY".into(),
            message: "declined".into(),
        },
        K::PaymentOrphaned {
            user_id: user.clone(),
            payment_key: key.clone(),
            amount: m(22_500),
            order_status: OrderStatus::Expired,
        },
        K::OrderExpired {
            user_id: user.clone(),
            coupon_id: coupon.clone(),
            lines: lines.clone(),
            points_released: m(500),
            payment_key: Some(key.clone()),
            sale_id: Some(sale),
        },
        K::OrderCancelled {
            user_id: user.clone(),
            coupon_id: None,
            lines: lines.clone(),
            points_released: Money::ZERO,
            payment_key: None,
            sale_id: None,
        },
        K::RefundRequested {
            user_id: user.clone(),
            payment_key: Some(key.clone()),
            method: PaymentMethod::Card,
            amount: m(22_500),
            points_used: m(500),
            coupon_id: coupon.clone(),
            refund_number: Some(2),
            lines: vec![shop_domain::order::RefundLine::whole(&lines[0])],
            refund_account: true,
        },
        K::OrderRefunded {
            user_id: user.clone(),
            coupon_id: coupon,
            amount: m(22_500),
            points_refunded: m(500),
            refund_number: Some(2),
        },
        K::PartialRefundRequested {
            user_id: user.clone(),
            refund_number: 1,
            payment_key: Some(key.clone()),
            method: PaymentMethod::Card,
            lines: vec![shop_domain::order::RefundLine::whole(&lines[0])],
            cash: m(9_000),
            points: m(1_000),
            discount_withdrawn: m(500),
            refund_account: true,
        },
        K::OrderPartiallyRefunded {
            user_id: user.clone(),
            refund_number: 1,
            lines: vec![shop_domain::order::RefundLine::whole(&lines[0])],
            cash: m(9_000),
            points: m(1_000),
        },
        K::RefundFailed {
            user_id: user,
            refund_number: 3,
            code: "NOT_CANCELABLE_AMOUNT".into(),
            message: "more than remains".into(),
            order_status: OrderStatus::PartiallyRefunded,
        },
    ];
    let index = |k: &K| match k {
        K::OrderPlaced { .. } => 0,
        K::PaymentConfirmationStarted { .. } => 1,
        K::VirtualAccountIssued { .. } => 2,
        K::OrderPaid { .. } => 3,
        K::PaymentFailed { .. } => 4,
        K::PaymentOrphaned { .. } => 5,
        K::OrderExpired { .. } => 6,
        K::OrderCancelled { .. } => 7,
        K::RefundRequested { .. } => 8,
        K::OrderRefunded { .. } => 9,
        K::PartialRefundRequested { .. } => 10,
        K::OrderPartiallyRefunded { .. } => 11,
        K::RefundFailed { .. } => 12,
    };
    let covered: std::collections::BTreeSet<usize> = kinds.iter().map(index).collect();
    assert_eq!(covered.len(), 13, "every kind once");
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| shop_domain::OrderEvent {
            order_id: oid(&format!("o{i}")),
            aggregate_version: i as u64 + 1,
            occurred_at: T0.plus_secs(i as i64),
            kind,
        })
        .collect()
}

pub async fn every_event_reads_back_from_the_tables_own_stream_as_it_was_written(store: Store) {
    use shop_store::outbox::{Before, StoredEvent, codec};
    use shop_store::schema::{Streams, ensure_table};
    // A table with a stream (NEW_IMAGE), as the template declares it.
    let table = format!("{}-streamed", store.table());
    ensure_table(store.client(), &table, Streams::Enabled).await.unwrap();
    let store = Store::new(store.client().clone(), table.clone());

    let events = every_order_event();
    // What each write means to carry: the codec's event of the use case's values.
    let mut intended: Vec<StoredEvent> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let before = Before { status: (i > 0).then_some(OrderStatus::PendingPayment), placed_at: T0 };
        let (corr, tp) = (format!("corr-{i}"), Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
        run(&store, vec![store.outbox().op_put(e, &corr, tp, &before).unwrap()]).await.unwrap();
        intended.push(codec::order_event(e, &corr, tp, &before).unwrap());
    }
    let coupon = Coupon {
        id: CouponId::parse("claim-c1").unwrap(),
        owner: uid("u9"),
        kind: CouponKind::Percent(10),
        min_order_amount: m(1_000),
        expires_at: T0.plus_secs(86_400),
        status: CouponStatus::Issued,
    };
    let campaign = shop_domain::CampaignId::parse("rush").unwrap();
    let issued = shop_domain::campaign::CouponIssued::new("rush#u9".into(), &campaign, &coupon, T0, "corr-claim");
    run(&store, vec![store.outbox().op_put_coupon_issued(&issued, T0).unwrap()]).await.unwrap();
    intended.push(codec::coupon_issued(&issued, T0).unwrap());
    // Published (the local emulation's checkpoint), then made pending
    // again (a republish): a MODIFY image.
    let first = store.outbox().events_of(&events[0].order_id).await.unwrap().remove(0);
    store.outbox().clear_pending(&[(first.pk.clone(), first.sk.clone())], T0.plus_secs(60)).await.unwrap();
    store.outbox().mark_pending(&first).await.unwrap();

    let mut written: Vec<StoredEvent> = Vec::new();
    for e in &events {
        written.extend(store.outbox().events_of(&e.order_id).await.unwrap());
    }
    written.extend(store.outbox().events_in(&keys::claim_pk(&campaign, &coupon.owner)).await.unwrap());
    assert_eq!(written.len(), 14);

    let images = shop_tests::stream_images(store.client(), &table).await;
    let from_stream: Vec<StoredEvent> =
        images.iter().filter_map(|(_, image)| codec::from_stream_image(image).unwrap()).collect();
    // Every write's image is for the publisher except the one that cleared
    // `pending`; the last image of each event is the item as it is now.
    assert_eq!(from_stream.len(), 15, "14 inserts and the republish; not the publication");
    let inserts: Vec<&StoredEvent> = from_stream.iter().take(14).collect();
    assert_eq!(
        inserts,
        intended.iter().collect::<Vec<_>>(),
        "each insert's image is the event as the use case meant it"
    );
    assert_eq!(intended[0].correlation_id, "corr-0");
    let mut last: std::collections::BTreeMap<String, StoredEvent> = std::collections::BTreeMap::new();
    for e in from_stream {
        last.insert(e.event_id.clone(), e);
    }
    let mut written_by_id = written.clone();
    written_by_id.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    assert_eq!(last.into_values().collect::<Vec<_>>(), written_by_id, "what the stream carries is what was written");
    // And each order event's detail is the domain event again.
    for e in &events {
        let stored = written.iter().find(|w| w.event_id == e.event_id().to_string()).unwrap();
        let detail: shop_domain::EventDetail = serde_json::from_str(&stored.detail).unwrap();
        assert_eq!(&detail.to_event(&stored.detail_type).unwrap(), e);
    }
}
