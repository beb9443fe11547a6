//! API Gateway's WebSocket API for live positions (docs/waiting-room.md):
//! the REQUEST authorizer of `$connect` (`live-authorizer`) and the
//! `$connect`, `$disconnect` and `$default` routes (`live`). The use cases
//! are [`crate::usecases::live`]; `shop up` serves the same protocol on
//! `/live` (`infra/local`).
//!
//! The handshake offers two subprotocols: [`PROTOCOL`] and the shopper's
//! live token (from `GET /sales/{saleId}/queue/me`). Browsers cannot set
//! `Authorization` on a WebSocket, and a query string lands in access
//! logs; `Sec-WebSocket-Protocol` does neither, and the token it carries
//! opens one sale's positions for five minutes, never the API.
//!
//! The events are read as JSON: a REQUEST authorizer's context reaches the
//! routes as flat keys of `requestContext.authorizer`, which the typed
//! event of `aws_lambda_events` does not keep.

use crate::App;
use crate::admission::LiveGrant;
use crate::ports::Pusher;
use crate::usecases::live::{self, ConnectError};
use serde_json::{Value, json};
use shop_domain::{SaleId, UserId};

/// The subprotocol both ends speak.
pub const PROTOCOL: &str = "shop-live.v1";

/// The live token among the offered subprotocols (`values`: the
/// `Sec-WebSocket-Protocol` header's values), if [`PROTOCOL`] is offered.
pub fn offered_token<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let offered: Vec<&str> = values.into_iter().flat_map(|v| v.split(',')).map(str::trim).collect();
    if !offered.contains(&PROTOCOL) {
        return None;
    }
    offered.into_iter().find(|p| *p != PROTOCOL && !p.is_empty()).map(str::to_owned)
}

/// A header of a WebSocket event by name, whatever its case.
fn header<'a>(event: &'a Value, name: &str) -> Option<&'a str> {
    event["headers"].as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str())
}

/// `live-authorizer`: allows `$connect` for a valid live token, with its
/// sale and user as the context every route of the connection then gets;
/// anything else is API Gateway's 401 (`Unauthorized`).
pub async fn authorize(app: &App, event: Value) -> Result<Value, lambda_runtime::Error> {
    let token = offered_token(header(&event, "sec-websocket-protocol"));
    let grant = match token.as_deref().map(|t| live::authorize(app, t)) {
        Some(Ok(g)) => g,
        Some(Err(e)) => {
            tracing::info!(reason = %e, "live connection refused");
            return Err("Unauthorized".into());
        }
        None => return Err("Unauthorized".into()),
    };
    let resource = event["methodArn"].as_str().unwrap_or("*");
    Ok(json!({
        "principalId": grant.user.as_str(),
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{ "Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resource }],
        },
        "context": { "saleId": grant.sale.as_str(), "userId": grant.user.as_str() },
    }))
}

fn status(code: u16) -> Value {
    json!({ "statusCode": code })
}

/// `live`: the WebSocket API's three routes. `$connect` records the
/// connection (the authorizer has checked its token) and selects
/// [`PROTOCOL`]; `$disconnect` forgets it; `$default` (any message) pushes
/// the position now through `pusher`.
pub async fn route(app: &App, pusher: &dyn Pusher, event: Value) -> Result<Value, lambda_runtime::Error> {
    let rc = &event["requestContext"];
    let id = rc["connectionId"].as_str().ok_or("no connectionId in the event")?;
    match rc["routeKey"].as_str().unwrap_or("$default") {
        "$connect" => {
            let a = &rc["authorizer"];
            let (Some(sale), Some(user)) = (a["saleId"].as_str(), a["userId"].as_str()) else {
                return Ok(status(401));
            };
            let grant = LiveGrant { sale: SaleId::parse(sale)?, user: UserId::parse(user)? };
            match live::connect(app, grant, id).await {
                Ok(_) => Ok(json!({ "statusCode": 200, "headers": { "Sec-WebSocket-Protocol": PROTOCOL } })),
                Err(ConnectError::NoTicket) => Ok(status(404)),
                Err(ConnectError::BadToken(_)) => Ok(status(403)),
                Err(ConnectError::Unexpected(e)) => Err(e.into()),
            }
        }
        "$disconnect" => {
            live::disconnect(app, id).await?;
            Ok(status(200))
        }
        _ => {
            if let Some(m) = live::current(app, id).await?
                && let Err(e) = pusher.push(id, &m.to_json()).await
            {
                tracing::warn!(connection = id, error = %e, "answering a live message failed");
            }
            Ok(status(200))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_the_other_offered_subprotocol() {
        assert_eq!(offered_token(["shop-live.v1, live1.abc.def"]).as_deref(), Some("live1.abc.def"));
        assert_eq!(offered_token(["live1.abc.def", "shop-live.v1"]).as_deref(), Some("live1.abc.def"));
        assert_eq!(offered_token(["live1.abc.def"]), None, "the protocol must be offered");
        assert_eq!(offered_token(["shop-live.v1"]), None);
    }
}
