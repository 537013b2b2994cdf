//! Normalised e-mail addresses and domains.
//!
//! An [`EmailAddress`] is personal data: its `Debug` and `Display` output is redacted, and the raw
//! value is only reachable through the explicit [`EmailAddress::as_str`]. Nothing here logs.

use std::fmt;

/// Longest address accepted (RFC 5321 path limit minus the angle brackets).
pub const MAX_ADDRESS_LEN: usize = 254;

/// Why a string is not one mailbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Nothing left after trimming and removing a display name.
    #[error("address is empty")]
    Empty,
    /// No `@`, or more than one outside a display name.
    #[error("address must contain exactly one '@'")]
    NotOneAt,
    /// Local part or domain is empty.
    #[error("address has an empty local part or domain")]
    EmptyPart,
    /// Longer than [`MAX_ADDRESS_LEN`] after normalisation.
    #[error("address is longer than {MAX_ADDRESS_LEN} characters")]
    TooLong,
    /// A wildcard, list separator, whitespace, control or quoting character.
    #[error("address contains a character that is not allowed in a single mailbox")]
    ForbiddenCharacter,
    /// The domain is not a valid (internationalised) domain name.
    #[error("address domain is not a valid domain name")]
    InvalidDomain,
}

/// A lowercased domain in its ASCII (punycode) form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

impl DomainName {
    /// Parses and normalises a domain: lowercase, IDNA to punycode, no trailing dot.
    ///
    /// Fails with [`AddressError::InvalidDomain`] for anything that is not a host name with at
    /// least one dot-free label.
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        let raw = raw.trim().trim_end_matches('.');
        if raw.is_empty() {
            return Err(AddressError::EmptyPart);
        }
        let ascii = idna::domain_to_ascii(raw).map_err(|_| AddressError::InvalidDomain)?;
        let valid = !ascii.is_empty()
            && ascii.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid {
            return Err(AddressError::InvalidDomain);
        }
        Ok(Self(ascii))
    }

    /// The normalised domain.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DomainName({})", self.0)
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One normalised mailbox: display name stripped, lowercased, domain in punycode.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress {
    value: String,
    at: usize,
}

impl EmailAddress {
    /// Normalises what SES reports for a recipient.
    ///
    /// Accepts `local@domain` and `"Display Name" <local@domain>`. Fails for anything that is not
    /// exactly one mailbox (see [`AddressError`]).
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        let spec = strip_display_name(raw.trim());
        if spec.is_empty() {
            return Err(AddressError::Empty);
        }
        if spec.chars().any(is_forbidden) {
            return Err(AddressError::ForbiddenCharacter);
        }
        let mut parts = spec.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(AddressError::NotOneAt);
        };
        if local.is_empty() || domain.is_empty() {
            return Err(AddressError::EmptyPart);
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(AddressError::ForbiddenCharacter);
        }
        let domain = DomainName::parse(domain)?;
        let local = local.to_lowercase();
        let value = format!("{local}@{}", domain.as_str());
        if value.len() > MAX_ADDRESS_LEN {
            return Err(AddressError::TooLong);
        }
        Ok(Self { at: local.len(), value })
    }

    /// The normalised address. This is personal data: never log it, hash it with
    /// [`crate::AddressHasher`] instead.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        &self.value[..self.at]
    }

    /// The domain, in punycode.
    pub fn domain(&self) -> &str {
        &self.value[self.at + 1..]
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress(<redacted>@{})", self.domain())
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted>@{}", self.domain())
    }
}

/// What a suppression applies to: one mailbox, or every mailbox of a domain (`*@domain`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum SuppressionTarget {
    /// One mailbox.
    Address(EmailAddress),
    /// Every mailbox at this domain; written `*@domain`.
    Domain(DomainName),
}

impl SuppressionTarget {
    /// Parses `local@domain` or `*@domain`.
    ///
    /// Fails as [`EmailAddress::parse`] does; `*` is accepted only as the whole local part.
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        match raw.trim().strip_prefix("*@") {
            Some(domain) => Ok(Self::Domain(DomainName::parse(domain)?)),
            None => Ok(Self::Address(EmailAddress::parse(raw)?)),
        }
    }

    /// The key the target is stored under: the address, or `*@domain`. Personal data.
    pub fn key(&self) -> String {
        match self {
            Self::Address(address) => address.as_str().to_owned(),
            Self::Domain(domain) => format!("*@{}", domain.as_str()),
        }
    }

    /// The domain part.
    pub fn domain(&self) -> &str {
        match self {
            Self::Address(address) => address.domain(),
            Self::Domain(domain) => domain.as_str(),
        }
    }
}

fn strip_display_name(raw: &str) -> &str {
    match (raw.rfind('<'), raw.ends_with('>')) {
        (Some(open), true) => raw[open + 1..raw.len() - 1].trim(),
        _ => raw,
    }
}

fn is_forbidden(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(c, '*' | ',' | ';' | '<' | '>' | '"' | '\\' | '(' | ')' | '[' | ']' | ':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_display_names_and_idn_domains() {
        let cases = [
            ("Bounce@Simulator.AmazonSES.com", "bounce@simulator.amazonses.com"),
            ("\"Jane Doe\" <Jane@Example.com>", "jane@example.com"),
            ("Jane Doe <jane@example.com>", "jane@example.com"),
            ("  spaced@example.com  ", "spaced@example.com"),
            ("user@bücher.example", "user@xn--bcher-kva.example"),
            ("user@example.com.", "user@example.com"),
            ("o'brien+tag@example.org", "o'brien+tag@example.org"),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                EmailAddress::parse(raw).map(|a| a.as_str().to_owned()),
                Ok(expected.into())
            );
        }
    }

    #[test]
    fn rejects_what_is_not_one_mailbox() {
        let long = format!("{}@example.com", "a".repeat(250));
        let cases: [(&str, AddressError); 11] = [
            ("", AddressError::Empty),
            ("no-at-sign", AddressError::NotOneAt),
            ("two@at@example.com", AddressError::NotOneAt),
            ("@example.com", AddressError::EmptyPart),
            ("*@example.com", AddressError::ForbiddenCharacter),
            ("a@example.com, b@example.com", AddressError::ForbiddenCharacter),
            ("a b@example.com", AddressError::ForbiddenCharacter),
            ("ctl\u{7}@example.com", AddressError::ForbiddenCharacter),
            ("a@exa mple.com", AddressError::ForbiddenCharacter),
            ("a@-bad-.com", AddressError::InvalidDomain),
            (long.as_str(), AddressError::TooLong),
        ];
        for (raw, expected) in cases {
            assert_eq!(EmailAddress::parse(raw), Err(expected), "{raw:?}");
        }
    }

    #[test]
    fn debug_and_display_never_show_the_local_part() {
        let address = EmailAddress::parse("secret.person@example.com").unwrap();
        assert!(!format!("{address:?}").contains("secret"));
        assert!(!format!("{address}").contains("secret"));
        assert_eq!(address.local_part(), "secret.person");
        assert_eq!(address.domain(), "example.com");
    }

    #[test]
    fn targets_accept_whole_domains_only_as_star_at_domain() {
        let domain = SuppressionTarget::parse("*@Example.COM").unwrap();
        assert_eq!(domain.key(), "*@example.com");
        assert!(matches!(domain, SuppressionTarget::Domain(_)));
        assert!(SuppressionTarget::parse("a*@example.com").is_err());
        assert_eq!(SuppressionTarget::parse("a@b.example").unwrap().key(), "a@b.example");
    }
}
