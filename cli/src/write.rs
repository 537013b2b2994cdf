//! The tool's writes: manual suppressions, releases and imports. Each goes through the domain
//! policy (`suppress_manually`, `release`) and the store's atomic, idempotent commit with a
//! history entry, and is decided again when the record changed in between (optimistic lock).

use anyhow::bail;
use chrono::{DateTime, Utc};
use feedback_domain::policy::{self, Decision, ManualSuppression};
use feedback_domain::ports::{
    CommitOutcome, EventWrite, HistoryEntry, SuppressionStore, WriteScope,
};
use feedback_domain::{AddressRecord, SuppressionReason, SuppressionTarget};
use suppression_store::DynamoDbSuppressionStore;

/// How often a write is decided again after the record changed under it.
const ATTEMPTS: u32 = 5;

/// The history entry a write leaves, apart from its outcome and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLabel {
    /// Idempotency key: writing the same key twice is a no-op.
    pub key: String,
    /// `manual`, `release` or `import`.
    pub event_type: &'static str,
    /// Detail shown next to the type (`csv`, `ses:BOUNCE`, the released reason).
    pub sub_type: Option<String>,
}

/// What a suppression write did.
#[derive(Debug, Clone, PartialEq)]
pub enum Suppressed {
    /// Written; the record as stored now.
    Applied(Box<AddressRecord>),
    /// The target is suppressed already (for this reason); nothing written.
    Already(SuppressionReason),
    /// An event with this idempotency key was applied before; nothing written.
    Duplicate,
}

/// Suppresses `target` as `request` asks, at `at`. `known` is the record when the caller has
/// just read it (imports read in batches), saving a read on the first attempt.
///
/// Fails when the store fails, or when the record keeps changing.
pub async fn suppress(
    store: &DynamoDbSuppressionStore,
    target: &SuppressionTarget,
    request: &ManualSuppression,
    label: &EventLabel,
    at: DateTime<Utc>,
    known: Option<Option<AddressRecord>>,
) -> anyhow::Result<Suppressed> {
    let mut known = known;
    for _ in 0..ATTEMPTS {
        let prior = match known.take() {
            Some(record) => record,
            None => store.load(target).await?,
        };
        let (decision, record) = policy::suppress_manually(prior.as_ref(), target, request, at);
        if let Decision::AlreadySuppressed { reason } = decision {
            return Ok(Suppressed::Already(reason));
        }
        let write = event_write(prior.as_ref(), record.clone(), label, decision.outcome(), at);
        match store.commit(&write).await? {
            CommitOutcome::Applied => return Ok(Suppressed::Applied(Box::new(record))),
            CommitOutcome::Duplicate => return Ok(Suppressed::Duplicate),
            CommitOutcome::Conflict => continue,
        }
    }
    bail!("the record kept changing while it was written ({ATTEMPTS} attempts): try again")
}

/// What a release did.
#[derive(Debug, Clone, PartialEq)]
pub enum Released {
    /// Written; the record as stored now.
    Applied(Box<AddressRecord>),
    /// Nothing is stored for the target.
    Unknown,
    /// The target has no suppression in force (`none`, `expired` or `released`).
    NotActive(&'static str),
}

/// Releases the suppression of `target`, recording who and why.
///
/// Fails when the store fails, or when the record keeps changing.
pub async fn release(
    store: &DynamoDbSuppressionStore,
    target: &SuppressionTarget,
    by: &str,
    why: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<Released> {
    for _ in 0..ATTEMPTS {
        let Some(prior) = store.load(target).await? else { return Ok(Released::Unknown) };
        let Some(record) = policy::release(&prior, by, why, at) else {
            return Ok(Released::NotActive(prior.state_name(at)));
        };
        let label = EventLabel {
            key: format!("release:{}", at.timestamp_millis()),
            event_type: "release",
            sub_type: prior.suppression.as_ref().map(|s| s.reason.as_str().to_owned()),
        };
        let write = event_write(Some(&prior), record.clone(), &label, "released", at);
        match store.commit(&write).await? {
            CommitOutcome::Applied => return Ok(Released::Applied(Box::new(record))),
            // Two releases in the same millisecond: the other one did the work.
            CommitOutcome::Duplicate => return Ok(Released::NotActive("released")),
            CommitOutcome::Conflict => continue,
        }
    }
    bail!("the record kept changing while it was written ({ATTEMPTS} attempts): try again")
}

fn event_write(
    prior: Option<&AddressRecord>,
    record: AddressRecord,
    label: &EventLabel,
    outcome: &str,
    at: DateTime<Utc>,
) -> EventWrite {
    EventWrite {
        scope: WriteScope::Record {
            record: Box::new(record),
            expected_version: prior.map_or(0, |p| p.version),
        },
        // Operator and import entries stay as long as the record: they are its audit trail.
        history: HistoryEntry {
            idempotency_key: label.key.clone(),
            event_type: label.event_type.to_owned(),
            sub_type: label.sub_type.clone(),
            at,
            feedback_id: None,
            ses_message_id: None,
            outcome: outcome.to_owned(),
            diagnostic_code: None,
            expires_at: None,
        },
        counter: None,
    }
}
