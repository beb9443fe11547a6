//! Overview: the saga at a glance over a chosen range — orders per status,
//! throughput, time to settle, the PG, the queues, the outbox — as small
//! charts that refresh themselves. Everything comes from the saga
//! statistics (one small item per minute and shard, docs/adr/0017): the
//! page reads the minutes of its range, never the orders, so it costs the
//! same with 100,000 orders as with ten.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, PreEscaped, html};
use shop_app::obs::stats::{
    self, EVENTS, OUTBOX_AGE_MS, OUTBOX_PENDING, PG_CALLS, PG_DECLINED, PG_FAILED, PG_MS, QUEUE, STATUS,
};
use shop_domain::OrderStatus;
use shop_store::stats::Values;

use super::shell;
use crate::console::ConsoleState;
use crate::emulate::queue::dlq_of;

/// The ranges one can pick: (query value, minutes, refresh seconds).
const RANGES: [(&str, i64, u32); 4] = [("15m", 15, 5), ("1h", 60, 5), ("6h", 360, 30), ("24h", 1_440, 30)];

#[derive(serde::Deserialize, Default)]
pub struct Range {
    #[serde(default)]
    range: Option<String>,
}

fn range_of(r: &Range) -> (&'static str, i64, u32) {
    let wanted = r.range.as_deref().unwrap_or("1h");
    RANGES.into_iter().find(|(name, _, _)| *name == wanted).unwrap_or(("1h", 60, 5))
}

/// The page: the range picker and the charts, which reload themselves.
pub async fn page(State(state): State<Arc<ConsoleState>>, Query(r): Query<Range>) -> Response {
    let (name, _, refresh) = range_of(&r);
    match charts(&state, &r).await {
        Ok(body) => shell::page(
            &state,
            "Overview",
            html! {
                form.search method="get" action="/console/overview" {
                    label for="range" { "Range" }
                    select #range name="range" onchange="this.form.submit()" {
                        @for (n, _, _) in RANGES { option value=(n) selected[n == name] { "last " (n) } }
                    }
                    noscript { button type="submit" { "Show" } }
                    span.hint { "refreshes every " (refresh) " s" }
                }
                div #charts hx-get={ "/console/overview/charts?range=" (name) } hx-trigger={ "every " (refresh) "s" } {
                    (body)
                }
            },
        )
        .into_response(),
        Err(e) => shell::error(&state, &e),
    }
}

/// The charts alone (what the page polls).
pub async fn live(State(state): State<Arc<ConsoleState>>, Query(r): Query<Range>) -> Response {
    match charts(&state, &r).await {
        Ok(m) => axum::response::Html(m.into_string()).into_response(),
        Err(e) => shell::error(&state, &e),
    }
}

/// One value per minute of the range, oldest first.
pub(crate) struct Series {
    minutes: Vec<i64>,
    by_minute: BTreeMap<i64, Values>,
}

impl Series {
    /// The statistics of the last `minutes` minutes up to `now`: one range read.
    pub(crate) async fn read(app: &shop_app::App, now: shop_domain::Timestamp, minutes: i64) -> anyhow::Result<Series> {
        let from = now.plus_secs(-(minutes - 1) * 60);
        let by_minute = app.store.stats().between(from, now).await?;
        let first = shop_store::stats::minute_of(from);
        Ok(Series { minutes: (0..minutes).map(|i| first + i * 60_000).collect(), by_minute })
    }

    pub(crate) fn counter(&self, name: &str) -> Vec<i64> {
        self.minutes.iter().map(|m| self.by_minute.get(m).and_then(|v| v.get(name)).copied().unwrap_or(0)).collect()
    }

    /// A sampled gauge, carried forward over minutes without a sample.
    pub(crate) fn gauge(&self, name: &str) -> Vec<i64> {
        let mut last = 0;
        self.minutes
            .iter()
            .map(|m| {
                if let Some(v) = self.by_minute.get(m).and_then(|v| v.get(name)) {
                    last = *v;
                }
                last
            })
            .collect()
    }

    /// The time to settle (placed → paid) at quantile `q`, per minute:
    /// the bound of the minute's histogram bucket, 0 in a minute without a payment.
    pub(crate) fn settle(&self, q: f64) -> Vec<i64> {
        self.minutes
            .iter()
            .map(|m| {
                self.by_minute.get(m).and_then(|v| stats::settle_quantile(v, q)).map(|v| v.min(86_400_000)).unwrap_or(0)
            })
            .collect()
    }

    fn sum(&self, name: &str) -> i64 {
        self.counter(name).iter().sum()
    }

    /// Every minute's values summed (for the range's quantiles).
    fn merged(&self) -> Values {
        let mut out = Values::new();
        for v in self.by_minute.values() {
            for (k, n) in v {
                *out.entry(k.clone()).or_default() += n;
            }
        }
        out
    }
}

async fn charts(state: &ConsoleState, r: &Range) -> anyhow::Result<Markup> {
    let (_, minutes, _) = range_of(r);
    let app = &state.app;
    // The PG calls this process counted and holds (up to a second) are read with the rest.
    app.flush_stats().await;
    let now = app.clock.now();
    let series = Series::read(app, now, minutes).await?;
    let totals = app.store.stats().totals().await?;

    // Orders per status at each minute: the total now, less what changed after.
    let statuses: Vec<(OrderStatus, i64, Vec<i64>)> = OrderStatus::ALL
        .into_iter()
        .map(|s| {
            let name = format!("{STATUS}{}", s.as_str());
            let now_total = totals.get(&name).copied().unwrap_or(0);
            let deltas = series.counter(&name);
            let mut at = Vec::with_capacity(deltas.len());
            let mut value = now_total;
            for d in deltas.iter().rev() {
                at.push(value);
                value -= d;
            }
            at.reverse();
            (s, now_total, at)
        })
        .collect();

    let settled = series.counter(&format!("{EVENTS}OrderPaid"));
    let placed = series.counter(&format!("{EVENTS}OrderPlaced"));
    let ended: Vec<i64> = ["OrderExpired", "OrderCancelled", "OrderRefunded"]
        .iter()
        .map(|t| series.counter(&format!("{EVENTS}{t}")))
        .fold(vec![0; series.minutes.len()], |acc, s| acc.iter().zip(s).map(|(a, b)| a + b).collect());
    let p50 = series.settle(0.5);
    let p99 = series.settle(0.99);
    let merged = series.merged();
    let calls = series.counter(PG_CALLS);
    let failed = series.counter(PG_FAILED);
    let pg_ms = series.sum(PG_MS);
    let pg_calls = series.sum(PG_CALLS);

    // Right now: the outbox and the queues, read live. The outbox's backlog
    // is the local stream emulation's index; a deployed stack's is its
    // stream's iterator age (CloudWatch), which the console does not read.
    let outbox = match state.stack {
        Some(_) => None,
        None => Some(app.store.outbox().pending_summary(stats::PENDING_CAP).await?),
    };
    let oldest_age = outbox.and_then(|(_, _, oldest)| oldest).map(|t| now.millis().saturating_sub(t.millis()).max(0));
    // Counted up to the cap per shard: past it, "at least".
    let pending_text = match outbox {
        Some((pending, true, _)) => format!("{pending}+"),
        Some((pending, false, _)) => pending.to_string(),
        None => "see the stream's IteratorAge".to_owned(),
    };
    let depths = crate::console::queues::depths(state).await?;
    let mut queue_rows = Vec::new();
    for c in shop_app::events::consumers::NAMES {
        let mut row = Vec::new();
        for q in [c.to_string(), dlq_of(c)] {
            let depth = depths.iter().find(|(name, _)| *name == q).map(|(_, d)| *d);
            row.push((q.clone(), depth, series.gauge(&format!("{QUEUE}{q}"))));
        }
        queue_rows.push((c, row));
    }

    let xs = &series.minutes;
    let dlq_now: u64 = depths.iter().filter(|(n, _)| n.ends_with("-dlq")).map(|(_, d)| d.messages).sum();
    let settle_now = |q| at_most(stats::settle_quantile(&merged, q));
    let in_range = |name: &str| series.sum(&format!("{EVENTS}{name}"));
    let status_series: Vec<(String, Vec<i64>)> = statuses
        .iter()
        .filter(|(_, total, at)| *total > 0 || at.iter().any(|v| *v != 0))
        .map(|(s, _, at)| (s.as_str().to_owned(), at.clone()))
        .collect();
    let queue_series = |dlq: bool| -> Vec<(String, Vec<i64>)> {
        queue_rows
            .iter()
            .flat_map(|(_, row)| row.iter())
            .filter(|(q, _, _)| q.ends_with("-dlq") == dlq)
            .map(|(q, _, s)| (q.clone(), s.clone()))
            .collect()
    };
    Ok(html! {
        section.stats #totals {
            (stat("Settled (paid)", &in_range("OrderPaid").to_string(), "in range", false))
            (stat("Placed", &in_range("OrderPlaced").to_string(), "in range", false))
            (stat("Expired, cancelled, refunded", &ended.iter().sum::<i64>().to_string(), "in range", false))
            (stat("Time to settle p50 / p99", &format!("{} / {}", settle_now(0.5), settle_now(0.99)), "placed → paid, over the range", false))
            (stat("PG calls", &pg_calls.to_string(), &format!("in range, avg {}", if pg_calls > 0 { format!("{} ms", pg_ms / pg_calls) } else { "—".into() }), false))
            (stat("PG failures / declines", &format!("{} / {}", series.sum(PG_FAILED), series.sum(PG_DECLINED)), "in range (failure: outcome unknown)", series.sum(PG_FAILED) > 0))
            (stat("DLQ messages", &dlq_now.to_string(), "now, all consumers", dlq_now > 0))
            (stat("Oldest pending event", &duration(oldest_age), &format!("{pending_text} pending publication"), oldest_age.is_some_and(|a| a > 60_000)))
        }
        section.charts {
            (chart("chart-orders", "Orders per minute", Unit::Count, xs, &[("placed", placed.clone()), ("settled (paid)", settled.clone()), ("expired, cancelled, refunded", ended.clone())]))
            (chart("chart-settle", "Time to settle (placed → paid), per minute", Unit::Ms, xs, &[("p50", p50.clone()), ("p99", p99.clone())]))
            (chart("chart-pg", "PG calls per minute", Unit::Count, xs, &[("calls", calls.clone()), ("declined", series.counter(PG_DECLINED)), ("failed (outcome unknown)", failed.clone())]))
            (chart("chart-status", "Orders per status", Unit::Count, xs, &status_series))
            (chart("chart-queues", "Queue depth (sampled)", Unit::Count, xs, &queue_series(false)))
            (chart("chart-dlqs", "DLQ depth (sampled)", Unit::Count, xs, &queue_series(true)))
            (chart("chart-outbox", "Oldest event waiting for the publisher (sampled)", Unit::Ms, xs, &[("age", series.gauge(OUTBOX_AGE_MS))]))
            (chart("chart-pending", "Events pending publication (sampled)", Unit::Count, xs, &[("pending", series.gauge(OUTBOX_PENDING))]))
        }
        p.hint { "Time to settle is the upper bound of the histogram bucket the quantile falls in (0 in a minute without a payment). Hover a chart for the values of a minute; the charts pause their refresh meanwhile." }
        h2 { "Orders per status" }
        table #statuses {
            tr { th { "status" } th.num { "now" } th { "over the range" } }
            @for (s, total, at) in &statuses { tr id={ "status-" (s.as_str()) } {
                td { a href={ "/console/orders?status=" (s.as_str()) } { (s.as_str()) } }
                td.num { (total) }
                td { (spark(at)) }
            } }
        }
        h2 { "Queues" }
        table #queue-depths {
            tr { th { "consumer" } th.num { "queue now" } th { "over the range" } th.num { "DLQ now" } th { "over the range" } }
            @for (c, row) in &queue_rows { tr {
                td { a href="/console/queues" { (c) } }
                @for (q, depth, series) in row {
                    @let shown = depth.map(|d| d.to_string()).unwrap_or_else(|| "—".into());
                    @if q.ends_with("-dlq") && depth.is_some_and(|d| d.messages > 0) { td.num.Failed { (shown) } }
                    @else { td.num { (shown) } }
                    td { (spark(series)) }
                }
            } }
        }
        p.hint { "From the saga statistics: counters per minute written as events are first published and PG calls made; queue depths and the outbox sampled every 10 s by the local stack (in AWS, the outbox once a minute by expire-orders; queue history is on the CloudWatch dashboard) (docs/adr/0017). Now " (now.to_rfc3339()) "." }
    })
}

/// A chart's unit: how its axis and legend write a value.
#[derive(Clone, Copy)]
enum Unit {
    Count,
    Ms,
}

/// A figure of the range, with what it counts.
fn stat(title: &str, value: &str, note: &str, bad: bool) -> Markup {
    html! {
        div.stat {
            div.title { (title) }
            div.value.Failed[bad] { (value) }
            div.hint { (note) }
        }
    }
}

/// A time series chart over the range's minutes: drawn by uPlot
/// (`assets/charts.js`) with a time axis, a value axis in `unit` and the
/// values under the cursor; the series as JSON in `data-chart`, and,
/// without script, a sparkline of the first series.
fn chart(id: &str, title: &str, unit: Unit, minutes: &[i64], series: &[(impl AsRef<str>, Vec<i64>)]) -> Markup {
    let spec = serde_json::json!({
        "unit": match unit { Unit::Count => "count", Unit::Ms => "ms" },
        "x": minutes.iter().map(|m| m / 1000).collect::<Vec<_>>(),
        "series": series.iter().map(|(label, values)| serde_json::json!({ "label": label.as_ref(), "values": values })).collect::<Vec<_>>(),
    });
    let first = series.first().map(|(_, v)| v.as_slice()).unwrap_or(&[]);
    html! {
        div.chart id=(id) data-chart=(spec.to_string()) {
            div.title { (title) }
            div.plot { (spark(first)) }
        }
    }
}

/// A quantile from the histogram: at most its bucket's bound.
fn at_most(ms: Option<i64>) -> String {
    match ms {
        Some(i64::MAX) | None => duration(ms),
        Some(_) => format!("≤ {}", duration(ms)),
    }
}

pub(crate) fn duration(ms: Option<i64>) -> String {
    match ms {
        None => "—".into(),
        Some(i64::MAX) => "> 1 day".into(),
        Some(ms) if ms < 1_000 => format!("{ms} ms"),
        Some(ms) if ms < 120_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) if ms < 7_200_000 => format!("{:.1} min", ms as f64 / 60_000.0),
        Some(ms) => format!("{:.1} h", ms as f64 / 3_600_000.0),
    }
}

pub(crate) fn card(title: &str, value: &str, series: &[i64], note: &str) -> Markup {
    card_class(title, value, series, note, false)
}

pub(crate) fn card_class(title: &str, value: &str, series: &[i64], note: &str, bad: bool) -> Markup {
    html! {
        div.card {
            div.title { (title) }
            @if bad { div.value.Failed { (value) } } @else { div.value { (value) } }
            (spark(series))
            div.hint { (note) ", max " (series.iter().max().copied().unwrap_or(0)) }
        }
    }
}

/// A sparkline: the series as an inline SVG polyline (no script); its
/// values, oldest first, in `data-values` for readers and tests.
fn spark(values: &[i64]) -> Markup {
    const W: f64 = 220.0;
    const H: f64 = 36.0;
    let top = values.iter().copied().max().unwrap_or(0);
    let max = top.max(1) as f64;
    let min = values.iter().copied().min().unwrap_or(0).min(0) as f64;
    let step = if values.len() > 1 { W / (values.len() - 1) as f64 } else { W };
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", i as f64 * step, H - 2.0 - (*v as f64 - min) / (max - min) * (H - 4.0)))
        .collect();
    let last = values.last().copied().unwrap_or(0);
    PreEscaped(format!(
        r#"<svg class="spark" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="latest {last}, max {top}" data-values="{}"><polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{}"/></svg>"#,
        values.iter().map(i64::to_string).collect::<Vec<_>>().join(","),
        points.join(" ")
    ))
}
