//! The local event bus: PutEvents semantics over the store. Each accepted
//! entry becomes an EventBridge event (envelope with `id`, `time`,
//! `detail-type`, `source`, `detail`), is added to the archive and is sent
//! to the durable queue of every consumer whose rule (events/rules.json)
//! matches, in batched writes. A test hook makes the next N entries fail, as EventBridge does
//! with `FailedEntryCount`.

use crate::emulate::queue::{archive_item, new_message};
use crate::emulate::rules::{Rules, consumers_for};
use serde_json::Value;
use shop_app::clock::Clock;
use shop_app::ports::{BusEntry, EntryResult, EventBus};
use shop_domain::Timestamp;
use shop_domain::envelope::BusEvent;
use shop_store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub struct LocalBus {
    store: Store,
    rules: Rules,
    clock: Arc<dyn Clock>,
    fail_next: AtomicI64,
    /// Entries received, failed included (tests compare with what was published).
    pub entries_seen: AtomicU64,
    pub entries_failed: AtomicU64,
    /// Changes whenever messages were enqueued: the consumer loops wake on it.
    enqueued: tokio::sync::watch::Sender<u64>,
}

/// The EventBridge event a rule target receives ([`BusEvent`], as JSON: the
/// rules match on it, the queues carry it).
pub fn envelope(id: &str, entry: &BusEntry, time: &str, replay_name: Option<&str>) -> Value {
    let event = BusEvent {
        version: "0".into(),
        id: id.to_owned(),
        detail_type: entry.detail_type.clone(),
        source: entry.source.clone(),
        account: "000000000000".into(),
        time: time.to_owned(),
        region: "local".into(),
        resources: vec![],
        detail: serde_json::from_str::<Value>(&entry.detail).unwrap_or(Value::Null),
        replay_name: replay_name.map(str::to_owned),
    };
    serde_json::to_value(event).unwrap_or(Value::Null)
}

impl LocalBus {
    pub fn new(store: Store, rules: Rules, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            rules,
            clock,
            fail_next: AtomicI64::new(0),
            entries_seen: AtomicU64::new(0),
            entries_failed: AtomicU64::new(0),
            enqueued: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Changes whenever this bus enqueued messages for the consumers.
    pub fn enqueued(&self) -> tokio::sync::watch::Receiver<u64> {
        self.enqueued.subscribe()
    }

    fn announce(&self) {
        self.enqueued.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Test hook: the next `n` entries are refused (`InternalFailure`).
    pub fn fail_next_entries(&self, n: i64) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    fn take_failure(&self) -> bool {
        self.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n > 0).then(|| n - 1)).is_ok()
    }

    /// Sends an event to the queue of every consumer whose rule matches (or
    /// only `only`'s); returns the consumers it went to.
    pub async fn route(&self, event: &Value, only: Option<&str>) -> anyhow::Result<Vec<String>> {
        let (sent, writes): (Vec<String>, Vec<_>) = deliveries(&self.rules, event, only, self.clock.now())
            .into_iter()
            .map(|(c, it)| (c.to_owned(), it))
            .unzip();
        self.store.batch_put(writes).await?;
        if !sent.is_empty() {
            self.announce();
        }
        Ok(sent)
    }
}

/// One new queue message per consumer whose rule matches `event` (only
/// `only`, if given): what EventBridge's rule targets receive. The bus,
/// its replays and `shop replay` all enqueue through this.
pub fn deliveries<'r>(
    rules: &'r Rules,
    event: &Value,
    only: Option<&str>,
    now: Timestamp,
) -> Vec<(&'r str, shop_store::attr::Item)> {
    let text = event.to_string();
    consumers_for(rules, event)
        .into_iter()
        .filter(|c| only.is_none_or(|o| o == *c))
        .map(|c| (c, new_message(c, &text, now).1))
        .collect()
}

#[async_trait::async_trait]
impl EventBus for LocalBus {
    /// Archives every accepted entry and enqueues it for each consumer whose
    /// rule matches, all in BatchWriteItem calls (one per 25 items, not one
    /// call per archive entry and per queue). If the writes fail the whole
    /// call fails and the publisher sends the entries again: consumers
    /// dedupe by event id, as they must for EventBridge's at-least-once.
    async fn put_events(&self, entries: &[BusEntry]) -> anyhow::Result<Vec<EntryResult>> {
        let mut results = Vec::with_capacity(entries.len());
        let mut writes = Vec::new();
        let now = self.clock.now();
        for entry in entries {
            self.entries_seen.fetch_add(1, Ordering::SeqCst);
            if self.take_failure() {
                self.entries_failed.fetch_add(1, Ordering::SeqCst);
                results.push(EntryResult::Failed {
                    code: "InternalFailure".into(),
                    message: "injected by the test hook".into(),
                });
                continue;
            }
            let id = uuid::Uuid::now_v7().to_string();
            let event = envelope(&id, entry, &now.to_rfc3339(), None);
            // The detail as the envelope already parsed it.
            let event_id =
                event.get("detail").and_then(|d| d.get("eventId")).and_then(Value::as_str).unwrap_or_default();
            let event_id = event_id.to_owned();
            writes.push(archive_item(&event_id, &entry.detail_type, &event.to_string(), now));
            writes.extend(deliveries(&self.rules, &event, None, now).into_iter().map(|(_, it)| it));
            results.push(EntryResult::Accepted { event_id: id });
        }
        self.store.batch_put(writes).await?;
        self.announce();
        Ok(results)
    }
}
