//! `shop orders --filter KEY=VALUE …`: the order finder (the console's
//! Find page) from the command line — a page of what the filters find, as
//! text, JSON or CSV (formula cells neutralised), of the data dir or a
//! deployed stack's table.

use super::{DataDir, StackArg, open_app};
use shop_local::find::{self, Filter, export};

#[derive(clap::Args)]
pub struct Orders {
    #[command(flatten)]
    data: DataDir,
    #[command(flatten)]
    stack: StackArg,
    #[command(flatten)]
    filter: FilterArgs,
    /// The page a previous listing printed as `next`.
    #[arg(long)]
    page: Option<String>,
    /// Every page, up to 1,000 rows, instead of one page.
    #[arg(long)]
    all: bool,
    /// Print the rows as JSON (with the next page's cursor).
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print the rows as CSV (cells starting with = + - @ are made text).
    #[arg(long)]
    csv: bool,
}

/// `--filter KEY=VALUE`, repeated: the finder's filters.
#[derive(clap::Args)]
pub struct FilterArgs {
    /// A filter, KEY=VALUE (repeat to combine): status=PAID, stuck=dead-lettered|retrying|failing|in-doubt,
    /// consumer=analytics (with stuck), method=card|virtual-account|points, from=-2h, to=2026-12-07T10:00:00Z,
    /// user=u-1, correlation=ID.
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    pairs: Vec<String>,
}

impl FilterArgs {
    pub fn parse(&self, now: shop_domain::Timestamp) -> anyhow::Result<Filter> {
        let mut pairs = Vec::new();
        for p in &self.pairs {
            let (k, v) = p.split_once('=').ok_or_else(|| anyhow::anyhow!("--filter {p}: write KEY=VALUE"))?;
            pairs.push((k, v));
        }
        Ok(Filter::parse(pairs, &[], now)?)
    }
}

impl Orders {
    pub async fn run(self) -> anyhow::Result<()> {
        let app = match self.stack.resolve().await? {
            Some(s) => s.app().await?,
            None => open_app(&self.data.data_dir).await?,
        };
        let filter = self.filter.parse(app.clock.now())?;
        let (rows, next, source) = match self.all {
            true => {
                anyhow::ensure!(self.page.is_none(), "--all reads from the first page");
                let (rows, more) = find::collect(&app, &filter, 1_000).await?;
                (rows, more.then(|| "more than 1,000: narrow the filter".to_owned()), filter.source())
            }
            false => {
                let found = find::page(&app, &filter, self.page.as_deref()).await?;
                (found.rows, found.next, found.source)
            }
        };
        if self.csv {
            print!("{}", export::csv(&rows));
        } else if self.json {
            let doc = serde_json::json!({ "orders": export::json(&rows), "next": next, "readFrom": source.describe() });
            println!("{doc}");
        } else {
            println!("read from {}", source.describe());
            for r in &rows {
                let f = r
                    .failure
                    .as_ref()
                    .map(|f| {
                        format!(
                            " {} {} {}",
                            f.outcome.consumer,
                            f.outcome.event_id,
                            if f.outcome.dead_lettered_at.is_some() { "dead-lettered" } else { "retrying" }
                        )
                    })
                    .unwrap_or_default();
                println!(
                    "{} {} {} {}{f}",
                    r.order.id,
                    r.order.status.as_str(),
                    r.order.amount_due,
                    r.order.created_at.to_rfc3339()
                );
            }
            println!(
                "{} order(s){}",
                rows.len(),
                next.map(|n| format!("; next page: --page '{n}'")).unwrap_or_default()
            );
        }
        Ok(())
    }
}
