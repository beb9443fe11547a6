//! The calls every aggregate's room shares: one item by key, a partition or
//! a sharded index read to the end a page at a time, the sparse `byDue`
//! index, batches that resend what the engine left unprocessed, and one
//! transaction. Nothing here knows an aggregate.

use crate::attr::{Item, key, s};
use crate::error::{Result, StoreError};
use crate::tx::{self, Tx};
use crate::{Store, attr, keys};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use shop_domain::Timestamp;
use std::collections::HashMap;

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

    /// Every remaining item (for ranges known to be small).
    pub async fn all(mut self) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        while let Some(page) = self.next_page().await? {
            items.extend(page);
        }
        Ok(items)
    }
}

impl Store {
    /// Runs `tx` as one TransactWriteItems call.
    pub async fn transact(&self, tx: Tx) -> Result<()> {
        if tx.is_empty() {
            return Ok(());
        }
        if tx.len() > tx::MAX_ACTIONS {
            return Err(anyhow::anyhow!("transaction of {} actions exceeds {}", tx.len(), tx::MAX_ACTIONS).into());
        }
        let (items, labels) = tx.into_parts();
        match self.client().transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(()),
            Err(e) => Err(tx::map_cancel(e.into_service_error(), &labels)),
        }
    }

    /// One item by key, strongly consistent.
    pub(crate) async fn get(&self, (pk, sk): (String, String)) -> Result<Option<Item>> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::unexpected("GetItem"))?;
        Ok(out.item)
    }

    /// The item a failed conditional write returned
    /// (`ReturnValuesOnConditionCheckFailure`), or, on an engine that
    /// returns none, the item as it is now.
    pub(crate) async fn returned_or_read(&self, returned: Option<Item>, at: (String, String)) -> Result<Option<Item>> {
        match returned {
            Some(it) => Ok(Some(it)),
            None => self.get(at).await,
        }
    }

    /// Every item matching `condition` (`:a` and `:b` bound to `values`),
    /// following pagination, in key order.
    pub(crate) async fn query_all(
        &self,
        index: Option<&str>,
        condition: &str,
        values: [(&str, &str); 2],
    ) -> Result<Vec<Item>> {
        let mut q = self
            .client()
            .query()
            .table_name(self.table())
            .set_index_name(index.map(str::to_owned))
            .key_condition_expression(condition)
            // Strongly consistent reads exist on the table only, not on a GSI.
            .consistent_read(index.is_none());
        for (name, value) in values {
            q = q.expression_attribute_values(name, s(value));
        }
        Pages::of(q).all().await
    }

    /// Every item of one partition whose sort key starts with `prefix`, in order.
    pub async fn query_prefix(&self, pk: &str, prefix: &str) -> Result<Vec<Item>> {
        self.query_all(None, "pk = :a AND begins_with(sk, :b)", [(":a", pk), (":b", prefix)]).await
    }

    /// One page of a partition's items whose sort key starts with `prefix`
    /// (every item, for an empty one),
    /// strongly consistent: at most `limit` after the key `after`, in key
    /// order or (`forward: false`) reversed, and whether more follow.
    pub async fn prefix_page(
        &self,
        pk: &str,
        prefix: &str,
        limit: usize,
        forward: bool,
        after: Option<(String, String)>,
    ) -> Result<(Vec<Item>, bool)> {
        // One item more than asked: whether a next page exists, without
        // handing out a position to an empty page.
        let fetch = i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX);
        let query = self.client().query().table_name(self.table()).expression_attribute_values(":pk", s(pk));
        // DynamoDB refuses an empty string in a key condition: the whole
        // partition is `pk = :pk` alone.
        let query = match prefix.is_empty() {
            true => query.key_condition_expression("pk = :pk"),
            false => query
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s(prefix)),
        };
        let out = query
            .scan_index_forward(forward)
            .consistent_read(true)
            .limit(fetch)
            .set_exclusive_start_key(after.map(|(pk, sk)| key(pk, sk)))
            .send()
            .await
            .map_err(StoreError::unexpected("Query a page"))?;
        let mut items = out.items.unwrap_or_default();
        let more = items.len() > limit;
        items.truncate(limit);
        Ok((items, more))
    }

    /// One page (at most `limit` items) from each shard of a sharded index,
    /// oldest first within each shard. `condition` names the shard `:shard`.
    pub(crate) async fn query_shards(
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
                .client()
                .query()
                .table_name(self.table())
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
    pub(crate) async fn due(&self, kind: &str, until: Timestamp, limit: i32) -> Result<Vec<Item>> {
        let until = (":until", attr::n(until.millis()));
        self.query_shards(keys::GSI_DUE, "dueShard = :shard AND dueAt <= :until", kind, Some(until), limit).await
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
                    .client()
                    .batch_write_item()
                    .request_items(self.table(), pending)
                    .send()
                    .await
                    .map_err(StoreError::unexpected("BatchWriteItem"))?;
                let rest = out.unprocessed_items.and_then(|mut u| u.remove(self.table())).unwrap_or_default();
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
                        .client()
                        .batch_get_item()
                        .request_items(self.table(), pending)
                        .send()
                        .await
                        .map_err(StoreError::unexpected("BatchGetItem"))?;
                    let items = out.responses.and_then(|mut r| r.remove(self.table())).unwrap_or_default();
                    let rest = out.unprocessed_keys.and_then(|mut u| u.remove(self.table()));
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

    /// The items a keys-only index's entries point at, read by key
    /// (strongly consistent: the item as it is now, not as the index last
    /// saw it), in the entries' order. An item deleted since the index was
    /// read is left out.
    pub(crate) async fn items_of(&self, entries: &[Item]) -> Result<Vec<Item>> {
        let wanted = entries
            .iter()
            .map(|e| Ok((attr::get_s(e, "pk")?.to_owned(), attr::get_s(e, "sk")?.to_owned())))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut by_key: HashMap<(String, String), Item> = HashMap::with_capacity(wanted.len());
        for it in self.batch_get(wanted.clone()).await? {
            let at = (attr::get_s(&it, "pk")?.to_owned(), attr::get_s(&it, "sk")?.to_owned());
            by_key.insert(at, it);
        }
        Ok(wanted.iter().filter_map(|k| by_key.remove(k)).collect())
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
