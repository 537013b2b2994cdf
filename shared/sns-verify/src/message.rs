//! The SNS envelope fields that take part in verification, and the string SNS signs.
//!
//! Owns [`SnsMessage`] (a borrowed view of one envelope), the message types and signature
//! versions this crate accepts, and [`canonical_string`]. It must not depend on the SES payload
//! model: the `Message` value is an opaque string here, signed byte for byte.

use std::fmt;

use serde_json::Value;

use crate::error::{VerifyError, quote_token};

/// The fields of one SNS envelope that verification reads, borrowed from the parsed JSON.
///
/// Optional fields are `None` when the key is missing or JSON `null` (Lambda-style records carry
/// `"Subject": null`). Nothing here is trusted until [`crate::Verifier::verify`] succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnsMessage<'a> {
    /// `Type`: `Notification`, `SubscriptionConfirmation` or `UnsubscribeConfirmation`.
    pub kind: &'a str,
    /// `Message`, exactly as decoded from JSON (event-publishing messages end with `\n`).
    pub message: &'a str,
    /// `MessageId`.
    pub message_id: &'a str,
    /// `Subject`, when the publisher set one.
    pub subject: Option<&'a str>,
    /// `Timestamp`, RFC 3339 UTC as SNS writes it.
    pub timestamp: &'a str,
    /// `TopicArn`.
    pub topic_arn: &'a str,
    /// `Token` (subscription and unsubscribe confirmations only).
    pub token: Option<&'a str>,
    /// `SubscribeURL` (subscription and unsubscribe confirmations only).
    pub subscribe_url: Option<&'a str>,
    /// `SignatureVersion`: `"1"` or `"2"`.
    pub signature_version: Option<&'a str>,
    /// `Signature`, base64.
    pub signature: Option<&'a str>,
    /// `SigningCertURL` (HTTP/SQS spelling) or `SigningCertUrl` (Lambda spelling).
    pub signing_cert_url: Option<&'a str>,
}

impl<'a> SnsMessage<'a> {
    /// Borrows the verification fields from a parsed SNS envelope.
    ///
    /// Accepts both the HTTP/SQS key spellings (`SigningCertURL`, `SubscribeURL`) and the Lambda
    /// ones (`SigningCertUrl`, `SubscribeUrl`); the `…URL` spelling wins when both are present
    /// (neither is signed, and the URL still has to pass the host rule). JSON `null` counts as
    /// absent.
    ///
    /// # Errors
    ///
    /// [`VerifyError::MissingField`] when `Type`, `Message`, `MessageId`, `Timestamp` or
    /// `TopicArn` is absent or null, and [`VerifyError::MalformedField`] when `value` is not an
    /// object or a field holds something other than a string.
    pub fn from_json(value: &'a Value) -> Result<Self, VerifyError> {
        let object = value.as_object().ok_or(VerifyError::MalformedField { field: "envelope" })?;
        let optional = |field: &'static str| -> Result<Option<&'a str>, VerifyError> {
            match object.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) => Ok(Some(text.as_str())),
                Some(_) => Err(VerifyError::MalformedField { field }),
            }
        };
        let required = |field: &'static str| -> Result<&'a str, VerifyError> {
            optional(field)?.ok_or(VerifyError::MissingField { field })
        };
        let either = |http: &'static str, lambda: &'static str| -> Result<_, VerifyError> {
            Ok(optional(http)?.or(optional(lambda)?))
        };

        Ok(SnsMessage {
            kind: required("Type")?,
            message: required("Message")?,
            message_id: required("MessageId")?,
            subject: optional("Subject")?,
            timestamp: required("Timestamp")?,
            topic_arn: required("TopicArn")?,
            token: optional("Token")?,
            subscribe_url: either("SubscribeURL", "SubscribeUrl")?,
            signature_version: optional("SignatureVersion")?,
            signature: optional("Signature")?,
            signing_cert_url: either("SigningCertURL", "SigningCertUrl")?,
        })
    }
}

/// The SNS message types whose signature this crate can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// A published message (`Type: Notification`).
    Notification,
    /// SNS asks the endpoint to confirm a subscription.
    SubscriptionConfirmation,
    /// SNS reports that a subscription was deleted.
    UnsubscribeConfirmation,
}

impl MessageType {
    /// Parses the `Type` value.
    ///
    /// # Errors
    ///
    /// [`VerifyError::UnsupportedType`] for any other value, including misspellings such as
    /// `UnsubscriptionConfirmation`.
    pub fn parse(kind: &str) -> Result<Self, VerifyError> {
        match kind {
            "Notification" => Ok(Self::Notification),
            "SubscriptionConfirmation" => Ok(Self::SubscriptionConfirmation),
            "UnsubscribeConfirmation" => Ok(Self::UnsubscribeConfirmation),
            other => Err(VerifyError::UnsupportedType { kind: quote_token(other) }),
        }
    }

    /// The `Type` value as SNS writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notification => "Notification",
            Self::SubscriptionConfirmation => "SubscriptionConfirmation",
            Self::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `SignatureVersion`: which digest SNS used under RSA PKCS#1 v1.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureVersion {
    /// `"1"`: SHA-1 (the topic default).
    V1Sha1,
    /// `"2"`: SHA-256 (topic attribute `SignatureVersion=2`).
    V2Sha256,
}

impl SignatureVersion {
    /// Parses the `SignatureVersion` value.
    ///
    /// # Errors
    ///
    /// [`VerifyError::MissingSignature`] when the field is absent and
    /// [`VerifyError::UnsupportedSignatureVersion`] for anything but `"1"` and `"2"`.
    pub fn parse(version: Option<&str>) -> Result<Self, VerifyError> {
        match version {
            Some("1") => Ok(Self::V1Sha1),
            Some("2") => Ok(Self::V2Sha256),
            Some(other) => {
                Err(VerifyError::UnsupportedSignatureVersion { version: quote_token(other) })
            }
            None => Err(VerifyError::MissingSignature { field: "SignatureVersion" }),
        }
    }

    /// The `SignatureVersion` value as SNS writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1Sha1 => "1",
            Self::V2Sha256 => "2",
        }
    }
}

impl fmt::Display for SignatureVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Builds the exact byte string SNS signed for `msg`.
///
/// Each signed key is written as `key\nvalue\n` in the fixed order SNS uses (key names in byte
/// order). Notifications sign `Message`, `MessageId`, `Subject` (only when present),
/// `Timestamp`, `TopicArn`, `Type`; both confirmation types sign `Message`, `MessageId`,
/// `SubscribeURL`, `Timestamp`, `Token`, `TopicArn`, `Type`. `SigningCertURL`,
/// `SignatureVersion`, `UnsubscribeURL` and message attributes are not signed.
///
/// # Errors
///
/// [`VerifyError::UnsupportedType`] for an unknown `Type`, and [`VerifyError::MissingField`]
/// when a confirmation lacks `SubscribeURL` or `Token`.
pub fn canonical_string(msg: &SnsMessage<'_>) -> Result<String, VerifyError> {
    let kind = MessageType::parse(msg.kind)?;
    let mut fields: Vec<(&str, &str)> = Vec::with_capacity(7);

    fields.push(("Message", msg.message));
    fields.push(("MessageId", msg.message_id));
    match kind {
        MessageType::Notification => {
            if let Some(subject) = msg.subject {
                fields.push(("Subject", subject));
            }
            fields.push(("Timestamp", msg.timestamp));
        }
        MessageType::SubscriptionConfirmation | MessageType::UnsubscribeConfirmation => {
            let subscribe_url =
                msg.subscribe_url.ok_or(VerifyError::MissingField { field: "SubscribeURL" })?;
            let token = msg.token.ok_or(VerifyError::MissingField { field: "Token" })?;
            fields.push(("SubscribeURL", subscribe_url));
            fields.push(("Timestamp", msg.timestamp));
            fields.push(("Token", token));
        }
    }
    fields.push(("TopicArn", msg.topic_arn));
    fields.push(("Type", msg.kind));

    let len = fields.iter().map(|(key, value)| key.len() + value.len() + 2).sum();
    let mut out = String::with_capacity(len);
    for (key, value) in fields {
        out.push_str(key);
        out.push('\n');
        out.push_str(value);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification() -> SnsMessage<'static> {
        SnsMessage {
            kind: "Notification",
            message: "hello\n",
            message_id: "id-1",
            subject: None,
            timestamp: "2022-07-28T21:23:58.317Z",
            topic_arn: "arn:aws:sns:eu-central-1:123456789012:feedback",
            token: None,
            subscribe_url: None,
            signature_version: Some("1"),
            signature: Some("c2ln"),
            signing_cert_url: None,
        }
    }

    #[test]
    fn notification_without_subject_signs_five_keys_in_byte_order() {
        let expected = "Message\nhello\n\nMessageId\nid-1\n\
                        Timestamp\n2022-07-28T21:23:58.317Z\n\
                        TopicArn\narn:aws:sns:eu-central-1:123456789012:feedback\n\
                        Type\nNotification\n";

        assert_eq!(canonical_string(&notification()).unwrap(), expected);
    }

    #[test]
    fn notification_subject_sits_between_message_id_and_timestamp() {
        let msg = SnsMessage { subject: Some("Hi"), ..notification() };

        let canonical = canonical_string(&msg).unwrap();

        assert!(canonical.contains("MessageId\nid-1\nSubject\nHi\nTimestamp\n"), "{canonical}");
    }

    #[test]
    fn confirmation_signs_subscribe_url_and_token_but_never_subject() {
        let msg = SnsMessage {
            kind: "UnsubscribeConfirmation",
            subject: Some("ignored"),
            token: Some("tok"),
            subscribe_url: Some("https://sns.eu-central-1.amazonaws.com/?Action=x"),
            ..notification()
        };
        let expected = "Message\nhello\n\nMessageId\nid-1\n\
                        SubscribeURL\nhttps://sns.eu-central-1.amazonaws.com/?Action=x\n\
                        Timestamp\n2022-07-28T21:23:58.317Z\nToken\ntok\n\
                        TopicArn\narn:aws:sns:eu-central-1:123456789012:feedback\n\
                        Type\nUnsubscribeConfirmation\n";

        assert_eq!(canonical_string(&msg).unwrap(), expected);
    }

    #[test]
    fn confirmation_without_token_is_a_missing_field() {
        let msg = SnsMessage {
            kind: "SubscriptionConfirmation",
            subscribe_url: Some("https://sns.eu-central-1.amazonaws.com/"),
            ..notification()
        };

        let err = canonical_string(&msg).unwrap_err();

        assert!(matches!(err, VerifyError::MissingField { field: "Token" }), "{err:?}");
    }

    #[test]
    fn misspelled_unsubscribe_type_is_unsupported() {
        let msg = SnsMessage { kind: "UnsubscriptionConfirmation", ..notification() };

        let err = canonical_string(&msg).unwrap_err();

        assert_eq!(err.reason_code(), "unsupported_type");
    }

    #[test]
    fn signature_versions_other_than_one_and_two_are_rejected() {
        for version in ["0", "3", "", " 1", "1 ", "v1"] {
            let err = SignatureVersion::parse(Some(version)).unwrap_err();
            assert_eq!(err.reason_code(), "unsupported_signature_version", "{version:?}");
        }
        assert_eq!(SignatureVersion::parse(Some("1")).unwrap(), SignatureVersion::V1Sha1);
        assert_eq!(SignatureVersion::parse(Some("2")).unwrap(), SignatureVersion::V2Sha256);
        assert_eq!(SignatureVersion::parse(None).unwrap_err().reason_code(), "missing_signature");
    }

    #[test]
    fn from_json_rejects_non_string_fields_and_missing_required_keys() {
        let numeric_subject = serde_json::json!({
            "Type": "Notification", "Message": "m", "MessageId": "i",
            "Timestamp": "t", "TopicArn": "a", "Subject": 5
        });
        let no_topic = serde_json::json!({
            "Type": "Notification", "Message": "m", "MessageId": "i", "Timestamp": "t"
        });

        let numeric = SnsMessage::from_json(&numeric_subject).unwrap_err();
        let missing = SnsMessage::from_json(&no_topic).unwrap_err();
        let not_object = SnsMessage::from_json(&Value::String("x".into())).unwrap_err();

        assert!(matches!(numeric, VerifyError::MalformedField { field: "Subject" }));
        assert!(matches!(missing, VerifyError::MissingField { field: "TopicArn" }));
        assert!(matches!(not_object, VerifyError::MalformedField { field: "envelope" }));
    }
}
