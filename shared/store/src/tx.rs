//! Transactions with labelled actions, so a `TransactionCanceledException`
//! maps back to the domain item that caused it (which product's stock, which
//! coupon, ...), never to "the transaction failed".

use crate::StoreError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::TransactWriteItem;
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
        }
    }
}

/// Why DynamoDB cancelled the transaction, for the item it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictReason {
    /// The item's condition expression was false: someone else changed it.
    ConditionFailed,
    /// Another transaction was writing the same item at the same moment. Retryable.
    TransactionConflict,
    /// Any other cancellation code (throttling, validation, ...).
    Other(String),
}

impl fmt::Display for ConflictReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConflictReason::ConditionFailed => f.write_str("condition failed"),
            ConflictReason::TransactionConflict => f.write_str("concurrent transaction"),
            ConflictReason::Other(code) => write!(f, "cancelled ({code})"),
        }
    }
}

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

/// Maps a cancelled transaction to the first item that caused it. A failed
/// condition wins over other codes: it is the one the caller can act on.
pub(crate) fn map_cancel(err: TransactWriteItemsError, labels: &[TxItem]) -> StoreError {
    let TransactWriteItemsError::TransactionCanceledException(cancel) = err else {
        return StoreError::Unexpected(anyhow::Error::new(err).context("TransactWriteItems"));
    };
    let reasons = cancel.cancellation_reasons();
    let failing = reasons
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.code().filter(|c| *c != "None").map(|c| (i, c)))
        .collect::<Vec<_>>();
    let chosen = failing.iter().find(|(_, c)| *c == "ConditionalCheckFailed").or_else(|| failing.first()).copied();
    match chosen.and_then(|(i, code)| labels.get(i).map(|l| (l.clone(), code))) {
        Some((item, code)) => StoreError::Conflict {
            item,
            reason: match code {
                "ConditionalCheckFailed" => ConflictReason::ConditionFailed,
                "TransactionConflict" => ConflictReason::TransactionConflict,
                other => ConflictReason::Other(other.to_owned()),
            },
        },
        None => StoreError::Unexpected(anyhow::anyhow!(
            "transaction cancelled without a reason for any of {} items: {:?}",
            labels.len(),
            cancel.message()
        )),
    }
}
