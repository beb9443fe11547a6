//! One tracing setup for every binary. Every application log line carries
//! the keys of Powertools for AWS Lambda: `service`, `cold_start`,
//! `function_request_id`, `xray_trace_id`, `correlation_id`, `order_id`
//! (null where unknown), beside `timestamp` (RFC 3339), `level` and
//! `message`.
//!
//! - In Lambda the function's `LoggingConfig` is `LogFormat: JSON`: Lambda
//!   sets `AWS_LAMBDA_LOG_FORMAT=JSON` and `AWS_LAMBDA_LOG_LEVEL` (the
//!   template's `ApplicationLogLevel`); each line is one JSON object on
//!   stdout, and Lambda filters by its `level` key as well.
//! - Locally the same keys, as `key=value` text on stderr (`LOG_FORMAT=json`
//!   for JSON).
//!
//! Where the keys come from: `function_request_id` and `xray_trace_id` from
//! the span lambda_runtime's `TracingLayer` opens around each invocation
//! ([`INVOKE_SPAN`]; the local stack opens the same span with
//! [`invocation_span`]), `correlation_id` and `order_id` from the request
//! and consumer spans (or the event itself). `xray_trace_id` is the X-Ray
//! `Root` of the trace the request or message continues ([`super::trace`]),
//! else of the invocation's own header. `cold_start` is true on a
//! function's first invocation and on the lines before it.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber, span};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use super::trace;

/// The name of the span lambda_runtime's `TracingLayer` opens around each
/// invocation, with `requestId` and (when X-Ray is on) `xrayTraceId`.
pub const INVOKE_SPAN: &str = "Lambda runtime invoke";

/// The invocation span as the local stack opens it for `function`: the
/// same name and fields as lambda_runtime's, plus the function (one process
/// runs them all).
pub fn invocation_span(function: &str, request_id: &str) -> tracing::Span {
    tracing::info_span!("Lambda runtime invoke", requestId = request_id, function_name = function)
}

/// A fresh request id for a local invocation (Lambda's are UUIDs too).
pub fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

/// Installs the global subscriber. Safe to call twice: the second call is
/// ignored. The level is `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging
/// controls), else `RUST_LOG`, else `info`.
pub fn init(service: &'static str) {
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let json = in_lambda
        || std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"))
        || std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let installed = if json {
        install(service, Format::Json, std::io::stdout)
    } else {
        install(service, Format::Text, std::io::stderr)
    };
    if installed {
        tracing::debug!("telemetry ready");
    }
}

fn install<W>(service: &'static str, format: Format, writer: W) -> bool
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (layer, fmt) = layers(service, format, writer);
    tracing_subscriber::registry().with(filter()).with(layer).with(fmt).with(trace::layer(service)).try_init().is_ok()
}

/// The level filter: Lambda's `AWS_LAMBDA_LOG_LEVEL` (TRACE … FATAL) wins
/// over `RUST_LOG` (a level, or `warn,shop_app=debug`: per-target levels,
/// without EnvFilter's span and regex directives, which cost a binary its
/// regex engine).
fn filter() -> Targets {
    let parse = |s: &str| s.parse::<Targets>().ok();
    std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .and_then(|level| match level.to_ascii_lowercase().as_str() {
            "fatal" => parse("error"),
            other => parse(other),
        })
        .or_else(|| std::env::var("RUST_LOG").ok().and_then(|v| parse(&v)))
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
}

/// The two layers: one keeps each span's fields (and, for invocation spans,
/// whether it is a cold start), the other writes the lines.
pub fn layers<S, W>(service: &'static str, format: Format, writer: W) -> (ContextLayer, impl Layer<S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let started = Arc::new(Mutex::new(HashSet::new()));
    let context = ContextLayer { started: started.clone() };
    let fmt =
        tracing_subscriber::fmt::layer().with_writer(writer).event_format(Powertools { service, format, started });
    (context, fmt)
}

/// A string field of the current span or its nearest ancestor that has it
/// (the request's or message's `correlation_id`, say), as log lines carry
/// it; `None` outside any such span or without this module's subscriber.
pub fn current_field(name: &str) -> Option<String> {
    tracing::Span::current()
        .with_subscriber(|(id, dispatch)| {
            let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
            let span = registry.span(id)?;
            span.scope().find_map(|s| match s.extensions().get::<SpanFields>()?.0.get(name)? {
                Value::String(v) => Some(v.clone()),
                _ => None,
            })
        })
        .flatten()
}

/// A span's fields, as JSON values.
struct SpanFields(Map<String, Value>);

/// Records each span's fields so that every line can carry them; marks the
/// first invocation span of each function as the cold start.
pub struct ContextLayer {
    /// Functions that have started an invocation in this process.
    started: Arc<Mutex<HashSet<String>>>,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for ContextLayer {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Map::new();
        attrs.record(&mut Fields(&mut fields));
        if attrs.metadata().name() == INVOKE_SPAN {
            let function = fields.get("function_name").and_then(Value::as_str).unwrap_or_default().to_owned();
            let cold = self.started.lock().map(|mut s| s.insert(function)).unwrap_or(false);
            fields.insert("cold_start".into(), Value::Bool(cold));
        }
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(SpanFields(fields)) = ext.get_mut::<SpanFields>() {
            values.record(&mut Fields(fields));
        }
    }
}

/// Writes one line per event with the Powertools keys first.
struct Powertools {
    service: &'static str,
    format: Format,
    started: Arc<Mutex<HashSet<String>>>,
}

/// The keys every line carries (text lines write them first, in this order).
pub const KEYS: [&str; 9] = [
    "timestamp",
    "level",
    "service",
    "cold_start",
    "function_request_id",
    "xray_trace_id",
    "correlation_id",
    "order_id",
    "message",
];

impl<S, N> FormatEvent<S, N> for Powertools
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        // Span fields, outermost first, so an inner span's value wins.
        let mut context = Map::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    context.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut own = Map::new();
        event.record(&mut Fields(&mut own));

        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut take = |key: &str| own.remove(key).or_else(|| context.remove(key)).unwrap_or(Value::Null);
        let service = match take("function_name") {
            Value::String(f) => f,
            _ => self.service.to_owned(),
        };
        let cold_start = match take("cold_start") {
            Value::Bool(b) => b,
            // Outside any invocation: before the first one is the init.
            _ => self.started.lock().map(|s| s.is_empty()).unwrap_or(false),
        };
        let request_id = take("requestId");
        // The trace a span continued (an API request, a consumed message)
        // wins over the invocation's own X-Ray header, logged as its Root.
        let lambda_trace = take("xrayTraceId");
        let trace_id = match take(trace::TRACE_FIELD) {
            Value::String(id) => Value::String(id),
            _ => match &lambda_trace {
                Value::String(h) => trace::root_of(h).map_or(Value::Null, Value::String),
                _ => Value::Null,
            },
        };
        let correlation_id = take("correlation_id");
        let order_id = take("order_id");
        let message = take("message");

        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(timestamp));
        line.insert("level".into(), Value::String(event.metadata().level().as_str().to_owned()));
        line.insert("service".into(), Value::String(service));
        line.insert("cold_start".into(), Value::Bool(cold_start));
        line.insert("function_request_id".into(), request_id);
        line.insert("xray_trace_id".into(), trace_id);
        line.insert("correlation_id".into(), correlation_id);
        line.insert("order_id".into(), order_id);
        line.insert("message".into(), message);
        // The rest: the spans' fields, then the event's own.
        context.remove("tenantId");
        line.extend(context);
        line.extend(own);
        line.insert("target".into(), Value::String(event.metadata().target().to_owned()));

        match self.format {
            Format::Json => writeln!(writer, "{}", Value::Object(line)),
            Format::Text => {
                let text = |v: &Value| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let get = |k: &str| line.get(k).map(text).unwrap_or_default();
                write!(writer, "{} {:>5} {}", get("timestamp"), get("level"), get("message"))?;
                let first = KEYS.iter().filter(|k| !matches!(**k, "timestamp" | "level" | "message"));
                for k in first {
                    if let Some(v) = line.get(*k).filter(|v| !v.is_null()) {
                        write!(writer, " {k}={}", text(v))?;
                    }
                }
                for (k, v) in line.iter().filter(|(k, _)| !KEYS.contains(&k.as_str())) {
                    write!(writer, " {k}={}", text(v))?;
                }
                writeln!(writer)
            }
        }
    }
}

/// Collects fields as JSON values.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().to_owned(), Value::String(value.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Buffer {
            self.clone()
        }
    }

    /// Runs `f` under a subscriber of these layers and returns what it wrote.
    fn capture(service: &'static str, format: Format, f: impl FnOnce()) -> String {
        let buf = Buffer::default();
        let (context, fmt) = layers(service, format, buf.clone());
        tracing::subscriber::with_default(tracing_subscriber::registry().with(context).with(fmt), f);
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    fn lines(text: &str) -> Vec<Map<String, Value>> {
        text.lines()
            .map(|l| match serde_json::from_str(l).unwrap() {
                Value::Object(m) => m,
                other => panic!("not an object: {other}"),
            })
            .collect()
    }

    /// What lambda_runtime's TracingLayer opens (no function field).
    fn lambda_invoke(request_id: &str, trace: &str) -> tracing::Span {
        tracing::info_span!("Lambda runtime invoke", requestId = request_id, xrayTraceId = trace)
    }

    #[test]
    fn every_line_carries_the_powertools_keys_and_cold_start_only_on_the_first_invocation() {
        let text = capture("get-order", Format::Json, || {
            tracing::info!("init");
            for (n, request_id) in ["r-1", "r-2"].into_iter().enumerate() {
                let invoke = lambda_invoke(
                    request_id,
                    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
                );
                let _i = invoke.enter();
                let request = tracing::info_span!(
                    "request",
                    route = "GET /orders/{orderId}",
                    correlation_id = "c-1",
                    order_id = tracing::field::Empty
                );
                let _r = request.enter();
                tracing::info!("before the order is known");
                tracing::Span::current().record("order_id", "o-1");
                tracing::warn!(attempt = n, "answered");
            }
        });
        let lines = lines(&text);
        assert_eq!(lines.len(), 5);
        for line in &lines {
            for key in KEYS {
                assert!(line.contains_key(key), "{key} missing in {line:?}");
            }
            assert_eq!(line["service"], "get-order");
        }
        let [init, first_a, first_b, second_a, second_b] = &lines[..] else { unreachable!() };
        assert_eq!(init["cold_start"], true);
        assert_eq!(init["function_request_id"], Value::Null);
        assert_eq!(first_a["cold_start"], true);
        assert_eq!(first_a["function_request_id"], "r-1");
        assert_eq!(first_a["xray_trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(first_a["correlation_id"], "c-1");
        assert_eq!(first_a["order_id"], Value::Null);
        assert_eq!(first_a["route"], "GET /orders/{orderId}");
        assert_eq!(first_b["order_id"], "o-1");
        assert_eq!(first_b["level"], "WARN");
        assert_eq!(first_b["attempt"], 0);
        assert_eq!(first_b["message"], "answered");
        assert_eq!(second_a["cold_start"], false);
        assert_eq!(second_a["function_request_id"], "r-2");
        assert_eq!(second_b["cold_start"], false);
        assert_eq!(second_b["attempt"], 1);
    }

    #[test]
    fn the_local_stack_counts_a_cold_start_per_function_and_names_the_service_by_it() {
        let text = capture("shop", Format::Json, || {
            for function in ["create-order", "coupon", "create-order"] {
                let span = invocation_span(function, &new_request_id());
                let _e = span.enter();
                tracing::info!(order_id = "o-9", "handled");
            }
        });
        let lines = lines(&text);
        let seen: Vec<(&Value, &Value, &Value)> =
            lines.iter().map(|l| (&l["service"], &l["cold_start"], &l["order_id"])).collect();
        assert_eq!(
            seen,
            vec![
                (&Value::from("create-order"), &Value::Bool(true), &Value::from("o-9")),
                (&Value::from("coupon"), &Value::Bool(true), &Value::from("o-9")),
                (&Value::from("create-order"), &Value::Bool(false), &Value::from("o-9")),
            ]
        );
        assert!(lines.iter().all(|l| l["function_request_id"].as_str().is_some_and(|r| r.len() == 36)));
    }

    #[test]
    fn text_lines_carry_the_same_keys() {
        let text = capture("shop", Format::Text, || {
            let span = invocation_span("analytics", "req-7");
            let _e = span.enter();
            tracing::info!(correlation_id = "c-7", order_id = "o-7", "delivered");
        });
        for part in [
            " INFO delivered",
            "service=analytics",
            "cold_start=true",
            "function_request_id=req-7",
            "correlation_id=c-7",
            "order_id=o-7",
        ] {
            assert!(text.contains(part), "{part} missing in {text}");
        }
    }
}
