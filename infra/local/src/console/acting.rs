//! What every console action shares: who acts (the signed-in operator, as
//! [`auth`](super::auth) found them), the reason its form must carry, and
//! the audit trail's record around the work
//! ([`shop_app::usecases::audit::acted`]). A form without a reason is a
//! 400 and changes nothing.

use axum::response::Response;
use maud::{Markup, html};
use shop_app::usecases::audit::{Actor, Intent, acted};
use shop_domain::audit::{Channel, InvalidAudit, Operator, Reason};

use super::ConsoleState;
use super::auth::SignedIn;
use super::pages::shell;

/// An action's form that carries nothing but its reason.
#[derive(serde::Deserialize)]
pub struct ReasonForm {
    /// Missing is refused as blank is ([`act`]).
    #[serde(default)]
    pub reason: String,
}

/// The form field every action's confirmation carries.
pub fn reason_field() -> Markup {
    html! {
        p {
            label for="reason" { "Reason (recorded in the audit trail with your name)" } br;
            textarea #reason name="reason" rows="2" cols="60" required maxlength=(Reason::MAX_LEN)
                placeholder="Why, for whoever reads the audit trail later" {}
        }
    }
}

/// `who` acting on this console's stack.
fn actor(state: &ConsoleState, who: &SignedIn) -> Result<Actor, InvalidAudit> {
    let operator = Operator::parse(who.0.as_str())?;
    let stack = state.stack.as_ref().map_or_else(|| "local".to_owned(), |s| s.name.clone());
    Ok(Actor { operator, channel: Channel::Console, stack })
}

/// `who` and the form's `reason`, checked before anything runs: a missing
/// or malformed reason is a 400.
#[expect(clippy::result_large_err, reason = "the early answer of a request, built at most once per request")]
pub fn prepare(state: &ConsoleState, who: &SignedIn, reason: &str) -> Result<(Actor, Reason), Response> {
    let reason = Reason::parse(reason).map_err(|e| shell::bad_request(state, &format!("Not done: {e}.")))?;
    let actor = actor(state, who).map_err(|e| shell::bad_request(state, &format!("Not done: {e}.")))?;
    Ok((actor, reason))
}

/// Runs `work` as `who`'s `action` on `targets` for the form's `reason`,
/// recorded in the audit trail; a missing or malformed reason is a 400
/// before anything runs, a failed work an error page (recorded as failed).
pub async fn act<T, Fut>(
    state: &ConsoleState,
    who: &SignedIn,
    reason: &str,
    action: &str,
    targets: Vec<String>,
    work: impl FnOnce() -> Fut,
    describe: impl FnOnce(&T) -> String,
) -> Result<T, Response>
where
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let (actor, reason) = prepare(state, who, reason)?;
    acted(&state.app, &actor, Intent { action, targets, reason: &reason }, work, describe)
        .await
        .map_err(|e| shell::error(state, &e))
}
