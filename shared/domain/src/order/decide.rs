//! What may happen to an order: the commands, and `decide` — pure, it reads
//! the order and a command and returns the events (none when the command
//! was already carried out, so duplicates and replays are harmless).

use super::events::OrderEventKind;
use super::refund::{Refund, RefundPart, RefundStatus};
use super::{Order, OrderError, OrderStatus, PaymentMethod};
use crate::{Money, PaymentKey, Timestamp};

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
    /// Cancel the order; once paid, refund everything it holds.
    /// `refund_account`: whether the shopper gave an account for deposited
    /// cash to go back to (required for a paid virtual account).
    Cancel {
        refund_account: bool,
    },
    /// Compensation finished: PG cancelled, points and stock returned.
    CompleteRefund,
    /// Give back part of a paid order, or the rest of it. `coupon_minimum`
    /// is the order's coupon's minimum order amount (`None`: no coupon).
    /// `refund_account` as for [`OrderCommand::Cancel`].
    RequestRefund {
        part: RefundPart,
        coupon_minimum: Option<Money>,
        refund_account: bool,
    },
    /// Compensation gave a part back: PG cancelled, points and stock returned.
    CompleteRefundPart {
        number: u32,
    },
    /// The PG refused a numbered refund.
    FailRefund {
        number: u32,
        code: String,
        message: String,
    },
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
            OrderCommand::Cancel { .. } => "Cancel",
            OrderCommand::CompleteRefund => "CompleteRefund",
            OrderCommand::RequestRefund { .. } => "RequestRefund",
            OrderCommand::CompleteRefundPart { .. } => "CompleteRefundPart",
            OrderCommand::FailRefund { .. } => "FailRefund",
        }
    }
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
            sale_id: self.sale_id.clone(),
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
            sale_id: self.sale_id.clone(),
        }
    }

    /// The event that asks for `refund`: the rest goes through
    /// REFUND_PENDING as a whole refund does, a part leaves the order
    /// PARTIALLY_REFUNDED.
    fn refund_requested(&self, refund: Refund) -> OrderEventKind {
        let method = self.payment_method.unwrap_or(PaymentMethod::Points);
        if refund.rest {
            return OrderEventKind::RefundRequested {
                user_id: self.user_id.clone(),
                payment_key: self.payment_key.clone(),
                method,
                amount: refund.cash,
                points_used: refund.points,
                coupon_id: self.coupon_id.clone(),
                refund_number: Some(refund.number),
                lines: refund.lines,
                refund_account: refund.to_account,
            };
        }
        OrderEventKind::PartialRefundRequested {
            user_id: self.user_id.clone(),
            refund_number: refund.number,
            payment_key: self.payment_key.clone(),
            method,
            lines: refund.lines,
            cash: refund.cash,
            points: refund.points,
            discount_withdrawn: refund.discount_withdrawn,
            refund_account: refund.to_account,
        }
    }

    /// The status an order is left in once `failed` no longer counts.
    fn status_without(&self, failed: u32) -> OrderStatus {
        let others = self.refunds.iter().any(|r| r.number != failed && r.status != RefundStatus::Failed);
        if others { OrderStatus::PartiallyRefunded } else { OrderStatus::Paid }
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
                S::AwaitingDeposit
                | S::Paid
                | S::PartiallyRefunded
                | S::Expired
                | S::Cancelled
                | S::RefundPending
                | S::Refunded => Err(self.illegal(cmd)),
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
                S::Paid | S::PartiallyRefunded | S::RefundPending | S::Refunded
                    if self.payment_key.as_ref() == Some(payment_key) =>
                {
                    Ok(vec![])
                }
                S::Paid | S::PartiallyRefunded | S::RefundPending | S::Refunded | S::Expired | S::Cancelled => {
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
                        sale_id: self.sale_id.clone(),
                    }])
                }
                S::AwaitingDeposit if self.payment_key.as_ref() == Some(payment_key) => Ok(vec![]),
                S::AwaitingDeposit
                | S::Paid
                | S::PartiallyRefunded
                | S::Expired
                | S::Cancelled
                | S::RefundPending
                | S::Refunded => Err(self.illegal(cmd)),
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
                | S::PartiallyRefunded
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
                S::AwaitingDeposit
                | S::Paid
                | S::PartiallyRefunded
                | S::Expired
                | S::Cancelled
                | S::RefundPending
                | S::Refunded => Err(self.illegal(cmd)),
            },
            OrderCommand::Expire => match self.status {
                S::PendingPayment if now >= self.expires_at => Ok(vec![self.expired(None)]),
                S::PendingPayment => Err(OrderError::NotYetExpired(self.expires_at)),
                // The caller asked the PG first: no deposit arrived.
                S::AwaitingDeposit if now >= self.deposit_due() => Ok(vec![self.expired(self.payment_key.clone())]),
                S::AwaitingDeposit => Err(OrderError::NotYetExpired(self.deposit_due())),
                S::Expired => Ok(vec![]),
                // CONFIRMING is reconciled with the PG first: it may have taken the money.
                S::Confirming | S::Paid | S::PartiallyRefunded | S::Cancelled | S::RefundPending | S::Refunded => {
                    Err(self.illegal(cmd))
                }
            },
            OrderCommand::Cancel { refund_account } => match self.status {
                S::PendingPayment | S::AwaitingDeposit => Ok(vec![OrderEventKind::OrderCancelled {
                    user_id: self.user_id.clone(),
                    coupon_id: self.coupon_id.clone(),
                    lines: self.lines.clone(),
                    points_released: self.points_used,
                    payment_key: self.payment_key.clone(),
                    sale_id: self.sale_id.clone(),
                }]),
                // Everything still held, as a numbered refund: its PG cancel
                // carries its own key and amount, and a refusal fails this
                // refund only (the order PAID again), never the next one.
                S::Paid | S::PartiallyRefunded => {
                    Ok(vec![self.refund_requested(self.with_account(self.plan_rest(now)?, *refund_account)?)])
                }
                S::Cancelled | S::RefundPending | S::Refunded => Ok(vec![]),
                S::Confirming => Err(OrderError::PaymentInProgress),
                S::Expired => Err(self.illegal(cmd)),
            },
            OrderCommand::CompleteRefund => match self.status {
                S::RefundPending => {
                    // The rest after parts gives back what it was asked for;
                    // a whole refund at once, everything paid.
                    let rest = self.refunds.iter().find(|r| r.rest && r.status == RefundStatus::Requested);
                    let (amount, points_refunded) = match rest {
                        Some(r) => (r.cash, r.points),
                        None => (self.amount_due, self.paid_points()),
                    };
                    Ok(vec![OrderEventKind::OrderRefunded {
                        user_id: self.user_id.clone(),
                        coupon_id: self.coupon_id.clone(),
                        amount,
                        points_refunded,
                        refund_number: rest.map(|r| r.number),
                    }])
                }
                S::Refunded => Ok(vec![]),
                S::PendingPayment
                | S::Confirming
                | S::AwaitingDeposit
                | S::Paid
                | S::PartiallyRefunded
                | S::Expired
                | S::Cancelled => Err(self.illegal(cmd)),
            },
            OrderCommand::RequestRefund { part, coupon_minimum, refund_account } => match self.status {
                S::Paid | S::PartiallyRefunded => {
                    let refund = self.plan_refund(part, *coupon_minimum, now)?;
                    Ok(vec![self.refund_requested(self.with_account(refund, *refund_account)?)])
                }
                S::Confirming => Err(OrderError::PaymentInProgress),
                S::PendingPayment | S::AwaitingDeposit | S::Expired | S::Cancelled | S::RefundPending | S::Refunded => {
                    Err(self.illegal(cmd))
                }
            },
            // A refund's end is decided by its own status, whatever the
            // order's: a redelivered answer finds it settled and changes nothing.
            OrderCommand::CompleteRefundPart { number } => match self.refund(*number) {
                Some(r) if r.rest => Err(OrderError::NoSuchRefund(*number)),
                Some(r) => match r.status {
                    RefundStatus::Requested => Ok(vec![OrderEventKind::OrderPartiallyRefunded {
                        user_id: self.user_id.clone(),
                        refund_number: r.number,
                        lines: r.lines.clone(),
                        cash: r.cash,
                        points: r.points,
                    }]),
                    RefundStatus::Done => Ok(vec![]),
                    RefundStatus::Failed => Err(OrderError::NoSuchRefund(*number)),
                },
                None => Err(OrderError::NoSuchRefund(*number)),
            },
            OrderCommand::FailRefund { number, code, message } => match self.refund(*number) {
                Some(r) => match r.status {
                    RefundStatus::Requested => Ok(vec![OrderEventKind::RefundFailed {
                        user_id: self.user_id.clone(),
                        refund_number: r.number,
                        code: code.clone(),
                        message: message.clone(),
                        order_status: self.status_without(r.number),
                    }]),
                    RefundStatus::Done | RefundStatus::Failed => Ok(vec![]),
                },
                None => Err(OrderError::NoSuchRefund(*number)),
            },
        }
    }
}
