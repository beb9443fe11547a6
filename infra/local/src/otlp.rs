//! `shop up --otlp URL`: every span of the local stack — API requests,
//! publisher batches, each consumed message, PG calls — to an OpenTelemetry
//! collector (Jaeger, Tempo, the OTel Collector) over OTLP/HTTP with JSON
//! bodies. The spans are the ones the Lambda functions make; their trace
//! ids are X-Ray-compatible ([`shop_app::obs::trace`]).

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};

/// The exporter for a collector at `url`: its base (`http://localhost:4318`,
/// as `OTEL_EXPORTER_OTLP_ENDPOINT` takes it) or the full traces URL.
pub fn exporter(url: &str) -> anyhow::Result<opentelemetry_otlp::SpanExporter> {
    let base = url.trim_end_matches('/');
    anyhow::ensure!(
        base.starts_with("http://") || base.starts_with("https://"),
        "--otlp takes an http(s) URL, not {url}"
    );
    let endpoint = if base.ends_with("/v1/traces") { base.to_owned() } else { format!("{base}/v1/traces") };
    let client = Client { http: reqwest::Client::new(), runtime: tokio::runtime::Handle::try_current()? };
    Ok(opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(endpoint)
        .with_http_client(client)
        .build()?)
}

/// The exporter's HTTP client: the stack's reqwest on its tokio runtime. The
/// SDK's batch processor runs on a thread of its own and only polls the
/// future, so the request is spawned onto the runtime that can drive it.
#[derive(Debug)]
struct Client {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let http = self.http.clone();
        self.runtime
            .spawn(async move {
                let response = http.execute(reqwest::Request::try_from(request)?).await?;
                let mut answer = Response::builder().status(response.status().as_u16());
                for (name, value) in response.headers() {
                    answer = answer.header(name.as_str(), value.as_bytes());
                }
                let body = response.bytes().await?;
                Ok::<_, HttpError>(answer.body(Bytes::from(body.to_vec()))?)
            })
            .await?
    }
}
