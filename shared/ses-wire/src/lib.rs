//! SES and SNS wire formats as they arrive on the queue, turned into domain feedback.
//!
//! Owns the JSON shapes of the SES -> SNS -> SQS path: the SQS record body (an SNS envelope with
//! non-raw delivery, the bare SES JSON with raw delivery, or SES's plain-text setup message), the
//! SNS envelope (also in its Lambda-record spelling) and the SES notification/event JSON inside.
//! Each layer is deserialized once with `serde_json` into structs that keep only what the domain
//! uses. It depends on `serde`, `chrono` and `feedback-domain`; it must not depend on the AWS SDK,
//! HTTP clients or the Lambda runtime, and it does not verify signatures (the SNS verifier takes
//! the [`SnsEnvelope`] fields).
//!
//! Outcomes that are not feedback but are expected (subscription confirmations, SES setup
//! chatter) are [`Content`] values; records that cannot be acted on are [`ParseError`]s with a
//! [`ParseError::reason_code`] for quarantine. Messages never quote a body or an address.

mod envelope;
mod error;
mod ses;
mod time;

use std::borrow::Cow;

use feedback_domain::Feedback;
use serde::Deserialize;
use serde::de::IgnoredAny;

pub use envelope::{LambdaSnsEvent, LambdaSnsRecord, SnsEnvelope, SnsMessageType};
pub use error::{Layer, ParseError};
pub use ses::sending_identity;
pub use time::parse_timestamp;

use envelope::RawEnvelope;
use ses::{SesDocument, WireBounce, WireComplaint, WireDelivery, WireMail};

/// The plain-text `Message` SES publishes when an SNS event destination is created. With raw
/// delivery it is the whole SQS body.
const EVENT_DESTINATION_VALIDATED: &str =
    "Successfully validated SNS topic for Amazon SES event publishing.";

/// One queue record, understood.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRecord {
    /// The SNS envelope; `None` with raw message delivery (the body was the SES JSON itself).
    pub envelope: Option<SnsEnvelope>,
    /// What the record carries.
    pub content: Content,
}

impl ParsedRecord {
    /// The feedback, when the record carries some.
    pub fn feedback(&self) -> Option<&Feedback> {
        match &self.content {
            Content::Feedback(feedback) => Some(feedback),
            _ => None,
        }
    }
}

/// What a record carries, when it is something the consumer expects.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// An SES notification or event (any type, including ones the domain only counts).
    Feedback(Box<Feedback>),
    /// SES setup chatter: acknowledge and drop.
    Setup(SetupMessage),
    /// SNS asks for the subscription to be confirmed; the envelope has `Token` and `SubscribeURL`.
    SubscriptionConfirmation,
    /// SNS reports a deleted subscription.
    UnsubscribeConfirmation,
}

/// Messages SES publishes while notifications or event destinations are being set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupMessage {
    /// The plain text `Successfully validated SNS topic for Amazon SES event publishing.`
    EventPublishingValidated,
    /// `{"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "..."}`, published once
    /// when an identity's notification topic is set.
    NotificationSubscriptionSucceeded,
    /// A notification whose `mail.messageId` is `AMAZON_SES_SETUP_NOTIFICATION`.
    SetupNotification,
}

impl SetupMessage {
    /// A stable snake_case name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EventPublishingValidated => "event_publishing_validated",
            Self::NotificationSubscriptionSucceeded => "notification_subscription_succeeded",
            Self::SetupNotification => "setup_notification",
        }
    }
}

/// Parses one SQS record body from an SNS subscription, with or without raw message delivery.
///
/// A JSON object with `Type` is an SNS envelope (its `Message` is parsed in turn, see
/// [`parse_sns_envelope`]); one with `eventType` or `notificationType` is the bare SES JSON; the
/// plain-text event-destination validation message is [`SetupMessage::EventPublishingValidated`].
///
/// Fails with [`ParseError::NotJson`] when the body (or an envelope's `Message`) is not JSON,
/// [`ParseError::NotSesFeedback`] for other JSON, [`ParseError::Malformed`] when a known field has
/// the wrong JSON type, [`ParseError::InboundReceipt`] for SES receiving notifications,
/// [`ParseError::UnknownEnvelopeType`] for an unexpected SNS `Type`, and
/// [`ParseError::MissingField`] / [`ParseError::BadTimestamp`] when a notification lacks what
/// acting on it needs (envelope keys, `mail.messageId`, the bounce/complaint/delivery object,
/// its type, recipients or timestamp).
pub fn parse_sqs_body(body: &str) -> Result<ParsedRecord, ParseError> {
    let layer = Layer::SqsBody;

    if body.trim() == EVENT_DESTINATION_VALIDATED {
        return Ok(ParsedRecord {
            envelope: None,
            content: Content::Setup(SetupMessage::EventPublishingValidated),
        });
    }

    let document: BodyDocument<'_> = parse_object(body, layer)?;
    let (raw_envelope, ses) = document.split();

    match raw_envelope {
        Some(raw) => parse_sns_envelope(raw.into_envelope(layer)?),
        None if ses.is_ses() => {
            Ok(ParsedRecord { envelope: None, content: ses.into_content(layer)? })
        }
        None => Err(ParseError::NotSesFeedback { layer }),
    }
}

/// Interprets an SNS envelope: confirmations by `Type`, notifications by their `Message`.
///
/// Fails like [`parse_sqs_body`] does for the `Message` (which must be SES JSON or the plain-text
/// setup message), and with [`ParseError::UnknownEnvelopeType`] for other `Type` values.
pub fn parse_sns_envelope(envelope: SnsEnvelope) -> Result<ParsedRecord, ParseError> {
    let content = match envelope.message_type {
        SnsMessageType::SubscriptionConfirmation => Content::SubscriptionConfirmation,
        SnsMessageType::UnsubscribeConfirmation => Content::UnsubscribeConfirmation,
        SnsMessageType::Other(_) => return Err(ParseError::UnknownEnvelopeType),
        SnsMessageType::Notification => parse_notification_message(&envelope.message)?,
    };

    Ok(ParsedRecord { envelope: Some(envelope), content })
}

/// Interprets one record of a Lambda event from a direct SNS trigger.
///
/// Fails like [`parse_sns_envelope`].
pub fn parse_lambda_sns_record(record: LambdaSnsRecord) -> Result<ParsedRecord, ParseError> {
    parse_sns_envelope(record.sns)
}

/// Parses a whole Lambda SNS event and interprets each record on its own.
///
/// Fails as a whole only when the event itself is not JSON or not a `{"Records": [...]}` object
/// whose records all carry a complete `Sns` envelope ([`ParseError::NotJson`],
/// [`ParseError::NotSesFeedback`], [`ParseError::Malformed`]); a record whose message cannot be
/// used gets its own error.
pub fn parse_lambda_sns_event(
    event: &str,
) -> Result<Vec<Result<ParsedRecord, ParseError>>, ParseError> {
    let event: LambdaSnsEvent = parse_object(event, Layer::LambdaSnsEvent)?;

    Ok(event.records.into_iter().map(parse_lambda_sns_record).collect())
}

fn parse_notification_message(message: &str) -> Result<Content, ParseError> {
    let layer = Layer::SnsMessage;

    if message.trim() == EVENT_DESTINATION_VALIDATED {
        return Ok(Content::Setup(SetupMessage::EventPublishingValidated));
    }

    let ses: SesDocument<'_> = parse_object(message, layer)?;

    ses.into_content(layer)
}

/// Deserializes a JSON object. Other JSON values are [`ParseError::NotSesFeedback`]: serde would
/// otherwise read an array positionally into the struct.
fn parse_object<'a, T: Deserialize<'a>>(text: &'a str, layer: Layer) -> Result<T, ParseError> {
    if !text.trim_start().starts_with('{') {
        return Err(match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => ParseError::NotSesFeedback { layer },
            Err(error) => ParseError::from_json(layer, error),
        });
    }

    serde_json::from_str(text).map_err(|error| ParseError::from_json(layer, error))
}

/// An SQS body: the keys of an SNS envelope and of the SES JSON side by side, so that either
/// shape is read in one pass. (`#[serde(flatten)]` would buffer the whole document first.)
#[derive(Deserialize)]
struct BodyDocument<'a> {
    #[serde(rename = "Type")]
    message_type: Option<String>,
    #[serde(rename = "MessageId")]
    message_id: Option<String>,
    #[serde(rename = "TopicArn")]
    topic_arn: Option<String>,
    #[serde(rename = "Subject")]
    subject: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
    #[serde(rename = "Timestamp")]
    timestamp: Option<String>,
    #[serde(rename = "SignatureVersion")]
    signature_version: Option<String>,
    #[serde(rename = "Signature")]
    signature: Option<String>,
    #[serde(rename = "SigningCertURL", alias = "SigningCertUrl")]
    signing_cert_url: Option<String>,
    #[serde(rename = "SubscribeURL", alias = "SubscribeUrl")]
    subscribe_url: Option<String>,
    #[serde(rename = "Token")]
    token: Option<String>,
    #[serde(rename = "UnsubscribeURL", alias = "UnsubscribeUrl")]
    unsubscribe_url: Option<String>,

    #[serde(rename = "eventType", borrow)]
    event_type: Option<Cow<'a, str>>,
    #[serde(rename = "notificationType", borrow)]
    notification_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    mail: Option<WireMail<'a>>,
    #[serde(borrow)]
    bounce: Option<WireBounce<'a>>,
    #[serde(borrow)]
    complaint: Option<WireComplaint<'a>>,
    #[serde(borrow)]
    delivery: Option<WireDelivery<'a>>,
}

impl<'a> BodyDocument<'a> {
    /// The envelope keys (when `Type` is present, i.e. the body is an SNS envelope) and the SES
    /// keys.
    fn split(self) -> (Option<RawEnvelope>, SesDocument<'a>) {
        let is_envelope = self.message_type.is_some();
        let envelope = RawEnvelope {
            message_type: self.message_type,
            message_id: self.message_id,
            topic_arn: self.topic_arn,
            subject: self.subject,
            message: self.message,
            timestamp: self.timestamp,
            signature_version: self.signature_version,
            signature: self.signature,
            signing_cert_url: self.signing_cert_url,
            subscribe_url: self.subscribe_url,
            token: self.token,
            unsubscribe_url: self.unsubscribe_url,
        };
        let ses = SesDocument {
            event_type: self.event_type,
            notification_type: self.notification_type,
            mail: self.mail,
            bounce: self.bounce,
            complaint: self.complaint,
            delivery: self.delivery,
        };

        (is_envelope.then_some(envelope), ses)
    }
}

#[cfg(test)]
mod tests {
    use feedback_domain::{
        BounceSubType, BounceType, ComplaintFeedbackType, EventKind, FeedbackEvent,
    };

    use serde_json::{Value, json};

    use super::*;

    const MAIL: &str = r#"{"messageId":"m-1","timestamp":"2024-05-01T10:00:00.000Z",
        "source":"Sender <s@example.org>","destination":["a@x.test","b@x.test"]}"#;

    const CERT_URL: &str = "https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-0.pem";

    fn envelope_around(message: &str) -> String {
        json!({
            "Type": "Notification",
            "MessageId": "id-1",
            "TopicArn": "arn:aws:sns:eu-central-1:111122223333:ses-feedback",
            "Message": message,
            "Timestamp": "2024-05-01T10:00:01.000Z",
            "SignatureVersion": "2",
            "Signature": "c2ln",
            "SigningCertURL": CERT_URL,
            "UnsubscribeURL": "https://sns.eu-central-1.amazonaws.com/?Action=Unsubscribe",
        })
        .to_string()
    }

    fn feedback_event(body: &str) -> FeedbackEvent {
        let record = parse_sqs_body(body).unwrap();

        record.feedback().unwrap().event.clone()
    }

    #[test]
    fn text_that_is_not_json_is_a_not_json_error() {
        let error = parse_sqs_body("this is not { json").unwrap_err();

        assert!(matches!(error, ParseError::NotJson { layer: Layer::SqsBody, .. }));
        assert_eq!(error.reason_code(), "not_json");
    }

    #[test]
    fn an_empty_body_is_a_not_json_error() {
        for body in ["", "   \n"] {
            assert_eq!(parse_sqs_body(body).unwrap_err().reason_code(), "not_json", "{body:?}");
        }
    }

    #[test]
    fn truncated_json_is_a_not_json_error() {
        assert_eq!(parse_sqs_body(r#"{"Type":"Notifi"#).unwrap_err().reason_code(), "not_json");
    }

    #[test]
    fn json_that_is_not_an_object_is_not_ses_feedback() {
        for body in ["[]", r#"[{"notificationType":"Bounce"}]"#, "42", "\"Bounce\"", "null"] {
            let error = parse_sqs_body(body).unwrap_err();

            assert!(
                matches!(error, ParseError::NotSesFeedback { layer: Layer::SqsBody }),
                "{body}"
            );
        }
    }

    #[test]
    fn an_object_without_envelope_or_ses_keys_is_not_ses_feedback() {
        let error = parse_sqs_body(r#"{"hello":"world","mail":{"messageId":"x"}}"#).unwrap_err();

        assert_eq!(error.reason_code(), "not_ses_feedback");
    }

    #[test]
    fn an_envelope_whose_message_is_plain_text_is_a_not_json_error_in_the_message_layer() {
        let error = parse_sqs_body(&envelope_around("Hello world")).unwrap_err();

        assert!(matches!(error, ParseError::NotJson { layer: Layer::SnsMessage, .. }));
    }

    #[test]
    fn the_event_destination_validation_text_is_setup_inside_an_envelope_and_as_a_raw_body() {
        let text = "Successfully validated SNS topic for Amazon SES event publishing.";
        let wrapped = parse_sqs_body(&envelope_around(text)).unwrap();
        let raw = parse_sqs_body(text).unwrap();

        assert_eq!(wrapped.content, Content::Setup(SetupMessage::EventPublishingValidated));
        assert!(wrapped.envelope.is_some());
        assert_eq!(raw.content, Content::Setup(SetupMessage::EventPublishingValidated));
        assert!(raw.envelope.is_none());
    }

    #[test]
    fn the_subscription_succeeded_message_is_setup_without_a_mail_object() {
        let message = r#"{"notificationType":"AmazonSnsSubscriptionSucceeded","message":"ok"}"#;

        assert_eq!(
            parse_sqs_body(message).unwrap().content,
            Content::Setup(SetupMessage::NotificationSubscriptionSucceeded)
        );
    }

    #[test]
    fn the_setup_probe_message_id_is_setup_even_without_a_bounce_object() {
        let body = r#"{"notificationType":"Bounce",
            "mail":{"messageId":"AMAZON_SES_SETUP_NOTIFICATION","destination":[]}}"#;

        assert_eq!(
            parse_sqs_body(body).unwrap().content,
            Content::Setup(SetupMessage::SetupNotification)
        );
    }

    #[test]
    fn an_inbound_receipt_is_its_own_error() {
        let body = r#"{"notificationType":"Received","receipt":{},"mail":{"messageId":"m"}}"#;
        let error = parse_sqs_body(&envelope_around(body)).unwrap_err();

        assert!(matches!(error, ParseError::InboundReceipt));
        assert_eq!(error.reason_code(), "inbound_receipt");
    }

    #[test]
    fn a_bounce_without_its_bounce_object_is_a_missing_field() {
        let body = format!(r#"{{"notificationType":"Bounce","mail":{MAIL}}}"#);
        let error = parse_sqs_body(&body).unwrap_err();

        assert_eq!(error.reason_code(), "missing_field");
        assert_eq!(error.field(), Some("bounce"));
    }

    #[test]
    fn each_field_a_notification_needs_is_reported_by_name_when_missing() {
        let with_mail = |kind: &str, detail: &str| {
            format!(r#"{{"notificationType":"{kind}","mail":{MAIL},{detail}}}"#)
        };
        let bounce = r#""bounce":{"bounceType":"Permanent","bounceSubType":"General",
            "bouncedRecipients":[{"emailAddress":"a@x.test"}],"timestamp":"2024-05-01T10:00:02Z"}"#;
        let bounce_without =
            |text: &str, instead: &str| with_mail("Bounce", &bounce.replace(text, instead));
        let cases = [
            (r#"{"eventType":"Bounce"}"#.to_owned(), "mail"),
            (
                r#"{"eventType":"Open","mail":{"timestamp":"2024-05-01T10:00:00Z"}}"#.to_owned(),
                "mail.messageId",
            ),
            (r#"{"eventType":"Open","mail":{"messageId":""}}"#.to_owned(), "mail.messageId"),
            (bounce_without(r#""bounceType":"Permanent","#, ""), "bounce.bounceType"),
            (bounce_without(r#""bounceSubType":"General","#, ""), "bounce.bounceSubType"),
            (bounce_without(r#","timestamp":"2024-05-01T10:00:02Z""#, ""), "bounce.timestamp"),
            (
                bounce_without(r#""bouncedRecipients":[{"emailAddress":"a@x.test"}],"#, ""),
                "bounce.bouncedRecipients",
            ),
            (
                bounce_without(r#""emailAddress":"a@x.test""#, r#""status":"5.1.1""#),
                "bounce.bouncedRecipients[].emailAddress",
            ),
            (
                with_mail("Complaint", r#""complaint":{"timestamp":"2024-05-01T10:00:02Z"}"#),
                "complaint.complainedRecipients",
            ),
            (
                with_mail("Complaint", r#""complaint":{"complainedRecipients":[]}"#),
                "complaint.timestamp",
            ),
            (with_mail("Delivery", r#""delivery":{"recipients":[]}"#), "delivery.timestamp"),
            (
                with_mail("Delivery", r#""delivery":{"timestamp":"2024-05-01T10:00:02Z"}"#),
                "delivery.recipients",
            ),
            (
                r#"{"eventType":"Send","mail":{"messageId":"m-1"},"send":{}}"#.to_owned(),
                "mail.timestamp",
            ),
        ];

        for (body, field) in cases {
            let error = parse_sqs_body(&body).unwrap_err();

            assert_eq!(
                (error.reason_code(), error.field()),
                ("missing_field", Some(field)),
                "{body}"
            );
        }
    }

    #[test]
    fn an_unparseable_timestamp_on_a_bounce_is_a_bad_timestamp() {
        let body = format!(
            r#"{{"notificationType":"Bounce","mail":{MAIL},"bounce":{{"bounceType":"Permanent",
            "bounceSubType":"General","bouncedRecipients":[],"timestamp":"last tuesday"}}}}"#
        );
        let error = parse_sqs_body(&body).unwrap_err();

        assert_eq!(
            (error.reason_code(), error.field()),
            ("bad_timestamp", Some("bounce.timestamp"))
        );
    }

    #[test]
    fn an_unparseable_mail_timestamp_only_leaves_sent_at_empty() {
        let body = r#"{"eventType":"Open","mail":{"messageId":"m-1","timestamp":"soon"}}"#;
        let record = parse_sqs_body(body).unwrap();

        assert_eq!(record.feedback().unwrap().mail.sent_at, None);
    }

    #[test]
    fn a_known_field_of_the_wrong_type_is_malformed_and_the_message_does_not_quote_it() {
        let body = r#"{"notificationType":"Bounce","mail":"secret@example.org"}"#;
        let error = parse_sqs_body(body).unwrap_err();

        assert_eq!(error.reason_code(), "malformed");
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[test]
    fn no_error_message_quotes_the_body() {
        let bodies = [
            "secret@example.org".to_owned(),
            r#"{"secret@example.org":1}"#.to_owned(),
            envelope_around("secret@example.org"),
            envelope_around(r#"{"eventType":"Bounce","mail":{"messageId":"secret@example.org"}}"#),
            concat!(
                r#"{"eventType":"Bounce","mail":{"messageId":"m"},"#,
                r#""bounce":{"bouncedRecipients":"secret"}}"#
            )
            .to_owned(),
        ];

        for body in bodies {
            let error = parse_sqs_body(&body).unwrap_err();
            let mut chain = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(inner) = source {
                chain.push_str(&inner.to_string());
                source = inner.source();
            }

            assert!(!chain.contains("secret"), "{chain}");
        }
    }

    #[test]
    fn an_envelope_missing_a_signed_key_is_a_missing_field() {
        let mut envelope: Value = serde_json::from_str(&envelope_around("{}")).unwrap();
        envelope.as_object_mut().unwrap().remove("MessageId");
        let error = parse_sqs_body(&envelope.to_string()).unwrap_err();

        assert_eq!((error.reason_code(), error.field()), ("missing_field", Some("MessageId")));
    }

    #[test]
    fn an_unknown_envelope_type_is_its_own_error() {
        let body = envelope_around("{}").replace("\"Notification\"", "\"SomethingNew\"");

        assert_eq!(parse_sqs_body(&body).unwrap_err().reason_code(), "unknown_envelope_type");
    }

    #[test]
    fn an_unsubscribe_confirmation_is_recognised() {
        let body = envelope_around("You have chosen to deactivate subscription")
            .replace("\"Notification\"", "\"UnsubscribeConfirmation\"");

        assert_eq!(parse_sqs_body(&body).unwrap().content, Content::UnsubscribeConfirmation);
    }

    #[test]
    fn event_type_wins_over_notification_type() {
        let body = format!(r#"{{"notificationType":"Bounce","eventType":"Open","mail":{MAIL}}}"#);
        let record = parse_sqs_body(&body).unwrap();
        let feedback = record.feedback().unwrap();

        assert_eq!(feedback.event, FeedbackEvent::Other { kind: EventKind::Open });
        assert_eq!(feedback.source, feedback_domain::FeedbackSource::EventPublishing);
    }

    #[test]
    fn unknown_types_and_subtypes_and_fields_are_values_not_errors() {
        let unknown_type = format!(r#"{{"eventType":"Teleport","mail":{MAIL},"teleport":{{}}}}"#);
        let unknown_values = format!(
            r#"{{"notificationType":"Bounce","newTopLevel":[1,2],"mail":{MAIL},"bounce":{{
            "bounceType":"Sideways","bounceSubType":"Eaten","bouncedRecipients":[],
            "timestamp":"2024-05-01T10:00:02Z","brandNew":{{"x":null}}}}}}"#
        );
        let unknown_complaint = format!(
            r#"{{"notificationType":"Complaint","mail":{MAIL},"complaint":{{
            "complainedRecipients":[{{"emailAddress":"a@x.test","extra":true}}],
            "timestamp":"2024-05-01T10:00:02Z","complaintFeedbackType":"opt-out"}}}}"#
        );

        assert_eq!(
            feedback_event(&unknown_type),
            FeedbackEvent::Other { kind: EventKind::Other("Teleport".to_owned()) }
        );
        let FeedbackEvent::Bounce(bounce) = feedback_event(&unknown_values) else { panic!() };
        assert_eq!(bounce.bounce_type, BounceType::Other("Sideways".to_owned()));
        assert_eq!(bounce.sub_type, BounceSubType::Other("Eaten".to_owned()));
        let FeedbackEvent::Complaint(complaint) = feedback_event(&unknown_complaint) else {
            panic!()
        };
        assert_eq!(
            complaint.feedback_type,
            Some(ComplaintFeedbackType::Unknown("opt-out".to_owned()))
        );
    }

    #[test]
    fn both_spellings_of_rendering_failure_are_one_kind() {
        for name in ["Rendering Failure", "RenderingFailure"] {
            let body = format!(r#"{{"eventType":"{name}","mail":{MAIL},"failure":{{}}}}"#);

            assert_eq!(
                feedback_event(&body),
                FeedbackEvent::Other { kind: EventKind::RenderingFailure }
            );
        }
    }

    #[test]
    fn recipients_come_from_the_bounce_not_from_the_destination() {
        let body = format!(
            r#"{{"notificationType":"Bounce","mail":{MAIL},"bounce":{{"bounceType":"Permanent",
            "bounceSubType":"General","bouncedRecipients":[{{"emailAddress":"b@x.test"}}],
            "timestamp":"2024-05-01T10:00:02+02:00"}}}}"#
        );
        let record = parse_sqs_body(&body).unwrap();
        let feedback = record.feedback().unwrap();
        let FeedbackEvent::Bounce(bounce) = &feedback.event else { panic!() };

        assert_eq!(feedback.mail.destination_count, 2);
        assert_eq!(feedback.mail.identity.as_deref(), Some("example.org"));
        assert_eq!(bounce.recipients.len(), 1);
        assert_eq!(bounce.recipients[0].address, "b@x.test");
        assert_eq!(bounce.timestamp.to_rfc3339(), "2024-05-01T08:00:02+00:00");
    }

    #[test]
    fn an_absent_or_null_complaint_subtype_is_none_and_a_value_is_kept() {
        let complaint = |extra: &str| {
            format!(
                r#"{{"notificationType":"Complaint","mail":{MAIL},"complaint":{{{extra}
                "complainedRecipients":[],"timestamp":"2024-05-01T10:00:02Z"}}}}"#
            )
        };
        let sub_type = |body: String| match feedback_event(&body) {
            FeedbackEvent::Complaint(complaint) => complaint.sub_type,
            other => panic!("{other:?}"),
        };

        assert_eq!(sub_type(complaint("")), None);
        assert_eq!(sub_type(complaint(r#""complaintSubType":null,"#)), None);
        assert_eq!(
            sub_type(complaint(r#""complaintSubType":"OnAccountSuppressionList","#)).as_deref(),
            Some("OnAccountSuppressionList")
        );
    }

    #[test]
    fn lambda_style_keys_and_a_null_subject_fill_the_envelope() {
        let body = envelope_around("{}")
            .replace("SigningCertURL", "SigningCertUrl")
            .replace("UnsubscribeURL", "UnsubscribeUrl")
            .replace("\"Type\"", "\"Subject\":null,\"Type\"");
        let envelope: SnsEnvelope = serde_json::from_str(&body).unwrap();

        assert_eq!(envelope.subject, None);
        assert!(envelope.signing_cert_url.ends_with("SimpleNotificationService-0.pem"));
        assert!(envelope.unsubscribe_url.is_some());
    }

    #[test]
    fn the_envelope_debug_output_hides_the_message_signature_and_token() {
        let body = envelope_around(r#"{"mail":"secret@example.org"}"#)
            .replace("\"Signature\":\"c2ln\"", "\"Signature\":\"c2ln\",\"Token\":\"tok-123\"");
        let envelope: SnsEnvelope = serde_json::from_str(&body).unwrap();
        let debug = format!("{envelope:?}");

        assert!(envelope.token.is_some());
        for hidden in ["secret", "c2ln", "tok-123"] {
            assert!(!debug.contains(hidden), "{debug}");
        }
    }

    #[test]
    fn a_lambda_sns_event_gives_one_result_per_record() {
        let record = |message: &str| {
            json!({
                "EventSource": "aws:sns",
                "Sns": serde_json::from_str::<Value>(&envelope_around(message)).unwrap(),
            })
        };
        let event = json!({
            "Records": [record(r#"{"eventType":"Open","mail":{"messageId":"m"}}"#), record("nope")]
        })
        .to_string();
        let results = parse_lambda_sns_event(&event).unwrap();

        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok());
        assert_eq!(results[1].as_ref().unwrap_err().reason_code(), "not_json");
        assert_eq!(parse_lambda_sns_event("[]").unwrap_err().reason_code(), "not_ses_feedback");
        assert_eq!(
            parse_lambda_sns_event(r#"{"Records":[{}]}"#).unwrap_err().reason_code(),
            "malformed"
        );
    }
}
