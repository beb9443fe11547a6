//! Observability: the tracing setup every binary installs ([`telemetry`])
//! and business metrics ([`metrics`]).

pub mod metrics;
pub mod telemetry;
