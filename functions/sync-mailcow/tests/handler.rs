//! The handler with in-memory ports: real Lambda event JSON in, assertions on what was pushed to
//! the fake Mailcow, what the fake SES list holds, the sync state and the batch response.

// The fakes and helpers below are test code too (clippy.toml allows unwrap only inside `#[test]`
// functions).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, TimeZone, Utc};
use feedback_domain::ports::Retryable;
use feedback_domain::{AddressHasher, EmailAddress, SuppressionReason, SuppressionTarget};
use serde_json::{Value, json};
use ses_account_list::{DeleteOutcome, SesReason};
use sync_mailcow::handler::DEFAULT_AUTH_BACKOFF;
use sync_mailcow::ports::{
    AccountList, Blocklist, BlocklistError, Rendering, SaveOutcome, SuppressionSource, SyncState,
    TargetState,
};
use sync_mailcow::{Handler, HandlerSettings, MailcowMode, SyncError};
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------
// Fakes
// ---------------------------------------------------------------------------------------------

#[derive(Debug, thiserror::Error)]
#[error("fake failure")]
struct FakeError {
    retryable: bool,
    auth: bool,
}

impl Retryable for FakeError {
    fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl BlocklistError for FakeError {
    fn is_auth(&self) -> bool {
        self.auth
    }

    fn kind(&self) -> &'static str {
        if self.auth { "unauthorized" } else { "server_error" }
    }
}

#[derive(Debug, Clone)]
struct Stored {
    target: SuppressionTarget,
    reason: SuppressionReason,
    released: bool,
    expires_at: Option<DateTime<Utc>>,
    ses_listed: bool,
}

#[derive(Debug, Default)]
struct SourceState {
    items: BTreeMap<String, Stored>,
    /// Keys the index does not show yet (GSI lag).
    lagging: BTreeSet<String>,
    meta: SyncState,
    /// Another writer bumps the sync state right before the next save.
    steal_next_save: bool,
    ses_listed_writes: usize,
}

#[derive(Debug, Default)]
struct InMemorySource {
    state: Mutex<SourceState>,
}

impl InMemorySource {
    fn lock(&self) -> MutexGuard<'_, SourceState> {
        self.state.lock().unwrap()
    }

    fn suppress(&self, key: &str, reason: SuppressionReason, expires_at: Option<DateTime<Utc>>) {
        let target = SuppressionTarget::parse(key).unwrap();
        let listed = self.lock().items.get(key).is_some_and(|s| s.ses_listed);
        let stored = Stored { target, reason, released: false, expires_at, ses_listed: listed };
        self.lock().items.insert(key.to_owned(), stored);
    }

    fn release(&self, key: &str) {
        self.lock().items.get_mut(key).unwrap().released = true;
    }

    fn delete(&self, key: &str) {
        self.lock().items.remove(key);
    }

    fn listed(&self, key: &str) -> bool {
        self.lock().items.get(key).is_some_and(|s| s.ses_listed)
    }

    fn meta(&self) -> SyncState {
        self.lock().meta.clone()
    }

    fn view(stored: &Stored, now: DateTime<Utc>) -> TargetState {
        let in_force = !stored.released && stored.expires_at.is_none_or(|e| e > now);
        TargetState {
            target: stored.target.clone(),
            active: in_force.then_some(stored.reason),
            ses_listed: stored.ses_listed,
            exists: true,
        }
    }
}

impl SuppressionSource for InMemorySource {
    type Error = FakeError;

    async fn suppressions(&self, now: DateTime<Utc>) -> Result<Vec<TargetState>, FakeError> {
        let state = self.lock();
        Ok(state
            .items
            .iter()
            .filter(|(k, s)| !s.released && !state.lagging.contains(*k))
            .map(|(_, s)| Self::view(s, now))
            .collect())
    }

    async fn released_listed(&self) -> Result<Vec<TargetState>, FakeError> {
        let state = self.lock();
        Ok(state
            .items
            .values()
            .filter(|s| s.released && s.ses_listed)
            .map(|s| Self::view(s, Utc::now()))
            .collect())
    }

    async fn read_targets(
        &self,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, Option<TargetState>)>, FakeError> {
        let state = self.lock();
        Ok(keys
            .iter()
            .map(|k| (k.clone(), state.items.get(k).map(|s| Self::view(s, now))))
            .collect())
    }

    async fn set_ses_listed(&self, key: &str, listed: bool) -> Result<bool, FakeError> {
        let mut state = self.lock();
        state.ses_listed_writes += 1;
        match state.items.get_mut(key) {
            Some(stored) => {
                stored.ses_listed = listed;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn sync_state(&self) -> Result<SyncState, FakeError> {
        Ok(self.lock().meta.clone())
    }

    async fn save_sync_state(
        &self,
        new: &SyncState,
        expected_version: u64,
    ) -> Result<SaveOutcome, FakeError> {
        let mut state = self.lock();
        if std::mem::take(&mut state.steal_next_save) {
            state.meta.version += 1;
            state.meta.last_hash = Some("map:someone-else".into());
        }
        if state.meta.version != expected_version {
            return Ok(SaveOutcome::Conflict);
        }
        state.meta = new.clone();
        Ok(SaveOutcome::Saved)
    }
}

#[derive(Debug, Default)]
struct FakeMailcow {
    pushes: Mutex<Vec<Rendering>>,
    /// Errors for the next pushes (`None`: succeed).
    failures: Mutex<VecDeque<FakeError>>,
}

impl FakeMailcow {
    fn pushes(&self) -> usize {
        self.pushes.lock().unwrap().len()
    }

    fn last_text(&self) -> String {
        match self.pushes.lock().unwrap().last() {
            Some(Rendering::Map(map)) => map.text.clone(),
            Some(Rendering::Rsetting(rule)) => rule.content.clone(),
            None => String::new(),
        }
    }

    fn fail_next(&self, retryable: bool, auth: bool) {
        self.failures.lock().unwrap().push_back(FakeError { retryable, auth });
    }
}

impl Blocklist for FakeMailcow {
    type Error = FakeError;

    async fn push(&self, rendering: &Rendering) -> Result<(), FakeError> {
        self.pushes.lock().unwrap().push(rendering.clone());
        match self.failures.lock().unwrap().pop_front() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Default)]
struct FakeSes {
    listed: Mutex<BTreeMap<String, SesReason>>,
    calls: Mutex<Vec<(&'static str, String)>>,
    /// Addresses SES refuses for good.
    refused: Mutex<BTreeSet<String>>,
    /// Every call fails retryably (SES down).
    down: Mutex<bool>,
}

impl FakeSes {
    fn listed(&self) -> BTreeMap<String, SesReason> {
        self.listed.lock().unwrap().clone()
    }

    fn calls(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    /// One request per second, as SES allows: the paused test clock makes this deterministic.
    async fn call(&self, op: &'static str, address: &EmailAddress) -> Result<(), FakeError> {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        self.calls.lock().unwrap().push((op, address.as_str().to_owned()));
        if *self.down.lock().unwrap() {
            return Err(FakeError { retryable: true, auth: false });
        }
        if self.refused.lock().unwrap().contains(address.as_str()) {
            return Err(FakeError { retryable: false, auth: false });
        }
        Ok(())
    }
}

impl AccountList for FakeSes {
    type Error = FakeError;

    async fn put(&self, address: &EmailAddress, reason: SesReason) -> Result<(), FakeError> {
        self.call("put", address).await?;
        self.listed.lock().unwrap().insert(address.as_str().to_owned(), reason);
        Ok(())
    }

    async fn delete(&self, address: &EmailAddress) -> Result<DeleteOutcome, FakeError> {
        self.call("delete", address).await?;
        Ok(match self.listed.lock().unwrap().remove(address.as_str()) {
            Some(_) => DeleteOutcome::Deleted,
            None => DeleteOutcome::NotFound,
        })
    }
}

#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

type TestHandler = Handler<InMemorySource, FakeMailcow, FakeSes>;

fn handler_with(ses: bool, mode: MailcowMode) -> (TestHandler, SharedBuf) {
    let metrics_out = SharedBuf::default();
    let handler = Handler {
        source: InMemorySource::default(),
        blocklist: FakeMailcow::default(),
        account_list: ses.then(FakeSes::default),
        settings: HandlerSettings {
            mode,
            auth_backoff: DEFAULT_AUTH_BACKOFF,
            hasher: AddressHasher::new(b"test-key"),
        },
        metrics: telemetry::MetricsSink::new("test", "sync-mailcow")
            .unwrap()
            .with_writer(metrics_out.clone()),
    };
    (handler, metrics_out)
}

fn handler() -> TestHandler {
    handler_with(true, MailcowMode::Map).0
}

fn ses(handler: &TestHandler) -> &FakeSes {
    handler.account_list.as_ref().unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 12, 0, 0).unwrap()
}

fn far() -> Instant {
    Instant::now() + std::time::Duration::from_secs(3600)
}

/// A stream batch touching the state items of `keys`, in the shape Lambda delivers.
fn stream(keys: &[&str]) -> Value {
    stream_records(keys.iter().map(|k| ("MODIFY", *k, None)).collect())
}

fn stream_records(records: Vec<(&str, &str, Option<bool>)>) -> Value {
    let records: Vec<Value> = records
        .into_iter()
        .enumerate()
        .map(|(i, (name, key, old_listed))| {
            let keys = json!({"pk": {"S": format!("ADDR#{key}")}, "sk": {"S": "STATE"}});
            let mut change = json!({
                "ApproximateCreationDateTime": 1_793_620_800.0,
                "Keys": keys,
                "SequenceNumber": format!("{}", 4_000_000 + i),
                "SizeBytes": 200,
                "StreamViewType": "NEW_AND_OLD_IMAGES"
            });
            if let Some(listed) = old_listed {
                change["OldImage"] = json!({
                    "pk": {"S": format!("ADDR#{key}")}, "sk": {"S": "STATE"},
                    "ses_listed": {"BOOL": listed}
                });
            }
            json!({
                "eventID": format!("event-{i}"),
                "eventName": name,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "eu-central-1",
                "dynamodb": change,
                "eventSourceARN": "arn:aws:dynamodb:eu-central-1:123456789012:table/s/stream/x"
            })
        })
        .collect();
    json!({ "Records": records })
}

fn scheduled() -> Value {
    json!({
        "version": "0", "id": "7bf73129", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-11-02T12:00:00Z",
        "region": "eu-central-1",
        "resources": ["arn:aws:events:eu-central-1:123456789012:rule/drift-repair"],
        "detail": {}
    })
}

/// The sequence numbers a stream response names as failed.
fn failures(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Mailcow
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_new_suppression_is_pushed_once_and_an_unchanged_table_is_not_pushed_again() {
    let (handler, metrics) = handler_with(false, MailcowMode::Map);
    handler.source.suppress("bounced@example.com", SuppressionReason::HardBounce, None);

    let first = handler.handle_event(stream(&["bounced@example.com"]), now(), far()).await.unwrap();
    let second =
        handler.handle_event(stream(&["bounced@example.com"]), now(), far()).await.unwrap();

    assert!(failures(&first).is_empty());
    assert!(failures(&second).is_empty());
    assert_eq!(handler.blocklist.pushes(), 1, "the unchanged projection is not pushed again");
    let text = handler.blocklist.last_text();
    assert!(text.starts_with("# managed by mailcow-ses-feedback"), "{text}");
    assert!(text.contains("/^bounced@example\\.com$/i"), "{text}");
    let meta = handler.source.meta();
    assert_eq!(meta.last_result.as_deref(), Some("success"));
    assert!(meta.last_hash.as_deref().unwrap().starts_with("map:"));
    assert_eq!(meta.last_push_at, Some(now()));
    assert_eq!(meta.entries, Some(1));
    handler.metrics.flush().unwrap();
    let emf = metrics.text();
    assert!(emf.contains("\"Result\":\"success\""), "{emf}");
    assert!(emf.contains("\"Result\":\"unchanged\""), "{emf}");
}

#[tokio::test]
async fn a_changed_table_is_pushed_again_and_the_released_line_is_gone() {
    let (handler, _) = handler_with(false, MailcowMode::Map);
    handler.source.suppress("a@example.com", SuppressionReason::HardBounce, None);
    handler.source.suppress("b@example.com", SuppressionReason::Complaint, None);
    handler.handle_event(stream(&["a@example.com"]), now(), far()).await.unwrap();

    handler.source.release("a@example.com");
    handler.handle_event(stream(&["a@example.com"]), now(), far()).await.unwrap();

    assert_eq!(handler.blocklist.pushes(), 2);
    let text = handler.blocklist.last_text();
    assert!(!text.contains("a@example"), "{text}");
    assert!(text.contains("/^b@example\\.com$/i"), "{text}");
}

#[tokio::test]
async fn the_scheduled_run_pushes_even_when_nothing_changed() {
    let (handler, _) = handler_with(false, MailcowMode::Map);
    handler.source.suppress("a@example.com", SuppressionReason::HardBounce, None);
    handler.handle_event(stream(&["a@example.com"]), now(), far()).await.unwrap();

    let answer = handler.handle_event(scheduled(), now(), far()).await.unwrap();

    assert_eq!(handler.blocklist.pushes(), 2);
    assert_eq!(answer["result"], "success");
}

#[tokio::test]
async fn expired_suppressions_leave_the_map_before_ttl_deletes_them() {
    let (handler, _) = handler_with(false, MailcowMode::Map);
    let ends = now() + Duration::hours(1);
    handler.source.suppress("soft@example.com", SuppressionReason::SoftBounce, Some(ends));
    handler.handle_event(scheduled(), now(), far()).await.unwrap();
    assert!(handler.blocklist.last_text().contains("soft@example"));

    handler.handle_event(scheduled(), ends + Duration::seconds(1), far()).await.unwrap();

    assert!(!handler.blocklist.last_text().contains("soft@example"));
    assert!(handler.blocklist.last_text().contains("# entries: 0"));
}

#[tokio::test]
async fn the_rsetting_mode_pushes_a_settings_rule_and_the_mode_is_part_of_the_hash() {
    let (handler, _) = handler_with(false, MailcowMode::Rsetting);
    handler.source.suppress("a@example.com", SuppressionReason::HardBounce, None);
    handler.source.suppress("*@blocked.example", SuppressionReason::Manual, None);

    handler.handle_event(stream(&["a@example.com"]), now(), far()).await.unwrap();

    let content = handler.blocklist.last_text();
    assert!(content.contains("rcpt = \"a@example.com\";"), "{content}");
    assert!(content.contains("rcpt = \"@blocked.example\";"), "{content}");
    assert!(handler.source.meta().last_hash.unwrap().starts_with("rsetting:"));
}

#[tokio::test]
async fn a_failed_push_fails_the_whole_stream_batch_and_the_next_run_pushes_again() {
    let (handler, metrics) = handler_with(false, MailcowMode::Map);
    handler.source.suppress("a@example.com", SuppressionReason::HardBounce, None);
    handler.handle_event(stream(&["a@example.com"]), now(), far()).await.unwrap();
    handler.source.suppress("b@example.com", SuppressionReason::HardBounce, None);
    handler.blocklist.fail_next(true, false);

    let batch = stream(&["b@example.com", "c@example.com", "d@example.com"]);
    let failed = handler.handle_event(batch, now(), far()).await.unwrap();

    assert_eq!(failures(&failed), vec!["4000000"], "the first record: the whole batch again");
    let meta = handler.source.meta();
    assert_eq!(meta.last_result.as_deref(), Some("failed"));
    assert_eq!(meta.last_hash, None, "after a failure Mailcow's state is unknown");
    assert_eq!(meta.last_error.as_deref(), Some("server_error: fake failure"));

    let retried = handler.handle_event(stream(&["b@example.com"]), now(), far()).await.unwrap();

    assert!(failures(&retried).is_empty());
    assert_eq!(handler.blocklist.pushes(), 3);
    assert!(handler.blocklist.last_text().contains("/^b@example\\.com$/i"));
    handler.metrics.flush().unwrap();
    let emf = metrics.text();
    assert!(emf.contains("\"RetryableFailures\":3"), "{emf}");
}

#[tokio::test]
async fn a_rejected_push_also_fails_the_batch_since_mailcow_lags_the_table() {
    let (handler, _) = handler_with(false, MailcowMode::Map);
    handler.source.suppress("a@example.com", SuppressionReason::HardBounce, None);
    handler.blocklist.fail_next(false, false);

    let response = handler.handle_event(stream(&["a@example.com"]), now(), far()).await.unwrap();

    assert_eq!(failures(&response).len(), 1);
}

#[tokio::test]
async fn a_scheduled_run_that_fails_returns_an_error() {
    let (handler, _) = handler_with(false, MailcowMode::Map);
    handler.blocklist.fail_next(true, false);

    let err = handler.handle_event(scheduled(), now(), far()).await.unwrap_err();

    assert!(matches!(err, SyncError::Incomplete(_)), "{err}");
    assert!(err.to_string().contains("mailcow push failed (server_error)"), "{err}");
}

#[tokio::test]
async fn an_auth_failure_stops_stream_runs_from_calling_mailcow_until_the_backoff_ends() {
    let (handler, _) = handler_with(false, MailcowMode::Map);
    handler.source.suppress("a@example.com", SuppressionReason::HardBounce, None);
    handler.blocklist.fail_next(false, true);

    let refused = handler.handle_event(stream(&["a@example.com"]), now(), far()).await.unwrap();
    let t1 = now() + Duration::minutes(3);
    let skipped = handler.handle_event(stream(&["a@example.com"]), t1, far()).await.unwrap();

    assert_eq!(failures(&refused).len(), 1);
    assert_eq!(failures(&skipped).len(), 1, "still failing: the key is not fixed");
    assert_eq!(handler.blocklist.pushes(), 1, "the second stream run did not call Mailcow");
    assert_eq!(handler.source.meta().auth_failed_at, Some(now()));

    let after_backoff = now() + DEFAULT_AUTH_BACKOFF + Duration::seconds(1);
    let fixed = handler.handle_event(stream(&["a@example.com"]), after_backoff, far()).await;

    assert!(failures(&fixed.unwrap()).is_empty());
    assert_eq!(handler.blocklist.pushes(), 2);
    assert_eq!(handler.source.meta().auth_failed_at, None, "a success clears the brake");
}

#[tokio::test]
async fn the_scheduled_run_tries_once_even_during_the_auth_backoff() {
    let (handler, _) = handler_with(false, MailcowMode::Map);
    handler.blocklist.fail_next(false, true);
    handler.handle_event(stream(&["a@example.com"]), now(), far()).await.unwrap();
    handler.blocklist.fail_next(false, true);

    let still_refused =
        handler.handle_event(scheduled(), now() + Duration::minutes(1), far()).await;
    let fixed = handler.handle_event(scheduled(), now() + Duration::minutes(2), far()).await;

    assert!(still_refused.is_err());
    assert!(fixed.is_ok());
    assert_eq!(handler.blocklist.pushes(), 3, "one attempt per scheduled run");
    let after =
        handler.handle_event(stream(&["a@example.com"]), now() + Duration::minutes(3), far());
    assert!(failures(&after.await.unwrap()).is_empty(), "the brake was lifted by the success");
}

#[tokio::test]
async fn a_stream_batch_sees_a_suppression_the_index_does_not_show_yet() {
    let (handler, _) = handler_with(false, MailcowMode::Map);
    handler.source.suppress("fresh@example.com", SuppressionReason::Complaint, None);
    handler.source.lock().lagging.insert("fresh@example.com".into());

    handler.handle_event(stream(&["fresh@example.com"]), now(), far()).await.unwrap();

    assert!(handler.blocklist.last_text().contains("/^fresh@example\\.com$/i"));
}

#[tokio::test]
async fn a_lost_race_on_the_sync_state_clears_the_hash_and_fails_the_batch() {
    let (handler, _) = handler_with(false, MailcowMode::Map);
    handler.source.suppress("a@example.com", SuppressionReason::HardBounce, None);
    handler.source.lock().steal_next_save = true;

    let raced = handler.handle_event(stream(&["a@example.com"]), now(), far()).await.unwrap();

    assert_eq!(failures(&raced).len(), 1);
    assert_eq!(handler.source.meta().last_hash, None, "the other writer's hash is not trusted");
    handler.handle_event(stream(&["a@example.com"]), now(), far()).await.unwrap();
    assert_eq!(handler.blocklist.pushes(), 2, "the next run pushes whatever the table says");
}

#[tokio::test]
async fn an_unknown_payload_fails_the_invocation() {
    let (handler, _) = handler_with(false, MailcowMode::Map);

    let err = handler.handle_event(json!({"hello": "world"}), now(), far()).await.unwrap_err();

    assert!(matches!(err, SyncError::Event(_)));
    assert_eq!(handler.blocklist.pushes(), 0);
}

// ---------------------------------------------------------------------------------------------
// SES account list
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn ses_puts_new_suppressions_and_deletes_released_ones_and_marks_the_items() {
    let handler = handler();
    handler.source.suppress("hard@example.com", SuppressionReason::HardBounce, None);
    handler.source.suppress("annoyed@example.com", SuppressionReason::Complaint, None);
    handler.source.suppress("*@domain.example", SuppressionReason::Manual, None);
    handler.handle_event(stream(&["hard@example.com"]), now(), far()).await.unwrap();

    assert_eq!(
        ses(&handler).listed(),
        BTreeMap::from([
            ("annoyed@example.com".to_owned(), SesReason::Complaint),
            ("hard@example.com".to_owned(), SesReason::Bounce),
        ]),
        "domains are not sent to SES"
    );
    assert!(handler.source.listed("hard@example.com"));
    assert!(!handler.source.listed("*@domain.example"));

    handler.source.release("hard@example.com");
    handler.handle_event(stream(&["hard@example.com"]), now(), far()).await.unwrap();

    assert_eq!(ses(&handler).listed().len(), 1);
    assert!(!handler.source.listed("hard@example.com"), "ses_listed removed after the delete");
}

#[tokio::test(start_paused = true)]
async fn expired_suppressions_are_deleted_from_ses() {
    let handler = handler();
    let ends = now() + Duration::hours(1);
    handler.source.suppress("soft@example.com", SuppressionReason::SoftBounce, Some(ends));
    handler.handle_event(scheduled(), now(), far()).await.unwrap();
    assert_eq!(ses(&handler).listed().get("soft@example.com"), Some(&SesReason::Bounce));

    handler.handle_event(scheduled(), ends + Duration::minutes(1), far()).await.unwrap();

    assert!(ses(&handler).listed().is_empty());
    assert!(!handler.source.listed("soft@example.com"));
}

#[tokio::test(start_paused = true)]
async fn marking_ses_listed_converges_without_a_push_or_another_ses_call() {
    let handler = handler();
    handler.source.suppress("hard@example.com", SuppressionReason::HardBounce, None);
    handler.handle_event(stream(&["hard@example.com"]), now(), far()).await.unwrap();
    let (pushes, calls) = (handler.blocklist.pushes(), ses(&handler).calls());

    // The ses_listed write is a stream record of its own; the invocation it causes finds
    // nothing to do.
    let echo = handler.handle_event(stream(&["hard@example.com"]), now(), far()).await.unwrap();

    assert!(failures(&echo).is_empty());
    assert_eq!(handler.blocklist.pushes(), pushes);
    assert_eq!(ses(&handler).calls(), calls);
    assert_eq!(handler.source.lock().ses_listed_writes, 1);
}

#[tokio::test(start_paused = true)]
async fn ses_work_stops_at_the_budget_and_the_next_run_resumes_it() {
    let handler = handler();
    for i in 0..5 {
        let key = format!("user{i}@example.com");
        handler.source.suppress(&key, SuppressionReason::HardBounce, None);
    }

    // Each call takes one (paused, auto-advancing) second: calls start at 0, 1 and 2 s.
    let budget = Instant::now() + std::time::Duration::from_millis(2500);
    let first = handler.handle_event(scheduled(), now(), budget).await.unwrap();

    assert_eq!(ses(&handler).listed().len(), 3);
    assert!(first["summary"].as_str().unwrap().contains("remaining 2"), "{first}");

    handler.handle_event(stream(&["user0@example.com"]), now(), far()).await.unwrap();

    assert_eq!(ses(&handler).listed().len(), 5);
    assert_eq!(ses(&handler).calls(), 5, "no address was put twice");
    assert!((0..5).all(|i| handler.source.listed(&format!("user{i}@example.com"))));
}

#[tokio::test(start_paused = true)]
async fn a_ses_outage_leaves_the_work_for_later_without_failing_the_batch() {
    let handler = handler();
    handler.source.suppress("a@example.com", SuppressionReason::HardBounce, None);
    handler.source.suppress("b@example.com", SuppressionReason::HardBounce, None);
    *ses(&handler).down.lock().unwrap() = true;

    let response = handler.handle_event(stream(&["a@example.com"]), now(), far()).await.unwrap();

    assert!(failures(&response).is_empty(), "the table keeps the pending work");
    assert_eq!(ses(&handler).calls(), 1, "stopped at the first retryable failure");
    assert!(!handler.source.listed("a@example.com"));

    *ses(&handler).down.lock().unwrap() = false;
    handler.handle_event(scheduled(), now(), far()).await.unwrap();
    assert_eq!(ses(&handler).listed().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_address_ses_refuses_does_not_block_the_others() {
    let handler = handler();
    handler.source.suppress("a@example.com", SuppressionReason::HardBounce, None);
    handler.source.suppress("b@example.com", SuppressionReason::HardBounce, None);
    ses(&handler).refused.lock().unwrap().insert("a@example.com".into());

    let answer = handler.handle_event(scheduled(), now(), far()).await.unwrap();

    assert!(answer["summary"].as_str().unwrap().contains("failed 1"), "{answer}");
    assert!(handler.source.listed("b@example.com"));
    assert!(!handler.source.listed("a@example.com"), "tried again by later runs");
}

#[tokio::test(start_paused = true)]
async fn a_deleted_item_that_was_on_the_ses_list_is_removed_from_ses() {
    let handler = handler();
    handler.source.suppress("erased@example.com", SuppressionReason::HardBounce, None);
    handler.handle_event(scheduled(), now(), far()).await.unwrap();
    assert_eq!(ses(&handler).listed().len(), 1);
    handler.source.delete("erased@example.com");
    *ses(&handler).down.lock().unwrap() = true;

    let remove = stream_records(vec![("REMOVE", "erased@example.com", Some(true))]);
    let failed = handler.handle_event(remove.clone(), now(), far()).await.unwrap();

    assert_eq!(failures(&failed).len(), 1, "only this batch knows the entry must go");

    *ses(&handler).down.lock().unwrap() = false;
    let retried = handler.handle_event(remove, now(), far()).await.unwrap();

    assert!(failures(&retried).is_empty());
    assert!(ses(&handler).listed().is_empty());
}

#[tokio::test]
async fn with_ses_sync_off_no_ses_call_is_made_and_released_entries_are_not_read() {
    let (handler, _) = handler_with(false, MailcowMode::Map);
    handler.source.suppress("a@example.com", SuppressionReason::HardBounce, None);

    let answer = handler.handle_event(scheduled(), now(), far()).await.unwrap();

    assert!(!answer["summary"].as_str().unwrap().contains("ses"), "{answer}");
    assert!(!handler.source.listed("a@example.com"));
    assert_eq!(handler.source.lock().ses_listed_writes, 0);
}
