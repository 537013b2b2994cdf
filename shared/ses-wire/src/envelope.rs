//! The SNS envelope, as SQS (non-raw delivery) and Lambda (direct SNS trigger) hand it over.
//!
//! Owns the field set needed to verify an SNS signature and to tell notifications from
//! subscription chatter. Both key spellings are accepted: `SigningCertURL`/`UnsubscribeURL` (HTTP
//! and SQS) and `SigningCertUrl`/`UnsubscribeUrl` (Lambda records). Depends only on `serde`.

use std::fmt;

use serde::Deserialize;

use crate::error::{Layer, ParseError};

/// The SNS `Type` field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SnsMessageType {
    /// `Notification`: a published message; SES feedback arrives as one.
    Notification,
    /// `SubscriptionConfirmation`: SNS asks for a subscription to be confirmed.
    SubscriptionConfirmation,
    /// `UnsubscribeConfirmation`: SNS reports that a subscription was deleted.
    UnsubscribeConfirmation,
    /// Any other value, kept verbatim.
    Other(String),
}

impl SnsMessageType {
    /// Maps the SNS value.
    pub fn from_wire(name: &str) -> Self {
        match name {
            "Notification" => Self::Notification,
            "SubscriptionConfirmation" => Self::SubscriptionConfirmation,
            "UnsubscribeConfirmation" => Self::UnsubscribeConfirmation,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The SNS spelling (the value that is signed).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Notification => "Notification",
            Self::SubscriptionConfirmation => "SubscriptionConfirmation",
            Self::UnsubscribeConfirmation => "UnsubscribeConfirmation",
            Self::Other(name) => name,
        }
    }
}

/// An SNS message envelope with every field signature verification reads.
///
/// String values are the decoded JSON strings, byte for byte (escapes resolved, nothing trimmed):
/// exactly what the SNS signature covers. `Debug` prints the length of `Message` and hides
/// `Signature` and `Token`, because the message carries addresses and the token confirms
/// subscriptions.
///
/// Deserializing fails when `Type`, `MessageId`, `TopicArn`, `Message`, `Timestamp`,
/// `SignatureVersion`, `Signature` or `SigningCertURL` is absent or `null`: SNS always sends them.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawEnvelope")]
pub struct SnsEnvelope {
    /// `Type`.
    pub message_type: SnsMessageType,
    /// `MessageId`: stays the same when SNS retries a delivery.
    pub message_id: String,
    /// `TopicArn`.
    pub topic_arn: String,
    /// `Subject`; a Lambda-style `"Subject": null` is `None` (signed as absent).
    pub subject: Option<String>,
    /// `Message`, exact (event-publishing messages end with `\n`, which is signed).
    pub message: String,
    /// `Timestamp`, as sent (it is signed as text).
    pub timestamp: String,
    /// `SignatureVersion`: `"1"` (SHA1) or `"2"` (SHA256); other values must be rejected by the
    /// verifier.
    pub signature_version: String,
    /// `Signature`, base64.
    pub signature: String,
    /// `SigningCertURL` (or Lambda's `SigningCertUrl`). Not signed: validate before fetching.
    pub signing_cert_url: String,
    /// `SubscribeURL` (subscription and unsubscribe confirmations).
    pub subscribe_url: Option<String>,
    /// `Token` (subscription and unsubscribe confirmations).
    pub token: Option<String>,
    /// `UnsubscribeURL` (or Lambda's `UnsubscribeUrl`; notifications). Not signed.
    pub unsubscribe_url: Option<String>,
}

impl fmt::Debug for SnsEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnsEnvelope")
            .field("message_type", &self.message_type)
            .field("message_id", &self.message_id)
            .field("topic_arn", &self.topic_arn)
            .field("subject", &self.subject)
            .field("message", &format_args!("<{} bytes>", self.message.len()))
            .field("timestamp", &self.timestamp)
            .field("signature_version", &self.signature_version)
            .field("signature", &"<redacted>")
            .field("signing_cert_url", &self.signing_cert_url)
            .field("subscribe_url", &self.subscribe_url.as_ref().map(|_| "<present>"))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("unsubscribe_url", &self.unsubscribe_url)
            .finish()
    }
}

/// The envelope keys as they arrive, every one optional; [`SnsEnvelope`] is the checked form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawEnvelope {
    #[serde(rename = "Type")]
    pub(crate) message_type: Option<String>,
    #[serde(rename = "MessageId")]
    pub(crate) message_id: Option<String>,
    #[serde(rename = "TopicArn")]
    pub(crate) topic_arn: Option<String>,
    #[serde(rename = "Subject")]
    pub(crate) subject: Option<String>,
    #[serde(rename = "Message")]
    pub(crate) message: Option<String>,
    #[serde(rename = "Timestamp")]
    pub(crate) timestamp: Option<String>,
    #[serde(rename = "SignatureVersion")]
    pub(crate) signature_version: Option<String>,
    #[serde(rename = "Signature")]
    pub(crate) signature: Option<String>,
    #[serde(rename = "SigningCertURL", alias = "SigningCertUrl")]
    pub(crate) signing_cert_url: Option<String>,
    #[serde(rename = "SubscribeURL", alias = "SubscribeUrl")]
    pub(crate) subscribe_url: Option<String>,
    #[serde(rename = "Token")]
    pub(crate) token: Option<String>,
    #[serde(rename = "UnsubscribeURL", alias = "UnsubscribeUrl")]
    pub(crate) unsubscribe_url: Option<String>,
}

impl RawEnvelope {
    /// Checks the required keys; `layer` says where the envelope was found.
    pub(crate) fn into_envelope(self, layer: Layer) -> Result<SnsEnvelope, ParseError> {
        let required = |value: Option<String>, field: &'static str| {
            value.ok_or(ParseError::MissingField { layer, field })
        };

        Ok(SnsEnvelope {
            message_type: SnsMessageType::from_wire(&required(self.message_type, "Type")?),
            message_id: required(self.message_id, "MessageId")?,
            topic_arn: required(self.topic_arn, "TopicArn")?,
            subject: self.subject,
            message: required(self.message, "Message")?,
            timestamp: required(self.timestamp, "Timestamp")?,
            signature_version: required(self.signature_version, "SignatureVersion")?,
            signature: required(self.signature, "Signature")?,
            signing_cert_url: required(self.signing_cert_url, "SigningCertURL")?,
            subscribe_url: self.subscribe_url,
            token: self.token,
            unsubscribe_url: self.unsubscribe_url,
        })
    }
}

impl TryFrom<RawEnvelope> for SnsEnvelope {
    type Error = ParseError;

    fn try_from(raw: RawEnvelope) -> Result<Self, Self::Error> {
        raw.into_envelope(Layer::LambdaSnsEvent)
    }
}

/// A Lambda event from a direct SNS trigger: `{"Records": [{"EventSource": "aws:sns", ...}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LambdaSnsEvent {
    /// `Records`.
    #[serde(rename = "Records")]
    pub records: Vec<LambdaSnsRecord>,
}

/// One record of a [`LambdaSnsEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LambdaSnsRecord {
    /// `EventSource` (`aws:sns`).
    #[serde(rename = "EventSource", default)]
    pub event_source: Option<String>,
    /// `EventSubscriptionArn`.
    #[serde(rename = "EventSubscriptionArn", default)]
    pub event_subscription_arn: Option<String>,
    /// `Sns`: the envelope, with Lambda's key spellings mapped.
    #[serde(rename = "Sns")]
    pub sns: SnsEnvelope,
}
