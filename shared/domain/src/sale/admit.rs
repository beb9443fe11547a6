//! The admitter's arithmetic: how many tickets one step admits, and the
//! admission rate that follows the saga (ADR 0027).
//!
//! Three limits, the least wins: the sale's free slots (`capacity −
//! active`, with `active = admitted − freed`), a token bucket at the rate
//! in force (at most one second's worth at once), and the tickets one
//! transaction can admit beside the sale's own item.

use super::{Sale, SaleState};
use crate::Timestamp;

/// Tickets one step admits at most: TransactWriteItems takes 100 items,
/// one of them the sale's.
pub const MAX_PER_STEP: u32 = 99;

/// The least rate the adaptive rule falls to (admissions per second): a
/// sale never stops while the saga is slow, it crawls.
pub const MIN_RATE: f64 = 1.0;

/// Above this time to settle (p99 of the current and last minute), the
/// saga lags. A bound of the settle histogram's buckets (…, 1 s, 2.5 s,
/// 5 s, …): the p99 is read as its bucket's bound, so a target between two
/// bounds would act at the lower one.
pub const SETTLE_P99_TARGET_MS: u64 = 2_500;

/// Above this age of the oldest event not yet published, the saga lags.
pub const OUTBOX_AGE_LIMIT_MS: u64 = 10_000;

/// How the saga behind the sale is doing, from the saga statistics and
/// gauges; `None` where a signal is not known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    pub settle_p99_ms: Option<u64>,
    pub oldest_unpublished_ms: Option<u64>,
}

impl Health {
    pub fn lagging(&self) -> bool {
        self.settle_p99_ms.is_some_and(|p| p > SETTLE_P99_TARGET_MS)
            || self.oldest_unpublished_ms.is_some_and(|a| a > OUTBOX_AGE_LIMIT_MS)
    }
}

/// The rate for the next step: halved while the saga lags (not below
/// [`MIN_RATE`]), otherwise a tenth of the ceiling more, up to the
/// ceiling: additive increase, multiplicative decrease.
pub fn next_rate(rate: f64, ceiling: u32, health: Health) -> f64 {
    let ceiling = f64::from(ceiling).max(MIN_RATE);
    let rate = if rate.is_finite() { rate.clamp(MIN_RATE, ceiling) } else { ceiling };
    if health.lagging() { (rate / 2.0).max(MIN_RATE) } else { (rate + ceiling / 10.0).min(ceiling) }
}

/// What one step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Tickets to admit now (the lowest waiting places).
    pub admit: u32,
    /// The token bucket's new mark: admitting `admit` spends their time.
    pub bucket_at: Timestamp,
}

/// Whether a sale whose gated products have `units_left` available, with
/// `active` shoppers holding a slot, has sold out for good: nothing is
/// left and no admitted shopper's order can give a unit back (an order
/// holds its shopper's slot until it ends: paid, or expired or cancelled,
/// which returns its units).
pub fn sells_out(units_left: u64, active: u64) -> bool {
    units_left == 0 && active == 0
}

/// A sale's slots as its counters tell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Slots {
    /// Slots released so far (orders ended, sessions ended, shoppers left).
    pub freed: u64,
    /// Admitted shoppers whose order is placed and still holds the slot:
    /// their units are already taken out of what is left.
    pub holding: u64,
}

/// The step of `sale` at `now`, with its `slots` and `units_left` units of
/// its products available. No more shoppers are admitted than there are
/// units for them: an admitted shopper who has not ordered yet may still
/// take a unit, so a newcomer is admitted only for a unit beyond one per
/// such shopper (`units_left − (active − holding)`); one whose order is
/// placed took its units already. The sale's token bucket is full one
/// second after its mark, and the mark only moves forward.
pub fn plan_step(sale: &Sale, slots: Slots, units_left: u64, now: Timestamp) -> Step {
    let idle = Step { admit: 0, bucket_at: sale.bucket_at };
    match sale.state(now) {
        SaleState::Open => {}
        SaleState::Scheduled | SaleState::SoldOut | SaleState::Ended => return idle,
    }
    let active = sale.admitted.saturating_sub(slots.freed);
    let unordered = active.saturating_sub(slots.holding);
    let free = u64::from(sale.terms.capacity).saturating_sub(active);
    let rate = sale.rate.clamp(MIN_RATE, f64::from(sale.terms.max_admissions_per_sec).max(MIN_RATE));
    // At most one second's worth of tokens.
    let from = sale.bucket_at.max(Timestamp::from_millis(now.millis().saturating_sub(1_000)));
    let elapsed_ms = now.millis().saturating_sub(from.millis()).max(0);
    let tokens = (rate * elapsed_ms as f64 / 1_000.0).floor();
    let tokens = if tokens.is_finite() && tokens > 0.0 { tokens.min(f64::from(MAX_PER_STEP)) as u64 } else { 0 };
    let for_newcomers = units_left.saturating_sub(unordered);
    let admit = u32::try_from(free.min(tokens).min(for_newcomers).min(u64::from(MAX_PER_STEP))).unwrap_or(0);
    if admit == 0 {
        return idle;
    }
    let spent_ms = (f64::from(admit) * 1_000.0 / rate).ceil() as i64;
    Step { admit, bucket_at: Timestamp::from_millis(from.millis().saturating_add(spent_ms)) }
}
