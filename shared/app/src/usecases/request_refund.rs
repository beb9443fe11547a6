//! A shopper asks for part of a paid order back, or the rest of it
//! (docs/adr/0030-partial-refunds.md): the domain plans the refund
//! (`Order::execute` with `RequestRefund`), and one transaction writes the
//! order — conditional on the version it was decided on, so two refunds of
//! one order are serialised and never give back more than was paid — its
//! event, the request's idempotency record with the answer, and — for a
//! paid virtual account — the shopper's refund account, sealed.
//! Compensation carries the refund out
//! ([`refund`](crate::usecases::refund)).

use crate::App;
use crate::usecases::own_order;
use crate::usecases::retry::{Step, retry};
use shop_domain::order::{Refund, RefundPart};
use shop_domain::{Order, OrderCommand, OrderError, OrderId, RefundAccount, UserId};
use shop_store::idempotency::{StoredResponse, Ticket};
use shop_store::{StoreError, Tx, TxItem};

#[derive(Debug, thiserror::Error)]
pub enum RequestRefundError {
    #[error("no such order")]
    NotFound,
    #[error(transparent)]
    Refused(#[from] OrderError),
    /// The request's idempotency key was recorded by another request
    /// first: its answer is the one to give.
    #[error("the idempotency key was used by another request")]
    KeyUsed,
    #[error(transparent)]
    Contention(crate::usecases::retry::Contended),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::usecases::retry::use_case_error!(RequestRefundError);

/// How the caller shows the refund asked for; stored with the idempotency
/// record so a replay answers exactly the same.
pub type Render<'a> = &'a (dyn Fn(&Order, &Refund) -> anyhow::Result<StoredResponse> + Sync);

/// What the shopper asks back, and where deposited cash goes.
pub struct RefundAsk<'a> {
    pub part: &'a RefundPart,
    /// Required when the refund gives back cash paid by deposit; kept
    /// (sealed) only then.
    pub account: Option<&'a RefundAccount>,
}

/// Asks for `ask.part` of `user`'s order `order_id` back; the order after,
/// and the answer `render` made of it and its new refund.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn request_refund(
    app: &App,
    user: &UserId,
    order_id: &OrderId,
    ask: &RefundAsk<'_>,
    ticket: &Ticket,
    correlation_id: &str,
    render: Render<'_>,
) -> Result<(Order, StoredResponse), RequestRefundError> {
    retry(order_id.as_str(), |_| attempt(app, user, order_id, ask, ticket, correlation_id, render)).await
}

async fn attempt(
    app: &App,
    user: &UserId,
    order_id: &OrderId,
    ask: &RefundAsk<'_>,
    ticket: &Ticket,
    correlation_id: &str,
    render: Render<'_>,
) -> Result<(Order, StoredResponse), Step<RequestRefundError>> {
    let part = ask.part;
    let Some(order) = own_order(app, user, order_id).await? else {
        return Err(Step::Fail(RequestRefundError::NotFound));
    };
    // Returned goods may take the order below its coupon's minimum; a
    // coupon no longer there has none to fall below.
    let coupon_minimum = match (&order.coupon_id, part) {
        (Some(id), RefundPart::Lines(_)) => app.store.coupons().get(id).await?.map(|c| c.min_order_amount),
        (Some(_), RefundPart::Amount(_)) | (None, _) => None,
    };
    let now = app.clock.now();
    let cmd = OrderCommand::RequestRefund { part: part.clone(), coupon_minimum, refund_account: ask.account.is_some() };
    let (after, events) = order.execute(&cmd, now).map_err(|e| Step::Fail(e.into()))?;
    let Some(refund) = after.refunds.last() else {
        return Err(Step::Fail(anyhow::anyhow!("order {order_id}: a refund was decided but none recorded").into()));
    };
    let response = render(&after, refund).map_err(|e| Step::Fail(e.into()))?;
    let mut tx = Tx::new();
    tx.push(app.store.orders().op_update(order.version, &after)?);
    tx.extend(super::outbox(app, Some(&order), &events, correlation_id)?);
    tx.push(app.store.idempotency().op_record(ticket, &response)?);
    if let (true, Some(account)) = (refund.to_account, ask.account) {
        tx.push(crate::usecases::refund_account::op_keep(app, order_id, refund.number, account).await?);
    }
    match app.store.transact(tx).await {
        Ok(()) => {
            tracing::info!(
                refund = refund.number,
                cash = refund.cash.won(),
                points = refund.points.won(),
                "refund requested"
            );
            Ok((after, response))
        }
        Err(StoreError::Conflict { item: TxItem::Idempotency, .. }) => Err(Step::Fail(RequestRefundError::KeyUsed)),
        Err(e) => Err(e.into()),
    }
}
