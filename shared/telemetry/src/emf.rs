//! CloudWatch Embedded Metric Format (EMF) output: [`MetricsSink`] aggregates counts and
//! durations in memory and writes them as EMF JSON lines on [`MetricsSink::flush`].
//!
//! Owns the EMF document layout and its limits. Knows nothing about Lambda, SES or Mailcow
//! beyond the names in [`crate::catalogue`]; it must not depend on AWS SDK crates (CloudWatch
//! Logs extracts the metrics from stdout, so no API call is needed).
//!
//! Layout of one line: the `_aws` metadata with a single MetricDirective whose only DimensionSet
//! is `[Service, FunctionName, <call dimensions sorted by key>]` (or `[Service]` for the alarm
//! series), then the dimension values and the metric values as root members. Because dimension
//! values live at the root, one line carries one combination of dimension values; a combination
//! with more than 100 metrics, or a duration with more than 100 samples, spills into further
//! lines.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::mem;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::catalogue::{self, NAMESPACE, dimension, metric};

/// At most this many MetricDefinition objects in one MetricDirective (EMF specification).
pub const MAX_METRICS_PER_DIRECTIVE: usize = 100;
/// At most this many dimension keys in one DimensionSet (EMF specification).
pub const MAX_DIMENSIONS_PER_SET: usize = 30;
/// At most this many values in one metric array (EMF specification).
pub const MAX_VALUES_PER_METRIC: usize = 100;

/// Longest metric name the EMF schema accepts.
const MAX_NAME_LEN: usize = 1024;
/// Longest dimension key (DimensionReference) the EMF schema accepts.
const MAX_DIMENSION_KEY_LEN: usize = 250;
/// Longest dimension value the EMF specification accepts.
const MAX_DIMENSION_VALUE_LEN: usize = 1024;
/// Dimensions every per-function series carries before the call's own.
const BASE_DIMENSIONS: usize = 2;
/// Root member holding the metadata; no metric or dimension may take this name.
const METADATA_KEY: &str = "_aws";

/// Failure to build a [`MetricsSink`] or to write its output.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A base dimension value given to [`MetricsSink::new`] breaks the CloudWatch rules.
    #[error("invalid value for metric dimension {dimension}: {reason}")]
    InvalidDimensionValue {
        /// The dimension key (`Service` or `FunctionName`).
        dimension: &'static str,
        /// Which rule the value breaks.
        reason: &'static str,
    },
    /// An EMF document could not be serialised (not expected with the types used here).
    #[error("could not serialise an EMF document")]
    Serialize(#[source] serde_json::Error),
    /// The writer refused the output; the metrics of this flush are lost.
    #[error("could not write EMF output")]
    Write(#[source] io::Error),
}

/// Unit of a metric, as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
enum Unit {
    Count,
    Milliseconds,
}

/// What has been recorded for one metric of one series.
#[derive(Debug)]
enum Values {
    /// A running total; written as one number.
    Count(u64),
    /// Individual samples; written as arrays so CloudWatch can compute percentiles.
    Durations(Vec<f64>),
}

/// Which base dimensions a series carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    /// `Service`, `FunctionName` and the call's dimensions.
    Function,
    /// `Service` only: the alarm series.
    Service,
}

/// One combination of dimension values; becomes one or more EMF lines.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SeriesKey {
    scope: Scope,
    /// The call's dimensions, sorted by key.
    dims: Vec<(&'static str, &'static str)>,
}

type Series = BTreeMap<&'static str, Values>;

struct State {
    series: BTreeMap<SeriesKey, Series>,
    writer: Box<dyn Write + Send>,
}

/// Collects counts and durations during an invocation and writes them as CloudWatch EMF lines.
///
/// Share one sink per process (it is `Send + Sync`; recording takes `&self`) and call
/// [`flush`](Self::flush) before each invocation returns: Lambda may freeze the process right
/// after, and nothing is written on drop.
///
/// Metric names, dimension keys and dimension values are `&'static str`, so only names fixed at
/// compile time can reach CloudWatch: no address, message ID or other high-cardinality or
/// personal value fits through this API. The two runtime values, `Service` and `FunctionName`,
/// are fixed when the sink is built. A call that breaks an EMF or CloudWatch rule (see
/// [`count`](Self::count)) is dropped with a warning instead of failing the caller.
///
/// ```
/// use telemetry::MetricsSink;
/// use telemetry::catalogue::{dimension, metric, result};
///
/// let metrics = MetricsSink::new("mailcow-ses-feedback", "sync-mailcow")?
///     .with_writer(std::io::sink());
/// metrics.count(metric::MAILCOW_PUSH, &[(dimension::RESULT, result::SUCCESS)], 1);
/// metrics.duration_ms(metric::MAILCOW_PUSH_DURATION, &[(dimension::RESULT, result::SUCCESS)], 42);
/// // Both share one combination of dimension values, hence one line.
/// assert_eq!(metrics.flush()?, 1);
/// # Ok::<(), telemetry::MetricsError>(())
/// ```
pub struct MetricsSink {
    service: String,
    function_name: String,
    state: Mutex<State>,
}

impl fmt::Debug for MetricsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsSink")
            .field("service", &self.service)
            .field("function_name", &self.function_name)
            .finish_non_exhaustive()
    }
}

impl MetricsSink {
    /// Creates a sink writing to stdout, where the Lambda log agent picks EMF lines up.
    ///
    /// `service` names the deployment (e.g. the stack name) and `function_name` the Lambda
    /// function (`AWS_LAMBDA_FUNCTION_NAME`, read by `main`).
    ///
    /// Fails with [`MetricsError::InvalidDimensionValue`] when either value is empty, blank,
    /// longer than 1024 characters, or holds non-ASCII or control characters.
    pub fn new(
        service: impl Into<String>,
        function_name: impl Into<String>,
    ) -> Result<Self, MetricsError> {
        let service = service.into();
        let function_name = function_name.into();
        check_value(&service).map_err(|reason| MetricsError::InvalidDimensionValue {
            dimension: dimension::SERVICE,
            reason,
        })?;
        check_value(&function_name).map_err(|reason| MetricsError::InvalidDimensionValue {
            dimension: dimension::FUNCTION_NAME,
            reason,
        })?;

        let state = State { series: BTreeMap::new(), writer: Box::new(io::stdout()) };
        Ok(Self { service, function_name, state: Mutex::new(state) })
    }

    /// Replaces the output (stdout by default), e.g. with a buffer in tests or `io::sink()`.
    #[must_use]
    pub fn with_writer(self, writer: impl Write + Send + 'static) -> Self {
        let mut state = self.state.into_inner().unwrap_or_else(PoisonError::into_inner);
        state.writer = Box::new(writer);
        Self { service: self.service, function_name: self.function_name, state: Mutex::new(state) }
    }

    /// Adds `n` to the count `name` for the dimension values `dims` (unit `Count`).
    ///
    /// Calls with the same name and the same dimension values (in any order) are summed until the
    /// next flush. The counts listed in the crate docs also feed a `Service`-only alarm series.
    ///
    /// The call is dropped, with a warning, when: a name, key or value is empty, blank, not ASCII
    /// or too long for EMF; a key repeats, starts with `:`, or is `Service`, `FunctionName` or
    /// `_aws`; there are more than 28 dimensions (30 with the base two); the name equals one of
    /// the keys, is reserved for an alarm series, or was already recorded as a duration for the
    /// same dimension values.
    pub fn count(&self, name: &'static str, dims: &[(&'static str, &'static str)], n: u64) {
        let Some(key) = self.validated_key(name, dims) else { return };
        let mut state = self.lock();
        if !add_count(&mut state, key, name, n) {
            return;
        }

        for &alarm in catalogue::alarm_series(name, dims) {
            let key = SeriesKey { scope: Scope::Service, dims: Vec::new() };
            add_count(&mut state, key, alarm, n);
        }
    }

    /// Records one duration sample of `ms` milliseconds for `name` and `dims`.
    ///
    /// Samples are kept individually and written as arrays (at most 100 per line), so CloudWatch
    /// can compute averages and percentiles. Dropped like [`count`](Self::count), and also when
    /// the name was already recorded as a count for the same dimension values.
    pub fn duration_ms(&self, name: &'static str, dims: &[(&'static str, &'static str)], ms: u64) {
        // Exact: durations stay far below 2^53 ms.
        self.add_sample(name, dims, ms as f64);
    }

    /// Records `elapsed` as one duration sample in milliseconds, with sub-millisecond precision.
    ///
    /// Same rules as [`duration_ms`](Self::duration_ms).
    pub fn duration(
        &self,
        name: &'static str,
        dims: &[(&'static str, &'static str)],
        elapsed: Duration,
    ) {
        self.add_sample(name, dims, elapsed.as_secs_f64() * 1000.0);
    }

    /// Writes everything recorded since the last flush as EMF lines and clears it.
    ///
    /// Returns the number of lines written (0 when nothing was recorded). The timestamp of every
    /// line is the current time. Fails with [`MetricsError::Write`] when the writer fails; the
    /// recorded values are gone either way, so a broken stdout cannot make memory grow.
    pub fn flush(&self) -> Result<usize, MetricsError> {
        let mut state = self.lock();
        let series = mem::take(&mut state.series);
        if series.is_empty() {
            return Ok(0);
        }

        let timestamp = now_millis();
        let mut written = 0;
        for (key, values) in &series {
            for line in pack(values) {
                let mut text =
                    self.render(timestamp, key, &line).map_err(MetricsError::Serialize)?;
                text.push('\n');
                // One write per line so concurrent log output cannot split a document.
                state.writer.write_all(text.as_bytes()).map_err(MetricsError::Write)?;
                written += 1;
            }
        }

        state.writer.flush().map_err(MetricsError::Write)?;
        Ok(written)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves at worst a partial aggregate; keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add_sample(&self, name: &'static str, dims: &[(&'static str, &'static str)], ms: f64) {
        let Some(key) = self.validated_key(name, dims) else { return };
        let mut state = self.lock();
        let series = state.series.entry(key).or_default();
        match series.entry(name).or_insert_with(|| Values::Durations(Vec::new())) {
            Values::Durations(samples) => samples.push(ms),
            Values::Count(_) => warn_dropped(name, "already recorded as a count"),
        }
    }

    fn validated_key(
        &self,
        name: &'static str,
        dims: &[(&'static str, &'static str)],
    ) -> Option<SeriesKey> {
        match check_call(name, dims) {
            Ok(()) => {
                let mut dims = dims.to_vec();
                dims.sort_unstable();
                Some(SeriesKey { scope: Scope::Function, dims })
            }
            Err(reason) => {
                warn_dropped(name, reason);
                None
            }
        }
    }

    fn render(
        &self,
        timestamp: u64,
        key: &SeriesKey,
        line: &Line<'_>,
    ) -> serde_json::Result<String> {
        let mut dimension_set = vec![dimension::SERVICE];
        let mut members = BTreeMap::new();
        members.insert(dimension::SERVICE, Member::Dimension(&self.service));
        if key.scope == Scope::Function {
            dimension_set.push(dimension::FUNCTION_NAME);
            members.insert(dimension::FUNCTION_NAME, Member::Dimension(&self.function_name));
        }
        for &(k, v) in &key.dims {
            dimension_set.push(k);
            members.insert(k, Member::Dimension(v));
        }

        let mut definitions = Vec::with_capacity(line.len());
        for &(name, unit, member) in line {
            definitions.push(Definition { name, unit });
            members.insert(name, member);
        }

        let directive =
            Directive { namespace: NAMESPACE, dimensions: [dimension_set], metrics: definitions };
        let metadata = Metadata { timestamp, cloud_watch_metrics: [directive] };
        serde_json::to_string(&Document { aws: metadata, members })
    }
}

/// Adds to a count; false (after a warning) when the name already holds durations.
fn add_count(state: &mut State, key: SeriesKey, name: &'static str, n: u64) -> bool {
    let series = state.series.entry(key).or_default();
    match series.entry(name).or_insert(Values::Count(0)) {
        Values::Count(total) => {
            *total = total.saturating_add(n);
            true
        }
        Values::Durations(_) => {
            warn_dropped(name, "already recorded as a duration");
            false
        }
    }
}

fn warn_dropped(name: &'static str, reason: &'static str) {
    tracing::warn!(metric = name, reason, "metric dropped");
}

/// Checks one recording call against the EMF schema and the CloudWatch dimension rules.
fn check_call(name: &str, dims: &[(&'static str, &'static str)]) -> Result<(), &'static str> {
    check_text(name, MAX_NAME_LEN).map_err(|_| "metric name is empty, blank, non-ASCII or long")?;
    if is_reserved_key(name) {
        return Err("metric name is reserved for a base dimension or the metadata");
    }
    if is_alarm_series(name) {
        return Err("metric name is reserved for a derived alarm series");
    }
    if dims.len() + BASE_DIMENSIONS > MAX_DIMENSIONS_PER_SET {
        return Err("too many dimensions");
    }

    for (i, &(key, value)) in dims.iter().enumerate() {
        check_text(key, MAX_DIMENSION_KEY_LEN)
            .map_err(|_| "dimension key is empty, blank, non-ASCII or long")?;
        if key.starts_with(':') {
            return Err("dimension key starts with a colon");
        }
        if is_reserved_key(key) {
            return Err("dimension key is reserved for a base dimension or the metadata");
        }
        if key == name {
            return Err("dimension key equals the metric name");
        }
        if dims[..i].iter().any(|&(earlier, _)| earlier == key) {
            return Err("dimension key repeats");
        }
        check_value(value)?;
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), &'static str> {
    check_text(value, MAX_DIMENSION_VALUE_LEN)
}

/// CloudWatch names and dimension values: 1..=max ASCII characters, no control characters,
/// at least one that is not whitespace.
fn check_text(text: &str, max: usize) -> Result<(), &'static str> {
    if text.trim().is_empty() {
        return Err("value is empty or blank");
    }
    if text.len() > max {
        return Err("value is too long");
    }
    if !text.bytes().all(|b| b.is_ascii() && !b.is_ascii_control()) {
        return Err("value has non-ASCII or control characters");
    }
    Ok(())
}

fn is_reserved_key(key: &str) -> bool {
    matches!(key, dimension::SERVICE | dimension::FUNCTION_NAME | METADATA_KEY)
}

fn is_alarm_series(name: &str) -> bool {
    matches!(
        name,
        metric::HARD_BOUNCES
            | metric::BOUNCES_TOTAL
            | metric::COMPLAINTS_TOTAL
            | metric::DELIVERIES_TOTAL
            | metric::SENDS_TOTAL
    )
}

fn now_millis() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

/// The metrics of one EMF line: name, unit and root value.
type Line<'a> = Vec<(&'static str, Unit, Member<'a>)>;

/// Splits one series into lines of at most 100 metrics, each name at most once per line and
/// each duration array at most 100 samples long.
fn pack(series: &Series) -> Vec<Line<'_>> {
    let mut lines: Vec<Line<'_>> = Vec::new();
    for (&name, values) in series {
        let items: Vec<(Unit, Member<'_>)> = match values {
            Values::Count(total) => vec![(Unit::Count, Member::Count(*total))],
            Values::Durations(samples) => samples
                .chunks(MAX_VALUES_PER_METRIC)
                .map(|chunk| (Unit::Milliseconds, Member::Samples(chunk)))
                .collect(),
        };
        for (unit, member) in items {
            let free = lines.iter_mut().find(|line| {
                line.len() < MAX_METRICS_PER_DIRECTIVE && line.iter().all(|&(n, _, _)| n != name)
            });
            match free {
                Some(line) => line.push((name, unit, member)),
                None => lines.push(vec![(name, unit, member)]),
            }
        }
    }
    lines
}

/// An EMF document: the metadata plus the root members it references.
#[derive(Serialize)]
struct Document<'a> {
    #[serde(rename = "_aws")]
    aws: Metadata<'a>,
    #[serde(flatten)]
    members: BTreeMap<&'a str, Member<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata<'a> {
    timestamp: u64,
    cloud_watch_metrics: [Directive<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Directive<'a> {
    namespace: &'static str,
    dimensions: [Vec<&'a str>; 1],
    metrics: Vec<Definition>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Definition {
    name: &'static str,
    unit: Unit,
}

/// A root member: a dimension value (string) or a metric target (number or number array).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
enum Member<'a> {
    Dimension(&'a str),
    Count(u64),
    Samples(&'a [f64]),
}
