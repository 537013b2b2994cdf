//! Process-wide `tracing` setup: JSON lines on stdout for Lambda, plain text for local runs.
//!
//! Owns the choice of format and filter. It reads `RUST_LOG` and `LOG_FORMAT` itself, so every
//! binary logs the same way; it must not depend on the Lambda runtime or any AWS crate.

use std::io::{self, IsTerminal};

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// Filter used when `RUST_LOG` is unset, blank or invalid.
const DEFAULT_FILTER: &str = "info";

/// Output format of the log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    /// One JSON object per line, event fields at the top level (the default).
    Json,
    /// Human-readable lines (`LOG_FORMAT=text`).
    Text,
}

impl LogFormat {
    /// Reads a `LOG_FORMAT` value; anything but `text` (any case) means JSON.
    fn from_env_value(value: Option<&str>) -> Self {
        match value {
            Some(v) if v.trim().eq_ignore_ascii_case("text") => Self::Text,
            _ => Self::Json,
        }
    }
}

/// Installs the global `tracing` subscriber, writing to stdout.
///
/// - `LOG_FORMAT=text`: plain text, with colours only when stdout is a terminal.
/// - otherwise: one JSON object per line with `timestamp` (RFC 3339, UTC), `level`, `target`,
///   the event fields and `message` at the top level, and `spans` (each open span's name and
///   fields, e.g. the runtime's request ID). No ANSI escapes, so CloudWatch Logs Insights can
///   query the fields directly.
///
/// The filter comes from `RUST_LOG` (e.g. `info,sync_mailcow=debug`); when it is unset, blank
/// or invalid, `info` applies, and an invalid value is reported as a warning.
///
/// Safe to call more than once: when a global subscriber is already set (by an earlier call or a
/// test harness), this does nothing. It never fails.
pub fn init_logging() {
    let format = LogFormat::from_env_value(std::env::var("LOG_FORMAT").ok().as_deref());
    let rust_log = std::env::var("RUST_LOG").ok();
    let (filter, rejected) = filter_from(rust_log.as_deref());

    let installed = match format {
        LogFormat::Json => json_subscriber(filter, io::stdout).try_init().is_ok(),
        LogFormat::Text => {
            let ansi = io::stdout().is_terminal();
            text_subscriber(filter, io::stdout, ansi).try_init().is_ok()
        }
    };

    if installed && let Some(rejected) = rejected {
        tracing::warn!(rust_log = %rejected, default = DEFAULT_FILTER, "invalid RUST_LOG ignored");
    }
}

/// Builds the filter; also returns the `RUST_LOG` value when it had to be rejected.
fn filter_from(rust_log: Option<&str>) -> (EnvFilter, Option<String>) {
    match rust_log.map(str::trim).filter(|v| !v.is_empty()) {
        None => (EnvFilter::new(DEFAULT_FILTER), None),
        Some(value) => match EnvFilter::try_new(value) {
            Ok(filter) => (filter, None),
            Err(_) => (EnvFilter::new(DEFAULT_FILTER), Some(value.to_owned())),
        },
    }
}

fn json_subscriber<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
        .with_target(true)
        .with_ansi(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}

fn text_subscriber<W>(
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_target(true)
        .with_ansi(ansi)
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use tracing::{debug, info, info_span};

    use super::*;

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
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn log_sample_events(subscriber: impl Subscriber + Send + Sync + 'static) {
        tracing::subscriber::with_default(subscriber, || {
            let span = info_span!("invoke", request_id = "req-1");
            let _entered = span.enter();
            info!(records = 3, kind = "bounce", "batch handled");
            debug!("hidden at info");
        });
    }

    #[test]
    fn json_lines_carry_flattened_fields_target_timestamp_and_spans() {
        let out = Captured::default();
        let writer = out.clone();
        log_sample_events(json_subscriber(EnvFilter::new("info"), move || writer.clone()));

        let text = out.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "debug event must be filtered out: {text}");
        assert!(!text.contains('\u{1b}'), "no ANSI escapes in JSON output");

        let line: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(line["message"], "batch handled");
        assert_eq!(line["records"], 3);
        assert_eq!(line["kind"], "bounce");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], module_path!());
        assert!(line.get("fields").is_none(), "event fields must be flattened");
        let timestamp = line["timestamp"].as_str().unwrap();
        assert!(timestamp.ends_with('Z') && timestamp.contains('T'), "RFC 3339 UTC: {timestamp}");
        assert_eq!(line["spans"][0]["name"], "invoke");
        assert_eq!(line["spans"][0]["request_id"], "req-1");
    }

    #[test]
    fn text_lines_are_plain_and_keep_fields_and_target() {
        let out = Captured::default();
        let writer = out.clone();
        log_sample_events(text_subscriber(EnvFilter::new("info"), move || writer.clone(), false));

        let text = out.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("batch handled"), "{text}");
        assert!(text.contains("records=3"), "{text}");
        assert!(text.contains(module_path!()), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(serde_json::from_str::<Value>(text.trim()).is_err(), "text, not JSON: {text}");
    }

    #[test]
    fn a_filter_from_rust_log_can_lower_the_level() {
        let out = Captured::default();
        let writer = out.clone();
        let (filter, rejected) = filter_from(Some("debug"));
        log_sample_events(json_subscriber(filter, move || writer.clone()));

        assert!(rejected.is_none());
        assert_eq!(out.text().lines().count(), 2);
    }

    #[test]
    fn unset_blank_or_invalid_rust_log_falls_back_to_info() {
        for value in [None, Some(""), Some("  "), Some("info,[=bad")] {
            let (filter, rejected) = filter_from(value);
            assert_eq!(filter.to_string(), "info", "for {value:?}");
            assert_eq!(rejected.is_some(), value == Some("info,[=bad"), "for {value:?}");
        }
    }

    #[test]
    fn log_format_is_text_only_when_asked_for() {
        assert_eq!(LogFormat::from_env_value(Some("text")), LogFormat::Text);
        assert_eq!(LogFormat::from_env_value(Some(" TEXT ")), LogFormat::Text);
        assert_eq!(LogFormat::from_env_value(Some("json")), LogFormat::Json);
        assert_eq!(LogFormat::from_env_value(Some("pretty")), LogFormat::Json);
        assert_eq!(LogFormat::from_env_value(None), LogFormat::Json);
    }

    #[test]
    fn init_logging_can_be_called_twice() {
        init_logging();
        init_logging();
        info!("still logging");
    }
}
