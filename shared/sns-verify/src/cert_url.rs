//! The signing-certificate URL rule, applied before anything is fetched.
//!
//! Owns [`CertificateUrl`], the only way to name a certificate to the store or a fetcher: a value
//! of this type has passed the host rule. There is deliberately no switch that relaxes the rule
//! (not even for tests); tests serve certificates through a fake
//! [`crate::CertificateFetcher`] instead. Must not depend on the network.

use std::fmt;

use url::{Host, Url};

/// Why a `SigningCertURL` was refused.
#[derive(Debug, thiserror::Error)]
pub enum CertificateUrlError {
    /// The value is not an absolute URL.
    #[error("not a valid URL")]
    Unparsable(#[source] url::ParseError),
    /// The scheme is not `https`.
    #[error("scheme is not https")]
    NotHttps,
    /// The URL carries a user name or password.
    #[error("URL carries userinfo")]
    Userinfo,
    /// The URL names a port other than 443.
    #[error("URL names a non-default port")]
    Port,
    /// The host is not `sns.<region>.amazonaws.com` or `sns.<region>.amazonaws.com.cn`.
    #[error("host is not an SNS endpoint")]
    Host,
    /// The URL has a query string or a fragment.
    #[error("URL has a query or fragment")]
    QueryOrFragment,
    /// The path does not end in `.pem`.
    #[error("path does not name a .pem file")]
    NotPem,
}

/// A `SigningCertURL` that passed the host rule.
///
/// The rule: scheme `https`; host exactly `sns.<region>.amazonaws.com` or
/// `sns.<region>.amazonaws.com.cn` where `<region>` is at least three of `[a-z0-9-]` (the URL
/// parser lower-cases hosts); no user name or password; no port but the default; no query and
/// no fragment; a path ending in `.pem`. Any other `*.amazonaws.com` host is refused because
/// anyone can publish a PEM file on an S3 bucket host.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CertificateUrl(Url);

impl CertificateUrl {
    /// Validates a `SigningCertURL` value.
    ///
    /// # Errors
    ///
    /// A [`CertificateUrlError`] naming the first part of the rule the value breaks.
    pub fn parse(raw: &str) -> Result<Self, CertificateUrlError> {
        let url = Url::parse(raw).map_err(CertificateUrlError::Unparsable)?;

        if url.scheme() != "https" {
            return Err(CertificateUrlError::NotHttps);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(CertificateUrlError::Userinfo);
        }
        // `Url` drops an explicit `:443` for https, so any port left here is a different one.
        if url.port().is_some() {
            return Err(CertificateUrlError::Port);
        }
        match url.host() {
            Some(Host::Domain(host)) if is_sns_host(host) => {}
            _ => return Err(CertificateUrlError::Host),
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(CertificateUrlError::QueryOrFragment);
        }
        let path = url.path();
        if !path.ends_with(".pem") || path.ends_with("/.pem") {
            return Err(CertificateUrlError::NotPem);
        }
        Ok(Self(url))
    }

    /// The normalised URL text (also the cache key).
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The parsed URL, for fetchers.
    pub fn as_url(&self) -> &Url {
        &self.0
    }
}

impl fmt::Debug for CertificateUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CertificateUrl").field(&self.0.as_str()).finish()
    }
}

impl fmt::Display for CertificateUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// `sns.<region>.amazonaws.com` or `sns.<region>.amazonaws.com.cn`, region `[a-z0-9-]{3,}`.
fn is_sns_host(host: &str) -> bool {
    let Some(rest) = host.strip_prefix("sns.") else {
        return false;
    };
    let region = rest
        .strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))
        .unwrap_or_default();
    region.len() >= 3
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_must_be_three_allowed_characters_without_dots() {
        assert!(is_sns_host("sns.us-east-1.amazonaws.com"));
        assert!(is_sns_host("sns.cn-north-1.amazonaws.com.cn"));
        assert!(!is_sns_host("sns.eu.amazonaws.com"));
        assert!(!is_sns_host("sns..amazonaws.com"));
        assert!(!is_sns_host("sns.amazonaws.com"));
        assert!(!is_sns_host("sns.a.b.c.amazonaws.com"));
        assert!(!is_sns_host("sns.us_east_1.amazonaws.com"));
        assert!(!is_sns_host("s3.us-east-1.amazonaws.com"));
        assert!(!is_sns_host("xsns.us-east-1.amazonaws.com"));
    }
}
