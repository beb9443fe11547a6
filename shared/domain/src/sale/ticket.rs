//! A shopper's ticket in a sale's queue: one per user and sale, and every
//! change a conditional transition (the store writes each on the ticket's
//! `version`).

use super::SaleState;
use super::place::Place;
use crate::{OrderId, SaleId, Timestamp, UserId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TicketStatus {
    /// In the queue.
    Waiting,
    /// Holds a slot and may place one order until the session ends.
    Admitted,
    /// Placed its order; the slot is held until the order ends.
    Ordered,
    /// The order ended (paid, expired, cancelled, or its virtual account
    /// issued); the slot is free.
    Done,
    /// Left the queue, or gave up the admission.
    Left,
    /// The session ended without an order; the slot is free.
    Expired,
}

impl TicketStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Waiting => "WAITING",
            TicketStatus::Admitted => "ADMITTED",
            TicketStatus::Ordered => "ORDERED",
            TicketStatus::Done => "DONE",
            TicketStatus::Left => "LEFT",
            TicketStatus::Expired => "EXPIRED",
        }
    }

    /// Whether a ticket in this status holds one of the sale's slots.
    pub fn holds_slot(self) -> bool {
        match self {
            TicketStatus::Admitted | TicketStatus::Ordered => true,
            TicketStatus::Waiting | TicketStatus::Done | TicketStatus::Left | TicketStatus::Expired => false,
        }
    }
}

/// What the admitter gave a ticket: the id its admission token names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Admission {
    pub id: String,
    pub admitted_at: Timestamp,
    pub session_ends_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    pub sale: SaleId,
    pub user: UserId,
    pub place: Place,
    pub entered_at: Timestamp,
    pub status: TicketStatus,
    pub admission: Option<Admission>,
    pub order: Option<OrderId>,
    pub version: u64,
}

/// Why a transition does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("the ticket is {}, not {}", .is.as_str(), .wanted.as_str())]
    Status { is: TicketStatus, wanted: TicketStatus },
    #[error("the admission is not this ticket's")]
    WrongAdmission,
    #[error("the session ended at {}", .0.to_rfc3339())]
    SessionEnded(Timestamp),
    #[error("the ticket holds another order")]
    WrongOrder,
}

/// What a shopper is told about their ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Shown {
    Waiting,
    Admitted,
    Done,
    Left,
    Expired,
    SoldOut,
}

impl Ticket {
    /// A new ticket at `place`, waiting.
    pub fn enter(sale: SaleId, user: UserId, place: Place, now: Timestamp) -> Ticket {
        Ticket {
            sale,
            user,
            place,
            entered_at: now,
            status: TicketStatus::Waiting,
            admission: None,
            order: None,
            version: 1,
        }
    }

    fn next(&self, status: TicketStatus) -> Ticket {
        Ticket { status, version: self.version.saturating_add(1), ..self.clone() }
    }

    fn expect(&self, wanted: TicketStatus) -> Result<(), TicketError> {
        if self.status == wanted { Ok(()) } else { Err(TicketError::Status { is: self.status, wanted }) }
    }

    /// Admitted at `now` under admission `id`, for `session_secs`.
    pub fn admit(&self, id: String, now: Timestamp, session_secs: u32) -> Result<Ticket, TicketError> {
        self.expect(TicketStatus::Waiting)?;
        let mut t = self.next(TicketStatus::Admitted);
        t.admission = Some(Admission { id, admitted_at: now, session_ends_at: now.plus_secs(i64::from(session_secs)) });
        Ok(t)
    }

    /// The one order admission `admission` may place, at `now`.
    pub fn order(&self, admission: &str, order: OrderId, now: Timestamp) -> Result<Ticket, TicketError> {
        self.expect(TicketStatus::Admitted)?;
        let a = self.admission.as_ref().filter(|a| a.id == admission).ok_or(TicketError::WrongAdmission)?;
        if now >= a.session_ends_at {
            return Err(TicketError::SessionEnded(a.session_ends_at));
        }
        let mut t = self.next(TicketStatus::Ordered);
        t.order = Some(order);
        Ok(t)
    }

    /// `order` ended: the slot is freed. `None` when this ticket already
    /// freed it for that order (a duplicate, a replay, a later event of
    /// the same order).
    pub fn release(&self, order: &OrderId) -> Result<Option<Ticket>, TicketError> {
        if self.order.as_ref() != Some(order) {
            return Err(TicketError::WrongOrder);
        }
        match self.status {
            TicketStatus::Ordered => Ok(Some(self.next(TicketStatus::Done))),
            TicketStatus::Done => Ok(None),
            TicketStatus::Waiting | TicketStatus::Admitted | TicketStatus::Left | TicketStatus::Expired => {
                Err(TicketError::Status { is: self.status, wanted: TicketStatus::Ordered })
            }
        }
    }

    /// The session timer at `now`: an admission that placed no order in
    /// time ends, freeing its slot. `None` when there is nothing to end
    /// (the order was placed, the shopper left, the session still runs).
    pub fn end_session(&self, now: Timestamp) -> Option<Ticket> {
        match (self.status, &self.admission) {
            (TicketStatus::Admitted, Some(a)) if now >= a.session_ends_at => Some(self.next(TicketStatus::Expired)),
            (TicketStatus::Admitted, _)
            | (TicketStatus::Waiting, _)
            | (TicketStatus::Ordered, _)
            | (TicketStatus::Done, _)
            | (TicketStatus::Left, _)
            | (TicketStatus::Expired, _) => None,
        }
    }

    /// The shopper leaves: a waiting ticket leaves the queue, an admitted
    /// one gives its slot back (the second value says whether a slot is
    /// freed). `None` when it already left.
    pub fn leave(&self) -> Result<Option<(Ticket, bool)>, TicketError> {
        match self.status {
            TicketStatus::Waiting => Ok(Some((self.next(TicketStatus::Left), false))),
            TicketStatus::Admitted => Ok(Some((self.next(TicketStatus::Left), true))),
            TicketStatus::Left => Ok(None),
            TicketStatus::Ordered | TicketStatus::Done | TicketStatus::Expired => {
                Err(TicketError::Status { is: self.status, wanted: TicketStatus::Waiting })
            }
        }
    }

    /// What the shopper is told, the sale being in `state`: a waiting
    /// ticket of a sold-out or ended sale reads SOLD_OUT (no write per
    /// ticket ends them), an order placed reads DONE.
    pub fn shown(&self, state: SaleState) -> Shown {
        match (self.status, state) {
            (TicketStatus::Waiting, SaleState::SoldOut | SaleState::Ended) => Shown::SoldOut,
            (TicketStatus::Waiting, SaleState::Scheduled | SaleState::Open) => Shown::Waiting,
            (TicketStatus::Admitted, _) => Shown::Admitted,
            (TicketStatus::Ordered | TicketStatus::Done, _) => Shown::Done,
            (TicketStatus::Left, _) => Shown::Left,
            (TicketStatus::Expired, _) => Shown::Expired,
        }
    }
}
