//! The sync handler: reads the suppression table, renders the complete projection, pushes it to
//! Mailcow when it differs from the last accepted push (always on the schedule), and works off
//! the SES account-list calls still owed within a time budget.
//!
//! Generic over its ports ([`SuppressionSource`], [`Blocklist`], [`AccountList`]) so tests run it
//! in memory. A stream batch is one projection: it succeeds or is retried as a whole. Logs carry
//! counts, hashes and domains, never an address.

use std::error::Error as StdError;

use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::{DateTime, Duration, Utc};
use feedback_domain::ports::Retryable;
use feedback_domain::{AddressHasher, SuppressionTarget};
use mailcow_api::RenderError;
use serde_json::{Value, json};
use ses_account_list::{DeleteOutcome, Operation};
use telemetry::MetricsSink;
use telemetry::catalogue::{dimension, metric, result};
use tokio::time::Instant;
use tracing::{debug, error, info, instrument, warn};

use crate::config::MailcowMode;
use crate::event::{EventError, StreamBatch, Trigger, parse_trigger};
use crate::ports::{
    AccountList, Blocklist, BlocklistError, SaveOutcome, SuppressionSource, SyncState, TargetState,
};
use crate::projection::{self, SesTask, View};

/// How long stream invocations leave Mailcow alone after it refused the credentials. Mailcow's
/// fail2ban bans a caller after 10 failed logins in 10 minutes; the schedule still tries once
/// per run, so a fixed key is noticed without a deploy.
pub const DEFAULT_AUTH_BACKOFF: Duration = Duration::minutes(10);

/// Settings the handler needs, from the function's config.
#[derive(Debug, Clone)]
pub struct HandlerSettings {
    /// How suppressions reach Mailcow.
    pub mode: MailcowMode,
    /// How long stream invocations skip Mailcow after an auth failure.
    pub auth_backoff: Duration,
    /// Hash for log lines.
    pub hasher: AddressHasher,
}

/// The `sync-mailcow` handler.
pub struct Handler<S, B, A> {
    /// The suppression table.
    pub source: S,
    /// Mailcow.
    pub blocklist: B,
    /// The SES account list; `None` when `SES_SYNC` is off.
    pub account_list: Option<A>,
    /// Settings.
    pub settings: HandlerSettings,
    /// Where metrics are collected; flushed once per invocation by the caller.
    pub metrics: MetricsSink,
}

/// What happened to Mailcow in one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailcowOutcome {
    /// The projection was pushed and accepted.
    Pushed {
        /// Entries written.
        entries: usize,
    },
    /// The projection equals the last accepted push; nothing was sent.
    Unchanged {
        /// Entries in the projection.
        entries: usize,
    },
    /// The push failed.
    Failed {
        /// The error's kind (`server_error`, `unauthorized`, ...).
        kind: &'static str,
        /// Whether the credentials were refused.
        auth: bool,
    },
    /// Not attempted: Mailcow refused the credentials recently (stream runs only).
    SkippedAfterAuthFailure {
        /// When the refusal was recorded.
        since: DateTime<Utc>,
    },
    /// Pushed, but another writer changed the sync state meanwhile, so what Mailcow holds is
    /// unknown; the stored hash was cleared and the next run pushes again.
    StateConflict,
}

/// What happened to the SES account list in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SesOutcome {
    /// Addresses listed.
    pub put: usize,
    /// Addresses removed (or found not listed).
    pub deleted: usize,
    /// Calls SES refused for good (left for later runs, which try again).
    pub failed: usize,
    /// Calls left for the next run (time budget used up, or SES unavailable).
    pub remaining: usize,
    /// Removals of deleted state items that did not happen: only this stream batch records
    /// them, so the batch must be retried.
    pub unfinished_removals: usize,
}

/// The result of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Mailcow.
    pub mailcow: MailcowOutcome,
    /// The SES account list, when `SES_SYNC` is on.
    pub ses: Option<SesOutcome>,
}

impl SyncReport {
    /// Whether the run did everything that cannot wait for a later run: Mailcow holds the
    /// projection, and no deletion that only this batch knows of is left undone. SES calls
    /// left for later are not a failure: later runs find them again in the table.
    pub fn succeeded(&self) -> bool {
        let mailcow = matches!(
            self.mailcow,
            MailcowOutcome::Pushed { .. } | MailcowOutcome::Unchanged { .. }
        );
        mailcow && self.ses.as_ref().is_none_or(|s| s.unfinished_removals == 0)
    }

    /// A one-line summary without personal data.
    pub fn summary(&self) -> String {
        let mailcow = match &self.mailcow {
            MailcowOutcome::Pushed { entries } => format!("mailcow pushed ({entries} entries)"),
            MailcowOutcome::Unchanged { entries } => {
                format!("mailcow unchanged ({entries} entries)")
            }
            MailcowOutcome::Failed { kind, .. } => format!("mailcow push failed ({kind})"),
            MailcowOutcome::SkippedAfterAuthFailure { since } => {
                format!("mailcow skipped: credentials refused at {}", since.to_rfc3339())
            }
            MailcowOutcome::StateConflict => "mailcow pushed, sync state changed meanwhile".into(),
        };
        match &self.ses {
            None => mailcow,
            Some(s) => format!(
                "{mailcow}; ses put {}, deleted {}, failed {}, remaining {}, \
                 unfinished removals {}",
                s.put, s.deleted, s.failed, s.remaining, s.unfinished_removals
            ),
        }
    }
}

/// Why a run could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The payload is not a stream batch or a scheduled event.
    #[error(transparent)]
    Event(#[from] EventError),
    /// The table could not be read or the sync state not written.
    #[error("suppression table access failed")]
    Table(#[source] Box<dyn StdError + Send + Sync>),
    /// The settings rule cannot be rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// A stream batch without a sequence number to report as failed.
    #[error("the stream batch has no sequence number to report as failed")]
    NoSequenceNumber,
    /// The run did not complete (scheduled runs fail the invocation with this).
    #[error("sync incomplete: {0}")]
    Incomplete(String),
}

impl SyncError {
    fn table(err: impl Retryable) -> Self {
        Self::Table(Box::new(err))
    }
}

/// The next step after one SES task.
enum Step {
    /// Done.
    Done,
    /// SES refused this address for good; go on with the others.
    Refused,
    /// SES or the table is unavailable; leave the rest for the next run.
    Stop,
}

impl<S, B, A> Handler<S, B, A>
where
    S: SuppressionSource,
    B: Blocklist,
    A: AccountList,
{
    /// Handles one invocation payload. A stream batch answers with the batch item failures
    /// (all or nothing: the first record's sequence number when the run failed); the schedule
    /// answers with a summary, or an error so that Lambda records a failure. `deadline` bounds
    /// the SES calls.
    ///
    /// Fails for a payload of unknown shape, for a scheduled run that did not complete, and for
    /// a failed stream batch without a sequence number.
    pub async fn handle_event(
        &self,
        payload: Value,
        now: DateTime<Utc>,
        deadline: Instant,
    ) -> Result<Value, SyncError> {
        let trigger = parse_trigger(payload)?;
        let outcome = self.sync(&trigger, now, deadline).await;
        match &trigger {
            Trigger::Stream(batch) => {
                let succeeded = match &outcome {
                    Ok(report) => report.succeeded(),
                    Err(e) => {
                        error!(error = %e, "sync run failed");
                        false
                    }
                };
                let response = self.stream_response(batch, succeeded)?;
                Ok(serde_json::to_value(response).unwrap_or(Value::Null))
            }
            Trigger::Schedule => {
                let report = outcome?;
                if report.succeeded() {
                    Ok(json!({"result": "success", "summary": report.summary()}))
                } else {
                    Err(SyncError::Incomplete(report.summary()))
                }
            }
        }
    }

    fn stream_response(
        &self,
        batch: &StreamBatch,
        succeeded: bool,
    ) -> Result<DynamoDbEventResponse, SyncError> {
        let mut response = DynamoDbEventResponse::default();
        if succeeded {
            return Ok(response);
        }
        let sequence = batch.first_sequence_number.clone().ok_or(SyncError::NoSequenceNumber)?;
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence);
        response.batch_item_failures.push(failure);
        self.metrics.count(metric::RETRYABLE_FAILURES, &[], batch.records as u64);
        Ok(response)
    }

    /// One run: read the table, bring Mailcow and (if enabled) the SES list in step.
    ///
    /// Fails when the table cannot be read or the sync state cannot be written, or the
    /// projection cannot be rendered; Mailcow and SES failures are outcomes in the report.
    #[instrument(skip_all, fields(trigger = trigger_name(trigger)))]
    pub async fn sync(
        &self,
        trigger: &Trigger,
        now: DateTime<Utc>,
        deadline: Instant,
    ) -> Result<SyncReport, SyncError> {
        let state = self.source.sync_state().await.map_err(SyncError::table)?;
        let view = self.view(trigger, now).await?;
        let mailcow = self.project_to_mailcow(trigger, &view, state, now).await?;
        let ses = match &self.account_list {
            Some(list) => Some(self.project_to_ses(list, &view, deadline).await),
            None => None,
        };
        let report = SyncReport { mailcow, ses };
        info!(succeeded = report.succeeded(), summary = %report.summary(), "sync run finished");
        Ok(report)
    }

    /// Every target the run must consider: the active partitions, released entries still on
    /// the SES list, and for a stream batch the consistent state of the items it changed.
    async fn view(&self, trigger: &Trigger, now: DateTime<Utc>) -> Result<View, SyncError> {
        let mut view: View = self
            .source
            .suppressions(now)
            .await
            .map_err(SyncError::table)?
            .into_iter()
            .map(|s| (s.target.key(), s))
            .collect();
        let ses_on = self.account_list.is_some();
        if ses_on {
            for state in self.source.released_listed().await.map_err(SyncError::table)? {
                view.entry(state.target.key()).or_insert(state);
            }
        }
        let Trigger::Stream(batch) = trigger else { return Ok(view) };
        let fresh = self.source.read_targets(&batch.changed_keys, now).await;
        for (key, state) in fresh.map_err(SyncError::table)? {
            match state {
                Some(state) => view.insert(key, state),
                None => view.remove(&key),
            };
        }
        if ses_on {
            for key in &batch.removed_listed {
                mark_removed_listed(&mut view, key);
            }
        }
        Ok(view)
    }

    async fn project_to_mailcow(
        &self,
        trigger: &Trigger,
        view: &View,
        state: SyncState,
        now: DateTime<Utc>,
    ) -> Result<MailcowOutcome, SyncError> {
        let mode = self.settings.mode.as_str();
        let rendering = projection::render(self.settings.mode, &projection::blocked_targets(view))?;
        for skip in rendering.skipped() {
            warn!(reason = %skip.reason, count = skip.count, "targets left out of the projection");
        }
        let entries = rendering.entries();
        let fingerprint = rendering.fingerprint();
        let scheduled = matches!(trigger, Trigger::Schedule);
        if !scheduled && state.last_hash.as_deref() == Some(fingerprint.as_str()) {
            debug!(mode, entries, "mailcow projection unchanged");
            self.metrics.count(metric::MAILCOW_PUSH, &[(dimension::RESULT, result::UNCHANGED)], 1);
            return Ok(MailcowOutcome::Unchanged { entries });
        }
        let backoff_since =
            state.auth_failed_at.filter(|at| now - *at < self.settings.auth_backoff);
        if let (false, Some(since)) = (scheduled, backoff_since) {
            warn!(
                auth_failed_at = %since.to_rfc3339(),
                "mailcow push skipped: the credentials were refused recently, the scheduled \
                 run tries again"
            );
            self.metrics.count(metric::MAILCOW_PUSH, &[(dimension::RESULT, result::FAILED)], 1);
            return Ok(MailcowOutcome::SkippedAfterAuthFailure { since });
        }

        let started = Instant::now();
        let pushed = self.blocklist.push(&rendering).await;
        let elapsed = started.elapsed();
        let mut next =
            SyncState { version: state.version + 1, last_attempt_at: Some(now), ..state };
        let outcome = match pushed {
            Ok(()) => {
                let dims = [(dimension::RESULT, result::SUCCESS)];
                self.metrics.count(metric::MAILCOW_PUSH, &dims, 1);
                self.metrics.duration(metric::MAILCOW_PUSH_DURATION, &dims, elapsed);
                info!(
                    mode,
                    entries,
                    bytes = rendering.bytes(),
                    hash = fingerprint.get(..mode.len() + 13).unwrap_or(&fingerprint),
                    elapsed_ms = elapsed.as_millis() as u64,
                    "mailcow projection pushed"
                );
                next.last_hash = Some(fingerprint);
                next.last_push_at = Some(now);
                next.last_result = Some(result::SUCCESS.to_owned());
                next.last_error = None;
                next.auth_failed_at = None;
                next.entries = Some(entries as u64);
                MailcowOutcome::Pushed { entries }
            }
            Err(e) => {
                let dims = [(dimension::RESULT, result::FAILED)];
                self.metrics.count(metric::MAILCOW_PUSH, &dims, 1);
                self.metrics.duration(metric::MAILCOW_PUSH_DURATION, &dims, elapsed);
                let auth = e.is_auth();
                if auth {
                    // The error names the setting to fix (the key secret or the allow-list).
                    error!(
                        error = %e,
                        backoff_minutes = self.settings.auth_backoff.num_minutes(),
                        "mailcow refused the credentials: stream runs stop calling it until \
                         the backoff ends or a scheduled run succeeds"
                    );
                    next.auth_failed_at = Some(now);
                } else {
                    error!(
                        error = %e,
                        kind = e.kind(),
                        retryable = e.is_retryable(),
                        "mailcow push failed"
                    );
                }
                // A failed push may have been applied in part (a timeout after the write), and
                // the map cannot be read back: Mailcow's state is unknown until the next push.
                next.last_hash = None;
                next.last_result = Some(result::FAILED.to_owned());
                next.last_error = Some(format!("{}: {e}", e.kind()));
                MailcowOutcome::Failed { kind: e.kind(), auth }
            }
        };
        let expected = next.version - 1;
        match self.source.save_sync_state(&next, expected).await.map_err(SyncError::table)? {
            SaveOutcome::Saved => Ok(outcome),
            SaveOutcome::Conflict => {
                warn!("the sync state changed during this run, the next run pushes again");
                self.forget_pushed_hash().await?;
                Ok(MailcowOutcome::StateConflict)
            }
        }
    }

    /// After a lost race on the sync state, what Mailcow holds is whatever was pushed last:
    /// clear the stored hash so that the next run pushes whatever the table says.
    async fn forget_pushed_hash(&self) -> Result<(), SyncError> {
        let current = self.source.sync_state().await.map_err(SyncError::table)?;
        let cleared = SyncState { last_hash: None, version: current.version + 1, ..current };
        self.source
            .save_sync_state(&cleared, cleared.version - 1)
            .await
            .map_err(SyncError::table)?;
        Ok(())
    }

    async fn project_to_ses(&self, list: &A, view: &View, deadline: Instant) -> SesOutcome {
        let tasks = projection::ses_tasks(view);
        let mut outcome = SesOutcome::default();
        for (i, task) in tasks.iter().enumerate() {
            let step = if Instant::now() >= deadline {
                info!(left = tasks.len() - i, "ses time budget used up, the rest waits");
                Step::Stop
            } else {
                self.run_ses_task(list, task).await
            };
            match step {
                Step::Done => match task {
                    SesTask::Put { .. } => outcome.put += 1,
                    SesTask::Delete { .. } => outcome.deleted += 1,
                },
                Step::Refused => {
                    outcome.failed += 1;
                    outcome.unfinished_removals += usize::from(is_removal(task));
                }
                Step::Stop => {
                    outcome.remaining = tasks.len() - i;
                    outcome.unfinished_removals +=
                        tasks[i..].iter().filter(|t| is_removal(t)).count();
                    break;
                }
            }
        }
        if !tasks.is_empty() {
            info!(
                put = outcome.put,
                deleted = outcome.deleted,
                failed = outcome.failed,
                remaining = outcome.remaining,
                "ses account list synced"
            );
        }
        outcome
    }

    async fn run_ses_task(&self, list: &A, task: &SesTask) -> Step {
        let address = task.address();
        let key = address.as_str();
        let (operation, called) = match task {
            SesTask::Put { reason, .. } => {
                (Operation::Put, list.put(address, *reason).await.map(|()| result::SUCCESS))
            }
            SesTask::Delete { .. } => (
                Operation::Delete,
                list.delete(address).await.map(|outcome| match outcome {
                    DeleteOutcome::Deleted => result::SUCCESS,
                    DeleteOutcome::NotFound => result::UNCHANGED,
                }),
            ),
        };
        let dims =
            |r: &'static str| [(dimension::OPERATION, operation.as_str()), (dimension::RESULT, r)];
        let hash = self.settings.hasher.hash(key);
        match called {
            Ok(r) => self.metrics.count(metric::SES_SYNC_CALLS, &dims(r), 1),
            Err(e) => {
                self.metrics.count(metric::SES_SYNC_CALLS, &dims(result::FAILED), 1);
                warn!(
                    address_hash = %hash,
                    domain = address.domain(),
                    operation = operation.as_str(),
                    error = %e,
                    retryable = e.is_retryable(),
                    "ses account list call failed"
                );
                return if e.is_retryable() { Step::Stop } else { Step::Refused };
            }
        }
        let marked = match task {
            SesTask::Put { .. } => self.source.set_ses_listed(key, true).await,
            SesTask::Delete { exists: true, .. } => self.source.set_ses_listed(key, false).await,
            SesTask::Delete { exists: false, .. } => Ok(true),
        };
        match marked {
            Ok(true) => {
                debug!(address_hash = %hash, operation = operation.as_str(), "ses entry synced");
                Step::Done
            }
            Ok(false) => {
                // The item was deleted (TTL, erasure) between reading and marking: nothing in the
                // table would ever remove the entry just put, so take it back out now.
                info!(address_hash = %hash, "state item vanished after the ses put, undoing it");
                match list.delete(address).await {
                    Ok(_) => Step::Done,
                    Err(_) => Step::Refused,
                }
            }
            Err(e) => {
                error!(address_hash = %hash, error = %e, "ses_listed could not be written");
                Step::Stop
            }
        }
    }
}

/// Records that a state item deleted while on the SES list must come off the list: a fresh item
/// under the same key that is not in force is treated as listed; a missing one is represented by
/// a placeholder that exists only for the removal.
fn mark_removed_listed(view: &mut View, key: &str) {
    match view.get_mut(key) {
        Some(state) if state.active.is_none() => state.ses_listed = true,
        Some(_) => {}
        None => {
            if let Ok(target) = SuppressionTarget::parse(key) {
                let gone = TargetState { target, active: None, ses_listed: true, exists: false };
                view.insert(key.to_owned(), gone);
            }
        }
    }
}

fn is_removal(task: &SesTask) -> bool {
    matches!(task, SesTask::Delete { exists: false, .. })
}

fn trigger_name(trigger: &Trigger) -> &'static str {
    match trigger {
        Trigger::Stream(_) => "stream",
        Trigger::Schedule => "schedule",
    }
}
