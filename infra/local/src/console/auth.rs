//! Operator access. The console takes only an operator's token (`shop
//! token --operator`: the `role` claim is `operator`), never a shopper's:
//!
//! - no token or session, or one that does not verify (signature, expiry,
//!   issuer, audience): **401** (a browser asking for a page is sent to
//!   sign in);
//! - a valid token without the operator role: **403**.
//!
//! A browser signs in once at `/console/login` and gets a **server-side
//! session**: the cookie holds only a random id (HttpOnly, SameSite=Strict,
//! scoped to `/console`), never the token. Signing out deletes the session,
//! so a copied cookie stops working; a session ends with its token or after
//! [`SESSION_SECS`], whichever is first. Each session has its own **CSRF
//! token**, put into every form the console renders ([`csrf_field`]) and
//! required on every POST the session makes: a page elsewhere cannot read
//! it, so it cannot forge a form that carries it. Scripts and tests send
//! `Authorization: Bearer <token>` instead, which no other page can make a
//! browser send.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::ConsoleState;
use super::pages::shell;
use crate::jwt;

pub const COOKIE: &str = "shop_console";
/// The form field that carries a session's CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// The longest a session lives (less if its token expires first).
pub const SESSION_SECS: i64 = 8 * 3600;
/// Sessions kept at once: signing in again and again cannot grow memory;
/// past this the session closest to its end gives way.
const MAX_SESSIONS: usize = 256;
/// A console form is a few fields; a POST body past this is not one.
const MAX_FORM: usize = 16 * 1024;

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 401: no token or session, or not a valid one.
    Unauthenticated,
    /// 403: a valid token, but not an operator's.
    NotOperator,
}

/// Who signed in (the operator token's subject), as the gate found it: the
/// actions record it in the audit trail.
#[derive(Debug, Clone)]
pub struct SignedIn(pub String);

/// One signed-in browser.
#[derive(Clone)]
struct Session {
    operator: String,
    csrf: String,
    expires_ms: i64,
}

/// The console's sessions, in memory: a restart signs everyone out.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

impl Sessions {
    /// A new session for `operator` until `expires_ms`: its id and its CSRF token.
    fn open(&self, operator: String, expires_ms: i64, now_ms: i64) -> anyhow::Result<(String, String)> {
        let (id, csrf) = (crate::secrets::random_hex(32)?, crate::secrets::random_hex(32)?);
        let mut all = self.0.lock().map_err(|_| anyhow::anyhow!("the sessions' lock is poisoned"))?;
        all.retain(|_, s| s.expires_ms > now_ms);
        while all.len() >= MAX_SESSIONS {
            let Some(first) = all.iter().min_by_key(|(_, s)| s.expires_ms).map(|(k, _)| k.clone()) else { break };
            all.remove(&first);
        }
        all.insert(id.clone(), Session { operator, csrf: csrf.clone(), expires_ms });
        Ok((id, csrf))
    }

    fn get(&self, id: &str, now_ms: i64) -> Option<Session> {
        let all = self.0.lock().ok()?;
        all.get(id).filter(|s| s.expires_ms > now_ms).cloned()
    }

    fn close(&self, id: &str) {
        if let Ok(mut all) = self.0.lock() {
            all.remove(id);
        }
    }
}

/// The operator a bearer token names, or why it is refused.
pub fn operator(headers: &HeaderMap, secret: &str, now_secs: i64) -> Result<String, Refusal> {
    let token = bearer(headers).ok_or(Refusal::Unauthenticated)?;
    verified_operator(token, secret, now_secs).map(|(name, _)| name)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The operator's name and the token's expiry (epoch seconds).
fn verified_operator(token: &str, secret: &str, now_secs: i64) -> Result<(String, i64), Refusal> {
    let claims = jwt::verify(secret, token, now_secs).map_err(|_| Refusal::Unauthenticated)?;
    match claims.get(jwt::ROLE_CLAIM).map(String::as_str) {
        Some(jwt::OPERATOR) => Ok((
            claims.get("sub").cloned().unwrap_or_default(),
            claims.get("exp").and_then(|e| e.parse().ok()).unwrap_or(now_secs),
        )),
        _ => Err(Refusal::NotOperator),
    }
}

/// The session id in the console's cookie.
fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE).and_then(|rest| rest.strip_prefix('=')))
}

/// Tokens and sessions are checked on the stack's clock, as the API's
/// authorizer checks tokens.
fn now_ms(state: &ConsoleState) -> i64 {
    state.app.clock.now().millis()
}

tokio::task_local! {
    /// The CSRF token of the session a page is rendered for.
    static CSRF: Option<String>;
}

/// The hidden field every state-changing form carries: the signed-in
/// session's CSRF token (none for a bearer-token client, which needs none).
pub fn csrf_field() -> Markup {
    let token = CSRF.try_with(Clone::clone).ok().flatten();
    html! { @if let Some(t) = token { input type="hidden" name=(CSRF_FIELD) value=(t); } }
}

/// The gate in front of every page and action: a bearer token, or a
/// session (whose POSTs must carry its CSRF token).
pub async fn require_operator(State(state): State<Arc<ConsoleState>>, request: Request, next: Next) -> Response {
    let now = now_ms(&state);
    let mut request = request;
    if bearer(request.headers()).is_some() {
        return match operator(request.headers(), &state.jwt_secret, now / 1000) {
            Ok(name) => {
                request.extensions_mut().insert(SignedIn(name));
                CSRF.scope(None, next.run(request)).await
            }
            Err(refusal) => refused(refusal),
        };
    }
    let session = session_id(request.headers()).and_then(|id| state.sessions.get(id, now));
    let Some(session) = session else {
        // A browser opening a page without signing in is sent to sign in.
        if wants_page(&request) {
            return Redirect::to("/console/login").into_response();
        }
        return refused(Refusal::Unauthenticated);
    };
    let request = if request.method() == http::Method::POST {
        match carries_csrf(request, &session.csrf).await {
            Ok(request) => request,
            Err(response) => return response,
        }
    } else {
        request
    };
    tracing::debug!(operator = %session.operator, "console request");
    let mut request = request;
    request.extensions_mut().insert(SignedIn(session.operator));
    CSRF.scope(Some(session.csrf), next.run(request)).await
}

/// The request again if its form carries `expected` as its CSRF token; a 403 otherwise.
async fn carries_csrf(request: Request, expected: &str) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_FORM).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let (status, why) = crate::listen::body_refusal(&e).unwrap_or((413, "a console form is smaller than this"));
            return Err((StatusCode::from_u16(status).unwrap_or(StatusCode::PAYLOAD_TOO_LARGE), why).into_response());
        }
    };
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let given = fields.iter().find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v.as_bytes());
    // Constant time over the token's length: no timing tells how much matched.
    let matches = given.is_some_and(|g| {
        g.len() == expected.len() && g.iter().zip(expected.as_bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    });
    if !matches {
        let body = shell::bare(
            "Not done",
            html! {
                p { "This form did not come from this console session (its CSRF token is missing or stale). Nothing changed." }
                p { a href="/console/overview" { "Back to the console" } }
            },
        );
        return Err((StatusCode::FORBIDDEN, body).into_response());
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

/// A browser navigating to a page (`GET`, asking for HTML), not a script.
fn wants_page(request: &Request) -> bool {
    request.method() == http::Method::GET
        && request
            .headers()
            .get(http::header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}

fn refused(refusal: Refusal) -> Response {
    let (status, title, text) = match refusal {
        Refusal::Unauthenticated => {
            (StatusCode::UNAUTHORIZED, "Sign in", "The console needs an operator's token: `shop token --operator`.")
        }
        Refusal::NotOperator => (StatusCode::FORBIDDEN, "Not an operator", "This token is not an operator's."),
    };
    let body = shell::bare(title, html! { p { (text) } p { a href="/console/login" { "Sign in" } } });
    (status, body).into_response()
}

pub async fn login_form() -> Response {
    shell::bare(
        "Sign in",
        html! {
            form method="post" action="/console/login" {
                label for="token" { "Operator token" }
                input id="token" name="token" type="password" autocomplete="off" required;
                button type="submit" { "Sign in" }
            }
            p.hint { "Print one with " code { "shop token --operator" } "." }
        },
    )
    .into_response()
}

#[derive(serde::Deserialize)]
pub struct Login {
    token: String,
}

/// Checks the token, then opens a session for it.
pub async fn login(State(state): State<Arc<ConsoleState>>, axum::Form(form): axum::Form<Login>) -> Response {
    let now = now_ms(&state);
    let (name, exp_secs) = match verified_operator(form.token.trim(), &state.jwt_secret, now / 1000) {
        Ok(who) => who,
        Err(r) => return refused(r),
    };
    let expires_ms = exp_secs.saturating_mul(1000).min(now.saturating_add(SESSION_SECS * 1000));
    let id = match state.sessions.open(name, expires_ms, now) {
        Ok((id, _csrf)) => id,
        Err(e) => return shell::error(&state, &e),
    };
    let max_age = (expires_ms - now) / 1000;
    let cookie = format!("{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/console/overview")).into_response()
}

/// Ends the session (the cookie's id works no more) and clears the cookie.
pub async fn logout(State(state): State<Arc<ConsoleState>>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        state.sessions.close(id);
    }
    let cookie = format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/console/login")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    }

    #[test]
    fn only_a_valid_operator_token_passes() {
        let op = jwt::issue_operator("k", "ops", 1000, 600);
        let shopper = jwt::issue("k", "u1", 1000, 600);
        let forged = jwt::issue_operator("not-the-secret", "ops", 1000, 600);
        let bearer = |t: &str| with(header::AUTHORIZATION, &format!("Bearer {t}"));
        assert_eq!(operator(&bearer(&op), "k", 1010), Ok("ops".into()));
        assert_eq!(operator(&bearer(&shopper), "k", 1010), Err(Refusal::NotOperator));
        assert_eq!(operator(&bearer(&forged), "k", 1010), Err(Refusal::Unauthenticated));
        assert_eq!(operator(&bearer(&op), "k", 1600), Err(Refusal::Unauthenticated), "expired");
        assert_eq!(operator(&HeaderMap::new(), "k", 1010), Err(Refusal::Unauthenticated));
        // The cookie holds a session id, never a token.
        assert_eq!(
            operator(&with(header::COOKIE, &format!("{COOKIE}={op}")), "k", 1010),
            Err(Refusal::Unauthenticated)
        );
    }

    #[test]
    fn sessions_expire_close_and_stay_bounded() {
        let sessions = Sessions::default();
        let (id, csrf) = sessions.open("ops".into(), 2_000, 1_000).unwrap();
        assert_eq!(sessions.get(&id, 1_500).map(|s| s.csrf), Some(csrf));
        assert!(sessions.get(&id, 2_000).is_none(), "expired");
        let (id, _) = sessions.open("ops".into(), 9_000, 1_000).unwrap();
        sessions.close(&id);
        assert!(sessions.get(&id, 1_500).is_none(), "closed");
        for i in 0..(MAX_SESSIONS as i64 * 2) {
            sessions.open("ops".into(), 10_000 + i, 1_000).unwrap();
        }
        assert_eq!(sessions.0.lock().unwrap().len(), MAX_SESSIONS);
        let (last, _) = sessions.open("ops".into(), 100_000, 1_000).unwrap();
        assert!(sessions.get(&last, 1_500).is_some(), "the newest stays; the oldest gave way");
    }
}
