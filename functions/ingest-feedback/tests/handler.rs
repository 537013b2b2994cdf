//! The handler with in-memory ports: real fixture bodies in, outcomes and stored state out.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers fail loudly on purpose.

mod common;

use std::sync::Arc;

use chrono::Duration;
use common::{CountingConfirmer, MemoryQuarantine, fixture, sqs_event};
use feedback_domain::memory::InMemorySuppressionStore;
use feedback_domain::{AddressHasher, Policy};
use ingest_feedback::adapters::SnsAuthenticator;
use ingest_feedback::{Handler, HandlerSettings, RecordOutcome};
use sns_verify::{Certificate, CertificateStore, NoFetcher, Verifier};

type TestHandler = Handler<
    InMemorySuppressionStore,
    MemoryQuarantine,
    SnsAuthenticator<NoFetcher>,
    CountingConfirmer,
>;

fn settings(require_signature: bool) -> HandlerSettings {
    HandlerSettings {
        policy: Policy::default(),
        retention: Duration::days(400),
        hasher: AddressHasher::new(b"test"),
        require_signature,
        auto_confirm_subscriptions: false,
    }
}

fn metrics() -> telemetry::MetricsSink {
    telemetry::MetricsSink::new("test", "ingest-feedback").unwrap().with_writer(std::io::sink())
}

fn unsigned_handler() -> TestHandler {
    Handler {
        store: InMemorySuppressionStore::default(),
        quarantine: MemoryQuarantine::default(),
        authenticator: None,
        confirmer: None,
        settings: settings(false),
        metrics: metrics(),
    }
}

fn signed_handler(allowed_topics: &[&str]) -> TestHandler {
    let pem = fixture("sns-signing-cert-7ff5318490ec183fbaddaa2a969abfda.pem");
    let certs = CertificateStore::pinned_only(Certificate::from_pem(pem.as_bytes()).unwrap());
    let verifier =
        Verifier::new(Arc::new(certs), allowed_topics.iter().map(|t| t.to_string()).collect())
            .unwrap();
    Handler {
        authenticator: Some(SnsAuthenticator::new(verifier)),
        settings: settings(true),
        ..unsigned_handler()
    }
}

fn applied(kind: &'static str, suppressed: usize) -> RecordOutcome {
    RecordOutcome::Applied { kind, suppressed, duplicates: 0, invalid: 0 }
}

fn quarantined(reason: &'static str) -> RecordOutcome {
    RecordOutcome::Quarantined { reason }
}

/// Every fixture as a raw-delivery SQS body, each in a fresh table: the golden outcome.
#[tokio::test]
async fn every_fixture_body_has_its_golden_outcome() {
    let golden: &[(&str, RecordOutcome)] = &[
        ("ses-event-bounce-permanent-general.aws-docs.json", applied("bounce", 1)),
        ("ses-event-click.aws-docs.json", applied("click", 0)),
        ("ses-event-complaint-abuse.aws-docs.json", applied("complaint", 1)),
        ("ses-event-delivery-delay.aws-docs.json", applied("delivery_delay", 0)),
        ("ses-event-delivery.aws-docs.json", applied("delivery", 0)),
        ("ses-event-open.aws-docs.json", applied("open", 0)),
        ("ses-event-reject.aws-docs.json", applied("reject", 0)),
        ("ses-event-rendering-failure.aws-docs.json", applied("rendering_failure", 0)),
        ("ses-event-send.aws-docs.json", applied("send", 0)),
        ("ses-event-subscription.aws-docs.json", applied("subscription", 0)),
        (
            "ses-notification-bounce-permanent-general-no-dsn-two-recipients.aws-docs.json",
            applied("bounce", 2),
        ),
        ("ses-notification-bounce-permanent-general-with-dsn.aws-docs.json", applied("bounce", 1)),
        ("ses-notification-bounce-permanent-general.simulator.relay.json", applied("bounce", 1)),
        (
            "ses-notification-bounce-suppressionlist-address.simulator.relay.json",
            applied("bounce", 1),
        ),
        (
            "ses-notification-bounce-transient-general-invalid-domain-5.4.4.listmonk-issue-1463.json",
            quarantined("missing_field"),
        ),
        (
            "ses-notification-bounce-transient-general-ooto.simulator.relay.json",
            applied("bounce", 0),
        ),
        (
            "ses-notification-complaint-abuse-subtype-null.simulator.relay.json",
            applied("complaint", 1),
        ),
        (
            "ses-notification-complaint-abuse-with-feedback-report.aws-docs.json",
            applied("complaint", 1),
        ),
        (
            "ses-notification-complaint-without-feedback-report.aws-docs.json",
            applied("complaint", 1),
        ),
        ("ses-notification-delivery-ooto.simulator.relay.json", applied("delivery", 0)),
        ("ses-notification-delivery.aws-docs.json", applied("delivery", 0)),
        (
            "ses-object-bounce-mixed-recipient-actions.aws-docs.json",
            quarantined("not_ses_feedback"),
        ),
        (
            "ses-object-mail-with-headers-odd-timestamp.aws-docs.json",
            quarantined("not_ses_feedback"),
        ),
        (
            "sns-notification-event-destination-validation-plaintext.anymail.json",
            RecordOutcome::Ignored { why: "setup_message" },
        ),
        ("sns-notification-plain.signed-v1.php-validator.json", quarantined("not_json")),
        ("sns-notification-ses-bounce-no-subject.signed-v1.django-ses.json", applied("bounce", 1)),
        ("sns-notification-ses-bounce-onaccountsuppressionlist.relay.json", applied("bounce", 1)),
        ("sns-notification-ses-bounce-unknown-subtype.relay.json", applied("bounce", 0)),
        ("sns-notification-ses-event-complaint.signed-v1.django-ses.json", applied("complaint", 1)),
        (
            "sns-subscription-confirmation.signed-v1.relay.json",
            quarantined("subscription_confirmation"),
        ),
        ("sqs-lambda-batch-response.aws-lambda-rust-runtime.json", quarantined("not_ses_feedback")),
    ];
    for (name, expected) in golden {
        let handler = unsigned_handler();
        let (response, outcomes) = handler.handle_batch(&sqs_event(&[fixture(name)])).await;
        assert_eq!(&outcomes[0], expected, "{name}");
        assert!(response.batch_item_failures.is_empty(), "{name}");
        let quarantined = handler.quarantine.notes.lock().unwrap().len();
        assert_eq!(quarantined, usize::from(matches!(expected, RecordOutcome::Quarantined { .. })));
    }
}

#[tokio::test]
async fn a_permanent_bounce_suppresses_only_the_bounced_recipients() {
    let handler = unsigned_handler();
    let body =
        fixture("ses-notification-bounce-permanent-general-no-dsn-two-recipients.aws-docs.json");
    handler.handle_batch(&sqs_event(&[body])).await;
    let keys: Vec<_> = handler.store.records().into_iter().map(|r| r.target.key()).collect();
    // Two of the three destinations bounced; the third is never touched.
    assert_eq!(keys.len(), 2);
    assert!(handler.store.records().iter().all(|r| r.suppression.is_some()));
}

#[tokio::test]
async fn replaying_a_batch_changes_nothing_the_second_time() {
    let handler = unsigned_handler();
    let bodies = [
        fixture("ses-notification-bounce-transient-general-ooto.simulator.relay.json"),
        fixture("ses-notification-complaint-abuse-with-feedback-report.aws-docs.json"),
        fixture("ses-event-send.aws-docs.json"),
    ];
    handler.handle_batch(&sqs_event(&bodies)).await;
    let before = handler.store.records();
    let (_, outcomes) = handler.handle_batch(&sqs_event(&bodies)).await;
    assert_eq!(handler.store.records(), before);
    for outcome in outcomes {
        let RecordOutcome::Applied { duplicates, suppressed, .. } = outcome else {
            panic!("unexpected {outcome:?}")
        };
        assert_eq!((duplicates, suppressed), (1, 0));
    }
}

#[tokio::test]
async fn a_delivery_before_its_auto_reply_bounce_keeps_the_count_at_zero() {
    let handler = unsigned_handler();
    let bodies = [
        fixture("ses-notification-delivery-ooto.simulator.relay.json"),
        fixture("ses-notification-bounce-transient-general-ooto.simulator.relay.json"),
    ];
    handler.handle_batch(&sqs_event(&bodies[..1])).await;
    handler.handle_batch(&sqs_event(&bodies[1..])).await;
    let record = &handler.store.records()[0];
    assert_eq!(record.soft_bounce_count, 0);
    assert!(record.last_delivery_at.is_some());
}

const DJANGO_TOPIC: &str = "arn:aws:sns:us-east-1:364852123998:ses-events";

#[tokio::test]
async fn genuine_forged_wrong_topic_and_unsigned_records_are_told_apart() {
    let genuine = fixture("sns-notification-ses-event-complaint.signed-v1.django-ses.json");
    let topic: serde_json::Value = serde_json::from_str(&genuine).unwrap();
    let topic = topic["TopicArn"].as_str().unwrap().to_owned();
    let mut forged: serde_json::Value = serde_json::from_str(&genuine).unwrap();
    // A forged subject: the body still parses, only the signature no longer matches.
    forged["Subject"] = serde_json::Value::String("Amazon SES Email Event Notice".into());
    let bodies = [
        genuine.clone(),
        forged.to_string(),
        fixture("sns-notification-ses-bounce-onaccountsuppressionlist.relay.json"),
        fixture("ses-notification-bounce-permanent-general.simulator.relay.json"),
    ];

    let handler = signed_handler(&[topic.as_str()]);
    let (response, outcomes) = handler.handle_batch(&sqs_event(&bodies)).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(outcomes[0], applied("complaint", 1));
    assert_eq!(outcomes[1], quarantined("signature_mismatch"));
    assert!(matches!(outcomes[2], RecordOutcome::Quarantined { .. }), "{:?}", outcomes[2]);
    assert_eq!(outcomes[3], quarantined("unsigned"));
    assert_eq!(handler.store.records().len(), 1, "only the genuine complaint was applied");

    let other_topic = signed_handler(&[DJANGO_TOPIC]);
    let (_, outcomes) = other_topic.handle_batch(&sqs_event(&[genuine])).await;
    assert_eq!(outcomes[0], quarantined("topic_not_allowed"));
    assert!(other_topic.store.records().is_empty());
}

#[tokio::test]
async fn a_subscription_confirmation_is_never_followed_blindly() {
    let body = fixture("sns-subscription-confirmation.signed-v1.relay.json");
    let topic: serde_json::Value = serde_json::from_str(&body).unwrap();
    let topic = topic["TopicArn"].as_str().unwrap().to_owned();
    let mut handler = signed_handler(&[topic.as_str()]);
    handler.confirmer = Some(CountingConfirmer::default());
    let (_, outcomes) = handler.handle_batch(&sqs_event(std::slice::from_ref(&body))).await;
    assert_eq!(outcomes[0], quarantined("subscription_confirmation"), "auto-confirm is off");
    handler.settings.auto_confirm_subscriptions = true;
    let (_, outcomes) = handler.handle_batch(&sqs_event(&[body])).await;
    assert_eq!(outcomes[0], RecordOutcome::Ignored { why: "subscription_confirmed" });
    assert_eq!(*handler.confirmer.as_ref().unwrap().calls.lock().unwrap(), 1);
}

#[tokio::test]
async fn a_poison_record_is_retried_when_the_quarantine_is_unavailable() {
    let mut handler = unsigned_handler();
    handler.quarantine.failing = true;
    let bodies = ["not json".to_owned(), fixture("ses-notification-delivery.aws-docs.json")];
    let (response, outcomes) = handler.handle_batch(&sqs_event(&bodies)).await;
    assert_eq!(outcomes[0], RecordOutcome::Retry);
    assert_eq!(outcomes[1], applied("delivery", 0));
    let failed: Vec<_> =
        response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, ["m-0"]);
}
