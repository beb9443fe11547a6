//! What every local listener (the API and the console, the PG simulator,
//! the data-platform sink, the DynamoDB port, `shop console --stack`) does
//! before its routes ([`serve`]):
//!
//! - it binds 127.0.0.1 only ([`bind`], which names a port in use);
//! - it answers only requests whose `Host` names that loopback address and
//!   its port. A web page open in the developer's browser can make the
//!   browser send requests to 127.0.0.1; through DNS rebinding (its own
//!   host name resolving to 127.0.0.1) it can even read the answers — but
//!   such a request carries the page's host name, and is refused here (403)
//!   before any route runs;
//! - it holds at most [`Limits::max_connections`] connections (more wait
//!   in the kernel's backlog), cuts a connection whose request head takes
//!   longer than [`Limits::header_timeout`] or whose body takes longer than
//!   [`Limits::body_timeout`] (slow-loris), and refuses a body past the
//!   listener's limit by its `Content-Length` before reading it, or while
//!   reading it, never buffering more than the limit (413). Connections
//!   are served `with_upgrades`: hyper hands an upgraded connection
//!   (WebSocket) to its handler and the HTTP connection ends there, so it
//!   leaves the read timeouts and this cap behind; whatever serves it
//!   counts it with a cap of its own.

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// What one listener takes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest request body, in bytes (the listener's largest route's).
    pub max_body: usize,
    /// The longest a client may take to send a request's line and headers.
    pub header_timeout: Duration,
    /// The longest a client may take to send a request's body.
    pub body_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Limits {
    /// A listener whose bodies are at most `max_body` bytes: heads within
    /// 30 s (hyper's default; the same timer closes a keep-alive
    /// connection idle that long, so it must outlast a client's pause
    /// between requests), bodies within 30 s (a 16 MB body takes
    /// milliseconds on loopback), 1,024 connections (a browser opens six
    /// per host; the heaviest test drives 500 requests at once, and its
    /// client's pool may hold more connections than that — connections past
    /// the cap wait for an idle one's timer, so the cap stays well above).
    pub const fn with_max_body(max_body: usize) -> Limits {
        Limits {
            max_body,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }

    /// The same timeouts and cap as `self`, another body limit.
    pub const fn body(self, max_body: usize) -> Limits {
        Limits { max_body, ..self }
    }
}

/// How long a stopping listener waits for its connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The body limit of the listeners that take JSON documents (the API, the
/// console's forms, the simulators): the API's routes' own limit.
pub const JSON_BODY: usize = shop_app::http::extract::MAX_BODY_BYTES;

/// Serves `router` on `listener` with the checks above until `stop`
/// resolves, then lets running requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: Limits,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;
    // A listener without an address takes no request anyway: port 0 names none.
    let port = listener.local_addr().map_or(0, |a| a.port());
    let router = loopback_only(router.layer(axum::middleware::from_fn_with_state(limits, guard_body)), port);
    let cap = limits.max_connections.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(cap));
    let (closing, closed) = tokio::sync::watch::channel(false);
    let mut stop = std::pin::pin!(stop);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut stop => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, a reset before accept: wait a
                    // little rather than spin, and go on.
                    tracing::warn!(error = %e, port, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut closed = closed.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = async { let _ = closed.wait_for(|c| *c).await; } => {
                    // Finish the request in flight, take no other.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = closing.send(true);
    // Every connection holds a permit until it ends; a client that never
    // reads its answer is not waited for past SHUTDOWN_GRACE.
    let all = permits.acquire_many(u32::try_from(cap).unwrap_or(u32::MAX));
    if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
        tracing::warn!(port, "connections still open after the shutdown grace; leaving them");
    }
}

/// Refuses a body longer than the limit by its `Content-Length`, and makes
/// reading any other body fail once past the limit or the body timeout:
/// whoever reads it (an extractor, `to_bytes`) gets an error, never more
/// than the limit in memory.
async fn guard_body(State(limits): State<Limits>, req: Request, next: Next) -> Response {
    let declared = req.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return refused(
            http::StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            format!("the body is larger than this listener's limit of {} bytes", limits.max_body),
        );
    }
    let (parts, body) = req.into_parts();
    let guarded = Deadline {
        inner: http_body_util::Limited::new(body, limits.max_body),
        deadline: Box::pin(tokio::time::sleep(limits.body_timeout)),
    };
    next.run(Request::from_parts(parts, axum::body::Body::new(guarded))).await
}

/// A body that fails once its deadline passes.
struct Deadline<B> {
    inner: B,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

/// The error of a body that was not sent in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not sent within the listener's body timeout")]
pub struct BodyTimedOut;

impl<B> http_body::Body for Deadline<B>
where
    B: http_body::Body + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = B::Data;
    type Error = axum::BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let std::task::Poll::Ready(frame) = std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            return std::task::Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match this.deadline.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => std::task::Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// What reading a guarded body failed on: too large (413) or too slow
/// (408); `None` for any other failure.
pub fn body_refusal(e: &axum::Error) -> Option<(u16, &'static str)> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return Some((413, "the request body is larger than the route's limit"));
        }
        if err.is::<BodyTimedOut>() {
            return Some((408, "the request body was not sent in time"));
        }
        source = err.source();
    }
    None
}

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
    refused(http::StatusCode::FORBIDDEN, "host-refused", "Host refused", detail)
}

/// A problem+json answer from the listener itself, before any route.
fn refused(status: http::StatusCode, kind: &str, title: &str, detail: String) -> Response {
    let body = serde_json::json!({
        "type": format!("https://shop.example/problems/{kind}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
        // As every problem of the API: the id its log lines carry.
        "correlationId": uuid::Uuid::now_v7().to_string(),
    });
    let mut resp = (status, body.to_string()).into_response();
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
