//! `apply` folds an event into the order (each bumps `version` by one);
//! `execute` is `decide` then `apply`.

use super::decide::OrderCommand;
use super::events::{OrderEvent, OrderEventKind};
use super::refund::{Refund, RefundStatus};
use super::{Order, OrderError, OrderStatus, PaymentMethod};
use crate::{Money, Timestamp};

impl Order {
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
            OrderEventKind::RefundRequested { refund_number, lines, amount, points_used, refund_account, .. } => {
                o.status = OrderStatus::RefundPending;
                if let Some(number) = refund_number {
                    o.refunds.push(Refund {
                        number: *number,
                        lines: lines.clone(),
                        cash: *amount,
                        points: *points_used,
                        discount_withdrawn: Money::ZERO,
                        rest: true,
                        status: RefundStatus::Requested,
                        requested_at: event.occurred_at,
                        failure: None,
                        to_account: *refund_account,
                    });
                }
            }
            OrderEventKind::OrderRefunded { refund_number, .. } => {
                o.status = OrderStatus::Refunded;
                o.set_refund_status(*refund_number, RefundStatus::Done, None);
            }
            OrderEventKind::PartialRefundRequested {
                refund_number,
                lines,
                cash,
                points,
                discount_withdrawn,
                refund_account,
                ..
            } => {
                o.status = OrderStatus::PartiallyRefunded;
                o.refunds.push(Refund {
                    number: *refund_number,
                    lines: lines.clone(),
                    cash: *cash,
                    points: *points,
                    discount_withdrawn: *discount_withdrawn,
                    rest: false,
                    status: RefundStatus::Requested,
                    requested_at: event.occurred_at,
                    failure: None,
                    to_account: *refund_account,
                });
            }
            OrderEventKind::OrderPartiallyRefunded { refund_number, .. } => {
                o.set_refund_status(Some(*refund_number), RefundStatus::Done, None);
            }
            OrderEventKind::RefundFailed { refund_number, code, message, order_status, .. } => {
                o.status = *order_status;
                o.set_refund_status(Some(*refund_number), RefundStatus::Failed, Some(format!("{code}: {message}")));
            }
        }
        o
    }

    fn set_refund_status(&mut self, number: Option<u32>, status: RefundStatus, failure: Option<String>) {
        if let Some(r) = self.refunds.iter_mut().find(|r| Some(r.number) == number) {
            r.status = status;
            r.failure = failure;
        }
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
