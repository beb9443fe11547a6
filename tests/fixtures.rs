//! Every `events/*.json` fixture deserialises into its `aws_lambda_events`
//! type and, fed to its handler exactly as the Lambda runtime would, gets
//! the documented answer. The same files drive `cargo lambda invoke --data-file`.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::cloudwatch_events::CloudWatchEvent;
use lambda_http::lambda_runtime::{self, LambdaEvent};
use shop_app::clock::{ManualClock, SeqIds};
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
/// payment, cancelled into a refund).
const API_FIXTURES: &[(&str, &str, u16)] = &[
    ("apigw-create-order.json", "create-order", 201),
    ("apigw-get-order.json", "get-order", 200),
    ("apigw-confirm-payment.json", "confirm-payment", 200),
    ("apigw-pg-webhook.json", "pg-webhook", 200),
    ("apigw-pay-with-points.json", "pay-with-points", 409),
    ("apigw-cancel-order.json", "cancel-order", 200),
    ("apigw-order-timeline.json", "order-timeline", 200),
    ("apigw-list-coupons.json", "list-coupons", 200),
    ("apigw-create-order-invalid.json", "create-order", 400),
    ("apigw-create-order-unauthenticated.json", "create-order", 401),
];

const SCHEDULE_FIXTURES: &[&str] = &["schedule-expire-orders.json", "schedule-reconcile-payments.json"];

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
    assert_eq!(fixture_names("apigw-"), listed);
    let mut listed: Vec<String> = SCHEDULE_FIXTURES.iter().map(|f| (*f).to_owned()).collect();
    listed.sort();
    assert_eq!(fixture_names("schedule-"), listed);
}

#[test]
fn api_fixtures_are_valid_http_api_v2_events_for_known_routes() {
    for (file, function, _) in API_FIXTURES {
        let event: ApiGatewayV2httpRequest =
            serde_json::from_str(&load(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let route_key = event.route_key.clone().unwrap_or_default();
        let (method, path) = route_key.split_once(' ').unwrap();
        let route = shop_app::routes::ROUTES.iter().find(|r| r.method == method && r.path == path);
        assert_eq!(route.map(|r| r.function), Some(*function), "{file}");
        // API Gateway attaches JWT claims exactly on authorized routes.
        if let Some(r) = route.filter(|_| !file.contains("unauthenticated")) {
            assert_eq!(event.request_context.authorizer.is_some(), r.authorized, "{file}");
        }
    }
    // Every route has at least one fixture.
    for r in shop_app::routes::ROUTES {
        assert!(API_FIXTURES.iter().any(|(_, f, _)| *f == r.function), "no fixture for {}", r.function);
    }
}

#[tokio::test]
async fn api_fixtures_get_their_documented_answers_from_the_handlers() {
    let stack = Stack::start(StackOptions {
        clock: Some(Arc::new(ManualClock::at(T0))),
        ids: Some(Arc::new(SeqIds::new("fx"))),
        config: shop_tests::test_config(),
        seed_if_new: Some(Catalog::parse(TEST_CATALOG).unwrap()),
        ..StackOptions::default()
    })
    .await
    .unwrap();
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
        let response = shop_app::routes::invoke(&app, function, request).await.unwrap();
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
    let order = app.store.get_order(&shop_domain::OrderId::parse("fxord000001").unwrap()).await.unwrap().unwrap();
    assert_eq!(order.status.as_str(), "REFUND_PENDING");
}

#[tokio::test]
async fn schedule_fixtures_run_the_scheduled_functions() {
    let (_, app, _) = shop_local::open(None, Default::default(), None, None).await.unwrap();
    for file in SCHEDULE_FIXTURES {
        let event: CloudWatchEvent = serde_json::from_str(&load(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(event.detail_type.as_deref(), Some("Scheduled Event"), "{file}");
        let invocation = LambdaEvent::new(event, lambda_runtime::Context::default());
        let report = match *file {
            "schedule-expire-orders.json" => {
                serde_json::to_value(shop_app::jobs::expire_orders_handler(&app, invocation).await.unwrap()).unwrap()
            }
            "schedule-reconcile-payments.json" => {
                serde_json::to_value(shop_app::jobs::reconcile_payments_handler(&app, invocation).await.unwrap())
                    .unwrap()
            }
            other => panic!("no handler for {other}"),
        };
        assert!(report.is_object(), "{file}: {report}");
    }
}
