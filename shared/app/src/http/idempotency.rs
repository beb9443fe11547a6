//! The `Idempotency-Key` protocol of the POST routes that create something
//! (`POST /orders`, `POST /campaigns/{campaignId}/claim`,
//! `POST /orders/{orderId}/refunds`; ADRs 0004, 0026 and 0030): the key is required; the request runs, and its answer is stored
//! with the key in the same transaction as its writes; a retry with the
//! same key and body gets that answer again (`Idempotent-Replayed: true`),
//! even where running it again would now be refused; the same key with
//! another body is a 422. Nothing is written before the work: the first
//! store call a request makes is its use case's.

use crate::App;
use crate::http::{self, Problem, RequestCtx};
use lambda_http::{Body, Request, Response};
use shop_domain::IdempotencyKey;
use shop_store::idempotency::{Claim, Ticket, payload_hash};

/// The request's `Idempotency-Key`, refused with a 400 when missing or malformed.
pub fn key(req: &Request) -> Result<IdempotencyKey, Problem> {
    match req.headers().get("idempotency-key").map(|v| v.to_str()) {
        None => Err(Problem::bad_request("the Idempotency-Key header is required")),
        Some(Ok(v)) => IdempotencyKey::parse(v).map_err(|e| Problem::bad_request(e.to_string())),
        Some(Err(_)) => Err(Problem::bad_request("Idempotency-Key must be printable ASCII")),
    }
}

/// The ticket of `key` in `scope` (the route and the caller) for a request
/// whose parsed body is `payload`: what its use case records with its answer.
pub fn ticket(app: &App, scope: &str, key: &IdempotencyKey, payload: &serde_json::Value) -> Ticket {
    let hash = payload_hash(payload);
    app.store.idempotency().ticket(scope, key.as_str(), &hash, app.clock.now(), app.config.idempotency)
}

/// The answer to a keyed request its use case did not carry out: an
/// unexpected error (`unexpected`) is logged and answered 500; a refusal
/// may be the work of this key's first request (it took the stock, the
/// coupon, the money asked for), so that request's stored answer stands
/// when there is one, and only otherwise the refusal. `request` names the
/// route's work in the log line.
pub async fn refused<E>(
    app: &App,
    ticket: &Ticket,
    ctx: &RequestCtx,
    e: &E,
    unexpected: Option<&anyhow::Error>,
    request: &'static str,
) -> Result<Response<Body>, Problem>
where
    E: std::fmt::Display,
    for<'a> Problem: From<&'a E>,
{
    if let Some(err) = unexpected {
        tracing::error!(error = ?err, request, "request failed");
        return Err(Problem::from(e));
    }
    if let Some(answer) = answered_before(app, ticket, ctx).await? {
        return Ok(answer);
    }
    tracing::info!(reason = %e, request, "request refused");
    Err(Problem::from(e))
}

/// A request that did not commit (its use case refused it, or lost the
/// key's condition): the answer its key was given before, if it was.
/// `None`: the key is free, and the request's own answer stands.
pub async fn answered_before(app: &App, ticket: &Ticket, ctx: &RequestCtx) -> Result<Option<Response<Body>>, Problem> {
    match app.store.idempotency().recorded(ticket).await.map_err(http::internal)? {
        None => Ok(None),
        Some(Claim::Replay(stored)) => {
            let mut resp = http::raw(stored.status, "application/json", stored.body, ctx);
            resp.headers_mut().insert("idempotent-replayed", ::http::HeaderValue::from_static("true"));
            Ok(Some(resp))
        }
        Some(Claim::InProgress) => Err(in_progress()),
        Some(Claim::PayloadMismatch) => Err(Problem::new(
            422,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "this Idempotency-Key was used with a different request body",
        )),
    }
}

/// The key is taken and its answer not readable yet: retry shortly.
pub fn in_progress() -> Problem {
    Problem::new(
        409,
        "idempotency-in-progress",
        "Request in progress",
        "a request with this Idempotency-Key is still being processed; retry shortly",
    )
}
