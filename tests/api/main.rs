//! Black-box tests of the HTTP API against the local stack (embedded engine),
//! started on port 0 per test.

mod attacks;
mod campaigns;
mod catalog;
mod concurrency;
mod console;
mod dump;
mod events;
mod idempotency;
mod listeners;
mod my_orders;
mod orders;
mod payments;
mod points;
mod refund_accounts;
mod refunds;
mod sales;
mod store_errors;
mod validation;
