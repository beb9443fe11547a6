//! The one conflict-retry loop. Every use case and consumer that reads,
//! decides and writes conditionally runs its attempt through [`retry`]:
//!
//! - a failed condition (`ConditionalCheckFailed`) means someone else
//!   committed between our read and our write: re-read and decide again at
//!   once — the domain gives the precise answer on the fresh state;
//! - `TransactionConflict` (another transaction on the same item at the same
//!   moment) and throttling are retried after a jittered, doubling backoff;
//! - anything else is the use case's own error, returned on the first try.
//!
//! After [`ATTEMPTS`] the caller gets its `Contended` error. With fewer than
//! this many concurrent writers on one item, no request runs out of attempts:
//! each lost condition means another writer made progress.

use shop_store::StoreError;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Numbers the calls of [`retry`] in this process, so that concurrent
/// writers of the *same* item (confirm, webhook and reconciler settling one
/// payment) do not wait in step.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Attempts before a use case gives up with its `Contended` error.
pub const ATTEMPTS: u32 = 16;
/// First backoff after a transaction conflict or throttling; doubles per attempt.
const BASE: Duration = Duration::from_millis(4);
/// No single wait is longer than this (a Lambda's budget is seconds).
const CAP: Duration = Duration::from_millis(250);

/// How one attempt ended when it did not succeed.
#[derive(Debug)]
pub enum Step<E> {
    /// A write lost to another writer (or was throttled): try again.
    Retry(StoreError),
    /// The use case's answer: stop here.
    Fail(E),
}

impl<E: From<StoreError>> From<StoreError> for Step<E> {
    fn from(e: StoreError) -> Self {
        if e.is_retryable() { Step::Retry(e) } else { Step::Fail(E::from(e)) }
    }
}

/// Building a write failed (serialising an item): the use case's error.
impl<E: From<anyhow::Error>> From<anyhow::Error> for Step<E> {
    fn from(e: anyhow::Error) -> Self {
        Step::Fail(E::from(e))
    }
}

/// Every attempt lost: the use case maps this to its own error.
/// Why a write did not land after [`ATTEMPTS`] attempts, from the last
/// attempt's error: a real conflict is a 409, throttling a 503 (the store
/// is over capacity; nothing about the request is wrong).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Contended {
    #[error("kept conflicting with concurrent writers after {ATTEMPTS} attempts")]
    Conflict,
    #[error("the store kept throttling after {ATTEMPTS} attempts")]
    Throttled,
}

/// The conversions every use-case error enum has (each has `Contention` and
/// `Unexpected(anyhow::Error)` variants): a store error that reaches it is
/// unexpected — the retryable ones are taken by [`retry`] first — and
/// running out of attempts is `Contention`.
macro_rules! use_case_error {
    ($error:ty) => {
        impl From<shop_store::StoreError> for $error {
            fn from(e: shop_store::StoreError) -> Self {
                Self::Unexpected(anyhow::Error::new(e))
            }
        }

        impl From<$crate::usecases::retry::Contended> for $error {
            fn from(c: $crate::usecases::retry::Contended) -> Self {
                Self::Contention(c)
            }
        }
    };
}
pub(crate) use use_case_error;

/// Runs `attempt` (given the attempt number, from 1) until it succeeds,
/// fails with the use case's error, or loses [`ATTEMPTS`] times. `seed`
/// (an id of what is written) and the call's number spread the backoff of
/// concurrent writers.
pub async fn retry<T, E, F, Fut>(seed: &str, mut attempt: F) -> Result<T, E>
where
    E: From<Contended>,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Step<E>>>,
{
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let mut last = Contended::Conflict;
    for n in 1..=ATTEMPTS {
        match attempt(n).await {
            Ok(v) => return Ok(v),
            Err(Step::Fail(e)) => return Err(e),
            Err(Step::Retry(e)) => {
                last = match e {
                    StoreError::Throttled(_) => Contended::Throttled,
                    StoreError::Conflict { .. } | StoreError::Unexpected(_) => Contended::Conflict,
                };
                tracing::info!(attempt = n, error = %e, "write lost a race; re-reading");
                if let Some(wait) = backoff(&e, n, seed, call) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
    Err(E::from(last))
}

/// The wait before attempt `n + 1`: none after a failed condition (the state
/// already moved on), "full jitter" exponential otherwise.
fn backoff(e: &StoreError, n: u32, seed: &str, call: u64) -> Option<Duration> {
    if !e.needs_backoff() {
        return None;
    }
    let ceiling = BASE.saturating_mul(1 << n.min(16)).min(CAP);
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX).max(1);
    Some(Duration::from_millis(jitter(seed, n, call) % ceiling_ms + 1))
}

/// A spread from what is written, the call and the attempt (FNV-1a): no
/// two concurrent writers wait in step, and no clock or OS randomness is read.
fn jitter(seed: &str, n: u32, call: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes().chain(n.to_le_bytes()).chain(call.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_store::{ConflictReason, TxItem};
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug, PartialEq, Eq)]
    enum Err {
        Store(String),
        Contended(Contended),
    }
    impl From<StoreError> for Err {
        fn from(e: StoreError) -> Self {
            Err::Store(e.to_string())
        }
    }
    impl From<Contended> for Err {
        fn from(c: Contended) -> Self {
            Err::Contended(c)
        }
    }

    fn conflict(reason: ConflictReason) -> StoreError {
        StoreError::Conflict { item: TxItem::Order("o1".into()), reason }
    }

    #[tokio::test]
    async fn conflicts_and_throttling_are_retried_everything_else_is_not() {
        for (error, retried) in [
            (conflict(ConflictReason::ConditionFailed), true),
            (conflict(ConflictReason::TransactionConflict), true),
            (StoreError::Throttled("ThrottlingError".into()), true),
            (StoreError::Unexpected(anyhow::anyhow!("ValidationError")), false),
        ] {
            let calls = AtomicU32::new(0);
            let first = std::sync::Mutex::new(Some(error));
            let result: Result<u32, Err> = retry("o1", |n| {
                calls.fetch_add(1, Ordering::SeqCst);
                let e = first.lock().unwrap().take();
                async move {
                    match e {
                        Some(e) => Err(Step::from(e)),
                        None => Ok(n),
                    }
                }
            })
            .await;
            if retried {
                assert_eq!(result, Ok(2));
                assert_eq!(calls.load(Ordering::SeqCst), 2);
            } else {
                assert!(matches!(result, Err(Err::Store(_))), "{result:?}");
                assert_eq!(calls.load(Ordering::SeqCst), 1);
            }
        }
    }

    #[tokio::test]
    async fn gives_up_after_the_attempts() {
        let calls = AtomicU32::new(0);
        // A failed condition is retried without waiting, so this takes no time.
        let result: Result<(), Err> = retry("o1", |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(Step::from(conflict(ConflictReason::ConditionFailed))) }
        })
        .await;
        assert_eq!(result, Err(Err::Contended(Contended::Conflict)));
        assert_eq!(calls.load(Ordering::SeqCst), ATTEMPTS);
    }

    #[tokio::test]
    async fn giving_up_on_throttling_says_so_not_conflict() {
        // Conflicts until the last attempt, which the store throttles.
        let result: Result<(), Err> = retry("o1", |n| async move {
            match n {
                ATTEMPTS => Err(Step::from(StoreError::Throttled("ProvisionedThroughputExceeded".into()))),
                _ => Err(Step::from(conflict(ConflictReason::ConditionFailed))),
            }
        })
        .await;
        assert_eq!(result, Err(Err::Contended(Contended::Throttled)));
    }

    #[test]
    fn backoff_is_jittered_capped_and_absent_after_a_failed_condition() {
        assert_eq!(backoff(&conflict(ConflictReason::ConditionFailed), 3, "a", 0), None);
        let throttled = StoreError::Throttled("t".into());
        let waits: Vec<Duration> = (1..=ATTEMPTS).filter_map(|n| backoff(&throttled, n, "a", 0)).collect();
        assert!(waits.iter().all(|w| *w >= Duration::from_millis(1) && *w <= CAP + Duration::from_millis(1)));
        assert_ne!(Some(waits[7]), backoff(&throttled, 8, "b", 0), "writers of different items wait differently");
        assert_ne!(Some(waits[7]), backoff(&throttled, 8, "a", 1), "two writers of one item wait differently");
    }
}
