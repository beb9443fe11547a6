//! `shop sale create`: a flash sale behind the waiting room (the API's
//! operator route is `POST /sales`; docs/waiting-room.md).

use super::{DataDir, target};
use shop_app::usecases::sales::{Created, create_sale};
use shop_local::seed::CatalogSale;

#[derive(clap::Subcommand)]
pub enum Sale {
    /// Create a sale: only shoppers it admits may order --product until
    /// --ends-at, --capacity at a time (an existing id is kept as it is).
    Create(Create),
}

#[derive(clap::Args)]
pub struct Create {
    /// The sale's id (the routes' `{saleId}`).
    #[arg(long)]
    id: String,
    /// Shown to shoppers.
    #[arg(long)]
    name: String,
    /// A product the sale gates (repeat for more; each in no other running sale).
    #[arg(long = "product", required = true)]
    products: Vec<String>,
    /// RFC 3339 (default: now). Shoppers entering before it are drawn at random at the opening.
    #[arg(long)]
    starts_at: Option<String>,
    /// RFC 3339.
    #[arg(long)]
    ends_at: String,
    /// Shoppers holding an admission at once.
    #[arg(long)]
    capacity: u64,
    /// The ceiling of the adaptive admission rate, per second.
    #[arg(long, default_value_t = 50)]
    max_admissions_per_sec: u64,
    /// How long an admitted shopper has to place the order.
    #[arg(long, default_value_t = 300)]
    session_secs: u64,
    /// Entry counter shards: ceil(peak entries per second / 800).
    #[arg(long)]
    entry_shards: Option<u64>,
    #[command(flatten)]
    data: DataDir,
    /// Create it in this DynamoDB table of a deployed stack instead of the data dir.
    #[arg(long, env = "SHOP_TABLE")]
    table: Option<String>,
}

impl Sale {
    pub async fn run(self) -> anyhow::Result<()> {
        let Sale::Create(c) = self;
        shop_app::obs::telemetry::init("shop-sale");
        let app = target(&c.data.data_dir, c.table.as_deref()).await?;
        let spec = CatalogSale {
            id: c.id,
            name: c.name,
            products: c.products,
            starts_at: c.starts_at.unwrap_or_else(|| app.clock.now().to_rfc3339()),
            ends_at: c.ends_at,
            capacity: c.capacity,
            max_admissions_per_sec: c.max_admissions_per_sec,
            session_secs: c.session_secs,
            entry_shards: c.entry_shards,
        };
        let sale = spec.to_sale(shop_app::http::sales::fresh_salt(&app))?;
        match create_sale(&app, &sale).await? {
            Created::New(s) => {
                println!(
                    "created sale {} gating {} ({} units, {} shoppers at a time)",
                    s.id,
                    s.terms.products.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                    s.units_at_start,
                    s.terms.capacity
                );
                Ok(())
            }
            Created::Existing(_) => anyhow::bail!("sale {} exists; kept as it is", sale.id),
        }
    }
}
