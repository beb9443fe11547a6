//! The PG's state: its payments, the answers stored per `Idempotency-Key`,
//! the calls and webhook attempts it logs, and the faults it is armed with
//! — the types, the schema, and each statement run inside a caller's
//! transaction ([`rows`]).

use crate::sim::db::{self, faults};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Confirm,
    Cancel,
    Lookup,
    Webhook,
    /// A deposit into a virtual account (`POST /v1/sim/deposit`).
    Deposit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Decline,
    Error,
    Timeout,
    LostResponse,
    Duplicate,
    Delay,
    Reorder,
    /// Webhooks only: never sent, not even retried (lost for good).
    Lost,
    /// Deposits only: the deposit is DONE, then the PG moves the payment
    /// back to WAITING_FOR_DEPOSIT (what Toss documents for rare network
    /// cases), and a moment later DONE again — each with its webhook.
    Regress,
    /// Cancels only: the bank refuses the refund account of the next
    /// deposited virtual account's cancel (`INVALID_REFUND_ACCOUNT_INFO`:
    /// the holder's name does not match the account).
    RefundAccount,
}

impl Op {
    /// Whether this operation acts on `fault`: anything else would be armed
    /// and do nothing, so it is refused (400) when armed.
    pub fn honours(self, fault: FaultKind) -> bool {
        use FaultKind::*;
        match (self, fault) {
            (Op::Confirm | Op::Cancel, Decline | Error | Timeout | LostResponse | Delay) => true,
            (Op::Cancel, RefundAccount) => true,
            (Op::Confirm, RefundAccount) => false,
            (Op::Confirm | Op::Cancel, Duplicate | Reorder | Lost | Regress) => false,
            (Op::Lookup, Error | Timeout | LostResponse | Delay) => true,
            (Op::Lookup, Decline | Duplicate | Reorder | Lost | Regress | RefundAccount) => false,
            (Op::Webhook, Duplicate | Reorder | Delay | Error | Timeout | LostResponse | Lost) => true,
            (Op::Webhook, Decline | Regress | RefundAccount) => false,
            (Op::Deposit, Regress) => true,
            (
                Op::Deposit,
                Decline | Error | Timeout | LostResponse | Duplicate | Delay | Reorder | Lost | RefundAccount,
            ) => false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    pub op: Op,
    pub fault: FaultKind,
    /// Calls left to affect; -1 until cleared.
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimPayment {
    pub payment_key: String,
    pub order_id: String,
    pub total_amount: u64,
    pub balance_amount: u64,
    /// CARD or VIRTUAL_ACCOUNT.
    pub method: String,
    pub status: String,
    pub requested_at: String,
    pub approved_at: Option<String>,
    pub virtual_account: Option<Value>,
    pub cancels: Vec<Value>,
    /// A virtual account's due date (epoch ms).
    #[serde(default)]
    pub deposit_due_ms: Option<i64>,
    /// Whether a part of it may be cancelled (Toss's `isPartialCancelable`;
    /// some card products and escrow payments refuse it).
    #[serde(default = "partial_by_default")]
    pub partial_cancelable: bool,
    /// When the widget opened it (READY) and when the shopper authenticated
    /// (IN_PROGRESS), epoch ms on the simulator's clock: unconfirmed past
    /// its window ([`READY_WINDOW_MS`], [`IN_PROGRESS_WINDOW_MS`]) it is
    /// EXPIRED, as Toss's are.
    #[serde(default)]
    pub ready_ms: Option<i64>,
    #[serde(default)]
    pub in_progress_ms: Option<i64>,
}

/// Toss: a READY payment must be authenticated within 30 minutes.
pub const READY_WINDOW_MS: i64 = 30 * 60_000;
/// Toss: an IN_PROGRESS (authenticated) payment must be confirmed within 10 minutes.
pub const IN_PROGRESS_WINDOW_MS: i64 = 10 * 60_000;

fn partial_by_default() -> bool {
    true
}

impl SimPayment {
    /// EXPIRED when its window lapsed by `now_ms` unconfirmed (READY for
    /// 30 minutes, IN_PROGRESS for 10); whether it just did.
    pub(super) fn lapse(&mut self, now_ms: i64) -> bool {
        let since = |t: Option<i64>, window: i64| t.is_some_and(|t| now_ms >= t.saturating_add(window));
        let lapsed = match self.status.as_str() {
            "READY" => since(self.ready_ms, READY_WINDOW_MS),
            "IN_PROGRESS" => since(self.in_progress_ms, IN_PROGRESS_WINDOW_MS),
            _ => false,
        };
        if lapsed {
            self.status = "EXPIRED".into();
        }
        lapsed
    }

    /// The payment as Toss answers it at `now_ms`.
    pub(super) fn to_toss(&self, now_ms: i64) -> Value {
        let virtual_account = self.virtual_account.clone().map(|mut va| {
            if let (Some(fields), Some(due)) = (va.as_object_mut(), self.deposit_due_ms) {
                fields.insert("expired".into(), Value::Bool(now_ms >= due));
            }
            va
        });
        json!({
            "mId": "tosspayments",
            "version": "2022-11-16",
            "paymentKey": self.payment_key,
            "orderId": self.order_id,
            "orderName": "shop order",
            "status": self.status,
            "method": if self.method == "VIRTUAL_ACCOUNT" { "가상계좌" } else { "카드" },
            "totalAmount": self.total_amount,
            "balanceAmount": self.balance_amount,
            "isPartialCancelable": self.partial_cancelable,
            "currency": "KRW",
            "requestedAt": self.requested_at,
            "approvedAt": self.approved_at,
            "virtualAccount": virtual_account,
            "cancels": if self.cancels.is_empty() { Value::Null } else { Value::Array(self.cancels.clone()) },
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    pub op: Op,
    pub order_id: Option<String>,
    pub payment_key: Option<String>,
    pub idempotency_key: Option<String>,
    /// The caller's `X-Correlation-Id` and W3C `traceparent`: which request
    /// of ours made the call.
    pub correlation_id: Option<String>,
    pub traceparent: Option<String>,
    pub outcome: String,
    /// When the call arrived (epoch ms, the simulator's clock).
    #[serde(default)]
    pub at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub event_type: String,
    pub payment_key: Option<String>,
    pub order_id: String,
    pub attempt: u32,
    /// HTTP status we answered, or 0 when the attempt did not reach us.
    pub status: u16,
    /// When the attempt was made (epoch ms, the simulator's clock).
    #[serde(default)]
    pub at: Option<i64>,
}

impl Op {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Op::Confirm => "confirm",
            Op::Cancel => "cancel",
            Op::Lookup => "lookup",
            Op::Webhook => "webhook",
            Op::Deposit => "deposit",
        }
    }
}

impl FaultKind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            FaultKind::Decline => "decline",
            FaultKind::Error => "error",
            FaultKind::Timeout => "timeout",
            FaultKind::LostResponse => "lost_response",
            FaultKind::Duplicate => "duplicate",
            FaultKind::Delay => "delay",
            FaultKind::Reorder => "reorder",
            FaultKind::Lost => "lost",
            FaultKind::Regress => "regress",
            FaultKind::RefundAccount => "refund_account",
        }
    }
}

/// How long Toss keeps an `Idempotency-Key`'s answer: 15 days.
pub const IDEMPOTENCY_KEEP_MS: i64 = 15 * 86_400_000;

/// Every payment (by key, and by order: an order's latest checkout is the
/// one a lookup by order id finds), the stored answer of every
/// `Idempotency-Key`, and the calls and webhook attempts for the listings.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS payments (
    seq INTEGER PRIMARY KEY, payment_key TEXT NOT NULL UNIQUE, order_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS payments_by_order ON payments (order_id, seq);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY, status INTEGER NOT NULL, body TEXT NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS va_pool (account TEXT PRIMARY KEY, freed_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS va_pool_by_freed ON va_pool (freed_at, account);
CREATE TABLE IF NOT EXISTS calls (
    seq INTEGER PRIMARY KEY, op TEXT NOT NULL, order_id TEXT, payment_key TEXT, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS calls_by_order ON calls (order_id, seq);
CREATE INDEX IF NOT EXISTS calls_by_payment ON calls (payment_key, seq);
CREATE INDEX IF NOT EXISTS calls_by_op ON calls (op, seq);
CREATE TABLE IF NOT EXISTS webhooks (
    seq INTEGER PRIMARY KEY, order_id TEXT NOT NULL, payment_key TEXT, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS webhooks_by_order ON webhooks (order_id, seq);
CREATE INDEX IF NOT EXISTS webhooks_by_payment ON webhooks (payment_key, seq);
";

/// The statements of the PG's state, each run inside a caller's transaction.
pub(super) mod rows {
    use super::*;
    use rusqlite::{Connection, OptionalExtension as _};

    pub fn payment(c: &Connection, key: &str) -> anyhow::Result<Option<SimPayment>> {
        db::one(c, "SELECT body FROM payments WHERE payment_key = ?1", [key])
    }

    pub fn latest_of_order(c: &Connection, order_id: &str) -> anyhow::Result<Option<SimPayment>> {
        db::one(c, "SELECT body FROM payments WHERE order_id = ?1 ORDER BY seq DESC LIMIT 1", [order_id])
    }

    /// False when the key is taken.
    pub fn insert_payment(c: &Connection, p: &SimPayment) -> anyhow::Result<bool> {
        let n = c
            .prepare_cached("INSERT OR IGNORE INTO payments (payment_key, order_id, body) VALUES (?1, ?2, ?3)")?
            .execute((&p.payment_key, &p.order_id, db::body(p)?))?;
        Ok(n == 1)
    }

    pub fn save_payment(c: &Connection, p: &SimPayment) -> anyhow::Result<()> {
        c.prepare_cached("UPDATE payments SET body = ?2 WHERE payment_key = ?1")?
            .execute((&p.payment_key, db::body(p)?))?;
        Ok(())
    }

    /// The answer stored under `key` at `now_ms`, if it is still kept: Toss
    /// keeps a key's answer for [`IDEMPOTENCY_KEEP_MS`] (15 days); after
    /// that the same key is a new request.
    pub fn stored_answer(c: &Connection, key: &str, now_ms: i64) -> anyhow::Result<Option<(u16, Value)>> {
        let row: Option<(u16, String)> = c
            .prepare_cached("SELECT status, body FROM idempotency_keys WHERE key = ?1 AND at > ?2")?
            .query_row((key, now_ms.saturating_sub(IDEMPOTENCY_KEEP_MS)), |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(row.map(|(status, body)| serde_json::from_str(&body).map(|b| (status, b))).transpose()?)
    }

    pub fn store_answer(
        c: &Connection,
        key: Option<&str>,
        (status, body): &(u16, Value),
        now_ms: i64,
    ) -> anyhow::Result<()> {
        if let Some(key) = key {
            c.prepare_cached(
                "INSERT OR REPLACE INTO idempotency_keys (key, status, body, at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute((key, status, body.to_string(), now_ms))?;
        }
        Ok(())
    }

    /// The account number freed longest ago, taken out of the pool.
    pub fn take_account(c: &Connection) -> anyhow::Result<Option<String>> {
        let account: Option<String> = c
            .prepare_cached("SELECT account FROM va_pool ORDER BY freed_at, account LIMIT 1")?
            .query_row([], |r| r.get(0))
            .optional()?;
        if let Some(a) = &account {
            c.prepare_cached("DELETE FROM va_pool WHERE account = ?1")?.execute([a])?;
        }
        Ok(account)
    }

    /// A closed account's number, back in the pool.
    pub fn free_account(c: &Connection, account: &str, now_ms: i64) -> anyhow::Result<()> {
        c.prepare_cached("INSERT OR IGNORE INTO va_pool (account, freed_at) VALUES (?1, ?2)")?
            .execute((account, now_ms))?;
        Ok(())
    }

    pub fn record(c: &Connection, call: &Call) -> anyhow::Result<()> {
        c.prepare_cached("INSERT INTO calls (op, order_id, payment_key, body) VALUES (?1, ?2, ?3, ?4)")?.execute((
            call.op.as_str(),
            &call.order_id,
            &call.payment_key,
            db::body(call)?,
        ))?;
        Ok(())
    }

    pub fn record_webhook(c: &Connection, d: &Delivery) -> anyhow::Result<()> {
        c.prepare_cached("INSERT INTO webhooks (order_id, payment_key, body) VALUES (?1, ?2, ?3)")?.execute((
            &d.order_id,
            &d.payment_key,
            db::body(d)?,
        ))?;
        Ok(())
    }

    pub fn take_fault(c: &Connection, op: Op) -> anyhow::Result<Option<FaultKind>> {
        let Some(name) = faults::take(c, op.as_str())? else { return Ok(None) };
        Ok(Some(serde_json::from_value(Value::String(name))?))
    }
}
