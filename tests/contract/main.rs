//! The store contract suite: every transaction, condition, conflict mapping
//! and index query the product uses, run against each DynamoDB engine.
//!
//! - `dynoxide`: always (the embedded engine, in memory).
//! - `dynamodb_local`: ignored by default; run with `-- --ignored` and
//!   `DYNAMODB_LOCAL_ENDPOINT` set (CI starts AWS's DynamoDB Local with
//!   `infra/scripts/dynamodb-local.sh`). Run without the endpoint, they fail:
//!   a case never passes without having run.

mod cases;
mod outbox_cases;

use aws_sdk_dynamodb::config::{Credentials, Region};
use shop_store::Store;
use shop_store::schema::{Streams, ensure_table};

pub async fn dynoxide_store() -> Store {
    let engine = shop_embedded::Engine::memory().expect("engine");
    let client = engine.client();
    ensure_table(&client, "shop", Streams::Disabled).await.expect("table");
    Store::new(client, "shop")
}

/// A fresh table on DynamoDB Local at `DYNAMODB_LOCAL_ENDPOINT`.
pub async fn dynamodb_local_store() -> Store {
    let Ok(endpoint) = std::env::var("DYNAMODB_LOCAL_ENDPOINT") else {
        panic!(
            "DYNAMODB_LOCAL_ENDPOINT is not set (e.g. http://127.0.0.1:8000; \
             `eval \"$(infra/scripts/dynamodb-local.sh start)\"` starts one)"
        );
    };
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(shop_app::adapters::aws::https_client())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "test"))
        .endpoint_url(endpoint)
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = format!("shop-{}", uuid::Uuid::now_v7().simple());
    // DynamoDB Local supports streams: create the table as AWS would.
    ensure_table(&client, &table, Streams::Enabled).await.expect("table on DynamoDB Local");
    Store::new(client, table)
}

/// One test per engine for each contract case.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test]
                async fn dynoxide() {
                    crate::cases::$case(crate::dynoxide_store().await).await;
                }

                #[tokio::test]
                #[ignore = "needs DynamoDB Local: DYNAMODB_LOCAL_ENDPOINT=... cargo test --test contract -- --ignored"]
                async fn dynamodb_local() {
                    crate::cases::$case(crate::dynamodb_local_store().await).await;
                }
            }
        )*
    };
}

contract!(
    table_has_indexes_ttl_and_is_created_once,
    stock_reservation_is_conditional,
    a_cancelled_transaction_names_its_item_and_writes_nothing,
    coupon_transitions_are_conditional,
    points_balance_is_exact_and_ledgered,
    orders_are_versioned,
    events_are_written_once_and_leave_the_outbox_index,
    the_event_log_reads_every_shard_of_a_day_oldest_first,
    expiry_index_holds_only_due_pending_orders,
    user_index_lists_orders_and_coupons,
    placement_inputs_are_one_snapshot,
    idempotency_records_follow_powertools_semantics,
    idempotency_completes_inside_the_business_transaction,
    batch_get_reads_many_keys,
    payments_are_versioned_and_in_doubt_ones_are_due_for_reconciliation,
    waiting_virtual_accounts_are_due_at_their_next_check,
    saga_log_entries_count_attempts_and_a_duplicate_never_overwrites_an_outcome,
    a_partition_larger_than_a_page_is_read_whole,
    a_campaign_counts_claims_up_to_its_total_and_one_per_user,
    the_catalog_and_a_users_orders_are_read_a_page_at_a_time,
    saga_statistics_add_per_minute_and_keep_running_totals,
    the_console_finds_events_by_correlation_status_and_failure,
    every_event_reads_back_from_the_tables_own_stream_as_it_was_written,
);

/// The new images of every record on `table`'s stream so far, in stream
/// order (DynamoDB JSON), read with the streams API from the engine behind
/// `client`: the embedded engine's own stream, or DynamoDB Local's.
pub async fn stream_images(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<serde_json::Value> {
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
                    images.push(serde_json::Value::Object(
                        image.iter().map(|(k, v)| (k.clone(), stream_value(v))).collect(),
                    ));
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
