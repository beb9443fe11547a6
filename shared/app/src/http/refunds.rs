//! `POST /orders/{orderId}/refunds`: part of a paid order back — chosen
//! units of its lines, or an amount — or the rest of it
//! (docs/adr/0030-partial-refunds.md). The `Idempotency-Key` protocol as
//! `POST /orders`; 202 with the refund, which compensation carries out.
//! A paid virtual account's cash goes back by bank transfer, to the
//! `refundAccount` the body gives (required then; parsed here, sealed by
//! the use case, never logged nor echoed back).

use crate::App;
use crate::http::orders::OrderView;
use crate::http::{self, Problem, RequestCtx, idempotency};
use crate::usecases::request_refund::{RefundAsk, RequestRefundError, request_refund};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use shop_domain::order::{MAX_LINES, Refund, RefundLine, RefundPart};
use shop_domain::{Money, Order, ProductId, Quantity, RefundAccount};
use shop_store::idempotency::StoredResponse;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RefundBody {
    #[serde(default)]
    lines: Option<Vec<LineBody>>,
    #[serde(default)]
    amount: Option<shop_domain::json::Integer>,
    /// Read by [`refund_account`], whose refusals never repeat a value.
    #[serde(default)]
    refund_account: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LineBody {
    product_id: ProductId,
    quantity: Quantity,
}

/// A `refundAccount` (`{bank, accountNumber, holderName}`), parsed. A
/// refusal names the field and the rule, never what was sent: the problem
/// is logged, and an account number must not be.
pub fn refund_account(value: &serde_json::Value) -> Result<RefundAccount, Problem> {
    let invalid = |detail: String| Problem::new(422, "invalid-refund-account", "Invalid refund account", detail);
    let Some(fields) = value.as_object() else {
        return Err(invalid("refundAccount must be an object of bank, accountNumber and holderName".into()));
    };
    if let Some(other) = fields.keys().find(|k| !matches!(k.as_str(), "bank" | "accountNumber" | "holderName")) {
        return Err(invalid(format!("refundAccount has an unknown field {other:?}")));
    }
    let text = |name: &str| {
        fields
            .get(name)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| invalid(format!("refundAccount.{name} must be a string")))
    };
    RefundAccount::parse(text("bank")?, text("accountNumber")?, text("holderName")?)
        .map_err(|e| invalid(format!("refundAccount: {e}")))
}

/// What the request is for the idempotency record's fingerprint: the body
/// with the account reduced to "one was given", so no digest of an account
/// number is ever kept. (The key's first request, account and all, stands.)
pub fn fingerprint(payload: &serde_json::Value) -> serde_json::Value {
    let mut v = payload.clone();
    if let Some(account) = v.get_mut("refundAccount") {
        *account = serde_json::Value::Bool(true);
    }
    v
}

/// The body of `POST /orders/{orderId}/refunds`, parsed into a
/// [`RefundPart`] and the refund account, if one is given.
pub fn parse(payload: &serde_json::Value) -> Result<(RefundPart, Option<RefundAccount>), Problem> {
    let body = RefundBody::deserialize(payload).map_err(|e| Problem::bad_request(e.to_string()))?;
    let account = body.refund_account.as_ref().map(refund_account).transpose()?;
    let part = match (body.lines, body.amount) {
        (Some(lines), None) => {
            if lines.is_empty() || lines.len() > MAX_LINES {
                return Err(Problem::bad_request(format!("lines must have 1 to {MAX_LINES} entries")));
            }
            for (i, l) in lines.iter().enumerate() {
                if lines.iter().take(i).any(|o| o.product_id == l.product_id) {
                    return Err(Problem::new(
                        422,
                        "duplicate-line",
                        "Product on more than one line",
                        format!("product {} appears on more than one line; put its units on one line", l.product_id),
                    )
                    .with("productId", l.product_id.as_str()));
                }
            }
            Ok(RefundPart::Lines(
                lines.into_iter().map(|l| RefundLine { product_id: l.product_id, quantity: l.quantity }).collect(),
            ))
        }
        (None, Some(amount)) => Money::new(i128::from(amount.0))
            .ok()
            .filter(|m| !m.is_zero())
            .map(RefundPart::Amount)
            .ok_or_else(|| Problem::bad_request(format!("amount must be a positive integer, got {}", amount.0))),
        (Some(_), Some(_)) | (None, None) => Err(Problem::bad_request("give either lines or amount, not both")),
    }?;
    Ok((part, account))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundLineView {
    pub product_id: String,
    pub quantity: u32,
}

/// One refund as the API shows it. Money is integer won.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundView {
    pub refund_number: u32,
    pub status: &'static str,
    /// Cash back (card or bank transfer) plus points back.
    pub amount: u64,
    pub cash: u64,
    pub points: u64,
    pub discount_withdrawn: u64,
    /// Whether it took everything the order still held.
    pub rest: bool,
    pub lines: Vec<RefundLineView>,
    pub requested_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The cash goes back by bank transfer to the refund account given
    /// (kept sealed until the PG answers; never shown).
    pub to_refund_account: bool,
}

impl From<&Refund> for RefundView {
    fn from(r: &Refund) -> Self {
        RefundView {
            refund_number: r.number,
            status: r.status.as_str(),
            amount: r.total().unwrap_or(Money::MAX).won(),
            cash: r.cash.won(),
            points: r.points.won(),
            discount_withdrawn: r.discount_withdrawn.won(),
            rest: r.rest,
            lines: r
                .lines
                .iter()
                .map(|l| RefundLineView { product_id: l.product_id.to_string(), quantity: l.quantity.get() })
                .collect(),
            requested_at: r.requested_at.to_rfc3339(),
            failure: r.failure.clone(),
            to_refund_account: r.to_account,
        }
    }
}

/// The answer: the refund asked for, and the order after it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    refund: RefundView,
    order: OrderView,
}

impl From<&RequestRefundError> for Problem {
    fn from(e: &RequestRefundError) -> Problem {
        match e {
            RequestRefundError::NotFound => http::order_not_found(),
            RequestRefundError::Refused(e @ shop_domain::OrderError::IllegalTransition { status, .. }) => {
                Problem::new(409, "order-not-refundable", "Order cannot be refunded", e.to_string())
                    .with("orderStatus", status.as_str())
            }
            RequestRefundError::Refused(other) => Problem::from(other),
            RequestRefundError::KeyUsed => idempotency::in_progress(),
            RequestRefundError::Contention(c) => http::contention(*c, "the order kept changing; retry"),
            RequestRefundError::Unexpected(_) => Problem::internal(),
        }
    }
}

/// `POST /orders/{orderId}/refunds`.
pub async fn refund_order(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    http::serve("refund_order", req, |req, ctx| refund_inner(app, req, ctx)).await
}

async fn refund_inner(app: &App, req: Request, ctx: RequestCtx) -> Result<Response<Body>, Problem> {
    let user = http::caller(&req)?;
    let id = http::order_id_param(&req)?;
    let key = idempotency::key(&req)?;
    let payload: serde_json::Value = http::parse(http::json_body(&req)?)?;
    let (part, account) = parse(&payload)?;
    // The request is the order and the body: the same key for another
    // order is a reuse.
    let scoped = serde_json::json!({ "orderId": id.as_str(), "body": fingerprint(&payload) });
    let ticket = idempotency::ticket(app, &format!("refunds#{user}"), &key, &scoped);
    let render = |order: &Order, refund: &Refund| -> anyhow::Result<StoredResponse> {
        let answer = Answer { refund: RefundView::from(refund), order: OrderView::from(order) };
        Ok(StoredResponse { status: 202, body: serde_json::to_string(&answer)? })
    };
    let ask = RefundAsk { part: &part, account: account.as_ref() };
    match request_refund(app, &user, &id, &ask, &ticket, &ctx.correlation_id, &render).await {
        Ok((_, stored)) => Ok(http::raw(stored.status, "application/json", stored.body, &ctx)),
        Err(e) => {
            let unexpected = match &e {
                RequestRefundError::Unexpected(err) => Some(err),
                _ => None,
            };
            idempotency::refused(app, &ticket, &ctx, &e, unexpected, "refund order").await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_takes_lines_or_an_amount() {
        let lines = parse(&serde_json::json!({"lines": [{"productId": "p1", "quantity": 2}]})).unwrap().0;
        assert!(matches!(lines, RefundPart::Lines(l) if l.len() == 1 && l[0].quantity.get() == 2));
        assert_eq!(parse(&serde_json::json!({"amount": 500})).unwrap().0, RefundPart::Amount(Money::new(500).unwrap()));
        let account = serde_json::json!({"bank": "88", "accountNumber": "11012345677270", "holderName": "홍길동"});
        let (_, given) = parse(&serde_json::json!({"amount": 500, "refundAccount": account})).unwrap();
        assert_eq!(given.map(|a| a.bank_name()), Some("신한은행"));
    }

    #[test]
    fn a_bad_account_is_refused_without_repeating_it() {
        for account in [
            serde_json::json!({"bank": "88", "accountNumber": 11012345677270_u64, "holderName": "홍길동"}),
            serde_json::json!({"bank": "88", "accountNumber": "110-1234-5677270", "holderName": "홍길동"}),
            serde_json::json!({"bank": "99", "accountNumber": "11012345677270", "holderName": "홍길동"}),
            serde_json::json!({"bank": "88", "accountNumber": "11012345677270", "holderName": ""}),
            serde_json::json!({"bank": "88", "accountNumber": "11012345677270"}),
            serde_json::json!({"bank": "88", "accountNumber": "11012345677270", "holderName": "홍길동", "x": 1}),
            serde_json::json!("11012345677270"),
        ] {
            let p = parse(&serde_json::json!({"amount": 500, "refundAccount": account})).unwrap_err();
            assert_eq!((p.status, p.kind), (422, "invalid-refund-account"), "{account}");
            assert!(!p.detail.contains("5677270") && !p.detail.contains("홍길동"), "{}", p.detail);
        }
        let with = serde_json::json!({"amount": 500, "refundAccount": {"accountNumber": "11012345677270"}});
        assert!(!fingerprint(&with).to_string().contains("5677270"), "no digest of the number is kept");
    }

    #[test]
    fn parse_rejects_bad_bodies() {
        for body in [
            serde_json::json!({}),
            serde_json::json!({"amount": 0}),
            serde_json::json!({"amount": -1}),
            serde_json::json!({"amount": 1.5}),
            serde_json::json!({"amount": 5, "lines": [{"productId": "p1", "quantity": 1}]}),
            serde_json::json!({"lines": []}),
            serde_json::json!({"lines": [{"productId": "p1", "quantity": 0}]}),
            serde_json::json!({"lines": [{"productId": "p1"}]}),
            serde_json::json!({"amount": 5, "reason": "x"}),
            serde_json::json!([]),
        ] {
            assert_eq!(parse(&body).unwrap_err().status, 400, "{body}");
        }
        let dup =
            serde_json::json!({"lines": [{"productId": "p1", "quantity": 1}, {"productId": "p1", "quantity": 1}]});
        assert_eq!(parse(&dup).unwrap_err().status, 422);
    }
}
