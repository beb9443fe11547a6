//! `shop republish --from-failure-queue`: the stream publisher's OnFailure
//! records, each a window of the table's stream, republished from the outbox.

use super::DeployedStack;
use super::dlq::RECEIVE_WAIT_SECS;
use anyhow::Context as _;
use serde::Serialize;
use serde_json::Value;
use shop_domain::Timestamp;

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
                        crate::ops::republish_between(&app, first.plus_secs(-60), Some(last.plus_secs(60))).await?;
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
    use crate::deployed::pascal;

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
