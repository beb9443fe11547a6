//! Building the [`App`](crate::App) against real AWS, for Lambda binaries.

use crate::App;
use crate::config::Config;

/// Reads the config and builds SDK clients from the Lambda environment
/// (region, credentials, and `AWS_ENDPOINT_URL_DYNAMODB` to point a function
/// run under `cargo lambda watch` at the local stack's DynamoDB endpoint).
pub async fn app_from_env(service: &'static str) -> anyhow::Result<App> {
    Ok(app_and_sdk(service).await?.0)
}

/// The app and the SDK configuration, for functions that need more clients.
pub async fn app_and_sdk(service: &'static str) -> anyhow::Result<(App, aws_config::SdkConfig)> {
    let config = Config::from_env()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let app = App::new(shop_store::Store::new(client, config.table_name.clone()), config)?.with_service(service);
    Ok((app, sdk))
}

/// The EventBridge bus named by `EVENT_BUS_NAME`.
pub fn event_bus(sdk: &aws_config::SdkConfig) -> anyhow::Result<crate::bus::aws::EventBridgeBus> {
    let bus_name = std::env::var("EVENT_BUS_NAME").map_err(|_| anyhow::anyhow!("EVENT_BUS_NAME is not set"))?;
    Ok(crate::bus::aws::EventBridgeBus { client: aws_sdk_eventbridge::Client::new(sdk), bus_name })
}

/// The data platform at `DATA_PLATFORM_URL`.
pub fn data_platform() -> anyhow::Result<crate::consumers::HttpDataPlatform> {
    let url = std::env::var("DATA_PLATFORM_URL").map_err(|_| anyhow::anyhow!("DATA_PLATFORM_URL is not set"))?;
    let timeout = std::env::var("DATA_PLATFORM_TIMEOUT_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000);
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_millis(timeout)).build()?;
    Ok(crate::consumers::HttpDataPlatform { http, url })
}
