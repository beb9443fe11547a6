//! One tracing setup for every binary: JSON lines in Lambda (CloudWatch
//! parses them; keys follow Powertools: `service`, `cold_start`,
//! `correlation_id`, `order_id`), compact text on a terminal.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Installs the global subscriber. `RUST_LOG` overrides the default level
/// (`info`). Safe to call twice: the second call is ignored.
pub fn init(service: &'static str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let json = in_lambda || std::env::var("LOG_FORMAT").is_ok_and(|v| v == "json");
    let result = if json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_span_events(FmtSpan::NONE)
            // CloudWatch adds its own timestamp; Lambda's log line has the request id.
            .with_ansi(false)
            .try_init()
    } else {
        tracing_subscriber::fmt().compact().with_env_filter(filter).with_writer(std::io::stderr).try_init()
    };
    if result.is_ok() {
        tracing::info!(service, cold_start = true, "telemetry ready");
    }
}
