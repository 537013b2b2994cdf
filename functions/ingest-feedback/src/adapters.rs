//! The AWS implementations of the handler's ports: SQS quarantine, SNS signature check, SNS
//! subscription confirmation.

use aws_sdk_sqs::types::MessageAttributeValue;
use chrono::Utc;
use feedback_domain::ports::Retryable;
use ses_wire::SnsEnvelope;
use sns_verify::{CertificateFetcher, SnsMessage, Verifier};

use crate::ports::{Authenticator, Quarantine, QuarantineNote, Rejection, SubscriptionConfirmer};

/// An AWS SDK call failed.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed")]
pub struct AwsCallError {
    operation: &'static str,
    retryable: bool,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl AwsCallError {
    fn new<E, R>(operation: &'static str, err: aws_sdk_sqs::error::SdkError<E, R>) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        // A refused request (bad queue URL, missing permission) is fixed by the operator and then
        // succeeds, so every failure is worth retrying: the record must not be lost.
        Self { operation, retryable: true, source: Box::new(err) }
    }
}

impl Retryable for AwsCallError {
    fn is_retryable(&self) -> bool {
        self.retryable
    }
}

/// The quarantine queue.
#[derive(Debug, Clone)]
pub struct SqsQuarantine {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsQuarantine {
    /// A quarantine writing to `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        Self { client, queue_url }
    }
}

fn attribute(value: &str) -> Option<MessageAttributeValue> {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().ok()
}

impl Quarantine for SqsQuarantine {
    type Error = AwsCallError;

    async fn quarantine(&self, note: &QuarantineNote<'_>) -> Result<(), AwsCallError> {
        // SQS refuses empty bodies; an empty record is kept as a single space.
        let body = if note.body.is_empty() { " " } else { note.body };
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .set_message_attributes(Some(
                [
                    ("reason", note.reason),
                    ("detail", note.detail),
                    ("source_message_id", note.source_message_id),
                    ("quarantined_at", &Utc::now().to_rfc3339()),
                ]
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .filter_map(|(k, v)| attribute(v).map(|a| (k.to_owned(), a)))
                .collect(),
            ))
            .send()
            .await
            .map_err(|e| AwsCallError::new("sqs SendMessage", e))?;
        Ok(())
    }
}

/// Verifies SNS signatures and the topic allow-list.
pub struct SnsAuthenticator<F> {
    verifier: Verifier<F>,
}

impl<F> SnsAuthenticator<F> {
    /// Wraps a configured verifier.
    pub fn new(verifier: Verifier<F>) -> Self {
        Self { verifier }
    }
}

impl<F: CertificateFetcher> Authenticator for SnsAuthenticator<F> {
    async fn authenticate(&self, envelope: &SnsEnvelope) -> Result<(), Rejection> {
        let message = SnsMessage {
            kind: envelope.message_type.as_str(),
            message: &envelope.message,
            message_id: &envelope.message_id,
            subject: envelope.subject.as_deref(),
            timestamp: &envelope.timestamp,
            topic_arn: &envelope.topic_arn,
            token: envelope.token.as_deref(),
            subscribe_url: envelope.subscribe_url.as_deref(),
            signature_version: Some(&envelope.signature_version),
            signature: Some(&envelope.signature),
            signing_cert_url: Some(&envelope.signing_cert_url),
        };
        match self.verifier.verify(&message, Utc::now()).await {
            Ok(_) => Ok(()),
            Err(e) => Err(Rejection {
                retryable: e.is_retryable(),
                reason: e.reason_code(),
                detail: e.to_string(),
            }),
        }
    }
}

/// Confirms subscriptions through the SNS API (never by fetching `SubscribeURL`).
#[derive(Debug, Clone)]
pub struct SnsConfirmer {
    client: aws_sdk_sns::Client,
}

impl SnsConfirmer {
    /// A confirmer using `client`.
    pub fn new(client: aws_sdk_sns::Client) -> Self {
        Self { client }
    }
}

impl SubscriptionConfirmer for SnsConfirmer {
    type Error = AwsCallError;

    async fn confirm(&self, topic_arn: &str, token: &str) -> Result<(), AwsCallError> {
        self.client
            .confirm_subscription()
            .topic_arn(topic_arn)
            .token(token)
            .authenticate_on_unsubscribe("true")
            .send()
            .await
            .map_err(|e| AwsCallError::new("sns ConfirmSubscription", e))?;
        Ok(())
    }
}
