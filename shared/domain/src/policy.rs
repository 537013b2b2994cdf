//! The suppression policy: what one piece of feedback does to one address. Pure: no I/O, no
//! clock. Every window and expiry is measured from the event's own timestamp, so a backlog
//! replayed days later decides exactly as it would have on time.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};

use crate::address::{AddressError, EmailAddress, SuppressionTarget};
use crate::feedback::{BounceSubType, BounceType, ComplaintFeedbackType, Feedback, FeedbackEvent};
use crate::ports::{CounterField, HistoryEntry};
use crate::record::{AddressRecord, Provenance, Suppression, SuppressionReason, SuppressionState};

/// How many recently delivered message ids are remembered per address.
pub const RECENT_DELIVERIES: usize = 10;

/// Addresses and `*@domain` patterns that are recorded but never suppressed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NeverSuppress {
    addresses: HashSet<String>,
    domains: HashSet<String>,
}

impl NeverSuppress {
    /// Parses a comma-separated list of addresses and `*@domain` patterns (`NEVER_SUPPRESS`).
    ///
    /// Fails on the first entry that is neither; the error says which position, not the value.
    pub fn parse(list: &str) -> Result<Self, (usize, AddressError)> {
        let mut out = Self::default();
        let entries = list.split(',').map(str::trim).filter(|e| !e.is_empty());
        for (index, entry) in entries.enumerate() {
            match SuppressionTarget::parse(entry).map_err(|e| (index + 1, e))? {
                SuppressionTarget::Address(a) => out.addresses.insert(a.as_str().to_owned()),
                SuppressionTarget::Domain(d) => out.domains.insert(d.as_str().to_owned()),
            };
        }
        Ok(out)
    }

    /// Whether the address is protected.
    pub fn matches(&self, address: &EmailAddress) -> bool {
        self.addresses.contains(address.as_str()) || self.domains.contains(address.domain())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.addresses.len() + self.domains.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The policy's settings. [`Policy::default`] holds the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Soft bounces within the window that suppress (`SOFT_BOUNCE_THRESHOLD`, 3).
    pub soft_bounce_threshold: u32,
    /// Length of the soft-bounce window (`SOFT_BOUNCE_WINDOW_DAYS`, 7).
    pub soft_bounce_window: Duration,
    /// How long a soft-bounce suppression lasts (`SOFT_BOUNCE_SUPPRESSION_DAYS`, 14).
    pub soft_bounce_suppression: Duration,
    /// Never suppressed (`NEVER_SUPPRESS`).
    pub never_suppress: NeverSuppress,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            soft_bounce_threshold: 3,
            soft_bounce_window: Duration::days(7),
            soft_bounce_suppression: Duration::days(14),
            never_suppress: NeverSuppress::default(),
        }
    }
}

/// How a bounce counts for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceClass {
    /// The address is bad: suppress.
    Hard,
    /// The address may recover: count toward the soft-bounce threshold.
    Soft,
    /// The message was refused, not the address (too large, content, attachment): record only.
    Content,
}

impl BounceClass {
    /// `hard`, `soft` or `content`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hard => "hard",
            Self::Soft => "soft",
            Self::Content => "content",
        }
    }
}

/// Classifies a bounce for one recipient from the bounce type and the recipient's own DSN data:
/// a recipient of a Permanent bounce whose action is `delayed` or whose status is 4.x.x is soft.
pub fn classify_bounce(
    bounce_type: &BounceType,
    sub_type: &BounceSubType,
    action: Option<&str>,
    status: Option<&str>,
) -> BounceClass {
    let content = matches!(
        sub_type,
        BounceSubType::MessageTooLarge
            | BounceSubType::ContentRejected
            | BounceSubType::AttachmentRejected
    );
    match bounce_type {
        BounceType::Permanent => {
            let delayed = action.is_some_and(|a| a.eq_ignore_ascii_case("delayed"));
            let temporary = status.is_some_and(|s| s.trim_start().starts_with('4'));
            let failed = action.is_none_or(|a| a.eq_ignore_ascii_case("failed"));
            if delayed || temporary || !failed { BounceClass::Soft } else { BounceClass::Hard }
        }
        _ if content => BounceClass::Content,
        BounceType::Transient | BounceType::Undetermined | BounceType::Other(_) => {
            BounceClass::Soft
        }
    }
}

/// What happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientEventKind {
    /// A bounce, with the recipient's DSN data.
    Bounce {
        /// `bounceType`.
        bounce_type: BounceType,
        /// `bounceSubType`.
        sub_type: BounceSubType,
        /// DSN action for this recipient.
        action: Option<String>,
        /// DSN status for this recipient.
        status: Option<String>,
        /// DSN diagnostic code for this recipient.
        diagnostic_code: Option<String>,
    },
    /// A complaint.
    Complaint {
        /// ARF feedback type, if the report had one.
        feedback_type: Option<ComplaintFeedbackType>,
        /// `complaintSubType`.
        sub_type: Option<String>,
    },
    /// A delivery.
    Delivery,
}

/// One piece of feedback as it concerns one normalised recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientEvent {
    /// The recipient.
    pub address: EmailAddress,
    /// What happened.
    pub kind: RecipientEventKind,
    /// Event time (bounce, complaint or delivery timestamp).
    pub at: DateTime<Utc>,
    /// SES `feedbackId`, for bounces and complaints.
    pub feedback_id: Option<String>,
    /// SES `mail.messageId`.
    pub ses_message_id: String,
    /// Sending identity, for the daily counters.
    pub identity: Option<String>,
}

impl RecipientEvent {
    /// The key under which this event is applied at most once for its address. Bounces and
    /// complaints use the SES feedback id (the same when SES reports one bounce both as a
    /// notification and as an event); deliveries, and feedback without an id, fall back to the
    /// SES message id.
    pub fn idempotency_key(&self) -> String {
        match (&self.kind, &self.feedback_id) {
            (RecipientEventKind::Delivery, _) => format!("delivery:{}", self.ses_message_id),
            (_, Some(id)) => format!("feedback:{id}"),
            (kind, None) => format!(
                "{}:{}:{}",
                kind_name(kind),
                self.ses_message_id,
                self.at.timestamp_millis()
            ),
        }
    }

    /// The event type as history and logs name it.
    pub fn type_name(&self) -> &'static str {
        kind_name(&self.kind)
    }

    /// Subtype shown in the history: `Permanent/General`, a feedback type, or none.
    pub fn sub_type_name(&self) -> Option<String> {
        match &self.kind {
            RecipientEventKind::Bounce { bounce_type, sub_type, .. } => {
                Some(format!("{}/{}", bounce_type.as_str(), sub_type.as_str()))
            }
            RecipientEventKind::Complaint { feedback_type, sub_type } => {
                feedback_type.as_ref().map(|t| t.as_str().to_owned()).or_else(|| sub_type.clone())
            }
            RecipientEventKind::Delivery => None,
        }
    }

    /// The daily counter this event increments, if any.
    pub fn counter_field(&self) -> Option<CounterField> {
        match &self.kind {
            RecipientEventKind::Delivery => Some(CounterField::Deliveries),
            RecipientEventKind::Complaint {
                feedback_type: Some(ComplaintFeedbackType::NotSpam),
                ..
            } => None,
            RecipientEventKind::Complaint { .. } => Some(CounterField::Complaints),
            RecipientEventKind::Bounce { bounce_type, sub_type, action, status, .. } => {
                match classify_bounce(bounce_type, sub_type, action.as_deref(), status.as_deref()) {
                    BounceClass::Hard => Some(CounterField::HardBounces),
                    BounceClass::Soft | BounceClass::Content => Some(CounterField::SoftBounces),
                }
            }
        }
    }

    /// The history entry recording this event with its decision.
    pub fn history_entry(
        &self,
        decision: &Decision,
        expires_at: Option<DateTime<Utc>>,
    ) -> HistoryEntry {
        let diagnostic_code = match &self.kind {
            RecipientEventKind::Bounce { diagnostic_code, .. } => diagnostic_code.clone(),
            _ => None,
        };
        HistoryEntry {
            idempotency_key: self.idempotency_key(),
            event_type: self.type_name().to_owned(),
            sub_type: self.sub_type_name(),
            at: self.at,
            feedback_id: self.feedback_id.clone(),
            ses_message_id: Some(self.ses_message_id.clone()),
            outcome: decision.outcome().to_owned(),
            diagnostic_code,
            expires_at,
        }
    }
}

fn kind_name(kind: &RecipientEventKind) -> &'static str {
    match kind {
        RecipientEventKind::Bounce { .. } => "bounce",
        RecipientEventKind::Complaint { .. } => "complaint",
        RecipientEventKind::Delivery => "delivery",
    }
}

/// The recipients of one piece of feedback, normalised, plus the ones that were not a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecipientEvents {
    /// One event per distinct valid recipient, in SES order.
    pub events: Vec<RecipientEvent>,
    /// Recipients that failed normalisation (the raw value is not kept).
    pub invalid: Vec<AddressError>,
}

/// Splits feedback into per-recipient events. Recipients come only from the bounced, complained
/// or delivered lists, never from `mail.destination`. A recipient that is not one mailbox is
/// reported in `invalid` and the others are still returned. Event types without recipients
/// (Send, Open, ...) give no events.
pub fn recipient_events(feedback: &Feedback) -> RecipientEvents {
    let mut out = RecipientEvents::default();
    let mail = &feedback.mail;
    let mut push = |raw: &str, kind: RecipientEventKind, at, feedback_id: &Option<String>| {
        match EmailAddress::parse(raw) {
            Ok(address) if out.events.iter().any(|e| e.address == address) => {}
            Ok(address) => out.events.push(RecipientEvent {
                address,
                kind,
                at,
                feedback_id: feedback_id.clone(),
                ses_message_id: mail.message_id.clone(),
                identity: mail.identity.clone(),
            }),
            Err(error) => out.invalid.push(error),
        }
    };
    match &feedback.event {
        FeedbackEvent::Bounce(bounce) => {
            for r in &bounce.recipients {
                let kind = RecipientEventKind::Bounce {
                    bounce_type: bounce.bounce_type.clone(),
                    sub_type: bounce.sub_type.clone(),
                    action: r.action.clone(),
                    status: r.status.clone(),
                    diagnostic_code: r.diagnostic_code.clone(),
                };
                push(&r.address, kind, bounce.timestamp, &bounce.feedback_id);
            }
        }
        FeedbackEvent::Complaint(complaint) => {
            for raw in &complaint.recipients {
                let kind = RecipientEventKind::Complaint {
                    feedback_type: complaint.feedback_type.clone(),
                    sub_type: complaint.sub_type.clone(),
                };
                push(raw, kind, complaint.timestamp, &complaint.feedback_id);
            }
        }
        FeedbackEvent::Delivery(delivery) => {
            for raw in &delivery.recipients {
                push(raw, RecipientEventKind::Delivery, delivery.timestamp, &None);
            }
        }
        FeedbackEvent::Send { .. } | FeedbackEvent::Other { .. } => {}
    }
    out
}

/// What the policy decided for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A new suppression, or a stronger one replacing an expiring one.
    Suppressed {
        /// Why.
        reason: SuppressionReason,
        /// When it ends by itself.
        expires_at: Option<DateTime<Utc>>,
    },
    /// The address was already suppressed; the event is recorded and nothing is downgraded.
    AlreadySuppressed {
        /// The reason in force.
        reason: SuppressionReason,
    },
    /// A soft bounce counted toward the threshold.
    SoftBounceCounted {
        /// Count in the current window.
        count: u32,
    },
    /// Recorded without suppressing.
    Recorded {
        /// Why not: `delivery`, `not_spam`, `content_bounce`, `auto_reply`, `never_suppress`,
        /// `before_release`, `before_delivery`, `outside_window`.
        why: &'static str,
    },
}

impl Decision {
    /// One word for logs, metrics and the history: `suppressed`, `already_suppressed`,
    /// `counted` or `recorded`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Suppressed { .. } => "suppressed",
            Self::AlreadySuppressed { .. } => "already_suppressed",
            Self::SoftBounceCounted { .. } => "counted",
            Self::Recorded { .. } => "recorded",
        }
    }
}

/// Applies one recipient event to the stored record (or to a fresh one) and returns the decision
/// and the record to store. The returned record's version is one above the prior's.
pub fn decide(
    prior: Option<&AddressRecord>,
    event: &RecipientEvent,
    policy: &Policy,
) -> (Decision, AddressRecord) {
    let at = event.at;
    let mut record = prior.cloned().unwrap_or_else(|| {
        AddressRecord::new(SuppressionTarget::Address(event.address.clone()), at)
    });
    record.version = prior.map_or(0, |p| p.version) + 1;
    record.first_seen = record.first_seen.min(at);
    record.last_seen = record.last_seen.max(at);

    let decision = match &event.kind {
        RecipientEventKind::Delivery => {
            record_delivery(&mut record, event);
            Decision::Recorded { why: "delivery" }
        }
        RecipientEventKind::Complaint {
            feedback_type: Some(ComplaintFeedbackType::NotSpam),
            ..
        } => Decision::Recorded { why: "not_spam" },
        RecipientEventKind::Complaint { .. } => {
            suppress(&mut record, event, policy, SuppressionReason::Complaint, None)
        }
        RecipientEventKind::Bounce { bounce_type, sub_type, action, status, .. } => {
            match classify_bounce(bounce_type, sub_type, action.as_deref(), status.as_deref()) {
                BounceClass::Hard => {
                    suppress(&mut record, event, policy, SuppressionReason::HardBounce, None)
                }
                BounceClass::Content => Decision::Recorded { why: "content_bounce" },
                BounceClass::Soft => soft_bounce(&mut record, event, policy),
            }
        }
    };
    (decision, record)
}

fn record_delivery(record: &mut AddressRecord, event: &RecipientEvent) {
    let at = event.at;
    if record.last_delivery_at.is_none_or(|d| at > d) {
        record.last_delivery_at = Some(at);
    }
    if !record.recent_deliveries.contains(&event.ses_message_id) {
        record.recent_deliveries.push(event.ses_message_id.clone());
        let excess = record.recent_deliveries.len().saturating_sub(RECENT_DELIVERIES);
        record.recent_deliveries.drain(..excess);
    }
    // A delivery resets the count only if it happened after the last counted soft bounce: a
    // delivery report that arrives late must not wipe out newer soft bounces.
    if record.last_soft_bounce_at.is_none_or(|b| at >= b) {
        record.soft_bounce_count = 0;
        record.soft_window_start = None;
    }
}

fn soft_bounce(record: &mut AddressRecord, event: &RecipientEvent, policy: &Policy) -> Decision {
    let at = event.at;
    let auto_reply = matches!(
        &event.kind,
        RecipientEventKind::Bounce {
            bounce_type: BounceType::Transient,
            sub_type: BounceSubType::General,
            ..
        }
    ) && record.recent_deliveries.contains(&event.ses_message_id);
    if auto_reply {
        // SES reports out-of-office replies as Transient/General bounces of a delivered message.
        return Decision::Recorded { why: "auto_reply" };
    }
    if record.last_delivery_at.is_some_and(|d| at <= d) {
        // A later (or simultaneous) delivery already showed the mailbox accepts mail: had this
        // report arrived in order, that delivery would have reset the count it adds to.
        return Decision::Recorded { why: "before_delivery" };
    }
    let window = policy.soft_bounce_window;
    match record.soft_window_start {
        Some(start) if at < start - window => return Decision::Recorded { why: "outside_window" },
        Some(start) if at <= start + window => {
            record.soft_bounce_count += 1;
            record.soft_window_start = Some(start.min(at));
        }
        _ => {
            record.soft_bounce_count = 1;
            record.soft_window_start = Some(at);
        }
    }
    if record.last_soft_bounce_at.is_none_or(|b| at > b) {
        record.last_soft_bounce_at = Some(at);
    }
    if record.soft_bounce_count >= policy.soft_bounce_threshold {
        let expires_at = Some(at + policy.soft_bounce_suppression);
        suppress(record, event, policy, SuppressionReason::SoftBounce, expires_at)
    } else {
        Decision::SoftBounceCounted { count: record.soft_bounce_count }
    }
}

fn suppress(
    record: &mut AddressRecord,
    event: &RecipientEvent,
    policy: &Policy,
    reason: SuppressionReason,
    expires_at: Option<DateTime<Utc>>,
) -> Decision {
    let at = event.at;
    if policy.never_suppress.matches(&event.address) {
        return Decision::Recorded { why: "never_suppress" };
    }
    match &mut record.suppression {
        Some(Suppression { state: SuppressionState::Released { at: released, .. }, .. })
            if at <= *released =>
        {
            // An event older than an operator's release must not undo it when replayed.
            return Decision::Recorded { why: "before_release" };
        }
        Some(current) if current.is_active_at(at) => {
            match (current.expires_at, expires_at) {
                // An expiring suppression gives way to a permanent one.
                (Some(_), None) => {}
                // Two expiring ones: keep the later end.
                (Some(end), Some(new_end)) => {
                    current.expires_at = Some(end.max(new_end));
                    return Decision::AlreadySuppressed { reason: current.reason };
                }
                (None, _) => return Decision::AlreadySuppressed { reason: current.reason },
            }
        }
        _ => {}
    }
    record.suppression = Some(Suppression {
        reason,
        since: at,
        expires_at,
        state: SuppressionState::Active,
        provenance: provenance(event),
    });
    Decision::Suppressed { reason, expires_at }
}

fn provenance(event: &RecipientEvent) -> Provenance {
    let (bounce_type, bounce_sub_type, diagnostic_code) = match &event.kind {
        RecipientEventKind::Bounce { bounce_type, sub_type, diagnostic_code, .. } => (
            Some(bounce_type.as_str().to_owned()),
            Some(sub_type.as_str().to_owned()),
            diagnostic_code.clone(),
        ),
        _ => (None, None, None),
    };
    Provenance {
        feedback_id: event.feedback_id.clone(),
        ses_message_id: Some(event.ses_message_id.clone()),
        bounce_type,
        bounce_sub_type,
        diagnostic_code,
        source: "policy".to_owned(),
        note: None,
    }
}

/// An operator's or importer's request to suppress a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualSuppression {
    /// The reason (`manual` or `ses_account_list`).
    pub reason: SuppressionReason,
    /// When it ends, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// `cli` or `ses_import`.
    pub source: String,
    /// The operator's note.
    pub note: Option<String>,
}

/// Applies a manual suppression at `at`. An address that is already actively suppressed keeps its
/// suppression (nothing is downgraded; a permanent entry replaces an expiring one).
pub fn suppress_manually(
    prior: Option<&AddressRecord>,
    target: &SuppressionTarget,
    request: &ManualSuppression,
    at: DateTime<Utc>,
) -> (Decision, AddressRecord) {
    let mut record = prior.cloned().unwrap_or_else(|| AddressRecord::new(target.clone(), at));
    record.version = prior.map_or(0, |p| p.version) + 1;
    record.last_seen = record.last_seen.max(at);
    if let Some(current) = record.suppression.as_ref().filter(|s| s.is_active_at(at)) {
        let upgrade = current.expires_at.is_some()
            && request.expires_at.is_none_or(|end| current.expires_at.is_some_and(|c| end > c));
        if !upgrade {
            return (Decision::AlreadySuppressed { reason: current.reason }, record);
        }
    }
    record.suppression = Some(Suppression {
        reason: request.reason,
        since: at,
        expires_at: request.expires_at,
        state: SuppressionState::Active,
        provenance: Provenance {
            source: request.source.clone(),
            note: request.note.clone(),
            ..Provenance::default()
        },
    });
    (Decision::Suppressed { reason: request.reason, expires_at: request.expires_at }, record)
}

/// Releases an active suppression. Returns `None` when there is nothing active to release.
pub fn release(
    prior: &AddressRecord,
    by: &str,
    why: &str,
    at: DateTime<Utc>,
) -> Option<AddressRecord> {
    let mut record = prior.clone();
    let suppression = record.suppression.as_mut().filter(|s| s.is_active_at(at))?;
    suppression.state = SuppressionState::Released { at, by: by.to_owned(), why: why.to_owned() };
    record.version = prior.version + 1;
    Some(record)
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
