//! The consumers' DLQs of a deployed stack: peeked without consuming them,
//! and redriven by SQS `StartMessageMoveTask` (or by receive → send →
//! delete where that API is missing).

use super::{DeployedStack, check_consumer};
use crate::ops::{CONSUMERS, DlqEntry};
use anyhow::Context as _;
use aws_sdk_sqs::error::ProvideErrorMetadata as _;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, MessageSystemAttributeNameForSends,
    MessageSystemAttributeValue, SendMessageBatchRequestEntry,
};
use serde::Serialize;
use shop_domain::Timestamp;
use std::collections::BTreeSet;
use std::time::Duration;

/// How long one SQS receive waits (long polling asks every server, so a
/// small queue is not reported empty by a sampled one).
pub(super) const RECEIVE_WAIT_SECS: i32 = 1;

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

/// `m` sent again as entry `i` of a batch: its body, attributes and trace header.
fn resend(i: usize, m: &aws_sdk_sqs::types::Message) -> anyhow::Result<SendMessageBatchRequestEntry> {
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
    Ok(entry.build()?)
}

/// Moves the messages of `consumer`'s DLQ that carry one of the `wanted`
/// event ids back to its queue, as [`move_by_hand`] moves (sent, then
/// deleted), reading at most `examine_cap` messages: SQS cannot be asked
/// for a message by its content. The others are received with a
/// visibility timeout and made visible again at once (their receive count
/// grows by one; a DLQ's messages are not received by any consumer).
/// Answers the event ids moved.
pub async fn dlq_redrive_selected(
    stack: &DeployedStack,
    consumer: &str,
    wanted: &BTreeSet<String>,
    examine_cap: usize,
) -> anyhow::Result<BTreeSet<String>> {
    check_consumer(consumer)?;
    let (from, to) = (stack.dlq_url(consumer)?, stack.queue_url(consumer)?);
    let sqs = stack.sqs();
    let mut moved = BTreeSet::new();
    let mut passed_over: Vec<String> = Vec::new();
    let mut examined = 0;
    while moved.len() < wanted.len() && examined < examine_cap {
        let got = sqs
            .receive_message()
            .queue_url(from)
            .max_number_of_messages(10)
            .visibility_timeout(120)
            .wait_time_seconds(RECEIVE_WAIT_SECS)
            .message_system_attribute_names(MessageSystemAttributeName::AwsTraceHeader)
            .message_attribute_names("All")
            .send()
            .await
            .with_context(|| format!("ReceiveMessage {from}"))?;
        let messages = got.messages();
        if messages.is_empty() {
            break;
        }
        examined += messages.len();
        for m in messages {
            let (event_id, _, _) = crate::ops::carried(m.body().unwrap_or_default());
            let handle = m.receipt_handle().unwrap_or_default().to_owned();
            if !wanted.contains(&event_id) || moved.contains(&event_id) {
                passed_over.push(handle);
                continue;
            }
            let entry = resend(0, m)?;
            sqs.send_message()
                .queue_url(to)
                .message_body(entry.message_body())
                .set_message_attributes(entry.message_attributes().cloned())
                .set_message_system_attributes(entry.message_system_attributes().cloned())
                .send()
                .await
                .with_context(|| format!("SendMessage {to}"))?;
            if let Err(e) = sqs.delete_message().queue_url(from).receipt_handle(&handle).send().await {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), %event_id,
                    "moved but not deleted: it will be delivered twice (consumers dedupe)");
            }
            moved.insert(event_id);
        }
    }
    // The others back in view at once.
    for handle in passed_over {
        if let Err(e) =
            sqs.change_message_visibility().queue_url(from).receipt_handle(&handle).visibility_timeout(0).send().await
        {
            tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "a passed-over DLQ message shows again after its visibility timeout");
        }
    }
    Ok(moved)
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
        let entries = messages.iter().enumerate().map(|(i, m)| resend(i, m)).collect::<anyhow::Result<Vec<_>>>()?;
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
