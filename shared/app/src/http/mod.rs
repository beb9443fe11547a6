//! The HTTP edge: the only place that knows `lambda_http` and problem+json.
//! One handler per route (`orders`, `payments`, `webhook`, `views`,
//! `catalog`, `campaigns`), each
//! run inside [`serve`] — the request's context, a span with its
//! correlation id, and the problem answer for any error — and translating
//! between the request and a use case (`crate::usecases`).
//!
//! Here too: RFC 9457 problem details, JSON responses, the caller's identity
//! from the JWT authorizer's claims, correlation ids and request-body limits.
//!
//! Identity comes only from `requestContext.authorizer.jwt.claims.sub`, which
//! API Gateway (or the local stack, which verifies the token the same way)
//! fills in after validating the token. Nothing in a body names the caller.

pub mod campaigns;
pub mod catalog;
pub mod idempotency;
pub mod orders;
pub mod payments;
pub mod routes;
pub mod views;
pub mod webhook;

use crate::obs::trace;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use shop_domain::{OrderId, UserId};
use std::future::Future;
use tracing::Instrument;

/// Bodies larger than this are refused with 413 before parsing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

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

/// The one wrapper every API handler runs in: `handler` gets the request
/// and its context inside a span named by `route` carrying the correlation
/// id (and the order id, once the handler records it); its problem, if any,
/// becomes the RFC 9457 answer. Handlers never fail the invocation.
pub async fn serve<F, Fut>(route: &'static str, req: Request, handler: F) -> Result<Response<Body>, lambda_http::Error>
where
    F: FnOnce(Request, RequestCtx) -> Fut,
    Fut: Future<Output = Result<Response<Body>, Problem>>,
{
    let ctx = RequestCtx::of(&req);
    let span = tracing::info_span!(
        "request",
        route,
        correlation_id = %ctx.correlation_id,
        order_id = tracing::field::Empty,
        xray_trace_id = tracing::field::Empty
    );
    // The caller's trace, else the one Lambda started for this invocation.
    let traceparent = req.headers().get(trace::TRACEPARENT).and_then(|v| v.to_str().ok());
    let lambda_trace = req.lambda_context_ref().and_then(|c| c.xray_trace_id.as_deref());
    trace::continue_trace(&span, trace::request_span_parent(traceparent, lambda_trace));
    let started = std::time::Instant::now();
    let answer = handler(req, ctx.clone()).instrument(span.clone()).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    crate::obs::metrics::observe_ms(crate::obs::metrics::REQUEST_LATENCY, latency_ms);
    let response = answer.unwrap_or_else(|p| p.response(&ctx));
    span.in_scope(|| tracing::info!(status = response.status().as_u16(), latency_ms, "answered"));
    Ok(response)
}

/// The `{orderId}` path parameter; anything unparsable is "not found" (it
/// names no order of the caller's).
pub fn order_id_param(req: &Request) -> Result<OrderId, Problem> {
    let id = path_param(req, "orderId").and_then(|s| OrderId::parse(s).ok()).ok_or_else(order_not_found)?;
    tracing::Span::current().record("order_id", id.as_str());
    Ok(id)
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

/// What every handler knows about its request.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub correlation_id: String,
    pub path: String,
}

impl RequestCtx {
    pub fn of(req: &Request) -> Self {
        Self { correlation_id: correlation_id(req), path: req.raw_http_path().to_owned() }
    }
}

pub fn raw(status: u16, content_type: &str, body: String, ctx: &RequestCtx) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body));
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    if let Ok(v) = http::HeaderValue::from_str(&ctx.correlation_id) {
        resp.headers_mut().insert("x-correlation-id", v);
    }
    resp
}

pub fn json<T: Serialize>(status: u16, value: &T, ctx: &RequestCtx) -> Response<Body> {
    match serde_json::to_string(value) {
        Ok(body) => raw(status, "application/json", body, ctx),
        Err(e) => {
            tracing::error!(error = %e, "response serialisation failed");
            Problem::internal().response(ctx)
        }
    }
}

/// `X-Correlation-Id` when the client sent a sane one, else the API Gateway
/// request id, else a new id.
pub fn correlation_id(req: &Request) -> String {
    let from_header = req
        .headers()
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()));
    if let Some(v) = from_header {
        return v.to_owned();
    }
    let request_id = match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => c.request_id.clone(),
        _ => None,
    };
    request_id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// The one pagination convention of the list routes: `?limit=` (1 to
/// [`MAX_PAGE`], default [`DEFAULT_PAGE`]) and `?cursor=` (opaque, from the
/// previous page's `nextCursor`; absent on the first page). The answer
/// carries `nextCursor`, `null` on the last page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageParams {
    pub limit: usize,
    /// The decoded cursor.
    pub cursor: Option<String>,
}

pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;

/// Reads `limit` and `cursor` from the query string; anything else in it is
/// ignored. Values are taken as sent (no percent-decoding): a valid limit
/// is digits and a valid cursor URL-safe characters, neither needs encoding.
pub fn page_params(req: &Request) -> Result<PageParams, Problem> {
    let mut page = PageParams { limit: DEFAULT_PAGE, cursor: None };
    for (name, value) in query(req) {
        match name {
            "limit" => {
                page.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n) && value.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| Problem::bad_request(format!("limit is an integer from 1 to {MAX_PAGE}")))?;
            }
            "cursor" => page.cursor = Some(decode_cursor(value)?),
            _ => {}
        }
    }
    Ok(page)
}

/// The query string's `name=value` pairs as sent (no percent-decoding:
/// every value the API reads is one that needs no encoding).
pub fn query(req: &Request) -> impl Iterator<Item = (&str, &str)> {
    req.uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// A public, cacheable JSON answer: a strong `ETag` (a hash of the body)
/// and `cache_control`; a `304 Not Modified` without a body when the
/// request's `If-None-Match` names that tag (or is `*`). Weak tags compare
/// by their opaque part, as RFC 9110 has `If-None-Match` do.
pub fn cacheable<T: Serialize>(
    req: &Request,
    value: &T,
    cache_control: &'static str,
    ctx: &RequestCtx,
) -> Response<Body> {
    use sha2::Digest;
    let body = match serde_json::to_string(value) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "response serialisation failed");
            return Problem::internal().response(ctx);
        }
    };
    let digest = sha2::Sha256::digest(body.as_bytes());
    let etag = format!("\"{}\"", hex::encode(digest.get(..16).unwrap_or_default()));
    let matches = req
        .headers()
        .get_all(http::header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag);
    let mut resp = if matches {
        let mut r = Response::new(Body::Empty);
        *r.status_mut() = http::StatusCode::NOT_MODIFIED;
        if let Ok(v) = http::HeaderValue::from_str(&ctx.correlation_id) {
            r.headers_mut().insert("x-correlation-id", v);
        }
        r
    } else {
        raw(200, "application/json", body, ctx)
    };
    if let Ok(v) = http::HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(http::header::ETAG, v);
    }
    resp.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static(cache_control));
    resp
}

/// A cursor as the API hands it out: the store's position with `#` written
/// `~`, so it is letters, digits and `-._~` — nothing a URL must encode.
/// Each list route's OpenAPI pattern is exactly the positions it accepts:
/// any cursor that matches is a place to start from, handed out or not.
pub fn encode_cursor(position: &str) -> String {
    position.replace('#', "~")
}

fn decode_cursor(c: &str) -> Result<String, Problem> {
    let url_safe =
        !c.is_empty() && c.len() <= 300 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if url_safe {
        Ok(c.replace('~', "#"))
    } else {
        Err(Problem::bad_request("cursor is not one this API hands out (use nextCursor as given)"))
    }
}

/// A position of a list ordered by time: `<ms, 13 digits>#<id>`, the id of
/// at most `max` key characters (`A-Z a-z 0-9 - _ .`).
pub fn timed_position(c: &str, max: usize) -> bool {
    c.split_once('#').is_some_and(|(ms, id)| {
        ms.len() == 13
            && ms.bytes().all(|b| b.is_ascii_digit())
            && (1..=max).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    })
}

/// The authenticated caller: the `sub` claim the JWT authorizer verified.
pub fn caller(req: &Request) -> Result<UserId, Problem> {
    let sub = req
        .request_context_ref()
        .and_then(|c| c.authorizer())
        .and_then(|a| a.jwt.as_ref())
        .and_then(|j| j.claims.get("sub"));
    match sub {
        Some(s) => UserId::parse(s.as_str()).map_err(|_| Problem::unauthorized()),
        None => Err(Problem::unauthorized()),
    }
}

/// The claim and value that make a token an operator's (the console's and
/// the operator routes'). A shopper's token has no `role`. In AWS the
/// identity provider adds it (Cognito: a pre-token-generation trigger);
/// locally `shop token --operator` does.
pub const ROLE_CLAIM: &str = "role";
pub const OPERATOR_ROLE: &str = "operator";

/// The caller of an operator route: a token the JWT authorizer verified
/// (else 401) whose `role` claim is `operator` (else 403, before the body is
/// even read: a shopper learns nothing of what the route would take).
pub fn operator(req: &Request) -> Result<String, Problem> {
    let claims = req.request_context_ref().and_then(|c| c.authorizer()).and_then(|a| a.jwt.as_ref()).map(|j| &j.claims);
    let sub = claims.and_then(|c| c.get("sub")).ok_or_else(Problem::unauthorized)?;
    match claims.and_then(|c| c.get(ROLE_CLAIM)).map(String::as_str) {
        Some(OPERATOR_ROLE) => Ok(sub.clone()),
        _ => Err(Problem::new(403, "not-operator", "Operators only", "this route takes an operator's token")),
    }
}

/// The body as bytes, refusing oversized bodies. The content type is not
/// checked: the body must parse as JSON whatever the client labelled it.
pub fn json_body(req: &Request) -> Result<&[u8], Problem> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Problem::new(
            413,
            "payload-too-large",
            "Payload too large",
            format!("the body is {} bytes; the limit is {MAX_BODY_BYTES}", bytes.len()),
        ));
    }
    Ok(bytes)
}

/// Parses JSON into `T`, naming what is wrong in a 400.
pub fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    if bytes.is_empty() {
        return Err(Problem::bad_request("the request body is empty; a JSON object is required"));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let detail = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                format!("the body is not valid JSON ({e})")
            }
            serde_json::error::Category::Data | serde_json::error::Category::Io => e.to_string(),
        };
        Problem::bad_request(detail)
    })
}

pub fn path_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.path_parameters_ref().and_then(|p| p.first(name))
}
