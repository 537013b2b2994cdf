//! The whole parse path of `ingest-feedback` on arbitrary SQS bodies: `parse_sqs_body`, then for
//! feedback the per-recipient split and `policy::decide` on a fresh record and again on the
//! record it produced (a replay), plus the history entry and expiry arithmetic the handler does
//! before writing. Any panic is a crash; so is a broken invariant of the policy.

#![no_main]

use chrono::Duration;
use feedback_domain::policy::{self, Decision, Policy};
use feedback_domain::{Feedback, FeedbackEvent};
use libfuzzer_sys::fuzz_target;
use ses_wire::Content;

/// The handler's default history retention (`HISTORY_RETENTION_DAYS`).
const RETENTION_DAYS: i64 = 400;

fuzz_target!(|data: &[u8]| {
    // SQS bodies are UTF-8 text; the Lambda event would not deserialize otherwise.
    let Ok(body) = std::str::from_utf8(data) else { return };
    match ses_wire::parse_sqs_body(body) {
        Ok(parsed) => {
            if let Content::Feedback(feedback) = parsed.content {
                decide_all(&feedback);
            }
        }
        Err(error) => {
            // The quarantine attributes are built from these.
            let _ = (error.reason_code(), error.to_string());
        }
    }
});

fn decide_all(feedback: &Feedback) {
    let policy = Policy::default();
    let retention = Duration::days(RETENTION_DAYS);
    if let FeedbackEvent::Send { at } = &feedback.event {
        let _ = *at + retention;
        return;
    }
    let split = policy::recipient_events(feedback);
    for event in &split.events {
        let _ = (event.idempotency_key(), event.counter_field(), event.sub_type_name());
        let (decision, record) = policy::decide(None, event, &policy);
        assert_eq!(record.version, 1, "a fresh record starts at version 1");
        let _ = event.history_entry(&decision, Some(event.at + retention));

        let (again, replayed) = policy::decide(Some(&record), event, &policy);
        assert_eq!(replayed.version, 2);
        // Nothing downgrades: what suppressed once stays suppressed when applied again.
        if matches!(decision, Decision::Suppressed { .. } | Decision::AlreadySuppressed { .. }) {
            assert!(
                matches!(again, Decision::Suppressed { .. } | Decision::AlreadySuppressed { .. }),
                "a replay lifted a suppression: {decision:?} then {again:?}"
            );
        }
    }
}
