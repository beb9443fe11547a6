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

use std::collections::HashMap;

use anyhow::Context as _;
use serde_json::Value;
use shop_app::App;

mod dlq;
mod replay;
mod republish;

pub use dlq::{RedriveReport, dlq_list, dlq_redrive, dlq_redrive_selected};
pub use replay::{ReplayReport, replay};
pub use republish::{FailedWindow, RepublishReport, republish_failures};

use crate::ops::check_consumer;

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

    /// Who the AWS credentials in use are (STS `GetCallerIdentity`): the
    /// operator the audit trail records for a `--stack` action.
    pub async fn caller_identity(&self) -> anyhow::Result<String> {
        let out =
            aws_sdk_sts::Client::new(&self.sdk).get_caller_identity().send().await.context("STS GetCallerIdentity")?;
        out.arn().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("STS named no caller"))
    }

    /// Asks the stack's `reconcile-payments` function about these orders'
    /// payments in doubt ([`shop_app::usecases::reconcile::ask_pg_orders`]),
    /// at most [`ASK_MAX`](shop_app::usecases::reconcile::ASK_MAX) an
    /// invocation: the function holds the PG secret, this process never does.
    pub async fn ask_pg(
        &self,
        order_ids: &[String],
    ) -> anyhow::Result<Vec<shop_app::usecases::reconcile::AskPgAnswer>> {
        use shop_app::usecases::reconcile::{ASK_MAX, AskPgRequest};
        let function = format!("{}-reconcile-payments", self.name);
        let lambda = aws_sdk_lambda::Client::new(&self.sdk);
        let mut answers = Vec::with_capacity(order_ids.len());
        for chunk in order_ids.chunks(ASK_MAX) {
            let payload = serde_json::json!({ "askPg": AskPgRequest { order_ids: chunk.to_vec() } });
            let out = lambda
                .invoke()
                .function_name(&function)
                .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
                .send()
                .await
                .with_context(|| format!("Lambda Invoke {function}"))?;
            let body = out.payload().map(|b| b.as_ref().to_vec()).unwrap_or_default();
            if let Some(error) = out.function_error() {
                anyhow::bail!("{function} failed ({error}): {}", String::from_utf8_lossy(&body));
            }
            answers.extend(serde_json::from_slice::<Vec<_>>(&body).with_context(|| format!("{function}'s answer"))?);
        }
        Ok(answers)
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
