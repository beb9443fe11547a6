//! Sales: each running flash sale behind the waiting room
//! (docs/waiting-room.md) — waiting, active against capacity, sold, the
//! admission rate the adaptive rule chose, admissions and freed slots per
//! minute over the last hour, and what is stuck: sessions past their end
//! that the timer has not ended, and the `waiting-room` consumer's DLQ.
//! Everything is read from the sale's own items and the saga statistics
//! (`sale.<id>.*`, one item per minute and shard): the page costs the same
//! however long the queue or the history.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use shop_app::obs::stats::sale_stat;
use shop_app::usecases::sales::{SaleStatus, status};

use super::overview::{Series, card, card_class, duration};
use super::shell;
use crate::console::ConsoleState;

/// Sales shown at most (the running ones, soonest to end first).
const SHOWN: i32 = 20;
/// Minutes of history charted.
const MINUTES: i64 = 60;
/// A session this long past its end and still not ended is stuck (the
/// timer runs every second locally, every minute on AWS).
const STUCK_AFTER_SECS: i64 = 120;
/// Stuck sessions counted at most per page (a bounded query).
const STUCK_CAP: i32 = 100;

pub async fn page(State(state): State<Arc<ConsoleState>>) -> Response {
    match render(&state).await {
        Ok(m) => shell::page(&state, "Sales", m).into_response(),
        Err(e) => shell::error(&state, &e),
    }
}

/// The sales alone (what the page polls).
pub async fn live(State(state): State<Arc<ConsoleState>>) -> Response {
    match sales(&state).await {
        Ok(m) => axum::response::Html(m.into_string()).into_response(),
        Err(e) => shell::error(&state, &e),
    }
}

async fn render(state: &ConsoleState) -> anyhow::Result<Markup> {
    let body = sales(state).await?;
    Ok(html! {
        p.hint { "Refreshes every 5 s. Create a sale with " code { "POST /sales" } " or " code { "shop sale create" } "." }
        div #sales hx-get="/console/sales/live" hx-trigger="every 5s" { (body) }
    })
}

async fn sales(state: &ConsoleState) -> anyhow::Result<Markup> {
    let app = &state.app;
    let now = app.clock.now();
    let ids = app.store.sales().live(now, SHOWN).await?;
    let mut shown = Vec::with_capacity(ids.len());
    for id in &ids {
        if let Some(s) = status(app, id).await? {
            shown.push(s);
        }
    }
    let series = Series::read(app, now, MINUTES).await?;
    let counter = |name: &str| series.counter(name);
    let gauge = |name: &str| series.gauge(name);
    let settle_p99 = series.settle(0.99);
    let stuck = app.store.sales().sessions_ended(now.plus_secs(-STUCK_AFTER_SECS), STUCK_CAP).await?;
    let depths = crate::console::queues::depths(state).await?;
    let dlq = crate::emulate::queue::dlq_of(shop_app::events::consumers::WAITING_ROOM);
    let dlq_depth = depths.iter().find(|(name, _)| *name == dlq).map(|(_, d)| d.messages).unwrap_or(0);
    Ok(html! {
        @if shown.is_empty() { p #no-sales { "No sale is running." } }
        @for s in &shown {
            @let id = &s.sale.id;
            @let stuck_here = stuck.iter().filter(|t| t.sale == *id).count();
            section.sale id={ "sale-" (id) } {
                h2 { (s.sale.terms.name) " " code { (id) } " " span.hint { (state_name(s)) } }
                table.figures {
                    tr { th { "waiting" } th { "active / capacity" } th { "admitted" } th { "sold" } th { "left" } th { "rate in force" } th { "wait for a newcomer" } }
                    tr {
                        td.num { (s.waiting) }
                        @if s.active >= u64::from(s.sale.terms.capacity) { td.num.full { (s.active) " / " (s.sale.terms.capacity) } }
                        @else { td.num { (s.active) " / " (s.sale.terms.capacity) } }
                        td.num { (s.sale.admitted) }
                        td.num { (s.sold) }
                        td.num { (s.units_left) }
                        td.num { (format!("{:.1}", s.sale.rate)) " / " (s.sale.terms.max_admissions_per_sec) " per s" }
                        td.num { (duration(Some(i64::try_from(s.wait_secs.saturating_mul(1000)).unwrap_or(i64::MAX)))) }
                    }
                }
                section.cards {
                    (card("Admissions", &format!("{} in the last hour", counter(&sale_stat(id, "admitted")).iter().sum::<i64>()), &counter(&sale_stat(id, "admitted")), "per minute"))
                    (card("Slots freed", &format!("{} in the last hour", counter(&sale_stat(id, "freed")).iter().sum::<i64>()), &counter(&sale_stat(id, "freed")), "per minute (orders ended, sessions ended, shoppers left)"))
                    (card("Active shoppers", &format!("{} of {}", s.active, s.sale.terms.capacity), &gauge(&sale_stat(id, "active")), "sampled each admitter pass"))
                    (card("Admission rate (adaptive)", &format!("{:.1} per s", s.sale.rate), &gauge(&sale_stat(id, "rate")).iter().map(|r| r / 100).collect::<Vec<_>>(), "per s, as the rule chose it"))
                    (card("Saga settle p99 (placed → paid)", &duration(settle_p99.last().copied().filter(|ms| *ms > 0)), &settle_p99, &format!("bucket bound (ms), per minute, all orders: the rate halves above {} ms", shop_domain::sale::admit::SETTLE_P99_TARGET_MS)))
                    (card_class("Stuck sessions", &stuck_here.to_string(), &[], &format!("past their end by over {STUCK_AFTER_SECS} s, not yet ended"), stuck_here > 0))
                }
            }
        }
        @if dlq_depth > 0 {
            p.Failed #waiting-room-dlq { (dlq_depth) " message(s) in the waiting-room DLQ: slots not freed until redriven — "
                a href="/console/queues" { "see the queues" } }
        }
        p.hint { "From the sales' items and the saga statistics (sale.<id>.*). Now " (now.to_rfc3339()) "." }
    })
}

fn state_name(s: &SaleStatus) -> &'static str {
    match s.state {
        shop_domain::sale::SaleState::Scheduled => "scheduled",
        shop_domain::sale::SaleState::Open => "open",
        shop_domain::sale::SaleState::SoldOut => "sold out",
        shop_domain::sale::SaleState::Ended => "ended",
    }
}
