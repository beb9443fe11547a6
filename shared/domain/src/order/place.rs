//! Placing an order: priced from the products, its coupon held, points
//! spent, all decided here before one transaction writes it.

use super::decide::OrderCommand;
use super::events::{OrderEvent, OrderEventKind};
use super::{Order, OrderLine, OrderStatus};
use crate::coupon::{Coupon, CouponError};
use crate::points::{self, PointsError};
use crate::{Money, OrderId, Product, ProductId, Quantity, Timestamp, UserId, money};

/// Everything placing an order needs, already loaded by the caller.
#[derive(Debug, Clone)]
pub struct PlaceOrder<'a> {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub items: &'a [(Product, Quantity)],
    pub coupon: Option<&'a Coupon>,
    pub points_to_use: Money,
    pub points_balance: Money,
    pub now: Timestamp,
    /// How long the order stays payable.
    pub ttl_secs: i64,
    /// The sale whose admission places it ([`crate::sale::gate`] decided).
    pub sale: Option<crate::SaleId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub order: Order,
    /// `OrderPlaced`, then `OrderPaid` when nothing is left to pay.
    pub events: Vec<OrderEvent>,
    pub held_coupon: Option<Coupon>,
    pub points_balance_after: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    #[error("an order needs at least one item")]
    NoItems,
    #[error("an order has at most {max} lines")]
    TooManyLines { max: usize },
    #[error("product {0} appears on more than one line")]
    DuplicateProduct(ProductId),
    #[error("product {product}: {requested} requested, {available} available")]
    InsufficientStock { product: ProductId, requested: u32, available: u64 },
    #[error(transparent)]
    Coupon(#[from] CouponError),
    #[error(transparent)]
    Points(#[from] PointsError),
    #[error("pointsToUse {points} exceeds the amount left to pay {payable}")]
    PointsExceedAmount { points: Money, payable: Money },
    #[error("order total is too large")]
    AmountOverflow,
}

/// Lines per order. Each line is one action in the order's DynamoDB
/// transaction, which allows 100 actions; the rest (order, event, coupon,
/// points, ledger, idempotency record) stay well inside that.
pub const MAX_LINES: usize = 50;

/// Decide a new order: prices, stock, coupon hold and points, all checked.
pub fn place(cmd: PlaceOrder<'_>) -> Result<Placement, PlaceError> {
    if cmd.items.is_empty() {
        return Err(PlaceError::NoItems);
    }
    if cmd.items.len() > MAX_LINES {
        return Err(PlaceError::TooManyLines { max: MAX_LINES });
    }
    let mut lines = Vec::with_capacity(cmd.items.len());
    for (i, (product, qty)) in cmd.items.iter().enumerate() {
        if cmd.items.iter().take(i).any(|(p, _)| p.id == product.id) {
            return Err(PlaceError::DuplicateProduct(product.id.clone()));
        }
        if !product.can_reserve(*qty) {
            return Err(PlaceError::InsufficientStock {
                product: product.id.clone(),
                requested: qty.get(),
                available: product.available,
            });
        }
        let line_total = product.price.checked_mul(u64::from(qty.get())).ok_or(PlaceError::AmountOverflow)?;
        lines.push(OrderLine {
            product_id: product.id.clone(),
            name: product.name.clone(),
            unit_price: product.price,
            quantity: *qty,
            line_total,
        });
    }
    let subtotal = money::sum(lines.iter().map(|l| l.line_total)).ok_or(PlaceError::AmountOverflow)?;
    let held_coupon = match cmd.coupon {
        Some(c) => Some(c.hold(&cmd.user_id, &cmd.order_id, subtotal, cmd.now)?),
        None => None,
    };
    let discount = held_coupon.as_ref().map_or(Money::ZERO, |c| c.discount(subtotal));
    let payable = subtotal.checked_sub(discount).ok_or(PlaceError::AmountOverflow)?;
    if cmd.points_to_use > payable {
        return Err(PlaceError::PointsExceedAmount { points: cmd.points_to_use, payable });
    }
    let points_balance_after = points::debit(cmd.points_balance, cmd.points_to_use)?;
    let amount_due = payable.checked_sub(cmd.points_to_use).ok_or(PlaceError::AmountOverflow)?;
    let expires_at = cmd.now.plus_secs(cmd.ttl_secs);
    let coupon_id = held_coupon.as_ref().map(|c| c.id.clone());
    let event = OrderEvent {
        order_id: cmd.order_id.clone(),
        aggregate_version: 1,
        occurred_at: cmd.now,
        kind: OrderEventKind::OrderPlaced {
            user_id: cmd.user_id.clone(),
            lines: lines.clone(),
            coupon_id: coupon_id.clone(),
            subtotal,
            discount,
            points_used: cmd.points_to_use,
            amount_due,
            expires_at,
            sale_id: cmd.sale.clone(),
        },
    };
    let order = Order {
        id: cmd.order_id,
        user_id: cmd.user_id,
        status: OrderStatus::PendingPayment,
        version: 1,
        lines,
        coupon_id,
        subtotal,
        discount,
        points_used: cmd.points_to_use,
        amount_due,
        created_at: cmd.now,
        expires_at,
        payment_key: None,
        payment_method: None,
        orphaned_payments: vec![],
        deposit_due_at: None,
        sale_id: cmd.sale,
        refunds: vec![],
    };
    let mut events = vec![event];
    // Coupon and points cover everything: paid in the placing transaction
    // (as a points payment of the remaining 0), never left to expire.
    if amount_due == Money::ZERO
        && let Ok((paid, more)) = order.execute(&OrderCommand::PayWithPoints, cmd.now)
    {
        events.extend(more);
        return Ok(Placement { order: paid, events, held_coupon, points_balance_after });
    }
    Ok(Placement { order, events, held_coupon, points_balance_after })
}
