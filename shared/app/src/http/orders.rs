//! `POST /orders` (the `Idempotency-Key` protocol, then
//! [`place_order`](crate::usecases::place_order)) and `GET /orders/{orderId}`;
//! [`OrderView`], the order as the API shows it.

use crate::App;
use crate::http::idempotency;
use crate::http::{self, Problem, RequestCtx};
use crate::usecases::cancel::{CancelError, cancel_order as cancel};
use crate::usecases::place_order::{NewOrder, PlaceOrderError, place_order};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use shop_domain::order::{self, PlaceError};
use shop_domain::sale::NotAdmitted;
use shop_domain::{CouponId, Money, Order, OrderError, ProductId, Quantity, coupon::CouponError};
use shop_store::OrderPosition;
use shop_store::idempotency::StoredResponse;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateOrderBody {
    items: Vec<ItemBody>,
    #[serde(default)]
    coupon_id: Option<CouponId>,
    #[serde(default)]
    points_to_use: Option<shop_domain::json::Integer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ItemBody {
    product_id: ProductId,
    quantity: Quantity,
}

/// The body of `POST /orders`, parsed into a [`NewOrder`].
pub struct CreateOrder;

impl CreateOrder {
    pub fn parse(bytes: &[u8]) -> Result<NewOrder, Problem> {
        Self::from_payload(&http::parse(bytes)?)
    }

    /// The request from an already parsed JSON body.
    pub fn from_payload(payload: &serde_json::Value) -> Result<NewOrder, Problem> {
        let body = CreateOrderBody::deserialize(payload).map_err(|e| Problem::bad_request(e.to_string()))?;
        if body.items.is_empty() {
            return Err(Problem::bad_request("items must contain at least one line"));
        }
        if body.items.len() > order::MAX_LINES {
            return Err(Problem::bad_request(format!("an order has at most {} lines", order::MAX_LINES)));
        }
        for (i, item) in body.items.iter().enumerate() {
            // Well-formed (JSON Schema cannot say "unique by productId"),
            // but it can never be placed as written: 422.
            if body.items.iter().take(i).any(|o| o.product_id == item.product_id) {
                return Err(Problem::new(
                    422,
                    "duplicate-line",
                    "Product on more than one line",
                    format!(
                        "product {} appears on more than one line; put the total quantity on one line",
                        item.product_id
                    ),
                )
                .with("productId", item.product_id.as_str()));
            }
        }
        let points = body.points_to_use.map_or(0, |i| i.0);
        let points_to_use = Money::new(i128::from(points))
            .map_err(|_| Problem::bad_request(format!("pointsToUse must be a non-negative integer, got {points}")))?;
        Ok(NewOrder {
            items: body.items.into_iter().map(|i| (i.product_id, i.quantity)).collect(),
            coupon_id: body.coupon_id,
            points_to_use,
            admission: None,
        })
    }
}

impl From<&PlaceOrderError> for Problem {
    fn from(e: &PlaceOrderError) -> Problem {
        match e {
            PlaceOrderError::UnknownProduct(p) => {
                Problem::not_found("product-not-found", "Product not found", e.to_string())
                    .with("productId", p.as_str())
            }
            PlaceOrderError::UnknownCoupon(c) => {
                Problem::not_found("coupon-not-found", "Coupon not found", e.to_string()).with("couponId", c.as_str())
            }
            PlaceOrderError::Rejected(e) => Problem::from(e),
            PlaceOrderError::NotAdmitted(n) => not_admitted(n),
            PlaceOrderError::Contention(c) => {
                http::contention(*c, "too many concurrent changes to the same items; retry")
            }
            PlaceOrderError::KeyUsed => idempotency::in_progress(),
            PlaceOrderError::Unexpected(_) => Problem::internal(),
        }
    }
}

/// 403 `not-admitted`: a product a sale gates, ordered without a valid
/// admission to that sale (nothing was written).
fn not_admitted(e: &NotAdmitted) -> Problem {
    let p = Problem::new(403, "not-admitted", "Not admitted", e.to_string());
    match e {
        NotAdmitted::NoAdmission { product, sale } | NotAdmitted::OtherSale { product, sale, .. } => {
            p.with("productId", product.as_str()).with("saleId", sale.as_str())
        }
        NotAdmitted::NoTicket(sale) => p.with("saleId", sale.as_str()),
        NotAdmitted::Token(_) | NotAdmitted::Ticket(_) => p,
    }
}

impl From<&PlaceError> for Problem {
    fn from(e: &PlaceError) -> Problem {
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
    /// Points that paid the amount due (a points payment); `points_used` is
    /// the points taken off the price when the order was placed.
    pub points_paid: u64,
    /// The PG payment the order is paid (or being paid) with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_key: Option<String>,
    /// That payment's status, where the view was read with it ([`OrderView::with_payment`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_status: Option<&'static str>,
    /// While AWAITING_DEPOSIT: the virtual account's due date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deposit_due_at: Option<String>,
    /// The flash sale whose admission placed the order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sale_id: Option<String>,
    pub items: Vec<ItemView>,
    /// Numbered refunds (`POST /orders/{orderId}/refunds`), oldest first;
    /// absent when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refunds: Vec<crate::http::refunds::RefundView>,
}

impl OrderView {
    /// The view with its PG payment's status (the payment record is the
    /// order's payment: its key is the order's).
    pub fn with_payment(mut self, payment: &shop_domain::Payment) -> Self {
        self.payment_key = Some(payment.payment_key.to_string());
        self.payment_status = Some(payment.status.as_str());
        self
    }
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
            points_paid: match o.payment_method {
                Some(shop_domain::PaymentMethod::Points) => o.amount_due.won(),
                Some(shop_domain::PaymentMethod::Card | shop_domain::PaymentMethod::VirtualAccount) | None => 0,
            },
            payment_key: o.payment_key.as_ref().map(ToString::to_string),
            payment_status: None,
            deposit_due_at: o.deposit_due_at.map(|t| t.to_rfc3339()),
            sale_id: o.sale_id.as_ref().map(ToString::to_string),
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
            refunds: o.refunds.iter().map(crate::http::refunds::RefundView::from).collect(),
        }
    }
}

/// `POST /orders`.
pub async fn create_order(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("create_order", req, |req, ctx| create_order_inner(app, req, ctx)).await
}

async fn create_order_inner(app: &App, req: Request, ctx: RequestCtx) -> Result<Response<Body>, Problem> {
    let user = http::caller(&req)?;
    let key = idempotency::key(&req)?;
    // Parsed once: the same value is checked and hashed for idempotency.
    let payload: serde_json::Value = http::parse(http::json_body(&req)?)?;
    let mut cmd = CreateOrder::from_payload(&payload)?;
    cmd.admission = admission_header(&req)?;
    let ticket = idempotency::ticket(app, &format!("orders#{user}"), &key, &payload);
    let render = |order: &Order| -> anyhow::Result<StoredResponse> {
        Ok(StoredResponse { status: 201, body: serde_json::to_string(&OrderView::from(order))? })
    };
    match place_order(app, &user, &cmd, &ticket, &ctx.correlation_id, &render).await {
        Ok((order, stored)) => {
            tracing::Span::current().record("order_id", order.id.as_str());
            Ok(http::raw(stored.status, "application/json", stored.body, &ctx))
        }
        Err(e) => {
            let unexpected = match &e {
                PlaceOrderError::Unexpected(err) => Some(err),
                _ => None,
            };
            idempotency::refused(app, &ticket, &ctx, &e, unexpected, "create order").await
        }
    }
}

/// The longest `Admission` header the document allows.
const ADMISSION_MAX_LEN: usize = 1024;

/// The `Admission` header: an admission token to a sale (docs/waiting-room.md).
fn admission_header(req: &Request) -> Result<Option<String>, Problem> {
    match req.headers().get("admission") {
        None => Ok(None),
        // The document's pattern: printable ASCII, at least one character.
        Some(v) => match v.to_str() {
            Ok(s) if (1..=ADMISSION_MAX_LEN).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) => {
                Ok(Some(s.to_owned()))
            }
            Ok(_) | Err(_) => Err(Problem::bad_request(format!(
                "Admission must be a token of 1 to {ADMISSION_MAX_LEN} printable ASCII characters"
            ))),
        },
    }
}

/// `GET /orders/{orderId}`: the caller's own order; anyone else's is 404.
pub async fn get_order(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("get_order", req, |req, ctx| async move {
        let order = own_order(app, &req).await?;
        let mut view = OrderView::from(&order);
        // An order being paid or paid by the PG shows its payment's status,
        // as the confirm that settled it did.
        if let Some(key) = &order.payment_key
            && let Some(payment) = app.store.payments().get(key).await.map_err(http::internal)?
        {
            view = view.with_payment(&payment);
        }
        Ok(http::json(200, &view, &ctx))
    })
    .await
}

/// The caller's order named by the path; 404 for anyone else's.
pub(crate) async fn own_order(app: &App, req: &Request) -> Result<Order, Problem> {
    let user = http::caller(req)?;
    let id = http::order_id_param(req)?;
    crate::usecases::own_order(app, &user, &id).await.map_err(http::internal)?.ok_or_else(http::order_not_found)
}

/// `GET /orders?status=&limit=&cursor=`: the caller's orders, newest first.
/// Only the caller's: the query is keyed by the token's user.
pub async fn list_orders(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("list_orders", req, |req, ctx| async move {
        let user = http::caller(&req)?;
        let page = http::page_params(&req)?;
        let mut status = None;
        for (name, value) in http::query(&req) {
            if name == "status" {
                status = Some(shop_domain::OrderStatus::parse(value).ok_or_else(|| {
                    Problem::bad_request(format!(
                        "status is one of {}",
                        shop_domain::OrderStatus::ALL.map(|s| s.as_str()).join(", ")
                    ))
                })?);
            }
        }
        let after = match page.cursor {
            Some(c) => {
                Some(OrderPosition::parse(&c).ok_or_else(|| Problem::bad_request("cursor is not an order position"))?)
            }
            None => None,
        };
        let (orders, next) =
            app.store.orders().page(&user, status, page.limit, after.as_ref()).await.map_err(http::internal)?;
        let body = serde_json::json!({
            "orders": orders.iter().map(OrderView::from).collect::<Vec<_>>(),
            "nextCursor": next.map(|p| http::encode_cursor(&p.0)),
        });
        Ok(http::json(200, &body, &ctx))
    })
    .await
}

/// The domain's refusals of an order's transition (a payment, a cancel), as problems.
impl From<&OrderError> for Problem {
    fn from(e: &OrderError) -> Problem {
        match e {
            OrderError::PaymentInProgress => Problem::new(
                409,
                "payment-in-progress",
                "Payment in progress",
                "a payment for this order is being confirmed",
            ),
            OrderError::PastExpiry(_) => Problem::new(409, "order-expired", "Order expired", e.to_string()),
            OrderError::AmountMismatch { expected, .. } => {
                Problem::new(422, "amount-mismatch", "Amount mismatch", e.to_string()).with("amountDue", expected.won())
            }
            OrderError::IllegalTransition { status, .. } => {
                Problem::new(409, "order-not-payable", "Order not in a payable state", e.to_string())
                    .with("orderStatus", status.as_str())
            }
            OrderError::NotYetExpired(_) => Problem::new(409, "conflict", "Conflict", e.to_string()),
            OrderError::AmountOverflow => Problem::new(422, "amount-too-large", "Amount too large", e.to_string()),
            OrderError::RefundExceedsHeld { held, .. } => {
                Problem::new(422, "refund-exceeds-held", "Refund larger than what remains", e.to_string())
                    .with("held", held.won())
            }
            OrderError::UnitsNotHeld { product, held, .. } => {
                Problem::new(422, "refund-units-not-held", "Units not held", e.to_string())
                    .with("productId", product.as_str())
                    .with("held", *held)
            }
            OrderError::NoRefundLines => Problem::bad_request(e.to_string()),
            OrderError::DuplicateRefundLine(p) => {
                Problem::new(422, "duplicate-line", "Product on more than one line", e.to_string())
                    .with("productId", p.as_str())
            }
            OrderError::RefundInProgress => {
                Problem::new(409, "refund-in-progress", "Refund in progress", e.to_string())
            }
            OrderError::TooManyRefunds { max } => {
                Problem::new(422, "too-many-refunds", "Too many refunds", e.to_string()).with("max", *max)
            }
            OrderError::NoSuchRefund(_) => Problem::new(409, "conflict", "Conflict", e.to_string()),
            OrderError::RefundAccountRequired { cash } => {
                Problem::new(422, "refund-account-required", "Refund account required", e.to_string())
                    .with("cash", cash.won())
            }
        }
    }
}

impl From<&CancelError> for Problem {
    fn from(e: &CancelError) -> Problem {
        match e {
            CancelError::NotFound => http::order_not_found(),
            CancelError::Refused(e @ OrderError::IllegalTransition { status, .. }) => {
                Problem::new(409, "order-not-cancellable", "Order cannot be cancelled", e.to_string())
                    .with("orderStatus", status.as_str())
            }
            CancelError::Refused(other) => Problem::from(other),
            CancelError::Contention(c) => http::contention(*c, "the order kept changing; retry"),
            CancelError::Unexpected(err) => http::internal(err),
        }
    }
}

/// `POST /orders/{orderId}/cancel`: before payment the order is CANCELLED
/// and its stock and points come back; after payment it becomes
/// REFUND_PENDING and compensation refunds it. The body is optional:
/// `{"refundAccount": …}`, required for a paid virtual account.
pub async fn cancel_order(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("cancel_order", req, |req, ctx: RequestCtx| async move {
        let user = http::caller(&req)?;
        let id = http::order_id_param(&req)?;
        let account = cancel_body(http::json_body(&req)?)?;
        let order =
            cancel(app, &user, &id, account.as_ref(), &ctx.correlation_id).await.map_err(|e| Problem::from(&e))?;
        Ok(http::json(200, &OrderView::from(&order), &ctx))
    })
    .await
}

/// The cancel's optional body: nothing, `{}`, or `{"refundAccount": …}`.
fn cancel_body(bytes: &[u8]) -> Result<Option<shop_domain::RefundAccount>, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let body = http::parse_object(bytes)?;
    let Some(fields) = body.as_object() else { return Err(Problem::bad_request("the body must be a JSON object")) };
    if let Some(other) = fields.keys().find(|k| k.as_str() != "refundAccount") {
        return Err(Problem::bad_request(format!("unknown field {other:?}; the body takes refundAccount only")));
    }
    fields.get("refundAccount").map(crate::http::refunds::refund_account).transpose()
}

/// `GET /orders/{orderId}/timeline`: the owner's view of the saga.
pub async fn order_timeline(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("order_timeline", req, |req, ctx| async move {
        let order = own_order(app, &req).await?;
        let view = crate::usecases::timeline::timeline(app, &order.id).await.map_err(http::internal)?;
        Ok(http::json(200, &view, &ctx))
    })
    .await
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
            br#"{"items":[{"productId":"p1","quantity":1}],"pointsToUse":-5}"#,
            br#"{"items":[{"productId":"p#1","quantity":1}]}"#,
            br#"{"items":[{"productId":"p1","quantity":1}],"userId":"someone-else"}"#,
        ] {
            let err = CreateOrder::parse(body).unwrap_err();
            assert_eq!(err.status, 400, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn a_product_on_two_lines_is_well_formed_but_refused() {
        let body = br#"{"items":[{"productId":"p1","quantity":1},{"productId":"p1","quantity":1}]}"#;
        let err = CreateOrder::parse(body).unwrap_err();
        assert_eq!(err.status, 422);
        assert_eq!(err.kind, "duplicate-line");
    }
}
