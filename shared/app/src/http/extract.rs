//! What a handler reads from its request, parsed at the edge: the caller
//! (or an operator) from the JWT authorizer's claims, path and query
//! parameters, and a size-limited JSON body into its type.

use super::problem::{Problem, order_not_found};
use lambda_http::{Body, Request, RequestExt};
use shop_domain::{OrderId, UserId};

/// Bodies larger than this are refused with 413 before parsing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The `{orderId}` path parameter; anything unparsable is "not found" (it
/// names no order of the caller's).
pub fn order_id_param(req: &Request) -> Result<OrderId, Problem> {
    let id = path_param(req, "orderId").and_then(|s| OrderId::parse(s).ok()).ok_or_else(order_not_found)?;
    tracing::Span::current().record("order_id", id.as_str());
    Ok(id)
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

/// The one parsing point of the API's request bodies: a JSON object with no
/// `null` anywhere in it, into `T`; anything else is a 400 naming what is
/// wrong. No request field of the API's document is nullable: an optional
/// field is left out, never sent as `null` — and a body that is an array
/// is refused before serde could fill a struct's fields from it.
pub fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let object = parse_object(bytes)?;
    if let Some(path) = first_null(&object, "") {
        return Err(Problem::bad_request(format!(
            "{path} is null: leave an optional field out instead of sending null"
        )));
    }
    serde_json::from_value(object).map_err(|e| Problem::bad_request(e.to_string()))
}

/// A body that must be a JSON object, its values taken as they are (`null`
/// included): the PG's webhooks, in Toss's own format.
pub fn parse_object(bytes: &[u8]) -> Result<serde_json::Value, Problem> {
    if bytes.is_empty() {
        return Err(Problem::bad_request("the request body is empty; a JSON object is required"));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        let detail = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                format!("the body is not valid JSON ({e})")
            }
            serde_json::error::Category::Data | serde_json::error::Category::Io => e.to_string(),
        };
        Problem::bad_request(detail)
    })?;
    let kind = match &value {
        serde_json::Value::Object(_) => return Ok(value),
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Null => "null",
    };
    Err(Problem::bad_request(format!("the body must be a JSON object, not {kind}")))
}

/// Where the first `null` in `value` is (`couponId`, `items[0].productId`).
fn first_null(value: &serde_json::Value, at: &str) -> Option<String> {
    match value {
        serde_json::Value::Null => Some(if at.is_empty() { "the body".to_owned() } else { at.to_owned() }),
        serde_json::Value::Object(fields) => fields.iter().find_map(|(name, v)| {
            let path = if at.is_empty() { name.clone() } else { format!("{at}.{name}") };
            first_null(v, &path)
        }),
        serde_json::Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, v)| first_null(v, &format!("{at}[{i}]")))
        }
        serde_json::Value::Bool(_) | serde_json::Value::Number(_) | serde_json::Value::String(_) => None,
    }
}

pub fn path_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.path_parameters_ref().and_then(|p| p.first(name))
}
