//! Ports of the sync handler, named by role: where the suppressions and the sync's own state are
//! read and written ([`SuppressionSource`]), where blocked recipients are pushed ([`Blocklist`]),
//! and the SES account-level suppression list ([`AccountList`]).
//!
//! Adapters live in [`crate::adapters`]; tests use in-memory fakes. Nothing here names an AWS
//! or HTTP type.

use std::future::Future;

use chrono::{DateTime, Utc};
use feedback_domain::ports::Retryable;
use feedback_domain::{EmailAddress, SuppressionReason, SuppressionTarget};
use mailcow_api::{RenderedMap, RenderedSetting};
use ses_account_list::{DeleteOutcome, SesReason};

/// What the sync knows about one target's state item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetState {
    /// The address or `*@domain`.
    pub target: SuppressionTarget,
    /// The suppression's reason while it is in force; `None` when it was released, has expired
    /// (soft bounces and timed manual entries, even before TTL deletes the item) or never was.
    pub active: Option<SuppressionReason>,
    /// Whether the item says the address is on the SES account list (`ses_listed`).
    pub ses_listed: bool,
    /// Whether the state item exists; `false` for an item the stream reported deleted.
    pub exists: bool,
}

/// The sync's bookkeeping item (`pk = META`, `sk = SYNC#mailcow`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncState {
    /// `<mode>:<sha256>` of the last projection Mailcow accepted; `None` when Mailcow's state is
    /// unknown (never pushed, or the last push failed and may have been half applied).
    pub last_hash: Option<String>,
    /// When Mailcow last accepted a push.
    pub last_push_at: Option<DateTime<Utc>>,
    /// `success` or `failed`: how the last push attempt ended.
    pub last_result: Option<String>,
    /// Why the last attempt failed (no address, no key).
    pub last_error: Option<String>,
    /// When the last push was attempted.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When Mailcow last refused the credentials (401/403); cleared by the next success.
    pub auth_failed_at: Option<DateTime<Utc>>,
    /// Entries of the last accepted projection.
    pub entries: Option<u64>,
    /// Optimistic-lock version: 0 while the item does not exist, one more on every write.
    pub version: u64,
}

/// Result of a conditional write of the sync state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// Written.
    Saved,
    /// Another writer changed the item since it was read.
    Conflict,
}

/// The suppression table, as the sync reads and marks it.
pub trait SuppressionSource: Send + Sync {
    /// The adapter's error.
    type Error: Retryable;

    /// Every target in an `active#<reason>` partition, judged at `now`: in force, or expired
    /// but not yet deleted by TTL (`active` is `None` for those).
    fn suppressions(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<TargetState>, Self::Error>> + Send;

    /// Released targets still marked `ses_listed` (from the `released#<reason>` partitions).
    fn released_listed(&self)
    -> impl Future<Output = Result<Vec<TargetState>, Self::Error>> + Send;

    /// Strongly consistent reads of the given keys (`address` or `*@domain`), judged at `now`;
    /// `None` for a key whose state item does not exist. The index the other reads use lags
    /// behind the table, so keys a stream batch named are read here.
    fn read_targets(
        &self,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<(String, Option<TargetState>)>, Self::Error>> + Send;

    /// Sets (`true`) or removes (`false`) `ses_listed` on a state item without touching its
    /// `version`, so the ingest path's optimistic lock is unaffected. Returns `false` when the
    /// item does not exist (any more).
    fn set_ses_listed(
        &self,
        key: &str,
        listed: bool,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// The sync state, read consistently; the default (version 0) when there is none yet.
    fn sync_state(&self) -> impl Future<Output = Result<SyncState, Self::Error>> + Send;

    /// Writes `state` (whose `version` is the new one) if the stored version is still
    /// `expected_version` (0: the item must not exist).
    fn save_sync_state(
        &self,
        state: &SyncState,
        expected_version: u64,
    ) -> impl Future<Output = Result<SaveOutcome, Self::Error>> + Send;
}

/// The rendered projection, in the format of the configured Mailcow mode. Personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendering {
    /// The recipient denylist map.
    Map(RenderedMap),
    /// The settings rule content.
    Rsetting(RenderedSetting),
}

/// An error of a [`Blocklist`] that says whether an operator must fix the credentials.
pub trait BlocklistError: Retryable {
    /// True for 401/403: retrying cannot help until the key or allow-list is fixed, and each
    /// attempt counts towards Mailcow's fail2ban.
    fn is_auth(&self) -> bool;
    /// A short stable name for logs and the sync state.
    fn kind(&self) -> &'static str;
}

/// Where Mailcow learns which recipients to block.
pub trait Blocklist: Send + Sync {
    /// The adapter's error.
    type Error: BlocklistError;

    /// Replaces what Mailcow blocks with `rendering`.
    fn push(&self, rendering: &Rendering) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// The SES account-level suppression list.
pub trait AccountList: Send + Sync {
    /// The adapter's error.
    type Error: Retryable;

    /// Lists `address` (or updates its reason).
    fn put(
        &self,
        address: &EmailAddress,
        reason: SesReason,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Removes `address`; [`DeleteOutcome::NotFound`] when it was not listed.
    fn delete(
        &self,
        address: &EmailAddress,
    ) -> impl Future<Output = Result<DeleteOutcome, Self::Error>> + Send;
}
