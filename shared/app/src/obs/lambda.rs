//! The one way a function runs in Lambda: lambda_runtime's loop with its
//! tracing layer (the invocation span the logs read) and the metrics layer,
//! which flushes this invocation's EMF document when it ends.

use core::fmt::Debug;
use std::future::Future;

use lambda_runtime::Service;
use lambda_runtime::{Diagnostic, IntoFunctionResponse, LambdaEvent};
use serde::{Deserialize, Serialize};

use super::metrics;

/// Runs an event handler (SQS, DynamoDB stream, schedule).
pub async fn run<A, F, R, B, S, D, E>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Service<LambdaEvent<A>, Response = R>,
    F::Future: Future<Output = Result<R, F::Error>>,
    F::Error: Into<Diagnostic> + Debug,
    A: for<'de> Deserialize<'de>,
    R: IntoFunctionResponse<B, S>,
    B: Serialize,
    S: futures::Stream<Item = Result<D, E>> + Unpin + Send + 'static,
    D: Into<bytes::Bytes> + Send,
    E: Into<lambda_runtime::Error> + Send + Debug,
{
    // Boxed: the runtime's layered future is too deep a type for the
    // compiler's layout query inside each binary's `main`.
    Box::pin(metrics_cloudwatch_embedded::lambda::service::run(collector()?, handler)).await
}

/// Runs an API Gateway handler.
pub async fn run_http<'a, R, S, E>(handler: S) -> Result<(), lambda_runtime::Error>
where
    S: Service<lambda_http::Request, Response = R, Error = E>,
    S::Future: Send + 'a,
    R: lambda_http::IntoResponse,
    E: Debug + Into<Diagnostic>,
{
    Box::pin(metrics_cloudwatch_embedded::lambda::service::run_http(collector()?, handler)).await
}

/// The collector [`super::init`] installed (or one for the function named
/// by Lambda's environment, if the binary skipped it).
fn collector() -> Result<&'static metrics_cloudwatch_embedded::Collector, lambda_runtime::Error> {
    match metrics::collector() {
        Some(c) => Ok(c),
        None => Ok(metrics::install_from_env("function")?),
    }
}
