//! What a store call can fail with: only a failed condition or a concurrent
//! transaction is a conflict.

use crate::tx::{ConflictReason, TxItem};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: the named item was not in the expected
    /// state, or another transaction was writing it at the same moment.
    /// Only these two are conflicts.
    #[error("conflict on {item}: {reason}")]
    Conflict { item: TxItem, reason: ConflictReason },
    /// DynamoDB throttled the request (the SDK's own retries included):
    /// worth retrying after a backoff, never a 409 for the client.
    #[error("throttled: {0}")]
    Throttled(String),
    /// Anything else (validation, permissions, a bug): a logged 500.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl StoreError {
    /// Whether the same write, re-read and re-decided, may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Conflict { .. } | StoreError::Throttled(_) => true,
            StoreError::Unexpected(_) => false,
        }
    }

    /// Whether a retry should wait first: after a failed condition the state
    /// has already moved on, so re-reading at once is right.
    pub fn needs_backoff(&self) -> bool {
        match self {
            StoreError::Conflict { reason: ConflictReason::ConditionFailed, .. } => false,
            StoreError::Conflict { reason: ConflictReason::TransactionConflict, .. } | StoreError::Throttled(_) => true,
            StoreError::Unexpected(_) => false,
        }
    }

    /// Wraps an SDK error as unexpected, naming the call.
    pub(crate) fn unexpected<E: std::error::Error + Send + Sync + 'static>(
        context: &'static str,
    ) -> impl FnOnce(E) -> StoreError {
        move |e| StoreError::Unexpected(anyhow::Error::new(e).context(context))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
