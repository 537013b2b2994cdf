//! The suppression record kept per address (or per `*@domain`).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::address::SuppressionTarget;

/// Why an address is suppressed. The string forms are an interface (CLI, JSON, table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SuppressionReason {
    /// A permanent bounce.
    HardBounce,
    /// Too many soft bounces within the window; expires.
    SoftBounce,
    /// A spam complaint.
    Complaint,
    /// Added by an operator.
    Manual,
    /// Imported from the SES account-level suppression list.
    SesAccountList,
}

impl SuppressionReason {
    /// All reasons, in a fixed order.
    pub const ALL: [Self; 5] =
        [Self::HardBounce, Self::SoftBounce, Self::Complaint, Self::Manual, Self::SesAccountList];

    /// `hard_bounce`, `soft_bounce`, `complaint`, `manual` or `ses_account_list`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HardBounce => "hard_bounce",
            Self::SoftBounce => "soft_bounce",
            Self::Complaint => "complaint",
            Self::Manual => "manual",
            Self::SesAccountList => "ses_account_list",
        }
    }

    /// Whether a suppression for this reason ends by itself.
    pub fn expires(self) -> bool {
        matches!(self, Self::SoftBounce)
    }
}

impl fmt::Display for SuppressionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown reason string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown reason {0:?}: expected hard_bounce, soft_bounce, complaint, manual or ses_account_list"
)]
pub struct UnknownReason(pub String);

impl FromStr for SuppressionReason {
    type Err = UnknownReason;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| UnknownReason(s.to_owned()))
    }
}

/// Whether a suppression is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuppressionState {
    /// Mail to the address is blocked (until `expires_at`, if set).
    Active,
    /// An operator lifted the suppression; the history is kept.
    Released {
        /// When.
        at: DateTime<Utc>,
        /// Who (operator name, or the tool's user).
        by: String,
        /// Why, in the operator's words.
        why: String,
    },
}

/// Where a suppression decision came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Provenance {
    /// SES `feedbackId` of the event that decided.
    pub feedback_id: Option<String>,
    /// SES `mail.messageId`.
    pub ses_message_id: Option<String>,
    /// `bounceType`, for bounces.
    pub bounce_type: Option<String>,
    /// `bounceSubType`, for bounces.
    pub bounce_sub_type: Option<String>,
    /// DSN diagnostic code, for bounces.
    pub diagnostic_code: Option<String>,
    /// What decided: `policy` for feedback, `cli` for an operator, `ses_import` for imports.
    pub source: String,
    /// Operator's note, for manual entries.
    pub note: Option<String>,
}

/// A suppression, active or released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    /// Why.
    pub reason: SuppressionReason,
    /// When the suppression started (event time).
    pub since: DateTime<Utc>,
    /// When it ends by itself, for soft bounces and timed manual entries.
    pub expires_at: Option<DateTime<Utc>>,
    /// Active or released.
    pub state: SuppressionState,
    /// What decided it.
    pub provenance: Provenance,
}

impl Suppression {
    /// Whether the suppression blocks mail at `now`.
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.state == SuppressionState::Active && self.expires_at.is_none_or(|end| end > now)
    }
}

/// Everything kept about one address (or one `*@domain`), apart from its event history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRecord {
    /// The address or domain.
    pub target: SuppressionTarget,
    /// The current or last suppression, if there ever was one.
    pub suppression: Option<Suppression>,
    /// First event seen for the address.
    pub first_seen: DateTime<Utc>,
    /// Latest event seen for the address (event time).
    pub last_seen: DateTime<Utc>,
    /// Counted soft bounces in the current window.
    pub soft_bounce_count: u32,
    /// Start of the current soft-bounce window.
    pub soft_window_start: Option<DateTime<Utc>>,
    /// Time of the latest counted soft bounce.
    pub last_soft_bounce_at: Option<DateTime<Utc>>,
    /// Latest delivery (event time).
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// SES message ids recently delivered to the address, newest last (bounded), so that an
    /// auto-reply bounce for a delivered message is not counted.
    pub recent_deliveries: Vec<String>,
    /// Optimistic-lock version, incremented by every write; 0 for a record not yet stored.
    pub version: u64,
}

impl AddressRecord {
    /// A record for a target seen for the first time at `at`.
    pub fn new(target: SuppressionTarget, at: DateTime<Utc>) -> Self {
        Self {
            target,
            suppression: None,
            first_seen: at,
            last_seen: at,
            soft_bounce_count: 0,
            soft_window_start: None,
            last_soft_bounce_at: None,
            last_delivery_at: None,
            recent_deliveries: Vec::new(),
            version: 0,
        }
    }

    /// The suppression if it blocks mail at `now`.
    pub fn active_suppression(&self, now: DateTime<Utc>) -> Option<&Suppression> {
        self.suppression.as_ref().filter(|s| s.is_active_at(now))
    }

    /// `active`, `expired`, `released` or `none`, as the CLI and JSON show it.
    pub fn state_name(&self, now: DateTime<Utc>) -> &'static str {
        match &self.suppression {
            None => "none",
            Some(s) if matches!(s.state, SuppressionState::Released { .. }) => "released",
            Some(s) if s.is_active_at(now) => "active",
            Some(_) => "expired",
        }
    }
}
