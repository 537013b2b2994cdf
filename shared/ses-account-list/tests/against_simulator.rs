//! The adapter with the real `aws-sdk-sesv2` client against the SESv2 suppression-list simulator
//! on loopback: outcomes, exact matching, pagination, throttling, retries and error kinds.

// The helpers below are test code too (clippy.toml allows unwrap only inside `#[test]` fns).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::error::Error as _;
use std::num::NonZeroU32;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sesv2::config::Credentials;
use feedback_domain::EmailAddress;
use feedback_domain::ports::Retryable;
use ses_account_list::{
    DeleteOutcome, SesAccountList, SesAccountListConfig, SesListError, SesReason,
};
use simulators::sesv2::{self, Config, Entry, Reason, Throttle};

async fn sdk_client(endpoint: &str) -> aws_sdk_sesv2::Client {
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("eu-central-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(endpoint)
        .load()
        .await;
    aws_sdk_sesv2::Client::new(&shared)
}

/// Fast pacing for tests: no limiter, short backoff, a few attempts.
fn quick() -> SesAccountListConfig {
    SesAccountListConfig {
        min_interval: Duration::ZERO,
        max_attempts: NonZeroU32::new(3).unwrap(),
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
    }
}

async fn adapter(sim: &sesv2::Handle, config: SesAccountListConfig) -> SesAccountList {
    SesAccountList::new(sdk_client(sim.url()).await, config)
}

fn address(raw: &str) -> EmailAddress {
    EmailAddress::parse(raw).unwrap()
}

#[tokio::test]
async fn put_then_get_finds_the_address_with_its_reason() {
    let sim = sesv2::spawn(Config::unthrottled()).await.unwrap();
    let list = adapter(&sim, quick()).await;
    let who = address("Bounced.User@Example.com");

    list.put(&who, SesReason::Bounce).await.unwrap();
    let entry = list.get(&who).await.unwrap().unwrap();

    assert_eq!(entry.address, "bounced.user@example.com");
    assert_eq!(entry.reason, SesReason::Bounce);
    assert_eq!(entry.last_update, sim.entry("bounced.user@example.com").unwrap().last_update_time);
}

#[tokio::test]
async fn put_of_a_listed_address_updates_its_reason() {
    let sim = sesv2::spawn(Config::unthrottled()).await.unwrap();
    let list = adapter(&sim, quick()).await;
    let who = address("twice@example.com");

    list.put(&who, SesReason::Bounce).await.unwrap();
    list.put(&who, SesReason::Complaint).await.unwrap();

    assert_eq!(list.get(&who).await.unwrap().unwrap().reason, SesReason::Complaint);
    assert_eq!(sim.entries().len(), 1);
}

#[tokio::test]
async fn delete_removes_the_address_so_get_finds_nothing() {
    let sim = sesv2::spawn(Config::unthrottled()).await.unwrap();
    sim.seed(Entry::new("gone@example.com", Reason::Complaint));
    let list = adapter(&sim, quick()).await;
    let who = address("gone@example.com");

    let outcome = list.delete(&who).await.unwrap();

    assert_eq!(outcome, DeleteOutcome::Deleted);
    assert_eq!(list.get(&who).await.unwrap(), None);
    assert!(sim.entries().is_empty());
}

#[tokio::test]
async fn deleting_an_unknown_address_is_a_not_found_outcome_not_an_error() {
    let sim = sesv2::spawn(Config::unthrottled()).await.unwrap();
    sim.seed(Entry::new("other@example.com", Reason::Bounce));
    let list = adapter(&sim, quick()).await;

    let outcome = list.delete(&address("never-listed@example.com")).await.unwrap();

    assert_eq!(outcome, DeleteOutcome::NotFound);
    assert_eq!(sim.entries().len(), 1);
    assert_eq!(sim.stats().delete, 1, "a not-found answer must not be retried");
}

#[tokio::test]
async fn matching_is_exact_so_a_mixed_case_entry_is_reached_only_through_its_listed_form() {
    let sim = sesv2::spawn(Config::unthrottled()).await.unwrap();
    sim.seed(Entry::new("Annoyed@Example.com", Reason::Complaint));
    let list = adapter(&sim, quick()).await;
    let normalised = address("Annoyed@Example.com");

    let by_normalised = list.get(&normalised).await.unwrap();
    let missed = list.delete(&normalised).await.unwrap();
    let page = list.list_page(None, 10).await.unwrap();
    let listed = &page.entries[0];
    let deleted = list.delete_entry(listed).await.unwrap();

    assert_eq!(by_normalised, None);
    assert_eq!(missed, DeleteOutcome::NotFound);
    assert_eq!(listed.address, "Annoyed@Example.com");
    assert_eq!(listed.normalized_address().unwrap(), normalised);
    assert_eq!(deleted, DeleteOutcome::Deleted);
    assert!(sim.entries().is_empty());
}

#[tokio::test]
async fn listing_25_entries_in_pages_of_10_returns_each_exactly_once() {
    let sim = sesv2::spawn(Config::unthrottled()).await.unwrap();
    let mut expected = BTreeSet::new();
    for i in 0..25 {
        let raw = format!("user{i:02}@example.com");
        let reason = if i % 3 == 0 { Reason::Complaint } else { Reason::Bounce };
        sim.seed(Entry::new(raw.clone(), reason));
        expected.insert(raw);
    }
    let list = adapter(&sim, quick()).await;

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut token = None;
    loop {
        let page = list.list_page(token, 10).await.unwrap();
        sizes.push(page.entries.len());
        seen.extend(page.entries);
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }

    assert_eq!(sizes, [10, 10, 5]);
    let addresses: BTreeSet<String> = seen.iter().map(|e| e.address.clone()).collect();
    assert_eq!(addresses.len(), seen.len(), "an entry came back twice");
    assert_eq!(addresses, expected);
    let complaints = seen.iter().filter(|e| e.reason == SesReason::Complaint).count();
    assert_eq!(complaints, 9);
}

#[tokio::test]
async fn an_invalid_next_token_is_reported_and_not_retried() {
    let sim = sesv2::spawn(Config::unthrottled()).await.unwrap();
    let list = adapter(&sim, quick()).await;

    let error = list.list_page(Some("not-a-token".into()), 10).await.unwrap_err();

    assert!(matches!(error, SesListError::InvalidNextToken { .. }), "{error:?}");
    assert!(!error.is_retryable());
    assert_eq!(sim.stats().list, 1);
}

#[tokio::test]
async fn a_bad_request_is_not_retried_and_not_retryable() {
    let sim = sesv2::spawn(Config::unthrottled()).await.unwrap();
    let list = adapter(&sim, quick()).await;

    let error = list.list_page(None, 0).await.unwrap_err();

    assert!(matches!(error, SesListError::BadRequest { .. }), "{error:?}");
    assert!(!error.is_retryable());
    assert!(error.source().is_some(), "the SDK error must stay attached");
    assert_eq!(sim.stats().list, 1);
}

#[tokio::test]
async fn throttled_calls_wait_and_retry_until_they_succeed() {
    let sim = sesv2::spawn(Config { throttle: Some(Throttle::every(Duration::from_millis(200))) })
        .await
        .unwrap();
    let config = SesAccountListConfig {
        min_interval: Duration::ZERO,
        max_attempts: NonZeroU32::new(10).unwrap(),
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
    };
    let list = adapter(&sim, config).await;

    for i in 0..4 {
        list.put(&address(&format!("t{i}@example.com")), SesReason::Bounce).await.unwrap();
    }

    let stats = sim.stats();
    assert_eq!(sim.entries().len(), 4);
    assert!(stats.throttled > 0, "back-to-back calls should have met the throttle: {stats:?}");
    assert_eq!(stats.put, 4 + stats.throttled);
}

#[tokio::test]
async fn throttling_on_every_attempt_is_reported_as_retryable() {
    let sim = sesv2::spawn(Config { throttle: Some(Throttle::every(Duration::from_secs(60))) })
        .await
        .unwrap();
    let list = adapter(&sim, quick()).await;
    list.list_page(None, 10).await.unwrap();

    let error = list.list_page(None, 10).await.unwrap_err();

    assert!(matches!(error, SesListError::Throttled { .. }), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(sim.stats().throttled, 3, "one 429 per attempt");
}

#[tokio::test]
async fn pacing_at_the_limiter_interval_keeps_the_simulator_from_throttling() {
    // The simulator refills every 100 ms and the adapter starts a request every 200 ms: the
    // margin absorbs loopback jitter (the first request also opens the connection).
    let sim = sesv2::spawn(Config { throttle: Some(Throttle::every(Duration::from_millis(100))) })
        .await
        .unwrap();
    let config = SesAccountListConfig {
        min_interval: Duration::from_millis(200),
        max_attempts: NonZeroU32::MIN,
        ..quick()
    };
    let list = adapter(&sim, config).await;
    let clone = list.clone();
    let (a, b, c, d) = (
        address("a@x.example"),
        address("b@x.example"),
        address("c@x.example"),
        address("d@x.example"),
    );

    let (ra, rb, rc, rd) = tokio::join!(
        list.put(&a, SesReason::Bounce),
        list.put(&b, SesReason::Bounce),
        clone.put(&c, SesReason::Complaint),
        list.get(&d),
    );

    ra.unwrap();
    rb.unwrap();
    rc.unwrap();
    assert_eq!(rd.unwrap(), None);
    let stats = sim.stats();
    assert_eq!((stats.requests, stats.throttled), (4, 0), "{stats:?}");
}

#[tokio::test]
async fn a_server_error_is_retried_and_the_call_succeeds() {
    let sim = sesv2::spawn(Config::unthrottled()).await.unwrap();
    let list = adapter(&sim, quick()).await;
    sim.fail_next(2);

    list.put(&address("retry@example.com"), SesReason::Bounce).await.unwrap();

    let stats = sim.stats();
    assert_eq!((stats.failed, stats.put), (2, 3));
    assert!(sim.entry("retry@example.com").is_some());
}

#[tokio::test]
async fn server_errors_beyond_the_attempt_limit_are_reported_as_retryable() {
    let sim = sesv2::spawn(Config::unthrottled()).await.unwrap();
    let list = adapter(&sim, quick()).await;
    sim.fail_next(10);

    let error = list.delete(&address("x@example.com")).await.unwrap_err();

    assert!(matches!(error, SesListError::Service { status: 500, .. }), "{error:?}");
    assert!(error.is_retryable());
    assert!(error.source().is_some(), "the SDK error must stay attached");
    assert_eq!(sim.stats().failed, 3);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_retryable_dispatch_failure() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = sdk_client(&format!("http://127.0.0.1:{port}")).await;
    let list = SesAccountList::new(
        client,
        SesAccountListConfig { max_attempts: NonZeroU32::MIN, ..quick() },
    );

    let error = list.get(&address("x@example.com")).await.unwrap_err();

    assert!(matches!(error, SesListError::Dispatch { .. }), "{error:?}");
    assert!(error.is_retryable());
    assert!(!error.to_string().contains("x@example.com"));
}
