//! The CPU cost of the ingest path and where it goes:
//!
//! - parse + decide over every SQS body in `tests/fixtures/ses/` (and `derived/`, plus the record
//!   bodies of the SQS event fixtures): `ses_wire::parse_sqs_body`, then per recipient what
//!   `apply::apply_recipient` computes before it writes (`policy::decide` against a fresh record,
//!   as for an address seen for the first time, the history entry and the counter field), against
//!   the floor, a bare `serde_json::Value` parse of the same bytes;
//! - SNS signature verification with a cached certificate, SignatureVersion 1 and 2, at the
//!   message's own timestamp (the saved certificate has expired in real time);
//! - one store round trip (load + commit of a new address) against DynamoDB Local, when
//!   `DYNAMODB_LOCAL_ENDPOINT` is set (`scripts/bench` starts it).
//!
//! After criterion's report it prints `figure <name> <value> <unit>` lines and a summary, computed
//! from the same samples criterion took (median time per iteration).
//!
//! Run: `scripts/bench`, or `cargo bench -p ingest-feedback --bench ingest`.

// Benchmark setup: a failure here is a broken benchmark, not a runtime condition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use criterion::{Criterion, Throughput};
use feedback_domain::policy::{self, Policy, RecipientEvent, RecipientEventKind};
use feedback_domain::ports::{
    CommitOutcome, CounterIncrement, EventWrite, SuppressionStore, WriteScope,
};
use feedback_domain::{BounceSubType, BounceType, EmailAddress, SuppressionTarget};
use ses_wire::Content;
use sns_verify::{
    CertificateFetcher, CertificateStore, CertificateUrl, FetchError, SnsMessage, Verifier,
};
use suppression_store::{DynamoDbSuppressionStore, StoreSettings, schema};

/// Samples per benchmark; the summary takes the median of the last this many samples.
const SAMPLES: usize = 20;
const CERT_FILE: &str = "sns-signing-cert-7ff5318490ec183fbaddaa2a969abfda.pem";
const SIGNED_V1: &str = "sns-notification-ses-event-complaint.signed-v1.django-ses.json";
const SIGNED_V2: &str = "sns-notification-plain-with-subject.signed-v2.php-validator.json";

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/ses")
}

/// Every SQS body in the fixture corpus: files that are a body themselves, and the `body` of
/// each record of the SQS Lambda event fixtures.
fn corpus() -> Vec<String> {
    let root = fixtures_dir();
    let mut bodies = Vec::new();
    for dir in [root.clone(), root.join("derived")] {
        let mut paths: Vec<_> =
            std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if !name.ends_with(".json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            if ["ses-notification-", "ses-event-", "sns-", "sqs-body-"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
            {
                bodies.push(text);
            } else if name.starts_with("sqs-lambda-event-") {
                let event: serde_json::Value = serde_json::from_str(&text).unwrap();
                for record in event["Records"].as_array().into_iter().flatten() {
                    bodies.extend(record["body"].as_str().map(str::to_owned));
                }
            }
        }
    }
    assert!(bodies.len() > 30, "fixture corpus not found under {}", root.display());
    bodies
}

/// What the handler computes for one body before any I/O; returns the recipient decisions made.
fn parse_and_decide(body: &str, policy: &Policy, retention: chrono::Duration) -> usize {
    let Ok(parsed) = ses_wire::parse_sqs_body(body) else { return 0 };
    let Content::Feedback(feedback) = parsed.content else { return 0 };
    let split = policy::recipient_events(&feedback);
    for event in &split.events {
        let (decision, record) = policy::decide(None, event, policy);
        let history = event.history_entry(&decision, Some(event.at + retention));
        black_box((decision, record, history, event.counter_field()));
    }
    split.events.len()
}

/// Median seconds per iteration of the samples criterion took (warm-up runs come first, so
/// only the last [`SAMPLES`] count).
#[derive(Default, Clone)]
struct Samples(Arc<Mutex<Vec<f64>>>);

impl Samples {
    fn record(&self, elapsed: Duration, iters: u64) -> Duration {
        self.0.lock().unwrap().push(elapsed.as_secs_f64() / iters.max(1) as f64);
        elapsed
    }

    fn median(&self) -> Option<f64> {
        let all = self.0.lock().unwrap();
        let mut last: Vec<f64> = all[all.len().saturating_sub(SAMPLES)..].to_vec();
        if last.is_empty() {
            return None;
        }
        last.sort_by(f64::total_cmp);
        Some(last[last.len() / 2])
    }
}

fn figure(name: &str, value: f64, unit: &str) {
    println!("figure {name} {value:.3} {unit}");
}

/// Serves the saved certificate from memory: the store asks once, then answers from its cache.
struct SavedCertificate(Vec<u8>);

impl CertificateFetcher for SavedCertificate {
    async fn fetch(&self, _url: &CertificateUrl) -> Result<Vec<u8>, FetchError> {
        Ok(self.0.clone())
    }
}

struct Figures {
    corpus: Samples,
    floor: Samples,
    verify_v1: Samples,
    verify_v2: Samples,
    round_trip: Samples,
}

fn bench_corpus(c: &mut Criterion, figures: &Figures) -> (usize, usize, usize) {
    let bodies = corpus();
    let policy = Policy::default();
    let retention = chrono::Duration::days(400);
    let feedback = bodies
        .iter()
        .filter(|b| {
            matches!(ses_wire::parse_sqs_body(b).map(|p| p.content), Ok(Content::Feedback(_)))
        })
        .count();
    let decisions: usize = bodies.iter().map(|b| parse_and_decide(b, &policy, retention)).sum();

    let mut group = c.benchmark_group("ingest_corpus");
    group.sample_size(SAMPLES).throughput(Throughput::Elements(bodies.len() as u64));
    let samples = figures.corpus.clone();
    group.bench_function("parse_decide", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for body in &bodies {
                    black_box(parse_and_decide(black_box(body), &policy, retention));
                }
            }
            samples.record(start.elapsed(), iters)
        })
    });
    let samples = figures.floor.clone();
    group.bench_function("serde_json_value_floor", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for body in &bodies {
                    let _ = black_box(serde_json::from_slice::<serde_json::Value>(black_box(
                        body.as_bytes(),
                    )));
                }
            }
            samples.record(start.elapsed(), iters)
        })
    });
    group.finish();
    (bodies.len(), feedback, decisions)
}

fn bench_verify(c: &mut Criterion, rt: &tokio::runtime::Runtime, figures: &Figures) {
    let pem = std::fs::read(fixtures_dir().join(CERT_FILE)).unwrap();
    let store = Arc::new(CertificateStore::new(SavedCertificate(pem)));
    let mut group = c.benchmark_group("sns_verify_cached");
    group.sample_size(SAMPLES);
    for (label, file, samples) in
        [("v1", SIGNED_V1, &figures.verify_v1), ("v2", SIGNED_V2, &figures.verify_v2)]
    {
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fixtures_dir().join(file)).unwrap()).unwrap();
        let message = SnsMessage::from_json(&json).unwrap();
        let at: DateTime<Utc> = message.timestamp.parse().unwrap();
        let verifier =
            Verifier::new(Arc::clone(&store), vec![message.topic_arn.to_owned()]).unwrap();
        // The first call fills the cache; the loop measures the warm Lambda's steady state.
        rt.block_on(verifier.verify(&message, at)).unwrap();
        let samples = samples.clone();
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    rt.block_on(verifier.verify(black_box(&message), at)).unwrap();
                }
                samples.record(start.elapsed(), iters)
            })
        });
    }
    group.finish();
}

async fn dynamodb_local_store(endpoint: &str) -> DynamoDbSuppressionStore {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("eu-central-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&conf);
    let table = format!("bench-ingest-{}", fastrand::u64(..));
    schema::create_table(&client, &table).await.unwrap();
    DynamoDbSuppressionStore::new(client, table, StoreSettings::default())
}

/// A hard bounce for an address never seen before, so each round trip is a first write.
fn new_address_bounce(n: u64) -> RecipientEvent {
    RecipientEvent {
        address: EmailAddress::parse(&format!("bench-{n}@example.com")).unwrap(),
        kind: RecipientEventKind::Bounce {
            bounce_type: BounceType::Permanent,
            sub_type: BounceSubType::General,
            action: Some("failed".into()),
            status: Some("5.1.1".into()),
            diagnostic_code: Some("smtp; 550 5.1.1 user unknown".into()),
        },
        at: Utc.with_ymd_and_hms(2026, 11, 2, 12, 0, 0).unwrap(),
        feedback_id: Some(format!("bench-feedback-{n}")),
        ses_message_id: format!("bench-message-{n}"),
        identity: Some("example.com".into()),
    }
}

/// One `load` + `commit`, exactly as `apply::apply_recipient` does them for a new address.
async fn round_trip(store: &DynamoDbSuppressionStore, event: &RecipientEvent, policy: &Policy) {
    let target = SuppressionTarget::Address(event.address.clone());
    let prior = store.load(&target).await.unwrap();
    let (decision, record) = policy::decide(prior.as_ref(), event, policy);
    let write = EventWrite {
        scope: WriteScope::Record {
            record: Box::new(record),
            expected_version: prior.as_ref().map_or(0, |r| r.version),
        },
        history: event.history_entry(&decision, Some(event.at + chrono::Duration::days(400))),
        counter: event.counter_field().map(|field| CounterIncrement {
            identity: event.identity.clone().unwrap_or_default(),
            day: event.at.date_naive(),
            field,
            by: 1,
        }),
    };
    assert_eq!(store.commit(&write).await.unwrap(), CommitOutcome::Applied);
}

fn bench_round_trip(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    endpoint: &str,
    figures: &Figures,
) {
    let store = rt.block_on(dynamodb_local_store(endpoint));
    let policy = Policy::default();
    let mut next = 0u64;
    let mut group = c.benchmark_group("store_round_trip");
    group.sample_size(SAMPLES);
    let samples = figures.round_trip.clone();
    group.bench_function("dynamodb_local_load_commit", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                next += 1;
                let event = new_address_bounce(next);
                let start = Instant::now();
                rt.block_on(round_trip(&store, &event, &policy));
                elapsed += start.elapsed();
            }
            samples.record(elapsed, iters)
        })
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let figures = Figures {
        corpus: Samples::default(),
        floor: Samples::default(),
        verify_v1: Samples::default(),
        verify_v2: Samples::default(),
        round_trip: Samples::default(),
    };

    let (bodies, feedback, decisions) = bench_corpus(&mut c, &figures);
    bench_verify(&mut c, &rt, &figures);
    let endpoint = std::env::var("DYNAMODB_LOCAL_ENDPOINT").ok().filter(|e| !e.is_empty());
    if let Some(endpoint) = &endpoint {
        bench_round_trip(&mut c, &rt, endpoint, &figures);
    }
    c.final_summary();

    // `cargo test --benches` runs each benchmark once to check it works: no figures then.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    println!();
    println!(
        "corpus: {bodies} SQS bodies, {feedback} carry feedback, {decisions} recipient decisions \
         per pass"
    );
    let n = bodies as f64;
    let per_body = match (figures.corpus.median(), figures.floor.median()) {
        (Some(pass), Some(floor_pass)) => {
            let ratio = pass / floor_pass;
            figure("ingest.parse_decide_per_s", n / pass, "notifications/s");
            figure("ingest.parse_decide_us", pass / n * 1e6, "us/notification");
            figure("ingest.floor_per_s", n / floor_pass, "notifications/s");
            figure("ingest.ratio_to_floor", ratio, "x");
            println!(
                "summary: parse+decide {:.0} notifications/s ({:.2} us each), floor {:.0}/s, \
                 ratio {ratio:.2}x (target <= 3x: {})",
                n / pass,
                pass / n * 1e6,
                n / floor_pass,
                if ratio <= 3.0 { "met" } else { "missed" }
            );
            Some(pass / n)
        }
        _ => {
            println!("summary: parse+decide not measured (filtered out)");
            None
        }
    };

    let round_trip = figures.round_trip.median();
    match (round_trip, &endpoint) {
        (Some(rt_s), _) => {
            figure("ingest.store_round_trip_us", rt_s * 1e6, "us");
            println!("store round trip (DynamoDB Local, load + commit): {:.0} us", rt_s * 1e6);
        }
        (None, None) => println!(
            "DYNAMODB_LOCAL_ENDPOINT is not set: no store round trip measured, verification \
             share is of parse+decide (CPU only)"
        ),
        (None, Some(_)) => println!("store round trip not measured (filtered out)"),
    }
    let Some(per_body) = per_body else { return };
    let path = per_body + round_trip.unwrap_or(0.0);
    let basis = if round_trip.is_some() { "parse+decide+round trip" } else { "parse+decide" };
    for (label, samples) in [("v1", &figures.verify_v1), ("v2", &figures.verify_v2)] {
        let Some(verify) = samples.median() else { continue };
        let share = verify / path * 100.0;
        figure(&format!("verify.{label}_us"), verify * 1e6, "us");
        figure(&format!("verify.{label}_share_pct"), share, "%");
        println!(
            "summary: verify {label} {:.1} us = {share:.1}% of {basis} ({:.1} us) (target < 10%: {})",
            verify * 1e6,
            path * 1e6,
            if share < 10.0 { "met" } else { "missed" }
        );
    }
}
