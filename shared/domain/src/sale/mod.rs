//! Flash sales behind a waiting room (docs/adr/0027-the-waiting-room.md).
//!
//! A sale gates some products: only a shopper it admitted may order them,
//! and only so many shoppers hold an admission at once. Shoppers enter a
//! queue and get a ticket ([`ticket`]); tickets are numbered so that a
//! position is a subtraction ([`place`]); the admitter lets the lowest
//! numbers in as slots free up, at a rate that follows the saga
//! ([`admit`]); the saga's own events end each admission.
//!
//! ```text
//!  sale:    SCHEDULED ──startsAt──► OPEN ──gated stock gone──► SOLD_OUT
//!                                     └──────endsAt──────────► ENDED
//!  ticket:  WAITING ──admit──► ADMITTED ──order──► ORDERED ──order ends──► DONE
//!              │                  └──session ends──► EXPIRED
//!              └──leave──► LEFT            (a WAITING ticket of a SOLD_OUT sale reads SOLD_OUT)
//! ```

pub mod admit;
pub mod gate;
pub mod place;
pub mod ticket;

use crate::{ProductId, SaleId, Timestamp};
use serde::{Deserialize, Serialize};

pub use admit::{Health, Slots, Step, next_rate, plan_step, sells_out};
pub use gate::{Gate, NotAdmitted, sale_of_order};
pub use place::{Place, Position, position};
pub use ticket::{Admission, Shown, Ticket, TicketError, TicketStatus};

/// What an operator sets when creating a sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SaleTerms {
    pub name: String,
    /// The products only admitted shoppers may order while the sale runs.
    pub products: Vec<ProductId>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    /// Shoppers holding an admission at once.
    pub capacity: u32,
    /// Admissions per second at most (the adaptive rate's ceiling).
    pub max_admissions_per_sec: u32,
    /// How long an admitted shopper has to place an order.
    pub session_secs: u32,
    /// Entry counter shards: ⌈peak entries per second / 800⌉ (ADR 0027).
    pub entry_shards: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSale {
    #[error("name must be 1 to 200 characters")]
    Name,
    #[error("a sale gates 1 to {max} distinct products", max = SaleTerms::MAX_PRODUCTS)]
    Products,
    #[error("endsAt must be after startsAt")]
    Window,
    #[error("{field} must be from {min} to {max}, got {got}")]
    Range { field: &'static str, min: u32, max: u32, got: u64 },
}

impl SaleTerms {
    pub const MAX_PRODUCTS: usize = 20;
    pub const MAX_CAPACITY: u32 = 100_000;
    pub const MAX_RATE: u32 = 10_000;
    pub const MAX_SESSION_SECS: u32 = 3_600;
    pub const MAX_ENTRY_SHARDS: u32 = 64;
    pub const DEFAULT_ENTRY_SHARDS: u32 = 16;

    /// Terms checked: every bound named in the error.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        products: Vec<ProductId>,
        starts_at: Timestamp,
        ends_at: Timestamp,
        capacity: u64,
        max_admissions_per_sec: u64,
        session_secs: u64,
        entry_shards: Option<u64>,
    ) -> Result<SaleTerms, InvalidSale> {
        if name.trim().is_empty() || name.chars().count() > 200 {
            return Err(InvalidSale::Name);
        }
        let mut distinct = products.clone();
        distinct.sort();
        distinct.dedup();
        if products.is_empty() || products.len() > Self::MAX_PRODUCTS || distinct.len() != products.len() {
            return Err(InvalidSale::Products);
        }
        if ends_at <= starts_at {
            return Err(InvalidSale::Window);
        }
        let ranged = |field, got: u64, max: u32| {
            u32::try_from(got).ok().filter(|v| (1..=max).contains(v)).ok_or(InvalidSale::Range {
                field,
                min: 1,
                max,
                got,
            })
        };
        Ok(SaleTerms {
            name,
            products,
            starts_at,
            ends_at,
            capacity: ranged("capacity", capacity, Self::MAX_CAPACITY)?,
            max_admissions_per_sec: ranged("maxAdmissionsPerSec", max_admissions_per_sec, Self::MAX_RATE)?,
            session_secs: ranged("sessionSecs", session_secs, Self::MAX_SESSION_SECS)?,
            entry_shards: ranged(
                "entryShards",
                entry_shards.unwrap_or(u64::from(Self::DEFAULT_ENTRY_SHARDS)),
                Self::MAX_ENTRY_SHARDS,
            )?,
        })
    }
}

/// Where a sale stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SaleState {
    Scheduled,
    Open,
    SoldOut,
    Ended,
}

impl SaleState {
    /// As the API and the events name it (its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            SaleState::Scheduled => "SCHEDULED",
            SaleState::Open => "OPEN",
            SaleState::SoldOut => "SOLD_OUT",
            SaleState::Ended => "ENDED",
        }
    }
}

/// A sale: its terms and what the admitter has done so far. Only the
/// admitter writes `admitted`, `served` and `rate`, one step at a time
/// under `version` (ADR 0027).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sale {
    pub id: SaleId,
    pub terms: SaleTerms,
    /// Tickets admitted so far.
    pub admitted: u64,
    /// The highest place admitted so far (the serving watermark).
    pub served: Option<Place>,
    /// Admissions per second in force (adaptive, ≤ the terms' ceiling).
    pub rate: f64,
    /// The admission rate's token bucket: full one second after this mark.
    pub bucket_at: Timestamp,
    /// Pre-queue tickets taken (summed at the opening) and admitted so far:
    /// what a pre-queue position is estimated from.
    pub early: u64,
    pub early_admitted: u64,
    /// Set once the gated products' stock is gone for good: none left and
    /// no admitted shopper holding a slot ([`admit::sells_out`]).
    pub sold_out: bool,
    /// The gated products' units available when the sale was created:
    /// what was sold is this less what is available now.
    #[serde(default)]
    pub units_at_start: u64,
    /// The pre-queue draw's secret: a shopper's draw is a hash of it and
    /// their id, so entering again draws the same and nobody can compute
    /// the order before the opening. Never shown.
    pub salt: u64,
    pub version: u64,
}

impl Sale {
    pub fn new(id: SaleId, terms: SaleTerms, salt: u64) -> Sale {
        let rate = f64::from(terms.max_admissions_per_sec);
        let bucket_at = terms.starts_at;
        Sale {
            id,
            terms,
            admitted: 0,
            served: None,
            rate,
            bucket_at,
            early: 0,
            early_admitted: 0,
            sold_out: false,
            units_at_start: 0,
            salt,
            version: 1,
        }
    }

    /// The sale after a step admitted the tickets at `places` (the lowest
    /// waiting ones) under `step`, the rate for the next one being `rate`.
    pub fn after_step(&self, places: &[Place], step: Step, rate: f64) -> Sale {
        let admitted = u64::try_from(places.len()).unwrap_or(u64::MAX);
        let early = places.iter().filter(|p| matches!(p, Place::Early { .. })).count();
        Sale {
            admitted: self.admitted.saturating_add(admitted),
            served: places.iter().copied().max().max(self.served),
            rate,
            bucket_at: if admitted > 0 { step.bucket_at } else { self.bucket_at },
            early_admitted: self.early_admitted.saturating_add(u64::try_from(early).unwrap_or(u64::MAX)),
            version: self.version.saturating_add(1),
            ..self.clone()
        }
    }

    /// The pre-queue place of `user`: a draw from the sale's secret and
    /// the user's id (the same on every entry).
    pub fn early_place(&self, user: &crate::UserId) -> Place {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.salt.to_le_bytes().iter().chain(user.as_str().as_bytes()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // FNV-1a, then splitmix64's finaliser: every bit of the input
        // reaches every bit of the draw.
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Place::early(h ^ (h >> 31))
    }

    /// Where `place` stands in this sale's queue.
    pub fn position_of(&self, place: Place) -> Position {
        position(place, self.served, self.early, self.early_admitted)
    }

    pub fn state(&self, now: Timestamp) -> SaleState {
        match (self.sold_out, now < self.terms.starts_at, now >= self.terms.ends_at) {
            (_, _, true) => SaleState::Ended,
            (true, _, false) => SaleState::SoldOut,
            (false, true, false) => SaleState::Scheduled,
            (false, false, false) => SaleState::Open,
        }
    }

    /// Whether the sale gates `product` at `now` (before its start too: no
    /// one buys a flash-sale product early by skipping the queue).
    pub fn gates(&self, product: &ProductId, now: Timestamp) -> bool {
        now < self.terms.ends_at && self.terms.products.contains(product)
    }
}

#[cfg(test)]
mod tests;
