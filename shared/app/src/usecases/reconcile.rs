//! Reconciling with the PG (the `reconcile-payments` schedule). Two kinds
//! of payment only the PG can settle:
//!
//! - **In doubt**: CONFIRMING or UNKNOWN for longer than
//!   `reconcile_after_secs` — asked about at the PG and resolved exactly as
//!   a confirm answer would be. A PG that still cannot say leaves the payment
//!   in doubt for the next run; the order is never expired blindly.
//! - **Virtual accounts waiting for their deposit** — asked about once per
//!   `reconcile_after_secs` while they wait (their deposit webhook may be
//!   lost for good), and at their due date. Paid → PAID through the same
//!   settlement path as the webhook. Still unpaid at the due date → the
//!   order EXPIRED with its stock and points back in one transaction; its
//!   `OrderExpired` names the account and compensation closes it at the PG.
//!   The order leaves AWAITING_DEPOSIT *before* the account is closed, so a
//!   deposit racing the expiry lands on an EXPIRED order, is orphaned and
//!   given back — never a PAID order whose money was returned.
//!
//! Both read the sparse `byDue` index, oldest first, [`BATCH`] per shard and
//! run: cost per run is constant whatever the history.

use crate::App;
use crate::ports::{PgError, PgStatus};
use crate::usecases::expire::expire_order;
use crate::usecases::refund::cancel_at_pg;
use crate::usecases::settle::{PgOutcome, apply_pg_outcome, next_deposit_check, outcome_of};
use shop_domain::{OrderStatus, Payment, Timestamp};
use shop_store::{StoreError, Tx};

/// Payments handled per run and kind; the next run takes the rest.
pub const BATCH: i32 = 100;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    pub resolved: usize,
    /// The PG could not tell yet (still unreachable): tried again next run.
    pub still_unknown: usize,
    /// Virtual accounts found paid (or ended at the PG) without their webhook.
    pub deposits_settled: usize,
    /// Virtual accounts past their due date: orders expired.
    pub deposits_expired: usize,
    /// Virtual accounts still waiting, checked again later.
    pub deposits_waiting: usize,
}

#[tracing::instrument(skip_all)]
pub async fn reconcile_payments(app: &App) -> anyhow::Result<ReconcileReport> {
    let now = app.clock.now();
    let mut report = ReconcileReport::default();
    in_doubt(app, now, &mut report).await?;
    deposits(app, now, &mut report).await?;
    if report.still_unknown > 0 {
        app.count("PaymentsStillUnknown", report.still_unknown as u64);
    }
    if report.deposits_expired > 0 {
        app.count("DepositsExpired", report.deposits_expired as u64);
    }
    Ok(report)
}

async fn in_doubt(app: &App, now: Timestamp, report: &mut ReconcileReport) -> anyhow::Result<()> {
    let before = now.plus_secs(-app.config.reconcile_after_secs);
    for payment in app.store.payments().in_doubt(before, BATCH).await? {
        match ask_pg(app, &payment).await {
            Ok(Asked::Resolved(_)) => report.resolved += 1,
            Ok(Asked::StillUnknown(_)) => report.still_unknown += 1,
            Err(e) => {
                tracing::error!(payment_key = %payment.payment_key, error = %e, "reconciling failed");
                report.still_unknown += 1;
            }
        }
    }
    Ok(())
}

/// What asking the PG about a payment in doubt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// The PG said; the order is now in this status.
    Resolved(OrderStatus),
    /// The PG still cannot say (unreachable, or an error): asked again later.
    StillUnknown(String),
}

/// Asks the PG about `payment` (in doubt: CONFIRMING or UNKNOWN) and
/// resolves it exactly as a confirm answer would be — what each run of the
/// reconciler does for every payment in doubt long enough, and what an
/// operator's "ask the PG now" does for one.
pub async fn ask_pg(app: &App, payment: &Payment) -> anyhow::Result<Asked> {
    let key = payment.payment_key.clone();
    let by_order = app.pg().payment_by_order(&payment.order_id).await;
    let result = match by_order {
        // The order's payment at the PG is another attempt: ask about ours.
        Ok(p) if p.payment_key != key => app.pg().payment(&key).await,
        other => other,
    };
    let outcome = match result {
        Err(PgError::NotFound) => PgOutcome::Declined {
            code: "NOT_FOUND_PAYMENT".into(),
            message: "the PG never received the payment".into(),
        },
        other => outcome_of(app, &key, other).await,
    };
    if let PgOutcome::Unknown(reason) = &outcome {
        tracing::warn!(payment_key = %key, %reason, "PG still cannot say; next run retries");
        return Ok(Asked::StillUnknown(reason.to_string()));
    }
    let settled = apply_pg_outcome(app, &key, &outcome, true, &format!("reconcile-{key}")).await?;
    tracing::info!(payment_key = %key, order_status = %settled.order.status, "payment reconciled");
    Ok(Asked::Resolved(settled.order.status))
}

/// Orders one ask carries at most (an invocation's payload and duration).
pub const ASK_MAX: usize = 100;

/// Asking the PG about chosen orders' payments in doubt, now: what an
/// operator sends the deployed `reconcile-payments` function (`shop bulk
/// ask-pg --stack`, the console's "Ask the PG now" on a deployed stack),
/// so the PG secret never leaves AWS.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AskPgRequest {
    pub order_ids: Vec<String>,
}

/// What asking did for one order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AskPgAnswer {
    pub order_id: String,
    /// The PG answered and the order was settled as it said.
    pub ok: bool,
    pub detail: String,
}

/// Asks the PG about each order's payment in doubt ([`ask_pg`]); an order
/// without one is answered so, never asked about. At most [`ASK_MAX`].
pub async fn ask_pg_orders(app: &App, request: &AskPgRequest) -> anyhow::Result<Vec<AskPgAnswer>> {
    anyhow::ensure!(
        (1..=ASK_MAX).contains(&request.order_ids.len()),
        "askPg.orderIds: 1 to {ASK_MAX} orders, not {}",
        request.order_ids.len()
    );
    let mut answers = Vec::with_capacity(request.order_ids.len());
    for raw in &request.order_ids {
        let answer = |ok: bool, detail: String| AskPgAnswer { order_id: raw.clone(), ok, detail };
        let Ok(id) = shop_domain::OrderId::parse(raw.as_str()) else {
            answers.push(answer(false, "not an order id".into()));
            continue;
        };
        let payment = match app.store.orders().get(&id).await?.and_then(|o| o.payment_key) {
            Some(key) => app.store.payments().get(&key).await?,
            None => None,
        };
        let Some(payment) = payment.filter(|p| p.status.in_doubt()) else {
            answers.push(answer(false, "no payment in doubt: nothing to ask".into()));
            continue;
        };
        answers.push(match ask_pg(app, &payment).await {
            Ok(Asked::Resolved(status)) => answer(true, format!("the PG said; the order is {status}")),
            Ok(Asked::StillUnknown(why)) => answer(false, format!("the PG still cannot say: {why}")),
            Err(e) => answer(false, format!("{e:#}")),
        });
    }
    Ok(answers)
}

/// What one check of a waiting virtual account did.
enum Deposit {
    Settled,
    Expired,
    Waiting,
    Unknown,
}

async fn deposits(app: &App, now: Timestamp, report: &mut ReconcileReport) -> anyhow::Result<()> {
    for payment in app.store.payments().deposits_due(now, BATCH).await? {
        let key = payment.payment_key.clone();
        let result = check_deposit(app, now, &payment).await;
        if let Ok(Deposit::Unknown) | Err(_) = &result {
            // Checked again one interval on, so accounts that keep failing
            // never fill every batch and starve the others.
            if let Err(e) = postpone(app, &payment, now, now.plus_secs(app.config.reconcile_after_secs)).await {
                tracing::warn!(payment_key = %key, error = %e, "could not postpone the account's next check");
            }
        }
        match result {
            Ok(Deposit::Settled) => report.deposits_settled += 1,
            Ok(Deposit::Expired) => report.deposits_expired += 1,
            Ok(Deposit::Waiting) => report.deposits_waiting += 1,
            Ok(Deposit::Unknown) => report.still_unknown += 1,
            Err(e) => {
                tracing::error!(payment_key = %key, error = %e, "checking the virtual account failed");
                report.still_unknown += 1;
            }
        }
    }
    Ok(())
}

async fn check_deposit(app: &App, now: Timestamp, payment: &Payment) -> anyhow::Result<Deposit> {
    let key = payment.payment_key.clone();
    let correlation_id = format!("reconcile-{key}");
    let pg = match app.pg().payment(&key).await {
        Ok(pg) => pg,
        // Only a status the PG states settles an account it issued: an error
        // (unreachable, a 404 or 401 from a misconfiguration) says nothing
        // about the deposit; the account is asked about again next interval.
        Err(e) => {
            tracing::warn!(payment_key = %key, error = %e, "the PG could not say; the account is checked again later");
            return Ok(Deposit::Unknown);
        }
    };
    if pg.status != PgStatus::WaitingForDeposit {
        // Deposited (the webhook was lost), or ended at the PG.
        let settled = apply_pg_outcome(app, &key, &PgOutcome::Payment(pg), false, &correlation_id).await?;
        tracing::info!(payment_key = %key, order_status = %settled.order.status, "virtual account settled without its webhook");
        return Ok(Deposit::Settled);
    }
    let order = app.store.orders().get(&payment.order_id).await?;
    // Paid with this account, and the PG took the deposit back (ADR 0031):
    // never closed; asked about again until the PG says DONE again. Past
    // its due date the order holds money the PG does not: an operator's case.
    let reversed = order.as_ref().filter(|o| {
        o.payment_key.as_ref() == Some(&key)
            && matches!(o.status, OrderStatus::Paid | OrderStatus::PartiallyRefunded | OrderStatus::RefundPending)
    });
    if let Some(o) = reversed {
        let due = pg.deposit_due.unwrap_or(now);
        if now >= due {
            tracing::error!(order_id = %o.id, payment_key = %key, status = %o.status, "a deposit the PG took back was not made again by its due date: the order holds money the PG does not");
            app.count("DepositsReversedPastDue", 1);
        }
        postpone(app, payment, now, now.plus_secs(app.config.reconcile_after_secs)).await?;
        return Ok(Deposit::Waiting);
    }
    let waiting_for_it =
        order.as_ref().filter(|o| o.status == OrderStatus::AwaitingDeposit && o.payment_key.as_ref() == Some(&key));
    let Some(order) = waiting_for_it else {
        // The account serves no order (cancelled, expired, paid otherwise)
        // and compensation has not closed it yet: close it now.
        cancel_at_pg(app, &key, "the virtual account serves no order", &correlation_id).await?;
        return Ok(Deposit::Settled);
    };
    let due = order.deposit_due();
    if now < due {
        postpone(app, payment, now, next_deposit_check(app, now, due)).await?;
        return Ok(Deposit::Waiting);
    }
    if expire_order(app, &order.id, &correlation_id).await? {
        tracing::info!(order_id = %order.id, payment_key = %key, "virtual account not paid by its due date: order expired");
        Ok(Deposit::Expired)
    } else {
        // Changed meanwhile (a deposit, a cancel): the next check sees it.
        Ok(Deposit::Waiting)
    }
}

/// Moves a waiting account's next check to `next`, conditional on the
/// version read: a webhook that moved the payment meanwhile wins.
async fn postpone(app: &App, payment: &Payment, now: Timestamp, next: Timestamp) -> anyhow::Result<()> {
    let later = Payment { check_at: Some(next), version: payment.version + 1, updated_at: now, ..payment.clone() };
    let mut tx = Tx::new();
    tx.push(app.store.payments().op_update(payment.version, &later)?);
    match app.store.transact(tx).await {
        Ok(()) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
