//! The event bus port: EventBridge `PutEvents` semantics. A call can succeed
//! as a whole and still fail some entries (`FailedEntryCount`), so the
//! result is per entry, in request order.

/// One event for the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusEntry {
    pub source: String,
    pub detail_type: String,
    /// JSON text of the detail (the outbox item's `detail`).
    pub detail: String,
    /// X-Ray trace header, when the write that produced the event had one.
    pub trace_header: Option<String>,
}

impl BusEntry {
    /// Size as EventBridge counts it toward the 256 KB request limit.
    pub fn size(&self) -> usize {
        self.source.len() + self.detail_type.len() + self.detail.len() + 64
    }
}

/// The outcome of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryResult {
    Accepted { event_id: String },
    Failed { code: String, message: String },
}

/// EventBridge's limits on one PutEvents call.
pub const MAX_ENTRIES: usize = 10;
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

#[async_trait::async_trait]
pub trait EventBus: Send + Sync {
    /// Puts at most [`MAX_ENTRIES`] entries; one result per entry, in order.
    /// `Err` means the call itself failed (nothing is known to be accepted).
    async fn put_events(&self, entries: &[BusEntry]) -> anyhow::Result<Vec<EntryResult>>;
}

/// Splits entries into PutEvents calls of at most 10 entries and 256 KB.
pub fn batches(entries: &[BusEntry]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, e) in entries.iter().enumerate() {
        let full = i - start == MAX_ENTRIES || (i > start && bytes + e.size() > MAX_REQUEST_BYTES);
        if full {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += e.size();
    }
    if start < entries.len() {
        out.push(start..entries.len());
    }
    out
}

#[cfg(feature = "aws")]
pub mod aws {
    //! Amazon EventBridge.
    use super::{BusEntry, EntryResult, EventBus};
    use aws_sdk_eventbridge::types::PutEventsRequestEntry;

    pub struct EventBridgeBus {
        pub client: aws_sdk_eventbridge::Client,
        pub bus_name: String,
    }

    #[async_trait::async_trait]
    impl EventBus for EventBridgeBus {
        async fn put_events(&self, entries: &[BusEntry]) -> anyhow::Result<Vec<EntryResult>> {
            let request: Vec<PutEventsRequestEntry> = entries
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus_name)
                        .source(&e.source)
                        .detail_type(&e.detail_type)
                        .detail(&e.detail)
                        .set_trace_header(e.trace_header.clone())
                        .build()
                })
                .collect();
            // DisplayErrorContext: the SDK error's own Display is only "service error".
            let out =
                self.client.put_events().set_entries(Some(request)).send().await.map_err(|e| {
                    anyhow::anyhow!("PutEvents: {}", aws_sdk_eventbridge::error::DisplayErrorContext(e))
                })?;
            let results: Vec<EntryResult> = out
                .entries()
                .iter()
                .map(|r| match (r.event_id(), r.error_code()) {
                    (Some(id), None) => EntryResult::Accepted { event_id: id.to_owned() },
                    (_, code) => EntryResult::Failed {
                        code: code.unwrap_or("Unknown").to_owned(),
                        message: r.error_message().unwrap_or_default().to_owned(),
                    },
                })
                .collect();
            anyhow::ensure!(
                results.len() == entries.len(),
                "PutEvents answered {} of {} entries",
                results.len(),
                entries.len()
            );
            Ok(results)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(detail_len: usize) -> BusEntry {
        BusEntry { source: "s".into(), detail_type: "t".into(), detail: "x".repeat(detail_len), trace_header: None }
    }

    #[test]
    fn batches_respect_count_and_size() {
        let small: Vec<_> = (0..23).map(|_| entry(10)).collect();
        assert_eq!(batches(&small), vec![0..10, 10..20, 20..23]);
        let big: Vec<_> = (0..5).map(|_| entry(100 * 1024)).collect();
        assert_eq!(batches(&big), vec![0..2, 2..4, 4..5]);
        assert!(batches(&[]).is_empty());
    }
}
