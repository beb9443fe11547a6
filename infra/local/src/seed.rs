//! Loading a catalog file: products with stock, coupons, users with points.
//!
//! ```json
//! {"products":[{"id":"p1","name":"Mug","price":12000,"stock":50}],
//!  "coupons":[{"id":"c1","userId":"u1","kind":"FIXED","value":3000,"minOrderAmount":10000,"expiresAt":"2027-12-31T23:59:59Z"}],
//!  "users":[{"id":"u1","points":5000}],
//!  "campaigns":[{"id":"rush","name":"Opening rush","total":100,
//!    "startsAt":"2026-01-01T00:00:00Z","endsAt":"2030-12-31T23:59:59Z",
//!    "coupon":{"kind":"FIXED","value":3000,"minOrderAmount":10000,"expiresAt":"2030-12-31T23:59:59Z"}}]}
//! ```
//! Products are upserted (price, name and stock set to the file's values);
//! coupons are created only if absent (a coupon in use is never reset);
//! a user's balance is set to `points` with a GRANT ledger row for the change;
//! campaigns are created only if absent (a campaign's counter is never reset);
//! sales (`"sales":[{"id":"drop","name":"Drop","products":["p5"],"startsAt":…,
//! "endsAt":…,"capacity":100,"maxAdmissionsPerSec":20,"sessionSecs":300}]`)
//! likewise, their gates put back on their products.

use anyhow::Context;
use serde::Deserialize;
use shop_app::App;
use shop_app::usecases::campaigns::{Created, create_campaign};
use shop_domain::campaign::CouponTerms;
use shop_domain::points::{LedgerEntry, LedgerReason};
use shop_domain::{
    Campaign, CampaignId, Coupon, CouponId, CouponKind, CouponStatus, Money, Product, ProductId, Timestamp, UserId,
};
use shop_store::{StoreError, Tx};

/// The demo catalog `shop up` loads into an empty data dir.
pub const DEMO_CATALOG: &str = include_str!("../catalog.json");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(default)]
    pub products: Vec<CatalogProduct>,
    #[serde(default)]
    pub coupons: Vec<CatalogCoupon>,
    #[serde(default)]
    pub users: Vec<CatalogUser>,
    #[serde(default)]
    pub campaigns: Vec<CatalogCampaign>,
    #[serde(default)]
    pub sales: Vec<CatalogSale>,
}

/// A flash sale behind the waiting room (also what `shop sale create`
/// builds): the fields of `POST /sales`, with `id` for `saleId`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CatalogSale {
    pub id: String,
    pub name: String,
    pub products: Vec<String>,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339.
    pub ends_at: String,
    pub capacity: u64,
    pub max_admissions_per_sec: u64,
    pub session_secs: u64,
    #[serde(default)]
    pub entry_shards: Option<u64>,
}

impl CatalogSale {
    /// The sale, its pre-queue draw secret from `salt`.
    pub fn to_sale(&self, salt: u64) -> anyhow::Result<shop_domain::sale::Sale> {
        use shop_domain::sale::{Sale, SaleTerms};
        let id = shop_domain::SaleId::parse(&self.id).with_context(|| format!("sale {}", self.id))?;
        let products = self
            .products
            .iter()
            .map(|p| ProductId::parse(p).with_context(|| format!("sale {}: product {p}", self.id)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let time = |field: &str, s: &str| {
            Timestamp::parse_rfc3339(s).with_context(|| format!("sale {}: {field} {s} is not RFC 3339", self.id))
        };
        let terms = SaleTerms::new(
            self.name.clone(),
            products,
            time("startsAt", &self.starts_at)?,
            time("endsAt", &self.ends_at)?,
            self.capacity,
            self.max_admissions_per_sec,
            self.session_secs,
            self.entry_shards,
        )
        .with_context(|| format!("sale {}", self.id))?;
        Ok(Sale::new(id, terms, salt))
    }
}

/// A first-come coupon campaign (also what `shop campaign create` builds).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CatalogCampaign {
    pub id: CampaignId,
    pub name: String,
    pub total: u64,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339.
    pub ends_at: String,
    pub coupon: CampaignCoupon,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CampaignCoupon {
    pub kind: Kind,
    pub value: u64,
    #[serde(default)]
    pub min_order_amount: Money,
    /// RFC 3339.
    pub expires_at: String,
}

fn rfc3339(what: &str, s: &str) -> anyhow::Result<Timestamp> {
    Timestamp::parse_rfc3339(s).with_context(|| format!("{what} {s} is not RFC 3339"))
}

fn coupon_kind(kind: Kind, value: u64) -> anyhow::Result<CouponKind> {
    Ok(match kind {
        Kind::Fixed => CouponKind::Fixed(Money::new(i128::from(value))?),
        Kind::Percent => CouponKind::Percent(u8::try_from(value).context("percent")?),
    })
}

impl CatalogCampaign {
    pub fn to_campaign(&self) -> anyhow::Result<Campaign> {
        let terms = CouponTerms {
            kind: coupon_kind(self.coupon.kind, self.coupon.value)?,
            min_order_amount: self.coupon.min_order_amount,
            expires_at: rfc3339("coupon.expiresAt", &self.coupon.expires_at)?,
        };
        Campaign::new(
            self.id.clone(),
            self.name.clone(),
            self.total,
            rfc3339("startsAt", &self.starts_at)?,
            rfc3339("endsAt", &self.ends_at)?,
            terms,
        )
        .with_context(|| format!("campaign {}", self.id))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogProduct {
    pub id: ProductId,
    pub name: String,
    pub price: Money,
    pub stock: u64,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    Fixed,
    Percent,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CatalogCoupon {
    pub id: CouponId,
    pub user_id: UserId,
    pub kind: Kind,
    pub value: u64,
    #[serde(default)]
    pub min_order_amount: Money,
    /// RFC 3339.
    pub expires_at: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogUser {
    pub id: UserId,
    pub points: Money,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    pub products: usize,
    pub coupons_created: usize,
    pub coupons_kept: usize,
    pub users: usize,
    pub campaigns_created: usize,
    pub campaigns_kept: usize,
    pub sales_created: usize,
    pub sales_kept: usize,
}

impl Catalog {
    pub fn parse(text: &str) -> anyhow::Result<Catalog> {
        let c: Catalog = serde_json::from_str(text).context("catalog file")?;
        for p in &c.products {
            anyhow::ensure!(!p.name.trim().is_empty(), "product {} has an empty name", p.id);
            anyhow::ensure!(!p.price.is_zero(), "product {} has a zero price", p.id);
        }
        for cp in &c.coupons {
            cp.to_coupon()?;
        }
        for cp in &c.campaigns {
            cp.to_campaign()?;
        }
        for s in &c.sales {
            s.to_sale(0)?;
        }
        Ok(c)
    }
}

impl CatalogCoupon {
    pub fn to_coupon(&self) -> anyhow::Result<Coupon> {
        let kind = Coupon::validate_kind(coupon_kind(self.kind, self.value)?)
            .with_context(|| format!("coupon {}", self.id))?;
        let expires_at = Timestamp::parse_rfc3339(&self.expires_at)
            .with_context(|| format!("coupon {}: expiresAt {} is not RFC 3339", self.id, self.expires_at))?;
        Ok(Coupon {
            id: self.id.clone(),
            owner: self.user_id.clone(),
            kind,
            min_order_amount: self.min_order_amount,
            expires_at,
            status: CouponStatus::Issued,
        })
    }
}

pub async fn seed(app: &App, catalog: &Catalog) -> anyhow::Result<SeedReport> {
    let mut report = SeedReport::default();
    for p in &catalog.products {
        let product = Product { id: p.id.clone(), name: p.name.clone(), price: p.price, available: p.stock };
        let mut tx = Tx::new();
        tx.extend(app.store.catalog().ops_seed_product(&product)?);
        app.store.transact(tx).await?;
        report.products += 1;
    }
    for c in &catalog.coupons {
        let mut tx = Tx::new();
        tx.push(app.store.coupons().op_create(&c.to_coupon()?)?);
        match app.store.transact(tx).await {
            Ok(()) => report.coupons_created += 1,
            Err(StoreError::Conflict { .. }) => report.coupons_kept += 1,
            Err(e) => return Err(e.into()),
        }
    }
    for u in &catalog.users {
        let now = app.clock.now();
        let current = app.store.points().balance(&u.id).await?;
        if current != u.points {
            let delta = i64::try_from(u.points.won()).unwrap_or(i64::MAX) - i64::try_from(current.won()).unwrap_or(0);
            let entry = LedgerEntry {
                user_id: u.id.clone(),
                tx_id: app.ids.tx_id(),
                delta,
                reason: LedgerReason::Grant,
                order_id: None,
                balance_after: u.points,
                at: now,
            };
            let mut tx = Tx::new();
            tx.extend(app.store.points().ops_move(current, &entry)?);
            app.store.transact(tx).await?;
        }
        report.users += 1;
    }
    for c in &catalog.campaigns {
        if create_campaign(app, &c.to_campaign()?).await? == Created::New {
            report.campaigns_created += 1;
        } else {
            report.campaigns_kept += 1;
        }
    }
    // After the products: a sale gates them (and puts back the gates a
    // re-seeded product lost).
    for s in &catalog.sales {
        let sale = s.to_sale(shop_app::http::sales::fresh_salt(app))?;
        match shop_app::usecases::sales::create_sale(app, &sale).await? {
            shop_app::usecases::sales::Created::New(_) => report.sales_created += 1,
            shop_app::usecases::sales::Created::Existing(_) => report.sales_kept += 1,
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_catalog_is_valid() {
        let c = Catalog::parse(DEMO_CATALOG).unwrap();
        assert!(!c.products.is_empty() && !c.coupons.is_empty() && !c.users.is_empty());
    }

    #[test]
    fn rejects_bad_entries() {
        assert!(Catalog::parse(r#"{"products":[{"id":"p1","name":"x","price":-1,"stock":1}]}"#).is_err());
        assert!(Catalog::parse(r#"{"coupons":[{"id":"c","userId":"u","kind":"PERCENT","value":150,"expiresAt":"2030-01-01T00:00:00Z"}]}"#).is_err());
        assert!(
            Catalog::parse(r#"{"coupons":[{"id":"c","userId":"u","kind":"FIXED","value":1,"expiresAt":"soon"}]}"#)
                .is_err()
        );
        assert!(Catalog::parse(r#"{"products":[],"extra":1}"#).is_err());
        let campaign = |total: u64, ends: &str| {
            format!(
                r#"{{"campaigns":[{{"id":"r","name":"R","total":{total},"startsAt":"2030-01-01T00:00:00Z","endsAt":"{ends}","coupon":{{"kind":"FIXED","value":1000,"expiresAt":"2031-01-01T00:00:00Z"}}}}]}}"#
            )
        };
        assert!(Catalog::parse(&campaign(10, "2030-02-01T00:00:00Z")).is_ok());
        assert!(Catalog::parse(&campaign(0, "2030-02-01T00:00:00Z")).is_err());
        assert!(Catalog::parse(&campaign(10, "2029-02-01T00:00:00Z")).is_err());
    }
}
