//! Configuration of `sync-mailcow`, read once from the environment at init.
//!
//! Owns the parsing and validation of every variable the function reads; nothing else in the
//! crate looks at the environment. It must not call AWS or Mailcow: the API key secret is only
//! named here and read by `main`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use feedback_domain::AddressHasher;
use mailcow_api::{ApiKey, Url};

/// The `Service` dimension of the metrics when neither `SERVICE_NAME` nor `AWS_LAMBDA_FUNCTION_NAME`
/// is set (local runs).
pub const DEFAULT_SERVICE_NAME: &str = "mailcow-ses-feedback";

/// Default of `SES_SYNC_BUDGET_SECONDS`. The function's timeout is 300 s and a Mailcow push with
/// its retries can take about 90 s, so two minutes of SES calls (about 120 at 1 per second) leave
/// room; the rest waits for the next invocation.
pub const DEFAULT_SES_BUDGET: Duration = Duration::from_secs(120);

/// Default of `SES_MIN_INTERVAL_MS`: SES allows one suppression-list request per second per
/// account and region unless AWS raised the account's quota.
pub const DEFAULT_SES_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Default of `MAILCOW_TIMEOUT_SECONDS`: the limit of one Mailcow request, connection included.
pub const DEFAULT_MAILCOW_TIMEOUT: Duration = Duration::from_secs(20);

/// How suppressions reach Mailcow (`MAILCOW_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailcowMode {
    /// The global recipient denylist map, replaced whole.
    Map,
    /// One project-owned Rspamd settings rule.
    Rsetting,
}

impl MailcowMode {
    /// `map` or `rsetting`, as configured and stored in the sync state.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Map => "map",
            Self::Rsetting => "rsetting",
        }
    }
}

/// Where the Mailcow API key comes from.
#[derive(Debug, Clone)]
pub enum ApiKeySource {
    /// `MAILCOW_API_KEY_SECRET`: a Secrets Manager secret id (name or ARN), read at init.
    Secret(String),
    /// `MAILCOW_API_KEY`: the key itself, for local runs. `Debug` does not show it.
    Inline(ApiKey),
}

/// Everything the function needs, validated. `Debug` shows no secret.
#[derive(Debug, Clone)]
pub struct Config {
    /// `SUPPRESSION_TABLE`.
    pub table: String,
    /// `MAILCOW_URL`: base URL of Mailcow.
    pub mailcow_url: Url,
    /// `MAILCOW_API_KEY_SECRET` or `MAILCOW_API_KEY`.
    pub api_key: ApiKeySource,
    /// `MAILCOW_MODE` (default `map`).
    pub mode: MailcowMode,
    /// `SES_SYNC` (default on): keep the SES account-level suppression list in step.
    pub ses_sync: bool,
    /// `SES_SYNC_BUDGET_SECONDS` (default 120): time one invocation spends on SES calls at most.
    pub ses_budget: Duration,
    /// `SES_MIN_INTERVAL_MS` (default 1000): least time between the starts of two SES
    /// suppression-list requests; 0 turns the pacing off (local emulators only).
    pub ses_min_interval: Duration,
    /// `MAILCOW_TIMEOUT_SECONDS` (default 20): limit of one Mailcow request; a push makes up to
    /// four attempts.
    pub mailcow_timeout: Duration,
    /// `MAILCOW_CA_BUNDLE`: path of a PEM bundle to trust for Mailcow besides the system roots.
    pub ca_bundle: Option<PathBuf>,
    /// `ADDRESS_HASH_KEY`: the key of the hash logs carry.
    pub hasher: AddressHasher,
    /// Whether `ADDRESS_HASH_KEY` was set (a warning is logged otherwise).
    pub hash_key_set: bool,
    /// `SERVICE_NAME` (default `mailcow-ses-feedback`): the metrics' `Service` dimension.
    pub service_name: String,
    /// `AWS_LAMBDA_FUNCTION_NAME` (set by Lambda; default `sync-mailcow`): the metrics'
    /// `FunctionName` dimension.
    pub function_name: String,
}

/// Every problem found in the environment, reported together. Never carries a secret.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", problems.join("\n  "))]
pub struct ConfigError {
    /// One line per variable.
    pub problems: Vec<String>,
}

impl Config {
    /// Reads the process environment.
    ///
    /// Fails with every missing or invalid variable listed.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// Reads a map of variables (the environment, or a test's).
    ///
    /// Fails with every missing or invalid variable listed.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());

        let table = get("SUPPRESSION_TABLE").map(str::to_owned).unwrap_or_else(|| {
            problems.push("SUPPRESSION_TABLE is required".to_owned());
            String::new()
        });

        let mailcow_url = match get("MAILCOW_URL") {
            None => {
                problems.push("MAILCOW_URL is required, e.g. https://mail.example.org".to_owned());
                None
            }
            Some(raw) => match Url::parse(raw) {
                Ok(url) if matches!(url.scheme(), "https" | "http") && url.has_host() => Some(url),
                Ok(_) => {
                    problems.push(format!("MAILCOW_URL must be an https:// URL, got {raw:?}"));
                    None
                }
                Err(e) => {
                    problems.push(format!("MAILCOW_URL is not a URL ({e}), got {raw:?}"));
                    None
                }
            },
        };

        // The key's value never goes into a message: only which variable is wrong and why.
        let api_key = match (get("MAILCOW_API_KEY_SECRET"), get("MAILCOW_API_KEY")) {
            (Some(_), Some(_)) => {
                problems.push(
                    "set either MAILCOW_API_KEY_SECRET (deployments) or MAILCOW_API_KEY (local \
                     runs), not both"
                        .to_owned(),
                );
                None
            }
            (Some(secret), None) => Some(ApiKeySource::Secret(secret.to_owned())),
            (None, Some(raw)) => match ApiKey::new(raw) {
                Ok(key) => Some(ApiKeySource::Inline(key)),
                Err(e) => {
                    problems.push(e.to_string());
                    None
                }
            },
            (None, None) => {
                problems.push(
                    "MAILCOW_API_KEY_SECRET (a Secrets Manager secret id) or MAILCOW_API_KEY is \
                     required"
                        .to_owned(),
                );
                None
            }
        };

        let mode = match get("MAILCOW_MODE").map(str::to_ascii_lowercase).as_deref() {
            None | Some("map") => MailcowMode::Map,
            Some("rsetting") => MailcowMode::Rsetting,
            Some(other) => {
                problems.push(format!("MAILCOW_MODE must be map or rsetting, got {other:?}"));
                MailcowMode::Map
            }
        };

        let ses_sync = match get("SES_SYNC").map(str::to_ascii_lowercase).as_deref() {
            None | Some("on" | "true" | "1" | "yes") => true,
            Some("off" | "false" | "0" | "no") => false,
            Some(other) => {
                problems.push(format!("SES_SYNC must be on or off, got {other:?}"));
                true
            }
        };

        let mut number = |name: &str, range: std::ops::RangeInclusive<u64>| -> Option<u64> {
            let raw = get(name)?;
            match raw.parse::<u64>() {
                Ok(n) if range.contains(&n) => Some(n),
                _ => {
                    let (low, high) = (range.start(), range.end());
                    problems.push(format!(
                        "{name} must be a whole number from {low} to {high}, got {raw:?}"
                    ));
                    None
                }
            }
        };
        let ses_budget = number("SES_SYNC_BUDGET_SECONDS", 1..=900)
            .map_or(DEFAULT_SES_BUDGET, Duration::from_secs);
        let ses_min_interval = number("SES_MIN_INTERVAL_MS", 0..=60_000)
            .map_or(DEFAULT_SES_MIN_INTERVAL, Duration::from_millis);
        let mailcow_timeout = number("MAILCOW_TIMEOUT_SECONDS", 1..=120)
            .map_or(DEFAULT_MAILCOW_TIMEOUT, Duration::from_secs);

        // Like ingest: the Service dimension is the function's own name unless set, which is what
        // the template's dashboard selects on.
        let service_name = get("SERVICE_NAME")
            .or(get("AWS_LAMBDA_FUNCTION_NAME"))
            .unwrap_or(DEFAULT_SERVICE_NAME)
            .to_owned();
        let function_name = get("AWS_LAMBDA_FUNCTION_NAME").unwrap_or("sync-mailcow").to_owned();
        let hash_key = get("ADDRESS_HASH_KEY");

        match (mailcow_url, api_key) {
            (Some(mailcow_url), Some(api_key)) if problems.is_empty() => Ok(Self {
                table,
                mailcow_url,
                api_key,
                mode,
                ses_sync,
                ses_budget,
                ses_min_interval,
                mailcow_timeout,
                ca_bundle: get("MAILCOW_CA_BUNDLE").map(PathBuf::from),
                hasher: hash_key.map(|k| AddressHasher::new(k.as_bytes())).unwrap_or_default(),
                hash_key_set: hash_key.is_some(),
                service_name,
                function_name,
            }),
            _ => Err(ConfigError { problems }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_apply_when_only_required_variables_are_set() {
        let config = Config::from_vars(&vars(&[
            ("SUPPRESSION_TABLE", "suppressions"),
            ("MAILCOW_URL", "https://mail.example.org"),
            ("MAILCOW_API_KEY_SECRET", "stack/mailcow-api-key"),
            ("MAILCOW_CA_BUNDLE", ""),
        ]))
        .unwrap();

        assert_eq!(config.table, "suppressions");
        assert_eq!(config.mode, MailcowMode::Map);
        assert!(config.ses_sync);
        assert_eq!(config.ses_budget, DEFAULT_SES_BUDGET);
        assert_eq!(config.ses_min_interval, Duration::from_secs(1));
        assert_eq!(config.mailcow_timeout, Duration::from_secs(20));
        assert!(config.ca_bundle.is_none(), "an empty CloudFormation parameter means unset");
        assert!(!config.hash_key_set);
        assert_eq!(config.service_name, DEFAULT_SERVICE_NAME);
        assert!(
            matches!(config.api_key, ApiKeySource::Secret(ref id) if id == "stack/mailcow-api-key")
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = Config::from_vars(&vars(&[
            ("MAILCOW_URL", "ftp://mail.example.org"),
            ("MAILCOW_MODE", "alias"),
            ("SES_SYNC", "sometimes"),
            ("SES_SYNC_BUDGET_SECONDS", "0"),
            ("SES_MIN_INTERVAL_MS", "61000"),
            ("MAILCOW_TIMEOUT_SECONDS", "0"),
        ]))
        .unwrap_err();

        let text = err.to_string();
        for needle in [
            "SUPPRESSION_TABLE is required",
            "MAILCOW_URL must be an https:// URL",
            "MAILCOW_API_KEY_SECRET (a Secrets Manager secret id) or MAILCOW_API_KEY is required",
            "MAILCOW_MODE must be map or rsetting",
            "SES_SYNC must be on or off",
            "SES_SYNC_BUDGET_SECONDS",
            "SES_MIN_INTERVAL_MS must be a whole number from 0 to 60000",
            "MAILCOW_TIMEOUT_SECONDS must be a whole number from 1 to 120",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
        assert_eq!(err.problems.len(), 8);
    }

    #[test]
    fn an_inline_key_is_validated_and_never_shown() {
        let config = Config::from_vars(&vars(&[
            ("SUPPRESSION_TABLE", "t"),
            ("MAILCOW_URL", "http://127.0.0.1:8080"),
            ("MAILCOW_API_KEY", "SECRET-KEY-123"),
            ("MAILCOW_MODE", "rsetting"),
            ("SES_SYNC", "off"),
            ("SES_MIN_INTERVAL_MS", "0"),
            ("MAILCOW_TIMEOUT_SECONDS", "3"),
        ]))
        .unwrap();
        assert_eq!(config.mode, MailcowMode::Rsetting);
        assert!(!config.ses_sync);
        assert_eq!(config.ses_min_interval, Duration::ZERO, "0 turns the pacing off");
        assert_eq!(config.mailcow_timeout, Duration::from_secs(3));
        assert!(!format!("{config:?}").contains("SECRET-KEY-123"));

        let err = Config::from_vars(&vars(&[
            ("SUPPRESSION_TABLE", "t"),
            ("MAILCOW_URL", "https://mail.example.org"),
            ("MAILCOW_API_KEY", "bad_key_with_underscores"),
        ]))
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("MAILCOW_API_KEY"), "{text}");
        assert!(!text.contains("bad_key_with_underscores"), "the key leaked: {text}");
    }

    #[test]
    fn both_key_sources_at_once_are_refused() {
        let err = Config::from_vars(&vars(&[
            ("SUPPRESSION_TABLE", "t"),
            ("MAILCOW_URL", "https://mail.example.org"),
            ("MAILCOW_API_KEY", "K-1"),
            ("MAILCOW_API_KEY_SECRET", "stack/mailcow-api-key"),
        ]))
        .unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert!(err.problems[0].contains("not both"));
    }
}
