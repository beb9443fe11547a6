//! `shop seed --file CATALOG`: products, coupons, users and campaigns.

use super::DataDir;
use shop_app::config::Config;
use shop_local::seed;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Seed {
    #[command(flatten)]
    data: DataDir,
    /// The catalog file (JSON; its format: docs/local.md).
    #[arg(long)]
    file: PathBuf,
    /// Load into this DynamoDB table of a deployed stack instead of the data dir
    /// (AWS_* variables / profile). Never taken from SHOP_TABLE: seeding
    /// resets users' point balances, so the table must be named here.
    #[arg(long)]
    table: Option<String>,
}

impl Seed {
    pub async fn run(self) -> anyhow::Result<()> {
        shop_app::obs::telemetry::init("shop-seed");
        let catalog = seed::Catalog::parse(&std::fs::read_to_string(&self.file)?)?;
        let app = match self.table {
            Some(t) => shop_app::adapters::aws::app_for_table(&t).await?,
            None => shop_local::open(Some(&self.data.data_dir), Config::default(), None, None).await?.1,
        };
        let r = seed::seed(&app, &catalog).await?;
        println!(
            "seeded {} products, {} coupons ({} already present, kept), {} users, {} campaigns ({} already present, kept)",
            r.products, r.coupons_created, r.coupons_kept, r.users, r.campaigns_created, r.campaigns_kept
        );
        Ok(())
    }
}
