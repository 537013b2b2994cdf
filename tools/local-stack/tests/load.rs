//! Load with faults: over 10,000 SES notifications through the whole local pipeline (SNS ->
//! SQS -> the real `ingest-feedback` -> DynamoDB Local -> stream -> the real `sync-mailcow` ->
//! the Mailcow and SES simulators), every one accounted for, while
//!
//! - the table's DynamoDB Local is killed (SIGKILL) while ingest has a batch in hand and is
//!   started again on its on-disk data,
//! - Mailcow answers `type: danger` with HTTP 200, then times out, while a stream batch and the
//!   schedule meet each fault,
//! - Mailcow refuses the sync's credentials (API allow-list) in the last wave,
//! - SES repeats notifications and reports deliveries before the bounces that preceded them.
//!
//! The run must end in exactly the state the domain policy predicts: every table item, the
//! Mailcow map and what Rspamd would reject, the SES list, every queue, one logged outcome per
//! notification; nothing applied twice, nothing lost, and fail2ban never triggered. The test
//! prints the run's figures (throughput, time split, calls per suppression); BENCHMARKS.md
//! reports them.
//!
//! Needs `MOTO_ENDPOINT` and `DYNAMODB_LOCAL_DIR` (scripts/test starts moto and installs
//! DynamoDB Local) and the workspace binaries. About five minutes on two cores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{SubsecRound, Utc};
use feedback_domain::AddressHasher;
use local_stack::check;
use local_stack::dynamodb_local::DynamoDbLocal;
use local_stack::figures::Figures;
use local_stack::generator::{self, Mix};
use local_stack::sims::{self, MailcowControl};
use local_stack::stack::{AwsFault, Faults, Stack, StackConfig, run_scenario};
use serde_json::json;

mod common;

const SEED: u64 = 20_261_204;
const MAILCOW_KEY: &str = "LOCAL-STACK-LOAD-KEY-0001";
const HASH_KEY: &str = "local-stack-load-test-hash-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_notifications_end_exactly_as_expected_through_crashes_and_mailcow_faults() {
    let bin_dir = common::bin_dir();
    let mailcow = sims::start_mailcow(&bin_dir, MAILCOW_KEY).await.unwrap();
    // SES's one request per second would make 1,500 suppressions a 25-minute run: the
    // simulator does not throttle here and the sync does not pace (SES_MIN_INTERVAL_MS=0).
    // The pacing itself is tested in ses-account-list and in the end-to-end test.
    let ses = sims::start_ses(&bin_dir, 0).await.unwrap();
    let sync_environment = BTreeMap::from([
        ("SES_MIN_INTERVAL_MS".to_owned(), "0".to_owned()),
        // A Mailcow that hangs is given up on after 1 s per attempt, not 20.
        ("MAILCOW_TIMEOUT_SECONDS".to_owned(), "1".to_owned()),
    ]);
    // A DynamoDB Local of this test's own, with its data on disk: it is killed mid-run, which
    // the other tests' shared one must not be. Its port is known before it is needed.
    let jar_dir = PathBuf::from(common::env("DYNAMODB_LOCAL_DIR"));
    let run = common::run(
        "load",
        String::new(),
        (&mailcow.url, MAILCOW_KEY),
        &ses.url,
        HASH_KEY,
        sync_environment,
    );
    let log_dir = run.log_dir.clone();
    std::fs::create_dir_all(&log_dir).unwrap();
    let dynamodb = DynamoDbLocal::start(
        &jar_dir,
        &log_dir.join("dynamodb-data"),
        &log_dir.join("dynamodb-local.log"),
    )
    .await
    .unwrap();
    let config = StackConfig { dynamodb_endpoint: dynamodb.endpoint(), ..run.config };
    let dynamodb = Arc::new(tokio::sync::Mutex::new(dynamodb));
    let stack = Stack::start(&config).await.unwrap();

    let base = (Utc::now() - chrono::Duration::days(1)).trunc_subsecs(0);
    let scenario = generator::generate(SEED, base, Mix::load()).unwrap();
    assert!(scenario.notifications.len() >= 10_000, "{}", scenario.notifications.len());
    let expected =
        generator::expect(&scenario, &stack.policy, stack.retention, |w| (0..w.len()).collect())
            .await
            .unwrap();
    let control = MailcowControl::new(&mailcow.url);
    let faults = Faults {
        aws: AwsFault::Crash { dynamodb: Arc::clone(&dynamodb), down: Duration::from_secs(3) },
        mailcow: control.clone(),
        mailcow_faults: vec![json!({"fault": "danger"}), json!({"fault": "slow", "millis": 3000})],
        mailcow_outage: Duration::from_secs(5),
        refuse_credentials: true,
    };
    let report = run_scenario(&stack, &scenario, Some(&faults), Duration::from_secs(600), |l| {
        eprintln!("{l}")
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}; function logs in {}", log_dir.display()));

    let now = Utc::now();
    let observed = check::observe(&stack, &control, &ses.url, &expected, now).await.unwrap();
    let differences = check::differences(
        &scenario,
        &expected,
        &report,
        &observed,
        now,
        &AddressHasher::new(HASH_KEY.as_bytes()),
    );
    let figures = Figures::collect(&stack, &report, &expected, &control, &ses.url).await.unwrap();
    eprintln!(
        "{} notifications, waves {:?} s, {} stream batches given up, {} failed schedules",
        scenario.notifications.len(),
        report.wave_seconds,
        report.stream_given_up,
        report.failed_schedules
    );
    for line in figures.lines() {
        eprintln!("{line}");
    }

    // The faults happened.
    assert_eq!(report.dynamodb_restarts, 1, "DynamoDB Local was not restarted");
    let sqs = &stack.sqs_poller.as_ref().unwrap().stats;
    assert!(
        sqs.reported_failed.load(std::sync::atomic::Ordering::SeqCst) > 0
            || sqs.failed_invocations.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "no ingest batch met the crash"
    );
    assert_eq!(report.failed_schedules, 2, "one failed schedule per Mailcow fault wave");
    let state = control.state().await.unwrap();
    assert!(state["auth_failures"].as_u64().unwrap() > 0, "the refusal was never met");
    assert_eq!(state["banned"], json!(false), "the sync must stay below fail2ban's limit");
    // And the system ended exactly where the policy says.
    assert!(
        differences.is_empty(),
        "{} differences from the expected state:\n{}\nfunction logs in {}",
        differences.len(),
        differences.iter().take(40).cloned().collect::<Vec<_>>().join("\n"),
        log_dir.display()
    );
    assert_eq!(observed.outcomes.len(), scenario.notifications.len(), "an outcome for each");
    assert!(expected.blocked_at(now).len() > 1_000, "the load suppresses enough to matter");
    assert_eq!(figures.notifications, scenario.notifications.len());

    stack.stop().await;
    mailcow.stop().await;
    ses.stop().await;
    drop(faults);
    Arc::try_unwrap(dynamodb).ok().unwrap().into_inner().stop().await;
    // The database is only needed to look into a failed run; the logs stay.
    std::fs::remove_dir_all(log_dir.join("dynamodb-data")).unwrap();
}
