//! Products and stock. Stock is reserved when an order is placed (a
//! conditional decrement in the order's transaction) and released when the
//! order expires, is cancelled before payment, or is refunded.

use crate::{Money, ProductId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub id: ProductId,
    pub name: String,
    pub price: Money,
    /// Units not reserved by any order.
    pub available: u64,
}

/// Units of one product on an order line: 1..=`Quantity::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Quantity(u32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quantity must be an integer from 1 to {max}, got {got}", max = Quantity::MAX)]
pub struct InvalidQuantity {
    pub got: i128,
}

impl Quantity {
    /// More than this on one line is treated as a mistake, not an order.
    pub const MAX: u32 = 100;

    pub fn new(n: i128) -> Result<Self, InvalidQuantity> {
        if (1..=i128::from(Self::MAX)).contains(&n) { Ok(Self(n as u32)) } else { Err(InvalidQuantity { got: n }) }
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Quantity::new(i128::from(crate::json::Integer::deserialize(d)?.0)).map_err(serde::de::Error::custom)
    }
}

impl Product {
    /// Whether `qty` units can be reserved now.
    pub fn can_reserve(&self, qty: Quantity) -> bool {
        self.available >= u64::from(qty.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_bounds() {
        assert!(Quantity::new(0).is_err());
        assert!(Quantity::new(-3).is_err());
        assert!(Quantity::new(101).is_err());
        assert_eq!(Quantity::new(100).unwrap().get(), 100);
        assert!(serde_json::from_str::<Quantity>("2.5").is_err());
        assert_eq!(serde_json::from_str::<Quantity>("2.0").unwrap().get(), 2);
    }

    #[test]
    fn reservation_needs_enough_stock() {
        let p = Product {
            id: ProductId::parse("p1").unwrap(),
            name: "Mug".into(),
            price: Money::new(1000).unwrap(),
            available: 2,
        };
        assert!(p.can_reserve(Quantity::new(2).unwrap()));
        assert!(!p.can_reserve(Quantity::new(3).unwrap()));
    }
}
