//! Our record of one PG payment, keyed by the PG's `paymentKey`.
//!
//! ```text
//! CONFIRMING ──PG DONE──────────────► DONE ──cancelled at the PG──► CANCELED
//!     │                                 └──part cancelled──► PARTIAL_CANCELED ──the rest──► CANCELED
//!     │  ├──PG declined/aborted──► ABORTED
//!     │  ├──virtual account──► WAITING_FOR_DEPOSIT ──deposit──► DONE
//!     │  │          ▲ (a deposit the PG took back, ADR 0031) ───────┘
//!     │  │                                └──expired/aborted──► ABORTED
//!     └──timeout/5xx/lost──► UNKNOWN ──(reconciled: any of the above)
//! ```
//! CONFIRMING is written *before* the PG is called, so a crash after the PG
//! said yes leaves a record the reconciler finds.

use crate::{Money, OrderId, PaymentKey, PaymentMethod, Timestamp, UserId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    Confirming,
    Unknown,
    WaitingForDeposit,
    Done,
    Aborted,
    Canceled,
    /// Part of it given back (a partial refund); `balance_amount` remains.
    PartialCanceled,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 7] = [
        PaymentStatus::Confirming,
        PaymentStatus::Unknown,
        PaymentStatus::WaitingForDeposit,
        PaymentStatus::Done,
        PaymentStatus::Aborted,
        PaymentStatus::Canceled,
        PaymentStatus::PartialCanceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Confirming => "CONFIRMING",
            PaymentStatus::Unknown => "UNKNOWN",
            PaymentStatus::WaitingForDeposit => "WAITING_FOR_DEPOSIT",
            PaymentStatus::Done => "DONE",
            PaymentStatus::Aborted => "ABORTED",
            PaymentStatus::Canceled => "CANCELED",
            PaymentStatus::PartialCanceled => "PARTIAL_CANCELED",
        }
    }

    pub fn parse(s: &str) -> Option<PaymentStatus> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether only the PG can say how this ended (the reconciler's work).
    pub fn in_doubt(self) -> bool {
        match self {
            PaymentStatus::Confirming | PaymentStatus::Unknown => true,
            PaymentStatus::WaitingForDeposit
            | PaymentStatus::Done
            | PaymentStatus::Aborted
            | PaymentStatus::Canceled
            | PaymentStatus::PartialCanceled => false,
        }
    }

    /// Whether `next` may follow this status. Moving to the same status is
    /// allowed (duplicates are harmless). ABORTED may still become DONE or
    /// WAITING_FOR_DEPOSIT: we also write ABORTED when the reconciler gives up
    /// on a payment the PG never confirmed, and if the PG later says
    /// otherwise, the PG is right. CANCELED is final.
    pub fn can_become(self, next: PaymentStatus) -> bool {
        use PaymentStatus as P;
        if self == next {
            return true;
        }
        match self {
            P::Confirming | P::Unknown => matches!(next, P::Unknown | P::WaitingForDeposit | P::Done | P::Aborted),
            P::WaitingForDeposit => matches!(next, P::Done | P::Aborted | P::Canceled),
            // Back to waiting: a virtual account whose deposit the PG took
            // back (Toss documents it for rare network cases; ADR 0031).
            P::Done => matches!(next, P::Canceled | P::PartialCanceled | P::WaitingForDeposit),
            P::PartialCanceled => matches!(next, P::Canceled),
            P::Aborted => matches!(next, P::Done | P::WaitingForDeposit),
            P::Canceled => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub payment_key: PaymentKey,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub amount: Money,
    pub method: PaymentMethod,
    pub status: PaymentStatus,
    /// Bumped on every write; writes are conditional on it.
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The PG's reason for a decline.
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// The PG said DONE for an order that could no longer take it: to be cancelled.
    #[serde(default)]
    pub orphaned: bool,
    /// While WAITING_FOR_DEPOSIT: when the reconciler next asks the PG about
    /// the account (its deposit webhook may be lost), at the latest its due date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_at: Option<Timestamp>,
    /// What the PG says is left after cancels (its `balanceAmount`), once
    /// part or all of it was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_amount: Option<Money>,
}

impl Payment {
    pub fn started(
        payment_key: PaymentKey,
        order_id: OrderId,
        user_id: UserId,
        amount: Money,
        method: PaymentMethod,
        now: Timestamp,
    ) -> Payment {
        Payment {
            payment_key,
            order_id,
            user_id,
            amount,
            method,
            status: PaymentStatus::Confirming,
            version: 1,
            created_at: now,
            updated_at: now,
            failure_code: None,
            failure_message: None,
            orphaned: false,
            check_at: None,
            balance_amount: None,
        }
    }

    /// The record after the PG reported `status`; `None` when that is no
    /// change or not a legal move (a late, stale report).
    pub fn moved_to(&self, status: PaymentStatus, now: Timestamp) -> Option<Payment> {
        if status == self.status || !self.status.can_become(status) {
            return None;
        }
        let check_at = if status == PaymentStatus::WaitingForDeposit { self.check_at } else { None };
        Some(Payment { status, version: self.version + 1, updated_at: now, check_at, ..self.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentStatus as P;

    #[test]
    fn transitions() {
        let allowed = [
            (P::Confirming, P::Unknown),
            (P::Confirming, P::Done),
            (P::Confirming, P::Aborted),
            (P::Confirming, P::WaitingForDeposit),
            (P::Unknown, P::Done),
            (P::Unknown, P::Aborted),
            (P::Unknown, P::WaitingForDeposit),
            (P::WaitingForDeposit, P::Done),
            (P::WaitingForDeposit, P::Aborted),
            (P::WaitingForDeposit, P::Canceled),
            (P::Done, P::Canceled),
            (P::Done, P::PartialCanceled),
            (P::Done, P::WaitingForDeposit),
            (P::PartialCanceled, P::Canceled),
            (P::Aborted, P::Done),
            (P::Aborted, P::WaitingForDeposit),
        ];
        for from in P::ALL {
            for to in P::ALL {
                let want = from == to || allowed.contains(&(from, to));
                assert_eq!(from.can_become(to), want, "{from:?} -> {to:?}");
            }
        }
        assert!(P::Confirming.in_doubt() && P::Unknown.in_doubt() && !P::Done.in_doubt());
    }

    #[test]
    fn moved_to_bumps_version_and_ignores_stale_reports() {
        let p = Payment::started(
            PaymentKey::parse("pk").unwrap(),
            OrderId::parse("o").unwrap(),
            UserId::parse("u").unwrap(),
            Money::new(10).unwrap(),
            PaymentMethod::Card,
            Timestamp::from_millis(0),
        );
        let done = p.moved_to(P::Done, Timestamp::from_millis(5)).unwrap();
        assert_eq!((done.version, done.updated_at.millis()), (2, 5));
        assert_eq!(done.moved_to(P::Done, Timestamp::from_millis(6)), None);
        assert_eq!(done.moved_to(P::Aborted, Timestamp::from_millis(6)), None);
        let canceled = done.moved_to(P::Canceled, Timestamp::from_millis(7)).unwrap();
        assert_eq!(canceled.moved_to(P::Done, Timestamp::from_millis(8)), None);
        assert_eq!(P::parse("WAITING_FOR_DEPOSIT"), Some(P::WaitingForDeposit));
    }
}
