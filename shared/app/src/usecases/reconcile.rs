//! Reconciling payments in doubt (the `reconcile-payments` schedule):
//! payments CONFIRMING or UNKNOWN for longer than `reconcile_after_secs` are
//! asked about at the PG and resolved exactly as a confirm answer would be.
//! A PG that still cannot say leaves the payment in doubt for the next run;
//! the order is never expired blindly.

use crate::App;
use crate::ports::PgError;
use crate::usecases::settle::{PgOutcome, apply_pg_outcome, outcome_of};

/// Payments handled per run; the next run takes the rest.
pub const BATCH: i32 = 100;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    pub resolved: usize,
    /// The PG could not tell yet (still unreachable): tried again next run.
    pub still_unknown: usize,
}

#[tracing::instrument(skip_all)]
pub async fn reconcile_payments(app: &App) -> anyhow::Result<ReconcileReport> {
    let now = app.clock.now();
    let before = now.plus_secs(-app.config.reconcile_after_secs);
    let mut report = ReconcileReport::default();
    for payment in app.store.payments_in_doubt(before, BATCH).await? {
        let key = payment.payment_key.clone();
        let by_order = app.pg.payment_by_order(&payment.order_id).await;
        let result = match by_order {
            // The order's payment at the PG is another attempt: ask about ours.
            Ok(p) if p.payment_key != key => app.pg.payment(&key).await,
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
            report.still_unknown += 1;
            continue;
        }
        match apply_pg_outcome(app, &key, &outcome, true, &format!("reconcile-{key}")).await {
            Ok(s) => {
                tracing::info!(payment_key = %key, order_status = %s.order.status, "payment reconciled");
                report.resolved += 1;
            }
            Err(e) => {
                tracing::error!(payment_key = %key, error = %e, "reconciling failed");
                report.still_unknown += 1;
            }
        }
    }
    if report.still_unknown > 0 {
        app.count("PaymentsStillUnknown", report.still_unknown as u64);
    }
    Ok(report)
}
