//! `shop … --stack NAME`: the operations of [`super::ops`] against a
//! deployed stack. Every resource is resolved from the stack's outputs
//! (`infra/template.yaml`), credentials and region from the usual AWS chain
//! (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL` for emulators).
//!
//! - `shop dlq list`: peeks at a consumer's DLQ (received with a visibility
//!   timeout of 0, so nothing is consumed; SQS counts the peek as a receive).
//! - `shop dlq redrive`: SQS `StartMessageMoveTask` back to the consumer's
//!   queue, followed until it ends; where the API is missing (an emulator,
//!   an old endpoint), the same move by receive → send → delete, deleting
//!   only what was sent.
//! - `shop replay`: EventBridge `StartReplay` from the stack's archive to its
//!   bus (one consumer: its rule as the filter), followed until it ends.
//! - `shop console --stack`: the console's queues (depths, peeked DLQs,
//!   redrive, one event sent to one consumer's queue) — see `crate::console`.
//! - `shop republish --from-failure-queue`: each OnFailure record of the
//!   stream publisher names a shard and a sequence range; the outbox events
//!   in that window (read back from the table's stream) are marked pending
//!   again, and the record is deleted once they are. Past the stream's 24
//!   hours the window is taken by time instead (the record's arrival times,
//!   a minute either side) from the outbox's event log.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_sqs::error::ProvideErrorMetadata as _;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, MessageSystemAttributeNameForSends,
    MessageSystemAttributeValue, SendMessageBatchRequestEntry,
};
use serde::Serialize;
use serde_json::Value;
use shop_app::App;
use shop_domain::Timestamp;

use super::ops::{CONSUMERS, DlqEntry, check_consumer};

/// A deployed stack: its outputs and the SDK configuration to reach it.
pub struct DeployedStack {
    pub name: String,
    outputs: HashMap<String, String>,
    sdk: aws_config::SdkConfig,
}

/// The name a consumer's outputs start with (`analytics` → `Analytics`).
fn pascal(consumer: &str) -> String {
    consumer
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

impl DeployedStack {
    /// Reads the stack's outputs (CloudFormation `DescribeStacks`).
    pub async fn resolve(name: &str) -> anyhow::Result<Self> {
        let sdk = shop_app::adapters::aws::sdk_config().await;
        let cfn = aws_sdk_cloudformation::Client::new(&sdk);
        let out = cfn.describe_stacks().stack_name(name).send().await.with_context(|| format!("stack {name}"))?;
        let stack = out.stacks().first().ok_or_else(|| anyhow::anyhow!("no stack {name}"))?;
        let outputs = stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect();
        Ok(Self { name: name.to_owned(), outputs, sdk })
    }

    fn output(&self, key: &str) -> anyhow::Result<&str> {
        self.outputs.get(key).map(String::as_str).ok_or_else(|| {
            anyhow::anyhow!(
                "stack {} has no output {key} (deployed from an older template? `sam deploy` again)",
                self.name
            )
        })
    }

    /// The app over the stack's table.
    pub async fn app(&self) -> anyhow::Result<App> {
        shop_app::adapters::aws::app_for_table(self.output("TableName")?).await
    }

    fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    fn events(&self) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&self.sdk)
    }

    fn queue_url(&self, consumer: &str) -> anyhow::Result<&str> {
        self.output(&format!("{}QueueUrl", pascal(consumer)))
    }

    fn dlq_url(&self, consumer: &str) -> anyhow::Result<&str> {
        self.output(&format!("{}DlqUrl", pascal(consumer)))
    }

    async fn queue_arn(&self, url: &str) -> anyhow::Result<String> {
        let out = self
            .sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .with_context(|| format!("GetQueueAttributes {url}"))?;
        out.attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("{url} has no QueueArn"))
    }

    async fn bus_arn(&self) -> anyhow::Result<String> {
        if let Ok(arn) = self.output("EventBusArn") {
            return Ok(arn.to_owned());
        }
        let out = self.events().describe_event_bus().name(self.output("EventBusName")?).send().await?;
        out.arn().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("the event bus has no ARN"))
    }

    /// The archive: the `ArchiveArn` output, else the one archive of the
    /// stack's bus (a stack whose archive was made outside CloudFormation).
    async fn archive_arn(&self, bus_arn: &str) -> anyhow::Result<String> {
        if let Ok(arn) = self.output("ArchiveArn") {
            return Ok(arn.to_owned());
        }
        let listed = self.events().list_archives().event_source_arn(bus_arn).send().await?;
        let names: Vec<&str> = listed.archives().iter().filter_map(|a| a.archive_name()).collect();
        let [name] = names.as_slice() else {
            anyhow::bail!("stack {} has no ArchiveArn output and its bus has {} archives", self.name, names.len());
        };
        let described = self.events().describe_archive().archive_name(*name).send().await?;
        described.archive_arn().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("archive {name} has no ARN"))
    }
}

impl DeployedStack {
    /// Messages in a consumer's queue (or its DLQ): SQS's approximate
    /// counts of the visible ones and of those in flight.
    pub async fn queue_depth(&self, consumer: &str, dlq: bool) -> anyhow::Result<(u64, u64)> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let url = if dlq { self.dlq_url(consumer)? } else { self.queue_url(consumer)? };
        let out = self
            .sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .with_context(|| format!("GetQueueAttributes {url}"))?;
        let n = |name: A| out.attributes().and_then(|a| a.get(&name)).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok((n(A::ApproximateNumberOfMessages), n(A::ApproximateNumberOfMessagesNotVisible)))
    }

    /// Sends one EventBridge event (as a rule target receives it) to a
    /// consumer's queue: replaying one event to one consumer.
    pub async fn send_to_queue(&self, consumer: &str, event: &Value) -> anyhow::Result<()> {
        check_consumer(consumer)?;
        let url = self.queue_url(consumer)?;
        self.sqs()
            .send_message()
            .queue_url(url)
            .message_body(event.to_string())
            .send()
            .await
            .with_context(|| format!("SendMessage {url}"))?;
        Ok(())
    }
}

/// How long one SQS receive waits (long polling asks every server, so a
/// small queue is not reported empty by a sampled one).
const RECEIVE_WAIT_SECS: i32 = 1;

/// The DLQ messages of one consumer (or all), peeked: at most `limit` each.
pub async fn dlq_list(stack: &DeployedStack, consumer: Option<&str>, limit: usize) -> anyhow::Result<Vec<DlqEntry>> {
    if let Some(c) = consumer {
        check_consumer(c)?;
    }
    let mut out = Vec::new();
    for c in CONSUMERS.iter().filter(|c| consumer.is_none_or(|x| x == **c)) {
        let url = stack.dlq_url(c)?;
        let mut seen = BTreeSet::new();
        while seen.len() < limit {
            let got = stack
                .sqs()
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(0)
                .wait_time_seconds(RECEIVE_WAIT_SECS)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .with_context(|| format!("ReceiveMessage {url}"))?;
            let mut fresh = 0;
            for m in got.messages() {
                let id = m.message_id().unwrap_or_default().to_owned();
                if seen.len() < limit && seen.insert(id.clone()) {
                    fresh += 1;
                    out.push(describe(c, &id, m));
                }
            }
            // Nothing new: every message has been seen (or there are none).
            if fresh == 0 {
                break;
            }
        }
    }
    Ok(out)
}

fn describe(consumer: &str, id: &str, m: &aws_sdk_sqs::types::Message) -> DlqEntry {
    let (event_id, detail_type, order_id) = crate::ops::carried(m.body().unwrap_or_default());
    let attr = |name: MessageSystemAttributeName| m.attributes().and_then(|a| a.get(&name)).cloned();
    let sent = attr(MessageSystemAttributeName::SentTimestamp)
        .and_then(|t| t.parse::<i64>().ok())
        .map(|ms| Timestamp::from_millis(ms).to_rfc3339())
        .unwrap_or_default();
    DlqEntry {
        consumer: consumer.to_owned(),
        message_id: id.to_owned(),
        event_id,
        detail_type,
        order_id,
        receives: attr(MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|n| n.parse().ok())
            .unwrap_or_default(),
        // SQS keeps no error with the message; the consumer's log has it
        // (search its log group by the order id).
        last_error: None,
        sent_at: sent,
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedriveReport {
    pub consumer: String,
    pub moved: u64,
    /// `StartMessageMoveTask`, or `receive-send-delete` where it is missing.
    pub method: String,
    pub task_handle: Option<String>,
    pub status: String,
}

/// Moves the consumer's DLQ back to its queue.
pub async fn dlq_redrive(stack: &DeployedStack, consumer: &str) -> anyhow::Result<RedriveReport> {
    check_consumer(consumer)?;
    let dlq_arn = stack.queue_arn(stack.dlq_url(consumer)?).await?;
    let queue_arn = stack.queue_arn(stack.queue_url(consumer)?).await?;
    let sqs = stack.sqs();
    match sqs.start_message_move_task().source_arn(&dlq_arn).destination_arn(&queue_arn).send().await {
        Ok(started) => {
            let handle = started.task_handle().map(str::to_owned);
            let (status, moved) = follow_move_task(&sqs, &dlq_arn, handle.as_deref()).await?;
            Ok(RedriveReport {
                consumer: consumer.to_owned(),
                moved,
                method: "StartMessageMoveTask".into(),
                task_handle: handle,
                status,
            })
        }
        Err(e) if api_missing(&e) => {
            tracing::info!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "no StartMessageMoveTask here; moving by receive, send, delete");
            let moved = move_by_hand(&sqs, stack.dlq_url(consumer)?, stack.queue_url(consumer)?).await?;
            Ok(RedriveReport {
                consumer: consumer.to_owned(),
                moved,
                method: "receive-send-delete".into(),
                task_handle: None,
                status: "COMPLETED".into(),
            })
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("StartMessageMoveTask from {dlq_arn}"))),
    }
}

/// Whether the endpoint lacks the operation (rather than refusing this call).
fn api_missing<E: aws_sdk_sqs::error::ProvideErrorMetadata, R>(e: &aws_sdk_sqs::error::SdkError<E, R>) -> bool {
    let code = e.code().unwrap_or_default();
    let message = e.message().unwrap_or_default().to_ascii_lowercase();
    matches!(code, "InvalidAction" | "UnsupportedOperation" | "UnknownOperationException" | "NotImplemented")
        || message.contains("not implemented")
        || message.contains("not supported")
        || message.contains("unknown operation")
}

/// Polls `ListMessageMoveTasks` until the task ends; its status and the
/// messages it moved.
async fn follow_move_task(
    sqs: &aws_sdk_sqs::Client,
    source_arn: &str,
    handle: Option<&str>,
) -> anyhow::Result<(String, u64)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15 * 60);
    loop {
        let listed = sqs.list_message_move_tasks().source_arn(source_arn).max_results(10).send().await?;
        let task = listed.results().iter().find(|t| handle.is_none() || t.task_handle() == handle);
        if let Some(t) = task {
            let status = t.status().unwrap_or("UNKNOWN").to_owned();
            let moved = u64::try_from(t.approximate_number_of_messages_moved()).unwrap_or(0);
            match status.as_str() {
                "COMPLETED" | "FAILED" | "CANCELLED" => {
                    if status == "FAILED" {
                        anyhow::bail!(
                            "the move task failed after {moved} message(s): {}",
                            t.failure_reason().unwrap_or("")
                        );
                    }
                    return Ok((status, moved));
                }
                _ => tracing::info!(%status, moved, "moving"),
            }
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the move task is still running; see ListMessageMoveTasks"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The move task's semantics by hand: each message sent to the queue with
/// its body, attributes and trace header, and deleted from the DLQ only once
/// the send succeeded (a failed delete leaves a duplicate, which consumers
/// absorb; a failed send leaves the message where it was).
async fn move_by_hand(sqs: &aws_sdk_sqs::Client, from: &str, to: &str) -> anyhow::Result<u64> {
    let mut moved = 0;
    let mut stuck_rounds = 0;
    loop {
        let got = sqs
            .receive_message()
            .queue_url(from)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .wait_time_seconds(RECEIVE_WAIT_SECS)
            .message_system_attribute_names(MessageSystemAttributeName::AwsTraceHeader)
            .message_attribute_names("All")
            .send()
            .await?;
        let messages = got.messages();
        if messages.is_empty() {
            return Ok(moved);
        }
        let mut entries = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(m.body().unwrap_or_default())
                .set_message_attributes(m.message_attributes().cloned());
            if let Some(trace) = m.attributes().and_then(|a| a.get(&MessageSystemAttributeName::AwsTraceHeader)) {
                entry = entry.message_system_attributes(
                    MessageSystemAttributeNameForSends::AwsTraceHeader,
                    MessageSystemAttributeValue::builder().data_type("String").string_value(trace).build()?,
                );
            }
            entries.push(entry.build()?);
        }
        let sent = sqs.send_message_batch().queue_url(to).set_entries(Some(entries)).send().await?;
        for f in sent.failed() {
            tracing::warn!(id = f.id(), code = f.code(), message = f.message(), "not moved; it stays in the DLQ");
        }
        let deletes: Vec<DeleteMessageBatchRequestEntry> = sent
            .successful()
            .iter()
            .filter_map(|ok| {
                let m = messages.get(ok.id().parse::<usize>().ok()?)?;
                DeleteMessageBatchRequestEntry::builder()
                    .id(ok.id())
                    .set_receipt_handle(m.receipt_handle().map(str::to_owned))
                    .build()
                    .ok()
            })
            .collect();
        if deletes.is_empty() {
            stuck_rounds += 1;
            anyhow::ensure!(stuck_rounds < 3, "the queue refused every message three times running; {moved} moved");
            continue;
        }
        stuck_rounds = 0;
        let deleted = sqs.delete_message_batch().queue_url(from).set_entries(Some(deletes)).send().await?;
        for f in deleted.failed() {
            tracing::warn!(
                id = f.id(),
                code = f.code(),
                "moved but not deleted: it will be delivered twice (consumers dedupe)"
            );
        }
        moved += sent.successful().len() as u64;
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    pub replay_name: String,
    pub state: String,
    pub archive_arn: String,
    pub from: String,
    pub to: String,
    pub consumer: Option<String>,
    pub last_replayed: Option<String>,
}

/// Replays the archive's events of `[from, to)` to the stack's bus (only
/// `consumer`'s rule, if given) and follows the replay until it ends.
pub async fn replay(
    stack: &DeployedStack,
    from: Timestamp,
    to: Timestamp,
    consumer: Option<&str>,
) -> anyhow::Result<ReplayReport> {
    if let Some(c) = consumer {
        check_consumer(c)?;
    }
    let bus_arn = stack.bus_arn().await?;
    let archive_arn = stack.archive_arn(&bus_arn).await?;
    let time = |t: Timestamp| aws_sdk_eventbridge::primitives::DateTime::from_millis(t.millis());
    let mut destination = aws_sdk_eventbridge::types::ReplayDestination::builder().arn(&bus_arn);
    if let Some(c) = consumer {
        destination = destination.filter_arns(stack.output(&format!("{}RuleArn", pascal(c)))?);
    }
    let replay_name = format!("shop-replay-{}", shop_app::clock::Clock::now(&shop_app::clock::SystemClock).millis());
    let events = stack.events();
    events
        .start_replay()
        .replay_name(&replay_name)
        .event_source_arn(&archive_arn)
        .event_start_time(time(from))
        .event_end_time(time(to))
        .destination(destination.build()?)
        .send()
        .await
        .with_context(|| format!("StartReplay from {archive_arn}"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30 * 60);
    loop {
        let d = events.describe_replay().replay_name(&replay_name).send().await?;
        let state = d.state().map(|s| s.as_str().to_owned()).unwrap_or_else(|| "UNKNOWN".into());
        match state.as_str() {
            "COMPLETED" | "FAILED" | "CANCELLED" => {
                anyhow::ensure!(
                    state == "COMPLETED",
                    "replay {replay_name} {state}: {}",
                    d.state_reason().unwrap_or("")
                );
                return Ok(ReplayReport {
                    replay_name,
                    state,
                    archive_arn,
                    from: from.to_rfc3339(),
                    to: to.to_rfc3339(),
                    consumer: consumer.map(str::to_owned),
                    last_replayed: d.event_last_replayed_time().map(|t| t.to_string()),
                });
            }
            _ => {
                anyhow::ensure!(
                    std::time::Instant::now() < deadline,
                    "replay {replay_name} still {state}; see DescribeReplay"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// The window an OnFailure record of a DynamoDB stream mapping names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedWindow {
    pub stream_arn: String,
    pub shard_id: String,
    pub start_sequence: String,
    pub end_sequence: String,
    pub first_arrival: Option<Timestamp>,
    pub last_arrival: Option<Timestamp>,
}

impl FailedWindow {
    /// From the record's `DDBStreamBatchInfo` (Lambda's OnFailure format).
    pub fn parse(body: &str) -> anyhow::Result<Self> {
        let v: Value = serde_json::from_str(body).context("an OnFailure record is JSON")?;
        let info = v.get("DDBStreamBatchInfo").ok_or_else(|| anyhow::anyhow!("no DDBStreamBatchInfo in the record"))?;
        let text = |k: &str| {
            info.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| anyhow::anyhow!("DDBStreamBatchInfo.{k} missing"))
        };
        let time = |k: &str| info.get(k).and_then(Value::as_str).and_then(Timestamp::parse_rfc3339);
        Ok(Self {
            stream_arn: text("streamArn")?,
            shard_id: text("shardId")?,
            start_sequence: text("startSequenceNumber")?,
            end_sequence: text("endSequenceNumber")?,
            first_arrival: time("approximateArrivalOfFirstRecord"),
            last_arrival: time("approximateArrivalOfLastRecord"),
        })
    }
}

/// Sequence numbers are decimal strings of up to 40 digits: compared as numbers.
fn seq_le(a: &str, b: &str) -> bool {
    (a.len(), a) <= (b.len(), b)
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepublishReport {
    /// OnFailure records read from the publisher's failure queue.
    pub records: usize,
    /// Windows read back from the stream, and taken by time instead.
    pub windows_from_stream: usize,
    pub windows_by_time: usize,
    /// Stream records in the windows, and the outbox events among them.
    pub stream_records: usize,
    pub republished: usize,
    /// Records deleted from the failure queue (all of them, unless one failed).
    pub deleted: usize,
}

/// Republishes every window the failure queue holds, then deletes its record.
pub async fn republish_failures(stack: &DeployedStack) -> anyhow::Result<RepublishReport> {
    let app = stack.app().await?;
    let url = stack.output("PublisherFailureQueueUrl")?;
    let sqs = stack.sqs();
    let streams = aws_sdk_dynamodbstreams::Client::new(&stack.sdk);
    let mut report = RepublishReport::default();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(300)
            .wait_time_seconds(RECEIVE_WAIT_SECS)
            .send()
            .await?;
        if got.messages().is_empty() {
            return Ok(report);
        }
        for m in got.messages() {
            report.records += 1;
            let window = FailedWindow::parse(m.body().unwrap_or_default())?;
            match read_window(&streams, &window).await {
                Ok((records, keys)) => {
                    report.windows_from_stream += 1;
                    report.stream_records += records;
                    for (pk, sk) in keys {
                        if let Some(e) = app.store.outbox().event_at(&pk, &sk).await? {
                            app.store.outbox().mark_pending(&e).await?;
                            report.republished += 1;
                        }
                    }
                }
                Err(e) => {
                    let (Some(first), Some(last)) = (window.first_arrival, window.last_arrival) else {
                        return Err(e.context("the window is not in the stream and the record has no arrival times"));
                    };
                    tracing::warn!(error = %format!("{e:#}"), "the window is no longer in the stream; republishing by time");
                    report.windows_by_time += 1;
                    report.republished +=
                        super::ops::republish_between(&app, first.plus_secs(-60), Some(last.plus_secs(60))).await?;
                }
            }
            sqs.delete_message()
                .queue_url(url)
                .set_receipt_handle(m.receipt_handle().map(str::to_owned))
                .send()
                .await?;
            report.deleted += 1;
        }
    }
}

/// The stream records of the window, and the keys of the outbox events
/// among them ([`shop_store::outbox::codec::is_event_key`]).
async fn read_window(
    streams: &aws_sdk_dynamodbstreams::Client,
    w: &FailedWindow,
) -> anyhow::Result<(usize, Vec<(String, String)>)> {
    use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
    let mut iterator = streams
        .get_shard_iterator()
        .stream_arn(&w.stream_arn)
        .shard_id(&w.shard_id)
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .sequence_number(&w.start_sequence)
        .send()
        .await
        .with_context(|| format!("GetShardIterator {} at {}", w.shard_id, w.start_sequence))?
        .shard_iterator
        .ok_or_else(|| anyhow::anyhow!("no iterator for shard {}", w.shard_id))?;
    let (mut records, mut keys) = (0, Vec::new());
    // An open shard answers empty pages while it waits for writes: a few
    // of them past the window's records mean the end is not coming.
    let mut empty = 0;
    loop {
        let page = streams.get_records().shard_iterator(&iterator).limit(1000).send().await?;
        if page.records().is_empty() {
            empty += 1;
        }
        for r in page.records() {
            let Some(change) = r.dynamodb() else { continue };
            let seq = change.sequence_number().unwrap_or_default();
            if !seq_le(seq, &w.end_sequence) {
                return Ok((records, keys));
            }
            records += 1;
            let key = |k: &str| match change.keys().and_then(|m| m.get(k)) {
                Some(AttributeValue::S(v)) => Some(v.clone()),
                _ => None,
            };
            if let (Some(pk), Some(sk)) = (key("pk"), key("sk"))
                && shop_store::outbox::codec::is_event_key(&sk)
            {
                keys.push((pk, sk));
            }
            if seq == w.end_sequence {
                return Ok((records, keys));
            }
        }
        match page.next_shard_iterator {
            Some(next) if empty < 5 => iterator = next,
            _ => return Ok((records, keys)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_onfailure_record_names_its_window() {
        // Lambda's OnFailure record for a DynamoDB stream batch.
        let body = r#"{"requestContext":{"requestId":"r","functionArn":"arn:aws:lambda:eu-west-1:1:function:p","condition":"RetryAttemptsExhausted","approximateInvokeCount":3},
            "responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},"version":"1.0","timestamp":"2026-12-05T10:00:10.000Z",
            "DDBStreamBatchInfo":{"shardId":"shardId-00000001","startSequenceNumber":"900000000000000000001","endSequenceNumber":"1000000000000000000002",
            "approximateArrivalOfFirstRecord":"2026-12-05T10:00:00Z","approximateArrivalOfLastRecord":"2026-12-05T10:00:05Z","batchSize":2,
            "streamArn":"arn:aws:dynamodb:eu-west-1:1:table/t/stream/2026"}}"#;
        let w = FailedWindow::parse(body).unwrap();
        assert_eq!(w.shard_id, "shardId-00000001");
        assert_eq!(
            (w.start_sequence.as_str(), w.end_sequence.as_str()),
            ("900000000000000000001", "1000000000000000000002")
        );
        assert_eq!(w.first_arrival, Timestamp::parse_rfc3339("2026-12-05T10:00:00Z"));
        assert!(FailedWindow::parse(r#"{"version":"1.0"}"#).is_err());
        assert!(FailedWindow::parse("not json").is_err());
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert!(seq_le("900000000000000000001", "1000000000000000000002"));
        assert!(!seq_le("1000000000000000000002", "900000000000000000001"));
        assert!(seq_le("5", "5"));
        assert_eq!(pascal("analytics"), "Analytics");
    }
}
