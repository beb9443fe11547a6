//! The HTTP edge: the only place that knows `lambda_http` and problem+json.
//! One file per resource, each with the handlers of its routes, run
//! inside [`serve`] — the request's context, a span with its correlation
//! id, and the problem answer for any error — and translating between the
//! request and a use case (`crate::usecases`); a use case's error becomes a
//! problem by `impl From<&Error> for Problem` beside its handler.
//!
//! # Layout
//!
//! | room | what |
//! | --- | --- |
//! | [`orders`] | `POST /orders`, `GET /orders/{id}`, `POST /orders/{id}/cancel`, `GET /orders`, `GET /orders/{id}/timeline` |
//! | [`refunds`] | `POST /orders/{id}/refunds` (part of a paid order back, or the rest) |
//! | [`payments`] | `POST /payments/confirm`, `POST /payments/points` |
//! | [`webhook`] | `POST /webhooks/pg` (no JWT; verified by asking the PG) |
//! | [`coupons`] | `GET /coupons` |
//! | [`points`] | `GET /me/points` |
//! | [`catalog`] | `GET /products`, `GET /products/{id}` |
//! | [`campaigns`] | campaigns: create (operators), read, claim |
//! | [`sales`] | flash sales behind the waiting room: create (operators), read, enter, one's ticket, leave |
//! | [`live`] | the waiting room's WebSocket API: the `$connect` authorizer, `$connect`, `$disconnect`, `$default` |
//! | [`routes`] | the route table the template, the local stack and the drift test share |
//! | [`idempotency`] | the `Idempotency-Key` protocol around a handler |
//! | [`serve`] | the one handler wrapper, the request context, JSON answers |
//! | [`problem`] | RFC 9457 problem details and the shared problems |
//! | [`extract`] | the caller, an operator, path and query parameters, the JSON body |
//! | [`paging`] | pages, cursors, cacheable answers |
//!
//! Identity comes only from `requestContext.authorizer.jwt.claims.sub`, which
//! API Gateway (or the local stack, which verifies the token the same way)
//! fills in after validating the token. Nothing in a body names the caller.

pub mod campaigns;
pub mod catalog;
pub mod coupons;
pub mod idempotency;
pub mod live;
pub mod orders;
pub mod payments;
pub mod points;
pub mod refunds;
pub mod routes;
pub mod sales;
pub mod webhook;

pub mod extract;
pub mod paging;
pub mod problem;
pub mod serve;

pub use extract::*;
pub use paging::*;
pub use problem::*;
pub use serve::*;
