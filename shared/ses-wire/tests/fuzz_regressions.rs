//! Inputs that crashed the parse-path fuzz target (`fuzz/fuzz_targets/parse_path.rs`), kept as
//! regression tests. Each test names what the crash was.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::path::PathBuf;

use feedback_domain::FeedbackEvent;

fn fixture(name: &str) -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/ses").join(name);
    std::fs::read_to_string(path).unwrap()
}

/// Crash: `DateTime + TimeDelta overflowed`. chrono's `%Y` accepts signed years of more than four
/// digits, so `+262142-12-31T00:00:00` parses as an event time at the very end of chrono's range,
/// and the handler's `event.at + retention` (history expiry in `apply.rs`) panics. In the Lambda
/// the panic fails the whole batch instead of quarantining the one record. SES only sends
/// four-digit years (RFC 3339): such a timestamp is refused as `bad_timestamp`.
#[test]
fn a_timestamp_beyond_year_9999_is_refused_instead_of_overflowing_expiry_arithmetic() {
    let original = fixture("ses-notification-bounce-permanent-general.simulator.relay.json");
    let mut body: serde_json::Value = serde_json::from_str(&original).unwrap();
    body["bounce"]["timestamp"] = "+262142-12-31T00:00:00".into();

    match ses_wire::parse_sqs_body(&body.to_string()) {
        Err(error) => assert_eq!(error.reason_code(), "bad_timestamp"),
        Ok(parsed) => {
            let feedback = parsed.feedback().expect("a bounce is feedback");
            let FeedbackEvent::Bounce(bounce) = &feedback.event else { panic!("not a bounce") };
            panic!(
                "accepted an event time of {}: adding the history retention to it overflows",
                bounce.timestamp
            );
        }
    }
}
