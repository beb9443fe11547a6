//! Bulk actions on what the finder found ([`crate::bulk`]): a dry run that
//! counts what the action would act on and what it would skip, a
//! confirmation that carries the reason, then the run in the background
//! with its progress and result on a page of its own (`/console/jobs/…`),
//! recorded in the audit trail as one entry naming every order.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Extension;
use axum::extract::{Form, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use shop_app::usecases::audit::{Intent, acted};

use super::{find as finder, shell};
use crate::bulk::{self, Action, Plan};
use crate::console::auth::SignedIn;
use crate::console::jobs::Job;
use crate::console::{ConsoleState, acting, queues};

/// Targets the confirmation lists (the rest counted).
const SHOWN: usize = 20;

#[expect(clippy::result_large_err, reason = "the early answer of a request, built at most once per request")]
fn action_of(state: &ConsoleState, name: &str) -> Result<Action, Response> {
    Action::parse(name)
        .ok_or_else(|| (StatusCode::NOT_FOUND, shell::page(state, "No such action", html! {})).into_response())
}

async fn planned(state: &ConsoleState, action: Action, query: Option<&str>) -> Result<Plan, Response> {
    let filter = finder::parse(state, query)?.filter;
    bulk::plan(&state.app, &filter, action).await.map_err(|e| finder::failed(state, e))
}

/// `GET /console/orders/bulk/{action}?<filter>`: the dry run and the confirmation.
pub async fn confirm(
    State(state): State<Arc<ConsoleState>>,
    Path(action): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let action = match action_of(&state, &action) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let plan = match planned(&state, action, query.as_deref()).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let back = finder::link(&plan.filter, None);
    shell::page(
        &state,
        &format!("{} {} order event(s)?", action.as_str(), plan.targets.len()),
        html! {
            p #dry-run { "Dry run: the filter finds " strong #planned { (plan.targets.len()) } " target(s) for "
                code { (action.as_str()) } "; " span #skipped { (plan.skipped) } " row(s) it does not apply to are skipped."
                @if plan.truncated { strong.Failed { " The filter finds more than " (bulk::MAX_TARGETS) ": only the first are taken; narrow it." } } }
            p { (action.explain()) }
            @if !plan.targets.is_empty() {
                table #targets { tr { th { "order" } th { "target" } }
                    @for t in plan.targets.iter().take(SHOWN) { tr {
                        td { a href={ "/console/orders/" (t.order()) } { code { (t.order()) } } } td { code { (t.label()) } } } }
                }
                @if plan.targets.len() > SHOWN { p.hint { "and " (plan.targets.len() - SHOWN) " more." } }
            }
            @if plan.targets.is_empty() { p #nothing { "Nothing to do. " a href=(back) { "Back to the list" } } }
            @else {
                form method="post" action={ "/console/orders/bulk/" (action.as_str()) } {
                    (crate::console::auth::csrf_field())
                    input type="hidden" name="query" value=(plan.filter.to_query());
                    input type="hidden" name="confirmed" value=(plan.targets.len());
                    (acting::reason_field())
                    button #confirm type="submit" { (action.as_str()) " " (plan.targets.len()) }
                    " " a href=(back) { "Cancel" }
                }
            }
        },
    )
    .into_response()
}

#[derive(serde::Deserialize)]
pub struct StartForm {
    #[serde(default)]
    query: String,
    #[serde(default)]
    confirmed: usize,
    #[serde(default)]
    reason: String,
}

/// `POST /console/orders/bulk/{action}`: plans again (the run acts on what
/// the filter finds now), starts the run and shows its page.
pub async fn start(
    State(state): State<Arc<ConsoleState>>,
    Extension(who): Extension<SignedIn>,
    Path(action): Path<String>,
    Form(f): Form<StartForm>,
) -> Response {
    let action = match action_of(&state, &action) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let (actor, reason) = match acting::prepare(&state, &who, &f.reason) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let plan = match planned(&state, action, Some(&f.query)).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let job = Arc::new(Job {
        id: uuid::Uuid::now_v7().to_string(),
        action,
        operator: who.0.clone(),
        started_at: state.app.clock.now(),
        query: plan.filter.to_query(),
        confirmed: f.confirmed,
        progress: bulk::Progress::default(),
        result: std::sync::Mutex::new(None),
    });
    state.jobs.add(job.clone());
    let (st, running) = (state.clone(), job.clone());
    tokio::spawn(async move {
        let targets = plan.targets.iter().map(bulk::Target::label).collect();
        let intent = Intent { action: action.audit_name(), targets, reason: &reason };
        let work = || bulk::run(queues::place(&st), &plan, &running.progress);
        let result = acted(&st.app, &actor, intent, work, bulk::Report::summary).await;
        running.finish(result.map_err(|e| format!("{e:#}")));
    });
    Redirect::to(&format!("/console/jobs/{}", job.id)).into_response()
}

/// `GET /console/jobs/{id}`: a run's progress, then its result.
pub async fn job(State(state): State<Arc<ConsoleState>>, Path(id): Path<String>) -> Response {
    match state.jobs.get(&id) {
        Some(job) => shell::page(&state, &format!("Bulk {} by {}", job.action.as_str(), job.operator), status(&job))
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            shell::page(
                &state,
                "No such run",
                html! {
                p { "This console does not remember that run (it keeps the newest " (crate::console::jobs::KEPT)
                    "); the " a href="/console/audit" { "audit trail" } " has every one." } },
            ),
        )
            .into_response(),
    }
}

/// `GET /console/jobs/{id}/status`: the live part of the run's page.
pub async fn job_status(State(state): State<Arc<ConsoleState>>, Path(id): Path<String>) -> Response {
    match state.jobs.get(&id) {
        Some(job) => axum::response::Html(status(&job).into_string()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn status(job: &Job) -> Markup {
    let p = &job.progress;
    let (total, done, failed) =
        (p.total.load(Ordering::Relaxed), p.done.load(Ordering::Relaxed), p.failed.load(Ordering::Relaxed));
    let back = format!("/console/orders/find?{}", job.query);
    match job.result() {
        None => html! {
            div #job hx-get={ "/console/jobs/" (job.id) "/status" } hx-trigger="every 1s" hx-swap="outerHTML" {
                p #progress { "Running: " (done + failed) " of " (total) " (" (failed) " failed)…" }
                progress max=(total.max(1)) value=(done + failed) {}
            }
        },
        Some(Err(e)) => {
            html! { div #job { p.Failed #result { "Not run: " (e) } p { a href=(back) { "Back to the list" } } } }
        }
        Some(Ok(report)) => html! {
            div #job {
                p #result class=(if report.failed == 0 { "Done" } else { "Failed" }) {
                    "Finished: " span #succeeded { (report.succeeded) } " succeeded, " span #failed { (report.failed) } " failed"
                    @if report.results.len() != job.confirmed { " (the confirmation showed " (job.confirmed) "; the run took what the filter found when it started)" }
                    "." }
                table #results { tr { th { "order" } th { "target" } th { "" } th { "detail" } }
                    @for r in &report.results { tr {
                        td { a href={ "/console/orders/" (r.order_id) } { code { (r.order_id) } } }
                        td { code { (r.target) } }
                        td class=(if r.ok { "Done" } else { "Failed" }) { (if r.ok { "done" } else { "failed" }) }
                        td { (r.detail) }
                    } }
                }
                p { a href=(back) { "Back to the list" } " · " a href="/console/audit" { "Audit trail" } }
            }
        },
    }
}
