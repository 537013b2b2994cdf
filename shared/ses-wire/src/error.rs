//! Why a queue record could not be turned into something the consumer can act on.
//!
//! Messages name the layer and the field, never a value: bodies carry e-mail addresses, and these
//! errors end up in logs and in the quarantine reason attribute. This module depends on nothing
//! but `serde_json` (for the syntax-error source) and `thiserror`.

use std::fmt;

/// Which of the nested JSON documents a problem was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The SQS record body (an SNS envelope, or the SES JSON itself with raw delivery).
    SqsBody,
    /// The `Message` string inside an SNS envelope.
    SnsMessage,
    /// A Lambda event delivered by SNS directly (`Records[].Sns`).
    LambdaSnsEvent,
}

impl Layer {
    /// A stable snake_case name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SqsBody => "sqs_body",
            Self::SnsMessage => "sns_message",
            Self::LambdaSnsEvent => "lambda_sns_event",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SqsBody => "SQS message body",
            Self::SnsMessage => "SNS Message",
            Self::LambdaSnsEvent => "Lambda SNS event",
        })
    }
}

/// A record that is not usable feedback and is not setup chatter either.
///
/// None of these is worth retrying: the same bytes fail the same way. [`ParseError::reason_code`]
/// gives a short code for the quarantine reason attribute and for metrics.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The text is not JSON (or is truncated) where JSON is required.
    #[error("{layer} is not JSON")]
    NotJson {
        /// Where.
        layer: Layer,
        /// The syntax error. Only syntax and end-of-input errors are kept here: their messages
        /// name a position, never a value.
        #[source]
        source: serde_json::Error,
    },
    /// Valid JSON whose known fields have the wrong JSON type (e.g. `mail` is a string).
    ///
    /// The `serde_json` error is deliberately not kept: its message quotes the offending value,
    /// which may be an address.
    #[error("{layer} has a field of the wrong JSON type (line {line}, column {column})")]
    Malformed {
        /// Where.
        layer: Layer,
        /// 1-based line of the offending value.
        line: usize,
        /// 1-based column of the offending value.
        column: usize,
    },
    /// JSON that is neither an SNS envelope nor an SES notification or event (no `Type`, no
    /// `notificationType`/`eventType`), or not an object at all.
    #[error("{layer} is neither an SNS envelope nor an SES notification or event")]
    NotSesFeedback {
        /// Where.
        layer: Layer,
    },
    /// An SNS envelope whose `Type` is not `Notification`, `SubscriptionConfirmation` or
    /// `UnsubscribeConfirmation`.
    #[error("SNS envelope has a Type this consumer does not handle")]
    UnknownEnvelopeType,
    /// An SES receiving notification (`notificationType: "Received"`): inbound mail, not feedback
    /// about mail that was sent. It means a receipt rule publishes to the feedback topic.
    #[error("SES inbound receipt notification, not sending feedback")]
    InboundReceipt,
    /// A field without which the record cannot be acted on is absent, `null` or empty.
    #[error("{layer} lacks required field `{field}`")]
    MissingField {
        /// Where.
        layer: Layer,
        /// Dotted path of the field, e.g. `bounce.bounceType`.
        field: &'static str,
    },
    /// A timestamp the record cannot be acted on without does not parse.
    #[error("{layer} field `{field}` is not a timestamp this parser understands")]
    BadTimestamp {
        /// Where.
        layer: Layer,
        /// Dotted path of the field, e.g. `bounce.timestamp`.
        field: &'static str,
    },
}

impl ParseError {
    /// A short snake_case code for the quarantine reason attribute and for metrics.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::NotJson { .. } => "not_json",
            Self::Malformed { .. } => "malformed",
            Self::NotSesFeedback { .. } => "not_ses_feedback",
            Self::UnknownEnvelopeType => "unknown_envelope_type",
            Self::InboundReceipt => "inbound_receipt",
            Self::MissingField { .. } => "missing_field",
            Self::BadTimestamp { .. } => "bad_timestamp",
        }
    }

    /// The field a [`ParseError::MissingField`] or [`ParseError::BadTimestamp`] is about.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::MissingField { field, .. } | Self::BadTimestamp { field, .. } => Some(field),
            _ => None,
        }
    }

    /// Classifies a `serde_json` failure without letting a quoted value escape.
    pub(crate) fn from_json(layer: Layer, error: serde_json::Error) -> Self {
        use serde_json::error::Category;

        match error.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                Self::NotJson { layer, source: error }
            }
            Category::Data => Self::Malformed { layer, line: error.line(), column: error.column() },
        }
    }
}
