//! Idempotency records: a request's key is recorded **with its answer, in
//! the transaction of the work it did** (ADR 0004, amended by 0026).
//!
//! A record `IDEM#<scope>#<key>` holds the hash of the request payload, the
//! stored response and when it may be forgotten (`keepUntil`, plus DynamoDB
//! `ttl`).
//!
//! - Nothing is written before the work: the use case's own transaction
//!   puts the record ([`Idempotency::op_record`]), on the condition that no
//!   live record has the key. The business write and the stored response
//!   commit together or not at all, so a crash between them cannot let a
//!   retry do the work twice, and a refused request leaves nothing behind.
//! - A request whose transaction loses that condition, or that the domain
//!   refuses, asks [`Idempotency::recorded`] whether the key was answered
//!   before: same payload → replay the stored response (so a retry after a
//!   lost answer gets its order, even though its own attempt would now be
//!   refused for want of the stock that order took); different payload →
//!   mismatch. Two requests with one key at the same moment both run; one
//!   commits, the other replays its answer.
//! - Records left INPROGRESS by the earlier protocol (a claim before the
//!   work) are honoured until their lock lapses.

use crate::attr::{Item, get_n, get_s, item, key, n, opt_s, s};
use crate::tx::{TxItem, TxOp};
use crate::{Store, StoreError, keys, schema};

/// Idempotency records (see [`Store::idempotency`]).
#[derive(Clone, Copy)]
pub struct Idempotency<'a>(pub(crate) &'a Store);
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use sha2::{Digest, Sha256};
use shop_domain::Timestamp;

/// A response kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// A request's key and payload, before anything is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pk: String,
    sk: String,
    payload_hash: String,
    now: Timestamp,
    policy: IdemPolicy,
}

/// What the store knows of a key that was used before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The same request completed before: answer with this.
    Replay(StoredResponse),
    /// The same key is held by a request of the earlier protocol, still running.
    InProgress,
    /// The key was used with a different payload.
    PayloadMismatch,
}

/// How long records live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdemPolicy {
    /// How long a completed record is kept (Stripe keeps keys 24 h).
    pub keep_secs: i64,
    /// How long an INPROGRESS lock is honoured before another caller may
    /// take it (records of the earlier protocol); also the lease of a
    /// consumer's claim (the saga log).
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

/// Whether a record stops a new request with its key: it is kept, and it
/// is not an INPROGRESS lock of the earlier protocol that lapsed.
const LIVE: &str = "attribute_exists(pk) AND keepUntil >= :now AND (#status = :completed OR inProgressUntil >= :now)";

impl Idempotency<'_> {
    /// The request's key in `scope`, for a payload whose hash is `payload_hash`.
    pub fn ticket(
        &self,
        scope: &str,
        idem_key: &str,
        payload_hash: &str,
        now: Timestamp,
        policy: IdemPolicy,
    ) -> Ticket {
        let (pk, sk) = keys::idempotency(scope, idem_key);
        Ticket { pk, sk, payload_hash: payload_hash.to_owned(), now, policy }
    }

    /// Records the key with `response` inside the caller's transaction, on
    /// the condition that no live record has it: the action fails
    /// ([`TxItem::Idempotency`]) when the key was used before.
    pub fn op_record(&self, t: &Ticket, response: &StoredResponse) -> anyhow::Result<TxOp> {
        let keep_until = t.now.plus_secs(t.policy.keep_secs);
        let mut record = item([
            ("type", s("IDEM")),
            ("status", s("COMPLETED")),
            ("payloadHash", s(t.payload_hash.as_str())),
            ("responseStatus", n(response.status)),
            ("responseBody", s(response.body.as_str())),
            ("keepUntil", n(keep_until.millis())),
            (schema::TTL_ATTRIBUTE, n(keep_until.seconds())),
        ]);
        record.extend(key(t.pk.clone(), t.sk.clone()));
        let put = Put::builder()
            .table_name(self.0.table())
            .set_item(Some(record))
            .condition_expression(format!("NOT ({LIVE})"))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", n(t.now.millis()))
            .expression_attribute_values(":completed", s("COMPLETED"))
            .build()?;
        Ok(TxOp { item: TransactWriteItem::builder().put(put).build(), label: TxItem::Idempotency })
    }

    /// What a live record of the key says, if there is one.
    pub async fn recorded(&self, t: &Ticket) -> Result<Option<Claim>, StoreError> {
        let Some(existing) = self.0.get((t.pk.clone(), t.sk.clone())).await? else { return Ok(None) };
        let now = t.now.millis();
        let kept = get_n::<i64>(&existing, "keepUntil").is_ok_and(|k| k >= now);
        let held = opt_s(&existing, "status") == Some("COMPLETED")
            || get_n::<i64>(&existing, "inProgressUntil").is_ok_and(|u| u >= now);
        if !(kept && held) {
            return Ok(None);
        }
        decide(&existing, &t.payload_hash).map(Some)
    }
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
