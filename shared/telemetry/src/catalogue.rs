//! The metric catalogue: every metric name, dimension key and well-known dimension value the
//! functions publish, plus the rule that derives the service-wide alarm series.
//!
//! Plain constants and one pure function; no I/O and no dependency on the EMF writer, so the
//! infrastructure docs and the tests can read the same names the functions write.

/// CloudWatch namespace of every metric this project publishes.
pub const NAMESPACE: &str = "MailcowSesFeedback";

/// Metric names. Each is published with the `Service` and `FunctionName` dimensions plus the
/// per-metric dimensions noted here; see the crate docs for the full table.
pub mod metric {
    /// SNS notifications handled, by `Type` and `Outcome`.
    pub const NOTIFICATIONS: &str = "Notifications";
    /// Per-recipient decisions, by `Decision`.
    pub const RECIPIENTS_DECIDED: &str = "RecipientsDecided";
    /// Suppressions written to the table, by `Reason`.
    pub const SUPPRESSIONS_ADDED: &str = "SuppressionsAdded";
    /// Suppressions removed or expired.
    pub const SUPPRESSIONS_RELEASED: &str = "SuppressionsReleased";
    /// Bounced recipients, by `BounceClass`.
    pub const BOUNCES: &str = "Bounces";
    /// Complained recipients.
    pub const COMPLAINTS: &str = "Complaints";
    /// Delivered recipients.
    pub const DELIVERIES: &str = "Deliveries";
    /// Sent messages (SES `Send` events).
    pub const SENDS: &str = "Sends";
    /// Records that could not be parsed or trusted, by `Reason`.
    pub const QUARANTINED: &str = "Quarantined";
    /// Records handed back to the queue or stream for a retry.
    pub const RETRYABLE_FAILURES: &str = "RetryableFailures";
    /// Mailcow pushes, by `Result`.
    pub const MAILCOW_PUSH: &str = "MailcowPush";
    /// Wall time of one Mailcow push, in milliseconds.
    pub const MAILCOW_PUSH_DURATION: &str = "MailcowPushDuration";
    /// Calls to the SES account-level suppression list, by `Operation` and `Result`.
    pub const SES_SYNC_CALLS: &str = "SesSyncCalls";

    /// Alarm series: hard bounces, `Service` dimension only (derived from [`BOUNCES`]).
    pub const HARD_BOUNCES: &str = "HardBounces";
    /// Alarm series: all bounces, `Service` dimension only (derived from [`BOUNCES`]).
    pub const BOUNCES_TOTAL: &str = "BouncesTotal";
    /// Alarm series: complaints, `Service` dimension only (derived from [`COMPLAINTS`]).
    pub const COMPLAINTS_TOTAL: &str = "ComplaintsTotal";
    /// Alarm series: deliveries, `Service` dimension only (derived from [`DELIVERIES`]).
    pub const DELIVERIES_TOTAL: &str = "DeliveriesTotal";
    /// Alarm series: sends, `Service` dimension only (derived from [`SENDS`]).
    pub const SENDS_TOTAL: &str = "SendsTotal";
}

/// Dimension keys.
pub mod dimension {
    /// Set on every series: the deployment (stack) name given to the sink.
    pub const SERVICE: &str = "Service";
    /// Set on every per-function series: the Lambda function name given to the sink.
    pub const FUNCTION_NAME: &str = "FunctionName";
    /// Notification type: `bounce`, `complaint`, `delivery`, `send`, ...
    pub const TYPE: &str = "Type";
    /// What became of a notification, e.g. `applied`, `duplicate`, `quarantined`.
    pub const OUTCOME: &str = "Outcome";
    /// Recipient decision, see [`super::decision`].
    pub const DECISION: &str = "Decision";
    /// Why a suppression was added or a record quarantined.
    pub const REASON: &str = "Reason";
    /// Bounce class, see [`super::bounce_class`].
    pub const BOUNCE_CLASS: &str = "BounceClass";
    /// Result of a call, see [`super::result`].
    pub const RESULT: &str = "Result";
    /// Name of an SES API operation, e.g. `PutSuppressedDestination`.
    pub const OPERATION: &str = "Operation";
}

/// Values of the `Decision` dimension.
pub mod decision {
    /// The recipient was put on the suppression list.
    pub const SUPPRESSED: &str = "suppressed";
    /// A soft event was counted towards a threshold.
    pub const COUNTED: &str = "counted";
    /// The event was recorded without changing the suppression state.
    pub const RECORDED: &str = "recorded";
    /// The event does not concern suppression.
    pub const IGNORED: &str = "ignored";
    /// The event was seen before (at-least-once delivery).
    pub const DUPLICATE: &str = "duplicate";
    /// The recipient address could not be parsed.
    pub const INVALID: &str = "invalid";
}

/// Values of the `BounceClass` dimension.
pub mod bounce_class {
    /// SES `Permanent` bounce.
    pub const HARD: &str = "hard";
    /// SES `Transient` or `Undetermined` bounce.
    pub const SOFT: &str = "soft";
}

/// Values of the `Result` dimension.
pub mod result {
    /// The call changed the remote state.
    pub const SUCCESS: &str = "success";
    /// The call found the remote state already as wanted.
    pub const UNCHANGED: &str = "unchanged";
    /// The call failed.
    pub const FAILED: &str = "failed";
}

/// The service-wide alarm series a per-function data point also feeds.
///
/// Alarms need one series per deployment, independent of function names and of the detail
/// dimensions; the sink therefore adds each listed count to a `Service`-only series as well.
pub(crate) fn alarm_series(
    name: &str,
    dims: &[(&'static str, &'static str)],
) -> &'static [&'static str] {
    let is_hard =
        dims.iter().any(|&(k, v)| k == dimension::BOUNCE_CLASS && v == bounce_class::HARD);
    match name {
        metric::BOUNCES if is_hard => &[metric::BOUNCES_TOTAL, metric::HARD_BOUNCES],
        metric::BOUNCES => &[metric::BOUNCES_TOTAL],
        metric::COMPLAINTS => &[metric::COMPLAINTS_TOTAL],
        metric::DELIVERIES => &[metric::DELIVERIES_TOTAL],
        metric::SENDS => &[metric::SENDS_TOTAL],
        _ => &[],
    }
}
