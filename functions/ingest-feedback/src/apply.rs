//! Applies parsed feedback to the suppression store: per recipient, decide and commit with
//! optimistic locking, at most once per (feedback, address).

use chrono::{DateTime, Duration, Utc};
use feedback_domain::policy::{self, Decision, Policy, RecipientEvent};
use feedback_domain::ports::{
    CommitOutcome, CounterField, CounterIncrement, EventWrite, HistoryEntry, Retryable,
    SuppressionStore, WriteScope,
};
use feedback_domain::{AddressHasher, Feedback, FeedbackEvent, SuppressionTarget};
use tracing::info;

/// How often a commit is retried when another invocation changed the same address meanwhile.
pub const MAX_CONFLICT_ATTEMPTS: u32 = 16;

/// Identity used for counters when SES did not name one.
pub const UNKNOWN_IDENTITY: &str = "unknown";

/// What happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientResult {
    /// Decided and written.
    Applied(Decision),
    /// Written before (same feedback id and address): nothing changed.
    Duplicate,
}

/// Tally of one piece of feedback.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplySummary {
    /// One result per valid recipient, in SES order.
    pub results: Vec<RecipientResult>,
    /// Recipients that were not one mailbox (counted, not applied).
    pub invalid_recipients: usize,
    /// For Send events: whether the send counter was applied (false when a duplicate).
    pub send_counted: Option<bool>,
    /// Counters incremented by recipients applied now (not duplicates), for metrics.
    pub counted: Vec<CounterField>,
}

impl ApplySummary {
    /// Number of recipients whose decision was a new suppression.
    pub fn suppressed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| matches!(r, RecipientResult::Applied(Decision::Suppressed { .. })))
            .count()
    }
}

/// Why applying failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError<E: std::error::Error + 'static> {
    /// The store failed.
    #[error("suppression store failed")]
    Store(#[source] E),
    /// The same address kept changing under every attempt.
    #[error("address kept changing under {0} attempts")]
    Contended(u32),
}

impl<E: Retryable> ApplyError<E> {
    /// Whether the record should come back later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Contended(_) => true,
        }
    }
}

/// Applies one piece of feedback. Recipients already applied stay applied if a later one fails:
/// a retry of the record finds them as duplicates, so nothing is applied twice.
///
/// Fails with the first store error, or when an address stays contended.
pub async fn apply_feedback<S: SuppressionStore>(
    store: &S,
    feedback: &Feedback,
    policy: &Policy,
    retention: Duration,
    hasher: &AddressHasher,
) -> Result<ApplySummary, ApplyError<S::Error>> {
    let mut summary = ApplySummary::default();
    if let FeedbackEvent::Send { at } = &feedback.event {
        summary.send_counted = Some(apply_send(store, feedback, *at, retention).await?);
        return Ok(summary);
    }
    let split = policy::recipient_events(feedback);
    summary.invalid_recipients = split.invalid.len();
    for error in &split.invalid {
        info!(error = %error, ses_message_id = %feedback.mail.message_id, "recipient is not a mailbox");
    }
    for event in &split.events {
        let result = apply_recipient(store, event, policy, retention).await?;
        log_result(event, &result, hasher);
        if let (RecipientResult::Applied(_), Some(field)) = (&result, event.counter_field()) {
            summary.counted.push(field);
        }
        summary.results.push(result);
    }
    Ok(summary)
}

async fn apply_recipient<S: SuppressionStore>(
    store: &S,
    event: &RecipientEvent,
    policy: &Policy,
    retention: Duration,
) -> Result<RecipientResult, ApplyError<S::Error>> {
    let target = SuppressionTarget::Address(event.address.clone());
    for attempt in 0..MAX_CONFLICT_ATTEMPTS {
        let prior = store.load(&target).await.map_err(ApplyError::Store)?;
        let (decision, record) = policy::decide(prior.as_ref(), event, policy);
        let write = EventWrite {
            scope: WriteScope::Record {
                record: Box::new(record),
                expected_version: prior.as_ref().map_or(0, |r| r.version),
            },
            history: event.history_entry(&decision, Some(event.at + retention)),
            counter: event
                .counter_field()
                .map(|field| counter(event.identity.as_deref(), event.at, field, 1)),
        };
        match store.commit(&write).await.map_err(ApplyError::Store)? {
            CommitOutcome::Applied => return Ok(RecipientResult::Applied(decision)),
            CommitOutcome::Duplicate => return Ok(RecipientResult::Duplicate),
            CommitOutcome::Conflict => {
                // Another invocation wrote this address between our read and write: back off a
                // little (more with each attempt) and decide again on what is stored now.
                let cap = 5u64 << attempt.min(5);
                tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(0..=cap))).await;
            }
        }
    }
    Err(ApplyError::Contended(MAX_CONFLICT_ATTEMPTS))
}

async fn apply_send<S: SuppressionStore>(
    store: &S,
    feedback: &Feedback,
    at: DateTime<Utc>,
    retention: Duration,
) -> Result<bool, ApplyError<S::Error>> {
    let recipients = u32::try_from(feedback.mail.destination_count.max(1)).unwrap_or(u32::MAX);
    let write = EventWrite {
        scope: WriteScope::Message { ses_message_id: feedback.mail.message_id.clone() },
        history: HistoryEntry {
            idempotency_key: "send".to_owned(),
            event_type: "send".to_owned(),
            sub_type: None,
            at,
            feedback_id: None,
            ses_message_id: Some(feedback.mail.message_id.clone()),
            outcome: "counted".to_owned(),
            diagnostic_code: None,
            expires_at: Some(at + retention),
        },
        counter: Some(counter(
            feedback.mail.identity.as_deref(),
            at,
            CounterField::Sends,
            recipients,
        )),
    };
    match store.commit(&write).await.map_err(ApplyError::Store)? {
        CommitOutcome::Applied => Ok(true),
        CommitOutcome::Duplicate | CommitOutcome::Conflict => Ok(false),
    }
}

fn counter(
    identity: Option<&str>,
    at: DateTime<Utc>,
    field: CounterField,
    by: u32,
) -> CounterIncrement {
    CounterIncrement {
        identity: identity.unwrap_or(UNKNOWN_IDENTITY).to_owned(),
        day: at.date_naive(),
        field,
        by,
    }
}

fn log_result(event: &RecipientEvent, result: &RecipientResult, hasher: &AddressHasher) {
    let rcpt_hash = hasher.hash(event.address.as_str());
    let rcpt_domain = event.address.domain();
    match result {
        RecipientResult::Duplicate => info!(
            %rcpt_hash, rcpt_domain, event = event.type_name(), outcome = "duplicate",
            "recipient already applied"
        ),
        RecipientResult::Applied(decision) => {
            let detail = match decision {
                Decision::Suppressed { reason, .. } | Decision::AlreadySuppressed { reason } => {
                    reason.as_str()
                }
                Decision::SoftBounceCounted { .. } => "soft_bounce",
                Decision::Recorded { why } => why,
            };
            info!(
                %rcpt_hash, rcpt_domain, event = event.type_name(), outcome = decision.outcome(),
                detail, "recipient decided"
            );
        }
    }
}
