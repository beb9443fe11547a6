//! Cancelling an order at the customer's request: before payment it is
//! CANCELLED and its stock and points come back in the same transaction;
//! after payment it becomes REFUND_PENDING and compensation refunds it
//! ([`refund`](crate::usecases::refund)) — a paid virtual account to the
//! refund account the shopper gives, kept sealed until the PG answers.

use crate::App;
use crate::usecases::own_order;
use crate::usecases::points::give_back_points;
use crate::usecases::retry::{Step, retry};
use crate::usecases::stock::release_stock;
use shop_domain::points::LedgerReason;
use shop_domain::{Order, OrderCommand, OrderError, OrderId, OrderStatus, RefundAccount, UserId};
use shop_store::Tx;

#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("no such order")]
    NotFound,
    #[error(transparent)]
    Refused(#[from] OrderError),
    #[error(transparent)]
    Contention(crate::usecases::retry::Contended),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::usecases::retry::use_case_error!(CancelError);

#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn cancel_order(
    app: &App,
    user: &UserId,
    order_id: &OrderId,
    account: Option<&RefundAccount>,
    correlation_id: &str,
) -> Result<Order, CancelError> {
    retry(order_id.as_str(), |_| attempt(app, user, order_id, account, correlation_id)).await
}

async fn attempt(
    app: &App,
    user: &UserId,
    order_id: &OrderId,
    account: Option<&RefundAccount>,
    correlation_id: &str,
) -> Result<Order, Step<CancelError>> {
    let Some(order) = own_order(app, user, order_id).await? else {
        return Err(Step::Fail(CancelError::NotFound));
    };
    let now = app.clock.now();
    let cmd = OrderCommand::Cancel { refund_account: account.is_some() };
    let (cancelled, events) = order.execute(&cmd, now).map_err(|e| Step::Fail(e.into()))?;
    if events.is_empty() {
        return Ok(order);
    }
    let mut tx = Tx::new();
    if cancelled.status == OrderStatus::Cancelled {
        tx.extend(release_stock(app, &order)?);
        tx.extend(give_back_points(app, &order, LedgerReason::OrderRelease, order.points_used, now).await?);
    }
    tx.push(app.store.orders().op_update(order.version, &cancelled)?);
    // The refund this cancel asked for, when its cash goes to the account.
    let refund = cancelled.refunds.iter().rev().find(|r| r.rest && order.refund(r.number).is_none());
    if let (Some(r), Some(account)) = (refund.filter(|r| r.to_account), account) {
        tx.push(crate::usecases::refund_account::op_keep(app, order_id, r.number, account).await?);
    }
    tx.extend(super::outbox(app, Some(&order), &events, correlation_id)?);
    app.store.transact(tx).await?;
    tracing::info!(status = %cancelled.status, "order cancelled");
    Ok(cancelled)
}
