//! The ports: what the use cases need from the outside world, in the
//! outside world's own terms, with no transport in them. Adapters
//! (`crate::adapters`) implement them for production; the local stack and
//! tests implement them again (the PG simulator speaks the same HTTP API, so
//! it is reached through the production adapter).
//!
//! - [`PaymentGateway`]: the Toss Payments API. Outcomes are what the caller
//!   must act on, not HTTP details: `Ok(payment)` is the PG's view of the
//!   payment; [`PgError::Declined`] a definite "no"; [`PgError::AlreadyProcessed`]
//!   "look it up and reconcile"; [`PgError::NotFound`]; [`PgError::Unknown`]
//!   (timeout, 5xx, lost response): the money may or may not have moved.
//! - [`EventBus`]: EventBridge `PutEvents`: a call can succeed as a whole and
//!   still fail some entries, so the result is per entry.
//! - [`DataPlatform`]: the analytics export, deduplicating by event id.
//! - [`Sealer`]: authenticated encryption of personal data kept at rest
//!   (refund accounts): KMS data keys in AWS, the data dir's key locally.

use sha2::{Digest, Sha256};
use shop_domain::{Money, OrderId, PaymentKey, PaymentMethod, Timestamp};

/// Seals and opens small secrets kept at rest. `context` is bound to the
/// sealed bytes (AES-GCM's associated data): a box opens only for the item
/// it was sealed for, never when copied to another order's refund.
#[async_trait::async_trait]
pub trait Sealer: Send + Sync {
    async fn seal(&self, plain: &[u8], context: &[u8]) -> anyhow::Result<shop_store::refund_accounts::Sealed>;
    async fn open(&self, sealed: &shop_store::refund_accounts::Sealed, context: &[u8]) -> anyhow::Result<Vec<u8>>;
}

/// Payment status as Toss reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgStatus {
    Ready,
    InProgress,
    WaitingForDeposit,
    Done,
    Canceled,
    PartialCanceled,
    Aborted,
    Expired,
}

impl PgStatus {
    pub fn parse(s: &str) -> Option<PgStatus> {
        Some(match s {
            "READY" => PgStatus::Ready,
            "IN_PROGRESS" => PgStatus::InProgress,
            "WAITING_FOR_DEPOSIT" => PgStatus::WaitingForDeposit,
            "DONE" => PgStatus::Done,
            "CANCELED" => PgStatus::Canceled,
            "PARTIAL_CANCELED" => PgStatus::PartialCanceled,
            "ABORTED" => PgStatus::Aborted,
            "EXPIRED" => PgStatus::Expired,
            _ => return None,
        })
    }

    /// Whether the status is something that happened to the payment, as
    /// opposed to READY / IN_PROGRESS: a checkout nobody has confirmed yet,
    /// which anybody holding the key can make the PG show.
    pub fn is_outcome(self) -> bool {
        match self {
            PgStatus::Ready | PgStatus::InProgress => false,
            PgStatus::WaitingForDeposit
            | PgStatus::Done
            | PgStatus::Canceled
            | PgStatus::PartialCanceled
            | PgStatus::Aborted
            | PgStatus::Expired => true,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PgStatus::Ready => "READY",
            PgStatus::InProgress => "IN_PROGRESS",
            PgStatus::WaitingForDeposit => "WAITING_FOR_DEPOSIT",
            PgStatus::Done => "DONE",
            PgStatus::Canceled => "CANCELED",
            PgStatus::PartialCanceled => "PARTIAL_CANCELED",
            PgStatus::Aborted => "ABORTED",
            PgStatus::Expired => "EXPIRED",
        }
    }
}

/// The fields of a Toss `Payment` object the shop relies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgPayment {
    pub payment_key: PaymentKey,
    pub order_id: OrderId,
    pub status: PgStatus,
    pub method: PaymentMethod,
    pub total_amount: Money,
    /// What is left after cancellations.
    pub balance_amount: Money,
    pub approved_at: Option<String>,
    /// For virtual accounts: the account to pay into, as the PG sent it.
    pub virtual_account: Option<serde_json::Value>,
    /// For virtual accounts: `virtualAccount.dueDate`, when it stops taking deposits.
    pub deposit_due: Option<Timestamp>,
}

/// A cancel at the PG: a whole payment, or a part of it (a partial refund).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgCancel {
    pub reason: String,
    /// `None`: everything that remains.
    pub amount: Option<Money>,
    /// The order's numbered refund it carries out. The number keys the
    /// Idempotency-Key: two refunds of one amount are two cancels, and a
    /// redelivered refund is one.
    pub refund_number: Option<u32>,
    /// Where a paid virtual account's money goes back to
    /// (`refundReceiveAccount`); `None` for a card, or an account closed
    /// before its deposit.
    pub refund_account: Option<shop_domain::RefundAccount>,
}

impl PgCancel {
    /// Everything that remains, for `reason`.
    pub fn whole(reason: &str) -> PgCancel {
        PgCancel { reason: reason.to_owned(), amount: None, refund_number: None, refund_account: None }
    }

    /// The `Idempotency-Key` of this cancel of `payment_key`.
    pub fn idempotency_key(&self, payment_key: &PaymentKey) -> String {
        match self.refund_number {
            Some(n) => idempotency_key("refund", &[payment_key.as_str(), &n.to_string()]),
            // One cancel per payment and amount: a retry reuses the key.
            None => {
                let amount = self.amount.map_or_else(|| "full".to_owned(), |a| a.won().to_string());
                idempotency_key("cancel", &[payment_key.as_str(), &amount])
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgError {
    #[error("declined by the PG: {code}: {message}")]
    Declined { code: String, message: String },
    #[error("the PG already processed this payment")]
    AlreadyProcessed,
    #[error("the PG has no such payment")]
    NotFound,
    #[error("PG outcome unknown: {0}")]
    Unknown(String),
}

#[async_trait::async_trait]
pub trait PaymentGateway: Send + Sync {
    /// `POST /v1/payments/confirm`.
    async fn confirm(&self, payment_key: &PaymentKey, order_id: &OrderId, amount: Money) -> Result<PgPayment, PgError>;
    /// `POST /v1/payments/{paymentKey}/cancel`.
    async fn cancel(&self, payment_key: &PaymentKey, cancel: &PgCancel) -> Result<PgPayment, PgError>;
    /// `GET /v1/payments/{paymentKey}`.
    async fn payment(&self, payment_key: &PaymentKey) -> Result<PgPayment, PgError>;
    /// `GET /v1/payments/orders/{orderId}`.
    async fn payment_by_order(&self, order_id: &OrderId) -> Result<PgPayment, PgError>;
}

/// The `Idempotency-Key` of a mutating PG call: derived from the operation
/// and what it is about (order and payment for a confirm, payment and amount
/// for a cancel), so a retry of the same call reuses it and a different
/// payment never does. Toss keeps keys 15 days; SHA-256 hex fits its
/// 300-character limit.
pub fn idempotency_key(operation: &str, subject: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(operation.as_bytes());
    for part in subject {
        h.update(b"\n");
        h.update(part.as_bytes());
    }
    format!("{operation}-{}", hex_lower(&h.finalize()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One event for the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusEntry {
    pub source: String,
    pub detail_type: String,
    /// JSON text of the detail (the outbox item's `detail`).
    pub detail: String,
    /// X-Ray trace header, when the write that produced the event had one.
    pub trace_header: Option<String>,
}

impl BusEntry {
    /// Size as EventBridge counts it toward the 256 KB request limit.
    pub fn size(&self) -> usize {
        self.source.len() + self.detail_type.len() + self.detail.len() + 64
    }
}

/// The outcome of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryResult {
    Accepted { event_id: String },
    Failed { code: String, message: String },
}

/// EventBridge's limits on one PutEvents call.
pub const MAX_ENTRIES: usize = 10;
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

#[async_trait::async_trait]
pub trait EventBus: Send + Sync {
    /// Puts at most [`MAX_ENTRIES`] entries; one result per entry, in order.
    /// `Err` means the call itself failed (nothing is known to be accepted).
    async fn put_events(&self, entries: &[BusEntry]) -> anyhow::Result<Vec<EntryResult>>;
}

/// Splits entries into PutEvents calls of at most 10 entries and 256 KB.
pub fn batches(entries: &[BusEntry]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, e) in entries.iter().enumerate() {
        let full = i - start == MAX_ENTRIES || (i > start && bytes + e.size() > MAX_REQUEST_BYTES);
        if full {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += e.size();
    }
    if start < entries.len() {
        out.push(start..entries.len());
    }
    out
}

/// The data platform: receives order outcomes over HTTP, deduplicating by
/// `Idempotency-Key` (the event id).
#[async_trait::async_trait]
pub trait DataPlatform: Send + Sync {
    async fn deliver(&self, event_id: &str, body: &serde_json::Value) -> Result<(), String>;
}

/// The waiting room's pushes to live WebSocket connections: API Gateway's
/// `PostToConnection` in AWS, `shop up`'s own sockets locally. One call
/// per connection and message.
#[async_trait::async_trait]
pub trait Pusher: Send + Sync {
    async fn push(&self, connection: &str, message: &str) -> Result<(), PushError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The connection is closed (API Gateway's `GoneException`): forget it.
    #[error("the connection is gone")]
    Gone,
    #[error("push failed: {0}")]
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(detail_len: usize) -> BusEntry {
        BusEntry { source: "s".into(), detail_type: "t".into(), detail: "x".repeat(detail_len), trace_header: None }
    }

    #[test]
    fn batches_respect_count_and_size() {
        let small: Vec<_> = (0..23).map(|_| entry(10)).collect();
        assert_eq!(batches(&small), vec![0..10, 10..20, 20..23]);
        let big: Vec<_> = (0..5).map(|_| entry(100 * 1024)).collect();
        assert_eq!(batches(&big), vec![0..2, 2..4, 4..5]);
        assert!(batches(&[]).is_empty());
    }
}
