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
/// Live tokens: what opens a WebSocket to a sale's positions
/// ([`sign_live`]). Another prefix under the same MAC, so neither kind of
/// token passes for the other.
const LIVE_VERSION: &str = "live1";
/// How long a live token opens a connection (the connection itself then
/// lasts until it closes, at most API Gateway's two hours).
pub const LIVE_TTL_SECS: i64 = 300;
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

fn sign_payload(secret: &str, version: &str, payload: &Payload) -> anyhow::Result<String> {
    let signed = format!("{version}.{}", B64.encode(serde_json::to_vec(payload)?));
    let tag = B64.encode(mac(secret, &signed).finalize().into_bytes());
    Ok(format!("{signed}.{tag}"))
}

/// The payload of `token` if it is of `version` and signed with `secret`.
fn verified_payload(secret: &str, version: &str, token: &str) -> Result<Payload, &'static str> {
    if token.len() > MAX_LEN {
        return Err("malformed");
    }
    let (signed, tag) = token.rsplit_once('.').ok_or("malformed")?;
    let (v, payload) = signed.split_once('.').ok_or("malformed")?;
    if v != version {
        return Err("unknown version");
    }
    let tag = B64.decode(tag).map_err(|_| "malformed")?;
    // Constant-time comparison.
    mac(secret, signed).verify_slice(&tag).map_err(|_| "bad signature")?;
    B64.decode(payload).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or("malformed")
}

/// The signed token for `t` (`secret` is the stack's admission secret).
pub fn sign(secret: &str, t: &AdmissionToken) -> anyhow::Result<String> {
    let payload = Payload { s: t.sale.to_string(), u: t.user.to_string(), a: t.id.clone(), e: t.expires_at.millis() };
    sign_payload(secret, VERSION, &payload)
}

/// The admission `token` grants `user` at `now`, or why it grants nothing:
/// a bad signature, a token of another user, or one past its expiry.
pub fn verify(secret: &str, token: &str, user: &UserId, now: Timestamp) -> Result<AdmissionToken, NotAdmitted> {
    let p = verified_payload(secret, VERSION, token).map_err(NotAdmitted::Token)?;
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

/// Who may open a live connection to which sale's positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveGrant {
    pub sale: SaleId,
    pub user: UserId,
}

/// A live token for `user`'s ticket in `sale`, good to connect until
/// `expires_at`: given with the ticket (`GET /sales/{id}/queue/me`), so
/// the shopper's own JWT never travels in a WebSocket handshake.
pub fn sign_live(secret: &str, sale: &SaleId, user: &UserId, expires_at: Timestamp) -> anyhow::Result<String> {
    let payload = Payload { s: sale.to_string(), u: user.to_string(), a: String::new(), e: expires_at.millis() };
    sign_payload(secret, LIVE_VERSION, &payload)
}

/// What the live `token` grants at `now`, or why it grants nothing.
pub fn verify_live(secret: &str, token: &str, now: Timestamp) -> Result<LiveGrant, &'static str> {
    let p = verified_payload(secret, LIVE_VERSION, token)?;
    if now.millis() >= p.e {
        return Err("expired");
    }
    Ok(LiveGrant {
        sale: SaleId::parse(&p.s).map_err(|_| "malformed")?,
        user: UserId::parse(&p.u).map_err(|_| "malformed")?,
    })
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

    #[test]
    fn a_live_token_opens_its_sale_until_it_expires_and_never_passes_for_an_admission() {
        let (sale, alice) = (SaleId::parse("flash").unwrap(), UserId::parse("alice").unwrap());
        let live = sign_live("secret", &sale, &alice, Timestamp::from_millis(5_000)).unwrap();
        let grant = verify_live("secret", &live, Timestamp::from_millis(4_999)).unwrap();
        assert_eq!((grant.sale, grant.user), (sale, alice.clone()));
        assert_eq!(verify_live("secret", &live, Timestamp::from_millis(5_000)), Err("expired"));
        assert_eq!(verify_live("other", &live, Timestamp::from_millis(0)), Err("bad signature"));
        assert!(verify("secret", &live, &alice, Timestamp::from_millis(0)).is_err(), "not an admission");
        let admission = sign("secret", &token("alice", 10_000)).unwrap();
        assert!(verify_live("secret", &admission, Timestamp::from_millis(0)).is_err(), "not a live token");
    }
}
