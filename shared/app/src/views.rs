//! Read-only views: `GET /coupons` (the caller's coupons) and
//! `GET /orders/{orderId}/timeline` (an order's saga: every event and what
//! each consumer did with it).

use crate::App;
use crate::http::{self, Problem, RequestCtx};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use shop_domain::{CouponKind, OrderId};

/// `GET /coupons`.
pub async fn list_coupons(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let ctx = RequestCtx::of(&req);
    let result = async {
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
        Ok::<_, Problem>(http::json(200, &json!({ "coupons": items }), &ctx))
    }
    .await;
    Ok(result.unwrap_or_else(|p| p.response(&ctx)))
}

/// The saga timeline of an order, oldest first.
pub async fn timeline(app: &App, order_id: &OrderId) -> anyhow::Result<Value> {
    let order = app.store.get_order(order_id).await?.ok_or_else(|| anyhow::anyhow!("no order {order_id}"))?;
    let events = app.store.events_of(order_id).await?;
    let outcomes = app.store.outcomes_of(order_id).await?;
    let mut steps = Vec::new();
    for e in &events {
        steps.push(json!({
            "at": e.occurred_at.to_rfc3339(), "kind": "event", "eventId": e.event_id,
            "detailType": e.detail_type, "published": !e.pending,
        }));
        for o in outcomes.iter().filter(|o| o.event_id == e.event_id) {
            steps.push(json!({
                "at": o.at.to_rfc3339(), "kind": "consumer", "eventId": o.event_id, "consumer": o.consumer,
                "status": o.status, "attempts": o.attempts, "detail": o.detail,
            }));
        }
    }
    Ok(json!({ "orderId": order.id, "status": order.status.as_str(), "timeline": steps }))
}

/// `GET /orders/{orderId}/timeline`: the owner's view of the saga.
pub async fn order_timeline(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let ctx = RequestCtx::of(&req);
    let result = async {
        let order = crate::orders::load_own_order(app, &req).await?;
        let view = timeline(app, &order.id).await.map_err(http::internal)?;
        Ok::<_, Problem>(http::json(200, &view, &ctx))
    }
    .await;
    Ok(result.unwrap_or_else(|p| p.response(&ctx)))
}
