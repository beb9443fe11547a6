//! Identifiers, parsed at the edge. Each has a private field, so a value of
//! the type is proof that it passed its rules.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} must be 1-{max} characters of {allowed}")]
pub struct InvalidId {
    pub kind: &'static str,
    pub max: usize,
    pub allowed: &'static str,
}

/// Characters allowed in key-forming ids: they end up inside DynamoDB keys
/// such as `ORDER#<id>`, so `#` and whitespace are excluded.
fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

macro_rules! key_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;

            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidId> {
                let s = s.into();
                if !s.is_empty() && s.len() <= $max && s.chars().all(is_key_char) {
                    Ok(Self(s))
                } else {
                    Err(InvalidId { kind: $kind, max: $max, allowed: "A-Z a-z 0-9 - _ ." })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

key_id!(
    /// The `sub` claim of the caller's JWT.
    UserId, "userId", 128);
key_id!(ProductId, "productId", 64);
key_id!(CouponId, "couponId", 64);
key_id!(
    /// A first-come coupon campaign.
    CampaignId, "campaignId", 64);
key_id!(
    /// A flash sale behind the waiting room.
    SaleId, "saleId", 64);
key_id!(
    /// Toss allows 6-64 characters for `orderId`; ours are UUIDv7 strings.
    OrderId, "orderId", 64);
key_id!(
    /// The PG's payment key (Toss: up to 200 characters).
    PaymentKey, "paymentKey", 200);

/// A client's `Idempotency-Key` header: printable ASCII without spaces,
/// at most 255 characters (as Stripe and the IETF draft allow).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if !s.is_empty() && s.len() <= 255 && s.chars().all(|c| c.is_ascii_graphic()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId { kind: "Idempotency-Key", max: 255, allowed: "printable ASCII without spaces" })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Deterministic event id: `orderId#aggregateVersion`. Duplicates, replays and
/// redrives carry the same id, so consumers dedupe on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    pub fn new(order_id: &OrderId, aggregate_version: u64) -> Self {
        Self(format!("{order_id}#{aggregate_version}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_key_separators_and_empty() {
        assert!(ProductId::parse("p-1_a.b").is_ok());
        assert!(ProductId::parse("").is_err());
        assert!(ProductId::parse("a#b").is_err());
        assert!(ProductId::parse("a b").is_err());
        assert!(ProductId::parse("x".repeat(65)).is_err());
        assert!(serde_json::from_str::<CouponId>("\"c#1\"").is_err());
    }

    #[test]
    fn idempotency_key_rules() {
        assert!(IdempotencyKey::parse("abc-123:xyz").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("a b").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }

    #[test]
    fn event_id_is_order_and_version() {
        let id = OrderId::parse("o1").unwrap();
        assert_eq!(EventId::new(&id, 7).as_str(), "o1#7");
    }
}
