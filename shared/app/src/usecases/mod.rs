//! The use cases: each takes domain values and returns a domain result or
//! its own error enum (expected failures, apart from `Unexpected`). None
//! knows HTTP, SQS or Lambda; `crate::http` and `crate::events` translate.
//!
//! Each reads, lets the domain decide (`Order::execute`), and writes one
//! conditional DynamoDB transaction, through the one conflict-retry loop
//! ([`retry`]).

pub mod cancel;
pub mod confirm_payment;
pub mod expire;
pub mod pay_with_points;
pub mod pg_notification;
pub mod place_order;
pub mod points;
pub mod reconcile;
pub mod refund;
pub mod retry;
pub mod settle;
pub mod timeline;
