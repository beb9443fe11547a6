//! What the PG's notifications (`POST /webhooks/pg`) come to. A notification
//! only says *which* payment changed: the payment is fetched from the PG and
//! the PG's record is applied through the settlement path — never what the
//! notification says. READY / IN_PROGRESS are not outcomes and change
//! nothing (anybody holding a key can make a checkout show them).
//!
//! A notification of what our record already says ([`already_recorded`]:
//! the PG tells us a payment is DONE and ours is DONE) is answered from one
//! read, before any idempotency record or PG call: the PG sends one for
//! every payment we confirmed ourselves. The body is not trusted for that
//! either — it can only make us skip work our record shows done. Any other
//! is applied from the record that read found ([`Recorded::Not`]), not a
//! second read of it.

use crate::App;
use crate::ports::{PgError, PgStatus};
use crate::usecases::settle::{Given, PgOutcome, SettleError, apply_pg_outcome_from};
use shop_domain::Payment;
use shop_domain::{OrderId, PaymentKey, PaymentStatus};

/// Which payment a notification is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// `claimed`: the status the body says, used only to skip work already recorded.
    StatusChanged {
        payment_key: PaymentKey,
        order_id: OrderId,
        claimed: PgStatus,
    },
    Deposit {
        order_id: OrderId,
    },
}

impl Notification {
    pub fn order_id(&self) -> &OrderId {
        match self {
            Notification::StatusChanged { order_id, .. } | Notification::Deposit { order_id } => order_id,
        }
    }
}

/// What came of it (the answer's `note`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    Applied,
    NotFinal,
    UnknownPayment,
    UnknownOrder,
}

impl Noted {
    pub fn as_str(self) -> &'static str {
        match self {
            Noted::Applied => "applied",
            Noted::NotFinal => "not final",
            Noted::UnknownPayment => "unknown payment",
            Noted::UnknownOrder => "unknown order",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    /// The PG could not be asked: it retries the notification.
    #[error("the PG could not be asked: {0}")]
    PgUnavailable(PgError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What our record says of a notification's payment.
#[derive(Debug)]
pub enum Recorded {
    /// What the notification says, in a status nothing follows from.
    Already,
    /// Something else, or nothing: the record read, if there is one, for
    /// [`apply_notification`].
    Not(Option<Payment>),
}

/// Whether the notification says what our record of the payment already
/// says, in a status nothing follows from (DONE, CANCELED, waiting for a
/// deposit): then applying it would change nothing.
pub async fn already_recorded(app: &App, n: &Notification) -> Result<Recorded, NotificationError> {
    let Notification::StatusChanged { payment_key, claimed, .. } = n else { return Ok(Recorded::Not(None)) };
    let same = |ours: PaymentStatus| match claimed {
        PgStatus::Done => ours == PaymentStatus::Done,
        PgStatus::Canceled => ours == PaymentStatus::Canceled,
        // Another part may have been cancelled since: its balance is news.
        PgStatus::WaitingForDeposit => ours == PaymentStatus::WaitingForDeposit,
        // Another status may still move our record or the order.
        PgStatus::Ready | PgStatus::InProgress | PgStatus::PartialCanceled | PgStatus::Aborted | PgStatus::Expired => {
            false
        }
    };
    match app.store.payments().get(payment_key).await.map_err(anyhow::Error::new)? {
        Some(p) if same(p.status) => Ok(Recorded::Already),
        ours => Ok(Recorded::Not(ours)),
    }
}

#[tracing::instrument(skip_all, fields(order_id = %n.order_id()))]
/// Applies the PG's record of the notification's payment; `ours` is our
/// record of it as [`already_recorded`] read it, if it did.
pub async fn apply_notification(
    app: &App,
    n: &Notification,
    ours: Option<&Payment>,
    correlation_id: &str,
) -> Result<Noted, NotificationError> {
    let fetched = match n {
        Notification::StatusChanged { payment_key, .. } => app.pg().payment(payment_key).await,
        // The order's own attempt when it has one: the PG's "payment by
        // order" is the latest checkout, which anybody can open for our orderId.
        Notification::Deposit { order_id } => {
            match app.store.orders().get(order_id).await.map_err(anyhow::Error::new)? {
                Some(shop_domain::Order { payment_key: Some(key), .. }) => app.pg().payment(&key).await,
                Some(_) | None => app.pg().payment_by_order(order_id).await,
            }
        }
    };
    let pg = match fetched {
        Ok(p) => p,
        Err(PgError::NotFound) => {
            tracing::warn!(?n, "notification for a payment the PG does not know");
            app.count("WebhookUnknownPayment", 1);
            return Ok(Noted::UnknownPayment);
        }
        Err(e) => return Err(NotificationError::PgUnavailable(e)),
    };
    if let Notification::StatusChanged { order_id, .. } = n
        && order_id != &pg.order_id
    {
        tracing::warn!(body_order = %order_id, pg_order = %pg.order_id, "notification names another order than the PG; the PG's is used");
    }
    if !pg.status.is_outcome() {
        tracing::info!(status = pg.status.as_str(), "the PG shows no outcome yet; nothing to apply");
        return Ok(Noted::NotFinal);
    }
    let key = pg.payment_key.clone();
    let given = Given { order: None, payment: ours };
    match apply_pg_outcome_from(app, &key, &PgOutcome::Payment(pg), false, correlation_id, given).await {
        Ok(_) => Ok(Noted::Applied),
        Err(e @ (SettleError::UnknownPayment(_) | SettleError::OrderMismatch { .. })) => {
            tracing::warn!(error = %e, "notification for a payment or order we do not know");
            app.count("WebhookUnknownPayment", 1);
            Ok(Noted::UnknownOrder)
        }
        Err(SettleError::NotFinal(..)) => Ok(Noted::NotFinal),
        Err(e @ (SettleError::Contention(_) | SettleError::Unexpected(_))) => {
            Err(NotificationError::Unexpected(e.into()))
        }
    }
}
