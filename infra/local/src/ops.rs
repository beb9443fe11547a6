//! Operations on a data dir, for `shop dlq`, `shop replay`, `shop republish`
//! and `shop timeline` (they work while `shop up` runs: both processes open
//! the same SQLite file, which serialises their writes).

use crate::emulate::bus::deliveries;
use crate::emulate::queue::{Message, Queues, dlq_of};
use crate::emulate::rules::Rules;
use serde::Serialize;
use serde_json::Value;
use shop_app::App;
use shop_domain::envelope::BusEvent;
use shop_domain::{OrderId, Timestamp};
use std::collections::BTreeSet;

pub use shop_app::events::consumers::NAMES as CONSUMERS;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DlqEntry {
    pub consumer: String,
    pub message_id: String,
    pub event_id: String,
    pub detail_type: String,
    pub order_id: String,
    pub receives: u32,
    pub last_error: Option<String>,
    pub sent_at: String,
}

/// What a queued message carries, as a DLQ listing shows it: the event
/// id, detail type and order of its [`BusEvent`] (empty for a body that is
/// none).
pub(crate) fn carried(body: &str) -> (String, String, String) {
    match serde_json::from_str::<BusEvent<Value>>(body) {
        Ok(e) => {
            let field = |name: &str| e.detail.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
            (field("eventId"), e.detail_type.clone(), field("orderId"))
        }
        Err(_) => Default::default(),
    }
}

pub(crate) fn describe(consumer: &str, m: &Message) -> DlqEntry {
    let (event_id, detail_type, order_id) = carried(&m.body);
    DlqEntry {
        consumer: consumer.to_owned(),
        message_id: m.id.clone(),
        event_id,
        detail_type,
        order_id,
        receives: m.receive_count,
        last_error: m.last_error.clone(),
        sent_at: m.sent_at.to_rfc3339(),
    }
}

pub(crate) fn check_consumer(name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(CONSUMERS.contains(&name), "unknown consumer {name}; one of {CONSUMERS:?}");
    Ok(())
}

/// Messages in the DLQs (of one consumer, or all).
pub async fn dlq_list(app: &App, consumer: Option<&str>) -> anyhow::Result<Vec<DlqEntry>> {
    if let Some(c) = consumer {
        check_consumer(c)?;
    }
    let mut out = Vec::new();
    for c in CONSUMERS.iter().filter(|c| consumer.is_none_or(|x| x == **c)) {
        for m in Queues(&app.store).list(&dlq_of(c)).await? {
            out.push(describe(c, &m));
        }
    }
    Ok(out)
}

/// Moves every message of `consumer`'s DLQ back to its queue, with a fresh
/// receive count (SQS StartMessageMoveTask). Returns how many moved.
pub async fn dlq_redrive(app: &App, consumer: &str) -> anyhow::Result<usize> {
    check_consumer(consumer)?;
    let now = shop_app::clock::Clock::now(&shop_app::clock::SystemClock);
    let messages = Queues(&app.store).list(&dlq_of(consumer)).await?;
    for m in &messages {
        Queues(&app.store).move_message(m, consumer, now, true, true).await?;
    }
    Ok(messages.len())
}

/// Moves the messages of `consumer`'s DLQ that carry one of the `wanted`
/// event ids back to its queue, with a fresh receive count, and leaves the
/// others; answers the event ids moved.
pub async fn dlq_redrive_selected(
    app: &App,
    consumer: &str,
    wanted: &BTreeSet<String>,
) -> anyhow::Result<BTreeSet<String>> {
    check_consumer(consumer)?;
    let now = shop_app::clock::Clock::now(&shop_app::clock::SystemClock);
    let mut moved = BTreeSet::new();
    for m in Queues(&app.store).list(&dlq_of(consumer)).await? {
        let (event_id, _, _) = carried(&m.body);
        if wanted.contains(&event_id) {
            Queues(&app.store).move_message(&m, consumer, now, true, true).await?;
            moved.insert(event_id);
        }
    }
    Ok(moved)
}

#[derive(Debug, Default, Serialize)]
pub struct ReplayReport {
    pub replay_name: String,
    pub events: usize,
    pub deliveries: usize,
}

/// Re-delivers archived events with `from <= time < to` to the consumers
/// whose rules match (or only `consumer`), tagged with `replay-name` as
/// EventBridge replays are.
pub async fn replay(
    app: &App,
    rules: &Rules,
    from: Timestamp,
    to: Timestamp,
    consumer: Option<&str>,
) -> anyhow::Result<ReplayReport> {
    if let Some(c) = consumer {
        check_consumer(c)?;
    }
    let now = shop_app::clock::Clock::now(&shop_app::clock::SystemClock);
    let mut report = ReplayReport { replay_name: format!("shop-replay-{}", now.millis()), ..Default::default() };
    // A page of the archive at a time: a replay of a month holds one page.
    for mut pages in Queues(&app.store).archive(from, to)? {
        while let Some(page) = pages.next_page().await? {
            let mut writes = Vec::new();
            for archived in crate::emulate::queue::archived_in(&page, from, to)? {
                // The archived event, delivered again with an id of its own and the replay's name.
                let mut replayed: BusEvent<Value> = serde_json::from_str(&archived.event)?;
                replayed.id = uuid::Uuid::now_v7().to_string();
                replayed.replay_name = Some(report.replay_name.clone());
                let event = serde_json::to_value(&replayed)?;
                report.events += 1;
                writes.extend(deliveries(rules, &event, consumer, now).into_iter().map(|(_, it)| it));
            }
            report.deliveries += writes.len();
            app.store.batch_put(writes).await?;
        }
    }
    Ok(report)
}

/// The event `version` of `order` as the bus delivers it to `consumer`,
/// tagged with a `replay-name` as a replay is — or `None` when that
/// consumer's rule does not take it.
pub async fn replay_envelope(
    app: &App,
    rules: &Rules,
    order: &OrderId,
    version: u64,
    consumer: &str,
) -> anyhow::Result<Option<(String, Value)>> {
    check_consumer(consumer)?;
    let events = app.store.outbox().events_of(order).await?;
    let wanted = format!("{order}#{version}");
    let Some(e) = events.iter().find(|e| e.event_id == wanted) else {
        anyhow::bail!("order {order} has no event {version}");
    };
    let entry = shop_app::ports::BusEntry {
        source: e.source.clone(),
        detail_type: e.detail_type.clone(),
        detail: e.detail.clone(),
        trace_header: None,
    };
    let now = shop_app::clock::Clock::now(&shop_app::clock::SystemClock);
    let name = format!("shop-replay-{}-{consumer}", now.millis());
    let event =
        crate::emulate::bus::envelope(&uuid::Uuid::now_v7().to_string(), &entry, &now.to_rfc3339(), Some(&name));
    let takes = crate::emulate::rules::consumers_for(rules, &event).contains(&consumer);
    Ok(takes.then_some((name, event)))
}

/// Sends one outbox event of `order` (by its version) to one consumer's
/// local queue ([`replay_envelope`]). The consumer dedupes by event id:
/// replaying what it already did changes nothing. Answers the replay's
/// name, or `None` when the consumer's rule does not take the event.
pub async fn replay_event(
    app: &App,
    rules: &Rules,
    order: &OrderId,
    version: u64,
    consumer: &str,
) -> anyhow::Result<Option<String>> {
    let Some((name, event)) = replay_envelope(app, rules, order, version, consumer).await? else {
        return Ok(None);
    };
    let now = shop_app::clock::Clock::now(&shop_app::clock::SystemClock);
    let writes: Vec<_> = deliveries(rules, &event, Some(consumer), now).into_iter().map(|(_, it)| it).collect();
    app.store.batch_put(writes).await?;
    Ok(Some(name))
}

/// Marks every outbox event written since `since` pending again: the
/// publisher sends each once more (consumers dedupe by event id). The
/// recovery path when a stream's OnFailure destination got only metadata.
pub async fn republish(app: &App, since: Timestamp) -> anyhow::Result<usize> {
    republish_between(app, since, None).await
}

/// As [`republish`], for the events that occurred in `[from, to]` (`to`:
/// none, up to now).
pub async fn republish_between(app: &App, from: Timestamp, to: Option<Timestamp>) -> anyhow::Result<usize> {
    // The event log is dated by the app's clock (an event's occurredAt).
    let now = app.clock.now();
    let mut marked = 0;
    // A page at a time; the publisher sends pending events oldest first,
    // whatever order they are marked in.
    for mut pages in app.store.outbox().log(from, now.plus_secs(86_400))? {
        while let Some(page) = pages.next_page().await? {
            for it in &page {
                let e = shop_store::outbox::codec::from_item(it)?;
                if to.is_none_or(|to| e.occurred_at <= to) {
                    app.store.outbox().mark_pending(&e).await?;
                    marked += 1;
                }
            }
        }
    }
    Ok(marked)
}

/// Parses `2026-11-21T10:00:00Z`, or a number of seconds ago written `-600s`/`-10m`/`-2h`/`-1d`.
pub fn parse_time(s: &str, now: Timestamp) -> anyhow::Result<Timestamp> {
    if let Some(t) = Timestamp::parse_rfc3339(s) {
        return Ok(t);
    }
    let rel = s.strip_prefix('-').ok_or_else(|| anyhow::anyhow!("{s}: use RFC 3339 or -<n>s|m|h|d"))?;
    let (n, unit) = rel.split_at(rel.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| anyhow::anyhow!("{s}: use RFC 3339 or -<n>s|m|h|d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => anyhow::bail!("{s}: unit is s, m, h or d"),
    };
    Ok(now.plus_secs(-secs))
}

/// An order's saga: its events and what every consumer did with each.
pub async fn timeline(app: &App, order: &OrderId) -> anyhow::Result<Value> {
    shop_app::usecases::timeline::timeline(app, order).await
}
