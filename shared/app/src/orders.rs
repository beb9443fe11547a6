//! `POST /orders` and `GET /orders/{orderId}`.
//!
//! Placing an order is one DynamoDB transaction: every line's stock reserved
//! (conditional decrement at the priced price), the coupon ISSUED → HELD, the
//! points debited with a ledger row, the order written PENDING_PAYMENT with
//! `expiresAt`, its `OrderPlaced` outbox event, and the idempotency record
//! completed with the response. Either all of it happens or none of it.

use crate::App;
use crate::http::{self, Problem, RequestCtx};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use shop_domain::order::{self, PlaceError, PlaceOrder};
use shop_domain::points::{LedgerEntry, LedgerReason};
use shop_domain::{CouponId, IdempotencyKey, Money, Order, OrderId, ProductId, Quantity, UserId, coupon::CouponError};
use shop_store::idempotency::{Claim, StoredResponse, payload_hash};
use shop_store::{StoreError, Tx, TxItem};
use tracing::Instrument;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateOrderBody {
    items: Vec<ItemBody>,
    #[serde(default)]
    coupon_id: Option<CouponId>,
    #[serde(default)]
    points_to_use: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ItemBody {
    product_id: ProductId,
    quantity: Quantity,
}

/// A create-order request that passed every check that needs no data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOrder {
    pub items: Vec<(ProductId, Quantity)>,
    pub coupon_id: Option<CouponId>,
    pub points_to_use: Money,
}

impl CreateOrder {
    pub fn parse(bytes: &[u8]) -> Result<Self, Problem> {
        Self::from_payload(&http::parse(bytes)?)
    }

    /// The request from an already parsed JSON body.
    pub fn from_payload(payload: &serde_json::Value) -> Result<Self, Problem> {
        let body = CreateOrderBody::deserialize(payload).map_err(|e| Problem::bad_request(e.to_string()))?;
        if body.items.is_empty() {
            return Err(Problem::bad_request("items must contain at least one line"));
        }
        if body.items.len() > order::MAX_LINES {
            return Err(Problem::bad_request(format!("an order has at most {} lines", order::MAX_LINES)));
        }
        for (i, item) in body.items.iter().enumerate() {
            if body.items.iter().take(i).any(|o| o.product_id == item.product_id) {
                return Err(Problem::bad_request(format!(
                    "product {} appears on more than one line; put the total quantity on one line",
                    item.product_id
                ))
                .with("productId", item.product_id.as_str()));
            }
        }
        let points = body.points_to_use.unwrap_or(0);
        let points_to_use = Money::new(i128::from(points))
            .map_err(|_| Problem::bad_request(format!("pointsToUse must be a non-negative integer, got {points}")))?;
        Ok(CreateOrder {
            items: body.items.into_iter().map(|i| (i.product_id, i.quantity)).collect(),
            coupon_id: body.coupon_id,
            points_to_use,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateOrderError {
    #[error("unknown product {0}")]
    UnknownProduct(ProductId),
    #[error("unknown coupon {0}")]
    UnknownCoupon(CouponId),
    #[error(transparent)]
    Rejected(#[from] PlaceError),
    #[error("the order kept conflicting with concurrent orders")]
    Contention,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl CreateOrderError {
    pub fn problem(&self) -> Problem {
        match self {
            CreateOrderError::UnknownProduct(p) => {
                Problem::not_found("product-not-found", "Product not found", self.to_string())
                    .with("productId", p.as_str())
            }
            CreateOrderError::UnknownCoupon(c) => {
                Problem::not_found("coupon-not-found", "Coupon not found", self.to_string())
                    .with("couponId", c.as_str())
            }
            CreateOrderError::Rejected(e) => place_problem(e),
            CreateOrderError::Contention => {
                Problem::new(409, "contention", "Conflict", "too many concurrent changes to the same items; retry")
            }
            CreateOrderError::Unexpected(_) => Problem::internal(),
        }
    }
}

fn place_problem(e: &PlaceError) -> Problem {
    let detail = e.to_string();
    match e {
        PlaceError::NoItems | PlaceError::TooManyLines { .. } | PlaceError::DuplicateProduct(_) => {
            Problem::bad_request(detail)
        }
        PlaceError::InsufficientStock { product, requested, available } => {
            Problem::new(409, "insufficient-stock", "Insufficient stock", detail)
                .with("productId", product.as_str())
                .with("requested", *requested)
                .with("available", *available)
        }
        PlaceError::Coupon(c) => match c {
            CouponError::NotAvailable { id, status } | CouponError::OtherOrder { id, status } => {
                Problem::new(409, "coupon-unavailable", "Coupon unavailable", detail)
                    .with("couponId", id.as_str())
                    .with("couponStatus", *status)
            }
            CouponError::NotOwned(id) => {
                Problem::new(422, "coupon-not-owned", "Coupon not owned", detail).with("couponId", id.as_str())
            }
            CouponError::Expired(id) => {
                Problem::new(422, "coupon-expired", "Coupon expired", detail).with("couponId", id.as_str())
            }
            CouponError::BelowMinimum { id, min, .. } => {
                Problem::new(422, "coupon-minimum-not-met", "Order below the coupon's minimum", detail)
                    .with("couponId", id.as_str())
                    .with("minOrderAmount", min.won())
            }
            CouponError::Invalid(_) => Problem::new(422, "coupon-invalid", "Coupon invalid", detail),
        },
        PlaceError::Points(shop_domain::points::PointsError::Insufficient { balance, .. }) => {
            Problem::new(409, "insufficient-points", "Insufficient points", detail).with("balance", balance.won())
        }
        PlaceError::Points(shop_domain::points::PointsError::Overflow) | PlaceError::AmountOverflow => {
            Problem::new(422, "amount-too-large", "Amount too large", detail)
        }
        PlaceError::PointsExceedAmount { payable, .. } => {
            Problem::new(422, "points-exceed-amount", "Points exceed the amount to pay", detail)
                .with("payable", payable.won())
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemView {
    pub product_id: String,
    pub name: String,
    pub unit_price: u64,
    pub quantity: u32,
    pub line_total: u64,
}

/// An order as the API shows it. Money is integer won.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub order_id: String,
    pub status: &'static str,
    pub subtotal: u64,
    pub discount: u64,
    pub points_used: u64,
    pub amount_due: u64,
    pub expires_at: String,
    pub created_at: String,
    pub coupon_id: Option<String>,
    pub payment_method: Option<shop_domain::PaymentMethod>,
    pub items: Vec<ItemView>,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        OrderView {
            order_id: o.id.to_string(),
            status: o.status.as_str(),
            subtotal: o.subtotal.won(),
            discount: o.discount.won(),
            points_used: o.points_used.won(),
            amount_due: o.amount_due.won(),
            expires_at: o.expires_at.to_rfc3339(),
            created_at: o.created_at.to_rfc3339(),
            coupon_id: o.coupon_id.as_ref().map(ToString::to_string),
            payment_method: o.payment_method,
            items: o
                .lines
                .iter()
                .map(|l| ItemView {
                    product_id: l.product_id.to_string(),
                    name: l.name.clone(),
                    unit_price: l.unit_price.won(),
                    quantity: l.quantity.get(),
                    line_total: l.line_total.won(),
                })
                .collect(),
        }
    }
}

/// Conflicting writes re-read and re-decide this many times before giving
/// up. Each lost condition means another request committed in between, so
/// with fewer than this many concurrent writers on one user's points or
/// coupon no request ever runs out of attempts; stock conditions are
/// `available >= q`, which concurrent orders do not invalidate.
const ATTEMPTS: usize = 16;

/// Places the order; the idempotency record is completed in the same transaction.
#[tracing::instrument(skip_all, fields(order_id))]
pub async fn place_order(
    app: &App,
    user: &UserId,
    cmd: &CreateOrder,
    lock: &shop_store::idempotency::IdemLock,
    ctx: &RequestCtx,
) -> Result<(Order, StoredResponse), CreateOrderError> {
    let product_ids: Vec<ProductId> = cmd.items.iter().map(|(p, _)| p.clone()).collect();
    for attempt in 1..=ATTEMPTS {
        let inputs = app.store.load_placement(user, &product_ids, cmd.coupon_id.as_ref()).await.map_err(unexpected)?;
        let mut items = Vec::with_capacity(cmd.items.len());
        for ((id, qty), found) in cmd.items.iter().zip(inputs.products) {
            match found {
                Some(p) => items.push((p, *qty)),
                None => return Err(CreateOrderError::UnknownProduct(id.clone())),
            }
        }
        let coupon = match (inputs.coupon, &cmd.coupon_id) {
            (Some(Some(c)), _) => Some(c),
            (Some(None), Some(id)) => return Err(CreateOrderError::UnknownCoupon(id.clone())),
            (Some(None) | None, _) => None,
        };
        let now = app.clock.now();
        let order_id = app.ids.order_id();
        tracing::Span::current().record("order_id", order_id.as_str());
        let placement = order::place(PlaceOrder {
            order_id,
            user_id: user.clone(),
            items: &items,
            coupon: coupon.as_ref(),
            points_to_use: cmd.points_to_use,
            points_balance: inputs.points_balance,
            now,
            ttl_secs: app.config.order_ttl_secs,
        })?;
        let body = serde_json::to_string(&OrderView::from(&placement.order)).map_err(anyhow::Error::from)?;
        let response = StoredResponse { status: 201, body };

        let mut tx = Tx::new();
        for (product, qty) in &items {
            tx.push(app.store.op_reserve_stock(product, *qty)?);
        }
        if let (Some(before), Some(held)) = (&coupon, &placement.held_coupon) {
            tx.push(app.store.op_coupon_transition(before, held)?);
        }
        if !placement.order.points_used.is_zero() {
            let entry = LedgerEntry {
                user_id: user.clone(),
                tx_id: app.ids.tx_id(),
                delta: shop_domain::points::signed(placement.order.points_used, true),
                reason: LedgerReason::OrderSpend,
                order_id: Some(placement.order.id.clone()),
                balance_after: placement.points_balance_after,
                at: now,
            };
            tx.extend(app.store.ops_points(inputs.points_balance, &entry)?);
        }
        tx.push(app.store.op_create_order(&placement.order)?);
        tx.push(app.store.op_put_event(&placement.event, &ctx.correlation_id, None)?);
        tx.push(app.store.op_idem_complete(lock, &response)?);

        match app.store.transact(tx).await {
            Ok(()) => {
                tracing::info!(amount_due = placement.order.amount_due.won(), "order placed");
                return Ok((placement.order, response));
            }
            // Someone changed stock, coupon or points between our read and
            // write: re-read, and the domain gives the precise answer.
            Err(StoreError::Conflict { item, reason }) if !matches!(item, TxItem::Idempotency) => {
                tracing::info!(attempt, %item, %reason, "order transaction conflicted; re-reading");
                if reason == shop_store::ConflictReason::TransactionConflict {
                    // DynamoDB refused a simultaneous transaction on the same
                    // item: back off a little (jittered by the order id).
                    let jitter = u64::from(shop_store::keys::shard(placement.order.id.as_str()));
                    tokio::time::sleep(std::time::Duration::from_millis(5 * attempt as u64 + jitter)).await;
                }
            }
            Err(StoreError::Conflict { item, reason }) => {
                return Err(CreateOrderError::Unexpected(anyhow::anyhow!(
                    "lost the idempotency lock: {item} {reason}"
                )));
            }
            Err(StoreError::Unexpected(e)) => return Err(CreateOrderError::Unexpected(e)),
        }
    }
    Err(CreateOrderError::Contention)
}

fn unexpected(e: StoreError) -> CreateOrderError {
    match e {
        StoreError::Unexpected(e) => CreateOrderError::Unexpected(e),
        other => CreateOrderError::Unexpected(anyhow::Error::new(other)),
    }
}

/// `POST /orders`.
pub async fn create_order(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let ctx = RequestCtx::of(&req);
    let span =
        tracing::info_span!("create_order", correlation_id = %ctx.correlation_id, order_id = tracing::field::Empty);
    Ok(create_order_inner(app, &req, &ctx).instrument(span).await.unwrap_or_else(|p| p.response(&ctx)))
}

async fn create_order_inner(app: &App, req: &Request, ctx: &RequestCtx) -> Result<Response<Body>, Problem> {
    let user = http::caller(req)?;
    let key = match req.headers().get("idempotency-key").map(|v| v.to_str()) {
        None => return Err(Problem::bad_request("the Idempotency-Key header is required")),
        Some(Ok(v)) => IdempotencyKey::parse(v).map_err(|e| Problem::bad_request(e.to_string()))?,
        Some(Err(_)) => return Err(Problem::bad_request("Idempotency-Key must be printable ASCII")),
    };
    // Parsed once: the same value is checked and hashed for idempotency.
    let payload: serde_json::Value = http::parse(http::json_body(req)?)?;
    let cmd = CreateOrder::from_payload(&payload)?;
    let hash = payload_hash(&payload);
    let scope = format!("orders#{user}");
    let now = app.clock.now();
    let claim =
        app.store.idem_claim(&scope, key.as_str(), &hash, now, app.config.idempotency).await.map_err(http::internal)?;
    let lock = match claim {
        Claim::Acquired(lock) => lock,
        Claim::Replay(stored) => {
            let mut resp = http::raw(stored.status, "application/json", stored.body, ctx);
            resp.headers_mut().insert("idempotent-replayed", ::http::HeaderValue::from_static("true"));
            return Ok(resp);
        }
        Claim::InProgress => {
            return Err(Problem::new(
                409,
                "idempotency-in-progress",
                "Request in progress",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            ));
        }
        Claim::PayloadMismatch => {
            return Err(Problem::new(
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "this Idempotency-Key was used with a different request body",
            ));
        }
    };
    match place_order(app, &user, &cmd, &lock, ctx).await {
        Ok((_, stored)) => Ok(http::raw(stored.status, "application/json", stored.body, ctx)),
        Err(e) => {
            if let CreateOrderError::Unexpected(err) = &e {
                tracing::error!(error = ?err, "create order failed");
            } else {
                tracing::info!(reason = %e, "order refused");
            }
            // Nothing was written: free the key so the client can retry it.
            if let Err(release) = app.store.idem_release(&lock).await {
                tracing::warn!(error = %release, "could not release idempotency record");
            }
            Err(e.problem())
        }
    }
}

/// `GET /orders/{orderId}`: the caller's own order; anyone else's is 404.
pub async fn get_order(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let ctx = RequestCtx::of(&req);
    let span = tracing::info_span!("get_order", correlation_id = %ctx.correlation_id, order_id = tracing::field::Empty);
    Ok(get_order_inner(app, &req, &ctx).instrument(span).await.unwrap_or_else(|p| p.response(&ctx)))
}

pub(crate) async fn load_own_order(app: &App, req: &Request) -> Result<Order, Problem> {
    let user = http::caller(req)?;
    let not_found = || Problem::not_found("order-not-found", "Order not found", "no such order");
    let id = http::path_param(req, "orderId").and_then(|s| OrderId::parse(s).ok()).ok_or_else(not_found)?;
    tracing::Span::current().record("order_id", id.as_str());
    let order = app.store.get_order(&id).await.map_err(http::internal)?;
    match order {
        Some(o) if o.user_id == user => Ok(o),
        Some(_) | None => Err(not_found()),
    }
}

async fn get_order_inner(app: &App, req: &Request, ctx: &RequestCtx) -> Result<Response<Body>, Problem> {
    let order = load_own_order(app, req).await?;
    Ok(http::json(200, &OrderView::from(&order), ctx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_the_documented_body() {
        let cmd =
            CreateOrder::parse(br#"{"items":[{"productId":"p1","quantity":2}],"couponId":"c1","pointsToUse":1000}"#)
                .unwrap();
        assert_eq!(cmd.items.len(), 1);
        assert_eq!(cmd.points_to_use.won(), 1000);
    }

    #[test]
    fn parse_rejects_bad_bodies() {
        for body in [
            &b""[..],
            b"{",
            b"[]",
            br#"{"items":[]}"#,
            br#"{"items":[{"productId":"p1","quantity":0}]}"#,
            br#"{"items":[{"productId":"p1","quantity":-1}]}"#,
            br#"{"items":[{"productId":"p1","quantity":1000000}]}"#,
            br#"{"items":[{"productId":"p1","quantity":1.5}]}"#,
            br#"{"items":[{"productId":"p1","quantity":"2"}]}"#,
            br#"{"items":[{"productId":"p1","quantity":1},{"productId":"p1","quantity":1}]}"#,
            br#"{"items":[{"productId":"p1","quantity":1}],"pointsToUse":-5}"#,
            br#"{"items":[{"productId":"p#1","quantity":1}]}"#,
            br#"{"items":[{"productId":"p1","quantity":1}],"userId":"someone-else"}"#,
        ] {
            let err = CreateOrder::parse(body).unwrap_err();
            assert_eq!(err.status, 400, "{}", String::from_utf8_lossy(body));
        }
    }
}
