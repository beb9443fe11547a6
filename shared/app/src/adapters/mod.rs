//! Production adapters of the ports (`crate::ports`): the Toss PG client,
//! the data platform over HTTP, and — with the `aws` feature, for the Lambda
//! binaries and `shop --table` — EventBridge and the SDK-built [`App`](crate::App);
//! with `live`, API Gateway's `PostToConnection`; the refund accounts'
//! [`sealing`] (with `kms`, under KMS data keys).

pub mod data_platform;
pub mod sealing;
pub mod toss;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "aws")]
pub mod eventbridge;
#[cfg(feature = "live")]
pub mod live;
