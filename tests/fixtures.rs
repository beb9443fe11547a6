//! Every `events/*.json` fixture deserialises into its `aws_lambda_events`
//! type and, fed to its handler exactly as the Lambda runtime would, gets
//! the documented answer. The same files drive `cargo lambda invoke --data-file`.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use shop_app::clock::{ManualClock, SeqIds};
use shop_local::seed::{Catalog, seed};
use shop_tests::{T0, TEST_CATALOG};
use std::path::PathBuf;
use std::sync::Arc;

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn load(name: &str) -> String {
    std::fs::read_to_string(events_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// (fixture, function, expected status)
const API_FIXTURES: &[(&str, &str, u16)] = &[
    ("apigw-create-order.json", "create-order", 201),
    ("apigw-get-order.json", "get-order", 200),
    ("apigw-create-order-invalid.json", "create-order", 400),
    ("apigw-create-order-unauthenticated.json", "create-order", 401),
];

#[test]
fn every_fixture_is_listed_here() {
    let mut on_disk: Vec<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("apigw-") && n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = API_FIXTURES.iter().map(|(f, _, _)| (*f).to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
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
    }
}

#[tokio::test]
async fn api_fixtures_get_their_documented_answers_from_the_handlers() {
    let (_, app, _) = shop_local::open(None, Default::default(), None, None).await.unwrap();
    let app = app.with_clock(Arc::new(ManualClock::at(T0))).with_ids(Arc::new(SeqIds::new("fx")));
    seed(&app, &Catalog::parse(TEST_CATALOG).unwrap()).await.unwrap();
    for (file, function, status) in API_FIXTURES {
        let request = lambda_http::request::from_str(&load(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let response = shop_app::routes::invoke(&app, function, request).await.unwrap();
        let body = match response.body() {
            lambda_http::Body::Text(t) => t.clone(),
            _ => String::new(),
        };
        assert_eq!(response.status().as_u16(), *status, "{file}: {body}");
        if *status == 201 {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["orderId"], "fxord000001", "get-order fixture expects this id");
        }
    }
}
