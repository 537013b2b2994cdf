//! Why a message was not accepted as a genuine SNS message.
//!
//! Owns [`VerifyError`] and its stable `reason_code`s (the quarantine reason). Messages never
//! carry the SNS `Message` body; the few envelope values they quote (type, version, topic) are
//! quoted only when they have the expected shape, else replaced by their length. Must not
//! depend on how the caller reports or retries.

use chrono::{DateTime, Utc};
use feedback_domain::ports::Retryable;

use crate::cert_url::CertificateUrlError;
use crate::certificate::CertificateError;
use crate::store::FetchError;

/// Longest quoted envelope value kept in an error.
const QUOTE_MAX: usize = 256;

/// A message that is not (or cannot yet be shown to be) a genuine, allowed SNS message.
///
/// Only [`VerifyError::CertificateFetch`] with a transient cause and
/// [`VerifyError::TimestampInFuture`] are retryable; everything else is a property of the
/// message and will fail the same way again.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// `Type` is not one of the three SNS message types.
    #[error("unsupported SNS message type {kind:?}")]
    UnsupportedType {
        /// The `Type` value, or its length when it does not look like a type name.
        kind: String,
    },
    /// `SignatureVersion` is neither `"1"` nor `"2"`.
    #[error("unsupported signature version {version:?}")]
    UnsupportedSignatureVersion {
        /// The `SignatureVersion` value, or its length when it does not look like one.
        version: String,
    },
    /// `Signature`, `SignatureVersion` or `SigningCertURL` is absent.
    #[error("message is not signed: {field} is missing")]
    MissingSignature {
        /// The missing envelope key.
        field: &'static str,
    },
    /// A required envelope field is absent.
    #[error("envelope field {field} is missing")]
    MissingField {
        /// The missing envelope key.
        field: &'static str,
    },
    /// An envelope field holds something other than a string.
    #[error("envelope field {field} is not a string")]
    MalformedField {
        /// The offending envelope key (`envelope` when the whole value is not an object).
        field: &'static str,
    },
    /// `Signature` is not valid base64.
    #[error("signature is not valid base64")]
    MalformedSignature(#[source] base64::DecodeError),
    /// `SigningCertURL` breaks the host rule; nothing was fetched.
    #[error("signing certificate URL refused")]
    BadCertificateUrl(#[source] CertificateUrlError),
    /// `Timestamp` is not an RFC 3339 date-time.
    #[error("timestamp is not RFC 3339")]
    BadTimestamp(#[source] chrono::ParseError),
    /// The signature verified but `Timestamp` is ahead of the injected clock by more than the
    /// allowed skew: one of the two clocks is wrong, so a later retry may succeed.
    #[error("message timestamp {timestamp} is ahead of the clock ({now})")]
    TimestampInFuture {
        /// The message timestamp.
        timestamp: DateTime<Utc>,
        /// The clock reading used.
        now: DateTime<Utc>,
    },
    /// `TopicArn` is not in the allow-list.
    #[error("topic {topic_arn} is not allowed")]
    TopicNotAllowed {
        /// The `TopicArn` value, or its length when it does not look like an ARN.
        topic_arn: String,
    },
    /// The certificate could not be fetched; see [`FetchError::is_retryable`].
    #[error("cannot fetch signing certificate {url}")]
    CertificateFetch {
        /// The validated certificate URL.
        url: String,
        /// What went wrong.
        #[source]
        source: FetchError,
    },
    /// The fetched bytes are not a usable signing certificate.
    #[error("signing certificate {url} is invalid")]
    CertificateInvalid {
        /// The validated certificate URL.
        url: String,
        /// What is wrong with it.
        #[source]
        source: CertificateError,
    },
    /// The message `Timestamp` is after the certificate's `notAfter`.
    #[error("certificate expired at {not_after}, message is from {timestamp}")]
    CertificateExpired {
        /// End of the certificate's validity.
        not_after: DateTime<Utc>,
        /// The message timestamp.
        timestamp: DateTime<Utc>,
    },
    /// The message `Timestamp` is before the certificate's `notBefore`.
    #[error("certificate valid from {not_before}, message is from {timestamp}")]
    CertificateNotYetValid {
        /// Start of the certificate's validity.
        not_before: DateTime<Utc>,
        /// The message timestamp.
        timestamp: DateTime<Utc>,
    },
    /// The signature does not match the signed fields under the certificate's key.
    #[error("signature does not match")]
    SignatureMismatch,
}

impl VerifyError {
    /// A stable snake_case code for this condition, used as the quarantine reason.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::UnsupportedType { .. } => "unsupported_type",
            Self::UnsupportedSignatureVersion { .. } => "unsupported_signature_version",
            Self::MissingSignature { .. } => "missing_signature",
            Self::MissingField { .. } => "missing_field",
            Self::MalformedField { .. } => "malformed_field",
            Self::MalformedSignature(_) => "malformed_signature",
            Self::BadCertificateUrl(_) => "bad_certificate_url",
            Self::BadTimestamp(_) => "bad_timestamp",
            Self::TimestampInFuture { .. } => "timestamp_in_future",
            Self::TopicNotAllowed { .. } => "topic_not_allowed",
            Self::CertificateFetch { .. } => "certificate_fetch",
            Self::CertificateInvalid { .. } => "certificate_invalid",
            Self::CertificateExpired { .. } => "certificate_expired",
            Self::CertificateNotYetValid { .. } => "certificate_not_yet_valid",
            Self::SignatureMismatch => "signature_mismatch",
        }
    }
}

impl Retryable for VerifyError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::CertificateFetch { source, .. } => source.is_retryable(),
            Self::TimestampInFuture { .. } => true,
            _ => false,
        }
    }
}

/// Quotes a `Type` or `SignatureVersion` value for an error message when it looks like one (up
/// to 40 of `[A-Za-z0-9._-]`); anything else (it could be a whole body) is replaced by its size.
pub(crate) fn quote_token(value: &str) -> String {
    let token_like = value.len() <= 40
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if token_like { value.to_owned() } else { withheld(value) }
}

/// Quotes a `TopicArn` for an error message when it looks like an ARN (`arn:` then up to 256 of
/// `[A-Za-z0-9:._/-]`, so never an e-mail address); anything else is replaced by its size.
pub(crate) fn quote_arn(value: &str) -> String {
    let arn_like = value.len() <= QUOTE_MAX
        && value.starts_with("arn:")
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '_' | '/' | '-'));
    if arn_like { value.to_owned() } else { withheld(value) }
}

fn withheld(value: &str) -> String {
    format!("<{} bytes withheld>", value.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_values_are_quoted() {
        let arn = "arn:aws:sns:eu-central-1:123456789012:ses-feedback.fifo";

        assert_eq!(quote_token("Notification"), "Notification");
        assert_eq!(quote_token("a@example.com"), "<13 bytes withheld>");
        assert_eq!(quote_token(&"x".repeat(41)), "<41 bytes withheld>");
        assert_eq!(quote_arn(arn), arn);
        assert_eq!(quote_arn("arn:aws:sns:x:1:a@example.com"), "<29 bytes withheld>");
        assert_eq!(quote_arn("{\"notificationType\":1}"), "<22 bytes withheld>");
    }
}
