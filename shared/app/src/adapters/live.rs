//! `PostToConnection`: the waiting room's pushes on API Gateway's
//! WebSocket API (feature `live`: only `admit-sales` and `live` link the
//! management API's client).

use crate::ports::{PushError, Pusher};
use aws_sdk_apigatewaymanagement::error::DisplayErrorContext;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

pub struct ApiGatewayPusher {
    client: aws_sdk_apigatewaymanagement::Client,
}

impl ApiGatewayPusher {
    /// The pusher of the WebSocket API at `LIVE_ENDPOINT`
    /// (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`); `None`
    /// when the stack has none.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Option<ApiGatewayPusher> {
        let endpoint = std::env::var("LIVE_ENDPOINT").ok().filter(|e| !e.is_empty())?;
        let conf = aws_sdk_apigatewaymanagement::config::Builder::from(sdk).endpoint_url(endpoint).build();
        Some(ApiGatewayPusher { client: aws_sdk_apigatewaymanagement::Client::from_conf(conf) })
    }
}

#[async_trait::async_trait]
impl Pusher for ApiGatewayPusher {
    async fn push(&self, connection: &str, message: &str) -> Result<(), PushError> {
        let sent =
            self.client.post_to_connection().connection_id(connection).data(Blob::new(message.as_bytes())).send().await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.as_service_error(), Some(PostToConnectionError::GoneException(_))) => {
                Err(PushError::Gone)
            }
            Err(e) => Err(PushError::Failed(DisplayErrorContext(e).to_string())),
        }
    }
}
