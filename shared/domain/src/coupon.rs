//! Coupons: FIXED (won off) or PERCENT, with a minimum order amount, an
//! expiry and an owner.
//!
//! ```text
//! ISSUED ──hold(order)──► HELD(order) ──use──► USED(order)
//!    ▲                        │                    │
//!    └──────release───────────┴────(refund)────────┘   (to EXPIRED instead once past expiresAt)
//! ```
//! The hold happens inside the order's transaction; use and release are done
//! by the coupon consumer after the fact, so a slow coupon system never
//! blocks an order.

use crate::{CouponId, Money, OrderId, Timestamp, UserId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CouponKind {
    /// This many won off, never more than the subtotal.
    Fixed(Money),
    /// This percentage (1..=100) of the subtotal off, rounded down.
    Percent(u8),
}

impl CouponKind {
    /// Its name (`FIXED`, `PERCENT`) and value (won off, or the
    /// percentage), as the API, the events and the table write them.
    pub fn name_and_value(self) -> (&'static str, u64) {
        match self {
            CouponKind::Fixed(v) => ("FIXED", v.won()),
            CouponKind::Percent(p) => ("PERCENT", u64::from(p)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CouponStatus {
    Issued,
    Held { order_id: OrderId },
    Used { order_id: OrderId },
    Expired,
}

impl CouponStatus {
    pub fn name(&self) -> &'static str {
        match self {
            CouponStatus::Issued => "ISSUED",
            CouponStatus::Held { .. } => "HELD",
            CouponStatus::Used { .. } => "USED",
            CouponStatus::Expired => "EXPIRED",
        }
    }

    pub fn order_id(&self) -> Option<&OrderId> {
        match self {
            CouponStatus::Held { order_id } | CouponStatus::Used { order_id } => Some(order_id),
            CouponStatus::Issued | CouponStatus::Expired => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coupon {
    pub id: CouponId,
    pub owner: UserId,
    pub kind: CouponKind,
    pub min_order_amount: Money,
    pub expires_at: Timestamp,
    pub status: CouponStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CouponError {
    #[error("coupon {0} belongs to another user")]
    NotOwned(CouponId),
    #[error("coupon {id} is {status}, not ISSUED")]
    NotAvailable { id: CouponId, status: &'static str },
    #[error("coupon {0} has expired")]
    Expired(CouponId),
    #[error("coupon {id} needs an order of at least {min}, this one is {subtotal}")]
    BelowMinimum { id: CouponId, min: Money, subtotal: Money },
    #[error("coupon {id} is {status} for another order")]
    OtherOrder { id: CouponId, status: &'static str },
    #[error("invalid coupon: {0}")]
    Invalid(&'static str),
}

/// The result of a transition that may find the work already done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition<T> {
    Changed(T),
    /// Already in the target state: a duplicate or replayed command.
    Unchanged,
}

impl Coupon {
    pub fn validate_kind(kind: CouponKind) -> Result<CouponKind, CouponError> {
        match kind {
            CouponKind::Percent(p) if !(1..=100).contains(&p) => Err(CouponError::Invalid("percent must be 1..=100")),
            CouponKind::Fixed(v) if v.is_zero() => Err(CouponError::Invalid("fixed value must be positive")),
            CouponKind::Percent(_) | CouponKind::Fixed(_) => Ok(kind),
        }
    }

    /// Discount on `subtotal`; never exceeds it.
    pub fn discount(&self, subtotal: Money) -> Money {
        match self.kind {
            CouponKind::Fixed(v) => v.min(subtotal),
            CouponKind::Percent(p) => subtotal.percent(p).unwrap_or(Money::ZERO).min(subtotal),
        }
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }

    /// The status as a reader sees it at `now`: an ISSUED coupon past its
    /// expiry is EXPIRED (no write marks it; no order can take it), the
    /// others are what they are (a HELD or USED coupon keeps its order).
    pub fn status_at(&self, now: Timestamp) -> &'static str {
        match &self.status {
            CouponStatus::Issued if self.is_expired(now) => CouponStatus::Expired.name(),
            status @ (CouponStatus::Issued
            | CouponStatus::Held { .. }
            | CouponStatus::Used { .. }
            | CouponStatus::Expired) => status.name(),
        }
    }

    /// Whether an order may take it at `now`.
    pub fn usable_at(&self, now: Timestamp) -> bool {
        self.status == CouponStatus::Issued && !self.is_expired(now)
    }

    /// ISSUED → HELD(order), for `user` placing an order of `subtotal` at `now`.
    pub fn hold(
        &self,
        user: &UserId,
        order_id: &OrderId,
        subtotal: Money,
        now: Timestamp,
    ) -> Result<Coupon, CouponError> {
        if &self.owner != user {
            return Err(CouponError::NotOwned(self.id.clone()));
        }
        match &self.status {
            CouponStatus::Issued => {}
            CouponStatus::Held { .. } | CouponStatus::Used { .. } | CouponStatus::Expired => {
                return Err(CouponError::NotAvailable { id: self.id.clone(), status: self.status.name() });
            }
        }
        if self.is_expired(now) {
            return Err(CouponError::Expired(self.id.clone()));
        }
        if subtotal < self.min_order_amount {
            return Err(CouponError::BelowMinimum { id: self.id.clone(), min: self.min_order_amount, subtotal });
        }
        Ok(Coupon { status: CouponStatus::Held { order_id: order_id.clone() }, ..self.clone() })
    }

    /// HELD(order) → USED(order) once the order is paid.
    pub fn mark_used(&self, order_id: &OrderId) -> Result<Transition<Coupon>, CouponError> {
        match &self.status {
            CouponStatus::Held { order_id: o } if o == order_id => {
                Ok(Transition::Changed(Coupon { status: CouponStatus::Used { order_id: o.clone() }, ..self.clone() }))
            }
            CouponStatus::Used { order_id: o } if o == order_id => Ok(Transition::Unchanged),
            CouponStatus::Held { .. } | CouponStatus::Used { .. } => {
                Err(CouponError::OtherOrder { id: self.id.clone(), status: self.status.name() })
            }
            CouponStatus::Issued | CouponStatus::Expired => {
                Err(CouponError::NotAvailable { id: self.id.clone(), status: self.status.name() })
            }
        }
    }

    /// HELD(order) or USED(order) → ISSUED (EXPIRED once past its expiry),
    /// when the order is expired, cancelled or refunded. Releasing a coupon
    /// that is not tied to `order_id` changes nothing: a late or replayed
    /// release must never free a coupon another order holds.
    pub fn release(&self, order_id: &OrderId, now: Timestamp) -> Transition<Coupon> {
        match &self.status {
            CouponStatus::Held { order_id: o } | CouponStatus::Used { order_id: o } if o == order_id => {
                let status = if self.is_expired(now) { CouponStatus::Expired } else { CouponStatus::Issued };
                Transition::Changed(Coupon { status, ..self.clone() })
            }
            CouponStatus::Held { .. } | CouponStatus::Used { .. } | CouponStatus::Issued | CouponStatus::Expired => {
                Transition::Unchanged
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: i128) -> Money {
        Money::new(v).unwrap()
    }
    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }
    fn order(s: &str) -> OrderId {
        OrderId::parse(s).unwrap()
    }
    fn coupon(kind: CouponKind) -> Coupon {
        Coupon {
            id: CouponId::parse("c1").unwrap(),
            owner: user("u1"),
            kind,
            min_order_amount: m(10_000),
            expires_at: Timestamp::from_millis(1_000_000),
            status: CouponStatus::Issued,
        }
    }
    const NOW: Timestamp = Timestamp::from_millis(500_000);

    #[test]
    fn discounts() {
        assert_eq!(coupon(CouponKind::Fixed(m(3000))).discount(m(20_000)), m(3000));
        assert_eq!(coupon(CouponKind::Fixed(m(3000))).discount(m(2000)), m(2000));
        assert_eq!(coupon(CouponKind::Percent(15)).discount(m(20_001)), m(3000));
        assert_eq!(coupon(CouponKind::Percent(100)).discount(m(777)), m(777));
    }

    #[test]
    fn kind_validation() {
        assert!(Coupon::validate_kind(CouponKind::Percent(0)).is_err());
        assert!(Coupon::validate_kind(CouponKind::Percent(101)).is_err());
        assert!(Coupon::validate_kind(CouponKind::Fixed(Money::ZERO)).is_err());
        assert!(Coupon::validate_kind(CouponKind::Percent(50)).is_ok());
    }

    #[test]
    fn hold_from_issued() {
        let c = coupon(CouponKind::Fixed(m(1000)));
        let held = c.hold(&user("u1"), &order("o1"), m(10_000), NOW).unwrap();
        assert_eq!(held.status, CouponStatus::Held { order_id: order("o1") });
    }

    #[test]
    fn hold_rejections() {
        let c = coupon(CouponKind::Fixed(m(1000)));
        assert_eq!(c.hold(&user("u2"), &order("o1"), m(10_000), NOW), Err(CouponError::NotOwned(c.id.clone())));
        assert!(matches!(c.hold(&user("u1"), &order("o1"), m(9_999), NOW), Err(CouponError::BelowMinimum { .. })));
        assert_eq!(
            c.hold(&user("u1"), &order("o1"), m(10_000), Timestamp::from_millis(1_000_000)),
            Err(CouponError::Expired(c.id.clone()))
        );
        for status in [
            CouponStatus::Held { order_id: order("o0") },
            CouponStatus::Used { order_id: order("o0") },
            CouponStatus::Expired,
        ] {
            let c = Coupon { status, ..c.clone() };
            assert!(matches!(c.hold(&user("u1"), &order("o1"), m(10_000), NOW), Err(CouponError::NotAvailable { .. })));
        }
    }

    #[test]
    fn use_after_hold_is_idempotent() {
        let c = coupon(CouponKind::Fixed(m(1000))).hold(&user("u1"), &order("o1"), m(10_000), NOW).unwrap();
        let Transition::Changed(used) = c.mark_used(&order("o1")).unwrap() else { panic!("expected change") };
        assert_eq!(used.status, CouponStatus::Used { order_id: order("o1") });
        assert_eq!(used.mark_used(&order("o1")), Ok(Transition::Unchanged));
        assert!(matches!(used.mark_used(&order("o2")), Err(CouponError::OtherOrder { .. })));
        assert!(matches!(
            coupon(CouponKind::Percent(5)).mark_used(&order("o1")),
            Err(CouponError::NotAvailable { .. })
        ));
        let expired = Coupon { status: CouponStatus::Expired, ..coupon(CouponKind::Percent(5)) };
        assert!(matches!(expired.mark_used(&order("o1")), Err(CouponError::NotAvailable { .. })));
    }

    #[test]
    fn release_only_for_its_order() {
        let held = coupon(CouponKind::Fixed(m(1000))).hold(&user("u1"), &order("o1"), m(10_000), NOW).unwrap();
        assert_eq!(held.release(&order("o2"), NOW), Transition::Unchanged);
        let Transition::Changed(back) = held.release(&order("o1"), NOW) else { panic!("expected change") };
        assert_eq!(back.status, CouponStatus::Issued);
        assert_eq!(back.release(&order("o1"), NOW), Transition::Unchanged);
        // A used coupon comes back on refund.
        let Transition::Changed(used) = held.mark_used(&order("o1")).unwrap() else { panic!() };
        assert!(matches!(used.release(&order("o1"), NOW), Transition::Changed(c) if c.status == CouponStatus::Issued));
        // Past its expiry it does not come back to life.
        let late = Timestamp::from_millis(2_000_000);
        assert!(
            matches!(held.release(&order("o1"), late), Transition::Changed(c) if c.status == CouponStatus::Expired)
        );
        let expired = Coupon { status: CouponStatus::Expired, ..held };
        assert_eq!(expired.release(&order("o1"), NOW), Transition::Unchanged);
    }
}
