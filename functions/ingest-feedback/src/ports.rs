//! Ports of the ingest handler besides the suppression store: where poison records go, how
//! envelopes are authenticated and how subscriptions are confirmed.

use std::future::Future;

use feedback_domain::ports::Retryable;
use ses_wire::SnsEnvelope;

/// A record that can never succeed, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineNote<'a> {
    /// The original SQS body, unchanged, so it can be replayed.
    pub body: &'a str,
    /// Short snake_case reason code (`not_json`, `signature_mismatch`, ...).
    pub reason: &'a str,
    /// One line for the operator; never an address or the body.
    pub detail: &'a str,
    /// The SQS message id of the original record.
    pub source_message_id: &'a str,
}

/// Where records that can never succeed are kept for inspection and replay.
pub trait Quarantine: Send + Sync {
    /// The adapter's error.
    type Error: Retryable;

    /// Stores the record; only after this succeeded may the original be acknowledged.
    fn quarantine(
        &self,
        note: &QuarantineNote<'_>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Why an envelope was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Whether the same record can pass later (certificate fetch failed for network reasons).
    pub retryable: bool,
    /// Reason code for the quarantine attribute.
    pub reason: &'static str,
    /// One line for the operator.
    pub detail: String,
}

/// Checks that an SNS envelope is genuine and from an allowed topic.
pub trait Authenticator: Send + Sync {
    /// Accepts or rejects the envelope.
    fn authenticate(
        &self,
        envelope: &SnsEnvelope,
    ) -> impl Future<Output = Result<(), Rejection>> + Send;
}

/// Confirms an SNS subscription (after the envelope was authenticated).
pub trait SubscriptionConfirmer: Send + Sync {
    /// The adapter's error.
    type Error: Retryable;

    /// Confirms the subscription to `topic_arn` with the `token` SNS sent.
    fn confirm(
        &self,
        topic_arn: &str,
        token: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}
