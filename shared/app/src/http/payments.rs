//! `POST /payments/confirm`, `POST /payments/points` and
//! `POST /orders/{orderId}/cancel`: each parses its body into domain values,
//! runs its use case and turns the result or the use case's error into the
//! answer documented in docs/api.md.

use crate::App;
use crate::http::orders::OrderView;
use crate::http::{self, Problem};
use crate::usecases::confirm_payment::{Confirm, ConfirmError, Confirmed, confirm_payment as confirm};
use crate::usecases::pay_with_points::{PayWithPointsError, pay_with_points as pay_points};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use shop_domain::{Money, OrderId, PaymentKey};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConfirmBody {
    order_id: OrderId,
    payment_key: PaymentKey,
    amount: Money,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PointsBody {
    order_id: OrderId,
}

impl From<&ConfirmError> for Problem {
    fn from(e: &ConfirmError) -> Problem {
        match e {
            ConfirmError::NotFound => http::order_not_found(),
            ConfirmError::KeyMismatch => Problem::new(
                422,
                "payment-key-mismatch",
                "Payment key does not match",
                "the PG holds no payment with this paymentKey for this order and amount; start a new checkout",
            ),
            ConfirmError::PgUnavailable(_) => {
                http::pg_unavailable("the payment could not be verified with the PG; nothing was charged, retry")
            }
            ConfirmError::Refused(e) => Problem::from(e),
            ConfirmError::KeyUsed => Problem::new(
                409,
                "payment-key-used",
                "Payment key already used",
                "this paymentKey was already used for a payment; start a new checkout",
            ),
            ConfirmError::Declined { code, message, order_status } => {
                Problem::new(402, "payment-declined", "Payment declined", message.clone())
                    .with("pgCode", code.as_str())
                    .with("orderStatus", order_status.as_str())
            }
            ConfirmError::Orphaned { order_status } => Problem::new(
                409,
                "order-not-payable",
                "Order no longer payable",
                "the order expired or was cancelled while the payment was confirmed; the payment will be cancelled",
            )
            .with("orderStatus", order_status.as_str()),
            ConfirmError::Contention(c) => http::contention(*c, "the order kept changing; retry"),
            ConfirmError::Unexpected(err) => http::internal(err),
        }
    }
}

impl From<&PayWithPointsError> for Problem {
    fn from(e: &PayWithPointsError) -> Problem {
        match e {
            PayWithPointsError::NotFound => http::order_not_found(),
            PayWithPointsError::Refused(e) => Problem::from(e),
            PayWithPointsError::InsufficientPoints { balance, amount_due } => Problem::new(
                409,
                "insufficient-points",
                "Insufficient points",
                format!("the order needs {} points, the balance is {}", amount_due.won(), balance.won()),
            )
            .with("balance", balance.won())
            .with("amountDue", amount_due.won()),
            PayWithPointsError::Contention(c) => http::contention(*c, "the order kept changing; retry"),
            PayWithPointsError::Unexpected(err) => http::internal(err),
        }
    }
}

/// `POST /payments/confirm` `{"orderId","paymentKey","amount"}`.
pub async fn confirm_payment(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("confirm_payment", req, |req, ctx| async move {
        let user = http::caller(&req)?;
        let body: ConfirmBody = http::parse(http::json_body(&req)?)?;
        tracing::Span::current().record("order_id", body.order_id.as_str());
        let cmd = Confirm { order_id: body.order_id, payment_key: body.payment_key, amount: body.amount };
        match confirm(app, &user, &cmd, &ctx.correlation_id).await.map_err(|e| Problem::from(&e))? {
            Confirmed::Pending { order_id } => {
                Ok(http::json(202, &serde_json::json!({"orderId": order_id, "status": "CONFIRMING"}), &ctx))
            }
            Confirmed::Settled { settled, pg } => {
                let view = OrderView::from(&settled.order).with_payment(&settled.payment);
                let mut body = serde_json::to_value(view).map_err(http::internal)?;
                if let (Some(obj), Some(va)) = (body.as_object_mut(), pg.and_then(|p| p.virtual_account)) {
                    obj.insert("virtualAccount".into(), va);
                }
                Ok(http::json(200, &body, &ctx))
            }
        }
    })
    .await
}

/// `POST /payments/points` `{"orderId"}`: the whole amount due from points.
pub async fn pay_with_points(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("pay_with_points", req, |req, ctx| async move {
        let user = http::caller(&req)?;
        let body: PointsBody = http::parse(http::json_body(&req)?)?;
        tracing::Span::current().record("order_id", body.order_id.as_str());
        let paid = pay_points(app, &user, &body.order_id, &ctx.correlation_id).await.map_err(|e| Problem::from(&e))?;
        Ok(http::json(200, &OrderView::from(&paid), &ctx))
    })
    .await
}
