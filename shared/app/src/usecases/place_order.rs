//! Placing an order: one DynamoDB transaction reserves every line's stock
//! (conditional decrement at the priced price), moves the coupon ISSUED →
//! HELD, debits the points with a ledger row, writes the order
//! PENDING_PAYMENT with `expiresAt` and its `OrderPlaced` outbox event (or,
//! when coupon and points leave nothing to pay, PAID with `OrderPaid` too), and
//! records the request's idempotency key with the response (ADRs 0004 and
//! 0026). Either all of it happens or none of it.

use crate::App;
use crate::admission;
use crate::usecases::points::{ChangeError, Delta, points_change};
use crate::usecases::retry::{Step, retry};
use shop_domain::order::{self, PlaceError, PlaceOrder};
use shop_domain::points::LedgerReason;
use shop_domain::sale::{NotAdmitted, sale_of_order};
use shop_domain::{CouponId, Money, Order, ProductId, Quantity, UserId};
use shop_store::idempotency::{StoredResponse, Ticket};
use shop_store::{StoreError, Tx, TxItem};

/// An order request that passed every check that needs no data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub items: Vec<(ProductId, Quantity)>,
    pub coupon_id: Option<CouponId>,
    pub points_to_use: Money,
    /// The `Admission` header as sent: what lets the caller order products
    /// a sale gates (crate::admission).
    pub admission: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlaceOrderError {
    #[error("unknown product {0}")]
    UnknownProduct(ProductId),
    #[error("unknown coupon {0}")]
    UnknownCoupon(CouponId),
    #[error(transparent)]
    Rejected(#[from] PlaceError),
    /// A product a sale gates, without a valid admission to that sale.
    #[error(transparent)]
    NotAdmitted(#[from] NotAdmitted),
    /// The request's idempotency key was recorded by another request
    /// first: its answer is the one to give.
    #[error("the idempotency key was used by another request")]
    KeyUsed,
    #[error(transparent)]
    Contention(crate::usecases::retry::Contended),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::usecases::retry::use_case_error!(PlaceOrderError);

/// How the caller shows a placed order; stored with the idempotency record
/// so a replay answers exactly the same.
pub type Render<'a> = &'a (dyn Fn(&Order) -> anyhow::Result<StoredResponse> + Sync);

/// Places the order; the request's key (`ticket`) is recorded with
/// `render(order)` in the same transaction.
#[tracing::instrument(skip_all, fields(order_id))]
pub async fn place_order(
    app: &App,
    user: &UserId,
    cmd: &NewOrder,
    ticket: &Ticket,
    correlation_id: &str,
    render: Render<'_>,
) -> Result<(Order, StoredResponse), PlaceOrderError> {
    let product_ids: Vec<ProductId> = cmd.items.iter().map(|(p, _)| p.clone()).collect();
    retry(user.as_str(), |_| attempt(app, user, cmd, &product_ids, ticket, correlation_id, render)).await
}

async fn attempt(
    app: &App,
    user: &UserId,
    cmd: &NewOrder,
    product_ids: &[ProductId],
    ticket: &Ticket,
    correlation_id: &str,
    render: Render<'_>,
) -> Result<(Order, StoredResponse), Step<PlaceOrderError>> {
    let now = app.clock.now();
    // A token is checked before any read; whether it is needed is known
    // after (the products' gates), and its ticket is read with them.
    let token = match (&cmd.admission, &app.config.admission_secret) {
        (None, _) => None,
        (Some(raw), Some(secret)) => Some(admission::verify(secret, raw, user, now).map_err(|e| Step::Fail(e.into()))?),
        (Some(_), None) => return Err(Step::Fail(NotAdmitted::Token("this stack issues no admissions").into())),
    };
    let inputs = app
        .store
        .orders()
        .load_placement(user, product_ids, cmd.coupon_id.as_ref(), token.as_ref().map(|t| &t.sale))
        .await?;
    let sale = sale_of_order(
        product_ids.iter().zip(inputs.gates.iter().map(Option::as_ref)),
        token.as_ref().map(|t| &t.sale),
        now,
    )
    .map_err(|e| Step::Fail(e.into()))?;
    let mut items = Vec::with_capacity(cmd.items.len());
    for ((id, qty), found) in cmd.items.iter().zip(inputs.products) {
        match found {
            Some(p) => items.push((p, *qty)),
            None => return Err(Step::Fail(PlaceOrderError::UnknownProduct(id.clone()))),
        }
    }
    let coupon = match (inputs.coupon, &cmd.coupon_id) {
        (Some(Some(c)), _) => Some(c),
        (Some(None), Some(id)) => return Err(Step::Fail(PlaceOrderError::UnknownCoupon(id.clone()))),
        (Some(None) | None, _) => None,
    };
    let order_id = app.ids.order_id();
    tracing::Span::current().record("order_id", order_id.as_str());
    let placement = order::place(PlaceOrder {
        order_id,
        user_id: user.clone(),
        items: &items,
        coupon: coupon.as_ref(),
        points_to_use: cmd.points_to_use,
        points_balance: inputs.points_balance,
        now,
        ttl_secs: app.config.order_ttl_secs,
        sale: sale.clone(),
    })
    .map_err(|e| Step::Fail(e.into()))?;
    let response = render(&placement.order)?;

    let mut tx = Tx::new();
    for (product, qty) in &items {
        tx.push(app.store.catalog().op_reserve_stock(product, *qty)?);
    }
    if let (Some(before), Some(held)) = (&coupon, &placement.held_coupon) {
        tx.push(app.store.coupons().op_transition(before, held)?);
    }
    let spend = Delta::Spend(placement.order.points_used);
    tx.extend(
        points_change(app, user, inputs.points_balance, spend, LedgerReason::OrderSpend, &placement.order.id, now)
            .map_err(|e| match e {
                ChangeError::Refused(p) => Step::Fail(PlaceOrderError::Rejected(PlaceError::Points(p))),
                ChangeError::Unexpected(e) => Step::Fail(PlaceOrderError::Unexpected(e)),
            })?,
    );
    // One order per admission: its ticket moves ADMITTED → ORDERED here.
    if let (Some(sale), Some(token)) = (&sale, &token) {
        let ticket = inputs.ticket.flatten().ok_or_else(|| Step::Fail(NotAdmitted::NoTicket(sale.clone()).into()))?;
        let ordered = ticket
            .order(&token.id, placement.order.id.clone(), now)
            .map_err(|e| Step::Fail(NotAdmitted::from(e).into()))?;
        tx.push(app.store.sales().op_order_ticket(ticket.version, &ordered)?);
        tx.push(app.store.sales().op_hold(&ordered.sale, &ordered.user, 1)?);
    }
    tx.push(app.store.orders().op_create(&placement.order)?);
    tx.extend(super::outbox(app, None, &placement.events, correlation_id)?);
    tx.push(app.store.idempotency().op_record(ticket, &response)?);

    match app.store.transact(tx).await {
        Ok(()) => {
            tracing::info!(amount_due = placement.order.amount_due.won(), "order placed");
            Ok((placement.order, response))
        }
        // Stock, coupon or points changed between our read and write: the
        // retry re-reads, and the domain gives the precise answer.
        Err(StoreError::Conflict { item: TxItem::Idempotency, .. }) => Err(Step::Fail(PlaceOrderError::KeyUsed)),
        Err(e) => Err(e.into()),
    }
}
