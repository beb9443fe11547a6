//! `shop audit`: the audit trail — every action taken by hand, from the
//! console or from `shop` commands — newest first, of the data dir or of a
//! deployed stack's table (`--stack`).

use super::{DataDir, Report, StackArg, open_app, print};
use shop_store::audit::{AuditCursor, AuditEntry};

#[derive(clap::Args)]
pub struct Audit {
    #[command(flatten)]
    data: DataDir,
    #[command(flatten)]
    stack: StackArg,
    /// Entries at most (newest first).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Older entries: the position a previous listing printed.
    #[arg(long)]
    before: Option<String>,
    /// Print the entries as JSON.
    #[arg(long)]
    json: bool,
}

impl Audit {
    pub async fn run(self) -> anyhow::Result<()> {
        anyhow::ensure!((1..=1_000).contains(&self.limit), "--limit is 1 to 1,000");
        let before = match &self.before {
            Some(b) => Some(AuditCursor::parse(b).ok_or_else(|| anyhow::anyhow!("--before {b}: not a position"))?),
            None => None,
        };
        let app = match self.stack.resolve().await? {
            Some(s) => s.app().await?,
            None => open_app(&self.data.data_dir).await?,
        };
        let (entries, next) = app.store.audit().page(self.limit, before.as_ref()).await?;
        print(self.json, &Listed { entries, before: next.map(|c| c.to_param()) })
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    entries: Vec<AuditEntry>,
    /// Where the next (older) page starts, if there is one.
    before: Option<String>,
}

impl Report for Listed {
    fn text(&self) -> String {
        if self.entries.is_empty() {
            return "nothing has been done by hand yet".to_owned();
        }
        let mut lines: Vec<String> = self
            .entries
            .iter()
            .map(|e| {
                let a = &e.action;
                let more = a.target_count.saturating_sub(a.targets.len().min(5));
                format!(
                    "{}  {} ({} · {})  {}  {}{}\n    reason: {}\n    on: {}{}",
                    a.at.to_rfc3339(),
                    a.operator,
                    a.channel.as_str(),
                    a.stack,
                    a.action,
                    e.status.as_str(),
                    e.outcome.as_deref().map(|o| format!(": {o}")).unwrap_or_default(),
                    a.reason,
                    a.targets.iter().take(5).cloned().collect::<Vec<_>>().join(" "),
                    if more > 0 { format!(" and {more} more") } else { String::new() }
                )
            })
            .collect();
        if let Some(b) = &self.before {
            lines.push(format!("older: shop audit --before {b}"));
        }
        lines.join("\n")
    }
}
