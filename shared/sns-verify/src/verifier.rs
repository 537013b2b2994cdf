//! The verification procedure: is this a genuine SNS message from a topic we subscribed to?
//!
//! Owns [`Verifier`] and its outcome [`Verified`]. The order of checks is: message type,
//! signature version, presence of signature and certificate URL, the URL host rule, base64,
//! timestamp syntax, the topic allow-list (before any network access, so a foreign topic never
//! costs a fetch), then the certificate (pinned, cached or fetched), its validity at the message
//! `Timestamp`, the RSA signature, and last a sanity check of `Timestamp` against the injected
//! clock. Must not depend on the SES payload inside `Message` or read the environment.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};
use tracing::instrument;

use crate::cert_url::CertificateUrl;
use crate::error::{VerifyError, quote_arn};
use crate::message::{MessageType, SignatureVersion, SnsMessage, canonical_string};
use crate::store::{CertificateFetcher, CertificateSource, CertificateStore};

/// How far a message `Timestamp` may be ahead of the clock before it is refused (retryably).
pub const MAX_CLOCK_SKEW: TimeDelta = TimeDelta::minutes(15);

/// The allow-list is empty, so every message would be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no allowed topic ARNs configured")]
pub struct EmptyAllowList;

/// What a successful verification established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The message type.
    pub kind: MessageType,
    /// The signature version that verified.
    pub signature_version: SignatureVersion,
    /// The message `Timestamp`.
    pub timestamp: DateTime<Utc>,
    /// Where the certificate came from.
    pub certificate: CertificateSource,
}

/// Checks SNS signatures and the topic allow-list.
///
/// A valid signature only proves that *some* SNS topic sent the message (anyone can subscribe
/// an endpoint to their own topic), so `TopicArn` must also be in the allow-list.
///
/// Certificate validity is checked against the message `Timestamp`, not against the clock: a
/// message can wait in a queue or DLQ for days, and SNS rotates certificates. The cost is that a
/// leaked key of an expired certificate could sign back-dated messages; SNS keys are not known
/// to leak, and AWS's own validators check no validity at all.
#[derive(Debug)]
pub struct Verifier<F> {
    store: Arc<CertificateStore<F>>,
    allowed_topic_arns: Vec<String>,
}

impl<F: CertificateFetcher> Verifier<F> {
    /// A verifier that accepts messages from exactly `allowed_topic_arns` (compared exactly).
    ///
    /// # Errors
    ///
    /// [`EmptyAllowList`] when `allowed_topic_arns` is empty.
    pub fn new(
        store: Arc<CertificateStore<F>>,
        allowed_topic_arns: Vec<String>,
    ) -> Result<Self, EmptyAllowList> {
        if allowed_topic_arns.is_empty() {
            return Err(EmptyAllowList);
        }
        Ok(Self { store, allowed_topic_arns })
    }

    /// The certificate store (shared, so several verifiers can share one cache).
    pub fn store(&self) -> &Arc<CertificateStore<F>> {
        &self.store
    }

    /// The allowed topic ARNs.
    pub fn allowed_topic_arns(&self) -> &[String] {
        &self.allowed_topic_arns
    }

    /// Verifies `msg` as a genuine SNS message from an allowed topic. `now` is the clock
    /// reading, injected so that tests can use the time of recorded messages.
    ///
    /// # Errors
    ///
    /// A [`VerifyError`] naming the first check that failed; only certificate fetch failures
    /// with a transient cause and a timestamp ahead of the clock are retryable.
    #[instrument(level = "debug", skip_all, fields(message_id = msg.message_id, kind = msg.kind))]
    pub async fn verify(
        &self,
        msg: &SnsMessage<'_>,
        now: DateTime<Utc>,
    ) -> Result<Verified, VerifyError> {
        let kind = MessageType::parse(msg.kind)?;
        let version = SignatureVersion::parse(msg.signature_version)?;
        let signature =
            msg.signature.ok_or(VerifyError::MissingSignature { field: "Signature" })?;
        let cert_url = msg
            .signing_cert_url
            .ok_or(VerifyError::MissingSignature { field: "SigningCertURL" })?;
        let cert_url = CertificateUrl::parse(cert_url).map_err(VerifyError::BadCertificateUrl)?;
        let signature = STANDARD.decode(signature).map_err(VerifyError::MalformedSignature)?;
        let timestamp = DateTime::parse_from_rfc3339(msg.timestamp)
            .map_err(VerifyError::BadTimestamp)?
            .with_timezone(&Utc);
        let canonical = canonical_string(msg)?;

        if !self.allowed_topic_arns.iter().any(|arn| arn == msg.topic_arn) {
            return Err(VerifyError::TopicNotAllowed { topic_arn: quote_arn(msg.topic_arn) });
        }

        let certificate = self
            .check_signature(&cert_url, version, canonical.as_bytes(), &signature, timestamp)
            .await?;

        if timestamp.signed_duration_since(now) > MAX_CLOCK_SKEW {
            return Err(VerifyError::TimestampInFuture { timestamp, now });
        }
        Ok(Verified { kind, signature_version: version, timestamp, certificate })
    }

    /// Pinned keys first, then the cached or fetched certificate named by `url`.
    async fn check_signature(
        &self,
        url: &CertificateUrl,
        version: SignatureVersion,
        signed: &[u8],
        signature: &[u8],
        timestamp: DateTime<Utc>,
    ) -> Result<CertificateSource, VerifyError> {
        let pinned_match = self.store.pinned().iter().any(|cert| {
            cert.is_valid_at(timestamp) && cert.verify_signature(version, signed, signature).is_ok()
        });
        if pinned_match {
            return Ok(CertificateSource::Pinned);
        }

        let Some((cert, source)) = self.store.certificate(url).await? else {
            return Err(VerifyError::SignatureMismatch);
        };
        if timestamp < cert.not_before() {
            return Err(VerifyError::CertificateNotYetValid {
                not_before: cert.not_before(),
                timestamp,
            });
        }
        if timestamp > cert.not_after() {
            return Err(VerifyError::CertificateExpired { not_after: cert.not_after(), timestamp });
        }
        cert.verify_signature(version, signed, signature)
            .map_err(|_| VerifyError::SignatureMismatch)?;
        Ok(source)
    }
}
