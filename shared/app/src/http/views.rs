//! Read-only views: `GET /coupons` (the caller's coupons) and
//! `GET /orders/{orderId}/timeline` (an order's saga: every event and what
//! each consumer did with it).

use crate::App;
use crate::http;
use crate::usecases::timeline::timeline;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use shop_domain::CouponKind;

/// `GET /coupons`.
pub async fn list_coupons(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("list_coupons", req, |req, ctx| async move {
        let user = http::caller(&req)?;
        let coupons = app.store.coupons_of(&user).await.map_err(http::internal)?;
        let now = app.clock.now();
        let items: Vec<Value> = coupons
            .iter()
            .map(|c| {
                let (kind, value) = match c.kind {
                    CouponKind::Fixed(v) => ("FIXED", v.won()),
                    CouponKind::Percent(p) => ("PERCENT", u64::from(p)),
                };
                json!({
                    "couponId": c.id, "kind": kind, "value": value,
                    "minOrderAmount": c.min_order_amount.won(),
                    "expiresAt": c.expires_at.to_rfc3339(),
                    "status": c.status.name(),
                    "orderId": c.status.order_id(),
                    "usable": c.status.name() == "ISSUED" && !c.is_expired(now),
                })
            })
            .collect();
        Ok(http::json(200, &json!({ "coupons": items }), &ctx))
    })
    .await
}

/// `GET /orders/{orderId}/timeline`: the owner's view of the saga.
pub async fn order_timeline(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("order_timeline", req, |req, ctx| async move {
        let order = crate::http::orders::own_order(app, &req).await?;
        let view = timeline(app, &order.id).await.map_err(http::internal)?;
        Ok(http::json(200, &view, &ctx))
    })
    .await
}
