//! State changes → outbox → bus → SQS-like queues → consumers, against the
//! local stack: nothing lost, nothing doubled, failures contained.

use serde_json::json;
use shop_local::emulate::queue::Queues;
use shop_tests::{MAX_RECEIVE, TestApp, eventually, spawn_app};

const WITH_COUPON: &str = r#"{"items":[{"productId":"p1","quantity":1}],"couponId":"c1"}"#;

async fn pay_rich_with_points(app: &TestApp) -> String {
    let (order_id, _) = app.order("rich", r#"{"items":[{"productId":"p1","quantity":1}]}"#).await;
    let (status, body) = app.post("rich", "/payments/points", json!({"orderId": order_id})).await;
    assert_eq!((status, &body["status"]), (200, &json!("PAID")), "{body}");
    order_id
}

#[tokio::test]
async fn a_paid_order_uses_its_coupon_and_is_exported_exactly_once() {
    let app = spawn_app().await;
    // Card, with a coupon.
    let (order_id, amount) = app.order("u1", WITH_COUPON).await;
    app.pay_by_card("u1", &order_id, amount).await;
    eventually(20, "coupon USED", || async { (app.coupon_status("c1").await == "USED").then_some(()) }).await;
    eventually(20, "exported", || async { (!app.exported(&order_id).await.is_empty()).then_some(()) }).await;
    // Points, no coupon.
    let paid = pay_rich_with_points(&app).await;
    eventually(20, "exported", || async { (!app.exported(&paid).await.is_empty()).then_some(()) }).await;
    app.settled().await;
    // Card: placed #1, confirming #2, paid #3. Points: placed #1, paid #2.
    for (order, paid_version) in [(&order_id, 3), (&paid, 2)] {
        let exported = app.exported(order).await;
        assert_eq!(exported.len(), 1, "{exported:?}");
        assert_eq!(exported[0].detail_type, "OrderPaid");
        assert_eq!(exported[0].event_id, format!("{order}#{paid_version}"));
    }
    // GET /coupons shows it USED by that order.
    let resp = app.http.get(app.url("/coupons")).bearer_auth(app.stack.token("u1")).send().await.unwrap();
    let coupons: serde_json::Value = resp.json().await.unwrap();
    let c1 = coupons["coupons"].as_array().unwrap().iter().find(|c| c["couponId"] == "c1").unwrap().clone();
    assert_eq!((c1["status"].as_str(), c1["orderId"].as_str()), (Some("USED"), Some(order_id.as_str())));
    // The saga timeline shows each consumer's outcome.
    let resp = app
        .http
        .get(app.url(&format!("/orders/{order_id}/timeline")))
        .bearer_auth(app.stack.token("u1"))
        .send()
        .await
        .unwrap();
    let timeline: serde_json::Value = resp.json().await.unwrap();
    let steps = timeline["timeline"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["consumer"] == "coupon" && s["status"] == "DONE"), "{timeline}");
    assert!(steps.iter().any(|s| s["consumer"] == "analytics" && s["status"] == "DONE"), "{timeline}");
    let other = app
        .http
        .get(app.url(&format!("/orders/{order_id}/timeline")))
        .bearer_auth(app.stack.token("u2"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

#[tokio::test]
async fn a_data_platform_outage_delays_the_export_only() {
    let app = spawn_app().await;
    app.http
        .post(format!("{}/sim/faults", app.stack.sink_url()))
        .json(&json!({"fault": "error", "count": 3}))
        .send()
        .await
        .unwrap();
    let order_id = pay_rich_with_points(&app).await; // PAID at once
    eventually(20, "exported after retries", || async { (!app.exported(&order_id).await.is_empty()).then_some(()) })
        .await;
    app.settled().await;
    let all = app.stack.sink.deliveries_of(&order_id).await.expect("deliveries");
    assert_eq!(all.iter().map(|d| d.status).collect::<Vec<_>>(), vec![500, 500, 500, 200], "{all:?}");
    assert_eq!(app.exported(&order_id).await.len(), 1);
}

#[tokio::test]
async fn a_data_platform_down_for_good_fills_the_dlq_and_a_redrive_delivers_once() {
    let app = spawn_app().await;
    app.http
        .post(format!("{}/sim/faults", app.stack.sink_url()))
        .json(&json!({"fault": "error", "count": -1}))
        .send()
        .await
        .unwrap();
    let order_id = pay_rich_with_points(&app).await;
    let dlq = eventually(30, "analytics DLQ", || async {
        let d = app.dlq("analytics").await;
        (!d.is_empty()).then_some(d)
    })
    .await;
    assert_eq!(dlq[0].event_id, format!("{order_id}#2"));
    assert_eq!(dlq[0].receives, MAX_RECEIVE + 1);
    assert!(app.exported(&order_id).await.is_empty());
    assert_eq!(app.status(&order_id).await, "PAID");
    // The platform recovers; the operator redrives.
    app.http.delete(format!("{}/sim/faults", app.stack.sink_url())).send().await.unwrap();
    assert_eq!(shop_local::ops::dlq_redrive(&app.stack.app, "analytics").await.unwrap(), 1);
    eventually(20, "exported after redrive", || async { (!app.exported(&order_id).await.is_empty()).then_some(()) })
        .await;
    app.settled().await;
    assert_eq!(app.exported(&order_id).await.len(), 1);
    assert!(app.dlq("analytics").await.is_empty());
}

#[tokio::test]
async fn a_coupon_outage_never_touches_the_order_and_catches_up_after_redrive() {
    let app = spawn_app().await;
    app.stack.app.chaos.arm("consumer.coupon", -1);
    let (order_id, amount) = app.order("u1", WITH_COUPON).await;
    let paid = app.pay_by_card("u1", &order_id, amount).await;
    assert_eq!(paid["status"], "PAID");
    eventually(30, "coupon DLQ", || async { (!app.dlq("coupon").await.is_empty()).then_some(()) }).await;
    assert_eq!(app.coupon_status("c1").await, "HELD");
    assert_eq!(app.status(&order_id).await, "PAID");
    assert_eq!(app.exported(&order_id).await.len(), 1, "other consumers are not held up");
    app.stack.app.chaos.clear();
    shop_local::ops::dlq_redrive(&app.stack.app, "coupon").await.unwrap();
    eventually(20, "coupon USED", || async { (app.coupon_status("c1").await == "USED").then_some(()) }).await;
}

#[tokio::test]
async fn partial_put_events_failures_resend_only_the_failed_entries() {
    let app = spawn_app().await;
    app.stack.bus.fail_next_entries(3);
    let mut orders = Vec::new();
    for _ in 0..5 {
        orders.push(pay_rich_with_points(&app).await);
    }
    app.settled().await;
    let seen = app.stack.bus.entries_seen.load(std::sync::atomic::Ordering::SeqCst);
    let failed = app.stack.bus.entries_failed.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(failed, 3);
    // 5 orders x (OrderPlaced, OrderPaid): each accepted exactly once, plus the 3 refused tries.
    assert_eq!(seen, 10 + 3);
    let archived = archive(&app).await;
    for order in &orders {
        for v in [1, 2] {
            let id = format!("{order}#{v}");
            assert_eq!(archived.iter().filter(|a| a.event_id == id).count(), 1, "{id}");
        }
        assert_eq!(app.exported(order).await.len(), 1);
    }
}

#[tokio::test]
async fn duplicates_and_reordering_change_nothing() {
    let app = spawn_app().await;
    // A saga with work for every consumer: coupon order paid, then cancelled → refunded.
    let (order_id, amount) =
        app.order("u1", r#"{"items":[{"productId":"p1","quantity":2}],"couponId":"c1","pointsToUse":1000}"#).await;
    app.pay_by_card("u1", &order_id, amount).await;
    let (status, _) = app.post("u1", &format!("/orders/{order_id}/cancel"), json!({})).await;
    assert_eq!(status, 200);
    app.wait_status(&order_id, "REFUNDED").await;
    app.settled().await;
    let before = snapshot(&app, &order_id).await;
    assert_eq!((before.0.as_str(), before.1, before.2, before.3, before.4), ("REFUNDED", "ISSUED", 5_000, 100, 2));

    // Every archived event of the order, twice, newest first, to every consumer its rule names.
    let archived = archive(&app).await;
    let mut mine: Vec<_> = archived.into_iter().filter(|a| a.event_id.starts_with(&format!("{order_id}#"))).collect();
    mine.reverse();
    assert!(mine.len() >= 5, "{mine:?}");
    for _ in 0..2 {
        for a in &mine {
            let event: serde_json::Value = serde_json::from_str(&a.event).unwrap();
            app.stack.bus.route(&event, None).await.unwrap();
        }
    }
    app.settled().await;
    assert_eq!(snapshot(&app, &order_id).await, before);
    assert!(
        app.dlq("coupon").await.is_empty()
            && app.dlq("compensation").await.is_empty()
            && app.dlq("analytics").await.is_empty()
    );
}

type Snapshot = (String, &'static str, u64, u64, usize, Vec<serde_json::Value>, Vec<String>);

async fn snapshot(app: &TestApp, order_id: &str) -> Snapshot {
    (
        app.status(order_id).await,
        app.coupon_status("c1").await,
        app.points("u1").await,
        app.stock("p1").await,
        app.exported(order_id).await.len(),
        app.pg_payments(order_id).await,
        app.event_types(order_id).await,
    )
}

/// Everything archived in the last day (the archive runs on the wall clock).
async fn archive(app: &TestApp) -> Vec<shop_local::emulate::queue::Archived> {
    let now = shop_app::clock::Clock::now(&shop_app::clock::SystemClock);
    Queues(app.store()).archived_between(now.plus_secs(-86_400), now.plus_secs(60)).await.unwrap()
}

/// The saga-log entry is the consumer's idempotency record (ADR 0023): a
/// duplicate of a finished event stops at its claim and leaves the entry as
/// it was; with the entry gone, the event is handled again, and the data
/// platform, which deduplicates by the event id, accepts it once.
#[tokio::test]
async fn a_duplicate_stops_at_the_saga_log_and_a_lost_entry_is_handled_again() {
    let app = spawn_app().await;
    let order_id = pay_rich_with_points(&app).await;
    eventually(20, "exported", || async { (!app.exported(&order_id).await.is_empty()).then_some(()) }).await;
    app.settled().await;
    let id = shop_domain::OrderId::parse(order_id.as_str()).unwrap();
    let outcome = |consumer: &'static str| {
        let app = &app;
        let id = id.clone();
        async move {
            let all = app.store().saga().outcomes_of(&id).await.unwrap();
            all.into_iter().find(|o| o.consumer == consumer && o.detail_type == "OrderPaid").map(|o| o.status)
        }
    };
    assert_eq!(outcome("analytics").await.as_deref(), Some("DONE"));
    let paid =
        app.store().outbox().events_of(&id).await.unwrap().into_iter().find(|e| e.detail_type == "OrderPaid").unwrap();
    let archived = archive(&app).await;
    let again = archived.iter().find(|a| a.event_id == paid.event_id).expect("archived");
    let redeliver = || async { app.stack.bus.route(&serde_json::from_str(&again.event).unwrap(), None).await.unwrap() };
    // A duplicate leaves a recorded outcome as it was.
    redeliver().await;
    app.settled().await;
    assert_eq!(outcome("analytics").await.as_deref(), Some("DONE"));
    // The analytics entry was lost with the process.
    let version: u64 = paid.event_id.rsplit('#').next().unwrap().parse().unwrap();
    app.store()
        .client()
        .delete_item()
        .table_name(app.store().table())
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("ORDER#{order_id}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(shop_store::keys::outcome_sk(version, "analytics")))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome("analytics").await, None);
    // SQS delivers the message again.
    redeliver().await;
    app.settled().await;
    assert_eq!(outcome("analytics").await.as_deref(), Some("DONE"));
    // Every delivery the platform received for the event, duplicates included.
    let received: Vec<_> = app.stack.sink.deliveries_of(&order_id).await.unwrap();
    let received: Vec<_> = received.into_iter().filter(|d| d.event_id == paid.event_id).collect();
    assert_eq!(received.iter().filter(|d| !d.duplicate).count(), 1, "accepted once: {received:?}");
    assert_eq!(received.len(), 2, "the duplicate before the loss stopped at its claim: {received:?}");
}

/// Through the failpoint the chaos soak uses: the analytics consumer
/// "dies" after recording its outcome, before the message is deleted; the
/// redelivery finds the event finished at its claim, and nothing is
/// exported twice or recorded again.
#[tokio::test]
async fn a_consumer_dying_before_the_delete_leaves_its_record_as_it_was() {
    let app = spawn_app().await;
    app.stack.app.chaos.arm("consumer.analytics.undeleted", 1);
    let order_id = pay_rich_with_points(&app).await;
    let id = shop_domain::OrderId::parse(order_id.as_str()).unwrap();
    let outcome = eventually(20, "the analytics outcome recorded", || async {
        let all = app.store().saga().outcomes_of(&id).await.unwrap();
        all.into_iter().find(|o| o.consumer == "analytics" && o.detail_type == "OrderPaid" && o.status != "FAILED")
    })
    .await;
    app.settled().await;
    assert!(!app.stack.app.chaos.fail("consumer.analytics.undeleted"), "the failpoint fired");
    let all = app.store().saga().outcomes_of(&id).await.unwrap();
    let outcome = all.into_iter().find(|o| o.consumer == outcome.consumer && o.event_id == outcome.event_id).unwrap();
    assert_eq!((outcome.status.as_str(), outcome.attempts), ("DONE", 1), "{outcome:?}");
    let exported = app.exported(&order_id).await;
    assert_eq!(exported.iter().filter(|d| d.detail_type == "OrderPaid").count(), 1, "{exported:?}");
}

/// A bus that only records what it is given.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<shop_app::ports::BusEntry>>);

#[async_trait::async_trait]
impl shop_app::ports::EventBus for Recorder {
    async fn put_events(
        &self,
        entries: &[shop_app::ports::BusEntry],
    ) -> anyhow::Result<Vec<shop_app::ports::EntryResult>> {
        let mut seen = self.0.lock().expect("recorder");
        seen.extend(entries.iter().cloned());
        Ok(entries.iter().map(|e| shop_app::ports::EntryResult::Accepted { event_id: e.detail_type.clone() }).collect())
    }
}

/// The walk of an event as AWS runs it (ADR 0018): what the use cases wrote,
/// read back from the table's own stream (NEW_IMAGE) and given to the
/// stream publisher, is what reaches the bus — every event once, as stored.
#[tokio::test]
async fn what_the_use_cases_write_reaches_the_bus_from_the_tables_own_stream() {
    use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord};
    let app = shop_tests::spawn_app_streamed().await;
    // Placed with a coupon and points, paid by card, then refunded.
    let body = r#"{"items":[{"productId":"p1","quantity":1}],"couponId":"c1","pointsToUse":1000}"#;
    let (refunded, due) = app.order("u1", body).await;
    app.pay_by_card("u1", &refunded, due).await;
    let (status, answer) = app.post("u1", &format!("/orders/{refunded}/cancel"), json!({})).await;
    assert_eq!(status, 200, "{answer}");
    app.wait_status(&refunded, "REFUNDED").await;
    // Placed, then cancelled before payment; and a first-come coupon claimed.
    let (cancelled, _) = app.order("u2", r#"{"items":[{"productId":"p2","quantity":1}]}"#).await;
    let (status, answer) = app.post("u2", &format!("/orders/{cancelled}/cancel"), json!({})).await;
    assert_eq!(status, 200, "{answer}");
    let (status, _, answer) = app.claim("u2", "welcome", "claim-welcome-u2").await;
    assert_eq!(status, 201, "{answer}");
    app.settled().await;

    // What the use cases wrote.
    let mut written = Vec::new();
    for order in [&refunded, &cancelled] {
        let id = shop_domain::OrderId::parse(order.as_str()).unwrap();
        written.extend(app.store().outbox().events_of(&id).await.unwrap());
    }
    let claim = shop_store::keys::claim_pk(
        &shop_domain::CampaignId::parse("welcome").unwrap(),
        &shop_domain::UserId::parse("u2").unwrap(),
    );
    written.extend(app.store().outbox().events_in(&claim).await.unwrap());
    let kinds: std::collections::BTreeSet<&str> = written.iter().map(|e| e.detail_type.as_str()).collect();
    for kind in [
        "OrderPlaced",
        "PaymentConfirmationStarted",
        "OrderPaid",
        "RefundRequested",
        "OrderRefunded",
        "OrderCancelled",
        "CouponIssued",
    ] {
        assert!(kinds.contains(kind), "{kind} not written: {kinds:?}");
    }

    // Every record of the table's stream, through the stream publisher.
    let images = shop_tests::stream_images(app.store().client(), app.store().table()).await;
    let mut stream = StreamEvent::default();
    for (i, (name, image)) in images.into_iter().enumerate() {
        let mut record = EventRecord::default();
        record.event_name = name;
        record.change.new_image = serde_json::from_value(image).unwrap();
        record.change.sequence_number = Some(format!("{i:021}"));
        stream.records.push(record);
    }
    let bus = std::sync::Arc::new(Recorder::default());
    let publisher = shop_app::events::publisher::Publisher { bus: bus.clone() };
    let (response, report) = publisher.publish(&app.stack.app, stream).await;
    assert!(response.batch_item_failures.is_empty());

    let entry =
        |source: &str, detail_type: &str, detail: &str| (source.to_owned(), detail_type.to_owned(), detail.to_owned());
    let mut sent: Vec<_> = bus.0.lock().unwrap().iter().map(|e| entry(&e.source, &e.detail_type, &e.detail)).collect();
    let mut expected: Vec<_> = written.iter().map(|e| entry(&e.source, &e.detail_type, &e.detail)).collect();
    sent.sort();
    expected.sort();
    assert_eq!(sent, expected, "each event reaches the bus once, as the use case wrote it");
    assert_eq!(report.published, written.len());
    // The request's trace, where the write had one, rides along to the bus
    // (X-Ray's TraceHeader; tests/traces.rs follows one end to end).
    for e in bus.0.lock().unwrap().iter() {
        let traced = serde_json::from_str::<serde_json::Value>(&e.detail).unwrap()["traceparent"].is_string();
        assert_eq!(e.trace_header.is_some(), traced, "{}", e.detail_type);
    }
}
