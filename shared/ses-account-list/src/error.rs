//! Errors of the SES account-list adapter, and how SDK errors map onto them.
//!
//! Owns [`SesListError`] and the classification of `aws-sdk-sesv2` errors into conditions that
//! say whether a retry can help. The SDK error is kept whole as the source, never turned into a
//! string. Outcomes that are answers (an address that is not listed) are not errors: the
//! operations in the crate root turn them into values before they get here.

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_sesv2::config::http::HttpResponse;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use feedback_domain::ports::Retryable;

/// The SDK error behind a [`SesListError`], boxed so that one type covers every operation.
///
/// It is the operation's `SdkError<…>`; downcast it to inspect the typed error. Its `Display`
/// chain includes SES's own message, which can echo the address: log [`SesListError`]'s
/// `Display`, not the whole chain.
pub type SdkSource = Box<dyn StdError + Send + Sync + 'static>;

/// Which SESv2 call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `PutSuppressedDestination`.
    Put,
    /// `GetSuppressedDestination`.
    Get,
    /// `DeleteSuppressedDestination`.
    Delete,
    /// `ListSuppressedDestinations`.
    List,
}

impl Operation {
    /// The SESv2 operation name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Put => "PutSuppressedDestination",
            Self::Get => "GetSuppressedDestination",
            Self::Delete => "DeleteSuppressedDestination",
            Self::List => "ListSuppressedDestinations",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a call to the SES account suppression list failed. Messages never contain an address.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SesListError {
    /// SES answered 429 `TooManyRequestsException` (one request per second per account and
    /// region), on every attempt.
    #[error("ses {operation} was throttled")]
    Throttled {
        /// The call.
        operation: Operation,
        /// The SDK error.
        #[source]
        source: SdkSource,
    },
    /// SES rejected the request (`BadRequestException`): retrying the same request cannot help.
    #[error("ses {operation} rejected the request as invalid")]
    BadRequest {
        /// The call.
        operation: Operation,
        /// The SDK error.
        #[source]
        source: SdkSource,
    },
    /// The `NextToken` given to a list call is not valid (any more): start listing again.
    #[error("ses {operation} rejected the pagination token")]
    InvalidNextToken {
        /// The call.
        operation: Operation,
        /// The SDK error.
        #[source]
        source: SdkSource,
    },
    /// Any other error answer; retryable when `status` is 5xx.
    #[error("ses {operation} failed with http status {status}")]
    Service {
        /// The call.
        operation: Operation,
        /// HTTP status of the answer.
        status: u16,
        /// The SDK error.
        #[source]
        source: SdkSource,
    },
    /// No answer within the SDK's connect, read or operation timeout.
    #[error("ses {operation} timed out")]
    Timeout {
        /// The call.
        operation: Operation,
        /// The SDK error.
        #[source]
        source: SdkSource,
    },
    /// The request could not be sent (connection refused, reset, DNS, TLS).
    #[error("ses {operation} could not be sent")]
    Dispatch {
        /// The call.
        operation: Operation,
        /// The SDK error.
        #[source]
        source: SdkSource,
    },
    /// An answer arrived but could not be read (cut off, not the expected JSON).
    #[error("ses {operation} answered with an unreadable response")]
    UnreadableResponse {
        /// The call.
        operation: Operation,
        /// The SDK error.
        #[source]
        source: SdkSource,
    },
    /// The SDK could not build the request (bad input or client configuration).
    #[error("ses {operation} request could not be built")]
    Construction {
        /// The call.
        operation: Operation,
        /// The SDK error.
        #[source]
        source: SdkSource,
    },
    /// An SDK error of a kind this adapter does not know yet.
    #[error("ses {operation} failed in an unexpected way")]
    Other {
        /// The call.
        operation: Operation,
        /// The SDK error.
        #[source]
        source: SdkSource,
    },
    /// SES answered successfully but the answer lacks something the adapter needs, or holds a
    /// value it does not know (a new suppression reason).
    #[error("ses {operation} answer is unusable: {problem}")]
    UnexpectedAnswer {
        /// The call.
        operation: Operation,
        /// What is wrong, without any personal data.
        problem: &'static str,
    },
}

impl SesListError {
    /// The call that failed.
    pub fn operation(&self) -> Operation {
        match self {
            Self::Throttled { operation, .. }
            | Self::BadRequest { operation, .. }
            | Self::InvalidNextToken { operation, .. }
            | Self::Service { operation, .. }
            | Self::Timeout { operation, .. }
            | Self::Dispatch { operation, .. }
            | Self::UnreadableResponse { operation, .. }
            | Self::Construction { operation, .. }
            | Self::Other { operation, .. }
            | Self::UnexpectedAnswer { operation, .. } => *operation,
        }
    }

    /// A short, stable name of the condition, for log fields and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Throttled { .. } => "throttled",
            Self::BadRequest { .. } => "bad_request",
            Self::InvalidNextToken { .. } => "invalid_next_token",
            Self::Service { .. } => "service",
            Self::Timeout { .. } => "timeout",
            Self::Dispatch { .. } => "dispatch",
            Self::UnreadableResponse { .. } => "unreadable_response",
            Self::Construction { .. } => "construction",
            Self::Other { .. } => "other",
            Self::UnexpectedAnswer { .. } => "unexpected_answer",
        }
    }
}

impl Retryable for SesListError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Throttled { .. }
            | Self::Timeout { .. }
            | Self::Dispatch { .. }
            | Self::UnreadableResponse { .. } => true,
            Self::Service { status, .. } => *status >= 500,
            Self::BadRequest { .. }
            | Self::InvalidNextToken { .. }
            | Self::Construction { .. }
            | Self::Other { .. }
            | Self::UnexpectedAnswer { .. } => false,
        }
    }
}

/// Error codes SES and the AWS front end use for rate limiting.
const THROTTLING_CODES: [&str; 3] =
    ["TooManyRequestsException", "ThrottlingException", "Throttling"];

/// Maps an SDK error onto the condition it stands for, keeping it as the source.
///
/// Callers handle the codes that are answers (`NotFoundException`) before calling this.
pub(crate) fn classify<E>(operation: Operation, error: SdkError<E, HttpResponse>) -> SesListError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let status = error.raw_response().map(|response| response.status().as_u16());
    let kind = match &error {
        SdkError::TimeoutError(_) => Kind::Timeout,
        SdkError::DispatchFailure(failure) if failure.is_timeout() => Kind::Timeout,
        SdkError::DispatchFailure(_) => Kind::Dispatch,
        SdkError::ResponseError(_) => Kind::UnreadableResponse,
        SdkError::ConstructionFailure(_) => Kind::Construction,
        SdkError::ServiceError(service) => match (service.err().code(), status) {
            (Some(code), _) if THROTTLING_CODES.contains(&code) => Kind::Throttled,
            (_, Some(429)) => Kind::Throttled,
            (Some("BadRequestException"), _) => Kind::BadRequest,
            (Some("InvalidNextTokenException"), _) => Kind::InvalidNextToken,
            (_, status) => Kind::Service(status.unwrap_or(0)),
        },
        _ => Kind::Other,
    };
    let source: SdkSource = Box::new(error);
    match kind {
        Kind::Throttled => SesListError::Throttled { operation, source },
        Kind::BadRequest => SesListError::BadRequest { operation, source },
        Kind::InvalidNextToken => SesListError::InvalidNextToken { operation, source },
        Kind::Service(status) => SesListError::Service { operation, status, source },
        Kind::Timeout => SesListError::Timeout { operation, source },
        Kind::Dispatch => SesListError::Dispatch { operation, source },
        Kind::UnreadableResponse => SesListError::UnreadableResponse { operation, source },
        Kind::Construction => SesListError::Construction { operation, source },
        Kind::Other => SesListError::Other { operation, source },
    }
}

/// The condition an SDK error stands for, decided before the error is moved into the box.
enum Kind {
    Throttled,
    BadRequest,
    InvalidNextToken,
    Service(u16),
    Timeout,
    Dispatch,
    UnreadableResponse,
    Construction,
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed() -> SdkSource {
        Box::new(std::io::Error::other("x"))
    }

    #[test]
    fn throttling_server_errors_and_transport_faults_are_retryable_client_errors_are_not() {
        let op = Operation::Put;
        let retryable = [
            SesListError::Throttled { operation: op, source: boxed() },
            SesListError::Service { operation: op, status: 500, source: boxed() },
            SesListError::Service { operation: op, status: 503, source: boxed() },
            SesListError::Timeout { operation: op, source: boxed() },
            SesListError::Dispatch { operation: op, source: boxed() },
            SesListError::UnreadableResponse { operation: op, source: boxed() },
        ];
        let final_ = [
            SesListError::BadRequest { operation: op, source: boxed() },
            SesListError::InvalidNextToken { operation: op, source: boxed() },
            SesListError::Service { operation: op, status: 403, source: boxed() },
            SesListError::Construction { operation: op, source: boxed() },
            SesListError::Other { operation: op, source: boxed() },
            SesListError::UnexpectedAnswer { operation: op, problem: "x" },
        ];

        for error in &retryable {
            assert!(error.is_retryable(), "{}", error.kind());
        }
        for error in &final_ {
            assert!(!error.is_retryable(), "{}", error.kind());
        }
    }

    #[test]
    fn messages_name_the_operation_and_keep_the_source() {
        let error = SesListError::Throttled { operation: Operation::List, source: boxed() };

        assert_eq!(error.to_string(), "ses ListSuppressedDestinations was throttled");
        assert!(StdError::source(&error).is_some());
        assert_eq!(error.operation(), Operation::List);
    }
}
