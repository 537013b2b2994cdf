//! The handler with its real adapters against moto (`MOTO_ENDPOINT`, started by scripts/test):
//! DynamoDB table, SQS quarantine queue, exact final state.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers fail loudly on purpose.

mod common;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use chrono::Duration;
use common::{CountingConfirmer, fixture, sqs_event};
use feedback_domain::{AddressHasher, Policy};
use ingest_feedback::adapters::{SnsAuthenticator, SqsQuarantine};
use ingest_feedback::{Handler, HandlerSettings, RecordOutcome};
use sns_verify::{CertificateFetcher, CertificateStore, CertificateUrl, FetchError, Verifier};
use std::sync::Arc;
use suppression_store::{DynamoDbSuppressionStore, StoreSettings, schema};

type MotoHandler = Handler<
    DynamoDbSuppressionStore,
    SqsQuarantine,
    SnsAuthenticator<CertificateServer>,
    CountingConfirmer,
>;

async fn aws(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("eu-central-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await
}

fn moto() -> String {
    std::env::var("MOTO_ENDPOINT")
        .expect("MOTO_ENDPOINT is not set: run the tests through scripts/test, which starts moto")
}

async fn handler(endpoint: &str, threshold: u32) -> (MotoHandler, aws_sdk_sqs::Client, String) {
    handler_on(endpoint, endpoint, threshold).await
}

async fn handler_on(
    endpoint: &str,
    ddb_endpoint: &str,
    threshold: u32,
) -> (MotoHandler, aws_sdk_sqs::Client, String) {
    let conf = aws(endpoint).await;
    let ddb = aws_sdk_dynamodb::Client::new(&aws(ddb_endpoint).await);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let id = fastrand::u64(..);
    let table = format!("ingest-test-{id}");
    let mut queue_url = format!("{endpoint}/000000000000/unreachable");
    if endpoint == moto() {
        schema::create_table(&ddb, &table).await.unwrap();
        let queue = sqs.create_queue().queue_name(format!("quarantine-{id}")).send().await.unwrap();
        queue_url = queue.queue_url().unwrap().to_owned();
    }
    let handler = Handler {
        store: DynamoDbSuppressionStore::new(ddb, table, StoreSettings::default()),
        quarantine: SqsQuarantine::new(sqs.clone(), queue_url.clone()),
        authenticator: None,
        confirmer: None,
        settings: HandlerSettings {
            policy: Policy { soft_bounce_threshold: threshold, ..Policy::default() },
            retention: Duration::days(400),
            hasher: AddressHasher::new(b"test"),
            require_signature: false,
            auto_confirm_subscriptions: false,
        },
        metrics: telemetry::MetricsSink::new("test", "ingest")
            .unwrap()
            .with_writer(std::io::sink()),
    };
    (handler, sqs, queue_url)
}

async fn quarantined(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<(String, String)> {
    let out = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    out.messages()
        .iter()
        .map(|m| {
            let reason = m.message_attributes().unwrap()["reason"].string_value().unwrap();
            (reason.to_owned(), m.body().unwrap().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn a_mixed_batch_is_applied_and_poison_records_wait_in_the_quarantine_queue() {
    let (handler, sqs, queue_url) = handler(&moto(), 3).await;
    let bodies = [
        fixture("ses-notification-bounce-permanent-general-no-dsn-two-recipients.aws-docs.json"),
        "{\"not\": \"ses\"}".to_owned(),
        fixture("sns-notification-event-destination-validation-plaintext.anymail.json"),
        fixture("ses-event-complaint-abuse.aws-docs.json"),
        "definitely not json".to_owned(),
    ];
    let (response, outcomes) = handler.handle_batch(&sqs_event(&bodies)).await;
    assert!(response.batch_item_failures.is_empty());
    let names: Vec<_> = outcomes.iter().map(RecordOutcome::name).collect();
    assert_eq!(names, ["applied", "quarantined", "ignored", "applied", "quarantined"]);

    let mut parked = quarantined(&sqs, &queue_url).await;
    parked.sort();
    assert_eq!(
        parked,
        [
            ("not_json".to_owned(), "definitely not json".to_owned()),
            ("not_ses_feedback".to_owned(), "{\"not\": \"ses\"}".to_owned()),
        ],
        "the original bodies are kept unchanged for replay"
    );
    let active = handler.store.active_records(chrono::Utc::now()).await.unwrap();
    assert_eq!(active.len(), 3, "two bounced recipients and one complainer");

    // SQS redelivers the same batch: nothing changes, nothing is quarantined twice.
    let (_, outcomes) = handler.handle_batch(&sqs_event(&bodies[..1])).await;
    assert_eq!(
        outcomes[0],
        RecordOutcome::Applied { kind: "bounce", suppressed: 0, duplicates: 2, invalid: 0 }
    );
}

/// SNS's certificate servers as the test sees them: the fixtures' certificate is served from its
/// real URL; every other URL answers 503, the network-failure path of a fetch.
struct CertificateServer {
    pem: Vec<u8>,
}

const SERVED_CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem";

impl CertificateFetcher for CertificateServer {
    async fn fetch(&self, url: &CertificateUrl) -> Result<Vec<u8>, FetchError> {
        if url.as_str() == SERVED_CERT_URL {
            Ok(self.pem.clone())
        } else {
            Err(FetchError::Status { status: 503 })
        }
    }
}

const FEEDBACK_TOPIC: &str = "arn:aws:sns:us-east-1:364852123998:test-email";

fn verifier(allowed_topic: &str) -> SnsAuthenticator<CertificateServer> {
    let pem = fixture("sns-signing-cert-7ff5318490ec183fbaddaa2a969abfda.pem");
    let certs = CertificateStore::new(CertificateServer { pem: pem.into_bytes() });
    SnsAuthenticator::new(Verifier::new(Arc::new(certs), vec![allowed_topic.to_owned()]).unwrap())
}

#[tokio::test]
async fn genuine_forged_wrong_topic_and_unverifiable_records_end_where_they_belong() {
    let (mut handler, sqs, queue_url) = handler(&moto(), 3).await;
    handler.authenticator = Some(verifier(FEEDBACK_TOPIC));
    handler.settings.require_signature = true;

    let complaint = fixture("sns-notification-ses-event-complaint.signed-v1.django-ses.json");
    let bounce = fixture("sns-notification-ses-bounce-no-subject.signed-v1.django-ses.json");
    let mut forged: serde_json::Value = serde_json::from_str(&complaint).unwrap();
    forged["Subject"] = "Amazon SES Email Event Notice".into();
    // The certificate URL is not among the signed fields: another valid SNS host, whose
    // certificate cannot be fetched right now.
    let mut unverifiable: serde_json::Value = serde_json::from_str(&bounce).unwrap();
    unverifiable["SigningCertURL"] =
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem".into();
    let bodies = [
        complaint.clone(),
        forged.to_string(),
        unverifiable.to_string(),
        bounce,
        fixture("ses-event-complaint-abuse.aws-docs.json"),
    ];

    let (response, outcomes) = handler.handle_batch(&sqs_event(&bodies)).await;
    let names: Vec<_> = outcomes.iter().map(RecordOutcome::name).collect();
    assert_eq!(names, ["applied", "quarantined", "retry", "applied", "quarantined"]);
    let failed: Vec<_> =
        response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(
        failed,
        ["m-2"],
        "only the record whose certificate could not be fetched comes back"
    );

    let mut parked = quarantined(&sqs, &queue_url).await;
    parked.sort();
    let reasons: Vec<_> = parked.iter().map(|(reason, _)| reason.as_str()).collect();
    assert_eq!(reasons, ["signature_mismatch", "unsigned"]);
    assert_eq!(parked[0].1, forged.to_string(), "kept byte for byte for inspection and replay");

    // Only the two genuine messages reached the table: one complainer, one bounced recipient.
    let active = handler.store.active_records(chrono::Utc::now()).await.unwrap();
    let mut reasons: Vec<_> =
        active.iter().filter_map(|r| r.suppression.as_ref().map(|s| s.reason.as_str())).collect();
    reasons.sort_unstable();
    assert_eq!(reasons, ["complaint", "hard_bounce"]);

    // The same genuine message, for a function that trusts another topic only.
    handler.authenticator = Some(verifier("arn:aws:sns:us-east-1:032756942992:dev-relay-2022-04"));
    let (response, outcomes) =
        handler.handle_batch(&sqs_event(std::slice::from_ref(&complaint))).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(outcomes[0], RecordOutcome::Quarantined { reason: "topic_not_allowed" });
    assert_eq!(quarantined(&sqs, &queue_url).await, [("topic_not_allowed".to_owned(), complaint)]);
}

/// A handler on DynamoDB Local that never suppresses on soft bounces (threshold 1000), and a
/// soft bounce to copy. DynamoDB Local, because moto does not serialise concurrent conditional
/// transactions on one item, so it loses updates that DynamoDB would refuse.
async fn concurrency_setup() -> (MotoHandler, serde_json::Value) {
    let local = std::env::var("DYNAMODB_LOCAL_ENDPOINT")
        .expect("DYNAMODB_LOCAL_ENDPOINT is not set: run the tests through scripts/test");
    let (handler, _, _) = handler_on(&moto(), &local, 1000).await;
    let template = serde_json::from_str(&fixture(
        "ses-notification-bounce-transient-general-ooto.simulator.relay.json",
    ))
    .unwrap();
    (handler, template)
}

#[tokio::test]
async fn twenty_concurrent_invocations_on_the_same_address_lose_no_count() {
    let (handler, template) = concurrency_setup().await;
    let body = |i: usize| {
        let mut v = template.clone();
        v["bounce"]["feedbackId"] = serde_json::Value::String(format!("concurrent-{i}"));
        v["mail"]["messageId"] = serde_json::Value::String(format!("msg-{i}"));
        v.to_string()
    };
    let batches: Vec<_> = (0..20).map(|i| sqs_event(&[body(i), body(i)])).collect();
    let runs = batches.iter().map(|batch| handler.handle_batch(batch));
    let results = futures_util::future::join_all(runs).await;
    assert!(results.iter().all(|(response, _)| response.batch_item_failures.is_empty()));

    let records = handler.store.active_records(chrono::Utc::now()).await.unwrap();
    assert!(records.is_empty(), "threshold 1000 is not reached");
    let key = {
        let v: serde_json::Value = template["bounce"]["bouncedRecipients"][0].clone();
        v["emailAddress"].as_str().unwrap().to_lowercase()
    };
    let record = handler.store.load_key(&key).await.unwrap().unwrap();
    assert_eq!(record.soft_bounce_count, 20, "each distinct bounce counted exactly once");
    assert_eq!(handler.store.history(&key).await.unwrap().len(), 20);
}

/// Twenty concurrent invocations over the same three addresses, each notification also
/// redelivered inside another invocation that runs at the same time: every distinct bounce is
/// counted once per address, none twice, none lost.
#[tokio::test]
async fn twenty_concurrent_invocations_over_shared_addresses_apply_each_bounce_exactly_once() {
    let (handler, template) = concurrency_setup().await;
    let run = fastrand::u32(..);
    let addresses: Vec<String> =
        (0..3).map(|i| format!("shared-{run:08x}-{i}@example.com")).collect();
    // Notification i bounces two of the three addresses.
    let body = |i: usize| {
        let mut v = template.clone();
        v["bounce"]["feedbackId"] = serde_json::json!(format!("shared-{run:08x}-{i}"));
        v["mail"]["messageId"] = serde_json::json!(format!("shared-msg-{run:08x}-{i}"));
        let prototype = v["bounce"]["bouncedRecipients"][0].clone();
        let recipients: Vec<serde_json::Value> = [i % 3, (i + 1) % 3]
            .iter()
            .map(|&a| {
                let mut r = prototype.clone();
                r["emailAddress"] = serde_json::json!(addresses[a]);
                r
            })
            .collect();
        v["bounce"]["bouncedRecipients"] = serde_json::Value::Array(recipients);
        v.to_string()
    };
    // Invocation i carries notification i and a redelivery of notification i + 1.
    let batches: Vec<_> = (0..20).map(|i| sqs_event(&[body(i), body((i + 1) % 20)])).collect();
    let results =
        futures_util::future::join_all(batches.iter().map(|b| handler.handle_batch(b))).await;
    assert!(results.iter().all(|(response, _)| response.batch_item_failures.is_empty()));

    let mut expected = [0u32; 3];
    for i in 0..20 {
        expected[i % 3] += 1;
        expected[(i + 1) % 3] += 1;
    }
    for (address, count) in addresses.iter().zip(expected) {
        let record = handler.store.load_key(address).await.unwrap().unwrap();
        assert_eq!(record.soft_bounce_count, count, "each distinct bounce counted once");
        let history = handler.store.history(address).await.unwrap();
        assert_eq!(history.len(), count as usize, "one history entry per distinct bounce");
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_gives_retryable_failures_and_no_state() {
    let (handler, _, _) = handler("http://127.0.0.1:9", 3).await;
    let bodies = [
        fixture("ses-notification-bounce-permanent-general.simulator.relay.json"),
        fixture("ses-notification-delivery.aws-docs.json"),
    ];
    let (response, outcomes) = handler.handle_batch(&sqs_event(&bodies)).await;
    assert_eq!(outcomes, [RecordOutcome::Retry, RecordOutcome::Retry]);
    let failed: Vec<_> =
        response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, ["m-0", "m-1"]);
}
