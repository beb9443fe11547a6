//! The one way an operator's action is recorded (the audit trail,
//! docs/console.md): [`acted`] puts the entry STARTED, runs the work, and
//! sets how it ended — the console's actions and the `shop` commands that
//! change state all go through it, locally and against a deployed stack.

use crate::App;
use shop_domain::audit::{AuditStatus, Channel, Operator, Reason};
use shop_store::audit::{Action, MAX_TARGETS};

/// Who is acting, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub operator: Operator,
    pub channel: Channel,
    /// `local`, or the deployed stack's name.
    pub stack: String,
}

/// An action about to be taken: what, on what, and why.
#[derive(Debug, Clone)]
pub struct Intent<'a> {
    pub action: &'a str,
    pub targets: Vec<String>,
    pub reason: &'a Reason,
}

/// Runs `work` as `actor`'s `intent`, recorded before it starts and
/// completed with `describe` of its result (or the error) after. If the
/// entry cannot be written the work does not run: nothing is done that
/// the trail would not show.
pub async fn acted<T, Fut>(
    app: &App,
    actor: &Actor,
    intent: Intent<'_>,
    work: impl FnOnce() -> Fut,
    describe: impl FnOnce(&T) -> String,
) -> anyhow::Result<T>
where
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let target_count = intent.targets.len();
    let mut targets = intent.targets;
    targets.truncate(MAX_TARGETS);
    let action = Action {
        id: uuid::Uuid::now_v7().to_string(),
        at: app.clock.now(),
        operator: actor.operator.clone(),
        channel: actor.channel,
        stack: actor.stack.clone(),
        action: intent.action.to_owned(),
        targets,
        target_count,
        reason: intent.reason.clone(),
    };
    app.store.audit().begin(&action).await?;
    let result = work().await;
    let (status, outcome) = match &result {
        Ok(t) => (AuditStatus::Succeeded, describe(t)),
        Err(e) => (AuditStatus::Failed, format!("{e:#}")),
    };
    tracing::info!(
        audit_id = %action.id,
        operator = %action.operator,
        channel = action.channel.as_str(),
        action = %action.action,
        targets = action.target_count,
        status = status.as_str(),
        "operator action"
    );
    // The work is done either way: a failure to record its end leaves the
    // entry STARTED (it says so) rather than hiding the work's own result.
    if let Err(e) = app.store.audit().finish(&action, status, &outcome, app.clock.now()).await {
        tracing::warn!(audit_id = %action.id, error = %e, "could not record an action's outcome");
    }
    result
}
