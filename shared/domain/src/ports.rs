//! Port traits: what the handlers need from the outside world, named by role.
//!
//! Adapters (DynamoDB, Mailcow, SESv2) implement them in their own crates; tests use in-memory
//! implementations. Errors are the adapter's own types and say whether a retry makes sense.

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};

use crate::address::SuppressionTarget;
use crate::record::AddressRecord;

/// An error that knows whether trying again later can succeed.
pub trait Retryable: std::error::Error + Send + Sync + 'static {
    /// True for throttling, timeouts, connection failures and 5xx answers.
    fn is_retryable(&self) -> bool;
}

/// One applied event in an address's history; also the idempotency marker for that event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Unique per (feedback, address): the feedback id, or a fallback built from the SES message
    /// id and event type. Writing the same key twice is a no-op.
    pub idempotency_key: String,
    /// `bounce`, `complaint`, `delivery`, `send`, `manual`, `release`, ...
    pub event_type: String,
    /// Bounce type/subtype or complaint feedback type, when there is one.
    pub sub_type: Option<String>,
    /// Event time.
    pub at: DateTime<Utc>,
    /// SES `feedbackId`.
    pub feedback_id: Option<String>,
    /// SES `mail.messageId`.
    pub ses_message_id: Option<String>,
    /// What the policy did: `suppressed`, `counted`, `recorded`, `ignored`, ...
    pub outcome: String,
    /// DSN diagnostic code, for bounces.
    pub diagnostic_code: Option<String>,
    /// When the history entry may be deleted (retention), if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Which daily counter an event increments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CounterField {
    /// Recipients SES accepted (`Send` events).
    Sends,
    /// Delivered recipients.
    Deliveries,
    /// Hard-bounced recipients.
    HardBounces,
    /// Soft-bounced recipients.
    SoftBounces,
    /// Complained recipients.
    Complaints,
}

impl CounterField {
    /// The attribute name used in storage and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sends => "sends",
            Self::Deliveries => "deliveries",
            Self::HardBounces => "hard_bounces",
            Self::SoftBounces => "soft_bounces",
            Self::Complaints => "complaints",
        }
    }
}

/// Increment of one daily per-identity counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterIncrement {
    /// Sending identity (domain or address identity), `unknown` when SES did not say.
    pub identity: String,
    /// UTC day of the event.
    pub day: NaiveDate,
    /// Which counter.
    pub field: CounterField,
    /// By how much.
    pub by: u32,
}

/// Everything one event changes, written atomically and at most once.
#[derive(Debug, Clone, PartialEq)]
pub struct EventWrite {
    /// Where the history entry and the record live.
    pub scope: WriteScope,
    /// The history entry, conditioned on its idempotency key not existing yet.
    pub history: HistoryEntry,
    /// A statistics counter to increment with it.
    pub counter: Option<CounterIncrement>,
}

/// What an [`EventWrite`] is about.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteScope {
    /// An address: the record is replaced only if its stored version is still `expected_version`
    /// (0 = the record must not exist yet).
    Record {
        /// The new record (its `version` is the one to store).
        record: Box<AddressRecord>,
        /// The version read before deciding.
        expected_version: u64,
    },
    /// An event with no address (a `Send`): only the marker and the counter.
    Message {
        /// SES message id.
        ses_message_id: String,
    },
}

/// Result of [`SuppressionStore::commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Written.
    Applied,
    /// The idempotency key existed already: nothing changed.
    Duplicate,
    /// The record changed since it was read: read again, decide again, commit again.
    Conflict,
}

/// The suppression table as the ingest path sees it.
pub trait SuppressionStore: Send + Sync {
    /// The adapter's error.
    type Error: Retryable;

    /// The stored record for a target, if any.
    fn load(
        &self,
        target: &SuppressionTarget,
    ) -> impl Future<Output = Result<Option<AddressRecord>, Self::Error>> + Send;

    /// Writes an event atomically: history entry (idempotency), record (optimistic lock) and
    /// counter together, or nothing.
    fn commit(
        &self,
        write: &EventWrite,
    ) -> impl Future<Output = Result<CommitOutcome, Self::Error>> + Send;
}
