//! Rendering and pushing the projection at 1k, 10k and 100k suppressed addresses: render time
//! of the denylist map and of the settings rule, body size, and the time of one push of the map
//! to the Mailcow simulator on loopback (HTTP, JSON encoding and the simulator's write; no
//! network latency). Run with `cargo bench -p sync-mailcow --bench render`.

// Benchmark setup: a failure here is a broken benchmark, not a runtime condition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use feedback_domain::{SuppressionReason, SuppressionTarget};
use mailcow_api::{ApiKey, MailcowClient, MailcowConfig, RetryPolicy, Url};
use simulators::mailcow::MailcowSimConfig;
use sync_mailcow::MailcowMode;
use sync_mailcow::ports::{Rendering, TargetState};
use sync_mailcow::projection::{self, View};

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// `n` active suppressions with realistic variety: dots, plus tags and 200 domains.
fn view(n: usize) -> View {
    (0..n)
        .map(|i| {
            let key = format!("first.last+{i}@mail{}.example-{}.com", i % 200, i % 7);
            let state = TargetState {
                target: SuppressionTarget::parse(&key).unwrap(),
                active: Some(SuppressionReason::HardBounce),
                ses_listed: true,
                exists: true,
            };
            (key, state)
        })
        .collect()
}

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("render");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for n in SIZES {
        let view = view(n);
        for mode in [MailcowMode::Map, MailcowMode::Rsetting] {
            let rendering = projection::render(mode, &projection::blocked_targets(&view)).unwrap();
            println!("body size {} {n}: {} bytes", mode.as_str(), rendering.bytes());
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(mode.as_str(), n), &view, |b, view| {
                b.iter(|| {
                    let targets = projection::blocked_targets(black_box(view));
                    projection::render(mode, &targets).unwrap()
                })
            });
        }
    }
    group.finish();
}

fn push(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sim = runtime.block_on(simulators::mailcow::spawn(MailcowSimConfig::default())).unwrap();
    let mut config = MailcowConfig::new(
        Url::parse(&sim.base_url).unwrap(),
        ApiKey::new(&MailcowSimConfig::default().rw_key).unwrap(),
    );
    config.retry = RetryPolicy::none();
    config.request_timeout = Duration::from_secs(60);
    let client = MailcowClient::new(config).unwrap();

    let mut group = c.benchmark_group("push_map");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for n in SIZES {
        let targets = projection::blocked_targets(&view(n));
        let Rendering::Map(map) = projection::render(MailcowMode::Map, &targets).unwrap() else {
            unreachable!("map mode renders a map")
        };
        group.throughput(Throughput::Bytes(map.text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &map, |b, map| {
            b.iter(|| runtime.block_on(client.push_denylist_map(map)).unwrap())
        });
        assert_eq!(sim.state.denylist_map().lines().count(), n + 2, "header, count, entries");
    }
    group.finish();
}

criterion_group!(benches, render, push);
criterion_main!(benches);
