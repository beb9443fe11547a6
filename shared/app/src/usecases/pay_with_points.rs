//! Paying the whole amount due from points: the debit with its ledger row,
//! the order PAID and `OrderPaid`, in one transaction.

use crate::App;
use crate::usecases::own_order;
use crate::usecases::points::{ChangeError, Delta, points_change};
use crate::usecases::retry::{Step, retry};
use shop_domain::points::{LedgerReason, PointsError};
use shop_domain::{Money, Order, OrderCommand, OrderError, OrderId, OrderStatus, PaymentMethod, UserId};
use shop_store::Tx;

#[derive(Debug, thiserror::Error)]
pub enum PayWithPointsError {
    #[error("no such order")]
    NotFound,
    #[error(transparent)]
    Refused(#[from] OrderError),
    #[error("the order needs {amount_due} points, the balance is {balance}")]
    InsufficientPoints { balance: Money, amount_due: Money },
    #[error(transparent)]
    Contention(crate::usecases::retry::Contended),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::usecases::retry::use_case_error!(PayWithPointsError);

#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn pay_with_points(
    app: &App,
    user: &UserId,
    order_id: &OrderId,
    correlation_id: &str,
) -> Result<Order, PayWithPointsError> {
    retry(order_id.as_str(), |_| attempt(app, user, order_id, correlation_id)).await
}

async fn attempt(
    app: &App,
    user: &UserId,
    order_id: &OrderId,
    correlation_id: &str,
) -> Result<Order, Step<PayWithPointsError>> {
    let Some(order) = own_order(app, user, order_id).await? else {
        return Err(Step::Fail(PayWithPointsError::NotFound));
    };
    // A repeat is answered, not charged twice.
    if order.status == OrderStatus::Paid && order.payment_method == Some(PaymentMethod::Points) {
        return Ok(order);
    }
    let now = app.clock.now();
    let (paid, events) = order.execute(&OrderCommand::PayWithPoints, now).map_err(|e| Step::Fail(e.into()))?;
    let balance = app.store.points().balance(user).await?;
    let mut tx = Tx::new();
    let debit =
        points_change(app, user, balance, Delta::Spend(order.amount_due), LedgerReason::OrderSpend, &order.id, now)
            .map_err(|e| {
                Step::Fail(match e {
                    ChangeError::Refused(PointsError::Insufficient { balance, .. }) => {
                        PayWithPointsError::InsufficientPoints { balance, amount_due: order.amount_due }
                    }
                    ChangeError::Refused(other) => PayWithPointsError::Unexpected(other.into()),
                    ChangeError::Unexpected(e) => PayWithPointsError::Unexpected(e),
                })
            })?;
    tx.extend(debit);
    tx.push(app.store.orders().op_update(order.version, &paid)?);
    tx.extend(super::outbox(app, Some(&order), &events, correlation_id)?);
    app.store.transact(tx).await?;
    tracing::info!("order paid with points");
    Ok(paid)
}
