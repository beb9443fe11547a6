//! The `Idempotency-Key` protocol of the POST routes that create something
//! (`POST /orders`, `POST /campaigns/{campaignId}/claim`; ADR 0004): the key
//! is required; the first request with it runs and its answer is stored in
//! the same transaction as its writes; a retry with the same key and body
//! gets that answer again (`Idempotent-Replayed: true`); the same key with
//! another body is a 422, and while the first is still running a 409.

use crate::App;
use crate::http::{self, Problem, RequestCtx};
use lambda_http::{Body, Request, Response};
use shop_domain::IdempotencyKey;
use shop_store::idempotency::{Claim, IdemLock, payload_hash};

/// What the protocol says about a request.
pub enum Admission {
    /// First time: run it, and complete `lock` with the answer in the write.
    Run(IdemLock),
    /// Seen before and finished: this is the stored answer.
    Replay(Response<Body>),
}

/// The request's `Idempotency-Key`, refused with a 400 when missing or malformed.
pub fn key(req: &Request) -> Result<IdempotencyKey, Problem> {
    match req.headers().get("idempotency-key").map(|v| v.to_str()) {
        None => Err(Problem::bad_request("the Idempotency-Key header is required")),
        Some(Ok(v)) => IdempotencyKey::parse(v).map_err(|e| Problem::bad_request(e.to_string())),
        Some(Err(_)) => Err(Problem::bad_request("Idempotency-Key must be printable ASCII")),
    }
}

/// Claims `key` in `scope` (the route and the caller) for a request whose
/// parsed body is `payload`.
pub async fn admit(
    app: &App,
    scope: &str,
    key: &IdempotencyKey,
    payload: &serde_json::Value,
    ctx: &RequestCtx,
) -> Result<Admission, Problem> {
    let hash = payload_hash(payload);
    let now = app.clock.now();
    let claim = app
        .store
        .idempotency()
        .claim(scope, key.as_str(), &hash, now, app.config.idempotency)
        .await
        .map_err(http::internal)?;
    match claim {
        Claim::Acquired(lock) => Ok(Admission::Run(lock)),
        Claim::Replay(stored) => {
            let mut resp = http::raw(stored.status, "application/json", stored.body, ctx);
            resp.headers_mut().insert("idempotent-replayed", ::http::HeaderValue::from_static("true"));
            Ok(Admission::Replay(resp))
        }
        Claim::InProgress => Err(Problem::new(
            409,
            "idempotency-in-progress",
            "Request in progress",
            "a request with this Idempotency-Key is still being processed; retry shortly",
        )),
        Claim::PayloadMismatch => Err(Problem::new(
            422,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "this Idempotency-Key was used with a different request body",
        )),
    }
}

/// Nothing was written: frees the key so the client can retry with it.
pub async fn release(app: &App, lock: &IdemLock) {
    if let Err(e) = app.store.idempotency().release(lock).await {
        tracing::warn!(error = %e, "could not release idempotency record");
    }
}
