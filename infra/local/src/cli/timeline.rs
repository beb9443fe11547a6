//! `shop timeline ORDER`: an order's events and what each consumer did.

use super::{DataDir, Report, print, target};
use serde_json::Value;

#[derive(clap::Args)]
pub struct Timeline {
    /// The order.
    order_id: String,
    #[command(flatten)]
    data: DataDir,
    /// Work on this DynamoDB table of a deployed stack instead of the data dir
    /// (credentials, region and endpoint from the usual AWS_* variables / profile).
    #[arg(long, env = "SHOP_TABLE")]
    table: Option<String>,
    /// Print the timeline as the API answers it (JSON).
    #[arg(long)]
    json: bool,
}

impl Timeline {
    pub async fn run(self) -> anyhow::Result<()> {
        let app = target(&self.data.data_dir, self.table.as_deref()).await?;
        let id = shop_domain::OrderId::parse(self.order_id.as_str())?;
        print(self.json, &Steps(shop_local::ops::timeline(&app, &id).await?))
    }
}

/// The timeline as `GET /orders/{id}/timeline` answers it.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Steps(Value);

impl Report for Steps {
    fn text(&self) -> String {
        let t = &self.0;
        let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let mut lines = vec![format!("order {} {}", field(t, "orderId"), field(t, "status"))];
        for step in t.get("timeline").and_then(Value::as_array).into_iter().flatten() {
            let s = |k: &str| field(step, k);
            lines.push(match s("kind").as_str() {
                "event" => format!(
                    "{}  {:<28} {}  trace={}{}",
                    s("at"),
                    s("detailType"),
                    s("eventId"),
                    step.get("traceId").and_then(Value::as_str).unwrap_or("-"),
                    if step.get("published") == Some(&Value::Bool(true)) { "" } else { "  (not yet published)" }
                ),
                _ => format!(
                    "{}    └ {:<13} {:<8} attempts={}{} {}",
                    s("at"),
                    s("consumer"),
                    s("status"),
                    step.get("attempts").unwrap_or(&Value::Null),
                    match step.get("deadLetteredAt").and_then(Value::as_str) {
                        Some(at) => format!(" dead-lettered={at}"),
                        None => String::new(),
                    },
                    s("detail")
                ),
            });
        }
        lines.join("\n")
    }
}
