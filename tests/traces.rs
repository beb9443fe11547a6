//! One trace per request through the saga (its own binary: it installs the
//! process's tracer provider, exporting over OTLP to a collector the test
//! runs, as `shop up --otlp` does).
//!
//! A caller's `traceparent` is continued by the API request, stored with
//! every event the request wrote, sent as PutEvents' X-Ray `TraceHeader`,
//! and continued by each consumer's span for that event; the PG call made
//! by the request carries its correlation id and trace.

use axum::routing::post;
use serde_json::Value;
use shop_app::obs::trace;
use shop_app::ports::{BusEntry, EntryResult, EventBus};
use shop_tests::{eventually, spawn_app};
use std::sync::{Arc, Mutex};

const PLACE_TRACE: &str = "5759e988bd862e3fe1be46a994272793";
const PAY_TRACE: &str = "6759e988bd862e3fe1be46a9942727aa";
const CALLER_SPAN: &str = "53995c3f42cd8ad8";

fn xray(trace: &str) -> String {
    format!("1-{}-{}", &trace[..8], &trace[8..])
}

/// An OTLP/HTTP collector that keeps every span it is sent.
async fn collector() -> (String, Arc<Mutex<Vec<Value>>>) {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let kept = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: String| {
            let kept = kept.clone();
            async move {
                let doc: Value = serde_json::from_str(&body).expect("OTLP JSON");
                let mut all = kept.lock().unwrap();
                for rs in doc["resourceSpans"].as_array().into_iter().flatten() {
                    for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                        all.extend(ss["spans"].as_array().into_iter().flatten().cloned());
                    }
                }
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, spans)
}

fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["attributes"].as_array()?.iter().find(|a| a["key"] == key)?["value"]["stringValue"].as_str()
}

/// Records what the publisher sends.
#[derive(Default)]
struct Recorder(Mutex<Vec<BusEntry>>);

#[async_trait::async_trait]
impl EventBus for Recorder {
    async fn put_events(&self, entries: &[BusEntry]) -> anyhow::Result<Vec<EntryResult>> {
        self.0.lock().unwrap().extend_from_slice(entries);
        Ok(entries.iter().map(|_| EntryResult::Accepted { event_id: "e".into() }).collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_trace_reaches_the_outbox_the_bus_the_pg_and_every_consumer() {
    let (url, spans) = collector().await;
    assert!(trace::export_to("test", shop_local::otlp::exporter(&url).unwrap()));
    shop_app::obs::telemetry::init("test");
    let app = spawn_app().await;

    let placed = app
        .order_request("u1", "k-trace-1", r#"{"items":[{"productId":"p1","quantity":1}],"couponId":"c1"}"#)
        .header("traceparent", format!("00-{PLACE_TRACE}-{CALLER_SPAN}-01"))
        .header("x-correlation-id", "corr-place")
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201);
    let body: Value = placed.json().await.unwrap();
    let order_id = body["orderId"].as_str().unwrap().to_owned();
    let amount = body["amountDue"].as_u64().unwrap();

    let key = app.checkout(&order_id, amount, "CARD").await;
    let paid = app
        .http
        .post(app.url("/payments/confirm"))
        .bearer_auth(app.stack.token("u1"))
        .header("traceparent", format!("00-{PAY_TRACE}-{CALLER_SPAN}-01"))
        .header("x-correlation-id", "corr-pay")
        .json(&serde_json::json!({"orderId": order_id, "paymentKey": key, "amount": amount}))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 200);
    app.settled().await;

    // The outbox: every event names the request that wrote it.
    let (_, _, timeline) = app.get(Some("u1"), &format!("/orders/{order_id}/timeline")).await;
    let steps = timeline["timeline"].as_array().unwrap();
    let events: Vec<&Value> = steps.iter().filter(|s| s["kind"] == "event").collect();
    let trace_of = |detail_type: &str| -> (String, String) {
        let e = events.iter().find(|e| e["detailType"] == detail_type).unwrap_or_else(|| panic!("{detail_type}"));
        (e["traceId"].as_str().unwrap_or_default().to_owned(), e["correlationId"].as_str().unwrap().to_owned())
    };
    assert_eq!(trace_of("OrderPlaced"), (xray(PLACE_TRACE), "corr-place".to_owned()));
    assert_eq!(trace_of("OrderPaid"), (xray(PAY_TRACE), "corr-pay".to_owned()));

    // The PG's call log: the confirm came from the paying request.
    let calls = app.pg_calls(&order_id, "confirm").await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["correlationId"], "corr-pay");
    assert!(calls[0]["traceparent"].as_str().unwrap().starts_with(&format!("00-{PAY_TRACE}-")), "{calls:?}");

    // The publisher: each entry's TraceHeader is X-Ray's form of that trace.
    let stored = app.store().outbox().events_of(&shop_domain::OrderId::parse(&order_id).unwrap()).await.unwrap();
    let records = stored.iter().enumerate().map(|(i, e)| shop_local::emulate::runner::stream_record(e, i as u64 + 1));
    let mut stream = aws_lambda_events::dynamodb::Event::default();
    stream.records = records.collect::<anyhow::Result<_>>().unwrap();
    let bus = std::sync::Arc::new(Recorder::default());
    let publisher = shop_app::events::publisher::Publisher { bus: bus.clone() };
    let (response, _) = publisher.publish(&app.stack.app, stream).await;
    assert!(response.batch_item_failures.is_empty());
    let sent = bus.0.lock().unwrap().clone();
    assert_eq!(sent.len(), stored.len());
    for (entry, e) in sent.iter().zip(&stored) {
        let header = entry.trace_header.as_deref().unwrap_or_else(|| panic!("no TraceHeader on {}", e.detail_type));
        let expected = if e.detail_type == "OrderPlaced" { PLACE_TRACE } else { PAY_TRACE };
        assert!(header.starts_with(&format!("Root={};Parent=", xray(expected))), "{header}");
        assert_eq!(trace::root_of(header), Some(xray(expected)));
    }

    // The spans: the API request continues the caller's span, and every
    // consumer's span for an event is in the trace of the request behind it.
    let outcomes: Vec<(String, String)> = steps
        .iter()
        .filter(|s| s["kind"] == "consumer")
        .map(|s| {
            let event = events.iter().find(|e| e["eventId"] == s["eventId"]).unwrap();
            (s["consumer"].as_str().unwrap().to_owned(), event["detailType"].as_str().unwrap().to_owned())
        })
        .collect();
    assert!(outcomes.len() >= 2, "{outcomes:?}");
    eventually(30, "every span at the collector", || {
        let spans = spans.lock().unwrap().clone();
        let requests_ok = [PLACE_TRACE, PAY_TRACE].iter().all(|t| {
            spans.iter().any(|s| s["name"] == "request" && s["traceId"] == *t && s["parentSpanId"] == CALLER_SPAN)
        });
        let consumers_ok = outcomes.iter().all(|(consumer, detail_type)| {
            let expected = if detail_type == "OrderPlaced" { PLACE_TRACE } else { PAY_TRACE };
            spans.iter().any(|s| {
                s["name"] == "message"
                    && s["traceId"] == expected
                    && attribute(s, "consumer") == Some(consumer)
                    && attribute(s, "detail_type") == Some(detail_type)
            })
        });
        async move { (requests_ok && consumers_ok).then_some(()) }
    })
    .await;
}
