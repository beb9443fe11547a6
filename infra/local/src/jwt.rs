//! Development JWTs: HS256, issuer `shop-local`, audience `shop`. The local
//! stack verifies them as API Gateway's JWT authorizer verifies real ones
//! (signature, `exp`, `nbf`, `iss`, `aud`) and passes the claims on in the
//! request context. Never used in AWS.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;

pub const ISSUER: &str = "shop-local";
pub const AUDIENCE: &str = "shop";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported algorithm")]
    Algorithm,
    #[error("bad signature")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("wrong issuer or audience")]
    Audience,
    #[error("no subject")]
    Subject,
}

fn mac(secret: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length.
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// The claim and value that make a token an operator's (the console's
/// only key, and the API's operator routes'; a shopper's token has no `role`).
pub const ROLE_CLAIM: &str = shop_app::http::ROLE_CLAIM;
pub const OPERATOR: &str = shop_app::http::OPERATOR_ROLE;

/// A shopper's token for `sub`, valid from `now_secs` for `ttl_secs`.
pub fn issue(secret: &str, sub: &str, now_secs: i64, ttl_secs: i64) -> String {
    sign(
        secret,
        serde_json::json!({
            "sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now_secs, "exp": now_secs + ttl_secs, "scope": "orders",
        }),
    )
}

/// An operator's token for `sub` (the saga console), valid from `now_secs`
/// for `ttl_secs`.
pub fn issue_operator(secret: &str, sub: &str, now_secs: i64, ttl_secs: i64) -> String {
    sign(
        secret,
        serde_json::json!({
            "sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now_secs, "exp": now_secs + ttl_secs,
            "scope": "console", "role": OPERATOR,
        }),
    )
}

fn sign(secret: &str, claims: serde_json::Value) -> String {
    let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = B64.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let mut m = mac(secret);
    m.update(signing_input.as_bytes());
    let sig = B64.encode(m.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// Verifies `token` at `now_secs` and returns its claims as API Gateway
/// passes them to a function: every value as a string.
pub fn verify(secret: &str, token: &str, now_secs: i64) -> Result<HashMap<String, String>, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let header: serde_json::Value =
        serde_json::from_slice(&B64.decode(h).map_err(|_| JwtError::Malformed)?).map_err(|_| JwtError::Malformed)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err(JwtError::Algorithm);
    }
    let sig = B64.decode(s).map_err(|_| JwtError::Malformed)?;
    let mut m = mac(secret);
    m.update(h.as_bytes());
    m.update(b".");
    m.update(p.as_bytes());
    m.verify_slice(&sig).map_err(|_| JwtError::Signature)?;
    let claims: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&B64.decode(p).map_err(|_| JwtError::Malformed)?).map_err(|_| JwtError::Malformed)?;
    let num = |k: &str| claims.get(k).and_then(|v| v.as_i64());
    match num("exp") {
        Some(exp) if exp > now_secs => {}
        _ => return Err(JwtError::Expired),
    }
    if num("nbf").is_some_and(|nbf| nbf > now_secs) {
        return Err(JwtError::NotYetValid);
    }
    let aud_ok = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => a == AUDIENCE,
        Some(serde_json::Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(AUDIENCE)),
        _ => false,
    };
    if claims.get("iss").and_then(|v| v.as_str()) != Some(ISSUER) || !aud_ok {
        return Err(JwtError::Audience);
    }
    if claims.get("sub").and_then(|v| v.as_str()).is_none_or(str::is_empty) {
        return Err(JwtError::Subject);
    }
    Ok(claims
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_and_verify() {
        let t = issue("k", "u1", 1000, 60);
        let claims = verify("k", &t, 1010).unwrap();
        assert_eq!(claims["sub"], "u1");
        assert_eq!(claims["exp"], "1060");
        assert_eq!(verify("other", &t, 1010), Err(JwtError::Signature));
        assert_eq!(verify("k", &t, 1060), Err(JwtError::Expired));
        assert_eq!(verify("k", "a.b", 0), Err(JwtError::Malformed));
        let mut tampered: Vec<&str> = t.split('.').collect();
        let evil = B64.encode(r#"{"sub":"admin","iss":"shop-local","aud":"shop","exp":99999}"#);
        tampered[1] = &evil;
        assert_eq!(verify("k", &tampered.join("."), 0), Err(JwtError::Signature));
        let none_alg = format!("{}.{}.", B64.encode(r#"{"alg":"none"}"#), tampered[1]);
        assert_eq!(verify("k", &none_alg, 0), Err(JwtError::Algorithm));
    }

    #[test]
    fn only_an_operator_token_carries_the_role() {
        let op = verify("k", &issue_operator("k", "ops", 1000, 60), 1010).unwrap();
        assert_eq!(op.get(ROLE_CLAIM).map(String::as_str), Some(OPERATOR));
        let shopper = verify("k", &issue("k", "u1", 1000, 60), 1010).unwrap();
        assert_eq!(shopper.get(ROLE_CLAIM), None);
    }
}
