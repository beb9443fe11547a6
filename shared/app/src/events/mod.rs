//! The event side of the saga: the outbox [`publisher`] (DynamoDB stream →
//! EventBridge) and the SQS [`consumers`] (coupon, compensation, analytics).
//! Their Lambda shapes come from `aws_lambda_events`; their work is in
//! `crate::usecases`.

pub mod consumers;
pub mod publisher;
pub mod schedules;
