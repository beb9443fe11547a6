//! API Gateway's WebSocket API, locally: `GET /live` upgraded to a
//! WebSocket, the same protocol as the deployed `LiveApi` (docs/waiting-room.md).
//!
//! The client offers the subprotocols `shop-live.v1` and its live token
//! (`Sec-WebSocket-Protocol: shop-live.v1, <liveToken>`; the token comes
//! with the ticket from `GET /sales/{saleId}/queue/me`); the server
//! selects `shop-live.v1`. Then: the position at once, pushes as it moves
//! (the admitter's broadcasts, through [`LocalPusher`]), and the position
//! again for any message the client sends. The same use cases
//! (`shop_app::usecases::live`) as the deployed functions `live-connect`,
//! `live-message` and `live-disconnect`, and the same connection items.
//!
//! A handshake from another origin is refused, as the console's forms are.

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use shop_app::App;
use shop_app::ports::{PushError, Pusher};
use shop_app::usecases::live;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

use shop_app::http::live::PROTOCOL;
/// Messages a slow client may have waiting before a push to it fails.
const BACKLOG: usize = 64;

/// The open sockets, by connection id: what [`LocalPusher`] writes to.
#[derive(Clone, Default)]
pub struct Sockets(Arc<Mutex<HashMap<String, mpsc::Sender<String>>>>);

impl Sockets {
    fn insert(&self, id: &str, tx: mpsc::Sender<String>) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(id.to_owned(), tx);
        }
    }

    fn remove(&self, id: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(id);
        }
    }

    fn sender(&self, id: &str) -> Option<mpsc::Sender<String>> {
        self.0.lock().ok().and_then(|map| map.get(id).cloned())
    }

    /// Sockets open now.
    pub fn len(&self) -> usize {
        self.0.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `PostToConnection`, locally: a message into the socket's queue. A
/// socket that closed is `Gone`, as API Gateway says of it.
#[derive(Clone)]
pub struct LocalPusher(pub Sockets);

#[async_trait::async_trait]
impl Pusher for LocalPusher {
    async fn push(&self, connection: &str, message: &str) -> Result<(), PushError> {
        let Some(tx) = self.0.sender(connection) else { return Err(PushError::Gone) };
        match tx.try_send(message.to_owned()) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(PushError::Gone),
            Err(mpsc::error::TrySendError::Full(_)) => Err(PushError::Failed("the client reads too slowly".into())),
        }
    }
}

pub struct LiveState {
    pub app: App,
    pub sockets: Sockets,
}

pub fn router(state: Arc<LiveState>) -> axum::Router {
    axum::Router::new().route("/live", axum::routing::get(upgrade)).with_state(state)
}

/// The live token among the offered subprotocols, as the deployed
/// authorizer reads it.
fn offered_token(headers: &http::HeaderMap) -> Option<String> {
    shop_app::http::live::offered_token(
        headers.get_all(http::header::SEC_WEBSOCKET_PROTOCOL).iter().filter_map(|v| v.to_str().ok()),
    )
}

async fn upgrade(State(state): State<Arc<LiveState>>, headers: http::HeaderMap, ws: WebSocketUpgrade) -> Response {
    if !crate::console::guard::from_own_origin(&headers) {
        return (StatusCode::FORBIDDEN, "refused: a WebSocket from another origin").into_response();
    }
    let Some(token) = offered_token(&headers) else {
        let why = format!("offer the subprotocols `{PROTOCOL}` and your live token (Sec-WebSocket-Protocol)");
        return (StatusCode::UNAUTHORIZED, why).into_response();
    };
    // The REQUEST authorizer's check, before the upgrade.
    let grant = match live::authorize(&state.app, &token) {
        Ok(g) => g,
        Err(e) => return (StatusCode::FORBIDDEN, e.to_string()).into_response(),
    };
    ws.protocols([PROTOCOL]).on_upgrade(move |socket| serve(socket, state, grant))
}

async fn serve(mut socket: WebSocket, state: Arc<LiveState>, grant: shop_app::admission::LiveGrant) {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let (tx, mut rx) = mpsc::channel::<String>(BACKLOG);
    state.sockets.insert(&id, tx);
    match live::connect(&state.app, grant, &id).await {
        Ok((_, first)) => {
            if socket.send(Message::text(first.to_json())).await.is_err() {
                return close(&state, &id).await;
            }
        }
        Err(e) => {
            tracing::info!(error = %e, "live connection refused");
            let _ = socket.send(Message::Close(None)).await;
            return close(&state, &id).await;
        }
    }
    loop {
        tokio::select! {
            pushed = rx.recv() => match pushed {
                Some(text) => if socket.send(Message::text(text)).await.is_err() { break },
                None => break,
            },
            incoming = socket.recv() => match incoming {
                // Any message asks for the position now (API Gateway's `$default`).
                Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                    match live::current(&state.app, &id).await {
                        Ok(Some(m)) => if socket.send(Message::text(m.to_json())).await.is_err() { break },
                        Ok(None) => break,
                        Err(e) => tracing::warn!(error = %e, "live position unavailable"),
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
        }
    }
    close(&state, &id).await;
}

async fn close(state: &LiveState, id: &str) {
    state.sockets.remove(id);
    if let Err(e) = live::disconnect(&state.app, id).await {
        tracing::warn!(connection = id, error = %e, "could not forget a closed connection (its TTL will)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_the_other_offered_subprotocol() {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::SEC_WEBSOCKET_PROTOCOL, http::HeaderValue::from_static("shop-live.v1, live1.abc.def"));
        assert_eq!(offered_token(&h).as_deref(), Some("live1.abc.def"));
        h.insert(http::header::SEC_WEBSOCKET_PROTOCOL, http::HeaderValue::from_static("live1.abc.def"));
        assert_eq!(offered_token(&h), None, "the protocol must be offered");
    }
}
