//! Cost of verifying one SNS message once its certificate is cached (the steady state of a warm
//! Lambda), for SignatureVersion 1 and 2, plus the pinned-bundle path.
//!
//! Run: `cargo bench -p sns-verify` (add `-- --quick` for a short run).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use sns_verify::{
    Certificate, CertificateFetcher, CertificateSource, CertificateStore, CertificateUrl,
    FetchError, SnsMessage, Verifier,
};

const CERT_FILE: &str = "sns-signing-cert-7ff5318490ec183fbaddaa2a969abfda.pem";
const V1: &str = "sns-notification-ses-event-complaint.signed-v1.django-ses.json";
const V2: &str = "sns-notification-plain-with-subject.signed-v2.php-validator.json";

fn fixture(name: &str) -> Vec<u8> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/ses").join(name);
    std::fs::read(path).unwrap()
}

/// Serves the fixture certificate from memory; after the first call the store never asks again.
struct MemoryFetcher(Vec<u8>);

impl CertificateFetcher for MemoryFetcher {
    async fn fetch(&self, _url: &CertificateUrl) -> Result<Vec<u8>, FetchError> {
        Ok(self.0.clone())
    }
}

fn bench_verify(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let pem = fixture(CERT_FILE);
    let cached_store = Arc::new(CertificateStore::new(MemoryFetcher(pem.clone())));
    let pinned_store =
        Arc::new(CertificateStore::pinned_only(Certificate::from_pem(&pem).unwrap()));

    for (label, name) in [("v1_sha1", V1), ("v2_sha256", V2)] {
        let json: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap();
        let msg = SnsMessage::from_json(&json).unwrap();
        let now: DateTime<Utc> = msg.timestamp.parse().unwrap();
        let topics = vec![msg.topic_arn.to_owned()];
        let cached = Verifier::new(Arc::clone(&cached_store), topics.clone()).unwrap();
        let pinned = Verifier::new(Arc::clone(&pinned_store), topics).unwrap();

        // Warm the cache so the loop measures the steady state.
        rt.block_on(cached.verify(&msg, now)).unwrap();
        let warm = rt.block_on(cached.verify(&msg, now)).unwrap();
        assert_eq!(warm.certificate, CertificateSource::Cached);

        c.bench_function(&format!("verify/{label}/cached"), |b| {
            b.iter(|| rt.block_on(cached.verify(black_box(&msg), now)).unwrap())
        });
        c.bench_function(&format!("verify/{label}/pinned"), |b| {
            b.iter(|| rt.block_on(pinned.verify(black_box(&msg), now)).unwrap())
        });
    }
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
