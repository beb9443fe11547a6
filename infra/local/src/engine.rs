//! The DynamoDB engine a local stack runs on, and the [`Meter`] on its
//! client: the embedded engine (dynoxide in-process, what `shop up` uses) or
//! an endpoint speaking the DynamoDB API (DynamoDB Local, for the saga
//! benchmark's side-by-side run, `shop bench --saga --engine dynamodb-local`).
//!
//! The meter sits in the SDK client's HTTP connector, under every call the
//! stack makes, whatever the engine: it counts calls per operation and,
//! when pricing (the saga benchmark), asks every call for its `ConsumedCapacity` (`ReturnConsumedCapacity: TOTAL`;
//! both engines answer it, DynamoDB Local as AWS bills, index writes
//! included) and adds up what each call would cost at least by the item
//! model (1 KB per write unit, 4 KB per read unit, transactions double,
//! indexes not counted).
//! With an endpoint it also wakes the publisher on a commit of an outbox
//! item, as the embedded engine does (both through
//! [`shop_embedded::WriteWatches`]).

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use serde::Serialize;
use serde_json::Value;
use shop_embedded::{Engine, WRITES, WriteFilter, WriteWatches};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Which engine, and how the stack reaches it.
#[derive(Clone)]
pub enum StoreEngine {
    Embedded(Engine),
    /// A DynamoDB API at this URL (DynamoDB Local: any credentials, one
    /// database per access key and region unless started with `-sharedDb`).
    Endpoint(String),
}

impl StoreEngine {
    pub fn name(&self) -> &'static str {
        match self {
            StoreEngine::Embedded(_) => "embedded (dynoxide, file-backed)",
            StoreEngine::Endpoint(_) => "DynamoDB Local",
        }
    }

    /// The embedded engine, if that is the one.
    pub fn embedded(&self) -> Option<&Engine> {
        match self {
            StoreEngine::Embedded(e) => Some(e),
            StoreEngine::Endpoint(_) => None,
        }
    }

    /// A client whose calls `meter` sees.
    pub fn client(&self, meter: &Meter) -> aws_sdk_dynamodb::Client {
        let inner = match self {
            StoreEngine::Embedded(e) => e.connector(),
            StoreEngine::Endpoint(_) => SharedHttpConnector::new(Http(reqwest::Client::new())),
        };
        let connector = SharedHttpConnector::new(Metered { inner, meter: meter.clone() });
        let mut config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("local", "local", None, None, "shop-local"))
            .http_client(http_client_fn(move |_settings, _components| connector.clone()));
        config = match self {
            StoreEngine::Embedded(_) => config.endpoint_url("http://embedded.dynoxide"),
            StoreEngine::Endpoint(url) => config.endpoint_url(url),
        };
        aws_sdk_dynamodb::Client::from_conf(config.build())
    }

    /// A client of the DynamoDB endpoint at `url` (such as `shop up
    /// --dynamodb-port`'s) that signs with this key pair, over HTTP.
    pub fn signed_client(url: &str, access_key_id: &str, secret_access_key: &str) -> aws_sdk_dynamodb::Client {
        let connector = SharedHttpConnector::new(Http(reqwest::Client::new()));
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("local"))
            .credentials_provider(Credentials::new(access_key_id, secret_access_key, None, None, "shop-local"))
            .http_client(http_client_fn(move |_settings, _components| connector.clone()))
            .endpoint_url(url)
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    /// Changes after every successful write `filter` takes (see
    /// [`Engine::writes_with`]), under the watch `name`.
    pub fn writes_with(
        &self,
        meter: &Meter,
        name: &'static str,
        filter: WriteFilter,
    ) -> tokio::sync::watch::Receiver<u64> {
        match self {
            // The engine sees writes from every client, the served port's too.
            StoreEngine::Embedded(e) => e.writes_with(name, filter),
            StoreEngine::Endpoint(_) => meter.writes_with(name, filter),
        }
    }
}

/// Read and write capacity units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Capacity {
    pub read: f64,
    pub write: f64,
}

/// What the meter has seen so far.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub calls: BTreeMap<String, u64>,
    /// When pricing: calls by their shape ([`shape`]: the operation and
    /// the kinds of item it touches), what the benchmark's call table is
    /// made of.
    pub shapes: BTreeMap<String, u64>,
    /// From the engine's `ConsumedCapacity` answers (zero if it gives none).
    pub consumed: Capacity,
    /// The same by shape: which calls the units went to.
    pub consumed_by_shape: BTreeMap<String, Capacity>,
    /// The part of `consumed.write` that TransactWriteItems reported (an
    /// engine may price transactions unlike DynamoDB: [`transaction_write_factor`]).
    pub consumed_in_transactions: f64,
    /// The part of `consumed.write` that went to the local-only
    /// `pendingOutbox` index (AWS has no such index: docs/adr/0024), and of
    /// that, the part written inside transactions.
    pub local_index_writes: f64,
    pub local_index_writes_in_transactions: f64,
    /// The least the same calls cost on DynamoDB by the item model.
    pub model: Capacity,
}

/// Counts (and, when pricing, capacity) of one client's calls; cheap to
/// clone (shared). [`Meter::default`] only counts: pricing parses every
/// request and answer, work only a benchmark wants.
#[derive(Clone, Default)]
pub struct Meter {
    state: Arc<Mutex<MeterState>>,
    pricing: bool,
}

#[derive(Default)]
struct MeterState {
    seen: Usage,
    watches: WriteWatches,
}

impl Meter {
    /// A meter that also asks for and adds up capacity units.
    pub fn pricing() -> Meter {
        Meter { pricing: true, ..Meter::default() }
    }

    pub fn snapshot(&self) -> Usage {
        self.state.lock().map(|s| s.seen.clone()).unwrap_or_default()
    }

    fn writes_with(&self, name: &'static str, filter: WriteFilter) -> tokio::sync::watch::Receiver<u64> {
        let mut s = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        s.watches.subscribe(name, filter)
    }

    fn record(&self, op: &str, request: &[u8], status: u16, response: &[u8]) {
        // Priced outside the lock: concurrent calls do not wait on parsing.
        let priced = (self.pricing && status == 200).then(|| {
            let req: Value = serde_json::from_slice(request).unwrap_or(Value::Null);
            let resp: Value = serde_json::from_slice(response).unwrap_or(Value::Null);
            (item_model(op, &req, &resp), consumed(op, &resp), local_index_writes(&resp), shape(op, &req))
        });
        let Ok(mut s) = self.state.lock() else { return };
        *s.seen.calls.entry(op.to_owned()).or_default() += 1;
        if let Some((model, consumed, local, shape)) = priced {
            let by_shape = s.seen.consumed_by_shape.entry(shape.clone()).or_default();
            by_shape.read += consumed.read;
            by_shape.write += consumed.write;
            *s.seen.shapes.entry(shape).or_default() += 1;
            s.seen.model.read += model.read;
            s.seen.model.write += model.write;
            s.seen.consumed.read += consumed.read;
            s.seen.consumed.write += consumed.write;
            s.seen.local_index_writes += local;
            if op == "TransactWriteItems" {
                s.seen.consumed_in_transactions += consumed.write;
                s.seen.local_index_writes_in_transactions += local;
            }
        }
        s.watches.announce(op, request, status);
    }
}

/// Write units an engine reports for a one-item transaction, over those
/// it reports for the same item written alone: 2 on DynamoDB (transactional
/// writes cost two units per KB) and on the embedded engine; DynamoDB Local
/// 1.25 reports 4. Measured with a scratch item under `table`, removed after.
pub async fn transaction_write_factor(client: &aws_sdk_dynamodb::Client, table: &str) -> anyhow::Result<f64> {
    use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnConsumedCapacity, TransactWriteItem};
    let item = |sk: &str| {
        [("pk", "BENCH#capacity-probe"), ("sk", sk), ("pad", "a small item, well under one kilobyte")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), AttributeValue::S(v.to_owned())))
            .collect::<std::collections::HashMap<_, _>>()
    };
    let alone = client
        .put_item()
        .table_name(table)
        .set_item(Some(item("ALONE")))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await?;
    let put = Put::builder().table_name(table).set_item(Some(item("IN_TX"))).build()?;
    let in_tx = client
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().put(put).build())
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await?;
    for sk in ["ALONE", "IN_TX"] {
        let key = item(sk).into_iter().filter(|(k, _)| k != "pad").collect();
        client.delete_item().table_name(table).set_key(Some(key)).send().await?;
    }
    let alone = alone.consumed_capacity().and_then(|c| c.capacity_units()).unwrap_or(0.0);
    let in_tx: f64 = in_tx.consumed_capacity().iter().filter_map(|c| c.capacity_units()).sum();
    anyhow::ensure!(alone > 0.0, "the engine reported no capacity for a PutItem");
    Ok(in_tx / alone)
}

/// The data operations: those that take `ReturnConsumedCapacity` (and
/// the ones the benchmark times on the engine thread).
pub const DATA_OPERATIONS: [&str; 10] = [
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
];

/// A call's shape: its operation and the kinds of item it touches, by the
/// key table's prefixes (`ORDER/EVENT`: pk `ORDER#…`, sk `EVENT#…`); an
/// update adds the attributes it sets, a query its index and partition.
/// Calls of one shape come from one place in the code.
pub fn shape(op: &str, req: &Value) -> String {
    fn kind(v: Option<&Value>) -> String {
        let text = v.and_then(|v| v.get("S")).and_then(Value::as_str).unwrap_or("");
        text.chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect()
    }
    let key = |k: Option<&Value>| {
        let k = k.unwrap_or(&Value::Null);
        format!("{}/{}", kind(k.get("pk")), kind(k.get("sk")))
    };
    // The attributes an update names; counters (`e.OrderPaid`, `s.PAID`)
    // by their family (`e.*`), so one writer is one shape.
    let names = |r: &Value| {
        let n: std::collections::BTreeSet<String> = r
            .get("ExpressionAttributeNames")
            .and_then(Value::as_object)
            .map(|m| {
                m.values()
                    .filter_map(Value::as_str)
                    .map(|a| a.split_once('.').map_or(a.to_owned(), |(family, _)| format!("{family}.*")))
                    .collect()
            })
            .unwrap_or_default();
        n.into_iter().collect::<Vec<_>>().join(",")
    };
    let action = |a: &Value| -> String {
        match a.as_object().and_then(|o| o.iter().next()) {
            Some((kind, body)) => match kind.as_str() {
                "Put" => format!("Put {}", key(body.get("Item"))),
                "Update" => format!("Update {} [{}]", key(body.get("Key")), names(body)),
                other => format!("{other} {}", key(body.get("Key"))),
            },
            None => String::new(),
        }
    };
    // The parts of a multi-item call, counted: `2× Put ORDER/EVENT + Update …`.
    let list = |v: Option<&Value>, f: &dyn Fn(&Value) -> String| {
        let mut counted: BTreeMap<String, usize> = BTreeMap::new();
        for part in v.and_then(Value::as_array).into_iter().flatten() {
            *counted.entry(f(part)).or_default() += 1;
        }
        let parts: Vec<String> =
            counted.into_iter().map(|(p, n)| if n > 1 { format!("{n}× {p}") } else { p }).collect();
        parts.join(" + ")
    };
    match op {
        "GetItem" | "DeleteItem" => format!("{op} {}", key(req.get("Key"))),
        "PutItem" => format!("{op} {}", key(req.get("Item"))),
        "UpdateItem" => format!("{op} {} [{}]", key(req.get("Key")), names(req)),
        "Query" | "Scan" => {
            let first = req
                .get("ExpressionAttributeValues")
                .and_then(Value::as_object)
                .and_then(|m| m.values().find(|v| v.get("S").is_some()));
            let index = req.get("IndexName").and_then(Value::as_str).unwrap_or("table");
            format!("{op} {index} {}", kind(first))
        }
        "TransactWriteItems" => format!("{op} {}", list(req.get("TransactItems"), &action)),
        "TransactGetItems" => format!(
            "{op} {}",
            list(req.get("TransactItems"), &|a: &Value| key(a.get("Get").and_then(|g| g.get("Key"))))
        ),
        "BatchWriteItem" => {
            let per_table = req.get("RequestItems").and_then(Value::as_object);
            let requests: Vec<Value> = per_table
                .map(|t| t.values().flat_map(|r| r.as_array().cloned().unwrap_or_default()).collect())
                .unwrap_or_default();
            let one = |r: &Value| match r.as_object().and_then(|o| o.iter().next()) {
                Some((k, body)) if k == "PutRequest" => format!("Put {}", key(body.get("Item"))),
                Some((k, body)) => format!("{k} {}", key(body.get("Key"))),
                None => String::new(),
            };
            format!("{op} {}", list(Some(&Value::Array(requests)), &one))
        }
        "BatchGetItem" => {
            let per_table = req.get("RequestItems").and_then(Value::as_object);
            let keys: Vec<Value> = per_table
                .map(|t| {
                    t.values()
                        .flat_map(|r| r.get("Keys").and_then(Value::as_array).cloned().unwrap_or_default())
                        .collect()
                })
                .unwrap_or_default();
            format!("{op} {}", list(Some(&Value::Array(keys)), &|k: &Value| key(Some(k))))
        }
        _ => op.to_owned(),
    }
}

/// The capacity an answer reports: one object, or one per table.
fn consumed(op: &str, resp: &Value) -> Capacity {
    let total = over_answers(resp, |c| c.get("CapacityUnits").and_then(Value::as_f64));
    if WRITES.contains(&op) { Capacity { read: 0.0, write: total } } else { Capacity { read: total, write: 0.0 } }
}

/// The units an answer under `ReturnConsumedCapacity: INDEXES` gives the
/// local-only pending index (zero from an engine that does not break its
/// answers down by index).
fn local_index_writes(resp: &Value) -> f64 {
    let path = format!("/GlobalSecondaryIndexes/{}/CapacityUnits", shop_store::keys::GSI_OUTBOX);
    over_answers(resp, |c| c.pointer(&path).and_then(Value::as_f64))
}

/// `units` summed over an answer's `ConsumedCapacity`: one object, or one
/// per table (transactions and batches); zero where it is absent.
fn over_answers(resp: &Value, units: impl Fn(&Value) -> Option<f64>) -> f64 {
    let units = |c: &Value| units(c).unwrap_or(0.0);
    match resp.get("ConsumedCapacity") {
        Some(Value::Array(all)) => all.iter().map(units).sum(),
        Some(one) => units(one),
        None => 0.0,
    }
}

/// DynamoDB's size of an item (attribute names plus values), approximately.
fn item_size(item: &Value) -> usize {
    item.as_object().map_or(0, |attrs| attrs.iter().map(|(name, v)| name.len() + value_size(v)).sum())
}

fn value_size(v: &Value) -> usize {
    let Some((kind, inner)) = v.as_object().and_then(|o| o.iter().next()) else { return 0 };
    match (kind.as_str(), inner) {
        ("S" | "B", Value::String(s)) => s.len(),
        ("N", Value::String(n)) => n.len() / 2 + 1,
        ("BOOL" | "NULL", _) => 1,
        ("M", m) => 3 + item_size(m),
        ("L", Value::Array(l)) => 3 + l.iter().map(|e| 1 + value_size(e)).sum::<usize>(),
        ("SS" | "NS" | "BS", Value::Array(l)) => l.iter().map(|e| e.as_str().map_or(0, str::len)).sum(),
        _ => 0,
    }
}

/// Write units of one item of `size` bytes (1 KB each, at least one).
fn wcu(size: usize) -> f64 {
    size.div_ceil(1024).max(1) as f64
}

/// Read units of `size` bytes read (4 KB each, at least one), halved when
/// eventually consistent.
fn rcu(size: usize, consistent: bool) -> f64 {
    let units = size.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

/// The least a call costs on DynamoDB by the item model: item sizes from
/// the request (writes) or the answer (reads); global secondary indexes,
/// which add a write per index an item is in, are not counted.
fn item_model(op: &str, req: &Value, resp: &Value) -> Capacity {
    let consistent = req.get("ConsistentRead").and_then(Value::as_bool).unwrap_or(false);
    let items = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    let write_of = |action: &Value| match action.get("Put") {
        Some(put) => wcu(put.get("Item").map_or(0, item_size)),
        None => 1.0,
    };
    match op {
        "PutItem" => Capacity { read: 0.0, write: wcu(req.get("Item").map_or(0, item_size)) },
        "UpdateItem" | "DeleteItem" => Capacity { read: 0.0, write: 1.0 },
        "BatchWriteItem" => {
            let per_table = req.get("RequestItems").and_then(Value::as_object);
            let write = per_table
                .map(|t| {
                    t.values()
                        .flat_map(|reqs| items(Some(reqs)))
                        .map(|r| match r.get("PutRequest") {
                            Some(p) => wcu(p.get("Item").map_or(0, item_size)),
                            None => 1.0,
                        })
                        .sum()
                })
                .unwrap_or(0.0);
            Capacity { read: 0.0, write }
        }
        "TransactWriteItems" => {
            let write = items(req.get("TransactItems")).iter().map(|a| 2.0 * write_of(a)).sum();
            Capacity { read: 0.0, write }
        }
        "GetItem" => Capacity { read: rcu(resp.get("Item").map_or(0, item_size), consistent), write: 0.0 },
        "TransactGetItems" => {
            let read =
                items(resp.get("Responses")).iter().map(|r| 2.0 * rcu(r.get("Item").map_or(0, item_size), true)).sum();
            Capacity { read, write: 0.0 }
        }
        "BatchGetItem" => {
            let per_table = resp.get("Responses").and_then(Value::as_object);
            let read = per_table
                .map(|t| t.values().flat_map(|r| items(Some(r))).map(|i| rcu(item_size(&i), false)).sum())
                .unwrap_or(0.0);
            Capacity { read, write: 0.0 }
        }
        // A query is charged on the total size it read, rounded up once.
        "Query" | "Scan" => {
            let size = items(resp.get("Items")).iter().map(item_size).sum();
            Capacity { read: rcu(size, consistent), write: 0.0 }
        }
        _ => Capacity::default(),
    }
}

/// The connector every stack client goes through: asks for the consumed
/// capacity, passes the call on, records it.
#[derive(Clone, Debug)]
struct Metered {
    inner: SharedHttpConnector,
    meter: Meter,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Meter")
    }
}

impl HttpConnector for Metered {
    fn call(&self, mut request: HttpRequest) -> HttpConnectorFuture {
        let op = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.split_once('.'))
            .map(|(_, op)| op.to_owned())
            .unwrap_or_default();
        let mut body = request.body().bytes().unwrap_or_default().to_vec();
        if self.meter.pricing
            && DATA_OPERATIONS.contains(&op.as_str())
            && let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(&body)
        {
            // After signing: DynamoDB Local and the embedded engine do not
            // check signatures (a metered client is never one for AWS).
            // INDEXES: the total as TOTAL gives it, and the local-only
            // index's part of it.
            fields.insert("ReturnConsumedCapacity".into(), "INDEXES".into());
            if let Ok(with) = serde_json::to_vec(&fields) {
                body = with;
                request.headers_mut().insert("content-length", body.len().to_string());
                *request.body_mut() = SdkBody::from(body.clone());
            }
        }
        let answer = self.inner.call(request);
        let meter = self.meter.clone();
        HttpConnectorFuture::new(async move {
            let response = answer.await?;
            let status = response.status().as_u16();
            meter.record(&op, &body, status, response.body().bytes().unwrap_or_default());
            Ok(response)
        })
    }
}

/// Plain HTTP to an endpoint (DynamoDB Local on the loopback), the answer
/// read whole so the meter can see it.
#[derive(Clone, Debug)]
struct Http(reqwest::Client);

impl HttpConnector for Http {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let http = self.0.clone();
        HttpConnectorFuture::new(async move {
            let io = |e: reqwest::Error| ConnectorError::io(Box::new(e));
            let mut req = http.post(request.uri()).body(request.body().bytes().unwrap_or_default().to_vec());
            for (name, value) in request.headers() {
                if !name.eq_ignore_ascii_case("content-length") {
                    req = req.header(name, value);
                }
            }
            let resp = req.send().await.map_err(io)?;
            let status = resp.status().as_u16();
            let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let bytes = resp.bytes().await.map_err(io)?;
            let status = StatusCode::try_from(status).map_err(|e| ConnectorError::other(Box::new(e), None))?;
            let mut response = HttpResponse::new(status, SdkBody::from(bytes));
            if let Some(ct) = content_type {
                response.headers_mut().insert("content-type", ct);
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_item_model_counts_units_as_dynamodb_bills_them() {
        let small = json!({"pk": {"S": "ORDER#1"}, "sk": {"S": "A"}});
        let big = json!({"pk": {"S": "x"}, "blob": {"S": "y".repeat(2_500)}});
        let tx = json!({"TransactItems": [{"Put": {"Item": small}}, {"Update": {}}, {"Put": {"Item": big}}]});
        // Transactions double: 2×1 + 2×1 + 2×3.
        assert_eq!(item_model("TransactWriteItems", &tx, &Value::Null).write, 10.0);
        let got = json!({"Item": small});
        assert_eq!(item_model("GetItem", &json!({}), &got).read, 0.5);
        assert_eq!(item_model("GetItem", &json!({"ConsistentRead": true}), &got).read, 1.0);
        // A query rounds its total up once; an empty one still costs.
        let items: Vec<Value> = (0..10).map(|_| json!({"blob": {"S": "z".repeat(1_000)}})).collect();
        assert_eq!(item_model("Query", &json!({}), &json!({"Items": items})).read, 1.5);
        assert_eq!(item_model("Query", &json!({}), &json!({"Items": []})).read, 0.5);
    }

    #[test]
    fn a_committed_write_the_filter_takes_wakes_its_watchers_and_nothing_else_does() {
        use shop_store::outbox::codec::{PENDING_SHARD, writes_pending_event};
        let meter = Meter::pricing();
        let outbox = meter.writes_with("outbox", writes_pending_event);
        let mut any = meter.writes_with("any", shop_embedded::every);
        let with = json!({"TransactItems": [{"Put": {"Item": {PENDING_SHARD: {"S": "0"}}}}]}).to_string();
        let without = json!({"TransactItems": [{"Update": {"UpdateExpression": format!("REMOVE {PENDING_SHARD}")}}]});
        let (with, without) = (with.as_bytes(), without.to_string().into_bytes());
        let without = without.as_slice();
        meter.record("TransactWriteItems", with, 400, b"{}");
        assert!(!outbox.has_changed().unwrap(), "a refused write wakes no one");
        meter.record("Query", with, 200, b"{}");
        assert!(!outbox.has_changed().unwrap(), "a read wakes no one");
        meter.record("TransactWriteItems", without, 200, b"{}");
        assert!(!outbox.has_changed().unwrap(), "clearing the pending attribute is not a match");
        assert!(any.has_changed().unwrap());
        any.mark_unchanged();
        meter.record("TransactWriteItems", with, 200, b"{}");
        assert!(outbox.has_changed().unwrap());
        assert!(any.has_changed().unwrap());
        let seen = meter.snapshot();
        assert_eq!(seen.calls.get("TransactWriteItems"), Some(&3));
        assert_eq!(seen.calls.get("Query"), Some(&1));
        // Only answered calls are priced: 2 × 1 WCU for each of the two.
        assert_eq!(seen.model.write, 4.0);
    }

    #[test]
    fn consumed_capacity_is_read_from_single_and_per_table_answers() {
        assert_eq!(consumed("GetItem", &json!({"ConsumedCapacity": {"CapacityUnits": 0.5}})).read, 0.5);
        let tx = json!({"ConsumedCapacity": [{"CapacityUnits": 4.0}, {"CapacityUnits": 2.0}]});
        assert_eq!(consumed("TransactWriteItems", &tx), Capacity { read: 0.0, write: 6.0 });
        assert_eq!(consumed("Query", &json!({})), Capacity::default());
        let tx = json!({"ConsumedCapacity": [{"CapacityUnits": 8.0,
            "GlobalSecondaryIndexes": {"pendingOutbox": {"CapacityUnits": 2.0}, "byDue": {"CapacityUnits": 2.0}}}]});
        assert_eq!(local_index_writes(&tx), 2.0);
        assert_eq!(local_index_writes(&json!({"ConsumedCapacity": {"CapacityUnits": 1.0}})), 0.0);
    }
}
