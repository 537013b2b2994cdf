//! Errors of the DynamoDB adapter.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use feedback_domain::ports::Retryable;

/// A DynamoDB call failed, or an item could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SDK call failed; `code` is the DynamoDB error code when the service answered.
    #[error("dynamodb {operation} failed ({})", code.as_deref().unwrap_or("no response"))]
    Sdk {
        /// The operation, e.g. `TransactWriteItems`.
        operation: &'static str,
        /// DynamoDB's error code, if it answered.
        code: Option<String>,
        /// Whether the same call can succeed later.
        retryable: bool,
        /// The SDK error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored item lacks an attribute or holds one of the wrong type.
    #[error("stored item is malformed: {0}")]
    Malformed(String),
    /// Optimistic locking kept failing (too many concurrent writers on one item).
    #[error("item kept changing under {attempts} attempts")]
    Contended {
        /// How often it was tried.
        attempts: u32,
    },
}

impl StoreError {
    pub(crate) fn sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let code = err.as_service_error().and_then(|e| e.code()).map(str::to_owned);
        // Only a request DynamoDB refuses as malformed can never succeed; a missing table or
        // missing permission is an operator fix, after which the record must still be applied.
        let retryable = !matches!(code.as_deref(), Some("ValidationException"));
        Self::Sdk { operation, code, retryable, source: Box::new(err) }
    }

    /// DynamoDB's error code, if the service answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Sdk { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

impl Retryable for StoreError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Sdk { retryable, .. } => *retryable,
            Self::Malformed(_) => false,
            Self::Contended { .. } => true,
        }
    }
}
