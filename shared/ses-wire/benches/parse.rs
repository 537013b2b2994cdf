//! Throughput of `parse_sqs_body` over every fixture that is an SQS body (bare SES JSON or SNS
//! envelope, real and derived), against a bare `serde_json::Value` parse of the same bytes as the
//! floor. Envelope bodies are JSON-in-JSON, so the parser does two passes where the floor does one.

use std::fs;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn bodies() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/ses");
    let mut bodies = Vec::new();

    for dir in [root.clone(), root.join("derived")] {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        let mut paths: Vec<_> = entries.filter_map(|entry| entry.ok().map(|e| e.path())).collect();
        paths.sort();

        for path in paths {
            let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
            let is_body = ["ses-notification-", "ses-event-", "sns-", "sqs-body-"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
                && name.ends_with(".json");
            if is_body && let Ok(text) = fs::read_to_string(&path) {
                bodies.push(text);
            }
        }
    }

    bodies
}

fn parse(c: &mut Criterion) {
    let bodies = bodies();
    let bytes: usize = bodies.iter().map(String::len).sum();
    let mut group = c.benchmark_group("fixtures");
    group.throughput(Throughput::Bytes(bytes as u64));

    group.bench_function("parse_sqs_body", |b| {
        b.iter(|| {
            for body in &bodies {
                let _ = black_box(ses_wire::parse_sqs_body(black_box(body)));
            }
        })
    });
    group.bench_function("serde_json_value_floor", |b| {
        b.iter(|| {
            for body in &bodies {
                let _ = black_box(serde_json::from_slice::<serde_json::Value>(black_box(
                    body.as_bytes(),
                )));
            }
        })
    });

    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
