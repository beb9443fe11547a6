//! # shop-store
//!
//! The one persistence adapter: `aws-sdk-dynamodb` on a single table. It runs
//! unchanged on two engines — real DynamoDB (Lambda) and the embedded
//! dynoxide engine (local stack, tests; see `shop-embedded`) — because the
//! engine is only the SDK client's HTTP connector and endpoint.
//!
//! Every write that must be atomic is one `TransactWriteItems` built from
//! labelled actions ([`tx::TxOp`]). A cancelled transaction comes back
//! honestly: [`StoreError::Conflict`] (naming the item) only for a failed
//! condition or a concurrent transaction, [`StoreError::Throttled`] for
//! throttling, anything else [`StoreError::Unexpected`]. Every state
//! transition is conditional (order `version`, coupon `status`, points
//! `balance`, stock `available`).
//!
//! Rooms: [`keys`] (the one key table: every item and index key, local-only
//! ones included), [`entities`] (items ↔ domain values), [`ops`] (the
//! transaction actions), [`lists`] (the paged reads of the list routes,
//! campaigns), [`tx`], [`idempotency`], [`saga`] (consumer
//! outcomes and the event log for republish), [`stats`] (the saga statistics of
//! the console's overview), [`schema`] (the table), [`attr`].

pub mod attr;
pub mod entities;
pub mod idempotency;
pub mod keys;
pub mod lists;
pub mod ops;
pub mod saga;
pub mod schema;
pub mod stats;
pub mod tx;

use anyhow::Context;
use attr::{Item, key, s};
use aws_sdk_dynamodb::types::{AttributeValue, Get, KeysAndAttributes, PutRequest, TransactGetItem, WriteRequest};
use entities::StoredEvent;
pub use lists::OrderPosition;
use shop_domain::points::LedgerEntry;
use shop_domain::{
    Coupon, CouponId, Money, Order, OrderId, Payment, PaymentKey, Product, ProductId, Timestamp, UserId,
};
use std::collections::HashMap;
use std::sync::Arc;
pub use tx::{ConflictReason, Tx, TxItem, TxOp};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: the named item was not in the expected
    /// state, or another transaction was writing it at the same moment.
    /// Only these two are conflicts.
    #[error("conflict on {item}: {reason}")]
    Conflict { item: TxItem, reason: ConflictReason },
    /// DynamoDB throttled the request (the SDK's own retries included):
    /// worth retrying after a backoff, never a 409 for the client.
    #[error("throttled: {0}")]
    Throttled(String),
    /// Anything else (validation, permissions, a bug): a logged 500.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl StoreError {
    /// Whether the same write, re-read and re-decided, may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Conflict { .. } | StoreError::Throttled(_) => true,
            StoreError::Unexpected(_) => false,
        }
    }

    /// Whether a retry should wait first: after a failed condition the state
    /// has already moved on, so re-reading at once is right.
    pub fn needs_backoff(&self) -> bool {
        match self {
            StoreError::Conflict { reason: ConflictReason::ConditionFailed, .. } => false,
            StoreError::Conflict { reason: ConflictReason::TransactionConflict, .. } | StoreError::Throttled(_) => true,
            StoreError::Unexpected(_) => false,
        }
    }

    fn unexpected<E: std::error::Error + Send + Sync + 'static>(context: &'static str) -> impl FnOnce(E) -> StoreError {
        move |e| StoreError::Unexpected(anyhow::Error::new(e).context(context))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A query read a page (at most 1 MB, DynamoDB's limit per call) at a
/// time: what reads a range of any length holds one page in memory.
pub struct Pages {
    query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    start: Option<HashMap<String, AttributeValue>>,
    done: bool,
}

/// Items per page of a paged read. DynamoDB stops a page at 1 MB anyway;
/// the explicit limit also bounds what an engine reads per call (the
/// embedded engine, without one, reads every remaining item of the range
/// for each page: quadratic over a large partition or table).
pub const PAGE_ITEMS: i32 = 1_000;

impl Pages {
    pub fn of(query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder) -> Pages {
        Pages { query: query.limit(PAGE_ITEMS), start: None, done: false }
    }

    /// The next page; `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Item>>> {
        if self.done {
            return Ok(None);
        }
        // The cursor moves only on success: a failed page is read again.
        let out = self
            .query
            .clone()
            .set_exclusive_start_key(self.start.clone())
            .send()
            .await
            .map_err(StoreError::unexpected("Query"))?;
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => self.start = Some(k),
            _ => self.done = true,
        }
        Ok(Some(out.items.unwrap_or_default()))
    }
}

/// Where a page of a user's ledger ends: the sort key of its last row,
/// without the `LEDGER#` prefix (`<ms, 13 digits>#<txId>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerCursor(pub String);

/// The store: an SDK client and the table name. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    client: aws_sdk_dynamodb::Client,
    table: Arc<str>,
}

/// What placing an order reads, in one consistent snapshot.
#[derive(Debug, Clone)]
pub struct PlacementInputs {
    /// In the order asked for; `None` for an unknown product.
    pub products: Vec<Option<Product>>,
    /// `None` when no coupon was asked for; `Some(None)` when it does not exist.
    pub coupon: Option<Option<Coupon>>,
    pub points_balance: Money,
}

impl Store {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<Arc<str>>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Runs `tx` as one TransactWriteItems call.
    pub async fn transact(&self, tx: Tx) -> Result<()> {
        if tx.is_empty() {
            return Ok(());
        }
        if tx.len() > tx::MAX_ACTIONS {
            return Err(anyhow::anyhow!("transaction of {} actions exceeds {}", tx.len(), tx::MAX_ACTIONS).into());
        }
        let (items, labels) = tx.into_parts();
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(()),
            Err(e) => Err(tx::map_cancel(e.into_service_error(), &labels)),
        }
    }

    async fn get(&self, (pk, sk): (String, String)) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&*self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::unexpected("GetItem"))?;
        Ok(out.item)
    }

    pub async fn get_order(&self, id: &OrderId) -> Result<Option<Order>> {
        self.get(keys::order(id)).await?.map(|it| entities::order_from(&it)).transpose().map_err(Into::into)
    }

    pub async fn get_product(&self, id: &ProductId) -> Result<Option<Product>> {
        self.get(keys::product(id)).await?.map(|it| entities::product_from(&it)).transpose().map_err(Into::into)
    }

    pub async fn get_coupon(&self, id: &CouponId) -> Result<Option<Coupon>> {
        self.get(keys::coupon(id)).await?.map(|it| entities::coupon_from(&it)).transpose().map_err(Into::into)
    }

    /// A user without a points item has a balance of zero.
    pub async fn get_points(&self, user: &UserId) -> Result<Money> {
        match self.get(keys::points(user)).await? {
            Some(it) => Ok(entities::points_from(&it)?),
            None => Ok(Money::ZERO),
        }
    }

    /// Products, coupon and points balance in one TransactGetItems call, so
    /// the decision is made on a consistent snapshot.
    pub async fn load_placement(
        &self,
        user: &UserId,
        products: &[ProductId],
        coupon: Option<&CouponId>,
    ) -> Result<PlacementInputs> {
        let mut keys_wanted: Vec<(String, String)> = products.iter().map(keys::product).collect();
        keys_wanted.push(keys::points(user));
        if let Some(c) = coupon {
            keys_wanted.push(keys::coupon(c));
        }
        let gets = keys_wanted
            .iter()
            .map(|(pk, sk)| {
                let get = Get::builder().table_name(&*self.table).set_key(Some(key(pk.clone(), sk.clone()))).build()?;
                Ok(TransactGetItem::builder().get(get).build())
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let out = self
            .client
            .transact_get_items()
            .set_transact_items(Some(gets))
            .send()
            .await
            .map_err(StoreError::unexpected("TransactGetItems"))?;
        let mut responses = out.responses.unwrap_or_default().into_iter().map(|r| r.item);
        let mut found = Vec::with_capacity(products.len());
        for _ in products {
            found.push(responses.next().flatten().map(|it| entities::product_from(&it)).transpose()?);
        }
        let points_balance = match responses.next().flatten() {
            Some(it) => entities::points_from(&it)?,
            None => Money::ZERO,
        };
        let coupon = match coupon {
            Some(_) => Some(responses.next().flatten().map(|it| entities::coupon_from(&it)).transpose()?),
            None => None,
        };
        Ok(PlacementInputs { products: found, coupon, points_balance })
    }

    /// Every item matching `condition` (`:a` and `:b` bound to `values`),
    /// following pagination, in key order.
    async fn query_all(&self, index: Option<&str>, condition: &str, values: [(&str, &str); 2]) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let query = || {
            let mut q = self
                .client
                .query()
                .table_name(&*self.table)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression(condition)
                // Strongly consistent reads exist on the table only, not on a GSI.
                .consistent_read(index.is_none());
            for (name, value) in values {
                q = q.expression_attribute_values(name, s(value));
            }
            q
        };
        let mut pages = Pages::of(query());
        while let Some(page) = pages.next_page().await? {
            items.extend(page);
        }
        Ok(items)
    }

    /// Every item of one partition whose sort key starts with `prefix`, in order.
    pub async fn query_prefix(&self, pk: &str, prefix: &str) -> Result<Vec<Item>> {
        self.query_all(None, "pk = :a AND begins_with(sk, :b)", [(":a", pk), (":b", prefix)]).await
    }

    /// One page of a user's ledger, newest first: at most `limit` rows
    /// older than the row `after` (a cursor from an earlier page), and the
    /// cursor of the next page when there is one. Consistent with the
    /// balance read after it.
    pub async fn ledger_page(
        &self,
        user: &UserId,
        limit: usize,
        after: Option<&LedgerCursor>,
    ) -> Result<(Vec<LedgerEntry>, Option<LedgerCursor>)> {
        let (pk, _) = keys::points(user);
        // One row more than asked: whether a next page exists, without
        // handing out a cursor to an empty page.
        let fetch = i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX);
        let out = self
            .client
            .query()
            .table_name(&*self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(pk.clone()))
            .expression_attribute_values(":prefix", s("LEDGER#"))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(fetch)
            .set_exclusive_start_key(after.map(|c| key(pk.clone(), format!("LEDGER#{}", c.0))))
            .send()
            .await
            .map_err(StoreError::unexpected("Query ledger"))?;
        let mut rows = out.items.unwrap_or_default();
        let more = rows.len() > limit;
        rows.truncate(limit);
        let entries = rows.iter().map(entities::ledger_from).collect::<anyhow::Result<Vec<_>>>()?;
        let next = match (more, entries.last()) {
            (true, Some(last)) => Some(LedgerCursor(format!("{:013}#{}", last.at.millis(), last.tx_id))),
            _ => None,
        };
        Ok((entries, next))
    }

    pub async fn ledger(&self, user: &UserId) -> Result<Vec<LedgerEntry>> {
        let (pk, _) = keys::points(user);
        let items = self.query_prefix(&pk, "LEDGER#").await?;
        Ok(items.iter().map(entities::ledger_from).collect::<anyhow::Result<_>>()?)
    }

    /// A user's ledger rows written in `[from, to]` (by the row's time),
    /// oldest first: one order's rows are read without the rest of the
    /// user's history.
    pub async fn ledger_between(&self, user: &UserId, from: Timestamp, to: Timestamp) -> Result<Vec<LedgerEntry>> {
        let (pk, _) = keys::points(user);
        let (low, high) =
            (format!("LEDGER#{:013}", from.millis().max(0)), format!("LEDGER#{:013}~", to.millis().max(0)));
        let mut items = Vec::new();
        let mut pages = Pages::of(
            self.client
                .query()
                .table_name(&*self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":low", s(low))
                .expression_attribute_values(":high", s(high))
                .consistent_read(true),
        );
        while let Some(page) = pages.next_page().await? {
            items.extend(page);
        }
        Ok(items.iter().map(entities::ledger_from).collect::<anyhow::Result<_>>()?)
    }

    /// The outbox event at this key (from a stream record's keys), if any.
    pub async fn event_at(&self, pk: &str, sk: &str) -> Result<Option<StoredEvent>> {
        let item = self.get((pk.to_owned(), sk.to_owned())).await?;
        Ok(item
            .filter(|it| sk.starts_with("EVENT#") && it.contains_key("detail"))
            .as_ref()
            .map(entities::stored_event_from)
            .transpose()?)
    }

    pub async fn events_of(&self, order: &OrderId) -> Result<Vec<StoredEvent>> {
        let (pk, _) = keys::order(order);
        let items = self.query_prefix(&pk, "EVENT#").await?;
        Ok(items.iter().map(entities::stored_event_from).collect::<anyhow::Result<_>>()?)
    }

    /// One page (at most `limit` items) from each shard of a sharded index,
    /// oldest first within each shard. `condition` names the shard `:shard`.
    async fn query_shards(
        &self,
        index: &str,
        condition: &str,
        shard_prefix: &str,
        extra: Option<(&str, AttributeValue)>,
        limit: i32,
    ) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        for shard in 0..keys::SHARDS {
            let out = self
                .client
                .query()
                .table_name(&*self.table)
                .index_name(index)
                .key_condition_expression(condition)
                .expression_attribute_values(":shard", s(format!("{shard_prefix}#{shard}")));
            let out = match &extra {
                Some((name, value)) => out.expression_attribute_values(*name, value.clone()),
                None => out,
            };
            let out = out.limit(limit).send().await.map_err(StoreError::unexpected("Query sharded index"))?;
            items.extend(out.items.unwrap_or_default());
        }
        Ok(items)
    }

    /// Items of one kind in the sparse `byDue` index with `dueAt <= until`.
    async fn due(&self, kind: &str, until: Timestamp, limit: i32) -> Result<Vec<Item>> {
        let until = (":until", attr::n(until.millis()));
        self.query_shards(keys::GSI_DUE, "dueShard = :shard AND dueAt <= :until", kind, Some(until), limit).await
    }

    /// Orders still PENDING_PAYMENT whose `expiresAt <= now`, at most `limit`.
    /// Queries the sparse `byDue` index; never scans.
    pub async fn orders_due_to_expire(&self, now: Timestamp, limit: i32) -> Result<Vec<OrderId>> {
        let mut ids = Vec::new();
        for it in self.due("EXPIRY", now, limit).await? {
            ids.push(OrderId::parse(attr::get_s(&it, "orderId")?).context("orderId")?);
        }
        ids.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(ids)
    }

    /// Payments CONFIRMING or UNKNOWN not updated since `before`, at most `limit`.
    pub async fn payments_in_doubt(&self, before: Timestamp, limit: i32) -> Result<Vec<Payment>> {
        let mut found = Vec::new();
        for it in self.due("RECONCILE", before, limit).await? {
            found.push(entities::payment_from(&it)?);
        }
        found.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(found)
    }

    /// Virtual accounts waiting for their deposit whose next check is due
    /// (`checkAt <= now`), least recently checked first, at most `limit`.
    pub async fn deposits_due(&self, now: Timestamp, limit: i32) -> Result<Vec<Payment>> {
        let mut found = Vec::new();
        for it in self.due("DEPOSIT", now, limit).await? {
            found.push(entities::payment_from(&it)?);
        }
        found.sort_by_key(|p| p.check_at.unwrap_or(p.updated_at));
        found.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(found)
    }

    pub async fn get_payment(&self, key: &PaymentKey) -> Result<Option<Payment>> {
        self.get(keys::payment(key)).await?.map(|it| entities::payment_from(&it)).transpose().map_err(Into::into)
    }

    /// Outbox events not yet published, oldest first within each shard.
    pub async fn pending_events(&self, limit_per_shard: i32) -> Result<Vec<StoredEvent>> {
        let items =
            self.query_shards(keys::GSI_OUTBOX, "outboxShard = :shard", "OUTBOX", None, limit_per_shard).await?;
        let mut events = items.iter().map(entities::stored_event_from).collect::<anyhow::Result<Vec<_>>>()?;
        events.sort_by(|a, b| (a.occurred_at, &a.event_id).cmp(&(b.occurred_at, &b.event_id)));
        Ok(events)
    }

    /// How many outbox events wait for the publisher (counted up to `cap`
    /// per shard: a backlog, never the history), whether a shard reached
    /// the cap (the count is then a floor), and when the oldest was written.
    pub async fn pending_summary(&self, cap: i32) -> Result<(usize, bool, Option<Timestamp>)> {
        let mut count = 0usize;
        let mut capped = false;
        for shard in 0..keys::SHARDS {
            let out = self
                .client
                .query()
                .table_name(&*self.table)
                .index_name(keys::GSI_OUTBOX)
                .key_condition_expression("outboxShard = :shard")
                .expression_attribute_values(":shard", s(format!("OUTBOX#{shard}")))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .limit(cap)
                .send()
                .await
                .map_err(StoreError::unexpected("Query pending count"))?;
            count += usize::try_from(out.count).unwrap_or(0);
            capped |= out.count >= cap;
        }
        let oldest = self.pending_events(1).await?.first().map(|e| e.occurred_at);
        Ok((count, capped, oldest))
    }

    /// Takes a published event out of the pending index and dates its
    /// first publication (`publishedAt`, kept through republishes).
    /// Conditional on the item existing (a missing one is no error).
    /// Answers whether this was the event's first publication: the saga
    /// statistics count an event then, and never again.
    pub async fn mark_published(&self, pk: &str, sk: &str, now: Timestamp) -> Result<bool> {
        let res = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(key(pk, sk)))
            .update_expression("REMOVE outboxShard, outboxSk SET publishedAt = if_not_exists(publishedAt, :now)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", attr::n(now.millis()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        match res {
            Ok(out) => Ok(out.attributes.is_some_and(|old| !old.contains_key("publishedAt"))),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(StoreError::unexpected("UpdateItem mark_published")(e)),
        }
    }

    /// A user's orders (newest first) from the `byUser` index.
    pub async fn orders_of(&self, user: &UserId, limit: i32) -> Result<Vec<Order>> {
        let out = self
            .client
            .query()
            .table_name(&*self.table)
            .index_name(keys::GSI_USER)
            .key_condition_expression("userPk = :u AND begins_with(userSk, :p)")
            .expression_attribute_values(":u", s(keys::user_pk(user)))
            .expression_attribute_values(":p", s("ORDER#"))
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await
            .map_err(StoreError::unexpected("Query byUser"))?;
        Ok(out.items.unwrap_or_default().iter().map(entities::order_from).collect::<anyhow::Result<_>>()?)
    }

    /// A user's coupons from the `byUser` index.
    pub async fn coupons_of(&self, user: &UserId) -> Result<Vec<Coupon>> {
        let condition = "userPk = :a AND begins_with(userSk, :b)";
        let items =
            self.query_all(Some(keys::GSI_USER), condition, [(":a", &keys::user_pk(user)), (":b", "COUPON#")]).await?;
        Ok(items.iter().map(entities::coupon_from).collect::<anyhow::Result<_>>()?)
    }

    /// Writes many new items with BatchWriteItem (25 puts per call, DynamoDB's
    /// limit), resending unprocessed items with backoff; fails rather than
    /// report a partial write as complete. Unconditional: only for items no
    /// one else writes (queue messages, archive entries).
    pub async fn batch_put(&self, items: Vec<Item>) -> Result<()> {
        for chunk in items.chunks(25) {
            let requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|it| {
                    let put = PutRequest::builder().set_item(Some(it.clone())).build();
                    put.map(|p| WriteRequest::builder().put_request(p).build())
                })
                .collect::<std::result::Result<_, _>>()
                .map_err(StoreError::unexpected("PutRequest"))?;
            until_processed("BatchWriteItem", requests, |pending: Vec<WriteRequest>| async move {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&*self.table, pending)
                    .send()
                    .await
                    .map_err(StoreError::unexpected("BatchWriteItem"))?;
                let rest = out.unprocessed_items.and_then(|mut u| u.remove(&*self.table)).unwrap_or_default();
                let left = rest.len();
                Ok((Vec::new(), (left > 0).then_some((rest, left))))
            })
            .await?;
        }
        Ok(())
    }

    /// Reads many items by key with BatchGetItem, retrying unprocessed keys.
    pub async fn batch_get(&self, wanted: Vec<(String, String)>) -> Result<Vec<Item>> {
        let mut found = Vec::new();
        for chunk in wanted.chunks(100) {
            let keys = KeysAndAttributes::builder()
                .set_keys(Some(chunk.iter().map(|(pk, sk)| key(pk.clone(), sk.clone())).collect()))
                .consistent_read(true)
                .build()
                .map_err(StoreError::unexpected("KeysAndAttributes"))?;
            found.extend(
                until_processed("BatchGetItem", keys, |pending: KeysAndAttributes| async move {
                    let out = self
                        .client
                        .batch_get_item()
                        .request_items(&*self.table, pending)
                        .send()
                        .await
                        .map_err(StoreError::unexpected("BatchGetItem"))?;
                    let items = out.responses.and_then(|mut r| r.remove(&*self.table)).unwrap_or_default();
                    let rest = out.unprocessed_keys.and_then(|mut u| u.remove(&*self.table));
                    let rest = rest.filter(|r| !r.keys().is_empty()).map(|r| {
                        let left = r.keys().len();
                        (r, left)
                    });
                    Ok((items, rest))
                })
                .await?,
            );
        }
        Ok(found)
    }
}

/// Resends of a batch call's unprocessed part before giving up.
const BATCH_ATTEMPTS: u32 = 10;

/// Runs a batch call until the engine has processed all of it. `call` sends
/// `pending` and returns the items it read and, if any, what the engine
/// left unprocessed (with its count); that part is sent again after a
/// backoff. Partial results are never returned as if complete: after
/// [`BATCH_ATTEMPTS`] the call fails as throttled.
async fn until_processed<P, F, Fut>(op: &'static str, mut pending: P, mut call: F) -> Result<Vec<Item>>
where
    F: FnMut(P) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<Item>, Option<(P, usize)>)>>,
{
    let mut found = Vec::new();
    for attempt in 0..BATCH_ATTEMPTS {
        let (items, rest) = call(pending).await?;
        found.extend(items);
        match rest {
            None => return Ok(found),
            Some((_, left)) if attempt + 1 == BATCH_ATTEMPTS => {
                return Err(StoreError::Throttled(format!(
                    "{op} left {left} unprocessed after {BATCH_ATTEMPTS} attempts"
                )));
            }
            Some((rest, _)) => {
                pending = rest;
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt.min(6))).await;
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    #[tokio::test]
    async fn the_unprocessed_part_is_sent_again_and_every_read_is_kept() {
        let item = |n: u8| Item::from([("n".to_owned(), AttributeValue::N(n.to_string()))]);
        let mut sent = Vec::new();
        // Five keys: the engine reads two per call and leaves the rest.
        let found = until_processed("BatchGetItem", vec![1u8, 2, 3, 4, 5], |pending: Vec<u8>| {
            sent.push(pending.clone());
            let (now, rest) = pending.split_at(pending.len().min(2));
            let (now, rest) = (now.to_vec(), rest.to_vec());
            async move {
                let left = rest.len();
                Ok((now.into_iter().map(item).collect(), (left > 0).then_some((rest, left))))
            }
        })
        .await
        .unwrap();
        assert_eq!(found, (1..=5).map(item).collect::<Vec<_>>());
        assert_eq!(sent, vec![vec![1, 2, 3, 4, 5], vec![3, 4, 5], vec![5]]);
    }
}
