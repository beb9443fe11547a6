//! Points: a balance that never goes negative, and a ledger row for every
//! change, written in the same transaction as the balance.

use crate::{Money, OrderId, Timestamp, UserId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointsError {
    #[error("insufficient points: balance {balance}, requested {requested}")]
    Insufficient { balance: Money, requested: Money },
    #[error("points balance would exceed the maximum")]
    Overflow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LedgerReason {
    /// Granted by the catalog seed or an operator.
    Grant,
    /// Spent on an order (at placement, or as a points payment).
    OrderSpend,
    /// Given back when an unpaid order expires or is cancelled.
    OrderRelease,
    /// Given back when a paid order is refunded.
    Refund,
}

/// One change to a user's balance. `delta` is signed: spending is negative.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub user_id: UserId,
    pub tx_id: String,
    pub delta: i64,
    pub reason: LedgerReason,
    pub order_id: Option<OrderId>,
    pub balance_after: Money,
    pub at: Timestamp,
}

/// The balance after spending `amount`.
pub fn debit(balance: Money, amount: Money) -> Result<Money, PointsError> {
    balance.checked_sub(amount).ok_or(PointsError::Insufficient { balance, requested: amount })
}

/// The balance after receiving `amount`.
pub fn credit(balance: Money, amount: Money) -> Result<Money, PointsError> {
    balance.checked_add(amount).ok_or(PointsError::Overflow)
}

/// Signed ledger delta for an amount; amounts are capped at 10^15 so this never overflows.
pub fn signed(amount: Money, negative: bool) -> i64 {
    let v = amount.won() as i64;
    if negative { -v } else { v }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_negative() {
        let b = Money::new(1000).unwrap();
        assert_eq!(debit(b, Money::new(1000).unwrap()), Ok(Money::ZERO));
        assert!(matches!(debit(b, Money::new(1001).unwrap()), Err(PointsError::Insufficient { .. })));
        assert_eq!(credit(b, b), Ok(Money::new(2000).unwrap()));
        assert_eq!(credit(Money::MAX, b), Err(PointsError::Overflow));
        assert_eq!(signed(b, true), -1000);
    }
}
