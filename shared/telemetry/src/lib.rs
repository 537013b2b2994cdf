//! Logging setup and CloudWatch metrics for the two Lambda functions (`ingest-feedback`,
//! `sync-mailcow`).
//!
//! - [`init_logging`]: JSON lines on stdout (or plain text with `LOG_FORMAT=text`), filtered by
//!   `RUST_LOG` (default `info`).
//! - [`MetricsSink`]: counts and durations aggregated in memory and written once per invocation
//!   as CloudWatch Embedded Metric Format (EMF) lines on stdout, as laid down in the AWS document
//!   "Specification: Embedded metric format". CloudWatch Logs turns them into metrics; no
//!   CloudWatch API call and no extra IAM permission is needed.
//!
//! This crate depends on no AWS, Lambda or project crate, so it can be used from any binary.
//!
//! # Personal data
//!
//! Metric names, dimension keys and dimension values are `&'static str`: only names written in
//! the source can become a metric or a dimension, never an address, message ID or other value
//! read at run time. Keep dimension values to the small fixed sets below; each distinct
//! combination is a billed custom metric.
//!
//! # Metric catalogue
//!
//! Namespace [`NAMESPACE`] (`MailcowSesFeedback`). Every metric below carries the dimensions
//! `Service` (the deployment name given to [`MetricsSink::new`]) and `FunctionName`, then the
//! listed ones. Unit `Count` unless noted. Constants live in [`catalogue`].
//!
//! | metric | extra dimensions | written by | meaning |
//! | --- | --- | --- | --- |
//! | `Notifications` | `Type`, `Outcome` | ingest | SNS notifications handled |
//! | `RecipientsDecided` | `Decision` | ingest | recipients by decision (values below) |
//! | `SuppressionsAdded` | `Reason` | ingest | suppressions written |
//! | `SuppressionsReleased` | – | ingest, sync | suppressions removed or expired |
//! | `Bounces` | `BounceClass` (`hard`, `soft`) | ingest | bounced recipients |
//! | `Complaints` | – | ingest | complained recipients |
//! | `Deliveries` | – | ingest | delivered recipients |
//! | `Sends` | – | ingest | SES `Send` events |
//! | `Quarantined` | `Reason` | both | records that could not be parsed or trusted |
//! | `RetryableFailures` | – | both | records returned for a retry |
//! | `MailcowPush` | `Result` (`success`, `unchanged`, `failed`) | sync | Mailcow updates |
//! | `MailcowPushDuration` | `Result` (optional) | sync | Milliseconds; one sample per push |
//! | `SesSyncCalls` | `Operation`, `Result` | sync | SES account suppression list calls |
//!
//! `Decision` is one of `suppressed`, `counted`, `recorded`, `ignored`, `duplicate`, `invalid`.
//! Dimension values are lowercase words (`bounce`, `applied`, `hard`), except `Operation`,
//! which holds the SES API operation name (`PutSuppressedDestination`).
//!
//! # Alarm series
//!
//! Alarms need one series per deployment, whatever the function name or detail dimensions. The
//! sink derives these from the counts above, with **only** the `Service` dimension:
//!
//! | alarm series | fed by |
//! | --- | --- |
//! | `HardBounces` | `Bounces` with `BounceClass=hard` |
//! | `BouncesTotal` | every `Bounces` count |
//! | `ComplaintsTotal` | every `Complaints` count |
//! | `DeliveriesTotal` | every `Deliveries` count |
//! | `SendsTotal` | every `Sends` count |
//!
//! Alarm definitions (statistic `Sum`, dimension `Service=<deployment>`, missing data
//! `notBreaching`, since a quiet hour writes nothing):
//!
//! - bounce rate: `HardBounces / (DeliveriesTotal + BouncesTotal)`;
//! - complaint rate: `ComplaintsTotal / DeliveriesTotal` (or `/ SendsTotal` when the
//!   configuration set publishes `Send` events);
//! - guard both with a minimum volume, e.g. `IF(DeliveriesTotal + BouncesTotal >= 100, ..., 0)`.
//!
//! Per-function alarms use `Service` **and** `FunctionName` with the metric's own dimensions,
//! e.g. `RetryableFailures{Service, FunctionName}` or `MailcowPush{Service, FunctionName,
//! Result=failed}`. CloudWatch matches a metric only on its exact dimension set.
//!
//! # Output
//!
//! One EMF document per line, each with one MetricDirective and one DimensionSet. A line holds
//! the metrics of one combination of dimension values; more than 100 metrics, or more than 100
//! duration samples of one metric, continue on further lines. Durations are written as arrays of
//! samples so CloudWatch can compute percentiles; counts as one summed number.

pub mod catalogue;
mod emf;
mod logging;

pub use catalogue::NAMESPACE;
pub use emf::{
    MAX_DIMENSIONS_PER_SET, MAX_METRICS_PER_DIRECTIVE, MAX_VALUES_PER_METRIC, MetricsError,
    MetricsSink,
};
pub use logging::init_logging;
