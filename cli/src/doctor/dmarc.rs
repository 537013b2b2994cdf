//! DMARC records (RFC 7489 section 6.3) and the tag lists that DKIM key records share with
//! them: parsed into the few fields the doctor judges.

/// The tags of a `tag=value; tag=value` list, names lowercased, values trimmed, in order.
pub fn tags(text: &str) -> Vec<(String, String)> {
    text.split(';')
        .filter_map(|part| {
            let (name, value) = part.split_once('=')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect()
}

/// What a receiver does with mail that fails DMARC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// `none`: monitor only.
    None,
    /// `quarantine`: to spam.
    Quarantine,
    /// `reject`: refused.
    Reject,
}

impl Policy {
    fn parse(raw: &str) -> Option<Self> {
        match raw.to_ascii_lowercase().as_str() {
            "none" => Some(Self::None),
            "quarantine" => Some(Self::Quarantine),
            "reject" => Some(Self::Reject),
            _ => None,
        }
    }

    /// The tag value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Quarantine => "quarantine",
            Self::Reject => "reject",
        }
    }
}

/// A parsed DMARC record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dmarc {
    /// `p`.
    pub policy: Policy,
    /// `rua`: where aggregate reports go.
    pub rua: Vec<String>,
    /// `pct`: the share of failing mail the policy applies to (default 100).
    pub pct: u8,
    /// `aspf=s`: the MAIL FROM domain must equal the From domain.
    pub strict_spf: bool,
    /// `adkim=s`: the DKIM domain must equal the From domain.
    pub strict_dkim: bool,
}

/// Why a DMARC record is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DmarcError {
    /// It does not start with `v=DMARC1`.
    #[error("the record does not start with v=DMARC1")]
    Version,
    /// `p` is missing or not none/quarantine/reject.
    #[error("p= is missing or not none, quarantine or reject")]
    Policy,
    /// `pct` is not 0..=100.
    #[error("pct= is not a number from 0 to 100")]
    Pct,
}

/// Whether a TXT string at `_dmarc` claims to be DMARC.
pub fn is_dmarc(txt: &str) -> bool {
    tags(txt).first().is_some_and(|(n, v)| n == "v" && v.eq_ignore_ascii_case("DMARC1"))
}

/// Parses a DMARC record.
///
/// Fails when the version, the policy or `pct` is wrong.
pub fn parse(text: &str) -> Result<Dmarc, DmarcError> {
    if !is_dmarc(text) {
        return Err(DmarcError::Version);
    }
    let tags = tags(text);
    let get = |name: &str| tags.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let policy = get("p").and_then(Policy::parse).ok_or(DmarcError::Policy)?;
    let pct = match get("pct") {
        Some(raw) => raw.parse::<u8>().ok().filter(|p| *p <= 100).ok_or(DmarcError::Pct)?,
        None => 100,
    };
    let rua = get("rua")
        .map(|v| v.split(',').map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()).collect())
        .unwrap_or_default();
    let strict = |name: &str| get(name).is_some_and(|v| v.eq_ignore_ascii_case("s"));
    Ok(Dmarc { policy, rua, pct, strict_spf: strict("aspf"), strict_dkim: strict("adkim") })
}

/// What a DKIM key record (`<selector>._domainkey`) holds, as far as the doctor checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DkimKey {
    /// A key is published (`p=` non-empty); the key type (`k=`, default rsa).
    Published(String),
    /// `p=` is empty: the key was revoked.
    Revoked,
    /// No `p=` tag, or `v=` other than DKIM1.
    Malformed,
}

/// Reads a DKIM key record.
pub fn dkim_key(text: &str) -> DkimKey {
    let tags = tags(text);
    let get = |name: &str| tags.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    if get("v").is_some_and(|v| !v.eq_ignore_ascii_case("DKIM1")) {
        return DkimKey::Malformed;
    }
    match get("p") {
        None => DkimKey::Malformed,
        Some(p) if p.chars().all(char::is_whitespace) => DkimKey::Revoked,
        Some(_) => DkimKey::Published(get("k").unwrap_or("rsa").to_ascii_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_record_parses_with_defaults_for_missing_tags() {
        let record = parse(
            "v=DMARC1; p=Reject; rua=mailto:a@example.org, mailto:b@example.net; aspf=s; fo=1",
        )
        .unwrap();
        assert_eq!(
            record,
            Dmarc {
                policy: Policy::Reject,
                rua: vec!["mailto:a@example.org".into(), "mailto:b@example.net".into()],
                pct: 100,
                strict_spf: true,
                strict_dkim: false,
            }
        );
        let bare = parse("v=DMARC1;p=none").unwrap();
        assert_eq!((bare.policy, bare.rua.len(), bare.pct), (Policy::None, 0, 100));
    }

    #[test]
    fn broken_records_say_what_is_wrong() {
        assert_eq!(parse("p=reject; v=DMARC1"), Err(DmarcError::Version));
        assert_eq!(parse("v=DMARC1; rua=mailto:x@example.org"), Err(DmarcError::Policy));
        assert_eq!(parse("v=DMARC1; p=block"), Err(DmarcError::Policy));
        assert_eq!(parse("v=DMARC1; p=reject; pct=150"), Err(DmarcError::Pct));
        assert!(!is_dmarc("v=spf1 -all"));
    }

    #[test]
    fn dkim_keys_are_published_revoked_or_malformed() {
        assert_eq!(dkim_key("v=DKIM1; k=rsa; p=MIIBIjANBgkq"), DkimKey::Published("rsa".into()));
        assert_eq!(dkim_key("p=MCowBQYDK2VwAyEA; k=ed25519"), DkimKey::Published("ed25519".into()));
        assert_eq!(dkim_key("v=DKIM1; p="), DkimKey::Revoked);
        assert_eq!(dkim_key("v=DKIM1; k=rsa"), DkimKey::Malformed);
        assert_eq!(dkim_key("v=DKIM2; p=abc"), DkimKey::Malformed);
    }
}
