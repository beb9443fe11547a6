//! Shared helpers for the black-box tests (see `api/`, `contract/`, `fixtures.rs`).

use shop_app::clock::{ManualClock, SeqIds};
use shop_app::config::Config;
use shop_domain::Timestamp;
use shop_local::{Stack, StackOptions, seed::Catalog};
use std::sync::Arc;

/// 2026-11-21T00:00:00Z: every test starts at the same instant.
pub const T0: Timestamp = Timestamp::from_millis(1_795_219_200_000);

pub const TEST_CATALOG: &str = r#"{
  "products": [
    {"id": "p1", "name": "Mug", "price": 12000, "stock": 100},
    {"id": "p2", "name": "Kettle", "price": 45000, "stock": 20},
    {"id": "scarce", "name": "Limited grinder", "price": 10000, "stock": 5}
  ],
  "coupons": [
    {"id": "c1", "userId": "u1", "kind": "FIXED", "value": 3000, "minOrderAmount": 10000, "expiresAt": "2030-01-01T00:00:00Z"},
    {"id": "c2", "userId": "u1", "kind": "PERCENT", "value": 10, "minOrderAmount": 100000, "expiresAt": "2030-01-01T00:00:00Z"},
    {"id": "c-u2", "userId": "u2", "kind": "FIXED", "value": 1000, "minOrderAmount": 0, "expiresAt": "2030-01-01T00:00:00Z"},
    {"id": "c-old", "userId": "u1", "kind": "FIXED", "value": 1000, "minOrderAmount": 0, "expiresAt": "2026-01-01T00:00:00Z"}
  ],
  "users": [
    {"id": "u1", "points": 5000},
    {"id": "u2", "points": 0}
  ]
}"#;

pub struct TestApp {
    pub stack: Stack,
    pub clock: ManualClock,
    pub http: reqwest::Client,
}

/// Starts the local stack on port 0 with an in-memory store (or `data_dir`),
/// a manual clock at [`T0`], sequential ids and the test catalog.
pub async fn spawn_app_in(data_dir: Option<std::path::PathBuf>) -> TestApp {
    let clock = ManualClock::at(T0);
    let stack = Stack::start(StackOptions {
        data_dir,
        clock: Some(Arc::new(clock.clone())),
        ids: Some(Arc::new(SeqIds::new("t"))),
        config: Config::default(),
        seed_if_new: Some(Catalog::parse(TEST_CATALOG).expect("test catalog")),
        ..StackOptions::default()
    })
    .await
    .expect("stack starts");
    TestApp { stack, clock, http: reqwest::Client::new() }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_in(None).await
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.url())
    }

    pub async fn post_order(&self, user: &str, key: &str, body: &str) -> (u16, serde_json::Value) {
        let resp = self
            .http
            .post(self.url("/orders"))
            .bearer_auth(self.stack.token(user))
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn get_order(&self, user: &str, id: &str) -> (u16, serde_json::Value) {
        let resp = self
            .http
            .get(self.url(&format!("/orders/{id}")))
            .bearer_auth(self.stack.token(user))
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub fn store(&self) -> &shop_store::Store {
        &self.stack.app.store
    }

    pub async fn stock(&self, product: &str) -> u64 {
        let id = shop_domain::ProductId::parse(product).expect("id");
        self.store().get_product(&id).await.expect("read").expect("product").available
    }

    pub async fn points(&self, user: &str) -> u64 {
        let id = shop_domain::UserId::parse(user).expect("id");
        self.store().get_points(&id).await.expect("read").won()
    }

    pub async fn coupon_status(&self, coupon: &str) -> &'static str {
        let id = shop_domain::CouponId::parse(coupon).expect("id");
        self.store().get_coupon(&id).await.expect("read").expect("coupon").status.name()
    }

    pub async fn orders_of(&self, user: &str) -> Vec<shop_domain::Order> {
        let id = shop_domain::UserId::parse(user).expect("id");
        self.store().orders_of(&id, 100).await.expect("read")
    }
}
