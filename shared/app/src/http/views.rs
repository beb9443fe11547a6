//! Read-only views: `GET /coupons` (the caller's coupons; [`CouponView`]), `GET /me/points`
//! (the caller's balance and ledger) and `GET /orders/{orderId}/timeline`
//! (an order's saga: every event and what each consumer did with it).

use crate::App;
use crate::http;
use crate::usecases::timeline::timeline;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use shop_domain::{Coupon, CouponKind, Timestamp};
use shop_store::LedgerCursor;

/// A coupon as the API shows it (`GET /coupons`, a campaign's claim).
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CouponView {
    pub coupon_id: String,
    pub kind: &'static str,
    pub value: u64,
    pub min_order_amount: u64,
    pub expires_at: String,
    pub status: &'static str,
    pub order_id: Option<String>,
    /// ISSUED and not expired: an order may use it now.
    pub usable: bool,
}

impl CouponView {
    pub fn of(c: &Coupon, now: Timestamp) -> Self {
        let (kind, value) = match c.kind {
            CouponKind::Fixed(v) => ("FIXED", v.won()),
            CouponKind::Percent(p) => ("PERCENT", u64::from(p)),
        };
        CouponView {
            coupon_id: c.id.to_string(),
            kind,
            value,
            min_order_amount: c.min_order_amount.won(),
            expires_at: c.expires_at.to_rfc3339(),
            status: c.status.name(),
            order_id: c.status.order_id().map(ToString::to_string),
            usable: c.status.name() == "ISSUED" && !c.is_expired(now),
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

/// `GET /me/points`: the balance and a page of the ledger, newest first.
/// The ledger is read first and the balance after it, both strongly
/// consistent; the balance is the sum of every row (each row also carries
/// the balance it left).
pub async fn my_points(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("my_points", req, |req, ctx| async move {
        let user = http::caller(&req)?;
        let page = http::page_params(&req)?;
        let after = match page.cursor {
            Some(c) => Some(ledger_cursor(c)?),
            None => None,
        };
        let (rows, next) =
            app.store.points().ledger_page(&user, page.limit, after.as_ref()).await.map_err(http::internal)?;
        let balance = app.store.points().balance(&user).await.map_err(http::internal)?;
        let ledger: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "at": r.at.to_rfc3339(),
                    "delta": r.delta,
                    "reason": r.reason,
                    "orderId": r.order_id,
                    "balanceAfter": r.balance_after.won(),
                })
            })
            .collect();
        let next = next.map(|c| http::encode_cursor(&c.0));
        Ok(http::json(200, &json!({ "balance": balance.won(), "ledger": ledger, "nextCursor": next }), &ctx))
    })
    .await
}

/// A ledger position: `<ms, 13 digits>#<txId>`.
fn ledger_cursor(c: String) -> Result<LedgerCursor, http::Problem> {
    if http::timed_position(&c, 200) {
        Ok(LedgerCursor(c))
    } else {
        Err(http::Problem::bad_request("cursor is not a ledger position"))
    }
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
