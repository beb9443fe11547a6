//! `GET /coupons`: the caller's coupons ([`CouponView`], also a claim's answer).

use crate::App;
use crate::http;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use shop_domain::{Coupon, Timestamp};

/// A coupon as the API shows it (`GET /coupons`, a campaign's claim).
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CouponView {
    pub coupon_id: String,
    pub kind: &'static str,
    pub value: u64,
    pub min_order_amount: u64,
    pub expires_at: String,
    /// ISSUED, HELD, USED, or EXPIRED (an issued coupon past its expiry).
    pub status: &'static str,
    pub order_id: Option<String>,
    /// ISSUED and not expired: an order may use it now.
    pub usable: bool,
}

impl CouponView {
    pub fn of(c: &Coupon, now: Timestamp) -> Self {
        let (kind, value) = c.kind.name_and_value();
        CouponView {
            coupon_id: c.id.to_string(),
            kind,
            value,
            min_order_amount: c.min_order_amount.won(),
            expires_at: c.expires_at.to_rfc3339(),
            status: c.status_at(now),
            order_id: c.status.order_id().map(ToString::to_string),
            usable: c.usable_at(now),
        }
    }
}

/// `GET /coupons`.
pub async fn list_coupons(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("list_coupons", req, |req, ctx| async move {
        let user = http::caller(&req)?;
        let coupons = app.store.coupons().of_user(&user).await.map_err(http::internal)?;
        let now = app.clock.now();
        let items: Vec<CouponView> = coupons.iter().map(|c| CouponView::of(c, now)).collect();
        Ok(http::json(200, &json!({ "coupons": items }), &ctx))
    })
    .await
}
