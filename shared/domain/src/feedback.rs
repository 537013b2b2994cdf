//! What one SES notification or event says, independent of how it was wrapped on the way.
//!
//! Recipient addresses are kept as SES sent them (raw strings): normalising them is the policy's
//! job, so that one bad recipient never hides the others. Unknown types and subtypes are values.

use chrono::{DateTime, Utc};

/// Which SES mechanism produced the feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackSource {
    /// Identity feedback notification (`notificationType`).
    Notification,
    /// Configuration-set event publishing (`eventType`).
    EventPublishing,
}

/// The `mail` object, reduced to what the policy and the statistics use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailContext {
    /// SES message id (`mail.messageId`), the join key to the send log.
    pub message_id: String,
    /// When the message was sent (`mail.timestamp`), if it parsed.
    pub sent_at: Option<DateTime<Utc>>,
    /// Sending identity: the identity in `mail.sourceArn`, else the domain of `mail.source`.
    pub identity: Option<String>,
    /// Number of recipients of the original message (`mail.destination`), used for send counts.
    pub destination_count: usize,
}

/// One parsed piece of SES feedback.
#[derive(Debug, Clone, PartialEq)]
pub struct Feedback {
    /// Notification or event publishing.
    pub source: FeedbackSource,
    /// The original message.
    pub mail: MailContext,
    /// What happened.
    pub event: FeedbackEvent,
}

/// What happened to the message.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedbackEvent {
    /// A bounce.
    Bounce(Bounce),
    /// A complaint.
    Complaint(Complaint),
    /// A delivery.
    Delivery(Delivery),
    /// SES accepted the send call (event publishing only); counted for rates.
    Send {
        /// When SES accepted the message (the `mail.timestamp`).
        at: DateTime<Utc>,
    },
    /// A type the system recognises but does not act on (Reject, DeliveryDelay, Open, Click,
    /// Rendering Failure, Subscription) or one it does not know.
    Other {
        /// The type.
        kind: EventKind,
    },
}

impl FeedbackEvent {
    /// The event's type, for counting and logging.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Bounce(_) => EventKind::Bounce,
            Self::Complaint(_) => EventKind::Complaint,
            Self::Delivery(_) => EventKind::Delivery,
            Self::Send { .. } => EventKind::Send,
            Self::Other { kind } => kind.clone(),
        }
    }
}

/// Every SES notification and event type, plus what SES may add later.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `Bounce`.
    Bounce,
    /// `Complaint`.
    Complaint,
    /// `Delivery`.
    Delivery,
    /// `Send`.
    Send,
    /// `Reject`.
    Reject,
    /// `DeliveryDelay`.
    DeliveryDelay,
    /// `Open`.
    Open,
    /// `Click`.
    Click,
    /// `Rendering Failure` (also spelled `RenderingFailure`).
    RenderingFailure,
    /// `Subscription`.
    Subscription,
    /// Anything else, kept verbatim.
    Other(String),
}

impl EventKind {
    /// Maps an SES type name; both spellings of Rendering Failure are accepted.
    pub fn from_wire(name: &str) -> Self {
        match name {
            "Bounce" => Self::Bounce,
            "Complaint" => Self::Complaint,
            "Delivery" => Self::Delivery,
            "Send" => Self::Send,
            "Reject" => Self::Reject,
            "DeliveryDelay" => Self::DeliveryDelay,
            "Open" => Self::Open,
            "Click" => Self::Click,
            "Rendering Failure" | "RenderingFailure" => Self::RenderingFailure,
            "Subscription" => Self::Subscription,
            other => Self::Other(other.to_owned()),
        }
    }

    /// A stable lowercase name for logs and metrics.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Bounce => "bounce",
            Self::Complaint => "complaint",
            Self::Delivery => "delivery",
            Self::Send => "send",
            Self::Reject => "reject",
            Self::DeliveryDelay => "delivery_delay",
            Self::Open => "open",
            Self::Click => "click",
            Self::RenderingFailure => "rendering_failure",
            Self::Subscription => "subscription",
            Self::Other(_) => "other",
        }
    }
}

/// `bounce.bounceType`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BounceType {
    /// Hard bounce.
    Permanent,
    /// Soft bounce that SES gave up retrying.
    Transient,
    /// Not enough information to classify.
    Undetermined,
    /// A type SES added later.
    Other(String),
}

impl BounceType {
    /// Maps the SES value.
    pub fn from_wire(name: &str) -> Self {
        match name {
            "Permanent" => Self::Permanent,
            "Transient" => Self::Transient,
            "Undetermined" => Self::Undetermined,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The SES spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Permanent => "Permanent",
            Self::Transient => "Transient",
            Self::Undetermined => "Undetermined",
            Self::Other(name) => name,
        }
    }
}

/// `bounce.bounceSubType`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BounceSubType {
    /// `General`.
    General,
    /// `NoEmail`.
    NoEmail,
    /// `Suppressed` (SES global suppression list).
    Suppressed,
    /// `OnAccountSuppressionList`.
    OnAccountSuppressionList,
    /// `MailboxFull`.
    MailboxFull,
    /// `MessageTooLarge`.
    MessageTooLarge,
    /// `ContentRejected`.
    ContentRejected,
    /// `AttachmentRejected`.
    AttachmentRejected,
    /// `Undetermined`.
    Undetermined,
    /// Any other subtype (e.g. `CustomTimeoutExceeded`, `OnTenantSuppressionList`).
    Other(String),
}

impl BounceSubType {
    /// Maps the SES value.
    pub fn from_wire(name: &str) -> Self {
        match name {
            "General" => Self::General,
            "NoEmail" => Self::NoEmail,
            "Suppressed" => Self::Suppressed,
            "OnAccountSuppressionList" => Self::OnAccountSuppressionList,
            "MailboxFull" => Self::MailboxFull,
            "MessageTooLarge" => Self::MessageTooLarge,
            "ContentRejected" => Self::ContentRejected,
            "AttachmentRejected" => Self::AttachmentRejected,
            "Undetermined" => Self::Undetermined,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The SES spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::General => "General",
            Self::NoEmail => "NoEmail",
            Self::Suppressed => "Suppressed",
            Self::OnAccountSuppressionList => "OnAccountSuppressionList",
            Self::MailboxFull => "MailboxFull",
            Self::MessageTooLarge => "MessageTooLarge",
            Self::ContentRejected => "ContentRejected",
            Self::AttachmentRejected => "AttachmentRejected",
            Self::Undetermined => "Undetermined",
            Self::Other(name) => name,
        }
    }
}

/// One entry of `bounce.bouncedRecipients`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BouncedRecipient {
    /// `emailAddress` as SES sent it (personal data).
    pub address: String,
    /// DSN `Action` (`failed`, `delayed`, ...), if a DSN was attached.
    pub action: Option<String>,
    /// DSN enhanced status code (`5.1.1`), if present.
    pub status: Option<String>,
    /// DSN `Diagnostic-Code`, if present.
    pub diagnostic_code: Option<String>,
}

/// The `bounce` object.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounce {
    /// Hard, soft or undetermined.
    pub bounce_type: BounceType,
    /// The subtype.
    pub sub_type: BounceSubType,
    /// `feedbackId`, unique per bounce.
    pub feedback_id: Option<String>,
    /// When the ISP sent the bounce.
    pub timestamp: DateTime<Utc>,
    /// The recipients this bounce is about.
    pub recipients: Vec<BouncedRecipient>,
}

/// ARF `Feedback-Type` of a complaint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ComplaintFeedbackType {
    /// `abuse`.
    Abuse,
    /// `auth-failure`.
    AuthFailure,
    /// `fraud`.
    Fraud,
    /// `not-spam`: the reporter says the message is not spam.
    NotSpam,
    /// `other`.
    Other,
    /// `virus`.
    Virus,
    /// A value outside the IANA registry, kept verbatim.
    Unknown(String),
}

impl ComplaintFeedbackType {
    /// Maps the SES value.
    pub fn from_wire(name: &str) -> Self {
        match name {
            "abuse" => Self::Abuse,
            "auth-failure" => Self::AuthFailure,
            "fraud" => Self::Fraud,
            "not-spam" => Self::NotSpam,
            "other" => Self::Other,
            "virus" => Self::Virus,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// The ARF spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Abuse => "abuse",
            Self::AuthFailure => "auth-failure",
            Self::Fraud => "fraud",
            Self::NotSpam => "not-spam",
            Self::Other => "other",
            Self::Virus => "virus",
            Self::Unknown(name) => name,
        }
    }
}

/// The `complaint` object.
#[derive(Debug, Clone, PartialEq)]
pub struct Complaint {
    /// `feedbackId`.
    pub feedback_id: Option<String>,
    /// When the ISP sent the report.
    pub timestamp: DateTime<Utc>,
    /// `complaintSubType` (`null` or `OnAccountSuppressionList`).
    pub sub_type: Option<String>,
    /// `complaintFeedbackType`, only with a feedback report.
    pub feedback_type: Option<ComplaintFeedbackType>,
    /// `complainedRecipients[].emailAddress` as SES sent them (personal data).
    pub recipients: Vec<String>,
}

/// The `delivery` object.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// When the message was handed to the remote MTA.
    pub timestamp: DateTime<Utc>,
    /// `delivery.recipients` (personal data).
    pub recipients: Vec<String>,
}
