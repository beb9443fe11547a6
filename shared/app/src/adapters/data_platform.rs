//! The HTTP adapter of [`DataPlatform`]: `POST {DATA_PLATFORM_URL}/events`
//! with the event id as `Idempotency-Key`; 409 means "already have it".

use crate::ports::DataPlatform;
use serde_json::Value;

pub struct HttpDataPlatform {
    pub http: reqwest::Client,
    pub url: String,
}

#[async_trait::async_trait]
impl DataPlatform for HttpDataPlatform {
    async fn deliver(&self, event_id: &str, body: &Value) -> Result<(), String> {
        let resp = self
            .http
            .post(format!("{}/events", self.url.trim_end_matches('/')))
            .header("idempotency-key", event_id)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("data platform unreachable: {e}"))?;
        match resp.status().as_u16() {
            200..=299 | 409 => Ok(()),
            s => Err(format!("data platform answered {s}")),
        }
    }
}
