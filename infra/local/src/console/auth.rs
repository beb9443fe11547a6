//! Operator access. The console takes only an operator's token (`shop
//! token --operator`: the `role` claim is `operator`), never a shopper's:
//!
//! - no token, or one that does not verify (signature, expiry, issuer,
//!   audience): **401**;
//! - a valid token without the operator role: **403**.
//!
//! A browser signs in once at `/console/login`: the token goes into an
//! HttpOnly, SameSite=Strict cookie scoped to `/console`, so no page
//! script can read it and no other site can send it. Scripts and tests may
//! send `Authorization: Bearer <token>` instead.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::ConsoleState;
use super::pages::shell;
use crate::jwt;

pub const COOKIE: &str = "shop_console";

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 401: no token, or not a valid one.
    Unauthenticated,
    /// 403: a valid token, but not an operator's.
    NotOperator,
}

/// The operator a request's token names, or why it is refused.
pub fn operator(headers: &HeaderMap, secret: &str, now_secs: i64) -> Result<String, Refusal> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE).and_then(|rest| rest.strip_prefix('=')));
    let token = bearer.or(cookie).ok_or(Refusal::Unauthenticated)?;
    let claims = jwt::verify(secret, token, now_secs).map_err(|_| Refusal::Unauthenticated)?;
    match claims.get(jwt::ROLE_CLAIM).map(String::as_str) {
        Some(jwt::OPERATOR) => Ok(claims.get("sub").cloned().unwrap_or_default()),
        _ => Err(Refusal::NotOperator),
    }
}

/// Tokens are checked on the stack's clock, as the API's authorizer checks them.
fn now_secs(state: &ConsoleState) -> i64 {
    state.app.clock.now().millis() / 1000
}

/// The gate in front of every page and action.
pub async fn require_operator(State(state): State<Arc<ConsoleState>>, request: Request, next: Next) -> Response {
    match operator(request.headers(), &state.jwt_secret, now_secs(&state)) {
        Ok(_) => next.run(request).await,
        // A browser opening a page without signing in is sent to sign in.
        Err(Refusal::Unauthenticated) if wants_page(&request) => {
            axum::response::Redirect::to("/console/login").into_response()
        }
        Err(refusal) => refused(refusal),
    }
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

/// Checks the token, then keeps it in the console's cookie.
pub async fn login(State(state): State<Arc<ConsoleState>>, axum::Form(form): axum::Form<Login>) -> Response {
    let token = form.token.trim();
    let mut headers = HeaderMap::new();
    if let Ok(v) = format!("Bearer {token}").parse() {
        headers.insert(header::AUTHORIZATION, v);
    }
    match operator(&headers, &state.jwt_secret, now_secs(&state)) {
        Ok(_) => {
            let cookie = format!("{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict");
            ([(header::SET_COOKIE, cookie)], Redirect::to("/console/overview")).into_response()
        }
        Err(r) => refused(r),
    }
}

pub async fn logout() -> Response {
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
        assert_eq!(operator(&with(header::COOKIE, &format!("a=b; {COOKIE}={op}")), "k", 1010), Ok("ops".into()));
        assert_eq!(operator(&bearer(&shopper), "k", 1010), Err(Refusal::NotOperator));
        assert_eq!(operator(&bearer(&forged), "k", 1010), Err(Refusal::Unauthenticated));
        assert_eq!(operator(&bearer(&op), "k", 1600), Err(Refusal::Unauthenticated), "expired");
        assert_eq!(operator(&HeaderMap::new(), "k", 1010), Err(Refusal::Unauthenticated));
        assert_eq!(operator(&with(header::COOKIE, "shop_console_x=1"), "k", 1010), Err(Refusal::Unauthenticated));
    }
}
