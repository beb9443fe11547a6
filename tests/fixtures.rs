//! Every `events/*.json` fixture deserialises into its `aws_lambda_events`
//! type and, fed to its handler exactly as the Lambda runtime would, gets
//! the documented answer. The same files drive `cargo lambda invoke --data-file`.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::cloudwatch_events::CloudWatchEvent;
use lambda_http::lambda_runtime::{self, LambdaEvent};
use shop_app::clock::{ManualClock, SeqIds};
use shop_local::emulate::queue::Queues;
use shop_local::seed::Catalog;
use shop_local::{Stack, StackOptions};
use shop_tests::{T0, TEST_CATALOG};
use std::path::PathBuf;
use std::sync::Arc;

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn load(name: &str) -> String {
    std::fs::read_to_string(events_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// (fixture, function, expected status), in the order they are fed: they
/// tell one order's story (placed, read, paid, notified, refused a second
/// payment, listed, refunded by its lines, cancelled again — the same refund), with the catalog, a campaign's
/// claim, an operator's new campaign (refused to a shopper; sent twice), and
/// a flash sale (created, read, entered, one's ticket, left).
const API_FIXTURES: &[(&str, &str, u16)] = &[
    ("apigw-create-order.json", "create-order", 201),
    ("apigw-get-order.json", "get-order", 200),
    ("apigw-confirm-payment.json", "confirm-payment", 200),
    ("apigw-pg-webhook.json", "pg-webhook", 200),
    ("apigw-pay-with-points.json", "pay-with-points", 409),
    ("apigw-list-orders.json", "list-orders", 200),
    ("apigw-list-products.json", "list-products", 200),
    ("apigw-get-product.json", "get-product", 200),
    ("apigw-get-campaign.json", "get-campaign", 200),
    ("apigw-claim-coupon.json", "claim-coupon", 201),
    ("apigw-create-campaign-shopper.json", "create-campaign", 403),
    ("apigw-create-campaign.json", "create-campaign", 201),
    ("apigw-create-campaign.json", "create-campaign", 200),
    ("apigw-refund-order.json", "refund-order", 202),
    ("apigw-cancel-order.json", "cancel-order", 200),
    ("apigw-order-timeline.json", "order-timeline", 200),
    ("apigw-list-coupons.json", "list-coupons", 200),
    ("apigw-my-points.json", "my-points", 200),
    ("apigw-create-sale.json", "create-sale", 201),
    ("apigw-get-sale.json", "get-sale", 200),
    ("apigw-enter-queue.json", "enter-queue", 201),
    ("apigw-my-ticket.json", "my-ticket", 200),
    ("apigw-leave-queue.json", "leave-queue", 200),
    ("apigw-create-order-invalid.json", "create-order", 400),
    ("apigw-create-order-unauthenticated.json", "create-order", 401),
];

const SCHEDULE_FIXTURES: &[&str] =
    &["schedule-admit-sales.json", "schedule-expire-orders.json", "schedule-reconcile-payments.json"];

/// The WebSocket API's events (the `live-authorizer` and `live` functions),
/// sorted; `LIVE_TOKEN` in the authorizer's stands for a live token the
/// test (or the cargo-lambda smoke) signs at the time.
const LIVE_FIXTURES: &[&str] =
    &["ws-live-authorizer.json", "ws-live-connect.json", "ws-live-disconnect.json", "ws-live-message.json"];

fn fixture_names(prefix: &str) -> Vec<String> {
    let mut on_disk: Vec<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".json"))
        .collect();
    on_disk.sort();
    on_disk
}

#[test]
fn every_fixture_is_listed_here() {
    let mut listed: Vec<String> = API_FIXTURES.iter().map(|(f, _, _)| (*f).to_owned()).collect();
    listed.sort();
    listed.dedup();
    assert_eq!(fixture_names("apigw-"), listed);
    let mut listed: Vec<String> = SCHEDULE_FIXTURES.iter().map(|f| (*f).to_owned()).collect();
    listed.sort();
    assert_eq!(fixture_names("schedule-"), listed);
    assert_eq!(fixture_names("dynamodb-"), vec!["dynamodb-stream-outbox.json"]);
    assert_eq!(fixture_names("ws-"), LIVE_FIXTURES.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>());
    assert_eq!(
        fixture_names("sqs-"),
        vec!["sqs-analytics.json", "sqs-compensation.json", "sqs-coupon.json", "sqs-dlq-analytics.json"]
    );
}

#[test]
fn api_fixtures_are_valid_http_api_v2_events_for_known_routes() {
    for (file, function, _) in API_FIXTURES {
        let event: ApiGatewayV2httpRequest =
            serde_json::from_str(&load(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let route_key = event.route_key.clone().unwrap_or_default();
        let (method, path) = route_key.split_once(' ').unwrap();
        let route = shop_app::http::routes::ROUTES.iter().find(|r| r.method == method && r.path == path);
        assert_eq!(route.map(|r| r.function), Some(*function), "{file}");
        // API Gateway attaches JWT claims exactly on authorized routes.
        if let Some(r) = route.filter(|_| !file.contains("unauthenticated")) {
            assert_eq!(event.request_context.authorizer.is_some(), r.authorized, "{file}");
        }
    }
    // Every route has at least one fixture.
    for r in shop_app::http::routes::ROUTES {
        assert!(API_FIXTURES.iter().any(|(_, f, _)| *f == r.function), "no fixture for {}", r.function);
    }
}

#[tokio::test]
async fn api_fixtures_get_their_documented_answers_from_the_handlers() {
    let stack = fixture_stack().await;
    let app = stack.app.clone();
    for (file, function, status) in API_FIXTURES {
        if *function == "confirm-payment" {
            // The payment widget's part: the PG knows the fixture's paymentKey.
            let resp = reqwest::Client::new()
                .post(format!("{}/v1/sim/checkout", stack.pg_url()))
                .json(&serde_json::json!({"orderId": "fxord000001", "amount": 20000, "paymentKey": "fixture_pk_1"}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
        let request = lambda_http::request::from_str(&load(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let response = shop_app::http::routes::invoke(&app, function, request).await.unwrap();
        let body = match response.body() {
            lambda_http::Body::Text(t) => t.clone(),
            _ => String::new(),
        };
        assert_eq!(response.status().as_u16(), *status, "{file}: {body}");
        if *function == "create-order" && *status == 201 {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["orderId"], "fxord000001", "the other fixtures expect this id");
        }
    }
    let order = app.store.orders().get(&shop_domain::OrderId::parse("fxord000001").unwrap()).await.unwrap().unwrap();
    // Cancelled after payment: a refund, which compensation may already have carried out.
    assert!(["REFUND_PENDING", "REFUNDED"].contains(&order.status.as_str()), "{:?}", order.status);
}

#[tokio::test]
async fn schedule_fixtures_run_the_scheduled_functions() {
    let (_, app, _) = shop_local::open(None, Default::default(), None, None).await.unwrap();
    for file in SCHEDULE_FIXTURES {
        let event: CloudWatchEvent = serde_json::from_str(&load(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(event.detail_type.as_deref(), Some("Scheduled Event"), "{file}");
        let invocation = LambdaEvent::new(event, lambda_runtime::Context::default());
        let report = match *file {
            "schedule-expire-orders.json" => serde_json::to_value(
                shop_app::events::schedules::expire_orders_handler(&app, invocation).await.unwrap(),
            )
            .unwrap(),
            // No live sale: the admitter returns after one pass.
            "schedule-admit-sales.json" => serde_json::to_value(
                shop_app::events::schedules::admit_sales_handler(&app, None, invocation).await.unwrap(),
            )
            .unwrap(),
            "schedule-reconcile-payments.json" => serde_json::to_value(
                shop_app::events::schedules::reconcile_payments_handler(&app, invocation).await.unwrap(),
            )
            .unwrap(),
            other => panic!("no handler for {other}"),
        };
        assert!(report.is_object(), "{file}: {report}");
    }
    // As deployed, reconcile-payments takes its schedule's event or an operator's ask.
    use shop_app::events::schedules::{ReconcileInput, reconcile_or_ask_handler};
    let schedule: ReconcileInput = serde_json::from_str(&load("schedule-reconcile-payments.json")).unwrap();
    assert!(matches!(schedule, ReconcileInput::Schedule(_)), "{schedule:?}");
    let report =
        reconcile_or_ask_handler(&app, LambdaEvent::new(schedule, lambda_runtime::Context::default())).await.unwrap();
    assert!(report["resolved"].is_number(), "the schedule's report: {report}");
    let ask: ReconcileInput = serde_json::from_str(r#"{"askPg": {"orderIds": ["nope-1", "bad id"]}}"#).unwrap();
    let answers =
        reconcile_or_ask_handler(&app, LambdaEvent::new(ask, lambda_runtime::Context::default())).await.unwrap();
    assert_eq!(answers[0]["orderId"], "nope-1");
    assert_eq!((answers[0]["ok"].as_bool(), answers[1]["detail"].as_str()), (Some(false), Some("not an order id")));
    assert!(answers[0]["detail"].as_str().unwrap().contains("no payment in doubt"), "{answers}");
    let too_many = serde_json::json!({ "askPg": { "orderIds": vec!["o"; 101] } });
    let ask: ReconcileInput = serde_json::from_value(too_many).unwrap();
    assert!(reconcile_or_ask_handler(&app, LambdaEvent::new(ask, lambda_runtime::Context::default())).await.is_err());
}

async fn fixture_stack() -> Stack {
    Stack::start(StackOptions {
        clock: Some(Arc::new(ManualClock::at(T0))),
        ids: Some(Arc::new(SeqIds::new("fx"))),
        config: shop_tests::test_config(),
        seed_if_new: Some(Catalog::parse(TEST_CATALOG).unwrap()),
        ..StackOptions::default()
    })
    .await
    .unwrap()
}

async fn run_api_fixture(stack: &Stack, file: &str, function: &str) -> u16 {
    let request = lambda_http::request::from_str(&load(file)).unwrap();
    shop_app::http::routes::invoke(&stack.app, function, request).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn stream_fixture_publishes_only_pending_outbox_items() {
    let stack = fixture_stack().await;
    let event: aws_lambda_events::dynamodb::Event = serde_json::from_str(&load("dynamodb-stream-outbox.json")).unwrap();
    assert_eq!(event.records.len(), 3);
    let publisher = shop_app::events::publisher::Publisher { bus: stack.bus.clone() };
    let (response, report) = publisher.publish(&stack.app, event).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!((report.published, report.skipped, report.failed), (1, 2, 0));
    let now = shop_app::clock::Clock::now(&shop_app::clock::SystemClock);
    let archived = Queues(&stack.app.store).archived_between(now.plus_secs(-60), now.plus_secs(60)).await.unwrap();
    assert!(archived.iter().any(|a| a.event_id == "fxord000001#3" && a.detail_type == "OrderPaid"));
}

#[tokio::test]
async fn sqs_fixtures_are_handled_by_their_consumers() {
    let stack = fixture_stack().await;
    let http = reqwest::Client::new();
    assert_eq!(run_api_fixture(&stack, "apigw-create-order.json", "create-order").await, 201);
    http.post(format!("{}/v1/sim/checkout", stack.pg_url()))
        .json(&serde_json::json!({"orderId": "fxord000001", "amount": 20000, "paymentKey": "fixture_pk_1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(run_api_fixture(&stack, "apigw-confirm-payment.json", "confirm-payment").await, 200);
    let platform = shop_app::adapters::data_platform::HttpDataPlatform { http: http.clone(), url: stack.sink_url() };
    let consumers: [(&str, Box<dyn shop_app::events::consumers::Consumer>); 2] = [
        ("sqs-coupon.json", Box::new(shop_app::events::consumers::CouponConsumer)),
        (
            "sqs-analytics.json",
            Box::new(shop_app::events::consumers::AnalyticsConsumer { platform: Arc::new(platform) }),
        ),
    ];
    // The stack's own consumers handle the same events from its queues; when
    // one of them holds the event, the fixture's delivery is retried until it
    // is applied or answered as a duplicate, as SQS would redeliver it.
    for (file, consumer) in consumers {
        handled(&stack, consumer.as_ref(), file).await;
    }
    let coupon = stack.app.store.coupons().get(&shop_domain::CouponId::parse("c1").unwrap()).await.unwrap().unwrap();
    assert_eq!(coupon.status.name(), "USED");
    assert_eq!(run_api_fixture(&stack, "apigw-cancel-order.json", "cancel-order").await, 200);
    handled(&stack, &shop_app::events::consumers::CompensationConsumer, "sqs-compensation.json").await;
    let order =
        stack.app.store.orders().get(&shop_domain::OrderId::parse("fxord000001").unwrap()).await.unwrap().unwrap();
    assert_eq!(order.status.as_str(), "REFUNDED");
}

/// Delivers the SQS fixture `file` to `consumer` until no message fails.
async fn handled(stack: &Stack, consumer: &dyn shop_app::events::consumers::Consumer, file: &str) {
    shop_tests::eventually(10, file, || async {
        let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_str(&load(file)).unwrap();
        let response = shop_app::events::consumers::handle_sqs(&stack.app, consumer, event).await;
        response.batch_item_failures.is_empty().then_some(())
    })
    .await;
}

#[test]
fn dlq_fixture_carries_the_original_event() {
    let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_str(&load("sqs-dlq-analytics.json")).unwrap();
    let message = &event.records[0];
    assert!(message.attributes.contains_key("DeadLetterQueueSourceArn"));
    let (decoded, delivered) = shop_app::events::consumers::decode(message.body.as_deref().unwrap()).unwrap();
    let detail = delivered.detail;
    assert_eq!((decoded.kind.detail_type(), detail.event_id.as_str()), ("OrderPaid", "fxord000001#3"));
}

fn schema_validator(detail_type: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(events_dir().join(format!("schemas/{detail_type}.json")))
        .unwrap_or_else(|e| panic!("no schema for {detail_type}: {e}"));
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn assert_valid(detail_type: &str, detail: &serde_json::Value) {
    let v = schema_validator(detail_type);
    let errors: Vec<String> = v.iter_errors(detail).map(|e| format!("{e} at {}", e.instance_path)).collect();
    assert!(errors.is_empty(), "{detail_type}: {errors:?}\n{detail}");
}

/// Every kind of event, produced by the domain exactly as the store writes
/// it to the outbox (`EventDetail::new`), matches its schema; and every
/// schema file names a real event.
#[test]
fn every_event_detail_matches_its_json_schema() {
    use shop_domain::order::{PlaceOrder, place};
    use shop_domain::{Money, OrderCommand, PaymentKey, PaymentMethod, Product, ProductId, Quantity, UserId};
    let m = |v: i128| Money::new(v).unwrap();
    let items = [(
        Product { id: ProductId::parse("p1").unwrap(), name: "Mug".into(), price: m(1000), available: 5 },
        Quantity::new(2).unwrap(),
    )];
    let placed = place(PlaceOrder {
        order_id: shop_domain::OrderId::parse("o1").unwrap(),
        user_id: UserId::parse("u1").unwrap(),
        items: &items,
        coupon: None,
        points_to_use: m(100),
        points_balance: m(500),
        now: T0,
        ttl_secs: 900,
        sale: None,
    })
    .unwrap();
    let pk = |s: &str| PaymentKey::parse(s).unwrap();
    let due = placed.order.amount_due;
    let mut seen = std::collections::BTreeSet::new();
    let mut check = |events: &[shop_domain::OrderEvent]| {
        for e in events {
            let detail = serde_json::to_value(shop_domain::EventDetail::new(e, "corr-1", Some("00-trace-01"))).unwrap();
            assert_valid(e.kind.detail_type(), &detail);
            seen.insert(e.kind.detail_type().to_owned());
        }
    };
    check(&placed.events);
    let o = placed.order;
    let step = |o: &shop_domain::Order, c: OrderCommand, now| o.execute(&c, now).unwrap();
    let (confirming, ev) =
        step(&o, OrderCommand::StartPayment { payment_key: pk("k1"), method: PaymentMethod::Card, amount: due }, T0);
    check(&ev);
    let (pending, ev) = step(
        &confirming,
        OrderCommand::FailPayment { payment_key: pk("k1"), code: "X".into(), message: "no".into() },
        T0,
    );
    check(&ev);
    let deposit_due = T0.plus_secs(3 * 86_400);
    let (awaiting, ev) =
        step(&pending, OrderCommand::AwaitDeposit { payment_key: pk("k2"), amount: due, due_at: deposit_due }, T0);
    check(&ev);
    // Past its due date: expired, naming the account to close.
    let (_, ev) = step(&awaiting, OrderCommand::Expire, deposit_due);
    check(&ev);
    let (_, ev) = step(&awaiting, OrderCommand::Cancel { refund_account: false }, T0);
    check(&ev);
    let (paid, ev) = step(
        &awaiting,
        OrderCommand::ConfirmPayment { payment_key: pk("k2"), method: PaymentMethod::VirtualAccount, amount: due },
        T0,
    );
    check(&ev);
    let (_, ev) = step(
        &paid,
        OrderCommand::ConfirmPayment { payment_key: pk("k3"), method: PaymentMethod::Card, amount: due },
        T0,
    );
    check(&ev);
    let (refunding, ev) = step(&paid, OrderCommand::Cancel { refund_account: true }, T0);
    check(&ev);
    let (_, ev) = step(&refunding, OrderCommand::CompleteRefund, T0);
    check(&ev);
    // A part of it, done, then one the PG refuses, then the rest: each to
    // the shopper's refund account (a virtual account's deposit).
    let part = |n| OrderCommand::RequestRefund {
        part: shop_domain::order::RefundPart::Amount(m(n)),
        coupon_minimum: None,
        refund_account: true,
    };
    let one_mug = shop_domain::order::RefundLine {
        product_id: ProductId::parse("p1").unwrap(),
        quantity: Quantity::new(1).unwrap(),
    };
    let lines = shop_domain::order::RefundPart::Lines(vec![one_mug]);
    let (partly, ev) =
        step(&paid, OrderCommand::RequestRefund { part: lines, coupon_minimum: None, refund_account: true }, T0);
    check(&ev);
    let (partly, ev) = step(&partly, OrderCommand::CompleteRefundPart { number: 1 }, T0);
    check(&ev);
    let (partly, _) = step(&partly, part(500), T0);
    let (partly, ev) =
        step(&partly, OrderCommand::FailRefund { number: 2, code: "X".into(), message: "no".into() }, T0);
    check(&ev);
    let (rest, ev) = step(&partly, OrderCommand::Cancel { refund_account: true }, T0);
    check(&ev);
    let (_, ev) = step(&rest, OrderCommand::CompleteRefund, T0);
    check(&ev);
    let (_, ev) = step(&o, OrderCommand::Expire, o.expires_at);
    check(&ev);
    let (_, ev) = step(&o, OrderCommand::PayWithPoints, T0);
    check(&ev);
    // The campaign events, as a claim writes them.
    let coupon = shop_domain::Coupon {
        id: shop_domain::CouponId::parse("k1").unwrap(),
        owner: UserId::parse("u1").unwrap(),
        kind: shop_domain::CouponKind::Percent(10),
        min_order_amount: Money::ZERO,
        expires_at: T0.plus_secs(86_400),
        status: shop_domain::CouponStatus::Issued,
    };
    let campaign = shop_domain::CampaignId::parse("rush").unwrap();
    let issued = shop_domain::campaign::CouponIssued::new("CLAIM#rush#u1#1".into(), &campaign, &coupon, T0, "corr-1");
    assert_valid(shop_domain::campaign::COUPON_ISSUED, &serde_json::to_value(&issued).unwrap());
    seen.insert(shop_domain::campaign::COUPON_ISSUED.to_owned());
    let mut files: Vec<String> = std::fs::read_dir(events_dir().join("schemas"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().trim_end_matches(".json").to_owned())
        .collect();
    files.sort();
    assert_eq!(files, seen.into_iter().collect::<Vec<_>>(), "one schema per event type, and every type covered");
    // A wrong detail fails: the schemas are not vacuous.
    let v = schema_validator("OrderPaid");
    assert!(!v.is_valid(&serde_json::json!({"eventId": "o1#3"})));
}

/// The details the running stack actually archived (what the publisher put
/// on the bus) match their schemas too.
#[tokio::test]
async fn published_events_match_their_json_schemas() {
    let stack = fixture_stack().await;
    assert_eq!(run_api_fixture(&stack, "apigw-create-order.json", "create-order").await, 201);
    reqwest::Client::new()
        .post(format!("{}/v1/sim/checkout", stack.pg_url()))
        .json(&serde_json::json!({"orderId": "fxord000001", "amount": 20000, "paymentKey": "fixture_pk_1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(run_api_fixture(&stack, "apigw-confirm-payment.json", "confirm-payment").await, 200);
    assert_eq!(run_api_fixture(&stack, "apigw-cancel-order.json", "cancel-order").await, 200);
    let id = shop_domain::OrderId::parse("fxord000001").unwrap();
    shop_tests::eventually(20, "refund published", || async {
        let events = stack.app.store.outbox().events_of(&id).await.unwrap();
        (events.iter().any(|e| e.detail_type == "OrderRefunded") && events.iter().all(|e| !e.pending)).then_some(())
    })
    .await;
    let now = shop_app::clock::Clock::now(&shop_app::clock::SystemClock);
    let archived = Queues(&stack.app.store).archived_between(now.plus_secs(-60), now.plus_secs(60)).await.unwrap();
    assert!(archived.len() >= 5);
    for a in archived {
        let event: serde_json::Value = serde_json::from_str(&a.event).unwrap();
        assert_valid(&a.detail_type, &event["detail"]);
    }
}

/// What the `live` function pushed, in order.
#[derive(Default)]
struct Recorded(std::sync::Mutex<Vec<(String, String)>>);

#[async_trait::async_trait]
impl shop_app::ports::Pusher for Recorded {
    async fn push(&self, connection: &str, message: &str) -> Result<(), shop_app::ports::PushError> {
        self.0.lock().unwrap().push((connection.to_owned(), message.to_owned()));
        Ok(())
    }
}

#[tokio::test]
async fn live_fixtures_authorize_connect_answer_and_disconnect() {
    let stack = fixture_stack().await;
    let app = &stack.app;
    assert_eq!(run_api_fixture(&stack, "apigw-create-sale.json", "create-sale").await, 201);
    assert_eq!(run_api_fixture(&stack, "apigw-enter-queue.json", "enter-queue").await, 201);
    let request = lambda_http::request::from_str(&load("apigw-my-ticket.json")).unwrap();
    let response = shop_app::http::routes::invoke(app, "my-ticket", request).await.unwrap();
    let ticket: serde_json::Value = match response.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap(),
        _ => panic!("no body"),
    };
    let token = ticket["liveToken"].as_str().expect("a live token");
    let event = |file: &str| -> serde_json::Value {
        serde_json::from_str(&load(file).replace("LIVE_TOKEN", token)).unwrap_or_else(|e| panic!("{file}: {e}"))
    };

    // The authorizer: the fixture's token lets u1 into sale flash; a forged one nothing.
    let allowed = shop_app::http::live::authorize(app, event("ws-live-authorizer.json")).await.unwrap();
    assert_eq!(allowed["policyDocument"]["Statement"][0]["Effect"], "Allow", "{allowed}");
    assert_eq!(
        (allowed["context"]["saleId"].as_str(), allowed["context"]["userId"].as_str()),
        (Some("flash"), Some("u1"))
    );
    let forged: serde_json::Value =
        serde_json::from_str(&load("ws-live-authorizer.json").replace("LIVE_TOKEN", &format!("{token}x"))).unwrap();
    assert!(shop_app::http::live::authorize(app, forged).await.is_err(), "Unauthorized");

    // The routes, with the context the authorizer gave.
    let pushed = Recorded::default();
    let connected = shop_app::http::live::route(app, &pushed, event("ws-live-connect.json")).await.unwrap();
    assert_eq!(connected["statusCode"], 200);
    assert_eq!(connected["headers"]["Sec-WebSocket-Protocol"], shop_app::http::live::PROTOCOL);
    let answered = shop_app::http::live::route(app, &pushed, event("ws-live-message.json")).await.unwrap();
    assert_eq!(answered["statusCode"], 200);
    let (to, message) = pushed.0.lock().unwrap().first().cloned().expect("the position was pushed");
    let message: serde_json::Value = serde_json::from_str(&message).unwrap();
    assert_eq!((to.as_str(), message["status"].as_str()), ("fixtureConn1=", Some("WAITING")), "{message}");
    let sale = shop_domain::SaleId::parse("flash").unwrap();
    assert_eq!(app.store.connections().of_sale(&sale).await.unwrap().len(), 1);
    let gone = shop_app::http::live::route(app, &pushed, event("ws-live-disconnect.json")).await.unwrap();
    assert_eq!(gone["statusCode"], 200);
    assert!(app.store.connections().of_sale(&sale).await.unwrap().is_empty(), "forgotten");
}
