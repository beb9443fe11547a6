//! `shop bulk redrive|replay|ask-pg --filter KEY=VALUE …`: act on every
//! order the finder finds (the console's bulk actions), of the data dir or
//! a deployed stack, after a dry run; recorded in the audit trail.

use super::orders::FilterArgs;
use super::{Acting, DataDir, Report, StackArg, open_app, print};
use shop_app::usecases::audit::{Intent, acted};
use shop_local::bulk::{self, Action, Place, Plan};

#[derive(clap::Args)]
pub struct Bulk {
    /// What to do: redrive (dead-lettered messages back to their queue), replay (failing events to their
    /// consumer now) or ask-pg (payments in doubt; the local stack only).
    #[arg(value_parser = ["redrive", "replay", "ask-pg"])]
    action: String,
    #[command(flatten)]
    filter: FilterArgs,
    /// Count and list what would be done, and do nothing (no reason needed).
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    data: DataDir,
    #[command(flatten)]
    stack: StackArg,
    #[command(flatten)]
    acting: Acting,
    /// Print the plan or the result as JSON.
    #[arg(long)]
    json: bool,
}

impl Bulk {
    pub async fn run(self) -> anyhow::Result<()> {
        let action = Action::parse(&self.action).ok_or_else(|| anyhow::anyhow!("no action {}", self.action))?;
        let stack = self.stack.resolve().await?;
        let app = match &stack {
            Some(s) => s.app().await?,
            None => open_app(&self.data.data_dir).await?,
        };
        let filter = self.filter.parse(app.clock.now())?;
        let plan = bulk::plan(&app, &filter, action).await?;
        if self.dry_run {
            return print(self.json, &DryRun::of(&plan));
        }
        anyhow::ensure!(
            !plan.targets.is_empty(),
            "nothing to {}: the filter finds no target ({} skipped)",
            action.as_str(),
            plan.skipped
        );
        let (actor, reason) = self.acting.resolve(stack.as_ref()).await?;
        let targets = plan.targets.iter().map(bulk::Target::label).collect();
        let intent = Intent { action: action.audit_name(), targets, reason: &reason };
        let progress = bulk::Progress::default();
        let place = Place { app: &app, stack: stack.as_ref() };
        let report = acted(&app, &actor, intent, || bulk::run(place, &plan, &progress), bulk::Report::summary).await?;
        print(self.json, &Done(report.clone()))?;
        anyhow::ensure!(report.failed == 0, "{} target(s) failed", report.failed);
        Ok(())
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct DryRun {
    action: String,
    targets: Vec<String>,
    skipped: usize,
    truncated: bool,
}

impl DryRun {
    fn of(plan: &Plan) -> DryRun {
        DryRun {
            action: plan.action.as_str().to_owned(),
            targets: plan.targets.iter().map(bulk::Target::label).collect(),
            skipped: plan.skipped,
            truncated: plan.truncated,
        }
    }
}

impl Report for DryRun {
    fn text(&self) -> String {
        let mut lines = self.targets.clone();
        lines.push(format!(
            "dry run: would {} {} target(s); {} row(s) skipped{}",
            self.action,
            self.targets.len(),
            self.skipped,
            if self.truncated { "; more than 1,000 found: narrow the filter" } else { "" }
        ));
        lines.join("\n")
    }
}

#[derive(serde::Serialize)]
struct Done(bulk::Report);

impl Report for Done {
    fn text(&self) -> String {
        let mut lines: Vec<String> = self
            .0
            .results
            .iter()
            .map(|r| format!("{} {} {}", if r.ok { "done  " } else { "FAILED" }, r.target, r.detail))
            .collect();
        lines.push(format!("{}: {}", self.0.action, self.0.summary()));
        lines.join("\n")
    }
}
