//! The embedded store's DynamoDB endpoint (`shop up --dynamodb-port`), for
//! `cargo lambda watch`, the AWS CLI and the SDKs: the DynamoDB JSON API
//! over HTTP on loopback, answered by the same engine thread as the stack's
//! own calls ([`shop_embedded::Engine::call`]).
//!
//! It is a door to every balance and order, so it takes only what DynamoDB
//! would take:
//!
//! - **no browser**: a request carrying `Origin` (every cross-origin fetch
//!   and form does) or a CORS preflight is refused with 403, and no answer
//!   carries an `Access-Control-*` header — a page open in the developer's
//!   browser can neither write nor read;
//! - **the loopback `Host`** only ([`crate::listen`], against DNS rebinding);
//! - **a valid SigV4 signature** by the data dir's credentials
//!   ([`crate::secrets`], printed by `shop env`): a request unsigned, signed
//!   by another key, for another service, with a body that is not the one
//!   signed, or dated more than 15 minutes away (DynamoDB's own window) is
//!   refused with DynamoDB's error types, so an SDK reports it as AWS would.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, StatusCode, Uri, header};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// DynamoDB takes requests of up to 16 MB (BatchWriteItem's limit).
pub const MAX_BODY: usize = 16 * 1024 * 1024;
/// How far a request's date may be from now (AWS: 15 minutes).
const MAX_SKEW_SECS: i64 = 15 * 60;
const JSON: &str = "application/x-amz-json-1.0";

/// The key pair a request must be signed with.
#[derive(Clone)]
pub struct SigningKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

struct Endpoint {
    engine: shop_embedded::Engine,
    key: SigningKey,
}

/// The endpoint's routes (every path: the API is one POST to `/`).
pub fn router(engine: shop_embedded::Engine, key: SigningKey) -> Router {
    Router::new().fallback(handle).with_state(Arc::new(Endpoint { engine, key }))
}

async fn handle(State(endpoint): State<Arc<Endpoint>>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
    if headers.contains_key(header::ORIGIN) || method == Method::OPTIONS {
        let text = "refused: the store's endpoint takes no request from a browser (Origin or CORS preflight)";
        return (StatusCode::FORBIDDEN, text).into_response();
    }
    if method != Method::POST {
        return refused("UnknownOperationException", "the DynamoDB API is a POST to /");
    }
    let now = chrono::Utc::now().timestamp();
    // Who is asking, from the head alone: not a byte of a stranger's body is read.
    if let Err(why) = authorization(&DYNAMODB, &endpoint.key, headers, now) {
        return refused(why.error_type(), &why.to_string());
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            let (status, why) = crate::listen::body_refusal(&e).unwrap_or((400, "the request body could not be read"));
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            let body = serde_json::json!({"__type": "com.amazon.coral.service#SerializationException", "message": why});
            return (status, [(header::CONTENT_TYPE, JSON)], body.to_string()).into_response();
        }
    };
    let request = SignedRequest { method, uri, headers, body: &body };
    if let Err(why) = verify(&endpoint.key, &request, now) {
        return refused(why.error_type(), &why.to_string());
    }
    let op = headers
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .and_then(|t| t.split_once('.'))
        .map(|(_, op)| op.to_owned())
        .unwrap_or_default();
    let (status, json) = endpoint.engine.call(&op, body.to_vec()).await;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, JSON)], json).into_response()
}

/// DynamoDB's answer to a request it will not run: 400 and its error type.
fn refused(error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({"__type": format!("com.amazon.coral.service#{error_type}"), "message": message});
    (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, JSON)], body.to_string()).into_response()
}

/// Why a signature does not hold.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("Request is missing Authentication Token")]
    Missing,
    #[error("the Authorization header is not AWS4-HMAC-SHA256 with Credential, SignedHeaders and Signature")]
    Malformed,
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    #[error("the credential scope must be <date>/<region>/dynamodb/aws4_request")]
    Scope,
    #[error("X-Amz-Date is missing, malformed, or not the credential's date")]
    Date,
    #[error("Signature expired: the request is dated more than 15 minutes from now")]
    Expired,
    #[error("the signed headers must include host, x-amz-date and x-amz-target, and be present")]
    Headers,
    #[error("The request signature we calculated does not match the signature you provided.")]
    Mismatch,
}

impl SignatureError {
    /// The error type DynamoDB answers with.
    fn error_type(&self) -> &'static str {
        match self {
            SignatureError::Missing => "MissingAuthenticationTokenException",
            SignatureError::UnknownKey => "UnrecognizedClientException",
            SignatureError::Expired => "InvalidSignatureException",
            SignatureError::Malformed
            | SignatureError::Scope
            | SignatureError::Date
            | SignatureError::Headers
            | SignatureError::Mismatch => "InvalidSignatureException",
        }
    }
}

/// The parts of a request its signature covers.
pub struct SignedRequest<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// The service a signature must be for, and the headers it must cover:
/// DynamoDB's, with its operation (`x-amz-target`) signed, so a captured
/// request cannot be replayed as another operation.
struct Service {
    name: &'static str,
    signed: &'static [&'static str],
}

const DYNAMODB: Service = Service { name: "dynamodb", signed: &["host", "x-amz-date", "x-amz-target"] };

/// Verifies a request's AWS Signature Version 4 (header form) for DynamoDB
/// by `key`, at `now_secs`.
pub fn verify(key: &SigningKey, request: &SignedRequest<'_>, now_secs: i64) -> Result<(), SignatureError> {
    verify_for(&DYNAMODB, key, request, now_secs)
}

/// What a request's `Authorization` header says, checked as far as the
/// head alone allows: the key, the scope, the date, the signed headers.
struct Authorization<'a> {
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed: &'a str,
    signature: &'a str,
    amz_date: &'a str,
}

fn authorization<'a>(
    expected: &Service,
    key: &SigningKey,
    headers: &'a HeaderMap,
    now_secs: i64,
) -> Result<Authorization<'a>, SignatureError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .ok_or(SignatureError::Missing)?
        .to_str()
        .map_err(|_| SignatureError::Malformed)?;
    let fields = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or(SignatureError::Malformed)?;
    let field = |name: &str| {
        fields.split(',').map(str::trim).find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
    };
    let (credential, signed, signature) = match (field("Credential"), field("SignedHeaders"), field("Signature")) {
        (Some(c), Some(h), Some(s)) => (c, h, s),
        _ => return Err(SignatureError::Malformed),
    };
    let mut scope = credential.split('/');
    let (Some(key_id), Some(date), Some(region), Some(service), Some("aws4_request"), None) =
        (scope.next(), scope.next(), scope.next(), scope.next(), scope.next(), scope.next())
    else {
        return Err(SignatureError::Scope);
    };
    if key_id != key.access_key_id {
        return Err(SignatureError::UnknownKey);
    }
    if service != expected.name || region.is_empty() || date.len() != 8 {
        return Err(SignatureError::Scope);
    }
    let amz_date = headers.get("x-amz-date").and_then(|d| d.to_str().ok()).ok_or(SignatureError::Date)?;
    if !amz_date.starts_with(date) {
        return Err(SignatureError::Date);
    }
    let dated = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ").map_err(|_| SignatureError::Date)?;
    if (dated.and_utc().timestamp() - now_secs).abs() > MAX_SKEW_SECS {
        return Err(SignatureError::Expired);
    }
    let names: Vec<&str> = signed.split(';').collect();
    if expected.signed.iter().any(|h| !names.contains(h)) || names.iter().any(|n| n.is_empty()) {
        return Err(SignatureError::Headers);
    }
    Ok(Authorization { date, region, service, signed, signature, amz_date })
}

fn verify_for(
    expected: &Service,
    key: &SigningKey,
    &SignedRequest { method, uri, headers, body }: &SignedRequest<'_>,
    now_secs: i64,
) -> Result<(), SignatureError> {
    let Authorization { date, region, service, signed, signature, amz_date } =
        authorization(expected, key, headers, now_secs)?;
    let names: Vec<&str> = signed.split(';').collect();
    let mut canonical_headers = String::new();
    for name in &names {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| v.to_str().map(|v| v.split_whitespace().collect::<Vec<_>>().join(" ")))
            .collect::<Result<_, _>>()
            .map_err(|_| SignatureError::Headers)?;
        if values.is_empty() {
            return Err(SignatureError::Headers);
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload = hex::encode(Sha256::digest(body));
    // A client may name the payload's hash; it must be this body's.
    if let Some(named) = headers.get("x-amz-content-sha256")
        && named.as_bytes() != payload.as_bytes()
    {
        return Err(SignatureError::Mismatch);
    }
    let mut query: Vec<&str> = uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()).collect();
    query.sort_unstable();
    let canonical_request =
        format!("{method}\n{}\n{}\n{canonical_headers}\n{signed}\n{payload}", uri.path(), query.join("&"));
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut signing = hmac(format!("AWS4{}", key.secret_access_key).as_bytes(), date.as_bytes());
    for part in [region, service, "aws4_request"] {
        signing = hmac(&signing, part.as_bytes());
    }
    let given = hex::decode(signature).map_err(|_| SignatureError::Mismatch)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&signing).map_err(|_| SignatureError::Mismatch)?;
    mac.update(string_to_sign.as_bytes());
    // Constant time: the comparison tells an attacker nothing.
    mac.verify_slice(&given).map_err(|_| SignatureError::Mismatch)
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published SigV4 example, "get-vanilla" of its test suite:
    /// key AKIDEXAMPLE, GET / at 20150830T123600Z, us-east-1, service
    /// `service`. An independent check of the arithmetic.
    #[test]
    fn the_published_example_verifies_and_nothing_else_does() {
        let key = SigningKey {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        };
        let auth = |signed: &str, signature: &str| {
            let mut h = HeaderMap::new();
            h.insert("host", "example.amazonaws.com".parse().unwrap());
            h.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
            h.insert(
                header::AUTHORIZATION,
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                     SignedHeaders={signed}, Signature={signature}"
                )
                .parse()
                .unwrap(),
            );
            h
        };
        let published = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let headers = auth("host;x-amz-date", published);
        let now = chrono::NaiveDate::from_ymd_opt(2015, 8, 30)
            .and_then(|d| d.and_hms_opt(12, 36, 0))
            .unwrap()
            .and_utc()
            .timestamp();
        let (uri, get): (Uri, _) = ("/".parse().unwrap(), Method::GET);
        let check = |key: &SigningKey, headers: &HeaderMap, body: &[u8], now: i64| {
            let example = Service { name: "service", signed: &["host", "x-amz-date"] };
            verify_for(&example, key, &SignedRequest { method: &get, uri: &uri, headers, body }, now)
        };
        assert_eq!(check(&key, &headers, b"", now), Ok(()));
        assert_eq!(check(&key, &headers, b"", now + 14 * 60), Ok(()), "within the window");
        assert_eq!(check(&key, &headers, b"x", now), Err(SignatureError::Mismatch), "another body");
        assert_eq!(check(&key, &headers, b"", now + 16 * 60), Err(SignatureError::Expired));
        let other = SigningKey { secret_access_key: "not-it".into(), ..key.clone() };
        assert_eq!(check(&other, &headers, b"", now), Err(SignatureError::Mismatch));
        let stranger = SigningKey { access_key_id: "AKIDOTHER".into(), ..key.clone() };
        assert_eq!(check(&stranger, &headers, b"", now), Err(SignatureError::UnknownKey));
        assert_eq!(check(&key, &HeaderMap::new(), b"", now), Err(SignatureError::Missing));
        assert_eq!(check(&key, &auth("host", published), b"", now), Err(SignatureError::Headers), "date unsigned");
        let flipped = format!("{}0", &published[..63]);
        assert_eq!(check(&key, &auth("host;x-amz-date", &flipped), b"", now), Err(SignatureError::Mismatch));
        // DynamoDB's signature must cover the operation.
        let mut unsigned_target = headers.clone();
        unsigned_target.insert(
            header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/dynamodb/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=00"
                .parse()
                .unwrap(),
        );
        assert!(matches!(authorization(&DYNAMODB, &key, &unsigned_target, now), Err(SignatureError::Headers)));
        // The endpoint is DynamoDB's: a signature for another service is refused.
        let request = SignedRequest { method: &get, uri: &uri, headers: &headers, body: b"" };
        assert_eq!(verify(&key, &request, now), Err(SignatureError::Scope));
    }
}
