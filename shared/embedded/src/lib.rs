//! # shop-embedded
//!
//! The embedded DynamoDB engine of the local stack: a `dynoxide` database on a
//! SQLite file, reached by the ordinary `aws-sdk-dynamodb` client through an
//! in-process HTTP connector. The SDK serialises every call exactly as it
//! would for AWS; the connector hands the JSON body to dynoxide and returns
//! its JSON answer, with no socket in between. The local stack can also
//! serve the same calls on a loopback port ([`Engine::call`]; it checks the
//! callers' signatures), for `cargo lambda watch` or the AWS CLI.
//!
//! Only the local stack and tests depend on this crate: Lambda binaries never
//! link dynoxide or SQLite.
//!
//! Streams are deliberately not enabled on the embedded table: dynoxide's
//! stream writes scan every record ever written, so a long-lived local table
//! slows down with every write. Outbox items are delivered from a sparse index
//! instead (docs/adr/0002-local-outbox-delivery.md).

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use dynoxide::Database;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub mod owner;
pub mod watches;
pub use owner::Owner;
pub use watches::{WRITES, WriteFilter, WriteWatches, every};

/// An open embedded database. Cheap to clone: clones share one SQLite
/// connection, its thread, one set of call counters and one set of failpoints.
#[derive(Clone)]
pub struct Engine {
    db: Database,
    thread: EngineThread,
    probe: Probe,
}

/// The thread that runs every operation of the in-process clients.
///
/// dynoxide runs an operation to completion on the calling thread, holding
/// its one SQLite connection's mutex. Called on the async runtime's workers,
/// a second worker wanting the store blocked on that mutex instead of
/// serving HTTP: a 2-core `shop bench` used 1.15 cores of 2 and placed 323
/// orders/s. One thread that owns the calls, fed by a queue, keeps the
/// workers free for everything else (docs/adr/0009-saga-benchmark.md).
type EngineThread = Owner<Database>;

/// What the local stack and tests can see and break in the engine: calls per
/// operation, and armed failures. Nothing arms a failure outside tests and
/// `shop up`'s chaos options; an unarmed call costs one uncontended lock.
#[derive(Clone, Default)]
struct Probe(Arc<Mutex<ProbeState>>);

#[derive(Default)]
struct ProbeState {
    calls: HashMap<String, u64>,
    /// Time the engine thread spent on each operation.
    busy: HashMap<String, std::time::Duration>,
    /// TransactWriteItems calls still to cancel, each with its code.
    cancel: Vec<String>,
    /// Wake-ups on committed writes (see [`Engine::writes_with`]).
    watches: WriteWatches,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Engine(dynoxide)")
    }
}

impl Engine {
    /// Opens (or creates) the database file `dir/shop.db`.
    pub fn open_dir(dir: &Path) -> anyhow::Result<Engine> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("shop.db");
        let path = path.to_str().ok_or_else(|| anyhow::anyhow!("data dir is not UTF-8: {}", dir.display()))?;
        let db = Database::new(path).map_err(|e| anyhow::anyhow!("opening {path}: {e}"))?;
        // WAL with synchronous=NORMAL (dynoxide's "normal PRAGMAs"): a commit
        // survives the process being killed (SIGKILL included), only an OS
        // crash or power loss can drop the last commits. The default FULL
        // fsyncs every commit and caps the local stack near 500 orders/s.
        // See docs/adr/0003-embedded-durability.md.
        db.disable_bulk_loading().map_err(|e| anyhow::anyhow!("setting pragmas on {path}: {e}"))?;
        Engine::on(db)
    }

    /// A private in-memory database (tests).
    pub fn memory() -> anyhow::Result<Engine> {
        Engine::on(Database::memory().map_err(|e| anyhow::anyhow!("{e}"))?)
    }

    fn on(db: Database) -> anyhow::Result<Engine> {
        Ok(Engine { thread: Owner::start("dynoxide", db.clone())?, db, probe: Probe::default() })
    }

    /// How many times operation `op` (e.g. `TransactWriteItems`) was called
    /// through this engine's clients.
    pub fn calls(&self, op: &str) -> u64 {
        self.probe.0.lock().map(|p| p.calls.get(op).copied().unwrap_or(0)).unwrap_or(0)
    }

    /// How long the engine thread spent running operation `op` for this
    /// engine's clients (where a benchmark's time goes).
    pub fn busy(&self, op: &str) -> std::time::Duration {
        self.probe.0.lock().map(|p| p.busy.get(op).copied().unwrap_or_default()).unwrap_or_default()
    }

    /// The same database behind counters and failpoints of its own: what an
    /// observer (a benchmark's checks) reads through it is not counted as
    /// the stack's calls.
    pub fn observer(&self) -> Engine {
        Engine { db: self.db.clone(), thread: self.thread.clone(), probe: Probe::default() }
    }

    /// Changes after every successful write `filter` takes (see
    /// [`watches`]) — a stream's filter, in effect. The local stack's
    /// publisher waits on writes of outbox items and starts on the commit
    /// that gave it work instead of at its next poll, as a stream's event
    /// source mapping does; writes that are not its business do not wake it.
    /// Each receiver sees every change, so several loops can wait at once.
    pub fn writes_with(&self, name: &'static str, filter: WriteFilter) -> tokio::sync::watch::Receiver<u64> {
        let mut p = match self.probe.0.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        p.watches.subscribe(name, filter)
    }

    /// Cancels the next `count` TransactWriteItems calls as DynamoDB does,
    /// with `code` (`ThrottlingError`, `ValidationError`,
    /// `TransactionConflict`, ...) as the reason of every action; nothing is
    /// written. For tests of how callers treat each cancellation code.
    pub fn cancel_next_transactions(&self, code: &str, count: usize) {
        if let Ok(mut p) = self.probe.0.lock() {
            p.cancel.extend(std::iter::repeat_n(code.to_owned(), count));
        }
    }

    /// An SDK client whose requests are served by this database in-process.
    pub fn client(&self) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("local"))
            .credentials_provider(Credentials::new("local", "local", None, None, "embedded"))
            .endpoint_url("http://embedded.dynoxide")
            .http_client(self.http_client())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    fn http_client(&self) -> SharedHttpClient {
        let connector = self.connector();
        http_client_fn(move |_settings, _components| connector.clone())
    }

    /// The in-process connector behind [`Engine::client`], for a client
    /// built elsewhere (one that wraps it, as the local stack's meter does).
    pub fn connector(&self) -> SharedHttpConnector {
        SharedHttpConnector::new(InProcess(self.clone()))
    }

    /// Runs one call of the DynamoDB JSON API (`op` as the `X-Amz-Target`
    /// names it after its dot, e.g. `PutItem`; `body` its JSON) on the
    /// engine thread, counted and announced as the in-process clients'
    /// calls are: the local stack's DynamoDB port serves external tools
    /// through it once it has checked who is asking. Returns the HTTP
    /// status and the JSON answer.
    pub async fn call(&self, op: &str, body: Vec<u8>) -> (u16, String) {
        self.run(op, body, Tokens::Keep).await
    }

    async fn run(&self, op: &str, body: Vec<u8>, tokens: Tokens) -> (u16, String) {
        let (op, probe) = (op.to_owned(), self.probe.clone());
        let answer = self.thread.submit(move |db: &mut Database| probe.run(db, &op, &body, tokens));
        answer.await.unwrap_or_else(|_| internal("the engine thread stopped"))
    }

    /// Deletes items whose TTL attribute is in the past (DynamoDB does this in
    /// the background within days; the local stack does it on its schedule).
    pub fn sweep_ttl(&self) -> anyhow::Result<usize> {
        self.db.sweep_ttl().map_err(|e| anyhow::anyhow!("{e}"))
    }
}

#[derive(Clone)]
struct InProcess(Engine);

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcess(dynoxide)")
    }
}

const JSON: &str = "application/x-amz-json-1.0";

impl HttpConnector for InProcess {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let op = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.split_once('.'))
            .map(|(_, op)| op.to_owned())
            .unwrap_or_default();
        let body = request.body().bytes().unwrap_or_default().to_vec();
        let engine = self.0.clone();
        HttpConnectorFuture::new(async move {
            let (status, json) = engine.run(&op, body, Tokens::Strip).await;
            // dynoxide answers 200, 400, 500 or 501, all valid codes.
            let status = StatusCode::try_from(status).or_else(|_| StatusCode::try_from(500));
            let Ok(status) = status else { unreachable!("500 is a valid status code") };
            let mut response = HttpResponse::new(status, SdkBody::from(json));
            response.headers_mut().insert("content-type", JSON);
            Ok(response)
        })
    }
}

impl Probe {
    /// Runs one operation on the engine thread: counted, failed if armed,
    /// and announced to [`Engine::writes`] when it changed the table.
    fn run(&self, db: &Database, op: &str, body: &[u8], tokens: Tokens) -> (u16, String) {
        let cancel = self.0.lock().ok().and_then(|mut p| {
            *p.calls.entry(op.to_owned()).or_default() += 1;
            (op == "TransactWriteItems" && !p.cancel.is_empty()).then(|| p.cancel.remove(0))
        });
        let untokened;
        let body = match (op, tokens) {
            ("TransactWriteItems", Tokens::Strip) => {
                untokened = without_request_token(body);
                untokened.as_deref().unwrap_or(body)
            }
            _ => body,
        };
        let started = std::time::Instant::now();
        let (status, json) = match cancel {
            Some(code) => cancelled(body, &code),
            None => dispatch(db, op, body),
        };
        let took = started.elapsed();
        let Ok(mut p) = self.0.lock() else { return (status, json) };
        *p.busy.entry(op.to_owned()).or_default() += took;
        p.watches.announce(op, body, status);
        (status, json)
    }
}

/// What becomes of a transaction's `ClientRequestToken`.
#[derive(Clone, Copy)]
enum Tokens {
    /// The in-process clients' calls: dropped (see [`without_request_token`]).
    Strip,
    /// A call over the DynamoDB port: kept, so a client that retries after
    /// a lost answer gets DynamoDB's idempotent success.
    Keep,
}

/// The request without its `ClientRequestToken`, if it has one.
///
/// The SDK gives every TransactWriteItems a fresh token, and dynoxide keeps
/// each for DynamoDB's ten-minute idempotency window, scanning all of them
/// (and hashing the whole request) on every transaction: the cost of a
/// transaction grew with the transactions of the last ten minutes, and the
/// local stack slowed down as a run went on (docs/adr/0009-saga-benchmark.md).
/// In-process the token protects nothing: there is no network between the
/// SDK and the engine, so the SDK only retries a call the engine answered
/// with an error, before anything was written. Our code never sets a token
/// of its own. A token is a UUID: no quote or backslash inside.
fn without_request_token(body: &[u8]) -> Option<Vec<u8>> {
    const KEY: &[u8] = b"\"ClientRequestToken\":\"";
    let start = body.windows(KEY.len()).position(|w| w == KEY)?;
    let value = start + KEY.len();
    let end = value + body.get(value..)?.iter().position(|b| *b == b'"')? + 1;
    let (from, to) = match (body.get(end), start.checked_sub(1).and_then(|i| body.get(i))) {
        (Some(b','), _) => (start, end + 1),
        (_, Some(b',')) => (start - 1, end),
        _ => (start, end),
    };
    let mut out = Vec::with_capacity(body.len());
    out.extend_from_slice(body.get(..from)?);
    out.extend_from_slice(body.get(to..)?);
    Some(out)
}

fn internal(message: &str) -> (u16, String) {
    let body =
        serde_json::json!({"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": message});
    (500, body.to_string())
}

/// A `TransactionCanceledException` naming `code` for every action, shaped
/// as DynamoDB sends it.
fn cancelled(body: &[u8], code: &str) -> (u16, String) {
    let actions = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("TransactItems").and_then(|t| t.as_array()).map(Vec::len))
        .unwrap_or(1);
    let reasons: Vec<serde_json::Value> =
        (0..actions).map(|_| serde_json::json!({"Code": code, "Message": format!("injected {code}")})).collect();
    let body = serde_json::json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{code}]"),
        "CancellationReasons": reasons,
    });
    (400, body.to_string())
}

fn error(e: dynoxide::errors::DynoxideError) -> (u16, String) {
    (e.status_code(), e.to_json())
}

fn serialization(e: serde_json::Error) -> (u16, String) {
    let body = serde_json::json!({
        "__type": "com.amazon.coral.service#SerializationException",
        "Message": e.to_string(),
    });
    (400, body.to_string())
}

fn dispatch(db: &Database, op: &str, body: &[u8]) -> (u16, String) {
    macro_rules! ops {
        ($($name:literal => $method:ident),* $(,)?) => {
            match op {
                $($name => match serde_json::from_slice(body) {
                    Ok(req) => match db.$method(req) {
                        Ok(resp) => match serde_json::to_string(&resp) {
                            Ok(json) => (200, json),
                            Err(e) => (500, serde_json::json!({"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": e.to_string()}).to_string()),
                        },
                        Err(e) => error(e),
                    },
                    Err(e) => serialization(e),
                },)*
                _ => (400, serde_json::json!({"__type": "com.amazon.coral.service#UnknownOperationException"}).to_string()),
            }
        };
    }
    ops! {
        "CreateTable" => create_table,
        "DeleteTable" => delete_table,
        "DescribeTable" => describe_table,
        "UpdateTable" => update_table,
        "ListTables" => list_tables,
        "PutItem" => put_item,
        "GetItem" => get_item,
        "DeleteItem" => delete_item,
        "UpdateItem" => update_item,
        "Query" => query,
        "Scan" => scan,
        "BatchGetItem" => batch_get_item,
        "BatchWriteItem" => batch_write_item,
        "TransactWriteItems" => transact_write_items,
        "TransactGetItems" => transact_get_items,
        "UpdateTimeToLive" => update_time_to_live,
        "DescribeTimeToLive" => describe_time_to_live,
        // The table's stream (the streams API's own target prefix; the
        // operation names do not clash with the table API's).
        "ListStreams" => list_streams,
        "DescribeStream" => describe_stream,
        "GetShardIterator" => get_shard_iterator,
        "GetRecords" => get_records,
    }
}

#[cfg(test)]
mod tests {
    use super::without_request_token;

    #[test]
    fn the_request_token_is_cut_out_wherever_it_stands() {
        let cut = |b: &str| without_request_token(b.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(
            cut(r#"{"ClientRequestToken":"a-1","TransactItems":[]}"#).as_deref(),
            Some(r#"{"TransactItems":[]}"#)
        );
        assert_eq!(
            cut(r#"{"TransactItems":[],"ClientRequestToken":"a-1"}"#).as_deref(),
            Some(r#"{"TransactItems":[]}"#)
        );
        assert_eq!(cut(r#"{"ClientRequestToken":"a-1"}"#).as_deref(), Some("{}"));
        assert_eq!(cut(r#"{"TransactItems":[]}"#), None);
    }
}
