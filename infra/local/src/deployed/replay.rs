//! An EventBridge replay of a deployed stack's archive, followed until it ends.

use super::{DeployedStack, check_consumer, pascal};
use anyhow::Context as _;
use serde::Serialize;
use shop_domain::Timestamp;
use std::time::Duration;

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
