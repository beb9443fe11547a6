//! What happens to an order, in past tense: each event's kind (the
//! EventBridge `detail-type` and its `data`), the status it leaves the
//! order in, and the event stamped with the version it produces.

use super::refund::RefundLine;
use super::{OrderLine, OrderStatus, PaymentMethod};
use crate::{CouponId, Money, OrderId, PaymentKey, SaleId, Timestamp, UserId};
use serde::{Deserialize, Serialize};

/// Events in past tense. The variant name is the EventBridge `detail-type`;
/// the fields are the event's `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "detailType", content = "data")]
pub enum OrderEventKind {
    #[serde(rename_all = "camelCase")]
    OrderPlaced {
        /// The flash sale the order was placed in (its slot is freed when
        /// the order ends); absent for other orders.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sale_id: Option<SaleId>,
        user_id: UserId,
        lines: Vec<OrderLine>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        coupon_id: Option<CouponId>,
        subtotal: Money,
        discount: Money,
        points_used: Money,
        amount_due: Money,
        expires_at: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    PaymentConfirmationStarted { user_id: UserId, payment_key: PaymentKey, method: PaymentMethod, amount: Money },
    #[serde(rename_all = "camelCase")]
    VirtualAccountIssued {
        /// The flash sale the order was placed in (its slot is freed when
        /// the order ends); absent for other orders.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sale_id: Option<SaleId>,
        user_id: UserId,
        payment_key: PaymentKey,
        amount: Money,
        /// The account takes deposits until then (absent in events written
        /// before due dates were kept).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_at: Option<Timestamp>,
    },
    #[serde(rename_all = "camelCase")]
    OrderPaid {
        /// The flash sale the order was placed in (its slot is freed when
        /// the order ends); absent for other orders.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sale_id: Option<SaleId>,
        user_id: UserId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payment_key: Option<PaymentKey>,
        method: PaymentMethod,
        amount: Money,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        coupon_id: Option<CouponId>,
    },
    #[serde(rename_all = "camelCase")]
    PaymentFailed { user_id: UserId, payment_key: PaymentKey, code: String, message: String },
    #[serde(rename_all = "camelCase")]
    PaymentOrphaned { user_id: UserId, payment_key: PaymentKey, amount: Money, order_status: OrderStatus },
    #[serde(rename_all = "camelCase")]
    OrderExpired {
        /// The flash sale the order was placed in (its slot is freed when
        /// the order ends); absent for other orders.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sale_id: Option<SaleId>,
        user_id: UserId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        coupon_id: Option<CouponId>,
        lines: Vec<OrderLine>,
        points_released: Money,
        /// A virtual account not paid by its due date, to be closed at the PG.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payment_key: Option<PaymentKey>,
    },
    #[serde(rename_all = "camelCase")]
    OrderCancelled {
        /// The flash sale the order was placed in (its slot is freed when
        /// the order ends); absent for other orders.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sale_id: Option<SaleId>,
        user_id: UserId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        coupon_id: Option<CouponId>,
        lines: Vec<OrderLine>,
        points_released: Money,
        /// A virtual account issued for the order, to be closed at the PG.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payment_key: Option<PaymentKey>,
    },
    /// The whole order, or the rest of one partly refunded, to be given
    /// back: `amount` in cash at the PG, `points_used` in points.
    #[serde(rename_all = "camelCase")]
    RefundRequested {
        user_id: UserId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payment_key: Option<PaymentKey>,
        method: PaymentMethod,
        amount: Money,
        points_used: Money,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        coupon_id: Option<CouponId>,
        /// The refund's number when the order has numbered refunds (the
        /// rest after parts); absent for a whole order refunded at once.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refund_number: Option<u32>,
        /// With a number: the units still held, whose stock comes back.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lines: Vec<RefundLine>,
        /// The cash goes to the shopper's refund account: a reference to
        /// the sealed `REFUNDACCOUNT#<refundNumber>` beside the order, never
        /// the account itself.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        refund_account: bool,
    },
    #[serde(rename_all = "camelCase")]
    OrderRefunded {
        user_id: UserId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        coupon_id: Option<CouponId>,
        amount: Money,
        points_refunded: Money,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refund_number: Option<u32>,
    },
    /// Part of a paid order to be given back (docs/adr/0030-partial-refunds.md).
    #[serde(rename_all = "camelCase")]
    PartialRefundRequested {
        user_id: UserId,
        refund_number: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payment_key: Option<PaymentKey>,
        method: PaymentMethod,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lines: Vec<RefundLine>,
        cash: Money,
        points: Money,
        #[serde(default, skip_serializing_if = "crate::money::is_zero")]
        discount_withdrawn: Money,
        /// As on `RefundRequested`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        refund_account: bool,
    },
    /// A part given back: the PG cancelled its cash, its stock and points are back.
    #[serde(rename_all = "camelCase")]
    OrderPartiallyRefunded {
        user_id: UserId,
        refund_number: u32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lines: Vec<RefundLine>,
        cash: Money,
        points: Money,
    },
    /// The PG refused a numbered refund: what it would have given back is
    /// held again, and the order is left in `order_status`.
    #[serde(rename_all = "camelCase")]
    RefundFailed { user_id: UserId, refund_number: u32, code: String, message: String, order_status: OrderStatus },
}

impl OrderEventKind {
    /// The status the event leaves an order in that was `before` (`None`:
    /// not yet placed). The same transitions as [`Order::apply`] (a test
    /// holds them together); the saga statistics count them per status.
    pub fn status_after(&self, before: Option<OrderStatus>) -> Option<OrderStatus> {
        match self {
            OrderEventKind::OrderPlaced { .. } => Some(OrderStatus::PendingPayment),
            OrderEventKind::PaymentConfirmationStarted { .. } => Some(OrderStatus::Confirming),
            OrderEventKind::VirtualAccountIssued { .. } => Some(OrderStatus::AwaitingDeposit),
            OrderEventKind::OrderPaid { .. } => Some(OrderStatus::Paid),
            OrderEventKind::PaymentFailed { .. } => Some(OrderStatus::PendingPayment),
            OrderEventKind::PaymentOrphaned { .. } => before,
            OrderEventKind::OrderExpired { .. } => Some(OrderStatus::Expired),
            OrderEventKind::OrderCancelled { .. } => Some(OrderStatus::Cancelled),
            OrderEventKind::RefundRequested { .. } => Some(OrderStatus::RefundPending),
            OrderEventKind::OrderRefunded { .. } => Some(OrderStatus::Refunded),
            OrderEventKind::PartialRefundRequested { .. } | OrderEventKind::OrderPartiallyRefunded { .. } => {
                Some(OrderStatus::PartiallyRefunded)
            }
            OrderEventKind::RefundFailed { order_status, .. } => Some(*order_status),
        }
    }

    pub fn detail_type(&self) -> &'static str {
        match self {
            OrderEventKind::OrderPlaced { .. } => "OrderPlaced",
            OrderEventKind::PaymentConfirmationStarted { .. } => "PaymentConfirmationStarted",
            OrderEventKind::VirtualAccountIssued { .. } => "VirtualAccountIssued",
            OrderEventKind::OrderPaid { .. } => "OrderPaid",
            OrderEventKind::PaymentFailed { .. } => "PaymentFailed",
            OrderEventKind::PaymentOrphaned { .. } => "PaymentOrphaned",
            OrderEventKind::OrderExpired { .. } => "OrderExpired",
            OrderEventKind::OrderCancelled { .. } => "OrderCancelled",
            OrderEventKind::RefundRequested { .. } => "RefundRequested",
            OrderEventKind::OrderRefunded { .. } => "OrderRefunded",
            OrderEventKind::PartialRefundRequested { .. } => "PartialRefundRequested",
            OrderEventKind::OrderPartiallyRefunded { .. } => "OrderPartiallyRefunded",
            OrderEventKind::RefundFailed { .. } => "RefundFailed",
        }
    }
}

/// An event stamped with the aggregate version it produces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderEvent {
    pub order_id: OrderId,
    pub aggregate_version: u64,
    pub occurred_at: Timestamp,
    #[serde(flatten)]
    pub kind: OrderEventKind,
}

impl OrderEvent {
    pub fn event_id(&self) -> crate::EventId {
        crate::EventId::new(&self.order_id, self.aggregate_version)
    }
}
