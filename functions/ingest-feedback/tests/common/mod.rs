//! Shared pieces of the handler tests: SQS events built from fixture files, and in-memory ports.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers fail loudly on purpose.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Mutex;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use feedback_domain::ports::Retryable;
use ingest_feedback::ports::{Quarantine, QuarantineNote, SubscriptionConfirmer};

pub fn fixture(name: &str) -> String {
    let path: PathBuf =
        [env!("CARGO_MANIFEST_DIR"), "..", "..", "tests", "fixtures", "ses", name].iter().collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn sqs_event(bodies: &[String]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for (i, body) in bodies.iter().enumerate() {
        let mut message = SqsMessage::default();
        message.message_id = Some(format!("m-{i}"));
        message.body = Some(body.clone());
        event.records.push(message);
    }
    event
}

/// Keeps quarantined notes; fails every call when `failing` is set.
#[derive(Default)]
pub struct MemoryQuarantine {
    pub notes: Mutex<Vec<(String, String)>>,
    pub failing: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("quarantine queue unavailable")]
pub struct Unavailable;

impl Retryable for Unavailable {
    fn is_retryable(&self) -> bool {
        true
    }
}

impl Quarantine for MemoryQuarantine {
    type Error = Unavailable;

    async fn quarantine(&self, note: &QuarantineNote<'_>) -> Result<(), Unavailable> {
        if self.failing {
            return Err(Unavailable);
        }
        self.notes.lock().unwrap().push((note.reason.to_owned(), note.body.to_owned()));
        Ok(())
    }
}

/// Confirms nothing; counts calls.
#[derive(Default)]
pub struct CountingConfirmer {
    pub calls: Mutex<u32>,
}

impl SubscriptionConfirmer for CountingConfirmer {
    type Error = Unavailable;

    async fn confirm(&self, _topic_arn: &str, _token: &str) -> Result<(), Unavailable> {
        *self.calls.lock().unwrap() += 1;
        Ok(())
    }
}
