//! MTA-STS (RFC 8461): the `_mta-sts` TXT record and the policy file, and whether an MX host
//! is covered by the policy's `mx` patterns.

use super::dmarc::tags;

/// The `_mta-sts` TXT record: `v=STSv1; id=<policy id>`.
///
/// Returns the policy id, or `None` when the text is not a valid record.
pub fn record_id(text: &str) -> Option<String> {
    let tags = tags(text);
    let (first_name, first_value) = tags.first()?;
    if first_name != "v" || first_value != "STSv1" {
        return None;
    }
    let id = tags.iter().find(|(n, _)| n == "id").map(|(_, v)| v.clone())?;
    let valid = !id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_alphanumeric());
    valid.then_some(id)
}

/// Whether a TXT string at `_mta-sts` claims to be MTA-STS.
pub fn is_record(text: &str) -> bool {
    text.trim_start().starts_with("v=STSv1")
}

/// The policy's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Senders refuse to deliver over unauthenticated TLS.
    Enforce,
    /// Senders report failures but still deliver.
    Testing,
    /// The policy is withdrawn.
    None,
}

/// A parsed policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `mode`.
    pub mode: Mode,
    /// `mx` patterns, lowercased (`mail.example.org`, `*.example.org`).
    pub mx: Vec<String>,
    /// `max_age` in seconds.
    pub max_age: u64,
}

/// Why a policy file is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MTA-STS policy: {0}")]
pub struct PolicyError(pub &'static str);

/// Parses a policy file (`key: value` lines, CRLF or LF).
///
/// Fails when `version`, `mode` or `max_age` is missing or wrong, or an enforcing or testing
/// policy names no `mx`.
pub fn parse_policy(text: &str) -> Result<Policy, PolicyError> {
    let mut version = None;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match key.trim() {
            "version" => version = Some(value.to_owned()),
            "mode" => {
                mode = Some(match value {
                    "enforce" => Mode::Enforce,
                    "testing" => Mode::Testing,
                    "none" => Mode::None,
                    _ => return Err(PolicyError("mode is not enforce, testing or none")),
                });
            }
            "max_age" => {
                max_age =
                    Some(
                        value.parse::<u64>().ok().filter(|age| *age <= 31_557_600).ok_or(
                            PolicyError("max_age is not a number of seconds up to a year"),
                        )?,
                    );
            }
            "mx" => mx.push(value.trim_end_matches('.').to_ascii_lowercase()),
            _ => {}
        }
    }
    if version.as_deref() != Some("STSv1") {
        return Err(PolicyError("version is not STSv1"));
    }
    let mode = mode.ok_or(PolicyError("no mode"))?;
    let max_age = max_age.ok_or(PolicyError("no max_age"))?;
    if mode != Mode::None && mx.is_empty() {
        return Err(PolicyError("no mx lines"));
    }
    Ok(Policy { mode, mx, max_age })
}

impl Policy {
    /// Whether `host` matches one of the `mx` patterns; a `*.` pattern covers exactly one
    /// more label.
    pub fn covers(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx.iter().any(|pattern| match pattern.strip_prefix("*.") {
            Some(suffix) => host
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
            None => *pattern == host,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_records_need_the_version_first_and_a_plain_id() {
        assert_eq!(record_id("v=STSv1; id=20261201T000000"), Some("20261201T000000".into()));
        assert_eq!(record_id("v=STSv1;id=abc;"), Some("abc".into()));
        assert_eq!(record_id("id=abc; v=STSv1"), None);
        assert_eq!(record_id("v=STSv1; id=a-b"), None);
        assert_eq!(record_id("v=STSv1"), None);
    }

    #[test]
    fn policies_parse_and_cover_hosts_by_exact_name_or_one_wildcard_label() {
        let policy = parse_policy(
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.org\r\nmx: *.backup.example.org\r\n\
             max_age: 604800\r\n",
        )
        .unwrap();

        assert_eq!(policy.mode, Mode::Enforce);
        assert_eq!(policy.max_age, 604_800);
        assert!(policy.covers("Mail.Example.org."));
        assert!(policy.covers("mx1.backup.example.org"));
        assert!(!policy.covers("a.mx1.backup.example.org"));
        assert!(!policy.covers("backup.example.org"));
        assert!(!policy.covers("other.example.org"));
    }

    #[test]
    fn broken_policies_say_what_is_wrong() {
        let cases = [
            ("mode: enforce\nmx: a.org\nmax_age: 1", "version is not STSv1"),
            ("version: STSv1\nmode: strict\nmx: a.org\nmax_age: 1", "mode is not"),
            ("version: STSv1\nmode: enforce\nmax_age: 1", "no mx lines"),
            ("version: STSv1\nmode: enforce\nmx: a.org", "no max_age"),
            ("version: STSv1\nmode: enforce\nmx: a.org\nmax_age: soon", "max_age is not"),
        ];
        for (text, why) in cases {
            let err = parse_policy(text).unwrap_err();
            assert!(err.0.starts_with(why), "{text}: {err}");
        }
        assert!(parse_policy("version: STSv1\nmode: none\nmax_age: 86400").is_ok());
    }
}
