//! The `analytics` consumer: exports order outcomes to the data platform.
//! Its failure never touches the order: it only delays the export.

use super::{Consumer, ConsumerError, Done};
use crate::App;
use crate::ports::DataPlatform;
use shop_domain::{EventDetail, OrderEvent};

pub struct AnalyticsConsumer {
    pub platform: std::sync::Arc<dyn DataPlatform>,
}

#[async_trait::async_trait]
impl Consumer for AnalyticsConsumer {
    fn name(&self) -> &'static str {
        super::ANALYTICS
    }

    async fn handle(&self, _: &App, event: &OrderEvent, detail: &EventDetail) -> Result<Done, ConsumerError> {
        let body = serde_json::json!({
            "eventId": detail.event_id,
            "detailType": event.kind.detail_type(),
            "orderId": event.order_id,
            "occurredAt": detail.occurred_at,
            "correlationId": detail.correlation_id,
            "data": detail.data,
        });
        self.platform.deliver(detail.event_id.as_str(), &body).await.map_err(ConsumerError::Retryable)?;
        Ok(Done::Applied("delivered to the data platform".into()))
    }
}
