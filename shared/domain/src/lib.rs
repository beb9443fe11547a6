//! # shop-domain
//!
//! The pure core of the shop: money, identifiers, products, coupons, points
//! and the order state machine with its events. No I/O, no async, no clock
//! (callers pass `now`), no AWS SDK: every rule here is a plain function that
//! unit tests exercise directly, and every adapter (DynamoDB store, Lambda
//! handlers, local stack) depends on this crate, never the other way round.

pub mod audit;
pub mod campaign;
pub mod catalog;
pub mod coupon;
pub mod envelope;
pub mod ids;
pub mod json;
pub mod money;
pub mod order;
pub mod payment;
pub mod points;
pub mod refund_account;
pub mod sale;
pub mod time;

pub use campaign::{Campaign, ClaimRefused};
pub use catalog::{Product, Quantity};
pub use coupon::{Coupon, CouponKind, CouponStatus};
pub use envelope::EventDetail;
pub use ids::{
    CampaignId, CouponId, EventId, IdempotencyKey, InvalidId, OrderId, PaymentKey, ProductId, SaleId, UserId,
};
pub use money::Money;
pub use order::{Order, OrderCommand, OrderError, OrderEvent, OrderEventKind, OrderLine, OrderStatus, PaymentMethod};
pub use payment::{Payment, PaymentStatus};
pub use refund_account::{InvalidRefundAccount, RefundAccount};
pub use time::Timestamp;
