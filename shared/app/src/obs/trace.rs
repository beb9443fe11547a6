//! One trace per order's request: OpenTelemetry spans over `tracing`
//! (`tracing-opentelemetry`), carried between functions by the standard
//! formats only — W3C `traceparent` and X-Ray's `X-Amzn-Trace-Id`, both
//! read and written by the ecosystem's propagators.
//!
//! How a trace travels:
//!
//! 1. An API request continues the caller's `traceparent` header, else the
//!    X-Ray header Lambda hands the invocation (active tracing), else starts
//!    a trace with an X-Ray-compatible id ([`XrayIdGenerator`]) — see
//!    [`request_span_parent`].
//! 2. A use case that writes outbox events stores the current span's
//!    context in each envelope's `traceparent` ([`current_traceparent`]).
//! 3. The stream publisher sends it as the PutEvents entry's `TraceHeader`
//!    ([`xray_header`]); EventBridge passes it to SQS as the message's
//!    `AWSTraceHeader` system attribute.
//! 4. Each consumer handles each message in a span whose parent is that
//!    header (or, where a hop dropped it, the envelope's `traceparent`), and
//!    links the invocation to every message's trace ([`message_parent`]).
//!    What the consumer writes next (a refund's events) carries it on.
//!
//! Every log line carries the trace as Powertools' `xray_trace_id` (the
//! X-Ray `Root`), read from the span that continued it.
//!
//! In Lambda no span is exported: the functions' own segments come from
//! Lambda's active tracing, and the ids above tie them together. `shop up
//! --otlp URL` exports every span of the local stack over OTLP/HTTP.
//!
//! HTTP APIs of API Gateway have no X-Ray of their own; a trace starts at
//! the function.

use std::collections::HashMap;
use std::sync::OnceLock;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_aws::trace::{XrayIdGenerator, XrayPropagator};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanExporter};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// The span field every line's `xray_trace_id` is read from: spans that
/// continue a trace ([`continue_trace`]) declare it empty and it is filled
/// with the X-Ray `Root` of their trace.
pub const TRACE_FIELD: &str = "xray_trace_id";

/// The W3C header, as HTTP and the envelope carry it.
pub const TRACEPARENT: &str = "traceparent";

/// The X-Ray header, as the Lambda runtime, PutEvents' `TraceHeader` and SQS's
/// `AWSTraceHeader` carry it.
pub const X_AMZN_TRACE_ID: &str = "x-amzn-trace-id";

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The process's tracer provider, X-Ray-compatible ids. The first call
/// decides: [`export_to`] before the subscriber, or none (a Lambda
/// function never exports).
fn provider(service: &'static str, processor: Option<BatchSpanProcessor>) -> &'static SdkTracerProvider {
    PROVIDER.get_or_init(|| {
        let mut builder = SdkTracerProvider::builder()
            .with_id_generator(XrayIdGenerator::default())
            .with_resource(Resource::builder_empty().with_attributes([KeyValue::new("service.name", service)]).build());
        if let Some(processor) = processor {
            builder = builder.with_span_processor(processor);
        }
        builder.build()
    })
}

/// Exports every span through `exporter` (OTLP for `shop up --otlp`). Call
/// it before [`super::telemetry::init`]; false if the provider was already
/// set up.
pub fn export_to<E: SpanExporter + 'static>(service: &'static str, exporter: E) -> bool {
    if PROVIDER.get().is_some() {
        return false;
    }
    // Short batches: an operator watching a trace wants it within a second.
    let config = BatchConfigBuilder::default().with_scheduled_delay(std::time::Duration::from_millis(500)).build();
    provider(service, Some(BatchSpanProcessor::builder(exporter).with_batch_config(config).build()));
    true
}

/// The layer that gives every `tracing` span an OpenTelemetry span.
pub fn layer<S>(service: &'static str) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(provider(service, None).tracer("shop")).with_threads(false)
}

/// Exports what is still batched (the local stack's shutdown).
pub fn flush() {
    if let Some(Err(e)) = PROVIDER.get().map(SdkTracerProvider::force_flush) {
        tracing::warn!(error = %e, "could not flush the spans");
    }
}

/// A context from a W3C `traceparent`, if it is one.
pub fn from_traceparent(value: &str) -> Option<Context> {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), value.to_owned())]);
    valid(TraceContextPropagator::new().extract(&carrier))
}

/// A context from an X-Ray trace header (`Root=…;Parent=…;Sampled=…`).
pub fn from_xray(value: &str) -> Option<Context> {
    let carrier = HashMap::from([(X_AMZN_TRACE_ID.to_owned(), value.to_owned())]);
    valid(XrayPropagator::new().extract(&carrier))
}

fn valid(cx: Context) -> Option<Context> {
    cx.span().span_context().is_valid().then_some(cx)
}

/// The W3C `traceparent` of a context.
pub fn traceparent_of(cx: &Context) -> Option<String> {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// The X-Ray header for PutEvents' `TraceHeader`, from an envelope's W3C
/// `traceparent` (the same trace and parent span).
pub fn xray_header(traceparent: &str) -> Option<String> {
    let cx = from_traceparent(traceparent)?;
    let mut carrier = HashMap::new();
    XrayPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove(X_AMZN_TRACE_ID)
}

/// The X-Ray trace id (`1-5759e988-bd862e3fe1be46a994272793`) of a span
/// context: the `Root` of its X-Ray header, as Powertools logs it.
pub fn xray_trace_id(sc: &SpanContext) -> Option<String> {
    let header = opentelemetry_aws::trace::xray_propagator::span_context_to_string(sc)?;
    header.split(';').find_map(|part| part.strip_prefix("Root=")).map(str::to_owned)
}

/// The X-Ray trace id an X-Ray header names, if it is a valid one.
pub fn root_of(header: &str) -> Option<String> {
    xray_trace_id(from_xray(header)?.span().span_context())
}

/// The X-Ray trace id of a W3C `traceparent`, if it is a valid one.
pub fn trace_id_of(traceparent: &str) -> Option<String> {
    xray_trace_id(from_traceparent(traceparent)?.span().span_context())
}

/// The current span's context as a W3C `traceparent`: what an outbox event
/// stores so its consumers continue the trace of the request that caused it.
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    traceparent_of(&cx)
}

/// Makes `span` (not yet entered) continue `parent`, if any, and records
/// its trace id in [`TRACE_FIELD`]. Without a parent the span continues the
/// current trace, or starts one.
pub fn continue_trace(span: &tracing::Span, parent: Option<Context>) {
    if let Some(parent) = parent {
        // Fails only when the span is disabled (filtered out) or already
        // entered; then it keeps the trace it has.
        let _ = span.set_parent(parent);
    }
    if let Some(id) = xray_trace_id(span.context().span().span_context()) {
        span.record(TRACE_FIELD, id.as_str());
    }
}

/// An API request's parent: the caller's `traceparent` header, else
/// Lambda's X-Ray header for this invocation.
pub fn request_span_parent(traceparent_header: Option<&str>, lambda_trace: Option<&str>) -> Option<Context> {
    traceparent_header.and_then(from_traceparent).or_else(|| lambda_trace.and_then(from_xray))
}

/// A consumed message's parent: SQS's `AWSTraceHeader` (set by EventBridge
/// from the PutEvents entry), else the envelope's `traceparent`.
pub fn message_parent(aws_trace_header: Option<&str>, envelope_traceparent: Option<&str>) -> Option<Context> {
    aws_trace_header.and_then(from_xray).or_else(|| envelope_traceparent.and_then(from_traceparent))
}

/// Links the current span (a consumer's invocation) to a message's trace.
pub fn link_current(cx: &Context) {
    tracing::Span::current().add_link(cx.span().span_context().clone());
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    const W3C: &str = "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01";
    const XRAY: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    #[test]
    fn the_two_formats_carry_the_same_trace_and_parent() {
        assert_eq!(xray_header(W3C).as_deref(), Some(XRAY));
        let cx = from_xray(XRAY).unwrap();
        assert_eq!(traceparent_of(&cx).as_deref(), Some(W3C));
        assert_eq!(xray_trace_id(cx.span().span_context()).as_deref(), Some("1-5759e988-bd862e3fe1be46a994272793"));
    }

    #[test]
    fn garbage_is_no_trace() {
        for bad in ["", "nonsense", "00-00000000000000000000000000000000-0000000000000000-01", "Root=1-x"] {
            assert!(from_traceparent(bad).is_none(), "{bad}");
            assert!(from_xray(bad).is_none(), "{bad}");
            assert!(xray_header(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_sqs_header_wins_over_the_envelope_and_either_alone_is_enough() {
        let other = "00-6759e988bd862e3fe1be46a994272793-63995c3f42cd8ad8-01";
        let id = |cx: Option<Context>| cx.map(|c| c.span().span_context().trace_id().to_string());
        assert_eq!(id(message_parent(Some(XRAY), Some(other))), Some("5759e988bd862e3fe1be46a994272793".into()));
        assert_eq!(id(message_parent(None, Some(other))), Some("6759e988bd862e3fe1be46a994272793".into()));
        assert_eq!(id(message_parent(Some("junk"), Some(other))), Some("6759e988bd862e3fe1be46a994272793".into()));
        assert_eq!(id(request_span_parent(Some(other), Some(XRAY))), Some("6759e988bd862e3fe1be46a994272793".into()));
        assert_eq!(id(request_span_parent(None, Some(XRAY))), Some("5759e988bd862e3fe1be46a994272793".into()));
        assert_eq!(id(message_parent(None, None)), None);
    }

    #[test]
    fn a_continued_span_and_its_children_write_the_callers_trace_and_a_new_one_gets_an_xray_id() {
        let subscriber = tracing_subscriber::registry().with(layer("test"));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", xray_trace_id = tracing::field::Empty);
            continue_trace(&span, from_xray(XRAY));
            let inner = span.in_scope(|| {
                let child = tracing::info_span!("child");
                child.in_scope(current_traceparent)
            });
            let inner = inner.unwrap();
            assert!(inner.starts_with("00-5759e988bd862e3fe1be46a994272793-"), "{inner}");
            assert_ne!(inner, W3C, "a child span has its own id");

            let fresh = tracing::info_span!("request", xray_trace_id = tracing::field::Empty);
            continue_trace(&fresh, None);
            let sc = fresh.context().span().span_context().clone();
            let id = xray_trace_id(&sc).unwrap();
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            let epoch = u64::from_str_radix(id.get(2..10).unwrap(), 16).unwrap();
            assert!(now.abs_diff(epoch) < 600, "X-Ray ids start with the epoch second: {id}");
        });
    }
}
