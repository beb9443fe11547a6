//! Places in the queue and positions read from them in O(1).
//!
//! The pre-queue (shoppers who entered before the start) comes first, in
//! the order of a random draw; then everyone else in the order of numbers
//! taken from `E` sharded counters: a ticket from shard `n` whose counter
//! reached `seq` is number `(seq − 1) × E + n`. Numbers from one shard
//! follow arrival exactly; across shards they interleave, out of arrival
//! order by the shards' imbalance only (ADR 0027 states the bound, and
//! `tests::numbers_follow_arrival_within_the_stated_bound` measures it).

use crate::UserId;
use serde::{Deserialize, Serialize};

/// Bits of a pre-queue draw: enough that two of a million early shoppers
/// share a draw about once in a million sales; ties go by user id.
pub const LOTTERY_BITS: u32 = 40;

/// Where a ticket waits. `Early` places all come before `Counted` ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "round")]
pub enum Place {
    /// Entered before the start: admitted in the order of `lottery`.
    Early { lottery: u64 },
    /// Entered after the start: admitted in the order of `number`.
    Counted { number: u64 },
}

impl Place {
    /// A pre-queue place from a random draw (only its low [`LOTTERY_BITS`] count).
    pub fn early(draw: u64) -> Place {
        Place::Early { lottery: draw & ((1u64 << LOTTERY_BITS) - 1) }
    }

    /// The place of the `seq`-th ticket (from 1) of counter shard `shard`
    /// of `shards`; `None` when that is no place (`seq` 0, a shard out of
    /// range, a number past `u64`).
    pub fn counted(seq: u64, shard: u32, shards: u32) -> Option<Place> {
        if shard >= shards || seq == 0 {
            return None;
        }
        let number = (seq - 1).checked_mul(u64::from(shards))?.checked_add(u64::from(shard))?;
        Some(Place::Counted { number })
    }
}

/// The entry counter shard of `user` among `shards`: FNV-1a over the user
/// id, stable across builds and platforms (the shard is part of a key).
pub fn shard_of(user: &UserId, shards: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in user.as_str().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    u32::try_from(h % u64::from(shards.max(1))).unwrap_or(0)
}

/// How far a ticket is from its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    /// Shoppers ahead: at most this many for a counted place (numbers of
    /// shoppers who left, and numbers never used, are counted too); about
    /// this many for a pre-queue place.
    pub ahead: u64,
    /// Whether `ahead` is an estimate (pre-queue) rather than a bound.
    pub estimate: bool,
}

/// The position of `place` when the admitter has served up to `served`
/// (the highest place admitted), `early` pre-queue tickets were taken and
/// `early_admitted` of them admitted.
pub fn position(place: Place, served: Option<Place>, early: u64, early_admitted: u64) -> Position {
    let early_waiting = early.saturating_sub(early_admitted);
    match place {
        Place::Early { lottery } => {
            if served.is_some_and(|s| s >= place) {
                return Position { ahead: 0, estimate: false };
            }
            // Draws are uniform: the expected number of early tickets
            // drawn below this one, less those already admitted.
            let below = (u128::from(lottery) * u128::from(early)) >> LOTTERY_BITS;
            let below = u64::try_from(below).unwrap_or(u64::MAX);
            Position { ahead: below.saturating_sub(early_admitted), estimate: true }
        }
        Place::Counted { number } => {
            let counted_ahead = match served {
                Some(Place::Counted { number: s }) => number.saturating_sub(s.saturating_add(1)),
                Some(Place::Early { .. }) | None => number,
            };
            Position { ahead: early_waiting.saturating_add(counted_ahead), estimate: false }
        }
    }
}
