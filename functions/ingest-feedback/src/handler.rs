//! The SQS batch handler: every record gets its own outcome, and only records that failed for a
//! retryable cause go back to the queue. Generic over its ports so tests run it in memory.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Duration;
use feedback_domain::ports::{CounterField, Retryable, SuppressionStore};
use feedback_domain::{AddressHasher, EventKind, Policy};
use futures_util::StreamExt;
use ses_wire::{Content, ParsedRecord, SnsMessageType};
use telemetry::MetricsSink;
use telemetry::catalogue::{bounce_class, dimension, metric};
use tracing::{error, info, warn};

use crate::apply::{self, ApplySummary};
use crate::ports::{Authenticator, Quarantine, QuarantineNote, SubscriptionConfirmer};

/// Records of one batch processed at the same time. Records about the same address are safe to
/// run together: the store's optimistic lock serialises them.
pub const RECORD_CONCURRENCY: usize = 8;

/// What happened to one SQS record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Feedback applied (possibly as duplicates, or with nothing to do for its type).
    Applied {
        /// Event type (`bounce`, `open`, ...).
        kind: &'static str,
        /// Recipients whose decision was a new suppression.
        suppressed: usize,
        /// Recipients already applied before.
        duplicates: usize,
        /// Recipients that were not one mailbox.
        invalid: usize,
    },
    /// Acknowledged without effect (setup chatter, a confirmed subscription, ...).
    Ignored {
        /// Why.
        why: &'static str,
    },
    /// Sent to the quarantine queue, then acknowledged.
    Quarantined {
        /// Reason code.
        reason: &'static str,
    },
    /// Left on the queue to come back later.
    Retry,
}

impl RecordOutcome {
    /// `applied`, `ignored`, `quarantined` or `retry`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Applied { .. } => "applied",
            Self::Ignored { .. } => "ignored",
            Self::Quarantined { .. } => "quarantined",
            Self::Retry => "retry",
        }
    }
}

/// Settings the handler needs, from the function's config.
#[derive(Debug, Clone)]
pub struct HandlerSettings {
    /// The suppression policy.
    pub policy: Policy,
    /// History retention.
    pub retention: Duration,
    /// Hash for log lines.
    pub hasher: AddressHasher,
    /// Unsigned (raw-delivery) bodies are quarantined when true.
    pub require_signature: bool,
    /// Confirm subscriptions of allowed topics automatically.
    pub auto_confirm_subscriptions: bool,
}

/// The `ingest-feedback` handler.
pub struct Handler<S, Q, A, C> {
    /// The suppression table.
    pub store: S,
    /// The quarantine queue.
    pub quarantine: Q,
    /// Envelope authentication; `None` accepts envelopes unverified (only when signatures are
    /// not required).
    pub authenticator: Option<A>,
    /// Subscription confirmation, when enabled.
    pub confirmer: Option<C>,
    /// Settings.
    pub settings: HandlerSettings,
    /// Where metrics are collected; flushed once per invocation by the caller.
    pub metrics: MetricsSink,
}

impl<S, Q, A, C> Handler<S, Q, A, C>
where
    S: SuppressionStore,
    Q: Quarantine,
    A: Authenticator,
    C: SubscriptionConfirmer,
{
    /// Processes a batch and reports the records to retry.
    pub async fn handle_batch(&self, event: &SqsEvent) -> (SqsBatchResponse, Vec<RecordOutcome>) {
        let outcomes: Vec<(usize, RecordOutcome)> =
            futures_util::stream::iter(event.records.iter().enumerate())
                .map(|(i, record)| async move { (i, self.handle_record(record).await) })
                .buffer_unordered(RECORD_CONCURRENCY)
                .collect()
                .await;
        let mut ordered = vec![RecordOutcome::Retry; event.records.len()];
        for (i, outcome) in outcomes {
            ordered[i] = outcome;
        }
        let mut response = SqsBatchResponse::default();
        for (record, outcome) in event.records.iter().zip(&ordered) {
            if *outcome == RecordOutcome::Retry {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        (response, ordered)
    }

    async fn handle_record(&self, record: &SqsMessage) -> RecordOutcome {
        let message_id = record.message_id.as_deref().unwrap_or("");
        let body = record.body.as_deref().unwrap_or("");
        let outcome = self.process(message_id, body).await;
        self.count_outcome(&outcome);
        match &outcome {
            RecordOutcome::Applied { kind, suppressed, duplicates, invalid } => info!(
                message_id,
                outcome = "applied",
                kind,
                suppressed,
                duplicates,
                invalid,
                "record processed"
            ),
            RecordOutcome::Ignored { why } => {
                info!(message_id, outcome = "ignored", why, "record processed")
            }
            RecordOutcome::Quarantined { reason } => {
                warn!(message_id, outcome = "quarantined", reason, "record processed")
            }
            RecordOutcome::Retry => error!(message_id, outcome = "retry", "record failed"),
        }
        outcome
    }

    async fn process(&self, message_id: &str, body: &str) -> RecordOutcome {
        let parsed = match ses_wire::parse_sqs_body(body) {
            Ok(parsed) => parsed,
            Err(e) => {
                return self.set_aside(message_id, body, e.reason_code(), &e.to_string()).await;
            }
        };
        if let Some(outcome) = self.authenticate(message_id, body, &parsed).await {
            return outcome;
        }
        match parsed.content {
            Content::Setup(setup) => {
                info!(message_id, setup = setup.as_str(), "ses setup message acknowledged");
                RecordOutcome::Ignored { why: "setup_message" }
            }
            Content::UnsubscribeConfirmation => {
                info!(message_id, "sns unsubscribe confirmation acknowledged");
                RecordOutcome::Ignored { why: "unsubscribe_confirmation" }
            }
            Content::SubscriptionConfirmation => {
                self.subscription(message_id, body, parsed.envelope.as_ref()).await
            }
            Content::Feedback(feedback) => {
                let applied = apply::apply_feedback(
                    &self.store,
                    &feedback,
                    &self.settings.policy,
                    self.settings.retention,
                    &self.settings.hasher,
                )
                .await;
                match applied {
                    Ok(summary) => {
                        self.count_recipients(&summary);
                        applied_outcome(static_kind(&feedback.event.kind()), &summary)
                    }
                    Err(e) if e.is_retryable() => {
                        error!(message_id, error = %e, source = ?std::error::Error::source(&e), "store write failed");
                        RecordOutcome::Retry
                    }
                    Err(e) => {
                        self.set_aside(message_id, body, "store_rejected", &e.to_string()).await
                    }
                }
            }
        }
    }

    /// `None` when the record may proceed; otherwise its outcome.
    async fn authenticate(
        &self,
        message_id: &str,
        body: &str,
        parsed: &ParsedRecord,
    ) -> Option<RecordOutcome> {
        match (&parsed.envelope, &self.authenticator) {
            (None, _) if self.settings.require_signature => Some(
                self.set_aside(
                    message_id,
                    body,
                    "unsigned",
                    "raw-delivery body has no SNS signature and REQUIRE_SIGNATURE is on",
                )
                .await,
            ),
            (None, _) | (Some(_), None) => None,
            (Some(envelope), Some(auth)) => match auth.authenticate(envelope).await {
                Ok(()) => None,
                Err(rejection) if rejection.retryable => {
                    warn!(message_id, reason = rejection.reason, detail = %rejection.detail, "authentication deferred");
                    Some(RecordOutcome::Retry)
                }
                Err(rejection) => Some(
                    self.set_aside(message_id, body, rejection.reason, &rejection.detail).await,
                ),
            },
        }
    }

    async fn subscription(
        &self,
        message_id: &str,
        body: &str,
        envelope: Option<&ses_wire::SnsEnvelope>,
    ) -> RecordOutcome {
        let verified = self.authenticator.is_some();
        let (Some(envelope), Some(confirmer)) = (envelope, &self.confirmer) else {
            info!(
                message_id,
                "subscription confirmation set aside: AUTO_CONFIRM_SUBSCRIPTIONS is off"
            );
            let detail =
                "subscription confirmation not followed: AUTO_CONFIRM_SUBSCRIPTIONS is off";
            return self.set_aside(message_id, body, "subscription_confirmation", detail).await;
        };
        let token = envelope.token.as_deref().unwrap_or("");
        if !verified
            || !self.settings.auto_confirm_subscriptions
            || token.is_empty()
            || envelope.message_type != SnsMessageType::SubscriptionConfirmation
        {
            let detail =
                "subscription confirmation not followed: needs a verified signature and a token";
            return self.set_aside(message_id, body, "subscription_confirmation", detail).await;
        }
        match confirmer.confirm(&envelope.topic_arn, token).await {
            Ok(()) => {
                info!(message_id, topic_arn = %envelope.topic_arn, "subscription confirmed");
                RecordOutcome::Ignored { why: "subscription_confirmed" }
            }
            Err(e) if e.is_retryable() => RecordOutcome::Retry,
            Err(e) => self.set_aside(message_id, body, "confirmation_failed", &e.to_string()).await,
        }
    }

    async fn set_aside(
        &self,
        message_id: &str,
        body: &str,
        reason: &'static str,
        detail: &str,
    ) -> RecordOutcome {
        let note = QuarantineNote { body, reason, detail, source_message_id: message_id };
        match self.quarantine.quarantine(&note).await {
            Ok(()) => RecordOutcome::Quarantined { reason },
            Err(e) => {
                // Not acknowledged: the record comes back, and ends in the DLQ if this persists.
                error!(message_id, reason, error = %e, "quarantine failed");
                RecordOutcome::Retry
            }
        }
    }
}

impl<S, Q, A, C> Handler<S, Q, A, C> {
    fn count_outcome(&self, outcome: &RecordOutcome) {
        let (kind, name) = match outcome {
            RecordOutcome::Applied { kind, .. } => (*kind, outcome.name()),
            _ => ("none", outcome.name()),
        };
        let dims = [(dimension::TYPE, kind), (dimension::OUTCOME, name)];
        self.metrics.count(metric::NOTIFICATIONS, &dims, 1);
        match outcome {
            RecordOutcome::Quarantined { reason } => {
                self.metrics.count(metric::QUARANTINED, &[(dimension::REASON, reason)], 1);
            }
            RecordOutcome::Retry => self.metrics.count(metric::RETRYABLE_FAILURES, &[], 1),
            _ => {}
        }
    }

    fn count_recipients(&self, summary: &ApplySummary) {
        for field in &summary.counted {
            match field {
                CounterField::HardBounces => self.metrics.count(
                    metric::BOUNCES,
                    &[(dimension::BOUNCE_CLASS, bounce_class::HARD)],
                    1,
                ),
                CounterField::SoftBounces => self.metrics.count(
                    metric::BOUNCES,
                    &[(dimension::BOUNCE_CLASS, bounce_class::SOFT)],
                    1,
                ),
                CounterField::Complaints => self.metrics.count(metric::COMPLAINTS, &[], 1),
                CounterField::Deliveries => self.metrics.count(metric::DELIVERIES, &[], 1),
                CounterField::Sends => {}
            }
        }
        if summary.send_counted == Some(true) {
            self.metrics.count(metric::SENDS, &[], 1);
        }
        for result in &summary.results {
            if let apply::RecipientResult::Applied(feedback_domain::Decision::Suppressed {
                reason,
                ..
            }) = result
            {
                self.metrics.count(
                    metric::SUPPRESSIONS_ADDED,
                    &[(dimension::REASON, reason.as_str())],
                    1,
                );
            }
        }
    }
}

fn static_kind(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Bounce => "bounce",
        EventKind::Complaint => "complaint",
        EventKind::Delivery => "delivery",
        EventKind::Send => "send",
        EventKind::Reject => "reject",
        EventKind::DeliveryDelay => "delivery_delay",
        EventKind::Open => "open",
        EventKind::Click => "click",
        EventKind::RenderingFailure => "rendering_failure",
        EventKind::Subscription => "subscription",
        EventKind::Other(_) => "other",
    }
}

fn applied_outcome(kind: &'static str, summary: &ApplySummary) -> RecordOutcome {
    RecordOutcome::Applied {
        kind,
        suppressed: summary.suppressed(),
        duplicates: summary
            .results
            .iter()
            .filter(|r| matches!(r, apply::RecipientResult::Duplicate))
            .count()
            + usize::from(summary.send_counted == Some(false)),
        invalid: summary.invalid_recipients,
    }
}
