//! The order aggregate: placement, then a state machine driven by commands.
//!
//! ```text
//! (placed with nothing left to pay: PAID at once, `OrderPlaced` + `OrderPaid`)
//! PENDING_PAYMENT ──points / PG DONE──────────────────────────► PAID ──cancel──► REFUND_PENDING ──► REFUNDED
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

use crate::coupon::{Coupon, CouponError};
use crate::points::{self, PointsError};
use crate::{CouponId, Money, OrderId, PaymentKey, Product, ProductId, Quantity, Timestamp, UserId, money};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    PendingPayment,
    Confirming,
    AwaitingDeposit,
    Paid,
    Expired,
    Cancelled,
    RefundPending,
    Refunded,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 8] = [
        OrderStatus::PendingPayment,
        OrderStatus::Confirming,
        OrderStatus::AwaitingDeposit,
        OrderStatus::Paid,
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
}

/// Events in past tense. The variant name is the EventBridge `detail-type`;
/// the fields are the event's `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "detailType", content = "data")]
pub enum OrderEventKind {
    #[serde(rename_all = "camelCase")]
    OrderPlaced {
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
        user_id: UserId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        coupon_id: Option<CouponId>,
        lines: Vec<OrderLine>,
        points_released: Money,
        /// A virtual account issued for the order, to be closed at the PG.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payment_key: Option<PaymentKey>,
    },
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
    },
    #[serde(rename_all = "camelCase")]
    OrderRefunded {
        user_id: UserId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        coupon_id: Option<CouponId>,
        amount: Money,
        points_refunded: Money,
    },
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    /// Our confirm call to the PG is about to be sent.
    StartPayment {
        payment_key: PaymentKey,
        method: PaymentMethod,
        amount: Money,
    },
    /// The PG reports the payment DONE (confirm answer, webhook or reconciliation).
    ConfirmPayment {
        payment_key: PaymentKey,
        method: PaymentMethod,
        amount: Money,
    },
    /// The PG issued a virtual account and waits for the deposit until `due_at`.
    AwaitDeposit {
        payment_key: PaymentKey,
        amount: Money,
        due_at: Timestamp,
    },
    /// The PG declined or aborted the payment (or the deposit deadline passed).
    FailPayment {
        payment_key: PaymentKey,
        code: String,
        message: String,
    },
    /// Pay the whole amount due from points (the debit is in the same transaction).
    PayWithPoints,
    Expire,
    Cancel,
    /// Compensation finished: PG cancelled, points and stock returned.
    CompleteRefund,
}

impl OrderCommand {
    pub fn name(&self) -> &'static str {
        match self {
            OrderCommand::StartPayment { .. } => "StartPayment",
            OrderCommand::ConfirmPayment { .. } => "ConfirmPayment",
            OrderCommand::AwaitDeposit { .. } => "AwaitDeposit",
            OrderCommand::FailPayment { .. } => "FailPayment",
            OrderCommand::PayWithPoints => "PayWithPoints",
            OrderCommand::Expire => "Expire",
            OrderCommand::Cancel => "Cancel",
            OrderCommand::CompleteRefund => "CompleteRefund",
        }
    }
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
}

type Decision = Result<Vec<OrderEventKind>, OrderError>;

/// A virtual account whose due date is unknown (Toss always sends one) is
/// treated as due this long after it was issued or its order placed.
pub const DEPOSIT_DUE_FALLBACK_SECS: i64 = 7 * 86_400;

impl Order {
    fn illegal(&self, cmd: &OrderCommand) -> OrderError {
        OrderError::IllegalTransition { status: self.status, command: cmd.name() }
    }

    fn check_amount(&self, amount: Money) -> Result<(), OrderError> {
        if amount == self.amount_due {
            Ok(())
        } else {
            Err(OrderError::AmountMismatch { expected: self.amount_due, got: amount })
        }
    }

    fn orphan(&self, payment_key: &PaymentKey, amount: Money) -> Decision {
        if self.orphaned_payments.contains(payment_key) {
            return Ok(vec![]);
        }
        Ok(vec![OrderEventKind::PaymentOrphaned {
            user_id: self.user_id.clone(),
            payment_key: payment_key.clone(),
            amount,
            order_status: self.status,
        }])
    }

    fn paid(&self, payment_key: Option<PaymentKey>, method: PaymentMethod) -> OrderEventKind {
        OrderEventKind::OrderPaid {
            user_id: self.user_id.clone(),
            payment_key,
            method,
            amount: self.amount_due,
            coupon_id: self.coupon_id.clone(),
        }
    }

    /// While AWAITING_DEPOSIT: when the virtual account stops taking
    /// deposits — its due date, or for an account recorded without one (the
    /// PG sent none, or it was issued before due dates were kept) a fixed
    /// window after the order was placed.
    pub fn deposit_due(&self) -> Timestamp {
        self.deposit_due_at.unwrap_or(self.created_at.plus_secs(DEPOSIT_DUE_FALLBACK_SECS))
    }

    fn expired(&self, virtual_account: Option<PaymentKey>) -> OrderEventKind {
        OrderEventKind::OrderExpired {
            user_id: self.user_id.clone(),
            coupon_id: self.coupon_id.clone(),
            lines: self.lines.clone(),
            points_released: self.points_used,
            payment_key: virtual_account,
        }
    }

    /// The events `cmd` produces at `now`, or why it is refused.
    pub fn decide(&self, cmd: &OrderCommand, now: Timestamp) -> Decision {
        use OrderStatus as S;
        match cmd {
            OrderCommand::StartPayment { payment_key, method, amount } => match self.status {
                S::PendingPayment => {
                    if now >= self.expires_at {
                        return Err(OrderError::PastExpiry(self.expires_at));
                    }
                    self.check_amount(*amount)?;
                    Ok(vec![OrderEventKind::PaymentConfirmationStarted {
                        user_id: self.user_id.clone(),
                        payment_key: payment_key.clone(),
                        method: *method,
                        amount: *amount,
                    }])
                }
                S::Confirming => Err(OrderError::PaymentInProgress),
                S::AwaitingDeposit | S::Paid | S::Expired | S::Cancelled | S::RefundPending | S::Refunded => {
                    Err(self.illegal(cmd))
                }
            },
            OrderCommand::ConfirmPayment { payment_key, method, amount } => match self.status {
                S::PendingPayment | S::Confirming | S::AwaitingDeposit => {
                    if *amount != self.amount_due {
                        // The PG took a different amount than we asked for: never
                        // mark the order paid; give the money back.
                        return self.orphan(payment_key, *amount);
                    }
                    Ok(vec![self.paid(Some(payment_key.clone()), *method)])
                }
                S::Paid | S::RefundPending | S::Refunded if self.payment_key.as_ref() == Some(payment_key) => {
                    Ok(vec![])
                }
                S::Paid | S::RefundPending | S::Refunded | S::Expired | S::Cancelled => {
                    self.orphan(payment_key, *amount)
                }
            },
            OrderCommand::AwaitDeposit { payment_key, amount, due_at } => match self.status {
                S::PendingPayment | S::Confirming => {
                    self.check_amount(*amount)?;
                    Ok(vec![OrderEventKind::VirtualAccountIssued {
                        user_id: self.user_id.clone(),
                        payment_key: payment_key.clone(),
                        amount: *amount,
                        due_at: Some(*due_at),
                    }])
                }
                S::AwaitingDeposit if self.payment_key.as_ref() == Some(payment_key) => Ok(vec![]),
                S::AwaitingDeposit | S::Paid | S::Expired | S::Cancelled | S::RefundPending | S::Refunded => {
                    Err(self.illegal(cmd))
                }
            },
            OrderCommand::FailPayment { payment_key, code, message } => match self.status {
                S::Confirming | S::AwaitingDeposit if self.payment_key.as_ref() == Some(payment_key) => {
                    Ok(vec![OrderEventKind::PaymentFailed {
                        user_id: self.user_id.clone(),
                        payment_key: payment_key.clone(),
                        code: code.clone(),
                        message: message.clone(),
                    }])
                }
                // A failure of an attempt that is no longer the current one
                // (already failed, superseded, or the order moved on) changes nothing.
                S::Confirming
                | S::AwaitingDeposit
                | S::PendingPayment
                | S::Paid
                | S::Expired
                | S::Cancelled
                | S::RefundPending
                | S::Refunded => Ok(vec![]),
            },
            OrderCommand::PayWithPoints => match self.status {
                S::PendingPayment => {
                    if now >= self.expires_at {
                        return Err(OrderError::PastExpiry(self.expires_at));
                    }
                    Ok(vec![self.paid(None, PaymentMethod::Points)])
                }
                S::Confirming => Err(OrderError::PaymentInProgress),
                S::AwaitingDeposit | S::Paid | S::Expired | S::Cancelled | S::RefundPending | S::Refunded => {
                    Err(self.illegal(cmd))
                }
            },
            OrderCommand::Expire => match self.status {
                S::PendingPayment if now >= self.expires_at => Ok(vec![self.expired(None)]),
                S::PendingPayment => Err(OrderError::NotYetExpired(self.expires_at)),
                // The caller asked the PG first: no deposit arrived.
                S::AwaitingDeposit if now >= self.deposit_due() => Ok(vec![self.expired(self.payment_key.clone())]),
                S::AwaitingDeposit => Err(OrderError::NotYetExpired(self.deposit_due())),
                S::Expired => Ok(vec![]),
                // CONFIRMING is reconciled with the PG first: it may have taken the money.
                S::Confirming | S::Paid | S::Cancelled | S::RefundPending | S::Refunded => Err(self.illegal(cmd)),
            },
            OrderCommand::Cancel => match self.status {
                S::PendingPayment | S::AwaitingDeposit => Ok(vec![OrderEventKind::OrderCancelled {
                    user_id: self.user_id.clone(),
                    coupon_id: self.coupon_id.clone(),
                    lines: self.lines.clone(),
                    points_released: self.points_used,
                    payment_key: self.payment_key.clone(),
                }]),
                S::Paid => Ok(vec![OrderEventKind::RefundRequested {
                    user_id: self.user_id.clone(),
                    payment_key: self.payment_key.clone(),
                    method: self.payment_method.unwrap_or(PaymentMethod::Points),
                    amount: self.amount_due,
                    points_used: self.points_used,
                    coupon_id: self.coupon_id.clone(),
                }]),
                S::Cancelled | S::RefundPending | S::Refunded => Ok(vec![]),
                S::Confirming => Err(OrderError::PaymentInProgress),
                S::Expired => Err(self.illegal(cmd)),
            },
            OrderCommand::CompleteRefund => match self.status {
                S::RefundPending => {
                    let points_refunded = match self.payment_method {
                        Some(PaymentMethod::Points) => self.points_used.checked_add(self.amount_due),
                        Some(PaymentMethod::Card | PaymentMethod::VirtualAccount) | None => Some(self.points_used),
                    };
                    Ok(vec![OrderEventKind::OrderRefunded {
                        user_id: self.user_id.clone(),
                        coupon_id: self.coupon_id.clone(),
                        amount: self.amount_due,
                        points_refunded: points_refunded.ok_or(OrderError::AmountOverflow)?,
                    }])
                }
                S::Refunded => Ok(vec![]),
                S::PendingPayment | S::Confirming | S::AwaitingDeposit | S::Paid | S::Expired | S::Cancelled => {
                    Err(self.illegal(cmd))
                }
            },
        }
    }

    /// The order after `event`.
    pub fn apply(&self, event: &OrderEvent) -> Order {
        let mut o = self.clone();
        o.version = event.aggregate_version;
        match &event.kind {
            OrderEventKind::OrderPlaced { .. } => {}
            OrderEventKind::PaymentConfirmationStarted { payment_key, method, .. } => {
                o.status = OrderStatus::Confirming;
                o.payment_key = Some(payment_key.clone());
                o.payment_method = Some(*method);
            }
            OrderEventKind::VirtualAccountIssued { payment_key, due_at, .. } => {
                o.status = OrderStatus::AwaitingDeposit;
                o.payment_key = Some(payment_key.clone());
                o.payment_method = Some(PaymentMethod::VirtualAccount);
                o.deposit_due_at = *due_at;
            }
            OrderEventKind::OrderPaid { payment_key, method, .. } => {
                o.status = OrderStatus::Paid;
                o.payment_key = payment_key.clone();
                o.payment_method = Some(*method);
                o.deposit_due_at = None;
            }
            OrderEventKind::PaymentFailed { .. } => {
                o.status = OrderStatus::PendingPayment;
                o.payment_key = None;
                o.payment_method = None;
                o.deposit_due_at = None;
            }
            OrderEventKind::PaymentOrphaned { payment_key, .. } => {
                o.orphaned_payments.push(payment_key.clone());
            }
            OrderEventKind::OrderExpired { .. } => {
                o.status = OrderStatus::Expired;
                o.deposit_due_at = None;
            }
            OrderEventKind::OrderCancelled { .. } => {
                o.status = OrderStatus::Cancelled;
                o.deposit_due_at = None;
            }
            OrderEventKind::RefundRequested { .. } => o.status = OrderStatus::RefundPending,
            OrderEventKind::OrderRefunded { .. } => o.status = OrderStatus::Refunded,
        }
        o
    }

    /// `decide` then `apply`: the new order and its stamped events.
    pub fn execute(&self, cmd: &OrderCommand, now: Timestamp) -> Result<(Order, Vec<OrderEvent>), OrderError> {
        let mut order = self.clone();
        let mut events = Vec::new();
        for kind in self.decide(cmd, now)? {
            let event =
                OrderEvent { order_id: self.id.clone(), aggregate_version: order.version + 1, occurred_at: now, kind };
            order = order.apply(&event);
            events.push(event);
        }
        Ok((order, events))
    }
}

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

#[cfg(test)]
mod tests;
