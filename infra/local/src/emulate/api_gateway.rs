//! The local API: an HTTP server that does what API Gateway's HTTP API does
//! before a function runs — route matching, JWT verification, the v2 event
//! with claims in `requestContext.authorizer.jwt` — and then calls the same
//! handler the Lambda binary calls.

use crate::jwt;
use axum::body::Body as AxumBody;
use axum::extract::State;
use axum::response::Response as AxumResponse;
use base64::Engine as _;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription, ApiGatewayV2httpRequest,
    ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
};
use lambda_http::request::LambdaRequest;
use shop_app::App;
use shop_app::http::Problem;
use shop_app::http::routes;
use shop_app::obs::telemetry;
use std::collections::HashMap;
use std::sync::Arc;
use tracing::Instrument as _;

pub const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

pub struct ServerState {
    pub app: App,
    pub jwt_secret: String,
}

pub fn router(state: Arc<ServerState>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

fn problem(status: u16, p: &Problem, path: &str, correlation_id: &str) -> AxumResponse {
    let body = p.body(path, correlation_id).to_string();
    let mut resp = AxumResponse::new(AxumBody::from(body));
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/problem+json"));
    resp
}

async fn handle(State(state): State<Arc<ServerState>>, req: axum::extract::Request) -> AxumResponse {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let request_id = uuid::Uuid::now_v7().to_string();
    let method = parts.method.as_str().to_owned();

    if method == "GET" && path == "/openapi.json" {
        let mut resp = AxumResponse::new(AxumBody::from(OPENAPI));
        resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        return resp;
    }
    if method == "GET" && path == "/healthz" {
        return AxumResponse::new(AxumBody::from("ok"));
    }

    let Some((route, params)) = routes::match_route(&method, &path) else {
        let (status, p) = if routes::path_exists(&path) {
            (
                405,
                Problem::new(
                    405,
                    "method-not-allowed",
                    "Method not allowed",
                    format!("{method} is not allowed on {path}"),
                ),
            )
        } else {
            (404, Problem::not_found("not-found", "Not found", format!("no route for {method} {path}")))
        };
        let mut resp = problem(status, &p, &path, &request_id);
        // RFC 9110: a 405 names the methods the resource takes.
        if status == 405
            && let Ok(allow) = http::HeaderValue::from_str(&routes::allowed_methods(&path).join(", "))
        {
            resp.headers_mut().insert(http::header::ALLOW, allow);
        }
        return resp;
    };

    let claims = if route.authorized {
        let token = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
        let now = state.app.clock.now().seconds();
        match token.map(|t| jwt::verify(&state.jwt_secret, t.trim(), now)) {
            Some(Ok(claims)) => Some(claims),
            Some(Err(e)) => {
                tracing::info!(reason = %e, "token refused");
                let mut resp = problem(401, &Problem::unauthorized(), &path, &request_id);
                resp.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
                return resp;
            }
            None => {
                let mut resp = problem(401, &Problem::unauthorized(), &path, &request_id);
                resp.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
                return resp;
            }
        }
    } else {
        None
    };

    // The listener refuses a body past its limit, by its length or while it
    // streams, and one sent too slowly (crate::listen); the routes' own limit
    // is applied here too, whatever limit the listener was given, so never
    // more than 64 KiB is buffered. API Gateway itself would buffer 10 MB
    // before the function refused anything past 64 KiB.
    let bytes = match axum::body::to_bytes(body, shop_app::http::extract::MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            let p = match crate::listen::body_refusal(&e) {
                Some((413, why)) => Problem::new(413, "payload-too-large", "Payload too large", why),
                Some((status, why)) => Problem::new(status, "request-timeout", "Request timeout", why),
                None => Problem::bad_request(format!("the request body could not be read: {e}")),
            };
            return problem(p.status, &p, &path, &request_id);
        }
    };

    let event = api_gateway_v2_event(&parts, &path, route.path, &params, claims.as_ref(), &bytes, &request_id);
    let request: lambda_http::Request = LambdaRequest::ApiGatewayV2(event).into();
    // The function's invocation span, as lambda_runtime opens it in AWS.
    let invocation = telemetry::invocation_span(route.function, &telemetry::new_request_id());
    match routes::invoke(&state.app, route.function, request).instrument(invocation).await {
        Ok(resp) => into_axum(resp),
        Err(e) => {
            // A Lambda handler error: API Gateway answers 500 {"message":"Internal Server Error"}.
            tracing::error!(error = %e, function = route.function, "handler failed");
            problem(500, &Problem::internal(), &path, &request_id)
        }
    }
}

/// The HTTP API payload format 2.0 event for this request, as API Gateway
/// builds it after its JWT authorizer accepted the token.
fn api_gateway_v2_event(
    parts: &http::request::Parts,
    path: &str,
    route_path: &str,
    params: &[(String, String)],
    claims: Option<&HashMap<String, String>>,
    body: &[u8],
    request_id: &str,
) -> ApiGatewayV2httpRequest {
    let method = parts.method.as_str();
    // HTTP API joins repeated headers with commas and lower-cases names.
    let mut headers = http::HeaderMap::new();
    for name in parts.headers.keys() {
        // As sent, bytes past ASCII included: the handler decides what a
        // value it cannot read means (a 400 for an unreadable key or token).
        let joined = parts.headers.get_all(name).iter().map(|v| v.as_bytes()).collect::<Vec<_>>().join(&b","[..]);
        if let Ok(v) = http::HeaderValue::from_bytes(&joined) {
            headers.insert(name.clone(), v);
        }
    }
    let (body, is_base64) = match std::str::from_utf8(body) {
        Ok(_) if body.is_empty() => (None, false),
        Ok(text) => (Some(text.to_owned()), false),
        Err(_) => (Some(base64::engine::general_purpose::STANDARD.encode(body)), true),
    };
    let now = chrono::Utc::now();
    let route_key = format!("{method} {route_path}");

    let mut described = ApiGatewayV2httpRequestContextHttpDescription::default();
    described.method = parts.method.clone();
    described.path = Some(path.to_owned());
    described.protocol = Some("HTTP/1.1".into());
    described.source_ip = Some("127.0.0.1".into());
    described.user_agent = parts.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);

    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(route_key.clone());
    context.account_id = Some("000000000000".into());
    context.stage = Some("$default".into());
    context.request_id = Some(request_id.to_owned());
    context.apiid = Some("local".into());
    context.domain_name = Some("localhost".into());
    context.domain_prefix = Some("localhost".into());
    context.time = Some(now.format("%d/%b/%Y:%H:%M:%S %z").to_string());
    context.time_epoch = now.timestamp_millis();
    context.http = described;
    context.authorizer = claims.map(|c| {
        let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
        jwt.claims = c.clone();
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.jwt = Some(jwt);
        authorizer
    });

    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".into());
    event.route_key = Some(route_key);
    event.raw_path = Some(path.to_owned());
    event.raw_query_string = Some(parts.uri.query().unwrap_or_default().to_owned());
    event.headers = headers;
    event.path_parameters = params.iter().cloned().collect();
    event.request_context = context;
    event.body = body;
    event.is_base64_encoded = is_base64;
    event
}

fn into_axum(resp: lambda_http::Response<lambda_http::Body>) -> AxumResponse {
    let (parts, body) = resp.into_parts();
    let bytes: Vec<u8> = match body {
        lambda_http::Body::Empty => Vec::new(),
        lambda_http::Body::Text(t) => t.into_bytes(),
        lambda_http::Body::Binary(b) => b,
        _ => Vec::new(),
    };
    let mut out = AxumResponse::new(AxumBody::from(bytes));
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    out
}
