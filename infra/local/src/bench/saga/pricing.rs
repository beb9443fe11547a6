//! The saga's bill on AWS, priced from what a local run did.

use crate::engine::Capacity;
use std::collections::BTreeMap;

/// The same saga on AWS, from what the local run did: per settled order,
/// the requests each service would bill and their price at on-demand list
/// prices (us-east-1). Batching is left out on purpose: every stream record
/// and SQS message is counted as its own invocation and its own receive and
/// delete (batch size 1, the upper bound); Lambda duration and storage are
/// not counted (they depend on memory size and retention, not on the saga).
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsModel {
    /// API Gateway requests: the shoppers' calls and the PG's webhooks.
    pub api_requests: f64,
    /// EventBridge PutEvents entries: one per outbox event.
    pub put_events_entries: f64,
    /// SQS: a send (the rule's target), a receive and a delete per routed message.
    pub sqs_requests: f64,
    /// API functions, the stream publisher (per event) and the consumers (per message).
    pub lambda_invocations: f64,
    pub capacity: Capacity,
    /// Dollars per million settled orders, by service, and the total.
    pub usd_per_million_orders: BTreeMap<&'static str, f64>,
}

/// On-demand list prices, us-east-1, dollars per million (2026-12).
const USD_PER_MILLION_WRU: f64 = 0.625;
const USD_PER_MILLION_RRU: f64 = 0.125;
const USD_PER_MILLION_PUT_EVENTS: f64 = 1.00;
const USD_PER_MILLION_SQS: f64 = 0.40;
const USD_PER_MILLION_LAMBDA: f64 = 0.20;
const USD_PER_MILLION_HTTP_API: f64 = 1.00;

impl AwsModel {
    pub(super) fn new(api_requests: f64, events: f64, deliveries: f64, capacity: Capacity) -> AwsModel {
        let sqs_requests = 3.0 * deliveries;
        let lambda_invocations = api_requests + events + deliveries;
        // Per order × $ per million requests = $ per million orders.
        let usd = BTreeMap::from([
            ("DynamoDB", capacity.write * USD_PER_MILLION_WRU + capacity.read * USD_PER_MILLION_RRU),
            ("EventBridge", events * USD_PER_MILLION_PUT_EVENTS),
            ("SQS", sqs_requests * USD_PER_MILLION_SQS),
            ("Lambda requests", lambda_invocations * USD_PER_MILLION_LAMBDA),
            ("API Gateway", api_requests * USD_PER_MILLION_HTTP_API),
        ]);
        let total = usd.values().sum();
        let mut usd_per_million_orders = usd;
        usd_per_million_orders.insert("total", total);
        AwsModel {
            api_requests,
            put_events_entries: events,
            sqs_requests,
            lambda_invocations,
            capacity,
            usd_per_million_orders,
        }
    }

    pub(super) fn text(&self) -> String {
        let usd: Vec<String> = self.usd_per_million_orders.iter().map(|(k, v)| format!("{k} ${v:.2}")).collect();
        format!(
            "on AWS, per settled order: {:.1} API requests, {:.1} PutEvents entries, {:.1} SQS requests, \
             {:.1} Lambda invocations, {:.1} RCU / {:.1} WCU; per million orders: {}",
            self.api_requests,
            self.put_events_entries,
            self.sqs_requests,
            self.lambda_invocations,
            self.capacity.read,
            self.capacity.write,
            usd.join(", ")
        )
    }
}
