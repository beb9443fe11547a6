//! Refunds of a paid order, whole or in parts (docs/adr/0030-partial-refunds.md):
//! what the order still holds, and what one refund gives back.
//!
//! ```text
//! PAID ──part──► PARTIALLY_REFUNDED ──part (each REQUESTED → DONE | FAILED)──► PARTIALLY_REFUNDED
//!   │                  └──the rest──► REFUND_PENDING ──► REFUNDED
//!   └──cancel (the whole; no refund number)──► REFUND_PENDING ──► REFUNDED
//! ```
//! Invariants, each enforced in [`Order::plan_refund`]:
//! - a refund never gives back more than the order still holds, in cash
//!   (card or deposit), in points, or in units of a line;
//! - refunds are numbered 1, 2, … per order; their number keys the PG's
//!   idempotency, so a redelivered request cancels once;
//! - the refund that leaves nothing held (no units or no money) is *the
//!   rest*: it may not start while another refund is in flight, so a part
//!   the PG refuses can never leave money held by a REFUNDED order.

use super::{Order, OrderError, OrderLine, PaymentMethod};
use crate::{Money, ProductId, Quantity, Timestamp};
use serde::{Deserialize, Serialize};

/// Refunds one order may have. Each is kept on the order item (DynamoDB's
/// 400 KB item limit); twenty covers a return of every line of the
/// largest order with room for corrections.
pub const MAX_REFUNDS: usize = 20;

/// Units of one line given back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundLine {
    pub product_id: ProductId,
    pub quantity: Quantity,
}

impl RefundLine {
    /// Every unit of `line`.
    pub fn whole(line: &OrderLine) -> RefundLine {
        RefundLine { product_id: line.product_id.clone(), quantity: line.quantity }
    }
}

/// What the shopper asks to have back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundPart {
    /// Returned goods: their price comes back (less a coupon's discount the
    /// rest no longer qualifies for), and so does their stock.
    Lines(Vec<RefundLine>),
    /// A price adjustment: money only, no stock.
    Amount(Money),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    /// Asked for; compensation is cancelling it at the PG.
    Requested,
    /// The PG gave the cash back; stock and points are back.
    Done,
    /// The PG refused it; what it would have given back is held again.
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Requested => "REQUESTED",
            RefundStatus::Done => "DONE",
            RefundStatus::Failed => "FAILED",
        }
    }
}

/// One numbered refund of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    pub number: u32,
    /// Units given back (empty for an amount).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<RefundLine>,
    /// Back to the card or by bank transfer (a PG cancel of this amount).
    pub cash: Money,
    /// Back to the points balance.
    pub points: Money,
    /// The coupon discount taken back: the items still held fell below
    /// the coupon's minimum with this refund.
    #[serde(default, skip_serializing_if = "crate::money::is_zero")]
    pub discount_withdrawn: Money,
    /// Whether it takes everything the order still held.
    #[serde(default)]
    pub rest: bool,
    pub status: RefundStatus,
    pub requested_at: Timestamp,
    /// The PG's code and message when it refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Its cash goes back by bank transfer to the shopper's refund account
    /// (a paid virtual account), kept sealed beside the order as
    /// `REFUNDACCOUNT#<number>` until the PG has answered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub to_account: bool,
}

impl Refund {
    pub fn total(&self) -> Option<Money> {
        self.cash.checked_add(self.points)
    }

    /// Whether what it gives back is no longer held (requested or done).
    fn counts(&self) -> bool {
        match self.status {
            RefundStatus::Requested | RefundStatus::Done => true,
            RefundStatus::Failed => false,
        }
    }
}

impl Order {
    /// Cash the shopper paid through the PG (card or deposit).
    pub fn paid_cash(&self) -> Money {
        match self.payment_method {
            Some(PaymentMethod::Card | PaymentMethod::VirtualAccount) => self.amount_due,
            Some(PaymentMethod::Points) | None => Money::ZERO,
        }
    }

    /// Points the order took: those used at placement, and the amount due
    /// when it was paid with points.
    pub fn paid_points(&self) -> Money {
        match self.payment_method {
            Some(PaymentMethod::Points) => self.points_used.checked_add(self.amount_due).unwrap_or(Money::MAX),
            Some(PaymentMethod::Card | PaymentMethod::VirtualAccount) | None => self.points_used,
        }
    }

    fn counted(&self) -> impl Iterator<Item = &Refund> {
        self.refunds.iter().filter(|r| r.counts())
    }

    /// Cash the order still holds (paid, less refunds requested or done).
    pub fn held_cash(&self) -> Money {
        let given = crate::money::sum(self.counted().map(|r| r.cash)).unwrap_or(Money::MAX);
        self.paid_cash().checked_sub(given).unwrap_or(Money::ZERO)
    }

    /// Points the order still holds.
    pub fn held_points(&self) -> Money {
        let given = crate::money::sum(self.counted().map(|r| r.points)).unwrap_or(Money::MAX);
        self.paid_points().checked_sub(given).unwrap_or(Money::ZERO)
    }

    /// Units of `line` still held.
    pub fn held_units(&self, line: &OrderLine) -> u32 {
        let given: u32 = self
            .counted()
            .flat_map(|r| r.lines.iter())
            .filter(|l| l.product_id == line.product_id)
            .map(|l| l.quantity.get())
            .sum();
        line.quantity.get().saturating_sub(given)
    }

    /// The lines still held, with the units held (lines wholly given back left out).
    pub fn held_lines(&self) -> Vec<RefundLine> {
        self.lines
            .iter()
            .filter_map(|l| {
                let q = Quantity::new(i128::from(self.held_units(l))).ok()?;
                Some(RefundLine { product_id: l.product_id.clone(), quantity: q })
            })
            .collect()
    }

    /// The price of the goods still held.
    fn held_goods(&self) -> Option<Money> {
        self.lines
            .iter()
            .try_fold(Money::ZERO, |sum, l| sum.checked_add(l.unit_price.checked_mul(u64::from(self.held_units(l)))?))
    }

    /// The refund with this number.
    pub fn refund(&self, number: u32) -> Option<&Refund> {
        self.refunds.iter().find(|r| r.number == number)
    }

    /// Whether a refund giving back `cash` must go to a bank account: a
    /// deposit is returned by transfer, never to a card.
    pub fn needs_refund_account(&self, cash: Money) -> bool {
        match self.payment_method {
            Some(PaymentMethod::VirtualAccount) => !cash.is_zero(),
            Some(PaymentMethod::Card | PaymentMethod::Points) | None => false,
        }
    }

    /// `refund` sent to the shopper's account when it needs one: refused
    /// without one, and an account given where none is needed is not kept.
    pub(super) fn with_account(&self, mut refund: Refund, account_given: bool) -> Result<Refund, OrderError> {
        refund.to_account = self.needs_refund_account(refund.cash);
        if refund.to_account && !account_given {
            return Err(OrderError::RefundAccountRequired { cash: refund.cash });
        }
        Ok(refund)
    }

    /// Whether a refund is still being carried out.
    pub fn refund_in_flight(&self) -> bool {
        self.refunds.iter().any(|r| r.status == RefundStatus::Requested)
    }

    /// The rest of the order as one refund: everything still held.
    pub(super) fn plan_rest(&self, now: Timestamp) -> Result<Refund, OrderError> {
        if self.refund_in_flight() {
            return Err(OrderError::RefundInProgress);
        }
        Ok(Refund {
            number: self.next_refund_number()?,
            lines: self.held_lines(),
            cash: self.held_cash(),
            points: self.held_points(),
            discount_withdrawn: Money::ZERO,
            rest: true,
            status: RefundStatus::Requested,
            requested_at: now,
            failure: None,
            to_account: false,
        })
    }

    fn next_refund_number(&self) -> Result<u32, OrderError> {
        if self.refunds.len() >= MAX_REFUNDS {
            return Err(OrderError::TooManyRefunds { max: MAX_REFUNDS });
        }
        Ok(self.refunds.iter().map(|r| r.number).max().unwrap_or(0) + 1)
    }

    /// What refunding `part` gives back, or why it cannot. `coupon_minimum`
    /// is the minimum order amount of the order's coupon (`None`: no coupon).
    pub(super) fn plan_refund(
        &self,
        part: &RefundPart,
        coupon_minimum: Option<Money>,
        now: Timestamp,
    ) -> Result<Refund, OrderError> {
        let held = self.held_cash().checked_add(self.held_points()).ok_or(OrderError::AmountOverflow)?;
        let (lines, value, withdrawn, rest) = match part {
            RefundPart::Amount(amount) => {
                if amount.is_zero() || *amount > held {
                    return Err(OrderError::RefundExceedsHeld { asked: *amount, held });
                }
                (vec![], *amount, Money::ZERO, *amount == held)
            }
            RefundPart::Lines(lines) => self.value_of_lines(lines, coupon_minimum, held)?,
        };
        if rest {
            return self.plan_rest(now);
        }
        let (cash, points) = self.split(value)?;
        Ok(Refund {
            number: self.next_refund_number()?,
            lines,
            cash,
            points,
            discount_withdrawn: withdrawn,
            rest: false,
            status: RefundStatus::Requested,
            requested_at: now,
            failure: None,
            to_account: false,
        })
    }

    /// Returned goods: the lines (checked against what is held), their
    /// value, the discount withdrawn, and whether they are the rest.
    fn value_of_lines(
        &self,
        asked: &[RefundLine],
        coupon_minimum: Option<Money>,
        held: Money,
    ) -> Result<(Vec<RefundLine>, Money, Money, bool), OrderError> {
        if asked.is_empty() {
            return Err(OrderError::NoRefundLines);
        }
        let mut goods = Money::ZERO;
        let mut all_units = true;
        for (i, want) in asked.iter().enumerate() {
            if asked.iter().take(i).any(|o| o.product_id == want.product_id) {
                return Err(OrderError::DuplicateRefundLine(want.product_id.clone()));
            }
            let line = self.lines.iter().find(|l| l.product_id == want.product_id);
            let held_units = line.map_or(0, |l| self.held_units(l));
            let Some(line) = line.filter(|_| want.quantity.get() <= held_units) else {
                return Err(OrderError::UnitsNotHeld {
                    product: want.product_id.clone(),
                    asked: want.quantity.get(),
                    held: held_units,
                });
            };
            let price =
                line.unit_price.checked_mul(u64::from(want.quantity.get())).ok_or(OrderError::AmountOverflow)?;
            goods = goods.checked_add(price).ok_or(OrderError::AmountOverflow)?;
            all_units &= want.quantity.get() == held_units;
        }
        // Every held line given back whole: the rest.
        let rest = all_units && self.held_lines().len() == asked.len();
        // The discount holds while the goods still held meet the coupon's
        // minimum; the refund that takes them below it gives it back, once.
        let withdrawn_before = self.counted().any(|r| !r.discount_withdrawn.is_zero());
        let goods_after =
            self.held_goods().ok_or(OrderError::AmountOverflow)?.checked_sub(goods).unwrap_or(Money::ZERO);
        let withdrawn = match coupon_minimum {
            Some(min) if !withdrawn_before && !self.discount.is_zero() && goods_after < min => self.discount.min(goods),
            Some(_) | None => Money::ZERO,
        };
        let value = goods.checked_sub(withdrawn).unwrap_or(Money::ZERO).min(held);
        Ok((asked.to_vec(), value, withdrawn, rest || value == held))
    }

    /// `value` split between cash and points in the ratio the order was
    /// paid, cash rounded down, neither beyond what is held of it.
    fn split(&self, value: Money) -> Result<(Money, Money), OrderError> {
        let (cash_paid, points_paid) = (self.paid_cash(), self.paid_points());
        let total = u128::from(cash_paid.won()) + u128::from(points_paid.won());
        // Nothing paid at all (a free order): nothing in cash either.
        let pro_rata = (u128::from(value.won()) * u128::from(cash_paid.won())).checked_div(total).unwrap_or(0);
        let pro_rata = Money::new(i128::try_from(pro_rata).map_err(|_| OrderError::AmountOverflow)?)
            .map_err(|_| OrderError::AmountOverflow)?;
        let mut cash = pro_rata.min(self.held_cash());
        let mut points = value.checked_sub(cash).ok_or(OrderError::AmountOverflow)?;
        if points > self.held_points() {
            points = self.held_points();
            cash = value.checked_sub(points).ok_or(OrderError::AmountOverflow)?;
        }
        Ok((cash, points))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{OrderCommand, OrderEventKind, OrderStatus, PlaceOrder, place};
    use crate::{OrderId, PaymentKey, Product, UserId};

    fn m(v: i128) -> Money {
        Money::new(v).unwrap()
    }
    const T0: Timestamp = Timestamp::from_millis(1_000_000);

    /// Three lines of 10,000, 5,000 and 2,000 (one unit each, the second
    /// two units), `points` used at placement, the rest paid by card.
    fn paid(points: i128, coupon: Option<crate::Coupon>) -> Order {
        let p = |id: &str, price| Product {
            id: ProductId::parse(id).unwrap(),
            name: id.into(),
            price: m(price),
            available: 10,
        };
        let q = |n| Quantity::new(n).unwrap();
        let items = [(p("a", 10_000), q(1)), (p("b", 5_000), q(2)), (p("c", 2_000), q(1))];
        let placed = place(PlaceOrder {
            order_id: OrderId::parse("o1").unwrap(),
            user_id: UserId::parse("u1").unwrap(),
            items: &items,
            coupon: coupon.as_ref(),
            points_to_use: m(points),
            points_balance: m(100_000),
            now: T0,
            ttl_secs: 900,
            sale: None,
        })
        .unwrap()
        .order;
        let pay = OrderCommand::ConfirmPayment {
            payment_key: PaymentKey::parse("pay1").unwrap(),
            method: PaymentMethod::Card,
            amount: placed.amount_due,
        };
        placed.execute(&pay, T0).unwrap().0
    }

    /// As [`paid`], the cash paid by deposit into a virtual account.
    fn deposited(points: i128) -> Order {
        let mut o = paid(points, None);
        o.payment_method = Some(PaymentMethod::VirtualAccount);
        o
    }

    fn line(id: &str, n: i128) -> RefundLine {
        RefundLine { product_id: ProductId::parse(id).unwrap(), quantity: Quantity::new(n).unwrap() }
    }

    fn give_back(v: &[(&str, i128)]) -> OrderCommand {
        OrderCommand::RequestRefund {
            part: RefundPart::Lines(v.iter().map(|(id, n)| line(id, *n)).collect()),
            coupon_minimum: None,
            refund_account: false,
        }
    }

    fn run(o: &Order, cmd: &OrderCommand) -> (Order, Vec<OrderEventKind>) {
        let (o, events) = o.execute(cmd, T0).unwrap();
        (o, events.into_iter().map(|e| e.kind).collect())
    }

    #[test]
    fn deposited_cash_goes_back_only_to_an_account_the_shopper_gave() {
        let order = deposited(0);
        let part = |refund_account| OrderCommand::RequestRefund {
            part: RefundPart::Lines(vec![line("b", 1)]),
            coupon_minimum: None,
            refund_account,
        };
        assert_eq!(order.decide(&part(false), T0), Err(OrderError::RefundAccountRequired { cash: m(5_000) }));
        assert_eq!(
            order.decide(&OrderCommand::Cancel { refund_account: false }, T0),
            Err(OrderError::RefundAccountRequired { cash: m(22_000) })
        );
        let (after, ev) = run(&order, &part(true));
        assert!(matches!(ev[0], OrderEventKind::PartialRefundRequested { refund_account: true, .. }), "{ev:?}");
        assert!(after.refund(1).is_some_and(|r| r.to_account), "the refund knows its cash goes to the account");
        let (after, ev) = run(&after, &OrderCommand::CompleteRefundPart { number: 1 });
        assert!(!ev.is_empty());
        let (rest, ev) = run(&after, &OrderCommand::Cancel { refund_account: true });
        assert!(matches!(ev[0], OrderEventKind::RefundRequested { refund_account: true, .. }), "{ev:?}");
        assert!(rest.refund(2).is_some_and(|r| r.to_account && r.rest));

        // A card's refund never keeps an account, given or not; a deposited
        // order's refund with no cash (all points) needs none.
        let (card, _) = run(&paid(0, None), &OrderCommand::Cancel { refund_account: true });
        assert!(card.refund(1).is_some_and(|r| !r.to_account));
        let mut points_only = deposited(0);
        points_only.payment_method = Some(PaymentMethod::Points);
        assert!(!points_only.needs_refund_account(m(1_000)));
        assert!(!deposited(0).needs_refund_account(Money::ZERO));
    }

    #[test]
    fn one_line_then_another_then_the_rest_give_back_exactly_what_was_paid() {
        // 22,000 of goods; 2,200 in points (10%), 19,800 by card.
        let order = paid(2_200, None);
        assert_eq!((order.paid_cash(), order.paid_points()), (m(19_800), m(2_200)));

        let (order, ev) = run(&order, &give_back(&[("b", 1)]));
        let OrderEventKind::PartialRefundRequested { refund_number: 1, cash, points, lines, .. } = &ev[0] else {
            panic!("{ev:?}")
        };
        // 5,000 in the ratio paid: 4,500 cash, 500 points.
        assert_eq!((*cash, *points, lines.len()), (m(4_500), m(500), 1));
        assert_eq!(order.status, OrderStatus::PartiallyRefunded);
        assert_eq!((order.held_cash(), order.held_points()), (m(15_300), m(1_700)));
        let (order, ev) = run(&order, &OrderCommand::CompleteRefundPart { number: 1 });
        assert!(matches!(ev[0], OrderEventKind::OrderPartiallyRefunded { refund_number: 1, .. }));
        // Completing twice changes nothing.
        assert_eq!(run(&order, &OrderCommand::CompleteRefundPart { number: 1 }).1, vec![]);

        let (order, _) = run(&order, &give_back(&[("a", 1)]));
        let (order, _) = run(&order, &OrderCommand::CompleteRefundPart { number: 2 });
        assert_eq!((order.held_cash(), order.held_points()), (m(6_300), m(700)));

        // What is left (one b, one c) is the rest: REFUND_PENDING, then REFUNDED.
        let (order, ev) = run(&order, &give_back(&[("b", 1), ("c", 1)]));
        let OrderEventKind::RefundRequested { refund_number: Some(3), amount, points_used, lines, .. } = &ev[0] else {
            panic!("{ev:?}")
        };
        assert_eq!((*amount, *points_used, lines.len()), (m(6_300), m(700), 2));
        assert_eq!(order.status, OrderStatus::RefundPending);
        let (order, ev) = run(&order, &OrderCommand::CompleteRefund);
        assert!(
            matches!(&ev[0], OrderEventKind::OrderRefunded { refund_number: Some(3), amount, .. } if *amount == m(6_300))
        );
        assert_eq!(order.status, OrderStatus::Refunded);
        let cash: Money = crate::money::sum(order.refunds.iter().map(|r| r.cash)).unwrap();
        let points: Money = crate::money::sum(order.refunds.iter().map(|r| r.points)).unwrap();
        assert_eq!((cash, points), (m(19_800), m(2_200)));
        assert!(order.refunds.iter().all(|r| r.status == RefundStatus::Done));
    }

    #[test]
    fn more_than_is_held_is_refused_and_changes_nothing() {
        let order = paid(0, None);
        let too_much = OrderCommand::RequestRefund {
            part: RefundPart::Amount(m(22_001)),
            coupon_minimum: None,
            refund_account: false,
        };
        assert_eq!(
            order.decide(&too_much, T0),
            Err(OrderError::RefundExceedsHeld { asked: m(22_001), held: m(22_000) })
        );
        let zero = OrderCommand::RequestRefund {
            part: RefundPart::Amount(Money::ZERO),
            coupon_minimum: None,
            refund_account: false,
        };
        assert!(matches!(order.decide(&zero, T0), Err(OrderError::RefundExceedsHeld { .. })));
        assert!(matches!(
            order.decide(&give_back(&[("b", 3)]), T0),
            Err(OrderError::UnitsNotHeld { asked: 3, held: 2, .. })
        ));
        assert!(matches!(order.decide(&give_back(&[("zz", 1)]), T0), Err(OrderError::UnitsNotHeld { held: 0, .. })));
        assert_eq!(
            order.decide(&give_back(&[("b", 1), ("b", 1)]), T0),
            Err(OrderError::DuplicateRefundLine(line("b", 1).product_id))
        );
        // Units already asked back are no longer held, even before they are done.
        let (order, _) = run(&order, &give_back(&[("b", 2)]));
        assert!(matches!(order.decide(&give_back(&[("b", 1)]), T0), Err(OrderError::UnitsNotHeld { held: 0, .. })));
        let rest = OrderCommand::RequestRefund {
            part: RefundPart::Amount(m(12_000)),
            coupon_minimum: None,
            refund_account: false,
        };
        assert_eq!(order.decide(&rest, T0), Err(OrderError::RefundInProgress), "the rest waits for the part in flight");
        assert_eq!(
            order.decide(&OrderCommand::Cancel { refund_account: false }, T0),
            Err(OrderError::RefundInProgress)
        );
        // An amount below what is held is a price adjustment: no lines.
        let (order, ev) = run(
            &order,
            &OrderCommand::RequestRefund {
                part: RefundPart::Amount(m(1_000)),
                coupon_minimum: None,
                refund_account: false,
            },
        );
        assert!(
            matches!(&ev[0], OrderEventKind::PartialRefundRequested { refund_number: 2, lines, cash, .. } if lines.is_empty() && *cash == m(1_000))
        );
        assert_eq!(order.held_cash(), m(11_000));
    }

    #[test]
    fn a_refused_part_is_held_again_and_the_order_goes_back_to_paid() {
        let order = paid(0, None);
        let (order, _) = run(&order, &give_back(&[("a", 1)]));
        let fail = OrderCommand::FailRefund { number: 1, code: "NOT_CANCELABLE_AMOUNT".into(), message: "no".into() };
        let (order, ev) = run(&order, &fail);
        assert!(matches!(&ev[0], OrderEventKind::RefundFailed { order_status: OrderStatus::Paid, .. }));
        assert_eq!(order.status, OrderStatus::Paid);
        assert_eq!(order.held_cash(), m(22_000));
        assert_eq!(order.refund(1).and_then(|r| r.failure.clone()).as_deref(), Some("NOT_CANCELABLE_AMOUNT: no"));
        // A failed refund does not complete; it can be asked again under a new number.
        assert_eq!(order.decide(&OrderCommand::CompleteRefundPart { number: 1 }, T0), Err(OrderError::NoSuchRefund(1)));
        let (_, ev) = run(&order, &give_back(&[("a", 1)]));
        assert!(matches!(&ev[0], OrderEventKind::PartialRefundRequested { refund_number: 2, .. }));
    }

    #[test]
    fn a_coupon_discount_is_withdrawn_once_when_the_rest_falls_below_its_minimum() {
        let coupon = crate::Coupon {
            id: crate::CouponId::parse("c1").unwrap(),
            owner: UserId::parse("u1").unwrap(),
            kind: crate::CouponKind::Fixed(m(3_000)),
            min_order_amount: m(15_000),
            status: crate::CouponStatus::Issued,
            expires_at: T0.plus_secs(86_400),
        };
        let order = paid(0, Some(coupon));
        assert_eq!(order.amount_due, m(19_000));
        let with_min = |v: &[(&str, i128)]| match give_back(v) {
            OrderCommand::RequestRefund { part, .. } => {
                OrderCommand::RequestRefund { part, coupon_minimum: Some(m(15_000)), refund_account: false }
            }
            other => other,
        };
        // 22,000 → 17,000 held: still above 15,000, the discount holds.
        let done = |o: &Order, n| run(o, &OrderCommand::CompleteRefundPart { number: n }).0;
        let (order, ev) = run(&order, &with_min(&[("b", 1)]));
        assert!(
            matches!(&ev[0], OrderEventKind::PartialRefundRequested { cash, discount_withdrawn, .. } if *cash == m(5_000) && discount_withdrawn.is_zero())
        );
        // At the minimum exactly (15,000 held after a 2,000 return): it still holds.
        let (order, ev) = run(&order, &with_min(&[("c", 1)]));
        assert!(matches!(&ev[0], OrderEventKind::PartialRefundRequested { cash, .. } if *cash == m(2_000)));
        // 15,000 → 10,000: below; the 5,000 comes back less the 3,000 discount.
        let (order, ev) = run(&order, &with_min(&[("b", 1)]));
        let order = done(&done(&done(&order, 1), 2), 3);
        assert!(
            matches!(&ev[0], OrderEventKind::PartialRefundRequested { cash, discount_withdrawn, .. } if *cash == m(2_000) && *discount_withdrawn == m(3_000))
        );
        // The rest is what remains: 19,000 − 9,000 = 10,000, the discount not taken twice.
        let (_, ev) = run(&order, &with_min(&[("a", 1)]));
        assert!(matches!(&ev[0], OrderEventKind::RefundRequested { amount, .. } if *amount == m(10_000)));
    }

    #[test]
    fn the_split_never_gives_back_more_of_either_than_is_held() {
        // 3 won paid: 1 cash, 2 points; three refunds of 1 each.
        let mut order = paid(0, None);
        order.amount_due = m(1);
        order.points_used = m(2);
        let one =
            OrderCommand::RequestRefund { part: RefundPart::Amount(m(1)), coupon_minimum: None, refund_account: false };
        let done = |o: &Order, n| run(o, &OrderCommand::CompleteRefundPart { number: n }).0;
        let order = done(&run(&order, &one).0, 1);
        let order = done(&run(&order, &one).0, 2);
        let (order, ev) = run(&order, &one);
        assert!(
            matches!(&ev[0], OrderEventKind::RefundRequested { amount, points_used, .. } if *amount == m(1) && points_used.is_zero())
        );
        assert_eq!((order.held_cash(), order.held_points()), (Money::ZERO, Money::ZERO));
    }

    #[test]
    fn refunds_are_bounded_per_order() {
        let mut order = paid(0, None);
        let one =
            OrderCommand::RequestRefund { part: RefundPart::Amount(m(1)), coupon_minimum: None, refund_account: false };
        for n in 1..=MAX_REFUNDS {
            order = run(&order, &one).0;
            order = run(&order, &OrderCommand::CompleteRefundPart { number: n as u32 }).0;
        }
        assert_eq!(order.decide(&one, T0), Err(OrderError::TooManyRefunds { max: MAX_REFUNDS }));
    }
}
