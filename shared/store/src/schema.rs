//! Creating the table (the local stack, tests, and DynamoDB Local). In AWS the
//! SAM template owns the same definition; `infra/template.yaml` must match it.

use crate::keys::{GSI_DUE, GSI_OUTBOX, GSI_USER};
use crate::outbox::codec::{PENDING_SHARD, PENDING_SORT};
use anyhow::Context;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus, TimeToLiveSpecification,
};

pub const TTL_ATTRIBUTE: &str = "ttl";

/// What each index projects, as the template spells it. `byDue`'s and
/// `pendingOutbox`'s readers act on the entries they query; `byUser`'s read
/// the items by key, so an order's or coupon's status change writes no
/// entry there (keys.rs's write-rate table; docs/deploy.md).
pub const PROJECTIONS: [(&str, &str); 3] = [(GSI_DUE, "ALL"), (GSI_OUTBOX, "ALL"), (GSI_USER, "KEYS_ONLY")];

fn projection_of(index: &str) -> ProjectionType {
    let named = PROJECTIONS.iter().find(|(name, _)| *name == index).map_or("ALL", |(_, p)| *p);
    ProjectionType::from(named)
}

fn attr(name: &str, t: ScalarAttributeType) -> anyhow::Result<AttributeDefinition> {
    Ok(AttributeDefinition::builder().attribute_name(name).attribute_type(t).build()?)
}

fn key(name: &str, t: KeyType) -> anyhow::Result<KeySchemaElement> {
    Ok(KeySchemaElement::builder().attribute_name(name).key_type(t).build()?)
}

fn gsi(name: &str, pk: &str, sk: &str) -> anyhow::Result<GlobalSecondaryIndex> {
    Ok(GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(pk, KeyType::Hash)?)
        .key_schema(key(sk, KeyType::Range)?)
        .projection(Projection::builder().projection_type(projection_of(name)).build())
        .build()?)
}

/// Whether the table gets a stream. The AWS engine (and DynamoDB Local) feed
/// the publisher from it; the embedded engine must not (see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streams {
    Enabled,
    Disabled,
}

/// Creates the table with its indexes and TTL if it does not exist, and waits
/// until it is ACTIVE.
pub async fn ensure_table(client: &aws_sdk_dynamodb::Client, table: &str, streams: Streams) -> anyhow::Result<()> {
    let exists = match client.describe_table().table_name(table).send().await {
        Ok(_) => true,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => false,
        Err(e) => return Err(anyhow::Error::new(e).context("describing table")),
    };
    if !exists {
        let mut req = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk", ScalarAttributeType::S)?)
            .attribute_definitions(attr("sk", ScalarAttributeType::S)?)
            .attribute_definitions(attr("dueShard", ScalarAttributeType::S)?)
            .attribute_definitions(attr("dueAt", ScalarAttributeType::N)?)
            .attribute_definitions(attr(PENDING_SHARD, ScalarAttributeType::S)?)
            .attribute_definitions(attr(PENDING_SORT, ScalarAttributeType::S)?)
            .attribute_definitions(attr("userPk", ScalarAttributeType::S)?)
            .attribute_definitions(attr("userSk", ScalarAttributeType::S)?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .global_secondary_indexes(gsi(GSI_DUE, "dueShard", "dueAt")?)
            .global_secondary_indexes(gsi(GSI_OUTBOX, PENDING_SHARD, PENDING_SORT)?)
            .global_secondary_indexes(gsi(GSI_USER, "userPk", "userSk")?);
        if streams == Streams::Enabled {
            req = req.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewImage)
                    .build()?,
            );
        }
        match req.send().await {
            Ok(_) => {}
            // Another process created it first.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(e) => return Err(anyhow::Error::new(e).context("creating table")),
        }
    }
    // DynamoDB (and DynamoDB Local) create tables asynchronously.
    for _ in 0..600 {
        let d = client.describe_table().table_name(table).send().await.context("describing table")?;
        if d.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let ttl = client.describe_time_to_live().table_name(table).send().await.context("describing TTL")?;
    let enabled = ttl
        .time_to_live_description()
        .and_then(|d| d.time_to_live_status())
        .is_some_and(|s| s.as_str() == "ENABLED" || s.as_str() == "ENABLING");
    if !enabled {
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder().enabled(true).attribute_name(TTL_ATTRIBUTE).build()?,
            )
            .send()
            .await
            .context("enabling TTL")?;
    }
    Ok(())
}
