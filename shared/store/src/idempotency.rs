//! Idempotency records with the semantics of AWS Lambda Powertools.
//!
//! A record `IDEM#<scope>#<key>` holds a status (INPROGRESS or COMPLETED),
//! the hash of the request payload, the stored response, when it may be
//! forgotten (`keepUntil`, plus DynamoDB `ttl`) and how long an INPROGRESS
//! lock is honoured (`inProgressUntil`: the invocation's remaining time).
//!
//! - The lock is one conditional put: it succeeds when there is no record,
//!   the record has expired, or an INPROGRESS lock was abandoned (its holder
//!   crashed or timed out).
//! - A lost race returns the existing record in the same call
//!   (`ReturnValuesOnConditionCheckFailure`), which decides: same payload and
//!   COMPLETED → replay the stored response; different payload → mismatch;
//!   otherwise → in progress.
//! - Unlike Powertools, a use case can complete the record *inside its own
//!   business transaction* ([`Idempotency::op_complete`]): then the business
//!   write and the stored response commit together, and a crash between them
//!   cannot let a retry do the work twice.
//! - On a failed handler the record is deleted, so the client may retry.

use crate::attr::{Item, get_n, get_s, item, key, n, opt_s, s};
use crate::tx::{TxItem, TxOp};
use crate::{Store, StoreError, keys, schema};

/// Idempotency records (see [`Store::idempotency`]).
#[derive(Clone, Copy)]
pub struct Idempotency<'a>(pub(crate) &'a Store);
use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use sha2::{Digest, Sha256};
use shop_domain::Timestamp;

/// A response kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdemLock {
    pk: String,
    sk: String,
    token: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This caller holds the lock and must complete or release it.
    Acquired(IdemLock),
    /// The same request completed before: answer with this.
    Replay(StoredResponse),
    /// The same key is being processed right now.
    InProgress,
    /// The key was used with a different payload.
    PayloadMismatch,
}

/// How long records live.
#[derive(Debug, Clone, Copy)]
pub struct IdemPolicy {
    /// How long a completed record is kept (Stripe keeps keys 24 h).
    pub keep_secs: i64,
    /// How long an INPROGRESS lock is honoured before another caller may take it.
    pub in_progress_ms: i64,
}

impl Default for IdemPolicy {
    fn default() -> Self {
        Self { keep_secs: 24 * 3600, in_progress_ms: 30_000 }
    }
}

/// SHA-256 of the canonical JSON of `value` (object keys sorted, no
/// whitespace), so key order and formatting do not make a payload "different".
pub fn payload_hash(value: &serde_json::Value) -> String {
    fn canonical(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<_> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push(':');
                    if let Some(v) = m.get(k) {
                        canonical(v, out);
                    }
                }
                out.push('}');
            }
            serde_json::Value::Array(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical(v, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    canonical(value, &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Idempotency<'_> {
    /// Tries to take the lock for (`scope`, `key`).
    pub async fn claim(
        &self,
        scope: &str,
        idem_key: &str,
        payload_hash: &str,
        now: Timestamp,
        policy: IdemPolicy,
    ) -> Result<Claim, StoreError> {
        let (pk, sk) = keys::idempotency(scope, idem_key);
        let token = uuid::Uuid::now_v7().to_string();
        let keep_until = now.plus_secs(policy.keep_secs);
        let mut record = item([
            ("type", s("IDEM")),
            ("status", s("INPROGRESS")),
            ("payloadHash", s(payload_hash)),
            ("lockToken", s(token.clone())),
            ("inProgressUntil", n(now.millis() + policy.in_progress_ms)),
            ("keepUntil", n(keep_until.millis())),
            (schema::TTL_ATTRIBUTE, n(keep_until.seconds())),
        ]);
        record.extend(key(pk.clone(), sk.clone()));
        let res = self
            .0
            .client()
            .put_item()
            .table_name(self.0.table())
            .set_item(Some(record))
            .condition_expression(
                "attribute_not_exists(pk) OR keepUntil < :now OR (#status = :inprogress AND inProgressUntil < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", n(now.millis()))
            .expression_attribute_values(":inprogress", s("INPROGRESS"))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let existing = match res {
            Ok(_) => return Ok(Claim::Acquired(IdemLock { pk, sk, token })),
            Err(e) => match e.into_service_error() {
                aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => c.item,
                other => return Err(StoreError::Unexpected(anyhow::Error::new(other).context("PutItem idempotency"))),
            },
        };
        // Deleted between the two calls: the caller may simply retry.
        let Some(existing) = self.0.returned_or_read(existing, (pk, sk)).await? else {
            return Ok(Claim::InProgress);
        };
        decide(&existing, payload_hash)
    }

    /// Completes the record inside the caller's transaction: the business
    /// write and the stored response commit together.
    pub fn op_complete(&self, lock: &IdemLock, response: &StoredResponse) -> anyhow::Result<TxOp> {
        let update = complete_update(self.0.table(), lock, response)?;
        Ok(TxOp { item: TransactWriteItem::builder().update(update).build(), label: TxItem::Idempotency })
    }

    /// Completes the record on its own (for handlers with no transaction).
    pub async fn complete(&self, lock: &IdemLock, response: &StoredResponse) -> Result<(), StoreError> {
        let mut tx = crate::Tx::new();
        tx.push(self.op_complete(lock, response)?);
        self.0.transact(tx).await
    }

    /// Deletes the record after a failed attempt so the key can be retried.
    /// Only this lock's holder can delete it.
    pub async fn release(&self, lock: &IdemLock) -> Result<(), StoreError> {
        let res = self
            .0
            .client()
            .delete_item()
            .table_name(self.0.table())
            .set_key(Some(key(lock.pk.clone(), lock.sk.clone())))
            .condition_expression("lockToken = :t")
            .expression_attribute_values(":t", s(lock.token.clone()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(StoreError::Unexpected(anyhow::Error::new(e).context("DeleteItem idempotency"))),
        }
    }
}

fn complete_update(table: &str, lock: &IdemLock, response: &StoredResponse) -> anyhow::Result<Update> {
    Ok(Update::builder()
        .table_name(table)
        .set_key(Some(key(lock.pk.clone(), lock.sk.clone())))
        .update_expression("SET #status = :completed, responseStatus = :rs, responseBody = :rb REMOVE inProgressUntil")
        .condition_expression("lockToken = :t AND #status = :inprogress")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":completed", s("COMPLETED"))
        .expression_attribute_values(":inprogress", s("INPROGRESS"))
        .expression_attribute_values(":rs", n(response.status))
        .expression_attribute_values(":rb", s(response.body.clone()))
        .expression_attribute_values(":t", s(lock.token.clone()))
        .build()?)
}

fn decide(existing: &Item, payload_hash: &str) -> Result<Claim, StoreError> {
    if get_s(existing, "payloadHash")? != payload_hash {
        return Ok(Claim::PayloadMismatch);
    }
    match get_s(existing, "status")? {
        "COMPLETED" => Ok(Claim::Replay(StoredResponse {
            status: get_n(existing, "responseStatus")?,
            body: opt_s(existing, "responseBody").unwrap_or_default().to_owned(),
        })),
        _ => Ok(Claim::InProgress),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_ignores_key_order_and_whitespace() {
        let a: serde_json::Value = serde_json::from_str(r#"{"b":1,"a":[{"y":2,"x":1}]}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str("{ \"a\": [ {\"x\":1, \"y\":2} ], \"b\": 1 }").unwrap();
        let c: serde_json::Value = serde_json::from_str(r#"{"b":2,"a":[{"y":2,"x":1}]}"#).unwrap();
        assert_eq!(payload_hash(&a), payload_hash(&b));
        assert_ne!(payload_hash(&a), payload_hash(&c));
    }
}
