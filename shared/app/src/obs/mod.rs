//! Observability: the tracing setup every binary installs ([`telemetry`]),
//! one trace per request carried through the saga ([`trace`]),
//! business metrics ([`metrics`]), the saga statistics the console charts
//! ([`stats`]) and the Lambda run loop that ties them to each invocation
//! ([`lambda`]).

pub mod lambda;
pub mod metrics;
pub mod stats;
pub mod telemetry;
pub mod trace;

/// A function's cold start: its logs, and in Lambda its metrics collector.
/// Panics only when a second metrics recorder is already installed (a
/// configuration error, at cold start).
pub fn init(service: &'static str) {
    telemetry::init(service);
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        metrics::install_from_env(service).expect("metrics collector");
    }
}
