//! The SES notification / event JSON and its conversion into [`feedback_domain::Feedback`].
//!
//! Covers both mechanisms: identity notifications (`notificationType`) and configuration-set
//! event publishing (`eventType`, read first). Only the fields the domain uses are modelled;
//! everything else (headers, tags, open/click details, ...) is skipped by serde without being
//! materialised, and unknown keys or values never fail a parse. Depends on `serde`, `chrono` and
//! the domain crate; never on AWS SDK types.

use std::borrow::Cow;

use feedback_domain::{
    Bounce, BounceSubType, BounceType, BouncedRecipient, Complaint, ComplaintFeedbackType,
    Delivery, EventKind, Feedback, FeedbackEvent, FeedbackSource, MailContext,
};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::error::{Layer, ParseError};
use crate::time::parse_timestamp;
use crate::{Content, SetupMessage};

/// `notificationType` SES publishes once when an identity's notification topic is set.
const SUBSCRIPTION_SUCCEEDED: &str = "AmazonSnsSubscriptionSucceeded";

/// `notificationType` of SES receiving (inbound mail), which is not sending feedback.
const RECEIVED: &str = "Received";

/// `mail.messageId` of the probe SES sends while setting up notifications.
const SETUP_MESSAGE_ID: &str = "AMAZON_SES_SETUP_NOTIFICATION";

/// Top-level SES keys. Also embedded (field by field) in the SQS body document.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SesDocument<'a> {
    #[serde(borrow)]
    pub(crate) event_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) notification_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) mail: Option<WireMail<'a>>,
    #[serde(borrow)]
    pub(crate) bounce: Option<WireBounce<'a>>,
    #[serde(borrow)]
    pub(crate) complaint: Option<WireComplaint<'a>>,
    pub(crate) delivery: Option<WireDelivery<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireMail<'a> {
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    message_id: Option<String>,
    #[serde(borrow)]
    source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    source_arn: Option<Cow<'a, str>>,
    /// Counted, never read: recipients come from the per-type lists only.
    destination: Option<Vec<IgnoredAny>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireBounce<'a> {
    #[serde(borrow)]
    bounce_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    bounce_sub_type: Option<Cow<'a, str>>,
    bounced_recipients: Option<Vec<WireBouncedRecipient>>,
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    feedback_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireBouncedRecipient {
    email_address: Option<String>,
    action: Option<String>,
    status: Option<String>,
    diagnostic_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireComplaint<'a> {
    complained_recipients: Option<Vec<WireComplainedRecipient>>,
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    feedback_id: Option<String>,
    complaint_sub_type: Option<String>,
    #[serde(borrow)]
    complaint_feedback_type: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireComplainedRecipient {
    email_address: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireDelivery<'a> {
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    recipients: Option<Vec<String>>,
}

impl SesDocument<'_> {
    /// True when the document names an SES type, i.e. it is meant to be SES JSON.
    pub(crate) fn is_ses(&self) -> bool {
        self.event_type.is_some() || self.notification_type.is_some()
    }

    /// Converts the document; `layer` says where it was found, for error messages.
    ///
    /// Fails when no SES type is named, for inbound receipts, when `mail.messageId` is missing,
    /// and when a bounce, complaint, delivery or send lacks what acting on it needs.
    pub(crate) fn into_content(self, layer: Layer) -> Result<Content, ParseError> {
        let missing = |field: &'static str| ParseError::MissingField { layer, field };
        let (source, type_name) = match (&self.event_type, &self.notification_type) {
            (Some(name), _) => (FeedbackSource::EventPublishing, name.as_ref()),
            (None, Some(name)) => (FeedbackSource::Notification, name.as_ref()),
            (None, None) => return Err(ParseError::NotSesFeedback { layer }),
        };

        match type_name {
            SUBSCRIPTION_SUCCEEDED => {
                return Ok(Content::Setup(SetupMessage::NotificationSubscriptionSucceeded));
            }
            RECEIVED => return Err(ParseError::InboundReceipt),
            _ => {}
        }

        let mail = self.mail.ok_or_else(|| missing("mail"))?;
        let message_id = mail.message_id.filter(|id| !id.is_empty());
        let message_id = message_id.ok_or_else(|| missing("mail.messageId"))?;

        if message_id == SETUP_MESSAGE_ID {
            return Ok(Content::Setup(SetupMessage::SetupNotification));
        }

        let sent_at = mail.timestamp.as_deref().and_then(parse_timestamp);
        let event = match EventKind::from_wire(type_name) {
            EventKind::Bounce => FeedbackEvent::Bounce(convert_bounce(
                self.bounce.ok_or_else(|| missing("bounce"))?,
                layer,
            )?),
            EventKind::Complaint => FeedbackEvent::Complaint(convert_complaint(
                self.complaint.ok_or_else(|| missing("complaint"))?,
                layer,
            )?),
            EventKind::Delivery => FeedbackEvent::Delivery(convert_delivery(
                self.delivery.ok_or_else(|| missing("delivery"))?,
                layer,
            )?),
            EventKind::Send => {
                let at = required_timestamp(mail.timestamp.as_deref(), "mail.timestamp", layer)?;
                FeedbackEvent::Send { at }
            }
            kind => FeedbackEvent::Other { kind },
        };

        Ok(Content::Feedback(Box::new(Feedback {
            source,
            mail: MailContext {
                message_id,
                sent_at,
                identity: sending_identity(mail.source_arn.as_deref(), mail.source.as_deref()),
                destination_count: mail.destination.map_or(0, |list| list.len()),
            },
            event,
        })))
    }
}

fn required_timestamp(
    text: Option<&str>,
    field: &'static str,
    layer: Layer,
) -> Result<chrono::DateTime<chrono::Utc>, ParseError> {
    let text = text.ok_or(ParseError::MissingField { layer, field })?;
    parse_timestamp(text).ok_or(ParseError::BadTimestamp { layer, field })
}

fn convert_bounce(wire: WireBounce<'_>, layer: Layer) -> Result<Bounce, ParseError> {
    let missing = |field: &'static str| ParseError::MissingField { layer, field };
    let bounce_type = wire.bounce_type.ok_or_else(|| missing("bounce.bounceType"))?;
    let sub_type = wire.bounce_sub_type.ok_or_else(|| missing("bounce.bounceSubType"))?;
    let recipients = wire.bounced_recipients.ok_or_else(|| missing("bounce.bouncedRecipients"))?;
    let recipients = recipients
        .into_iter()
        .map(|recipient| {
            Ok(BouncedRecipient {
                address: recipient
                    .email_address
                    .ok_or_else(|| missing("bounce.bouncedRecipients[].emailAddress"))?,
                action: recipient.action,
                status: recipient.status,
                diagnostic_code: recipient.diagnostic_code,
            })
        })
        .collect::<Result<Vec<_>, ParseError>>()?;

    Ok(Bounce {
        bounce_type: BounceType::from_wire(&bounce_type),
        sub_type: BounceSubType::from_wire(&sub_type),
        feedback_id: wire.feedback_id,
        timestamp: required_timestamp(wire.timestamp.as_deref(), "bounce.timestamp", layer)?,
        recipients,
    })
}

fn convert_complaint(wire: WireComplaint<'_>, layer: Layer) -> Result<Complaint, ParseError> {
    let missing = |field: &'static str| ParseError::MissingField { layer, field };
    let recipients =
        wire.complained_recipients.ok_or_else(|| missing("complaint.complainedRecipients"))?;
    let recipients = recipients
        .into_iter()
        .map(|recipient| {
            recipient
                .email_address
                .ok_or_else(|| missing("complaint.complainedRecipients[].emailAddress"))
        })
        .collect::<Result<Vec<_>, ParseError>>()?;

    Ok(Complaint {
        feedback_id: wire.feedback_id,
        timestamp: required_timestamp(wire.timestamp.as_deref(), "complaint.timestamp", layer)?,
        sub_type: wire.complaint_sub_type,
        feedback_type: wire
            .complaint_feedback_type
            .as_deref()
            .map(ComplaintFeedbackType::from_wire),
        recipients,
    })
}

fn convert_delivery(wire: WireDelivery<'_>, layer: Layer) -> Result<Delivery, ParseError> {
    Ok(Delivery {
        timestamp: required_timestamp(wire.timestamp.as_deref(), "delivery.timestamp", layer)?,
        recipients: wire
            .recipients
            .ok_or(ParseError::MissingField { layer, field: "delivery.recipients" })?,
    })
}

/// The sending identity of a message, lowercased.
///
/// The identity named in `mail.sourceArn` (the text after `:identity/`, a domain or an address)
/// wins, because with sending authorisation it is the owner's identity. Otherwise the domain of
/// `mail.source`, which may carry a display name or an RFC 2047 encoded word before `<addr>`.
/// Returns `None` when neither yields a non-empty value.
pub fn sending_identity(source_arn: Option<&str>, source: Option<&str>) -> Option<String> {
    let from_arn = source_arn
        .and_then(|arn| arn.split_once(":identity/"))
        .map(|(_, identity)| identity.trim())
        .filter(|identity| !identity.is_empty());

    from_arn.or_else(|| source.and_then(source_domain)).map(str::to_lowercase)
}

/// The domain of an envelope sender such as `a@b`, `Name <a@b>` or `=?utf-8?b?...?= <a@b>`.
fn source_domain(source: &str) -> Option<&str> {
    let address = match source.rfind('<') {
        Some(open) => source[open + 1..].split('>').next().unwrap_or_default(),
        None => source,
    };
    let (_, domain) = address.trim().rsplit_once('@')?;
    let domain = domain.trim();

    (!domain.is_empty()).then_some(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_comes_from_the_source_arn_before_the_source_address() {
        let arn = "arn:aws:ses:us-east-1:888888888888:identity/Example.COM";

        assert_eq!(
            sending_identity(Some(arn), Some("john@other.org")).as_deref(),
            Some("example.com")
        );
    }

    #[test]
    fn an_address_identity_in_the_source_arn_is_kept_whole() {
        let arn = "arn:aws:ses:us-east-1:123456789012:identity/Sender@Example.com";

        assert_eq!(sending_identity(Some(arn), None).as_deref(), Some("sender@example.com"));
    }

    #[test]
    fn without_an_arn_the_identity_is_the_domain_of_every_source_spelling() {
        let cases = [
            ("john@Example.com", "example.com"),
            ("Sender Name <sender@example.com>", "example.com"),
            ("\"Doe, John\" <john@mail.example.org>", "mail.example.org"),
            (
                "=?utf-8?b?Imxjcm91Y2hAbW96aWxsYS5jb20gW3ZpYSBSZWxheV0i?= <relay@unfck.email>",
                "unfck.email",
            ),
            ("\"a <b@c.d>\" <real@sender.example>", "sender.example"),
        ];

        for (source, expected) in cases {
            assert_eq!(sending_identity(None, Some(source)).as_deref(), Some(expected), "{source}");
        }
    }

    #[test]
    fn a_source_without_a_domain_and_an_arn_without_identity_give_no_identity() {
        assert_eq!(
            sending_identity(Some("arn:aws:ses:us-east-1:1:identity/"), Some("nobody")),
            None
        );
        assert_eq!(sending_identity(Some("not-an-arn"), Some("Name <user@>")), None);
        assert_eq!(sending_identity(None, None), None);
    }
}
