//! `shop campaign create`: a first-come coupon campaign.

use super::{DataDir, target};
use shop_app::usecases::campaigns::{Created, create_campaign};
use shop_local::seed::CatalogCampaign;

#[derive(clap::Subcommand)]
pub enum Campaign {
    /// Create a campaign: `total` coupons, one per user, claimable from
    /// --starts-at until --ends-at (an existing id is kept as it is).
    Create(Create),
}

#[derive(clap::Args)]
pub struct Create {
    /// The campaign's id (the claim route's `{campaignId}`).
    #[arg(long)]
    id: String,
    /// Shown to shoppers.
    #[arg(long)]
    name: String,
    /// Coupons it issues at most, one per user.
    #[arg(long)]
    total: u64,
    /// RFC 3339 (default: now).
    #[arg(long)]
    starts_at: Option<String>,
    /// RFC 3339.
    #[arg(long)]
    ends_at: String,
    /// The coupon: FIXED (won off) or PERCENT.
    #[arg(long, value_parser = ["FIXED", "PERCENT"])]
    kind: String,
    /// Won off (FIXED) or percent off (PERCENT).
    #[arg(long)]
    value: u64,
    /// The least an order must come to for the coupon to apply, in won.
    #[arg(long, default_value_t = 0)]
    min_order_amount: u64,
    /// RFC 3339 (default: --ends-at).
    #[arg(long)]
    coupon_expires_at: Option<String>,
    #[command(flatten)]
    data: DataDir,
    /// Create it in this DynamoDB table of a deployed stack instead of the data dir.
    #[arg(long, env = "SHOP_TABLE")]
    table: Option<String>,
}

impl Campaign {
    pub async fn run(self) -> anyhow::Result<()> {
        let Campaign::Create(c) = self;
        shop_app::obs::telemetry::init("shop-campaign");
        let app = target(&c.data.data_dir, c.table.as_deref()).await?;
        let spec = serde_json::json!({
            "id": c.id, "name": c.name, "total": c.total,
            "startsAt": c.starts_at.unwrap_or_else(|| app.clock.now().to_rfc3339()),
            "endsAt": c.ends_at,
            "coupon": {
                "kind": c.kind, "value": c.value, "minOrderAmount": c.min_order_amount,
                "expiresAt": c.coupon_expires_at.unwrap_or_else(|| c.ends_at.clone()),
            },
        });
        let campaign = serde_json::from_value::<CatalogCampaign>(spec)?.to_campaign()?;
        match create_campaign(&app, &campaign).await? {
            Created::New => {
                println!("created campaign {} ({} coupons)", campaign.id, campaign.total);
                Ok(())
            }
            Created::Existing(_) => anyhow::bail!("campaign {} exists; kept as it is", campaign.id),
        }
    }
}
