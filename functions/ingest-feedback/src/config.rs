//! Configuration of `ingest-feedback`, read once from the environment at init.

use std::collections::HashMap;

use chrono::Duration;
use feedback_domain::AddressHasher;
use feedback_domain::policy::{NeverSuppress, Policy};

/// Everything the function needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// `SUPPRESSION_TABLE`.
    pub table: String,
    /// `QUARANTINE_QUEUE_URL`.
    pub quarantine_queue_url: String,
    /// The policy from `SOFT_BOUNCE_*` and `NEVER_SUPPRESS`.
    pub policy: Policy,
    /// `HISTORY_RETENTION_DAYS` (default 400): history entries and unsuppressed records.
    pub history_retention: Duration,
    /// `ADDRESS_HASH_KEY`: the key of the hash logs carry.
    pub hasher: AddressHasher,
    /// Whether `ADDRESS_HASH_KEY` was set (a warning is logged otherwise).
    pub hash_key_set: bool,
    /// `REQUIRE_SIGNATURE` (default true): unsigned (raw-delivery) bodies are quarantined.
    pub require_signature: bool,
    /// `ALLOWED_TOPIC_ARNS`, comma-separated.
    pub allowed_topic_arns: Vec<String>,
    /// `SNS_CERT_BUNDLE`: path of pinned SNS signing certificates.
    pub sns_cert_bundle: Option<String>,
    /// `AUTO_CONFIRM_SUBSCRIPTIONS` (default false).
    pub auto_confirm_subscriptions: bool,
}

/// Every problem found in the environment, reported together.
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
        let mut required = |name: &str| match get(name) {
            Some(v) => v.to_owned(),
            None => {
                problems.push(format!("{name} is required"));
                String::new()
            }
        };
        let table = required("SUPPRESSION_TABLE");
        let quarantine_queue_url = required("QUARANTINE_QUEUE_URL");

        let number = |name: &str, default: u32, problems: &mut Vec<String>| match get(name) {
            None => default,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if n > 0 => n,
                _ => {
                    problems.push(format!("{name} must be a whole number above 0, got {v:?}"));
                    default
                }
            },
        };
        let threshold = number("SOFT_BOUNCE_THRESHOLD", 3, &mut problems);
        let window = number("SOFT_BOUNCE_WINDOW_DAYS", 7, &mut problems);
        let suppression = number("SOFT_BOUNCE_SUPPRESSION_DAYS", 14, &mut problems);
        let retention = number("HISTORY_RETENTION_DAYS", 400, &mut problems);

        let flag = |name: &str, default: bool, problems: &mut Vec<String>| match get(name) {
            None => default,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "on" | "yes" => true,
                "0" | "false" | "off" | "no" => false,
                _ => {
                    problems.push(format!("{name} must be true or false, got {v:?}"));
                    default
                }
            },
        };
        let require_signature = flag("REQUIRE_SIGNATURE", true, &mut problems);
        let auto_confirm_subscriptions = flag("AUTO_CONFIRM_SUBSCRIPTIONS", false, &mut problems);

        let never_suppress = match NeverSuppress::parse(get("NEVER_SUPPRESS").unwrap_or("")) {
            Ok(list) => list,
            Err((position, error)) => {
                problems.push(format!("NEVER_SUPPRESS entry {position} is invalid: {error}"));
                NeverSuppress::default()
            }
        };
        let allowed_topic_arns: Vec<String> = get("ALLOWED_TOPIC_ARNS")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = allowed_topic_arns.iter().find(|a| !a.starts_with("arn:")) {
            problems.push(format!("ALLOWED_TOPIC_ARNS entry {bad:?} is not an ARN"));
        }
        if require_signature && allowed_topic_arns.is_empty() {
            problems.push(
                "ALLOWED_TOPIC_ARNS is required while REQUIRE_SIGNATURE is on: name the SES \
                 feedback topic"
                    .to_owned(),
            );
        }
        let hash_key = get("ADDRESS_HASH_KEY");

        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Self {
            table,
            quarantine_queue_url,
            policy: Policy {
                soft_bounce_threshold: threshold,
                soft_bounce_window: Duration::days(window.into()),
                soft_bounce_suppression: Duration::days(suppression.into()),
                never_suppress,
            },
            history_retention: Duration::days(retention.into()),
            hasher: hash_key.map(|k| AddressHasher::new(k.as_bytes())).unwrap_or_default(),
            hash_key_set: hash_key.is_some(),
            require_signature,
            allowed_topic_arns,
            sns_cert_bundle: get("SNS_CERT_BUNDLE").map(str::to_owned),
            auto_confirm_subscriptions,
        })
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
            ("SUPPRESSION_TABLE", "t"),
            ("QUARANTINE_QUEUE_URL", "http://q"),
            ("ALLOWED_TOPIC_ARNS", "arn:aws:sns:eu-central-1:123456789012:ses-feedback"),
        ]))
        .unwrap();
        assert_eq!(config.policy, Policy::default());
        assert!(config.require_signature);
        assert!(!config.auto_confirm_subscriptions);
        assert_eq!(config.history_retention, Duration::days(400));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = Config::from_vars(&vars(&[
            ("SOFT_BOUNCE_THRESHOLD", "zero"),
            ("NEVER_SUPPRESS", "ok@example.com, not-an-address"),
            ("REQUIRE_SIGNATURE", "maybe"),
        ]))
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "SUPPRESSION_TABLE is required",
            "QUARANTINE_QUEUE_URL is required",
            "SOFT_BOUNCE_THRESHOLD",
            "NEVER_SUPPRESS entry 2",
            "REQUIRE_SIGNATURE must be true or false",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
        assert!(!text.contains("not-an-address"), "values of NEVER_SUPPRESS are personal data");
    }

    #[test]
    fn raw_delivery_without_signatures_must_be_chosen_explicitly() {
        let config = Config::from_vars(&vars(&[
            ("SUPPRESSION_TABLE", "t"),
            ("QUARANTINE_QUEUE_URL", "http://q"),
            ("REQUIRE_SIGNATURE", "false"),
        ]))
        .unwrap();
        assert!(!config.require_signature);
        assert!(config.allowed_topic_arns.is_empty());
    }
}
