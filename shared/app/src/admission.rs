//! Admission tokens (docs/adr/0027-the-waiting-room.md): what an admitted
//! shopper sends with `POST /orders` in the `Admission` header.
//!
//! `v1.<payload>.<mac>`: the payload is base64url JSON naming the sale,
//! the user, the admission's id and its expiry (the session's end, epoch
//! ms); the mac is HMAC-SHA256 over `v1.<payload>` with the stack's
//! admission secret (`ADMISSION_SECRET`; in AWS an SSM SecureString read
//! at cold start). A token is checked here without a read; the placing
//! transaction then moves the ticket ADMITTED → ORDERED on that admission
//! id, so a token places one order, and never after its session or once
//! its ticket left.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use shop_domain::sale::NotAdmitted;
use shop_domain::{SaleId, Timestamp, UserId};

const VERSION: &str = "v1";
/// Longer than any token this stack signs (ids are at most 128 characters).
const MAX_LEN: usize = 1024;

/// What a token grants: `user` may place one order in `sale` under
/// admission `id` until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionToken {
    pub sale: SaleId,
    pub user: UserId,
    pub id: String,
    pub expires_at: Timestamp,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    s: String,
    u: String,
    a: String,
    e: i64,
}

fn mac(secret: &str, signed: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length: this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    m.update(signed.as_bytes());
    m
}

/// The signed token for `t` (`secret` is the stack's admission secret).
pub fn sign(secret: &str, t: &AdmissionToken) -> anyhow::Result<String> {
    let payload = Payload { s: t.sale.to_string(), u: t.user.to_string(), a: t.id.clone(), e: t.expires_at.millis() };
    let signed = format!("{VERSION}.{}", B64.encode(serde_json::to_vec(&payload)?));
    let tag = B64.encode(mac(secret, &signed).finalize().into_bytes());
    Ok(format!("{signed}.{tag}"))
}

/// The admission `token` grants `user` at `now`, or why it grants nothing:
/// a bad signature, a token of another user, or one past its expiry.
pub fn verify(secret: &str, token: &str, user: &UserId, now: Timestamp) -> Result<AdmissionToken, NotAdmitted> {
    if token.len() > MAX_LEN {
        return Err(NotAdmitted::Token("malformed"));
    }
    let (signed, tag) = token.rsplit_once('.').ok_or(NotAdmitted::Token("malformed"))?;
    let (version, payload) = signed.split_once('.').ok_or(NotAdmitted::Token("malformed"))?;
    if version != VERSION {
        return Err(NotAdmitted::Token("unknown version"));
    }
    let tag = B64.decode(tag).map_err(|_| NotAdmitted::Token("malformed"))?;
    // Constant-time comparison.
    mac(secret, signed).verify_slice(&tag).map_err(|_| NotAdmitted::Token("bad signature"))?;
    let p: Payload = B64
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(NotAdmitted::Token("malformed"))?;
    let t = AdmissionToken {
        sale: SaleId::parse(&p.s).map_err(|_| NotAdmitted::Token("malformed"))?,
        user: UserId::parse(&p.u).map_err(|_| NotAdmitted::Token("malformed"))?,
        id: p.a,
        expires_at: Timestamp::from_millis(p.e),
    };
    if t.user != *user {
        return Err(NotAdmitted::Token("issued to another user"));
    }
    if now >= t.expires_at {
        return Err(NotAdmitted::Token("expired"));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(user: &str, expires_ms: i64) -> AdmissionToken {
        AdmissionToken {
            sale: SaleId::parse("flash").unwrap(),
            user: UserId::parse(user).unwrap(),
            id: "adm-1".into(),
            expires_at: Timestamp::from_millis(expires_ms),
        }
    }

    #[test]
    fn a_token_verifies_for_its_user_until_it_expires() {
        let t = token("alice", 10_000);
        let signed = sign("secret", &t).unwrap();
        let alice = UserId::parse("alice").unwrap();
        assert_eq!(verify("secret", &signed, &alice, Timestamp::from_millis(9_999)).unwrap(), t);
        assert_eq!(
            verify("secret", &signed, &alice, Timestamp::from_millis(10_000)),
            Err(NotAdmitted::Token("expired"))
        );
        let bob = UserId::parse("bob").unwrap();
        assert_eq!(
            verify("secret", &signed, &bob, Timestamp::from_millis(0)),
            Err(NotAdmitted::Token("issued to another user"))
        );
        assert_eq!(
            verify("other", &signed, &alice, Timestamp::from_millis(0)),
            Err(NotAdmitted::Token("bad signature"))
        );
    }

    #[test]
    fn a_changed_payload_fails_the_signature() {
        let signed = sign("secret", &token("alice", 10_000)).unwrap();
        let (_, tag) = signed.rsplit_once('.').unwrap();
        let forged = format!("v1.{}.{tag}", B64.encode(br#"{"s":"flash","u":"alice","a":"adm-1","e":99999999}"#));
        let alice = UserId::parse("alice").unwrap();
        assert_eq!(
            verify("secret", &forged, &alice, Timestamp::from_millis(0)),
            Err(NotAdmitted::Token("bad signature"))
        );
        for junk in ["", "v1", "v1..", "v2.e30.AA", "v1.!!.AA", &"x".repeat(2000)] {
            assert!(verify("secret", junk, &alice, Timestamp::from_millis(0)).is_err(), "{junk}");
        }
    }
}
