//! The list routes' one pagination convention and their caching: page
//! parameters, opaque cursors over the store's positions, and public
//! answers with a strong `ETag`.

use super::extract::query;
use super::problem::Problem;
use super::serve::{RequestCtx, raw};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

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
