//! Building the [`App`](crate::App) against real AWS, for Lambda binaries.

use crate::App;
use crate::config::Config;

/// Reads the config and builds SDK clients from the Lambda environment
/// (region, credentials, and `AWS_ENDPOINT_URL_DYNAMODB` to point a function
/// run under `cargo lambda watch` at the local stack's DynamoDB endpoint).
pub async fn app_from_env(service: &'static str) -> anyhow::Result<App> {
    let config = Config::from_env()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    Ok(App::new(shop_store::Store::new(client, config.table_name.clone()), config)?.with_service(service))
}
