//! EMF output checked field by field against the CloudWatch Embedded Metric Format
//! specification: root node, metadata, MetricDirective, DimensionSet, MetricDefinition and
//! target members, plus aggregation, splitting and the alarm series.

#![allow(clippy::unwrap_used, reason = "the helpers panic on malformed output, failing the test")]

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use telemetry::catalogue::{bounce_class, decision, dimension, metric, result};
use telemetry::{MetricsError, MetricsSink, NAMESPACE};

const UNITS: [&str; 2] = ["Count", "Milliseconds"];

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn take_text(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

struct FailingWriter;

impl Write for FailingWriter {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn sink() -> (MetricsSink, Captured) {
    let out = Captured::default();
    let sink = MetricsSink::new("mailcow-feedback-test", "ingest-feedback-fn")
        .unwrap()
        .with_writer(out.clone());
    (sink, out)
}

/// One parsed EMF line, already checked against the specification.
struct Doc {
    root: Map<String, Value>,
    timestamp: u64,
    dimension_set: Vec<String>,
    /// (Name, Unit) in directive order.
    metrics: Vec<(String, String)>,
}

impl Doc {
    fn dims(&self) -> Vec<(&str, &str)> {
        self.dimension_set.iter().map(|k| (k.as_str(), self.root[k].as_str().unwrap())).collect()
    }

    fn metric_names(&self) -> BTreeSet<&str> {
        self.metrics.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn value(&self, name: &str) -> &Value {
        &self.root[name]
    }
}

fn ms_now() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// Flushes and parses every line, asserting each rule of the specification on the way.
fn flush_docs(sink: &MetricsSink, out: &Captured) -> Vec<Doc> {
    let before = ms_now();
    let written = sink.flush().unwrap();
    let after = ms_now();
    let text = out.take_text();

    assert!(text.is_empty() || text.ends_with('\n'), "every line ends with a newline");
    let docs: Vec<Doc> = text.lines().map(|line| check_document(line, before, after)).collect();
    assert_eq!(docs.len(), written, "flush reports the lines it wrote");
    docs
}

fn check_document(line: &str, before: u64, after: u64) -> Doc {
    // Root node: one JSON object, nothing before or after it.
    let root: Map<String, Value> = serde_json::from_str(line).unwrap();

    // Metadata object: only Timestamp and CloudWatchMetrics.
    let aws = root["_aws"].as_object().unwrap();
    let aws_keys: BTreeSet<&str> = aws.keys().map(String::as_str).collect();
    assert_eq!(aws_keys, BTreeSet::from(["CloudWatchMetrics", "Timestamp"]));
    assert!(aws["Timestamp"].is_u64(), "Timestamp is an integer: {}", aws["Timestamp"]);
    let timestamp = aws["Timestamp"].as_u64().unwrap();
    assert!((before..=after).contains(&timestamp), "Timestamp is milliseconds since the epoch");

    // MetricDirective: Namespace, Dimensions, Metrics and nothing else.
    let directives = aws["CloudWatchMetrics"].as_array().unwrap();
    assert_eq!(directives.len(), 1);
    let directive = directives[0].as_object().unwrap();
    let directive_keys: BTreeSet<&str> = directive.keys().map(String::as_str).collect();
    assert_eq!(directive_keys, BTreeSet::from(["Dimensions", "Metrics", "Namespace"]));
    assert_eq!(directive["Namespace"], NAMESPACE);

    // DimensionSet array: at least one set, at most 30 keys each, each a string member at root.
    let sets = directive["Dimensions"].as_array().unwrap();
    assert_eq!(sets.len(), 1);
    let dimension_set: Vec<String> =
        sets[0].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect();
    assert!(dimension_set.len() <= 30);
    for key in &dimension_set {
        assert!(!key.is_empty() && key.len() <= 250, "dimension key length: {key}");
        let value = root[key].as_str().unwrap_or_else(|| panic!("dimension {key} is a string"));
        assert!(!value.is_empty() && value.len() <= 1024);
    }

    // MetricDefinition objects: at most 100, Name and Unit only, unique names.
    let definitions = directive["Metrics"].as_array().unwrap();
    assert!(!definitions.is_empty() && definitions.len() <= 100, "{} metrics", definitions.len());
    let mut metrics = Vec::new();
    for definition in definitions {
        let definition = definition.as_object().unwrap();
        let keys: BTreeSet<&str> = definition.keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["Name", "Unit"]));
        let name = definition["Name"].as_str().unwrap().to_owned();
        let unit = definition["Unit"].as_str().unwrap().to_owned();
        assert!(UNITS.contains(&unit.as_str()), "valid CloudWatch unit: {unit}");
        assert!(!dimension_set.contains(&name), "a metric target is not a dimension target");

        // Target member: a number, or an array of at most 100 numbers.
        match &root[&name] {
            Value::Number(_) => {}
            Value::Array(values) => {
                assert!(!values.is_empty() && values.len() <= 100, "{} values", values.len());
                assert!(values.iter().all(Value::is_number));
            }
            other => panic!("metric target {name} must be numeric, got {other}"),
        }
        metrics.push((name, unit));
    }
    let unique: BTreeSet<&str> = metrics.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(unique.len(), metrics.len(), "each metric once per directive");

    // Nothing else at the root: the metadata, the dimensions and the metrics.
    assert_eq!(root.len(), 1 + dimension_set.len() + metrics.len());

    Doc { root, timestamp, dimension_set, metrics }
}

fn leaked(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}

#[test]
fn a_count_becomes_one_spec_conformant_line_with_the_base_dimensions() {
    let (sink, out) = sink();
    sink.count(metric::NOTIFICATIONS, &[("Type", "bounce"), ("Outcome", "applied")], 1);

    let docs = flush_docs(&sink, &out);

    assert_eq!(docs.len(), 1);
    let doc = &docs[0];
    assert_eq!(
        doc.dims(),
        [
            ("Service", "mailcow-feedback-test"),
            ("FunctionName", "ingest-feedback-fn"),
            ("Outcome", "applied"),
            ("Type", "bounce"),
        ]
    );
    assert_eq!(doc.metrics, [("Notifications".to_owned(), "Count".to_owned())]);
    assert_eq!(doc.value("Notifications"), 1);
    assert!(doc.timestamp > 1_600_000_000_000);
}

#[test]
fn three_counts_with_the_same_dimensions_aggregate_into_one_value() {
    let (sink, out) = sink();
    let dims = [(dimension::DECISION, decision::SUPPRESSED)];
    sink.count(metric::RECIPIENTS_DECIDED, &dims, 1);
    sink.count(metric::RECIPIENTS_DECIDED, &dims, 1);
    sink.count(metric::RECIPIENTS_DECIDED, &dims, 1);

    let docs = flush_docs(&sink, &out);

    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].value(metric::RECIPIENTS_DECIDED), 3);
}

#[test]
fn dimension_order_does_not_split_a_series() {
    let (sink, out) = sink();
    sink.count(
        metric::SES_SYNC_CALLS,
        &[("Operation", "PutSuppressedDestination"), ("Result", "success")],
        2,
    );
    sink.count(
        metric::SES_SYNC_CALLS,
        &[("Result", "success"), ("Operation", "PutSuppressedDestination")],
        5,
    );

    let docs = flush_docs(&sink, &out);

    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].value(metric::SES_SYNC_CALLS), 7);
}

#[test]
fn each_combination_of_dimension_values_gets_its_own_line() {
    let (sink, out) = sink();
    sink.count(metric::MAILCOW_PUSH, &[(dimension::RESULT, result::SUCCESS)], 4);
    sink.count(metric::MAILCOW_PUSH, &[(dimension::RESULT, result::FAILED)], 1);
    sink.count(metric::RETRYABLE_FAILURES, &[], 1);
    sink.count(metric::SUPPRESSIONS_RELEASED, &[], 2);

    let docs = flush_docs(&sink, &out);

    assert_eq!(docs.len(), 3);
    let find = |dims: &[(&str, &str)]| docs.iter().find(|d| d.dims() == dims).unwrap();
    let base = [("Service", "mailcow-feedback-test"), ("FunctionName", "ingest-feedback-fn")];
    let plain = find(&base);
    assert_eq!(plain.metric_names(), BTreeSet::from(["RetryableFailures", "SuppressionsReleased"]));
    assert_eq!(plain.value("RetryableFailures"), 1);
    assert_eq!(plain.value("SuppressionsReleased"), 2);
    let failed = find(&[base[0], base[1], ("Result", "failed")]);
    assert_eq!(failed.value("MailcowPush"), 1);
    let success = find(&[base[0], base[1], ("Result", "success")]);
    assert_eq!(success.value("MailcowPush"), 4);
}

#[test]
fn more_than_100_metrics_are_split_across_lines_of_at_most_100() {
    let (sink, out) = sink();
    for i in 0..250 {
        sink.count(leaked(format!("Metric{i:03}")), &[], u64::try_from(i).unwrap());
    }

    let docs = flush_docs(&sink, &out);

    let sizes: Vec<usize> = docs.iter().map(|d| d.metrics.len()).collect();
    assert_eq!(sizes, [100, 100, 50]);
    let mut seen = BTreeSet::new();
    for doc in &docs {
        for (name, _) in &doc.metrics {
            let i: u64 = name.trim_start_matches("Metric").parse().unwrap();
            assert_eq!(doc.value(name), i, "{name} keeps its own value");
            assert!(seen.insert(name.clone()), "{name} written once");
        }
    }
    assert_eq!(seen.len(), 250);
}

#[test]
fn durations_are_written_as_arrays_of_samples() {
    let (sink, out) = sink();
    let dims = [(dimension::RESULT, result::SUCCESS)];
    sink.duration_ms(metric::MAILCOW_PUSH_DURATION, &dims, 120);
    sink.duration_ms(metric::MAILCOW_PUSH_DURATION, &dims, 80);
    sink.duration(metric::MAILCOW_PUSH_DURATION, &dims, Duration::from_micros(2_500));

    let docs = flush_docs(&sink, &out);

    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].metrics, [("MailcowPushDuration".to_owned(), "Milliseconds".to_owned())]);
    let samples: Vec<f64> = docs[0]
        .value(metric::MAILCOW_PUSH_DURATION)
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(samples, [120.0, 80.0, 2.5]);
}

#[test]
fn more_than_100_duration_samples_continue_on_further_lines() {
    let (sink, out) = sink();
    for ms in 0..230 {
        sink.duration_ms(metric::MAILCOW_PUSH_DURATION, &[], ms);
    }
    sink.count(metric::MAILCOW_PUSH, &[], 230);

    let docs = flush_docs(&sink, &out);

    let lengths: Vec<usize> = docs
        .iter()
        .map(|d| d.value(metric::MAILCOW_PUSH_DURATION).as_array().unwrap().len())
        .collect();
    assert_eq!(lengths, [100, 100, 30]);
    let all: Vec<u64> = docs
        .iter()
        .flat_map(|d| d.value(metric::MAILCOW_PUSH_DURATION).as_array().unwrap().clone())
        .map(|v| v.as_f64().unwrap() as u64)
        .collect();
    assert_eq!(all, (0..230).collect::<Vec<u64>>());
    let counts: Vec<&Doc> =
        docs.iter().filter(|d| d.metric_names().contains("MailcowPush")).collect();
    assert_eq!(counts.len(), 1, "the count is written once");
    assert_eq!(counts[0].value(metric::MAILCOW_PUSH), 230);
}

#[test]
fn bounces_complaints_deliveries_and_sends_feed_service_only_alarm_series() {
    let (sink, out) = sink();
    sink.count(metric::BOUNCES, &[(dimension::BOUNCE_CLASS, bounce_class::HARD)], 2);
    sink.count(metric::BOUNCES, &[(dimension::BOUNCE_CLASS, bounce_class::SOFT)], 3);
    sink.count(metric::COMPLAINTS, &[], 1);
    sink.count(metric::DELIVERIES, &[], 40);
    sink.count(metric::SENDS, &[], 45);
    sink.count(metric::NOTIFICATIONS, &[("Type", "delivery"), ("Outcome", "applied")], 40);

    let docs = flush_docs(&sink, &out);

    let alarm: Vec<&Doc> = docs.iter().filter(|d| d.dimension_set == ["Service"]).collect();
    assert_eq!(alarm.len(), 1);
    let alarm = alarm[0];
    assert_eq!(alarm.dims(), [("Service", "mailcow-feedback-test")]);
    assert_eq!(
        alarm.metric_names(),
        BTreeSet::from([
            "BouncesTotal",
            "ComplaintsTotal",
            "DeliveriesTotal",
            "HardBounces",
            "SendsTotal"
        ])
    );
    assert!(alarm.metrics.iter().all(|(_, unit)| unit == "Count"));
    assert_eq!(alarm.value("HardBounces"), 2);
    assert_eq!(alarm.value("BouncesTotal"), 5);
    assert_eq!(alarm.value("ComplaintsTotal"), 1);
    assert_eq!(alarm.value("DeliveriesTotal"), 40);
    assert_eq!(alarm.value("SendsTotal"), 45);
    assert!(!alarm.root.contains_key("FunctionName"));

    let hard = docs.iter().find(|d| d.dims().contains(&("BounceClass", "hard"))).unwrap();
    assert_eq!(hard.value("Bounces"), 2, "the per-function series is kept too");
}

#[test]
fn flush_clears_what_it_wrote() {
    let (sink, out) = sink();
    sink.count(metric::SENDS, &[], 1);
    assert_eq!(flush_docs(&sink, &out).len(), 2);

    assert!(flush_docs(&sink, &out).is_empty());
    assert_eq!(sink.flush().unwrap(), 0);

    sink.count(metric::SENDS, &[], 1);
    let docs = flush_docs(&sink, &out);
    let sends = docs.iter().find(|d| d.metric_names().contains("Sends")).unwrap();
    assert_eq!(sends.value("Sends"), 1, "counts start again from zero");
}

#[test]
fn calls_that_break_the_rules_are_dropped_and_the_rest_is_written() {
    let (sink, out) = sink();
    let too_many: Vec<(&'static str, &'static str)> =
        (0..29).map(|i| (leaked(format!("D{i}")), "x")).collect();
    let long_value = leaked("v".repeat(1025));

    sink.count("", &[], 1);
    sink.count("Bad", &[("Reason", "")], 1);
    sink.count("Bad", &[("Reason", "caf\u{e9}")], 1);
    sink.count("Bad", &[("Reason", "line\nbreak")], 1);
    sink.count("Bad", &[("Reason", long_value)], 1);
    sink.count("Bad", &[("Reason", "a"), ("Reason", "b")], 1);
    sink.count("Bad", &[(":Reason", "a")], 1);
    sink.count("Bad", &[("FunctionName", "other")], 1);
    sink.count("Bad", &[("_aws", "x")], 1);
    sink.count("Bad", &too_many, 1);
    sink.count("Reason", &[("Reason", "x")], 1);
    sink.count("Service", &[], 1);
    sink.count(metric::HARD_BOUNCES, &[], 1);
    sink.count(metric::QUARANTINED, &[(dimension::REASON, "bad-signature")], 1);

    let docs = flush_docs(&sink, &out);

    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].metric_names(), BTreeSet::from(["Quarantined"]));
    assert_eq!(docs[0].value("Quarantined"), 1);
}

#[test]
fn twenty_eight_extra_dimensions_fill_a_set_of_thirty() {
    let (sink, out) = sink();
    let dims: Vec<(&'static str, &'static str)> =
        (0..28).map(|i| (leaked(format!("D{i:02}")), "x")).collect();
    sink.count("Wide", &dims, 1);

    let docs = flush_docs(&sink, &out);

    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].dimension_set.len(), 30);
}

#[test]
fn a_name_keeps_the_unit_it_was_first_recorded_with() {
    let (sink, out) = sink();
    sink.count(metric::MAILCOW_PUSH, &[], 1);
    sink.duration_ms(metric::MAILCOW_PUSH, &[], 10);
    sink.duration_ms(metric::MAILCOW_PUSH_DURATION, &[], 10);
    sink.count(metric::MAILCOW_PUSH_DURATION, &[], 1);

    let docs = flush_docs(&sink, &out);

    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].value(metric::MAILCOW_PUSH), 1);
    assert_eq!(docs[0].value(metric::MAILCOW_PUSH_DURATION).as_array().unwrap().len(), 1);
}

#[test]
fn the_sink_is_shared_across_threads() {
    let (sink, out) = sink();
    let sink = Arc::new(sink);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let sink = Arc::clone(&sink);
            std::thread::spawn(move || {
                for _ in 0..25 {
                    sink.count(metric::DELIVERIES, &[], 1);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }

    let docs = flush_docs(&sink, &out);

    let deliveries = docs.iter().find(|d| d.metric_names().contains("Deliveries")).unwrap();
    assert_eq!(deliveries.value("Deliveries"), 100);
}

#[test]
fn invalid_base_dimension_values_are_refused() {
    for (service, function) in [("", "fn"), ("svc", " "), ("sv\u{e9}", "fn"), ("svc", "f\tn")] {
        let err = MetricsSink::new(service, function).unwrap_err();
        assert!(
            matches!(err, MetricsError::InvalidDimensionValue { .. }),
            "{service:?}/{function:?}: {err}"
        );
    }
    let err = MetricsSink::new("svc", "f".repeat(1025)).unwrap_err();
    assert!(matches!(err, MetricsError::InvalidDimensionValue { dimension: "FunctionName", .. }));
}

#[test]
fn a_failing_writer_is_reported_and_the_values_are_discarded() {
    let sink = MetricsSink::new("svc", "fn").unwrap().with_writer(FailingWriter);
    sink.count(metric::SENDS, &[], 1);

    let err = sink.flush().unwrap_err();

    assert!(matches!(err, MetricsError::Write(_)), "{err}");
    assert_eq!(sink.flush().unwrap(), 0);
}
