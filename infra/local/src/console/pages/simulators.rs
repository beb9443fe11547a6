//! Simulators (local stack only): arm and clear the PG's and the data
//! platform's faults (every armed one listed; a combination a simulator
//! would never act on is refused), and their calls and deliveries, newest
//! first, 20 a page.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use shop_domain::audit::Reason;

use super::shell;
use crate::console::auth::SignedIn;
use crate::console::{ConsoleState, acting};
use crate::sim::{pg, sink};

/// Where the two logs' pages start (`?calls_before=`, `?deliveries_before=`).
#[derive(serde::Deserialize, Default)]
pub struct Older {
    calls_before: Option<i64>,
    deliveries_before: Option<i64>,
}

/// Rows of each log per page.
const LOG_PAGE: usize = 20;

pub async fn page(State(state): State<Arc<ConsoleState>>, Query(older): Query<Older>) -> Response {
    let (Some(pg_sim), Some(sink_sim)) = (&state.pg, &state.sink) else {
        return shell::page(
            &state,
            "Simulators",
            html! { p.hint { "No simulators: this console reads a deployed stack." } },
        )
        .into_response();
    };
    let calls = pg_sim.calls_newest(older.calls_before, LOG_PAGE).await;
    let deliveries = sink_sim.deliveries_newest(older.deliveries_before, LOG_PAGE).await;
    let (calls, deliveries, pg_faults) = match (calls, deliveries, pg_sim.faults().await) {
        (Ok(c), Ok(d), Ok(f)) => (c, d, f),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return shell::error(&state, &e),
    };
    let sink_faults = match sink_sim.faults().await {
        Ok(f) => f,
        Err(e) => return shell::error(&state, &e),
    };
    shell::page(&state,
        "Simulators",
        html! {
            h2 { "Data platform" }
            form method="post" action="/console/simulators/sink/faults" {
                (crate::console::auth::csrf_field())
                select name="fault" { option value="error" { "refuse (500)" } option value="slow" { "slow" } }
                " for " input name="count" type="number" value="-1" size="4";
                " deliveries (-1: until cleared), because " (reason_input("sink-reason"))
                " " button #sink-fail type="submit" { "Arm" }
            }
            form method="post" action="/console/simulators/sink/clear" { (crate::console::auth::csrf_field())
                "Because " (reason_input("sink-clear-reason")) " " button #sink-clear type="submit" { "Clear the data platform's faults" } }
            @if sink_faults.is_empty() { p.hint #sink-faults { "No data-platform fault armed." } } @else {
                table #sink-faults { tr { th { "fault" } th.num { "deliveries left" } }
                    @for (fault, count) in &sink_faults { tr {
                        td.Failed { (fault) } td.num { (if *count < 0 { "until cleared".to_owned() } else { count.to_string() }) }
                    } } }
            }
            h2 { "PG" }
            form method="post" action="/console/simulators/pg/faults" {
                (crate::console::auth::csrf_field())
                select name="op" { @for op in PG_OPS { option value=(op) { (op) } } }
                select name="fault" { @for f in PG_FAULTS { option value=(f) { (f) } } }
                " for " input name="count" type="number" value="1" size="4";
                " calls (-1: until cleared), because " (reason_input("pg-reason"))
                " " button #pg-fail type="submit" { "Arm" }
            }
            form method="post" action="/console/simulators/pg/clear" { (crate::console::auth::csrf_field())
                "Because " (reason_input("pg-clear-reason")) " " button #pg-clear type="submit" { "Clear the PG's faults" } }
            @if pg_faults.is_empty() { p.hint #pg-faults { "No PG fault armed." } } @else {
                table #pg-faults { tr { th { "op" } th { "fault" } th.num { "calls left" } }
                    @for (op, fault, count) in &pg_faults { tr {
                        td { (op) } td.Failed { (fault) } td.num { (if *count < 0 { "until cleared".to_owned() } else { count.to_string() }) }
                    } } }
            }
            p.hint { "The same faults as " code { "POST /v1/sim/faults" } " (docs/payments.md): a decline, an error, a timeout, a lost response, a duplicate, a delay, reordered or lost webhooks." }
            h2 { "Calls the PG received, newest first" }
            table #pg-calls { tr { th { "op" } th { "order" } th { "outcome" } th { "correlation" } }
                @for c in &calls.items { tr {
                    td { (format!("{:?}", c.op).to_lowercase()) }
                    td { @if let Some(o) = &c.order_id { a href={ "/console/orders/" (o) } { code { (o) } } } }
                    td { (c.outcome) } td { code { (c.correlation_id.as_deref().unwrap_or("")) } }
                } } }
            @if let Some(n) = calls.next { p { a #older-calls href={ "/console/simulators?calls_before=" (n) } { "Older calls →" } } }
            h2 { "Deliveries to the data platform, newest first" }
            table #deliveries { tr { th { "order" } th { "type" } th.num { "attempt" } th.num { "status" } }
                @for d in &deliveries.items { tr {
                    td { a href={ "/console/orders/" (d.order_id) } { code { (d.order_id) } } }
                    td { (d.detail_type) } td.num { (d.attempt) }
                    td.num class=(if d.status == 200 { "Done" } else { "Failed" }) { (d.status) }
                } } }
            @if let Some(n) = deliveries.next { p { a #older-deliveries href={ "/console/simulators?deliveries_before=" (n) } { "Older deliveries →" } } }
        },
    )
    .into_response()
}

fn deliveries(count: i64) -> String {
    if count < 0 { "every delivery until cleared".into() } else { format!("{count} deliveries") }
}

fn calls(count: i64) -> String {
    if count < 0 { "every call until cleared".into() } else { format!("{count} call(s)") }
}

/// A one-line reason on the simulators' inline forms (recorded in the audit trail).
fn reason_input(id: &str) -> Markup {
    html! { input id=(id) name="reason" type="text" size="30" required maxlength=(Reason::MAX_LEN) placeholder="reason (audit trail)"; }
}

#[derive(serde::Deserialize)]
pub struct SinkFaultForm {
    fault: String,
    count: i64,
    #[serde(default)]
    reason: String,
}

fn back() -> Response {
    Redirect::to("/console/simulators").into_response()
}

pub async fn arm_sink(
    State(state): State<Arc<ConsoleState>>,
    Extension(who): Extension<SignedIn>,
    Form(f): Form<SinkFaultForm>,
) -> Response {
    let Some(s) = state.sink.clone() else { return back() };
    if !matches!(f.fault.as_str(), "error" | "slow") || f.count == 0 || f.count < -1 {
        return shell::bad_request(&state, "A data-platform fault is error or slow, for a count > 0 or -1.");
    }
    let targets = vec![format!("sink:{}", f.fault)];
    let (fault, count) = (f.fault.clone(), f.count);
    let work = || s.arm(sink::SinkFault { fault, count });
    match acting::act(&state, &who, &f.reason, "sink.fault.arm", targets, work, |_| {
        format!("{} for {}", f.fault, deliveries(f.count))
    })
    .await
    {
        Ok(()) => back(),
        Err(response) => response,
    }
}

pub async fn clear_sink(
    State(state): State<Arc<ConsoleState>>,
    Extension(who): Extension<SignedIn>,
    Form(f): Form<acting::ReasonForm>,
) -> Response {
    let Some(s) = state.sink.clone() else { return back() };
    let work = || s.clear_faults();
    match acting::act(&state, &who, &f.reason, "sink.fault.clear", vec!["sink".into()], work, |_| "cleared".into())
        .await
    {
        Ok(()) => back(),
        Err(response) => response,
    }
}

/// What the PG simulator can be made to do wrong, as `POST /v1/sim/faults` takes it.
const PG_OPS: [&str; 5] = ["confirm", "cancel", "lookup", "webhook", "deposit"];
const PG_FAULTS: [&str; 10] = [
    "decline",
    "error",
    "timeout",
    "lost_response",
    "duplicate",
    "delay",
    "reorder",
    "lost",
    "regress",
    "refund_account",
];

#[derive(serde::Deserialize)]
pub struct PgFaultForm {
    op: String,
    fault: String,
    count: i64,
    #[serde(default)]
    reason: String,
}

pub async fn arm_pg(
    State(state): State<Arc<ConsoleState>>,
    Extension(who): Extension<SignedIn>,
    Form(f): Form<PgFaultForm>,
) -> Response {
    let Some(p) = state.pg.clone() else { return back() };
    let parsed = (
        serde_json::from_value::<pg::Op>(serde_json::Value::String(f.op.clone())),
        serde_json::from_value::<pg::FaultKind>(serde_json::Value::String(f.fault.clone())),
    );
    let (Ok(op), Ok(fault)) = parsed else {
        return shell::bad_request(&state, &format!("The PG has no fault {} on {}.", f.fault, f.op));
    };
    if !op.honours(fault) {
        return shell::bad_request(&state, &format!("{} does nothing on {}: nothing armed.", f.fault, f.op));
    }
    if f.count == 0 || f.count < -1 {
        return shell::bad_request(&state, "A fault lasts a count > 0 of calls, or -1 (until cleared).");
    }
    let targets = vec![format!("pg:{}/{}", f.op, f.fault)];
    let work = || p.arm(pg::Fault { op, fault, count: f.count });
    match acting::act(&state, &who, &f.reason, "pg.fault.arm", targets, work, |_| {
        format!("{} on {} for {}", f.fault, f.op, calls(f.count))
    })
    .await
    {
        Ok(()) => back(),
        Err(response) => response,
    }
}

pub async fn clear_pg(
    State(state): State<Arc<ConsoleState>>,
    Extension(who): Extension<SignedIn>,
    Form(f): Form<acting::ReasonForm>,
) -> Response {
    let Some(p) = state.pg.clone() else { return back() };
    let work = || p.clear_faults();
    match acting::act(&state, &who, &f.reason, "pg.fault.clear", vec!["pg".into()], work, |_| "cleared".into()).await {
        Ok(()) => back(),
        Err(response) => response,
    }
}
