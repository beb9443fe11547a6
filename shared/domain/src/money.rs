//! Money in integer minor units. KRW has no minor unit, so one unit is one won.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A non-negative amount of won.
///
/// Invariant: `0 <= value <= Money::MAX`. The cap keeps every amount an exact
/// integer in IEEE-754 doubles (2^53), so JavaScript clients and DynamoDB's
/// number type never round it. Arithmetic is checked and returns `None` on
/// underflow or when the cap would be passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Money(u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("amount {0} is outside 0..={max}", max = Money::MAX.0)]
pub struct MoneyOutOfRange(pub i128);

impl Money {
    pub const ZERO: Money = Money(0);
    /// 10^15 won: far beyond any order, far below 2^53.
    pub const MAX: Money = Money(1_000_000_000_000_000);

    pub fn new(won: i128) -> Result<Money, MoneyOutOfRange> {
        if (0..=i128::from(Self::MAX.0)).contains(&won) {
            // In range, so it fits u64.
            Ok(Money(won as u64))
        } else {
            Err(MoneyOutOfRange(won))
        }
    }

    pub const fn won(self) -> u64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    fn capped(v: Option<u64>) -> Option<Money> {
        v.filter(|v| *v <= Self::MAX.0).map(Money)
    }

    pub fn checked_add(self, rhs: Money) -> Option<Money> {
        Self::capped(self.0.checked_add(rhs.0))
    }

    pub fn checked_sub(self, rhs: Money) -> Option<Money> {
        self.0.checked_sub(rhs.0).map(Money)
    }

    pub fn checked_mul(self, n: u64) -> Option<Money> {
        Self::capped(self.0.checked_mul(n))
    }

    /// `percent`% of this amount, rounded down (the shop's favour, never the
    /// customer's disadvantage beyond one won).
    pub fn percent(self, percent: u8) -> Option<Money> {
        let p = u64::from(percent.min(100));
        self.0.checked_mul(p).map(|v| Money(v / 100))
    }

    pub fn min(self, other: Money) -> Money {
        if self <= other { self } else { other }
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // i64, not i128: serde's buffered (flattened) content has no i128.
        let v = crate::json::Integer::deserialize(d)?.0;
        Money::new(i128::from(v)).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} KRW", self.0)
    }
}

/// Sum of amounts, `None` on overflow of the cap.
pub fn sum<I: IntoIterator<Item = Money>>(it: I) -> Option<Money> {
    it.into_iter().try_fold(Money::ZERO, Money::checked_add)
}

/// For `skip_serializing_if` on optional amounts that default to zero.
pub fn is_zero(m: &Money) -> bool {
    m.is_zero()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construction_rejects_negative_and_huge() {
        assert!(Money::new(-1).is_err());
        assert!(Money::new(i128::from(Money::MAX.won()) + 1).is_err());
        assert_eq!(Money::new(0).unwrap(), Money::ZERO);
        assert_eq!(Money::new(1500).unwrap().won(), 1500);
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Money::new(100).unwrap();
        let b = Money::new(30).unwrap();
        assert_eq!(a.checked_sub(b), Some(Money::new(70).unwrap()));
        assert_eq!(b.checked_sub(a), None);
        assert_eq!(Money::MAX.checked_add(Money::new(1).unwrap()), None);
        assert_eq!(Money::MAX.checked_mul(2), None);
        assert_eq!(a.checked_mul(3), Some(Money::new(300).unwrap()));
        assert_eq!(sum([a, b]), Some(Money::new(130).unwrap()));
        assert_eq!(sum([Money::MAX, a]), None);
    }

    #[test]
    fn percent_rounds_down() {
        assert_eq!(Money::new(999).unwrap().percent(10), Some(Money::new(99).unwrap()));
        assert_eq!(Money::new(1000).unwrap().percent(100), Some(Money::new(1000).unwrap()));
        assert_eq!(Money::new(1000).unwrap().percent(0), Some(Money::ZERO));
    }

    #[test]
    fn deserialisation_enforces_range() {
        assert!(serde_json::from_str::<Money>("-5").is_err());
        assert!(serde_json::from_str::<Money>("1.5").is_err());
        assert_eq!(serde_json::from_str::<Money>("42").unwrap().won(), 42);
    }
}
