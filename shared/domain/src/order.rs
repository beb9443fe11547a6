//! The order aggregate: placement, then a state machine driven by commands.
//!
//! ```text
//! (placed with nothing left to pay: PAID at once, `OrderPlaced` + `OrderPaid`)
//! PENDING_PAYMENT ──points / PG DONE──────────────────────────► PAID ──cancel──► REFUND_PENDING ──► REFUNDED
//!   │                                            (refund a part) └──► PARTIALLY_REFUNDED ──the rest──┘
//!   │   ▲  └─confirm sent──► CONFIRMING ──DONE──► PAID
//!   │   │                       ├─declined──┐ (back to PENDING_PAYMENT, may retry)
//!   │   └───────────────────────┴───────────┘  timeout/5xx: stays CONFIRMING (payment UNKNOWN) until reconciled
//!   ├─virtual account issued──► AWAITING_DEPOSIT ──deposit──► PAID   (cancel → CANCELLED, failed → PENDING_PAYMENT,
//!   │                              its due date passed → EXPIRED, the account closed at the PG)
//!   ├─expiresAt passed──► EXPIRED
//!   └─cancel──► CANCELLED
//! ```
//! `decide` is pure: it reads the order and a command and returns the events
//! (none when the command was already carried out, so duplicates and replays
//! are harmless). `apply` folds an event into the order. Each event bumps
//! `version` by one, and the store writes the order conditionally on the
//! previous version together with the event's outbox item.
//!
//! Rooms: the order and its statuses here; [`events`] (what happened),
//! [`decide`] (the commands and what they decide), [`apply`] (folding
//! events, `execute`), [`place`] (placing a new order), [`refund`] (what a
//! paid order still holds, and what a refund of part of it gives back).

mod apply;
mod decide;
mod events;
mod place;
mod refund;

pub use decide::{DEPOSIT_DUE_FALLBACK_SECS, OrderCommand};
pub use events::{OrderEvent, OrderEventKind};
pub use place::{MAX_LINES, PlaceError, PlaceOrder, Placement, place};
pub use refund::{MAX_REFUNDS, Refund, RefundLine, RefundPart, RefundStatus};

use crate::{CouponId, Money, OrderId, PaymentKey, ProductId, Quantity, SaleId, Timestamp, UserId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    PendingPayment,
    Confirming,
    AwaitingDeposit,
    Paid,
    /// Part of it given back (or being given back); the rest still held.
    PartiallyRefunded,
    Expired,
    Cancelled,
    RefundPending,
    Refunded,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 9] = [
        OrderStatus::PendingPayment,
        OrderStatus::Confirming,
        OrderStatus::AwaitingDeposit,
        OrderStatus::Paid,
        OrderStatus::PartiallyRefunded,
        OrderStatus::Expired,
        OrderStatus::Cancelled,
        OrderStatus::RefundPending,
        OrderStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "PENDING_PAYMENT",
            OrderStatus::Confirming => "CONFIRMING",
            OrderStatus::AwaitingDeposit => "AWAITING_DEPOSIT",
            OrderStatus::Paid => "PAID",
            OrderStatus::PartiallyRefunded => "PARTIALLY_REFUNDED",
            OrderStatus::Expired => "EXPIRED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::RefundPending => "REFUND_PENDING",
            OrderStatus::Refunded => "REFUNDED",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentMethod {
    Card,
    VirtualAccount,
    Points,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub product_id: ProductId,
    pub name: String,
    pub unit_price: Money,
    pub quantity: Quantity,
    pub line_total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: OrderId,
    pub user_id: UserId,
    pub status: OrderStatus,
    /// Number of events applied; the placement event is version 1.
    pub version: u64,
    pub lines: Vec<OrderLine>,
    pub coupon_id: Option<CouponId>,
    pub subtotal: Money,
    pub discount: Money,
    pub points_used: Money,
    pub amount_due: Money,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub payment_key: Option<PaymentKey>,
    pub payment_method: Option<PaymentMethod>,
    /// PG payments that arrived for this order when it could no longer take
    /// them; each is reported once and cancelled by compensation.
    #[serde(default)]
    pub orphaned_payments: Vec<PaymentKey>,
    /// While AWAITING_DEPOSIT: the virtual account's due date (the PG's
    /// `dueDate`). Past it the order expires and the account is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deposit_due_at: Option<Timestamp>,
    /// The flash sale whose admission placed this order
    /// (docs/adr/0027-the-waiting-room.md); its events carry it so the
    /// waiting room frees the slot when the order ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_id: Option<SaleId>,
    /// Numbered refunds, oldest first (`order::refund`); empty for an order
    /// never refunded, or refunded whole at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refunds: Vec<Refund>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("order is {status}; {command} is not allowed")]
    IllegalTransition { status: OrderStatus, command: &'static str },
    #[error("amount {got} does not match the amount due {expected}")]
    AmountMismatch { expected: Money, got: Money },
    #[error("order expired at {0}")]
    PastExpiry(Timestamp),
    #[error("order does not expire until {0}")]
    NotYetExpired(Timestamp),
    #[error("a payment for this order is being confirmed")]
    PaymentInProgress,
    /// A sum beyond the money cap (10^15): refused, never saturated.
    #[error("the amount would exceed the money cap")]
    AmountOverflow,
    #[error("a refund of {asked} is more than the {held} the order still holds")]
    RefundExceedsHeld { asked: Money, held: Money },
    #[error("{asked} units of {product} asked back; the order holds {held}")]
    UnitsNotHeld { product: ProductId, asked: u32, held: u32 },
    #[error("a refund needs at least one line")]
    NoRefundLines,
    #[error("product {0} is on more than one refund line")]
    DuplicateRefundLine(ProductId),
    #[error("another refund of this order is in progress; the rest can be refunded once it is done")]
    RefundInProgress,
    #[error("an order has at most {max} refunds")]
    TooManyRefunds { max: usize },
    #[error("the order has no refund {0} in progress")]
    NoSuchRefund(u32),
    /// A paid virtual account's deposit goes back by bank transfer.
    #[error("the {cash} paid by deposit goes back by bank transfer: give the refundAccount to send it to")]
    RefundAccountRequired { cash: Money },
}

#[cfg(test)]
mod tests;
