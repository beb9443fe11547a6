//! Simulators (local stack only): arm and clear the PG's and the data
//! platform's faults, and their latest calls.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::shell;
use crate::console::ConsoleState;
use crate::sim::db::Page;
use crate::sim::{pg, sink};

pub async fn page(State(state): State<Arc<ConsoleState>>) -> Response {
    let (Some(pg_sim), Some(sink_sim)) = (&state.pg, &state.sink) else {
        return shell::page(
            &state,
            "Simulators",
            html! { p.hint { "No simulators: this console reads a deployed stack." } },
        )
        .into_response();
    };
    let latest = || Page { after: 0, limit: Some(20) };
    let calls = pg_sim.calls(pg::Filter { order_id: None, payment_key: None, op: None }, latest()).await;
    let deliveries = sink_sim.deliveries(sink::Filter { order_id: None, event_id: None }, latest()).await;
    let (calls, deliveries, pg_faults) = match (calls, deliveries, pg_sim.faults().await) {
        (Ok(c), Ok(d), Ok(f)) => (c.items, d.items, f),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return shell::error(&state, &e),
    };
    shell::page(&state,
        "Simulators",
        html! {
            h2 { "Data platform" }
            form method="post" action="/console/simulators/sink/faults" {
                (crate::console::auth::csrf_field())
                select name="fault" { option value="error" { "refuse (500)" } option value="slow" { "slow" } }
                " for " input name="count" type="number" value="-1" size="4";
                " deliveries (-1: until cleared) " button #sink-fail type="submit" { "Arm" }
            }
            form method="post" action="/console/simulators/sink/clear" { (crate::console::auth::csrf_field()) button #sink-clear type="submit" { "Clear the data platform's faults" } }
            h2 { "PG" }
            form method="post" action="/console/simulators/pg/faults" {
                (crate::console::auth::csrf_field())
                select name="op" { @for op in PG_OPS { option value=(op) { (op) } } }
                select name="fault" { @for f in PG_FAULTS { option value=(f) { (f) } } }
                " for " input name="count" type="number" value="1" size="4";
                " calls (-1: until cleared) " button #pg-fail type="submit" { "Arm" }
            }
            form method="post" action="/console/simulators/pg/clear" { (crate::console::auth::csrf_field()) button #pg-clear type="submit" { "Clear the PG's faults" } }
            @if pg_faults.is_empty() { p.hint #pg-faults { "No PG fault armed." } } @else {
                table #pg-faults { tr { th { "op" } th { "fault" } th.num { "calls left" } }
                    @for (op, fault, count) in &pg_faults { tr {
                        td { (op) } td.Failed { (fault) } td.num { (if *count < 0 { "until cleared".to_owned() } else { count.to_string() }) }
                    } } }
            }
            p.hint { "The same faults as " code { "POST /v1/sim/faults" } " (docs/payments.md): a decline, an error, a timeout, a lost response, a duplicate, a delay, reordered or lost webhooks." }
            h2 { "Calls the PG received (first 20)" }
            table { tr { th { "op" } th { "order" } th { "outcome" } th { "correlation" } }
                @for c in &calls { tr {
                    td { (format!("{:?}", c.op).to_lowercase()) }
                    td { @if let Some(o) = &c.order_id { a href={ "/console/orders/" (o) } { code { (o) } } } }
                    td { (c.outcome) } td { code { (c.correlation_id.as_deref().unwrap_or("")) } }
                } } }
            h2 { "Deliveries to the data platform (first 20)" }
            table { tr { th { "order" } th { "type" } th.num { "attempt" } th.num { "status" } }
                @for d in &deliveries { tr {
                    td { a href={ "/console/orders/" (d.order_id) } { code { (d.order_id) } } }
                    td { (d.detail_type) } td.num { (d.attempt) }
                    td.num class=(if d.status == 200 { "Done" } else { "Failed" }) { (d.status) }
                } } }
        },
    )
    .into_response()
}

#[derive(serde::Deserialize)]
pub struct SinkFaultForm {
    fault: String,
    count: i64,
}

pub async fn arm_sink(State(state): State<Arc<ConsoleState>>, axum::Form(f): axum::Form<SinkFaultForm>) -> Response {
    let Some(s) = &state.sink else { return Redirect::to("/console/simulators").into_response() };
    if !matches!(f.fault.as_str(), "error" | "slow") || f.count == 0 || f.count < -1 {
        return shell::bad_request(&state, "A data-platform fault is error or slow, for a count > 0 or -1.");
    }
    match s.arm(sink::SinkFault { fault: f.fault, count: f.count }).await {
        Ok(()) => Redirect::to("/console/simulators").into_response(),
        Err(e) => shell::error(&state, &e),
    }
}

pub async fn clear_sink(State(state): State<Arc<ConsoleState>>) -> Response {
    match &state.sink {
        Some(s) => match s.clear_faults().await {
            Ok(()) => Redirect::to("/console/simulators").into_response(),
            Err(e) => shell::error(&state, &e),
        },
        None => Redirect::to("/console/simulators").into_response(),
    }
}

/// What the PG simulator can be made to do wrong, as `POST /v1/sim/faults` takes it.
const PG_OPS: [&str; 4] = ["confirm", "cancel", "lookup", "webhook"];
const PG_FAULTS: [&str; 8] = ["decline", "error", "timeout", "lost_response", "duplicate", "delay", "reorder", "lost"];

#[derive(serde::Deserialize)]
pub struct PgFaultForm {
    op: String,
    fault: String,
    count: i64,
}

pub async fn arm_pg(State(state): State<Arc<ConsoleState>>, axum::Form(f): axum::Form<PgFaultForm>) -> Response {
    let Some(p) = &state.pg else { return Redirect::to("/console/simulators").into_response() };
    let parsed = (
        serde_json::from_value::<pg::Op>(serde_json::Value::String(f.op.clone())),
        serde_json::from_value::<pg::FaultKind>(serde_json::Value::String(f.fault.clone())),
    );
    let (Ok(op), Ok(fault)) = parsed else {
        return shell::bad_request(&state, &format!("The PG has no fault {} on {}.", f.fault, f.op));
    };
    if f.count == 0 || f.count < -1 {
        return shell::bad_request(&state, "A fault lasts a count > 0 of calls, or -1 (until cleared).");
    }
    match p.arm(pg::Fault { op, fault, count: f.count }).await {
        Ok(()) => Redirect::to("/console/simulators").into_response(),
        Err(e) => shell::error(&state, &e),
    }
}

pub async fn clear_pg(State(state): State<Arc<ConsoleState>>) -> Response {
    match &state.pg {
        Some(p) => match p.clear_faults().await {
            Ok(()) => Redirect::to("/console/simulators").into_response(),
            Err(e) => shell::error(&state, &e),
        },
        None => Redirect::to("/console/simulators").into_response(),
    }
}
