//! The verifier's policy and the certificate store: allow-list, validity, cache, pinned bundle,
//! fetch failures, and what errors say.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::num::NonZeroUsize;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use feedback_domain::ports::Retryable;
use sns_verify::{
    Certificate, CertificateError, CertificateSource, CertificateStore, EmptyAllowList, SnsMessage,
    Verifier, VerifyError,
};

/// Signed with the fixture certificate, named by a `sns.us-east-1` URL.
const US_EAST_1: &str = "sns-notification-ses-bounce-no-subject.signed-v1.django-ses.json";
/// Signed with the same certificate, named by a `sns.us-east-2` URL.
const US_EAST_2: &str = "sns-notification-plain.signed-v2.php-validator.json";
/// The file name SNS gave the fixture certificate.
const CERT_NAME: &str = "SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem";

type Store = CertificateStore<Arc<MemoryFetcher>>;

/// A store fetching through `fetcher`, plus a handle to count its fetches.
fn fetching(fetcher: MemoryFetcher) -> (Arc<Store>, Arc<MemoryFetcher>) {
    let fetcher = Arc::new(fetcher);
    (Arc::new(CertificateStore::new(Arc::clone(&fetcher))), fetcher)
}

fn allowing(store: &Arc<Store>, topics: &[&str]) -> Verifier<Arc<MemoryFetcher>> {
    Verifier::new(Arc::clone(store), topics.iter().map(|t| t.to_string()).collect()).unwrap()
}

fn at(raw: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(raw).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn a_second_verification_with_the_same_certificate_url_does_not_fetch_again() {
    let (store, fetcher) = fetching(MemoryFetcher::serving_fixture_cert());
    let json = load_json(US_EAST_1);
    let msg = SnsMessage::from_json(&json).unwrap();
    let verifier = allowing(&store, &[msg.topic_arn]);

    let first = verifier.verify(&msg, time_of(&msg)).await.unwrap();
    let second = verifier.verify(&msg, time_of(&msg)).await.unwrap();

    assert_eq!(first.certificate, CertificateSource::Fetched);
    assert_eq!(second.certificate, CertificateSource::Cached);
    assert_eq!(fetcher.fetches(), 1);
    assert_eq!(fetcher.urls(), [msg.signing_cert_url.unwrap()]);
    assert_eq!(store.cached_len(), 1);
}

#[tokio::test]
async fn every_ok_fixture_verifies_through_the_fetch_path_with_one_fetch_per_url() {
    let (store, fetcher) = fetching(MemoryFetcher::serving_fixture_cert());
    let jsons: Vec<_> = OK_FIXTURES.iter().map(|(name, _)| load_json(name)).collect();
    let msgs: Vec<_> = jsons.iter().map(|json| SnsMessage::from_json(json).unwrap()).collect();
    let topics: Vec<&str> = msgs.iter().map(|msg| msg.topic_arn).collect();
    let verifier = allowing(&store, &topics);

    for msg in &msgs {
        let verified = verifier.verify(msg, time_of(msg)).await;
        assert!(verified.is_ok(), "{}: {verified:?}", msg.message_id);
    }

    let mut urls = fetcher.urls();
    urls.sort();
    assert_eq!(
        urls,
        [
            format!("https://sns.us-east-1.amazonaws.com/{CERT_NAME}"),
            format!("https://sns.us-east-2.amazonaws.com/{CERT_NAME}"),
        ]
    );
}

#[tokio::test]
async fn the_oldest_cached_certificate_is_evicted_when_the_cache_is_full() {
    let fetcher = Arc::new(MemoryFetcher::serving_fixture_cert());
    let store = Arc::new(
        CertificateStore::new(Arc::clone(&fetcher)).with_cache_capacity(NonZeroUsize::MIN),
    );
    let (json_a, json_b) = (load_json(US_EAST_1), load_json(US_EAST_2));
    let a = SnsMessage::from_json(&json_a).unwrap();
    let b = SnsMessage::from_json(&json_b).unwrap();
    let verifier = allowing(&store, &[a.topic_arn, b.topic_arn]);

    let sources = [
        verifier.verify(&a, time_of(&a)).await.unwrap().certificate,
        verifier.verify(&a, time_of(&a)).await.unwrap().certificate,
        verifier.verify(&b, time_of(&b)).await.unwrap().certificate,
        verifier.verify(&a, time_of(&a)).await.unwrap().certificate,
    ];

    use CertificateSource::{Cached, Fetched};
    assert_eq!(sources, [Fetched, Cached, Fetched, Fetched]);
    assert_eq!(fetcher.fetches(), 3);
    assert_eq!(store.cached_len(), 1);
}

#[tokio::test]
async fn a_server_error_while_fetching_is_retryable_and_not_cached() {
    for status in [500, 502, 503, 504, 429, 408] {
        let (store, fetcher) = fetching(MemoryFetcher::new(Answer::Status(status)));
        let json = load_json(US_EAST_1);
        let msg = SnsMessage::from_json(&json).unwrap();
        let verifier = allowing(&store, &[msg.topic_arn]);

        let first = verifier.verify(&msg, time_of(&msg)).await.unwrap_err();
        let second = verifier.verify(&msg, time_of(&msg)).await.unwrap_err();

        assert!(matches!(first, VerifyError::CertificateFetch { .. }), "{status}: {first:?}");
        assert!(first.is_retryable(), "{status}");
        assert_eq!(first.reason_code(), "certificate_fetch");
        assert!(second.is_retryable());
        assert_eq!(fetcher.fetches(), 2, "failures are not cached");
    }
}

#[tokio::test]
async fn a_client_error_while_fetching_is_permanent() {
    for status in [400, 403, 404, 410] {
        let (store, _) = fetching(MemoryFetcher::new(Answer::Status(status)));
        let json = load_json(US_EAST_1);
        let msg = SnsMessage::from_json(&json).unwrap();

        let err = allowing(&store, &[msg.topic_arn]).verify(&msg, time_of(&msg)).await;

        let err = err.unwrap_err();
        assert!(matches!(err, VerifyError::CertificateFetch { .. }), "{status}: {err:?}");
        assert!(!err.is_retryable(), "{status}");
    }
}

#[tokio::test]
async fn an_unparsable_certificate_is_permanent() {
    let bodies: [&[u8]; 3] = [
        b"<html>not a certificate</html>",
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
    ];

    for body in bodies {
        let (store, _) = fetching(MemoryFetcher::new(Answer::Body(body.to_vec())));
        let json = load_json(US_EAST_1);
        let msg = SnsMessage::from_json(&json).unwrap();

        let err = allowing(&store, &[msg.topic_arn]).verify(&msg, time_of(&msg)).await;

        let err = err.unwrap_err();
        assert!(matches!(err, VerifyError::CertificateInvalid { .. }), "{err:?}");
        assert!(!err.is_retryable());
        assert_eq!(err.reason_code(), "certificate_invalid");
        assert_eq!(store.cached_len(), 0);
    }
}

#[tokio::test]
async fn a_der_certificate_body_is_accepted_too() {
    let pem = String::from_utf8(cert_pem()).unwrap();
    let base64: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, base64).unwrap();
    let (store, _) = fetching(MemoryFetcher::new(Answer::Body(der)));
    let json = load_json(US_EAST_1);
    let msg = SnsMessage::from_json(&json).unwrap();

    let verified = allowing(&store, &[msg.topic_arn]).verify(&msg, time_of(&msg)).await;

    assert_eq!(verified.unwrap().certificate, CertificateSource::Fetched);
}

#[tokio::test]
async fn a_pinned_bundle_is_used_without_fetching() {
    let fetcher = Arc::new(MemoryFetcher::serving_fixture_cert());
    let pinned = Certificate::load_bundle(&fixture_path(CERT_FILE)).unwrap();
    let store = Arc::new(CertificateStore::new(Arc::clone(&fetcher)).with_pinned(pinned));
    let jsons: Vec<_> = OK_FIXTURES.iter().map(|(name, _)| load_json(name)).collect();

    for json in &jsons {
        let msg = SnsMessage::from_json(json).unwrap();
        let verified = allowing(&store, &[msg.topic_arn]).verify(&msg, time_of(&msg)).await;
        assert_eq!(verified.unwrap().certificate, CertificateSource::Pinned);
    }

    assert_eq!(fetcher.fetches(), 0);
}

#[tokio::test]
async fn a_message_no_pinned_key_verifies_falls_back_to_fetching() {
    let fetcher = Arc::new(MemoryFetcher::serving_fixture_cert());
    let pinned = Certificate::load_bundle(&fixture_path(CERT_FILE)).unwrap();
    let store = Arc::new(CertificateStore::new(Arc::clone(&fetcher)).with_pinned(pinned));
    let json = load_json(BAD_FIXTURES[0]);
    let msg = SnsMessage::from_json(&json).unwrap();

    let err = allowing(&store, &[msg.topic_arn]).verify(&msg, time_of(&msg)).await.unwrap_err();

    assert!(matches!(err, VerifyError::SignatureMismatch), "{err:?}");
    assert_eq!(fetcher.fetches(), 1);
}

#[tokio::test]
async fn a_pinned_only_store_never_fetches_and_reports_a_mismatch() {
    let pinned = Certificate::load_bundle(&fixture_path(CERT_FILE)).unwrap();
    let store = Arc::new(CertificateStore::pinned_only(pinned));
    let json = load_json(BAD_FIXTURES[1]);
    let msg = SnsMessage::from_json(&json).unwrap();
    let verifier = Verifier::new(Arc::clone(&store), vec![msg.topic_arn.to_owned()]).unwrap();

    let err = verifier.verify(&msg, time_of(&msg)).await.unwrap_err();

    assert!(!store.can_fetch());
    assert!(matches!(err, VerifyError::SignatureMismatch), "{err:?}");
}

#[tokio::test]
async fn a_timestamp_outside_the_certificate_validity_is_refused() {
    // The fixture certificate is valid 2021-09-07T00:00:00Z ..= 2022-08-17T23:59:59Z.
    let cases = [
        ("2022-08-18T00:00:00.000Z", "certificate_expired"),
        ("2031-01-01T00:00:00.000Z", "certificate_expired"),
        ("2021-09-06T23:59:59.999Z", "certificate_not_yet_valid"),
    ];

    for (timestamp, reason) in cases {
        let (store, _) = fetching(MemoryFetcher::serving_fixture_cert());
        let json = load_json(US_EAST_1);
        let msg = SnsMessage { timestamp, ..SnsMessage::from_json(&json).unwrap() };

        let err = allowing(&store, &[msg.topic_arn]).verify(&msg, at(timestamp)).await;

        let err = err.unwrap_err();
        assert_eq!(err.reason_code(), reason, "{timestamp}: {err:?}");
        assert!(!err.is_retryable());
    }
}

#[tokio::test]
async fn a_pinned_certificate_is_not_used_outside_its_validity() {
    let fetcher = Arc::new(MemoryFetcher::serving_fixture_cert());
    let pinned = Certificate::load_bundle(&fixture_path(CERT_FILE)).unwrap();
    let store = Arc::new(CertificateStore::new(Arc::clone(&fetcher)).with_pinned(pinned));
    let json = load_json(US_EAST_1);
    let timestamp = "2022-08-18T00:00:00.000Z";
    let msg = SnsMessage { timestamp, ..SnsMessage::from_json(&json).unwrap() };

    let err = allowing(&store, &[msg.topic_arn]).verify(&msg, at(timestamp)).await.unwrap_err();

    assert!(matches!(err, VerifyError::CertificateExpired { .. }), "{err:?}");
    assert_eq!(fetcher.fetches(), 1, "the expired pinned certificate was skipped");
}

#[tokio::test]
async fn a_topic_outside_the_allow_list_is_refused_despite_a_valid_signature() {
    let (store, fetcher) = fetching(MemoryFetcher::serving_fixture_cert());
    let json = load_json(US_EAST_1);
    let msg = SnsMessage::from_json(&json).unwrap();
    let own_topic = allowing(&store, &[msg.topic_arn]);
    let other_topics = allowing(
        &store,
        &["arn:aws:sns:us-east-1:364852123998:test-email-2", "arn:aws:sns:eu-central-1:1:x"],
    );

    own_topic.verify(&msg, time_of(&msg)).await.unwrap();
    let err = other_topics.verify(&msg, time_of(&msg)).await.unwrap_err();

    assert!(matches!(err, VerifyError::TopicNotAllowed { .. }), "{err:?}");
    assert_eq!(err.reason_code(), "topic_not_allowed");
    assert!(!err.is_retryable());
    assert_eq!(fetcher.fetches(), 1, "only the allowed verification fetched");
}

#[tokio::test]
async fn a_refused_certificate_url_is_never_fetched() {
    let (store, fetcher) = fetching(MemoryFetcher::serving_fixture_cert());
    let json = load_json(US_EAST_1);
    let original = SnsMessage::from_json(&json).unwrap();
    let verifier = allowing(&store, &[original.topic_arn]);

    for url in [
        format!("http://sns.us-east-1.amazonaws.com/{CERT_NAME}"),
        format!("https://my-bucket.s3.amazonaws.com/{CERT_NAME}"),
        "https://sns.us-east-1.amazonaws.com.evil.example/x.pem".to_owned(),
    ] {
        let msg = SnsMessage { signing_cert_url: Some(&url), ..original };

        let err = verifier.verify(&msg, time_of(&msg)).await.unwrap_err();

        assert_eq!(err.reason_code(), "bad_certificate_url", "{url}");
    }
    assert_eq!(fetcher.fetches(), 0);
}

#[tokio::test]
async fn unsigned_or_malformed_envelopes_are_refused_before_any_fetch() {
    let (store, fetcher) = fetching(MemoryFetcher::serving_fixture_cert());
    let json = load_json(US_EAST_1);
    let ok = SnsMessage::from_json(&json).unwrap();
    let verifier = allowing(&store, &[ok.topic_arn]);
    let cases = [
        (SnsMessage { signature: None, ..ok }, "missing_signature"),
        (SnsMessage { signing_cert_url: None, ..ok }, "missing_signature"),
        (SnsMessage { signature_version: None, ..ok }, "missing_signature"),
        (SnsMessage { signature_version: Some("3"), ..ok }, "unsupported_signature_version"),
        (SnsMessage { signature: Some("not base64!"), ..ok }, "malformed_signature"),
        (SnsMessage { timestamp: "yesterday", ..ok }, "bad_timestamp"),
        (SnsMessage { kind: "Heartbeat", ..ok }, "unsupported_type"),
        (SnsMessage { kind: "SubscriptionConfirmation", ..ok }, "missing_field"),
    ];

    for (msg, reason) in cases {
        let err = verifier.verify(&msg, time_of(&ok)).await.unwrap_err();
        assert_eq!(err.reason_code(), reason, "{err:?}");
        assert!(!err.is_retryable(), "{err:?}");
    }
    assert_eq!(fetcher.fetches(), 0);
}

#[tokio::test]
async fn a_timestamp_ahead_of_the_clock_is_retryable_and_an_old_one_is_fine() {
    let (store, _) = fetching(MemoryFetcher::serving_fixture_cert());
    let json = load_json(US_EAST_1);
    let msg = SnsMessage::from_json(&json).unwrap();
    let verifier = allowing(&store, &[msg.topic_arn]);
    let sent = time_of(&msg);

    let ahead = verifier.verify(&msg, sent - TimeDelta::hours(1)).await.unwrap_err();
    let slight_skew = verifier.verify(&msg, sent - TimeDelta::minutes(5)).await;
    let redriven_years_later = verifier.verify(&msg, sent + TimeDelta::days(4 * 365)).await;

    assert!(matches!(ahead, VerifyError::TimestampInFuture { .. }), "{ahead:?}");
    assert!(ahead.is_retryable());
    assert!(slight_skew.is_ok(), "{slight_skew:?}");
    assert!(redriven_years_later.is_ok(), "{redriven_years_later:?}");
}

#[tokio::test]
async fn error_messages_never_quote_the_message_body() {
    let (store, _) = fetching(MemoryFetcher::serving_fixture_cert());
    let json = load_json(US_EAST_1);
    let ok = SnsMessage::from_json(&json).unwrap();
    assert!(ok.message.contains("bounce@simulator.amazonses.com"));
    let allowed = allowing(&store, &[ok.topic_arn]);
    let other = allowing(&store, &["arn:aws:sns:eu-central-1:1:x"]);

    let errors = [
        allowed.verify(&SnsMessage { signature_version: Some("2"), ..ok }, time_of(&ok)).await,
        other.verify(&ok, time_of(&ok)).await,
        allowed.verify(&SnsMessage { timestamp: "2030-01-01T00:00:00Z", ..ok }, time_of(&ok)).await,
        allowed.verify(&SnsMessage { kind: ok.message, ..ok }, time_of(&ok)).await,
        allowed
            .verify(&SnsMessage { signature_version: Some(ok.message), ..ok }, time_of(&ok))
            .await,
        other
            .verify(
                &SnsMessage { topic_arn: "arn:bounce@simulator.amazonses.com", ..ok },
                time_of(&ok),
            )
            .await,
    ];

    for err in errors {
        let text = error_chain(&err.unwrap_err());
        assert!(!text.contains("simulator.amazonses.com"), "{text}");
        assert!(!text.contains("notificationType"), "{text}");
    }
}

#[test]
fn an_empty_allow_list_is_a_configuration_error() {
    let (store, _) = fetching(MemoryFetcher::serving_fixture_cert());

    let result = Verifier::new(store, Vec::new());

    assert_eq!(result.err(), Some(EmptyAllowList));
}

#[test]
fn a_bundle_holds_every_certificate_between_comments() {
    let cert = String::from_utf8(cert_pem()).unwrap();
    let bundle = format!("# SNS us-east-1\n{cert}\n# SNS us-east-2\n{cert}\n\n");

    let certs = Certificate::from_pem(bundle.as_bytes()).unwrap();

    assert_eq!(certs.len(), 2);
    assert_eq!(certs[0].subject(), "CN=sns.amazonaws.com");
    assert_eq!(certs[0].not_before(), at("2021-09-07T00:00:00Z"));
    assert_eq!(certs[0].not_after(), at("2022-08-17T23:59:59Z"));
}

#[test]
fn a_bad_bundle_is_refused_with_the_reason() {
    let key_block = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let truncated = b"-----BEGIN CERTIFICATE-----\nAAAA\n";

    let empty = Certificate::from_pem(b"no blocks here\n").unwrap_err();
    let key = Certificate::from_pem(key_block).unwrap_err();
    let cut = Certificate::from_pem(truncated).unwrap_err();
    let missing = Certificate::load_bundle(&fixture_path("no-such-bundle.pem")).unwrap_err();

    assert!(matches!(empty, CertificateError::Empty), "{empty:?}");
    assert!(matches!(key, CertificateError::NotACertificate), "{key:?}");
    assert!(matches!(cut, CertificateError::Pem(_)), "{cut:?}");
    assert!(matches!(missing, CertificateError::Io(_)), "{missing:?}");
}
