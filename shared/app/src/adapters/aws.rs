//! Building the [`App`](crate::App) against real AWS, for Lambda binaries.

use crate::App;
use crate::config::Config;

/// Reads the config and builds SDK clients from the Lambda environment
/// (region, credentials, and `AWS_ENDPOINT_URL_DYNAMODB` to point a function
/// run under `cargo lambda watch` at the local stack's DynamoDB endpoint).
pub async fn app_from_env() -> anyhow::Result<App> {
    Ok(app_and_sdk().await?.0)
}

/// The app and the SDK configuration, for functions that need more clients.
/// Never calls SSM: only [`pg_app_from_env`] does, so only the functions
/// that call the PG link the SSM client.
pub async fn app_and_sdk() -> anyhow::Result<(App, aws_config::SdkConfig)> {
    let config = Config::from_env()?;
    let sdk = sdk_config().await;
    Ok((app_with(config, &sdk)?, sdk))
}

/// The app of a function that calls the PG
/// ([`PG_FUNCTIONS`](crate::http::routes::PG_FUNCTIONS)).
///
/// It gets `PG_SECRET_KEY_PARAMETER`, the name of an SSM SecureString; its
/// value is read once here, at cold start, so a missing parameter or
/// permission fails the init (visible as init errors), never a payment.
/// `PG_SECRET_KEY` is the plain-text fallback for `cargo lambda watch`
/// against the simulator. With neither, the init fails rather than call the
/// PG with an empty key. Behind the `ssm` feature, which only these
/// functions enable.
#[cfg(feature = "ssm")]
pub async fn pg_app_from_env(service: &'static str) -> anyhow::Result<App> {
    let mut config = Config::from_env()?;
    let sdk = sdk_config().await;
    if let Some(key) = parameter_named_by(&sdk, "PG_SECRET_KEY_PARAMETER").await? {
        config.pg_secret_key = key;
    }
    anyhow::ensure!(
        !config.pg_secret_key.is_empty(),
        "{service} calls the PG but has no key: set PG_SECRET_KEY_PARAMETER (an SSM SecureString) or PG_SECRET_KEY"
    );
    app_with(config, &sdk)
}

/// The app of a function that signs or checks admission tokens
/// ([`ADMISSION_FUNCTIONS`](crate::http::routes::ADMISSION_FUNCTIONS)):
/// `ADMISSION_SECRET_PARAMETER` names an SSM SecureString read once here;
/// `ADMISSION_SECRET` is the plain-text fallback for `cargo lambda watch`.
/// With neither the init fails: a sale's admitted shoppers could not order.
#[cfg(feature = "ssm")]
pub async fn admission_app_from_env(service: &'static str) -> anyhow::Result<App> {
    let mut config = Config::from_env()?;
    let sdk = sdk_config().await;
    if let Some(secret) = parameter_named_by(&sdk, "ADMISSION_SECRET_PARAMETER").await? {
        config.admission_secret = Some(secret);
    }
    anyhow::ensure!(
        config.admission_secret.is_some(),
        "{service} signs or checks admission tokens but has no secret: set ADMISSION_SECRET_PARAMETER (an SSM SecureString) or ADMISSION_SECRET"
    );
    app_with(config, &sdk)
}

/// `app` with the refund accounts' sealer of a function that seals or opens
/// them (refund-order, cancel-order, compensation): KMS data keys under
/// `REFUND_ACCOUNT_KEY_ID` (the template's key), or `REFUND_ACCOUNT_KEY`
/// (the local stack's, from `shop env`) for `cargo lambda watch`. With
/// neither the init fails: a paid virtual account could not be refunded.
#[cfg(feature = "kms")]
pub async fn with_refund_accounts(app: App, service: &'static str) -> anyhow::Result<App> {
    use crate::adapters::sealing::{Envelope, KmsKeys};
    match std::env::var("REFUND_ACCOUNT_KEY_ID").ok().filter(|v| !v.is_empty()) {
        Some(key_id) => {
            let kms = aws_sdk_kms::Client::new(&sdk_config().await);
            Ok(app.with_sealer(std::sync::Arc::new(Envelope(KmsKeys::new(kms, key_id)))))
        }
        None => {
            anyhow::ensure!(
                app.config.refund_account_key.is_some(),
                "{service} seals or opens refund accounts but has no key: set REFUND_ACCOUNT_KEY_ID (a KMS key) or REFUND_ACCOUNT_KEY"
            );
            Ok(app)
        }
    }
}

/// The value of the SSM SecureString the environment variable `var` names,
/// if it names one.
#[cfg(feature = "ssm")]
async fn parameter_named_by(sdk: &aws_config::SdkConfig, var: &str) -> anyhow::Result<Option<String>> {
    match std::env::var(var).ok().filter(|n| !n.is_empty()) {
        Some(name) => Ok(Some(secure_parameter(sdk, &name).await?)),
        None => Ok(None),
    }
}

fn app_with(config: Config, sdk: &aws_config::SdkConfig) -> anyhow::Result<App> {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    App::new(shop_store::Store::new(client, config.table_name.clone()), config)
}

/// An app on the DynamoDB table `table`, reached through the default AWS
/// chain (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`): for operator
/// commands run against a deployed stack.
pub async fn app_for_table(table: &str) -> anyhow::Result<App> {
    let config = Config { table_name: table.to_owned(), ..Config::default() };
    let sdk = sdk_config().await;
    let store = shop_store::Store::new(aws_sdk_dynamodb::Client::new(&sdk), table.to_owned());
    App::new(store, config)
}

/// The SDK configuration from the default chain (region, credentials,
/// `AWS_ENDPOINT_URL*`) with the one HTTPS client every SDK call uses.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client()).load().await
}

/// The SDK's HTTPS client on rustls with ring: the TLS stack reqwest uses
/// for the PG and the data platform, so a binary carries one.
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https()
}

/// The EventBridge bus named by `EVENT_BUS_NAME`.
pub fn event_bus(sdk: &aws_config::SdkConfig) -> anyhow::Result<crate::adapters::eventbridge::EventBridgeBus> {
    let bus_name = std::env::var("EVENT_BUS_NAME").map_err(|_| anyhow::anyhow!("EVENT_BUS_NAME is not set"))?;
    Ok(crate::adapters::eventbridge::EventBridgeBus { client: aws_sdk_eventbridge::Client::new(sdk), bus_name })
}

/// The data platform at `DATA_PLATFORM_URL`.
pub fn data_platform() -> anyhow::Result<crate::adapters::data_platform::HttpDataPlatform> {
    let url = std::env::var("DATA_PLATFORM_URL").map_err(|_| anyhow::anyhow!("DATA_PLATFORM_URL is not set"))?;
    let timeout = std::env::var("DATA_PLATFORM_TIMEOUT_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000);
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_millis(timeout)).build()?;
    Ok(crate::adapters::data_platform::HttpDataPlatform { http, url })
}

/// The decrypted value of the SSM parameter `name`.
#[cfg(feature = "ssm")]
async fn secure_parameter(sdk: &aws_config::SdkConfig, name: &str) -> anyhow::Result<String> {
    let out =
        aws_sdk_ssm::Client::new(sdk).get_parameter().name(name).with_decryption(true).send().await.map_err(|e| {
            anyhow::anyhow!("reading SSM parameter {name}: {}", aws_sdk_ssm::error::DisplayErrorContext(e))
        })?;
    out.parameter
        .and_then(|p| p.value)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| anyhow::anyhow!("SSM parameter {name} has no value"))
}
