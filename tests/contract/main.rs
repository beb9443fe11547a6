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
    the_audit_trail_is_appended_finished_once_and_paged_newest_first,
    stock_reservation_is_conditional,
    a_cancelled_transaction_names_its_item_and_writes_nothing,
    coupon_transitions_are_conditional,
    points_balance_is_exact_and_ledgered,
    orders_are_versioned,
    events_are_written_once_and_leave_the_outbox_index,
    the_event_log_reads_every_shard_of_a_day_oldest_first,
    expiry_index_holds_only_due_pending_orders,
    user_index_lists_orders_and_coupons,
    sale_queue_counters_and_tickets,
    placement_inputs_are_one_snapshot,
    idempotency_keys_are_recorded_with_their_answer,
    batch_get_reads_many_keys,
    payments_are_versioned_and_in_doubt_ones_are_due_for_reconciliation,
    waiting_virtual_accounts_are_due_at_their_next_check,
    saga_log_entries_count_attempts_and_a_duplicate_never_overwrites_an_outcome,
    a_consumer_claims_an_event_in_the_saga_log_under_a_lease,
    a_partition_larger_than_a_page_is_read_whole,
    a_campaign_counts_claims_up_to_its_total_and_one_per_user,
    the_catalog_and_a_users_orders_are_read_a_page_at_a_time,
    saga_statistics_add_per_minute_and_keep_running_totals,
    the_console_finds_events_by_correlation_status_and_failure,
    a_capped_search_of_the_event_log_pages_through_every_shard_without_a_gap,
    every_event_reads_back_from_the_tables_own_stream_as_it_was_written,
);
