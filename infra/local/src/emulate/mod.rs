//! The local stand-ins for what AWS runs in the cloud. Each speaks the
//! shapes of the real service (`aws_lambda_events` types) to the very
//! handlers the Lambda functions run.

pub mod api_gateway;
pub mod bus;
pub mod dynamodb;
pub mod live;
pub mod queue;
pub mod rules;
pub mod runner;
pub mod schedules;
