//! Golden cases: every fixture that is a whole record (SES JSON, SNS envelope, Lambda SNS event,
//! SQS Lambda event) is parsed and summarised, and the summary must equal the hand-checked file
//! `tests/fixtures/ses/expected/<fixture file name>` (derived fixtures: `expected/derived/`).
//! Files that are only part of a record get targeted tests at the end.

// Helpers outside `#[test]` functions are test code too; clippy.toml only covers the latter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use chrono::SecondsFormat;
use feedback_domain::{Feedback, FeedbackEvent, FeedbackSource};
use serde_json::{Value, json};
use ses_wire::{
    Content, LambdaSnsEvent, ParseError, ParsedRecord, SnsEnvelope, parse_lambda_sns_event,
    parse_sns_envelope, parse_sqs_body,
};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/ses")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Fixture files that are not whole records, each covered by a targeted test below or elsewhere.
const NOT_RECORDS: [&str; 6] = [
    "SOURCES.md",
    "ses-object-bounce-mixed-recipient-actions.aws-docs.json",
    "ses-object-mail-with-headers-odd-timestamp.aws-docs.json",
    "sqs-lambda-batch-response.aws-lambda-rust-runtime.json",
    "sns-signing-cert-7ff5318490ec183fbaddaa2a969abfda.pem",
    "README.md",
];

fn timestamp(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn summarize_envelope(envelope: &SnsEnvelope) -> Value {
    json!({
        "type": envelope.message_type.as_str(),
        "message_id": envelope.message_id,
        "topic_arn": envelope.topic_arn,
        "subject": envelope.subject,
        "signature_version": envelope.signature_version,
        "signing_cert_url": envelope.signing_cert_url,
        "has_subscribe_url": envelope.subscribe_url.is_some(),
        "has_token": envelope.token.is_some(),
        "has_unsubscribe_url": envelope.unsubscribe_url.is_some(),
        "message_ends_with_newline": envelope.message.ends_with('\n'),
    })
}

fn summarize_feedback(feedback: &Feedback) -> Value {
    let kind = feedback.event.kind();
    let mut summary = json!({
        "source": match feedback.source {
            FeedbackSource::Notification => "notification",
            FeedbackSource::EventPublishing => "event_publishing",
        },
        "kind": kind.as_str(),
        "ses_message_id": feedback.mail.message_id,
        "sent_at": feedback.mail.sent_at.as_ref().map(timestamp),
        "identity": feedback.mail.identity,
        "destination_count": feedback.mail.destination_count,
    });
    let detail = match &feedback.event {
        FeedbackEvent::Bounce(bounce) => Some((
            "bounce",
            json!({
                "type": bounce.bounce_type.as_str(),
                "sub_type": bounce.sub_type.as_str(),
                "feedback_id": bounce.feedback_id,
                "timestamp": timestamp(&bounce.timestamp),
                "recipients": bounce.recipients.iter().map(|recipient| json!({
                    "action": recipient.action,
                    "status": recipient.status,
                    "has_diagnostic_code": recipient.diagnostic_code.is_some(),
                })).collect::<Vec<_>>(),
            }),
        )),
        FeedbackEvent::Complaint(complaint) => Some((
            "complaint",
            json!({
                "feedback_id": complaint.feedback_id,
                "timestamp": timestamp(&complaint.timestamp),
                "sub_type": complaint.sub_type,
                "feedback_type": complaint.feedback_type.as_ref().map(|kind| kind.as_str()),
                "recipient_count": complaint.recipients.len(),
            }),
        )),
        FeedbackEvent::Delivery(delivery) => Some((
            "delivery",
            json!({
                "timestamp": timestamp(&delivery.timestamp),
                "recipient_count": delivery.recipients.len(),
            }),
        )),
        FeedbackEvent::Send { at } => Some(("send", json!({ "at": timestamp(at) }))),
        FeedbackEvent::Other { .. } => None,
    };

    if let (Some((key, value)), Value::Object(map)) = (detail, &mut summary) {
        map.insert(key.to_owned(), value);
    }

    summary
}

fn summarize_outcome(result: &Result<ParsedRecord, ParseError>) -> Value {
    match result {
        Ok(record) => match &record.content {
            Content::Feedback(feedback) => {
                json!({ "outcome": "feedback", "feedback": summarize_feedback(feedback) })
            }
            Content::Setup(setup) => json!({ "outcome": "setup", "setup": setup.as_str() }),
            Content::SubscriptionConfirmation => json!({ "outcome": "subscription_confirmation" }),
            Content::UnsubscribeConfirmation => json!({ "outcome": "unsubscribe_confirmation" }),
        },
        Err(error) => json!({
            "outcome": "error",
            "reason": error.reason_code(),
            "field": error.field(),
        }),
    }
}

/// One record: the envelope as deserialized directly (must equal what the parser kept) and the
/// parse outcome.
fn summarize_record(
    envelope: Option<&SnsEnvelope>,
    result: &Result<ParsedRecord, ParseError>,
) -> Value {
    if let Ok(record) = result {
        assert_eq!(record.envelope.as_ref(), envelope, "parser kept a different envelope");
    }

    let mut summary = summarize_outcome(result);
    if let Value::Object(map) = &mut summary {
        map.insert("envelope".to_owned(), envelope.map_or(Value::Null, summarize_envelope));
    }

    summary
}

fn summarize_sqs_body(body: &str) -> Value {
    let direct = serde_json::from_str::<SnsEnvelope>(body).ok();

    summarize_record(direct.as_ref(), &parse_sqs_body(body))
}

fn summarize_file(name: &str, text: &str) -> Value {
    let records = if name.starts_with("lambda-sns-event-") {
        let event: LambdaSnsEvent = serde_json::from_str(text).unwrap();
        let results = parse_lambda_sns_event(text).unwrap();
        assert_eq!(event.records.len(), results.len());

        event
            .records
            .iter()
            .zip(&results)
            .map(|(record, result)| summarize_record(Some(&record.sns), result))
            .collect()
    } else if name.starts_with("lambda-sns-record-style") {
        let envelope: SnsEnvelope = serde_json::from_str(text).unwrap();
        let result = parse_sns_envelope(envelope.clone());

        assert_eq!(summarize_outcome(&result), summarize_outcome(&parse_sqs_body(text)));
        vec![summarize_record(Some(&envelope), &result)]
    } else if name.starts_with("sqs-lambda-event-") {
        let event: Value = serde_json::from_str(text).unwrap();

        event["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|record| summarize_sqs_body(record["body"].as_str().unwrap()))
            .collect()
    } else {
        vec![summarize_sqs_body(text)]
    };

    json!({ "records": records })
}

fn check_directory(fixtures: &Path, expected: &Path) -> usize {
    let mut checked = 0;
    let mut failures = Vec::new();

    for entry in fs::read_dir(fixtures).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if path.is_dir() || NOT_RECORDS.contains(&name.as_str()) {
            continue;
        }

        let actual = summarize_file(&name, &read(&path));
        let expected_path = expected.join(&name);
        let Ok(expected_text) = fs::read_to_string(&expected_path) else {
            failures.push(format!(
                "{name}: no expected file; actual summary:\n{}",
                serde_json::to_string_pretty(&actual).unwrap()
            ));
            continue;
        };
        let expected: Value = serde_json::from_str(&expected_text).unwrap();

        if actual != expected {
            failures.push(format!(
                "{name}: summary differs\nexpected: {}\nactual:   {}",
                serde_json::to_string_pretty(&expected).unwrap(),
                serde_json::to_string_pretty(&actual).unwrap()
            ));
        }
        checked += 1;
    }

    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    checked
}

#[test]
fn every_real_fixture_parses_to_its_expected_summary() {
    let dir = fixture_dir();
    let checked = check_directory(&dir, &dir.join("expected"));

    assert_eq!(checked, 37, "number of real whole-record fixtures changed");
}

#[test]
fn every_derived_fixture_parses_to_its_expected_summary() {
    let dir = fixture_dir();
    let checked = check_directory(&dir.join("derived"), &dir.join("expected/derived"));

    assert_eq!(checked, 14, "number of derived fixtures changed");
}

#[test]
fn every_expected_file_belongs_to_a_fixture() {
    let dir = fixture_dir();

    for (fixtures, expected) in
        [(dir.clone(), dir.join("expected")), (dir.join("derived"), dir.join("expected/derived"))]
    {
        for entry in fs::read_dir(&expected).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let name = path.file_name().unwrap();
                assert!(fixtures.join(name).is_file(), "orphan expected file {}", path.display());
            }
        }
    }
}

#[test]
fn each_body_of_the_real_sqs_lambda_event_is_an_sns_envelope_around_a_non_ses_message() {
    let text =
        read(&fixture_dir().join("sqs-lambda-event-sns-envelope-non-raw.real.leishmaniapp.json"));
    let event: Value = serde_json::from_str(&text).unwrap();
    let records = event["Records"].as_array().unwrap();

    assert!(!records.is_empty());
    for record in records {
        let body = record["body"].as_str().unwrap();
        let envelope: SnsEnvelope = serde_json::from_str(body).unwrap();

        assert_eq!(envelope.message_type.as_str(), "Notification");
        assert!(envelope.message.starts_with("{\"id\":"));
        assert!(matches!(parse_sqs_body(body), Err(ParseError::NotSesFeedback { .. })));
    }
}

#[test]
fn the_envelope_message_is_kept_byte_exact_including_the_trailing_newline() {
    let text =
        read(&fixture_dir().join("sns-notification-ses-event-complaint.signed-v1.django-ses.json"));
    let decoded: Value = serde_json::from_str(&text).unwrap();
    let record = parse_sqs_body(&text).unwrap();
    let envelope = record.envelope.unwrap();

    assert_eq!(envelope.message, decoded["Message"].as_str().unwrap());
    assert!(envelope.message.ends_with("}}\n"));
}

#[test]
fn the_raw_delivery_body_gives_the_same_feedback_as_its_envelope() {
    let dir = fixture_dir();
    let wrapped = parse_sqs_body(&read(
        &dir.join("sns-notification-ses-bounce-no-subject.signed-v1.django-ses.json"),
    ))
    .unwrap();
    let raw = parse_sqs_body(&read(&dir.join("derived/sqs-body-raw-delivery-bounce.derived.json")))
        .unwrap();

    assert!(raw.envelope.is_none());
    assert!(wrapped.envelope.is_some());
    assert_eq!(raw.content, wrapped.content);
}

/// Wraps a bare `bounce` object into a notification, the way SES would publish it.
fn bounce_notification(bounce: &str) -> String {
    format!(
        r#"{{"notificationType":"Bounce","bounce":{bounce},
            "mail":{{"messageId":"m-1","timestamp":"2012-05-25T14:59:38.237Z","destination":[]}}}}"#
    )
}

#[test]
fn the_mixed_actions_bounce_object_keeps_action_and_status_per_recipient() {
    let object =
        read(&fixture_dir().join("ses-object-bounce-mixed-recipient-actions.aws-docs.json"));
    let record = parse_sqs_body(&bounce_notification(&object)).unwrap();
    let Some(FeedbackEvent::Bounce(bounce)) = record.feedback().map(|feedback| &feedback.event)
    else {
        panic!("not a bounce: {record:?}");
    };
    let per_recipient: Vec<_> = bounce
        .recipients
        .iter()
        .map(|r| {
            (
                r.address.as_str(),
                r.action.as_deref(),
                r.status.as_deref(),
                r.diagnostic_code.is_some(),
            )
        })
        .collect();

    assert_eq!(bounce.bounce_type.as_str(), "Permanent");
    assert_eq!(
        per_recipient,
        [
            ("recipient1@example.com", Some("failed"), Some("5.0.0"), true),
            ("recipient2@example.com", Some("delayed"), Some("4.0.0"), false),
        ]
    );
    assert_eq!(timestamp(&bounce.timestamp), "2012-05-25T14:59:38.605Z");
    assert_eq!(
        bounce.feedback_id.as_deref(),
        Some("000001378603176d-5a4b5ad9-6f30-4198-a8c3-b1eb0c270a1d-000000")
    );
}

#[test]
fn the_mail_object_with_the_odd_timestamp_gives_a_send_at_that_instant() {
    let mail =
        read(&fixture_dir().join("ses-object-mail-with-headers-odd-timestamp.aws-docs.json"));
    let body = format!(r#"{{"eventType":"Send","mail":{mail},"send":{{}}}}"#);
    let record = parse_sqs_body(&body).unwrap();
    let feedback = record.feedback().unwrap();

    assert_eq!(
        feedback.mail.sent_at.as_ref().map(timestamp).as_deref(),
        Some("2018-10-08T14:05:45.000Z")
    );
    let FeedbackEvent::Send { at } = &feedback.event else { panic!("not a send: {feedback:?}") };
    assert_eq!(timestamp(at), "2018-10-08T14:05:45.000Z");
    assert_eq!(feedback.mail.identity.as_deref(), Some("example.com"));
    assert_eq!(feedback.mail.destination_count, 1);
    assert_eq!(
        feedback.mail.message_id,
        "000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000"
    );
}

#[test]
fn the_batch_response_fixture_is_not_mistaken_for_feedback() {
    let text = read(&fixture_dir().join("sqs-lambda-batch-response.aws-lambda-rust-runtime.json"));

    assert_eq!(parse_sqs_body(&text).unwrap_err().reason_code(), "not_ses_feedback");
}
