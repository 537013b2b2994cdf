//! Fixture loading and an in-memory certificate fetcher shared by the integration tests.
//!
//! Fixtures are real SNS messages indexed in `tests/fixtures/ses/SOURCES.md` (column "sig").
#![allow(dead_code)] // each test binary uses a different part of this module
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sns_verify::{CertificateFetcher, CertificateUrl, FetchError, SnsMessage};

/// The real SNS signing certificate that signed every `ok` fixture (valid 2021-09-07 to
/// 2022-08-17, so expired in real time).
pub const CERT_FILE: &str = "sns-signing-cert-7ff5318490ec183fbaddaa2a969abfda.pem";

/// Fixtures whose signature verifies with [`CERT_FILE`] ("sig" = ok), with their version.
pub const OK_FIXTURES: [(&str, &str); 8] = [
    ("sns-notification-plain.signed-v1.php-validator.json", "1"),
    ("sns-notification-plain.signed-v2.php-validator.json", "2"),
    ("sns-notification-plain-with-subject.signed-v1.php-validator.json", "1"),
    ("sns-notification-plain-with-subject.signed-v2.php-validator.json", "2"),
    ("lambda-sns-record-style.signed-v1-subject-null.php-validator.json", "1"),
    ("sns-subscription-confirmation.signed-v1.relay.json", "1"),
    ("sns-notification-ses-event-complaint.signed-v1.django-ses.json", "1"),
    ("sns-notification-ses-bounce-no-subject.signed-v1.django-ses.json", "1"),
];

/// Fixtures signed with [`CERT_FILE`] but edited afterwards ("sig" = bad).
pub const BAD_FIXTURES: [&str; 2] = [
    "sns-notification-ses-bounce-onaccountsuppressionlist.relay.json",
    "sns-notification-ses-bounce-unknown-subtype.relay.json",
];

/// A v1 fixture and a v2 fixture with a Subject, used by single-fixture tests.
pub const V1_WITH_SUBJECT: &str =
    "sns-notification-plain-with-subject.signed-v1.php-validator.json";
pub const V2_WITH_SUBJECT: &str =
    "sns-notification-plain-with-subject.signed-v2.php-validator.json";
pub const EVENT_COMPLAINT: &str = "sns-notification-ses-event-complaint.signed-v1.django-ses.json";
pub const SUBSCRIPTION: &str = "sns-subscription-confirmation.signed-v1.relay.json";

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/ses").join(name)
}

pub fn load_json(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture_path(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub fn cert_pem() -> Vec<u8> {
    std::fs::read(fixture_path(CERT_FILE)).unwrap()
}

/// The message's own timestamp: a clock reading at which the fixture is valid.
pub fn time_of(msg: &SnsMessage<'_>) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(msg.timestamp).unwrap().with_timezone(&Utc)
}

/// What [`MemoryFetcher`] answers for every URL.
#[derive(Debug, Clone)]
pub enum Answer {
    Body(Vec<u8>),
    Status(u16),
}

/// Serves one canned answer for any validated URL and records what was asked.
#[derive(Debug)]
pub struct MemoryFetcher {
    answer: Answer,
    fetches: AtomicUsize,
    urls: Mutex<Vec<String>>,
}

impl MemoryFetcher {
    pub fn new(answer: Answer) -> Self {
        Self { answer, fetches: AtomicUsize::new(0), urls: Mutex::new(Vec::new()) }
    }

    /// Serves the fixture certificate.
    pub fn serving_fixture_cert() -> Self {
        Self::new(Answer::Body(cert_pem()))
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    pub fn urls(&self) -> Vec<String> {
        self.urls.lock().unwrap().clone()
    }
}

impl CertificateFetcher for MemoryFetcher {
    async fn fetch(&self, url: &CertificateUrl) -> Result<Vec<u8>, FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.urls.lock().unwrap().push(url.to_string());
        match &self.answer {
            Answer::Body(body) => Ok(body.clone()),
            Answer::Status(status) => Err(FetchError::Status { status: *status }),
        }
    }
}

/// The error text with all its sources, as a log line would show it.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
