//! What every local listener (the API and the console, the PG simulator,
//! the data-platform sink, `shop console --stack`) does before its routes:
//! it binds 127.0.0.1 only ([`bind`], which names a port in use), and it answers only requests whose `Host` names
//! that loopback address and its port. A web page open in the developer's
//! browser can make the browser send requests to 127.0.0.1; through DNS
//! rebinding (its own host name resolving to 127.0.0.1) it can even read
//! the answers — but such a request carries the page's host name, and is
//! refused here (403) before any route runs.

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// A loopback listener on `port` for `what`; a port in use is named, with
/// the option that sets it.
pub async fn bind(port: u16, what: &str, option: &str) -> anyhow::Result<tokio::net::TcpListener> {
    use anyhow::Context as _;
    tokio::net::TcpListener::bind(("127.0.0.1", port)).await.with_context(|| {
        format!("cannot listen on 127.0.0.1:{port} for {what} (is it in use? choose another with {option})")
    })
}

/// `router`, answering only requests whose `Host` is this listener on
/// loopback: `127.0.0.1:<port>`, `localhost:<port>` or `[::1]:<port>`.
pub fn loopback_only(router: Router, port: u16) -> Router {
    router.layer(axum::middleware::from_fn_with_state(port, check_host))
}

async fn check_host(State(port): State<u16>, req: Request, next: Next) -> Response {
    let host = req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok());
    if host.is_some_and(|h| is_loopback(h, port)) {
        return next.run(req).await;
    }
    let detail = match host {
        Some(h) => format!("Host {h:?} is not this listener (127.0.0.1:{port}, localhost:{port} or [::1]:{port})"),
        None => "a request without a Host header is refused".to_owned(),
    };
    let body = serde_json::json!({
        "type": "https://shop.example/problems/host-refused",
        "title": "Host refused",
        "status": 403,
        "detail": detail,
    });
    let mut resp = (http::StatusCode::FORBIDDEN, body.to_string()).into_response();
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/problem+json"));
    resp
}

/// Whether a `Host` header names this listener on loopback (the port may be
/// left out only when it is 80, as HTTP allows).
pub fn is_loopback(host: &str, port: u16) -> bool {
    let (name, given) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inside, after)) => (format!("[{inside}]"), after.strip_prefix(':')),
            None => return false,
        },
        None => match host.rsplit_once(':') {
            Some((name, p)) => (name.to_owned(), Some(p)),
            None => (host.to_owned(), None),
        },
    };
    let name_ok = name == "127.0.0.1" || name == "[::1]" || name.eq_ignore_ascii_case("localhost");
    let port_ok = match given {
        Some(p) => p.parse::<u16>().is_ok_and(|p| p == port),
        None => port == 80,
    };
    name_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn only_this_listeners_loopback_names_pass() {
        for ok in ["127.0.0.1:3000", "localhost:3000", "LOCALHOST:3000", "[::1]:3000"] {
            assert!(is_loopback(ok, 3000), "{ok}");
        }
        for refused in [
            "attacker.example",
            "attacker.example:3000",
            "127.0.0.1:3001",
            "127.0.0.1",
            "localhost.attacker.example:3000",
            "127.0.0.1.nip.io:3000",
            "[::1]",
            "[::2]:3000",
            "[::1:3000",
            "10.0.0.1:3000",
            "",
        ] {
            assert!(!is_loopback(refused, 3000), "{refused}");
        }
        assert!(is_loopback("localhost", 80));
    }
}
