//! The one way points move: [`points_change`] builds the balance update
//! (conditional on the balance the caller read) and its ledger row, for the
//! caller's transaction. Spending, releases and refunds all go through it,
//! so every balance change has exactly one ledger row.

use crate::App;
use crate::usecases::retry::Step;
use shop_domain::points::{self, LedgerEntry, LedgerReason, PointsError};
use shop_domain::{Money, Order, OrderId, Timestamp, UserId};
use shop_store::{StoreError, TxOp};

/// Which way the points go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delta {
    Spend(Money),
    Give(Money),
}

impl Delta {
    fn amount(self) -> Money {
        match self {
            Delta::Spend(m) | Delta::Give(m) => m,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The domain refuses (not enough points, or a balance past the cap).
    #[error(transparent)]
    Refused(#[from] PointsError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The ops that move `delta` for `user`, from `balance` (read in the same
/// attempt; the write is conditional on it). Nothing for a zero amount.
pub fn points_change(
    app: &App,
    user: &UserId,
    balance: Money,
    delta: Delta,
    reason: LedgerReason,
    order_id: &OrderId,
    now: Timestamp,
) -> Result<Vec<TxOp>, ChangeError> {
    if delta.amount().is_zero() {
        return Ok(vec![]);
    }
    let (after, negative) = match delta {
        Delta::Spend(m) => (points::debit(balance, m)?, true),
        Delta::Give(m) => (points::credit(balance, m)?, false),
    };
    let entry = LedgerEntry {
        user_id: user.clone(),
        tx_id: app.ids.tx_id(),
        delta: points::signed(delta.amount(), negative),
        reason,
        order_id: Some(order_id.clone()),
        balance_after: after,
        at: now,
    };
    Ok(app.store.points().ops_move(balance, &entry)?.into())
}

/// Gives `amount` back to the order's owner (expiry, cancel, refund),
/// reading the balance only when there is something to give.
pub async fn give_back_points<E>(
    app: &App,
    order: &Order,
    reason: LedgerReason,
    amount: Money,
    now: Timestamp,
) -> Result<Vec<TxOp>, Step<E>>
where
    E: From<StoreError> + From<anyhow::Error>,
{
    if amount.is_zero() {
        return Ok(vec![]);
    }
    let balance = app.store.points().balance(&order.user_id).await?;
    // Giving back can only fail past the money cap: unexpected.
    points_change(app, &order.user_id, balance, Delta::Give(amount), reason, &order.id, now)
        .map_err(|e| Step::Fail(E::from(anyhow::Error::new(e))))
}
