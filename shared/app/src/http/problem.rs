//! RFC 9457 problem details: the one shape of every error answer, and the
//! problems several routes share. A use case's error enum becomes a
//! problem by `impl From<&ItsError> for Problem` in the file of its route.

use super::serve::{RequestCtx, raw};
use lambda_http::{Body, Response};

pub const PROBLEM_BASE: &str = "https://shop.example/problems/";

/// An RFC 9457 problem. `kind` is the last segment of its `type` URI; the
/// full list is in docs/api.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: u16,
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Extension members (e.g. `productId`).
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl Problem {
    pub fn new(status: u16, kind: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self { status, kind, title, detail: detail.into(), extensions: serde_json::Map::new() }
    }

    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, "invalid-request", "Invalid request", detail)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "unauthorized", "Unauthorized", "a valid bearer token is required")
    }

    pub fn not_found(kind: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self::new(404, kind, title, detail)
    }

    /// A 500 that says nothing about the cause; the log has it, under the
    /// same correlation id.
    pub fn internal() -> Self {
        Self::new(500, "internal", "Internal error", "the request could not be completed; retry later")
    }

    pub fn body(&self, instance: &str, correlation_id: &str) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("type".into(), format!("{PROBLEM_BASE}{}", self.kind).into());
        m.insert("title".into(), self.title.into());
        m.insert("status".into(), self.status.into());
        m.insert("detail".into(), self.detail.clone().into());
        m.insert("instance".into(), instance.into());
        m.insert("correlationId".into(), correlation_id.into());
        // RFC 9457's own members win: an extension never redefines them.
        for (k, v) in &self.extensions {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        serde_json::Value::Object(m)
    }

    pub fn response(&self, ctx: &RequestCtx) -> Response<Body> {
        let mut response =
            raw(self.status, "application/problem+json", self.body(&ctx.path, &ctx.correlation_id).to_string(), ctx);
        // Every 503 here is "nothing was done, the same request later is safe".
        if self.status == 503 {
            response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
        }
        response
    }
}

/// Logs an unexpected error (the log keeps the cause under the request's
/// correlation id) and answers the client a bare 500.
pub fn internal(e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %format_args!("{e:#}"), "request failed");
    Problem::internal()
}

/// 404 for an order that does not exist or is not the caller's: the two are
/// never told apart.
pub fn order_not_found() -> Problem {
    Problem::not_found("order-not-found", "Order not found", "no such order")
}

/// 503 when the PG could not be asked: nothing was recorded, a retry is safe.
pub fn pg_unavailable(detail: &str) -> Problem {
    Problem::new(503, "pg-unavailable", "PG unavailable", detail)
}

/// 409 when a use case ran out of attempts against concurrent writers.
/// A write that did not land after every attempt: a real conflict is a
/// 409; a store that kept throttling is a 503 — nothing about the request
/// was wrong, and the same request later is safe.
pub fn contention(c: crate::usecases::retry::Contended, conflict_detail: &str) -> Problem {
    match c {
        crate::usecases::retry::Contended::Conflict => Problem::new(409, "contention", "Conflict", conflict_detail),
        crate::usecases::retry::Contended::Throttled => Problem::new(
            503,
            "store-busy",
            "Service Unavailable",
            "the store is over capacity and throttled every attempt; nothing was written, retry later",
        ),
    }
}
