//! End-to-end: the real function binaries behind the Lambda Runtime API emulator, fed from moto's
//! SQS queue and table stream, with the Mailcow and SES simulators as the outside world. A seeded
//! scenario of several hundred SES notifications goes in through the SNS topic; moto becomes
//! unreachable mid-run and Mailcow fails for a while; the run must still end in exactly the state
//! the domain policy predicts: table, Mailcow map, SES list, queues, and one outcome per
//! notification.
//!
//! Needs `MOTO_ENDPOINT` and `DYNAMODB_LOCAL_ENDPOINT` (scripts/test starts both) and the
//! workspace binaries, which `cargo test` builds next to this test's executable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{SubsecRound, Utc};
use feedback_domain::AddressHasher;
use local_stack::check;
use local_stack::generator::{self, Mix};
use local_stack::sims::{self, MailcowControl};
use local_stack::stack::{Faults, Stack, run_scenario};

mod common;

const SEED: u64 = 20_261_102;
const MAILCOW_KEY: &str = "LOCAL-STACK-E2E-KEY-0001";
const HASH_KEY: &str = "local-stack-end-to-end-hash-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_scenario_ends_exactly_as_expected_despite_an_aws_outage_and_mailcow_failures() {
    let started = std::time::Instant::now();
    let bin_dir = common::bin_dir();
    let mailcow = sims::start_mailcow(&bin_dir, MAILCOW_KEY).await.unwrap();
    let ses = sims::start_ses(&bin_dir, 0).await.unwrap();
    let common::Run { config, log_dir } = common::run(
        "e2e",
        common::env("DYNAMODB_LOCAL_ENDPOINT"),
        (&mailcow.url, MAILCOW_KEY),
        &ses.url,
        HASH_KEY,
        Default::default(),
    );
    eprintln!("simulators up after {:?}", started.elapsed());
    let stack = Stack::start(&config).await.unwrap();
    eprintln!("stack up after {:?}", started.elapsed());

    let base = (Utc::now() - chrono::Duration::days(1)).trunc_subsecs(0);
    let scenario = generator::generate(SEED, base, Mix::standard()).unwrap();
    let expected =
        generator::expect(&scenario, &stack.policy, stack.retention, |w| (0..w.len()).collect())
            .await
            .unwrap();
    let control = MailcowControl::new(&mailcow.url);
    let faults = Faults::standard(control.clone(), Duration::from_secs(4), Duration::from_secs(5));
    let report = run_scenario(&stack, &scenario, Some(&faults), Duration::from_secs(150), |line| {
        eprintln!("{line}")
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}; function logs in {}", log_dir.display()));

    eprintln!("run done after {:?}", started.elapsed());
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

    eprintln!("observed after {:?}", started.elapsed());
    // The faults happened: connections were cut, calls failed, the schedule failed once.
    let sqs = &stack.sqs_poller.as_ref().unwrap().stats;
    let stream = &stack.stream_poller.as_ref().unwrap().stats;
    eprintln!(
        "{} notifications in {:.1} s (waves {:?}); proxy resets {}, sqs errors {}, \
         stream errors {}, stream retries {}, batch item failures {}, ingest invocations {}, \
         sync invocations {}",
        scenario.notifications.len(),
        report.total_seconds,
        report.wave_seconds,
        report.proxy_resets,
        sqs.sqs_errors.load(Ordering::Relaxed),
        stream.stream_errors.load(Ordering::Relaxed),
        stream.retries.load(Ordering::Relaxed),
        sqs.reported_failed.load(Ordering::Relaxed),
        stack.ingest.invocations(),
        stack.sync.invocations(),
    );
    assert!(report.proxy_resets > 0, "the moto outage cut no connection");
    assert_eq!(report.failed_schedules, 1, "the schedule during the Mailcow failure must fail");
    assert!(stream.retries.load(Ordering::Relaxed) > 0, "no stream batch met the Mailcow failure");
    assert!(
        differences.is_empty(),
        "{} differences from the expected state:\n{}\nfunction logs in {}",
        differences.len(),
        differences.join("\n"),
        log_dir.display()
    );
    assert_eq!(observed.outcomes.len(), scenario.notifications.len());
    assert!(expected.blocked_at(Utc::now()).len() > 40, "the scenario suppresses enough to matter");

    stack.stop().await;
    mailcow.stop().await;
    ses.stop().await;
}
