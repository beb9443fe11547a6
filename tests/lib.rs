//! Shared helpers for the black-box tests (see `api/`, `contract/`, `fixtures.rs`).

use shop_app::clock::{ManualClock, SeqIds};
use shop_app::config::Config;
use shop_domain::Timestamp;
use shop_local::emulate::queue::Queues;
use shop_local::{Stack, StackOptions, seed::Catalog};
use std::sync::Arc;
use std::time::Duration;

/// 2026-11-21T00:00:00Z: every test starts at the same instant.
pub const T0: Timestamp = Timestamp::from_millis(1_795_219_200_000);

pub const TEST_CATALOG: &str = r#"{
  "products": [
    {"id": "p1", "name": "Mug", "price": 12000, "stock": 100},
    {"id": "p2", "name": "Kettle", "price": 45000, "stock": 20},
    {"id": "scarce", "name": "Limited grinder", "price": 10000, "stock": 5},
    {"id": "bulk", "name": "Paper filters", "price": 1000, "stock": 100000}
  ],
  "coupons": [
    {"id": "c1", "userId": "u1", "kind": "FIXED", "value": 3000, "minOrderAmount": 10000, "expiresAt": "2030-01-01T00:00:00Z"},
    {"id": "c2", "userId": "u1", "kind": "PERCENT", "value": 10, "minOrderAmount": 100000, "expiresAt": "2030-01-01T00:00:00Z"},
    {"id": "c-u2", "userId": "u2", "kind": "FIXED", "value": 1000, "minOrderAmount": 0, "expiresAt": "2030-01-01T00:00:00Z"},
    {"id": "c-old", "userId": "u1", "kind": "FIXED", "value": 1000, "minOrderAmount": 0, "expiresAt": "2026-01-01T00:00:00Z"}
  ],
  "users": [
    {"id": "u1", "points": 5000},
    {"id": "u2", "points": 0},
    {"id": "rich", "points": 100000}
  ],
  "campaigns": [
    {"id": "welcome", "name": "Welcome", "total": 100, "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2030-12-31T23:59:59Z",
     "coupon": {"kind": "FIXED", "value": 5000, "minOrderAmount": 20000, "expiresAt": "2030-12-31T23:59:59Z"}},
    {"id": "rush", "name": "Opening rush", "total": 100, "startsAt": "2026-11-01T00:00:00Z", "endsAt": "2026-12-01T00:00:00Z",
     "coupon": {"kind": "FIXED", "value": 2000, "minOrderAmount": 10000, "expiresAt": "2027-01-01T00:00:00Z"}},
    {"id": "soon", "name": "December", "total": 5, "startsAt": "2026-12-01T00:00:00Z", "endsAt": "2027-01-01T00:00:00Z",
     "coupon": {"kind": "PERCENT", "value": 10, "expiresAt": "2027-02-01T00:00:00Z"}}
  ]
}"#;

pub struct TestApp {
    pub stack: Stack,
    pub clock: ManualClock,
    pub http: reqwest::Client,
}

/// PG calls time out after this in tests.
pub const PG_TIMEOUT_MS: u64 = 300;
/// A "timeout"/"lost_response" fault holds the PG's answer this long.
pub const PG_STALL: Duration = Duration::from_millis(1500);
/// A failed message is retried after this (then 2x, 4x, ...).
pub const QUEUE_VISIBILITY: Duration = Duration::from_millis(40);
/// Receives before a message goes to its DLQ.
pub const MAX_RECEIVE: u32 = 5;
/// Payments in doubt this long are reconciled (on the manual clock).
pub const RECONCILE_AFTER_SECS: i64 = 60;

/// Starts the local stack on port 0 with an in-memory store (or `data_dir`),
/// a manual clock at [`T0`], sequential ids and the test catalog. The
/// scheduler runs every 25 ms of real time, but expiry and reconciliation
/// act on the manual clock, so nothing happens until a test moves it.
pub async fn spawn_app_with(data_dir: Option<std::path::PathBuf>, config: Config) -> TestApp {
    spawn(data_dir, config, Duration::from_millis(25)).await
}

/// A stack whose scheduler never runs on its own: the test runs expiry and
/// reconciliation itself ([`TestApp::expire`], [`TestApp::reconcile`]), so
/// "not yet" is asserted on a run that really happened.
pub async fn spawn_app_driven() -> TestApp {
    spawn(None, test_config(), Duration::from_secs(24 * 3600)).await
}

/// [`spawn_app`] on a table with a stream (NEW_IMAGE), as AWS has it: the
/// test can read back every write with [`stream_images`].
pub async fn spawn_app_streamed() -> TestApp {
    spawn_with(None, test_config(), Duration::from_millis(25), Extra { table_stream: true, ..Extra::default() }).await
}

/// [`spawn_app`] that also serves its store's DynamoDB API on a port
/// (`shop up --dynamodb-port`).
pub async fn spawn_app_with_dynamodb_port() -> TestApp {
    spawn_with(None, test_config(), Duration::from_millis(25), Extra { dynamodb_port: Some(0), ..Extra::default() })
        .await
}

async fn spawn(data_dir: Option<std::path::PathBuf>, config: Config, schedule_every: Duration) -> TestApp {
    spawn_with(data_dir, config, schedule_every, Extra::default()).await
}

/// [`spawn_app`] whose listeners have these timeouts and connection cap.
pub async fn spawn_app_limited(limits: shop_local::listen::Limits) -> TestApp {
    spawn_with(None, test_config(), Duration::from_millis(25), Extra { limits: Some(limits), ..Extra::default() }).await
}

/// What only some tests' stacks have.
#[derive(Default)]
struct Extra {
    table_stream: bool,
    dynamodb_port: Option<u16>,
    limits: Option<shop_local::listen::Limits>,
}

async fn spawn_with(
    data_dir: Option<std::path::PathBuf>,
    config: Config,
    schedule_every: Duration,
    extra: Extra,
) -> TestApp {
    // Logs only when RUST_LOG is set (run with --nocapture to see them).
    if std::env::var_os("RUST_LOG").is_some() {
        shop_app::obs::telemetry::init("test");
    }
    let clock = ManualClock::at(T0);
    let stack = Stack::start(StackOptions {
        data_dir,
        clock: Some(Arc::new(clock.clone())),
        ids: Some(Arc::new(SeqIds::new("t"))),
        config,
        seed_if_new: Some(Catalog::parse(TEST_CATALOG).expect("test catalog")),
        schedule_every,
        // The admitter ticks with the scheduler: a driven test steps it itself.
        admit_every: schedule_every,
        webhook_backoff: Duration::from_millis(20),
        pg_stall: Some(PG_STALL),
        queues: shop_local::emulate::runner::QueueOptions {
            poll: Duration::from_millis(10),
            visibility: QUEUE_VISIBILITY,
            max_receive: MAX_RECEIVE,
            stream_window: shop_local::emulate::runner::STREAM_WINDOW,
        },
        table_stream: extra.table_stream,
        dynamodb_port: extra.dynamodb_port,
        limits: extra.limits.unwrap_or(StackOptions::default().limits),
        ..StackOptions::default()
    })
    .await
    .expect("stack starts");
    TestApp { stack, clock, http: reqwest::Client::new() }
}

pub fn test_config() -> Config {
    Config { pg_timeout_ms: PG_TIMEOUT_MS, reconcile_after_secs: RECONCILE_AFTER_SECS, ..Config::default() }
}

pub async fn spawn_app_in(data_dir: Option<std::path::PathBuf>) -> TestApp {
    spawn_app_with(data_dir, test_config()).await
}

/// Polls `check` until it returns `Some`, failing after `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_in(None).await
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.url())
    }

    /// `POST /campaigns/{campaign}/claim` as `user` with `key`: the status,
    /// headers and body.
    pub async fn claim(
        &self,
        user: &str,
        campaign: &str,
        key: &str,
    ) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let resp = self
            .http
            .post(self.url(&format!("/campaigns/{campaign}/claim")))
            .bearer_auth(self.stack.token(user))
            .header("idempotency-key", key)
            .send()
            .await
            .expect("request");
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        (status, headers, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// `POST /orders` as `user` with `key`, ready to send (or to add headers to).
    pub fn order_request(&self, user: &str, key: &str, body: &str) -> reqwest::RequestBuilder {
        self.http
            .post(self.url("/orders"))
            .bearer_auth(self.stack.token(user))
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(body.to_owned())
    }

    pub async fn post_order(&self, user: &str, key: &str, body: &str) -> (u16, serde_json::Value) {
        let resp = self.order_request(user, key, body).send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// `GET path`, as `user` (with their token) or anonymously; the status,
    /// the headers and the JSON body (`Null` when there is none).
    pub async fn get(&self, user: Option<&str>, path: &str) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(u) = user {
            req = req.bearer_auth(self.stack.token(u));
        }
        let resp = req.send().await.expect("request");
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        (status, headers, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Every page of a list route (`items` is the list's name), following
    /// `nextCursor` from `path` (which carries its own `?` query).
    pub async fn all_pages(&self, user: Option<&str>, path: &str, items: &str) -> Vec<serde_json::Value> {
        let mut all = Vec::new();
        let mut next = path.to_owned();
        for _ in 0..10_000 {
            let (status, _, page) = self.get(user, &next).await;
            assert_eq!(status, 200, "{next}: {page}");
            all.extend(page[items].as_array().cloned().unwrap_or_default());
            match page["nextCursor"].as_str() {
                Some(c) => next = format!("{path}&cursor={c}"),
                None => return all,
            }
        }
        panic!("{path}: more than 10,000 pages");
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
        self.store().catalog().product(&id).await.expect("read").expect("product").available
    }

    pub async fn points(&self, user: &str) -> u64 {
        let id = shop_domain::UserId::parse(user).expect("id");
        self.store().points().balance(&id).await.expect("read").won()
    }

    pub async fn coupon_status(&self, coupon: &str) -> &'static str {
        let id = shop_domain::CouponId::parse(coupon).expect("id");
        self.store().coupons().get(&id).await.expect("read").expect("coupon").status.name()
    }

    pub async fn post(&self, user: &str, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(self.stack.token(user))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Places an order for `user` and returns (orderId, amountDue).
    /// `POST /orders/{orderId}/refunds` as `user`, with this `Idempotency-Key`.
    pub async fn refund(
        &self,
        user: &str,
        order_id: &str,
        key: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let resp = self
            .http
            .post(self.url(&format!("/orders/{order_id}/refunds")))
            .bearer_auth(self.stack.token(user))
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn order(&self, user: &str, body: &str) -> (String, u64) {
        let (status, b) = self.post_order(user, &format!("k-{}", uuid::Uuid::now_v7()), body).await;
        assert_eq!(status, 201, "{b}");
        (b["orderId"].as_str().expect("orderId").to_owned(), b["amountDue"].as_u64().expect("amountDue"))
    }

    /// The payment widget: a paymentKey for this order at the simulator.
    pub async fn checkout(&self, order_id: &str, amount: u64, method: &str) -> String {
        let resp = self
            .http
            .post(format!("{}/v1/sim/checkout", self.stack.pg_url()))
            .json(&serde_json::json!({"orderId": order_id, "amount": amount, "method": method}))
            .send()
            .await
            .expect("checkout");
        let body: serde_json::Value = resp.json().await.expect("checkout body");
        body["paymentKey"].as_str().expect("paymentKey").to_owned()
    }

    pub async fn confirm(&self, user: &str, order_id: &str, key: &str, amount: u64) -> (u16, serde_json::Value) {
        self.post(
            user,
            "/payments/confirm",
            serde_json::json!({"orderId": order_id, "paymentKey": key, "amount": amount}),
        )
        .await
    }

    pub async fn sim(&self, method: reqwest::Method, path: &str, body: Option<serde_json::Value>) -> serde_json::Value {
        let mut req = self.http.request(method, format!("{}{path}", self.stack.pg_url()));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("simulator");
        resp.json().await.unwrap_or(serde_json::Value::Null)
    }

    pub async fn fault(&self, op: &str, fault: &str, count: i64) {
        self.sim(
            reqwest::Method::POST,
            "/v1/sim/faults",
            Some(serde_json::json!({"op": op, "fault": fault, "count": count})),
        )
        .await;
    }

    /// The simulator's log of calls for one order.
    pub async fn pg_calls(&self, order_id: &str, op: &str) -> Vec<serde_json::Value> {
        let calls = self.sim(reqwest::Method::GET, &format!("/v1/sim/calls?orderId={order_id}&op={op}"), None).await;
        calls.as_array().cloned().unwrap_or_default()
    }

    /// The simulator's payments for one order.
    pub async fn pg_payments(&self, order_id: &str) -> Vec<serde_json::Value> {
        let all = self.sim(reqwest::Method::GET, &format!("/v1/sim/payments?orderId={order_id}"), None).await;
        all.as_array().cloned().unwrap_or_default()
    }

    pub async fn status(&self, order_id: &str) -> String {
        let id = shop_domain::OrderId::parse(order_id).expect("id");
        self.store().orders().get(&id).await.expect("read").expect("order").status.as_str().to_owned()
    }

    /// Waits until the order reaches `status`.
    pub async fn wait_status(&self, order_id: &str, status: &str) {
        eventually(10, &format!("order {order_id} {status}"), || async {
            (self.status(order_id).await == status).then_some(())
        })
        .await
    }

    /// The detail-types of the order's events, in order.
    pub async fn event_types(&self, order_id: &str) -> Vec<String> {
        let id = shop_domain::OrderId::parse(order_id).expect("id");
        self.store().outbox().events_of(&id).await.expect("events").into_iter().map(|e| e.detail_type).collect()
    }

    /// Waits until every outbox event is published and every consumer queue is empty.
    pub async fn settled(&self) {
        eventually(20, "events published and queues drained", || async {
            let pending = self.store().outbox().pending(10).await.expect("pending").len();
            let mut queued = 0;
            for q in shop_local::ops::CONSUMERS {
                queued += Queues(self.store()).list(q).await.expect("queue").len();
            }
            (pending == 0 && queued == 0).then_some(())
        })
        .await
    }

    /// The embedded engine under the stack (its counters and failpoints).
    pub fn engine(&self) -> &shop_embedded::Engine {
        self.stack.engine.embedded().expect("the test stack runs on the embedded engine")
    }

    /// Deliveries the data-platform sink accepted (not duplicates) for an order.
    pub async fn exported(&self, order_id: &str) -> Vec<shop_local::sim::sink::Delivery> {
        let all = self.stack.sink.deliveries_of(order_id).await.expect("the sink's deliveries");
        all.into_iter().filter(|d| d.status == 200 && !d.duplicate).collect()
    }

    pub async fn dlq(&self, consumer: &str) -> Vec<shop_local::ops::DlqEntry> {
        shop_local::ops::dlq_list(&self.stack.app, Some(consumer)).await.expect("dlq")
    }

    /// Pays an order by card through the simulator; returns the confirm answer.
    pub async fn pay_by_card(&self, user: &str, order_id: &str, amount: u64) -> serde_json::Value {
        let key = self.checkout(order_id, amount, "CARD").await;
        let (status, body) = self.confirm(user, order_id, &key, amount).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// One run of `expire-orders`, now.
    pub async fn expire(&self) -> shop_app::usecases::expire::ExpireReport {
        shop_app::usecases::expire::expire_orders(&self.stack.app).await.expect("expiry run")
    }

    /// One run of `reconcile-payments`, now.
    pub async fn reconcile(&self) -> shop_app::usecases::reconcile::ReconcileReport {
        shop_app::usecases::reconcile::reconcile_payments(&self.stack.app).await.expect("reconcile run")
    }

    pub async fn orders_of(&self, user: &str) -> Vec<shop_domain::Order> {
        let id = shop_domain::UserId::parse(user).expect("id");
        self.store().orders().of_user(&id, 100).await.expect("read")
    }
}

/// Every record on `table`'s stream so far, in stream order: its event name
/// (INSERT, MODIFY, REMOVE) and new image (DynamoDB JSON), read with the
/// streams API from the engine behind `client` — the embedded engine's own
/// stream, or DynamoDB Local's.
pub async fn stream_images(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<(String, serde_json::Value)> {
    use aws_sdk_dynamodb::config::{Credentials, Region};
    use aws_sdk_dynamodbstreams::types::ShardIteratorType;
    // The same engine: the table client's HTTP client — the embedded
    // engine's in-process connector (which takes any endpoint), or HTTP to
    // DynamoDB Local's endpoint.
    let c = client.config();
    let mut config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
        .region(c.region().cloned().unwrap_or_else(|| Region::new("us-east-1")))
        .credentials_provider(Credentials::new("local", "local", None, None, "test"))
        .endpoint_url(std::env::var("DYNAMODB_LOCAL_ENDPOINT").unwrap_or_else(|_| "http://embedded.dynoxide".into()));
    if let Some(http) = c.http_client() {
        config = config.http_client(http);
    }
    let streams = aws_sdk_dynamodbstreams::Client::from_conf(config.build());
    let listed = streams.list_streams().table_name(table).send().await.expect("ListStreams");
    let arn = listed.streams().first().and_then(|s| s.stream_arn()).expect("the table has a stream").to_owned();
    let described = streams.describe_stream().stream_arn(&arn).send().await.expect("DescribeStream");
    let shards = described.stream_description().map(|d| d.shards().to_vec()).unwrap_or_default();
    let mut images = Vec::new();
    for shard in shards {
        let Some(shard_id) = shard.shard_id() else { continue };
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard_id)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator")
            .shard_iterator;
        // An open shard hands out a next iterator for ever: stop at the first empty page.
        while let Some(it) = iterator {
            let page = streams.get_records().shard_iterator(it).send().await.expect("GetRecords");
            if page.records().is_empty() {
                break;
            }
            for r in page.records() {
                if let Some(image) = r.dynamodb().and_then(|d| d.new_image()) {
                    let name = r.event_name().map(|n| n.as_str().to_owned()).unwrap_or_default();
                    let image = image.iter().map(|(k, v)| (k.clone(), stream_value(v))).collect();
                    images.push((name, serde_json::Value::Object(image)));
                }
            }
            iterator = page.next_shard_iterator;
        }
    }
    images
}

/// A streams-API attribute value in DynamoDB JSON.
fn stream_value(v: &aws_sdk_dynamodbstreams::types::AttributeValue) -> serde_json::Value {
    use aws_sdk_dynamodbstreams::types::AttributeValue as A;
    use serde_json::json;
    match v {
        A::S(s) => json!({ "S": s }),
        A::N(n) => json!({ "N": n }),
        A::Bool(b) => json!({ "BOOL": b }),
        A::Null(_) => json!({ "NULL": true }),
        A::L(l) => json!({ "L": l.iter().map(stream_value).collect::<Vec<_>>() }),
        A::M(m) => {
            json!({ "M": m.iter().map(|(k, v)| (k.clone(), stream_value(v))).collect::<serde_json::Map<_, _>>() })
        }
        other => json!({ "UNSUPPORTED": format!("{other:?}") }),
    }
}
