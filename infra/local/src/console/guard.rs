//! What the console checks on every request besides who is asking
//! ([`super::auth`]): no page of it may be framed by another (clickjacking),
//! no script runs but its own htmx, and no POST comes from another origin
//! (a page on another port of 127.0.0.1 is the same site for `SameSite`,
//! not the same origin).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};

/// The content security policy of every console answer: its own scripts,
/// styles and images only (htmx injects a small style element, hence the
/// inline styles), forms posted only to itself, never framed.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                       img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Adds the framing and script policy to every answer.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let headers = resp.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    resp
}

/// Refuses a POST a browser sent from another origin: `Sec-Fetch-Site`
/// other than `same-origin`, or an `Origin` other than this listener's
/// (`http://` and its `Host`, which [`crate::listen`] has checked).
pub async fn same_origin_posts(req: Request, next: Next) -> Response {
    if req.method() == Method::POST && !from_own_origin(req.headers()) {
        let body = "refused: the console takes actions only from its own pages (cross-origin POST)";
        return (StatusCode::FORBIDDEN, body).into_response();
    }
    next.run(req).await
}

pub(crate) fn from_own_origin(headers: &http::HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or(""));
    if let Some(site) = text("sec-fetch-site")
        && site != "same-origin"
    {
        return false;
    }
    match (text("origin"), text("host")) {
        (Some(origin), Some(host)) => origin == format!("http://{host}"),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::from_own_origin;

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        pairs.iter().map(|(k, v)| (http::HeaderName::from_static(k), http::HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn only_the_consoles_own_origin_may_post() {
        let host = ("host", "127.0.0.1:3000");
        assert!(from_own_origin(&headers(&[host, ("origin", "http://127.0.0.1:3000")])));
        assert!(from_own_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:3000"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(from_own_origin(&headers(&[host])), "no browser: no Origin to check");
        assert!(!from_own_origin(&headers(&[host, ("origin", "http://127.0.0.1:3001")])), "another port");
        assert!(!from_own_origin(&headers(&[host, ("origin", "http://attacker.example")])));
        assert!(!from_own_origin(&headers(&[host, ("origin", "null")])), "a sandboxed frame");
        assert!(!from_own_origin(&headers(&[host, ("sec-fetch-site", "same-site")])));
        assert!(!from_own_origin(&headers(&[host, ("sec-fetch-site", "cross-site")])));
    }
}
