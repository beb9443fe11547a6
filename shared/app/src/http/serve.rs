//! The one wrapper every API handler runs in ([`serve`]), the request's
//! context (path, correlation id) and the JSON answers built from it.

use super::problem::Problem;
use crate::obs::trace;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use std::future::Future;
use tracing::Instrument;

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
