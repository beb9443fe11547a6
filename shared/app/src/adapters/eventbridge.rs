//! The Amazon EventBridge adapter of [`EventBus`](crate::ports::EventBus).

use crate::ports::{BusEntry, EntryResult, EventBus};
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
        let out = self
            .client
            .put_events()
            .set_entries(Some(request))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("PutEvents: {}", aws_sdk_eventbridge::error::DisplayErrorContext(e)))?;
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
