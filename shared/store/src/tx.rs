//! Transactions with labelled actions, so a `TransactionCanceledException`
//! maps back to the domain item that caused it (which product's stock, which
//! coupon, ...), never to "the transaction failed".

use crate::StoreError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use std::fmt;

/// What one action of a transaction touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxItem {
    Stock(String),
    Coupon(String),
    Points(String),
    Ledger(String),
    Order(String),
    Event(String),
    Payment(String),
    Idempotency,
    Seed(String),
    Campaign(String),
    /// A user's claim of a campaign (by user id).
    Claim(String),
    /// A local queue message (the local stack's SQS).
    Message(String),
    /// A flash sale, or one of its counters (by sale id).
    Sale(String),
    /// A user's ticket in a sale's queue (by user id).
    Ticket(String),
    /// A sale's gate on a product (by product id).
    Gate(String),
    /// A live WebSocket connection (by connection id).
    Connection(String),
    /// A refund's sealed refund account (by order id).
    RefundAccount(String),
}

impl fmt::Display for TxItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxItem::Stock(id) => write!(f, "stock of product {id}"),
            TxItem::Coupon(id) => write!(f, "coupon {id}"),
            TxItem::Points(u) => write!(f, "points of user {u}"),
            TxItem::Ledger(id) => write!(f, "ledger row {id}"),
            TxItem::Order(id) => write!(f, "order {id}"),
            TxItem::Event(id) => write!(f, "event {id}"),
            TxItem::Payment(k) => write!(f, "payment {k}"),
            TxItem::Idempotency => write!(f, "idempotency record"),
            TxItem::Seed(k) => write!(f, "seed item {k}"),
            TxItem::Campaign(id) => write!(f, "campaign {id}"),
            TxItem::Claim(u) => write!(f, "claim of user {u}"),
            TxItem::Message(id) => write!(f, "queue message {id}"),
            TxItem::Sale(id) => write!(f, "sale {id}"),
            TxItem::Ticket(u) => write!(f, "ticket of user {u}"),
            TxItem::Gate(id) => write!(f, "sale gate on product {id}"),
            TxItem::Connection(id) => write!(f, "live connection {id}"),
            TxItem::RefundAccount(id) => write!(f, "refund account of order {id}"),
        }
    }
}

/// Why DynamoDB cancelled the transaction, for the item it names. Only
/// these two codes are conflicts; throttling is [`StoreError::Throttled`]
/// and every other code (validation, item size, ...) is unexpected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictReason {
    /// The item's condition expression was false: someone else changed it.
    ConditionFailed,
    /// Another transaction was writing the same item at the same moment. Retryable.
    TransactionConflict,
}

impl fmt::Display for ConflictReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConflictReason::ConditionFailed => f.write_str("condition failed"),
            ConflictReason::TransactionConflict => f.write_str("concurrent transaction"),
        }
    }
}

/// Cancellation codes that mean "too fast", per the TransactWriteItems
/// reference: retried with backoff.
const THROTTLING: [&str; 3] = ["ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"];

pub struct TxOp {
    pub item: TransactWriteItem,
    pub label: TxItem,
}

/// DynamoDB's limit on actions in one TransactWriteItems call.
pub const MAX_ACTIONS: usize = 100;

#[derive(Default)]
pub struct Tx {
    ops: Vec<TxOp>,
}

impl Tx {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, op: TxOp) -> &mut Self {
        self.ops.push(op);
        self
    }

    pub fn extend(&mut self, ops: impl IntoIterator<Item = TxOp>) -> &mut Self {
        self.ops.extend(ops);
        self
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn labels(&self) -> Vec<TxItem> {
        self.ops.iter().map(|o| o.label.clone()).collect()
    }

    pub(crate) fn into_parts(self) -> (Vec<TransactWriteItem>, Vec<TxItem>) {
        self.ops.into_iter().map(|o| (o.item, o.label)).unzip()
    }
}

/// A conditional put of `item` as one action.
pub(crate) fn put(table: &str, item: crate::attr::Item, condition: &str, label: TxItem) -> anyhow::Result<TxOp> {
    let put = Put::builder().table_name(table).set_item(Some(item)).condition_expression(condition).build()?;
    Ok(TxOp { item: TransactWriteItem::builder().put(put).build(), label })
}

/// `item` over the same item only while it is still at `prev_version`: every
/// versioned aggregate's transition (orders, payments, sales, tickets).
pub(crate) fn put_over_version(
    table: &str,
    item: crate::attr::Item,
    prev_version: u64,
    label: TxItem,
) -> anyhow::Result<TxOp> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("version = :prev")
        .expression_attribute_values(":prev", crate::attr::n(prev_version))
        .build()?;
    Ok(TxOp { item: TransactWriteItem::builder().put(put).build(), label })
}

/// Maps a cancelled transaction to what caused it: a failed condition
/// first (the caller can act on it), then a concurrent transaction, then
/// throttling; any other code is unexpected, with every code in the message.
pub(crate) fn map_cancel(err: TransactWriteItemsError, labels: &[TxItem]) -> StoreError {
    let TransactWriteItemsError::TransactionCanceledException(cancel) = err else {
        return StoreError::Unexpected(anyhow::Error::new(err).context("TransactWriteItems"));
    };
    let failing: Vec<(usize, &str)> = cancel
        .cancellation_reasons()
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.code().filter(|c| *c != "None").map(|c| (i, c)))
        .collect();
    let conflict = |wanted: &str, reason: ConflictReason| {
        failing
            .iter()
            .find(|(_, c)| *c == wanted)
            .and_then(|(i, _)| labels.get(*i))
            .map(|item| StoreError::Conflict { item: item.clone(), reason })
    };
    if let Some(e) = conflict("ConditionalCheckFailed", ConflictReason::ConditionFailed)
        .or_else(|| conflict("TransactionConflict", ConflictReason::TransactionConflict))
    {
        return e;
    }
    let described: Vec<String> = failing
        .iter()
        .map(|(i, c)| format!("{c} on {}", labels.get(*i).map_or_else(|| format!("action {i}"), ToString::to_string)))
        .collect();
    if !failing.is_empty() && failing.iter().all(|(_, c)| THROTTLING.contains(c)) {
        return StoreError::Throttled(described.join(", "));
    }
    StoreError::Unexpected(anyhow::anyhow!(
        "transaction of {} actions cancelled: {} ({:?})",
        labels.len(),
        if described.is_empty() { "no reason given".to_owned() } else { described.join(", ") },
        cancel.message()
    ))
}
