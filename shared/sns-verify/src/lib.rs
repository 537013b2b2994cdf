//! Verification of genuine Amazon SNS messages.
//!
//! Owns the SNS signature procedure: the canonical string SNS signs ([`canonical_string`]), the
//! signing-certificate URL rule ([`CertificateUrl`]), certificate parsing and RSA PKCS#1 v1.5
//! verification with SHA-1 (`SignatureVersion` 1) or SHA-256 (2) ([`Certificate`]), a
//! certificate store with an operator-pinned bundle, a bounded in-memory cache and a pluggable
//! fetcher ([`CertificateStore`], [`CertificateFetcher`], [`ReqwestFetcher`]), and the topic
//! allow-list ([`Verifier`]).
//!
//! It must not depend on the SES payload model (`ses-wire`): the input is [`SnsMessage`], a
//! borrowed view of the envelope fields, and `Message` is an opaque string. It reads no
//! environment variables; binaries read [`CERT_BUNDLE_ENV`] and [`ALLOWED_TOPIC_ARNS_ENV`] and
//! pass the values in ([`Certificate::load_bundle`], [`parse_topic_list`]).
//!
//! Nothing here logs or quotes the `Message` body.
//!
//! ```no_run
//! # async fn demo(body: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use sns_verify::{CertificateStore, ReqwestFetcher, SnsMessage, Verifier};
//!
//! let store = CertificateStore::new(ReqwestFetcher::new(sns_verify::DEFAULT_FETCH_TIMEOUT));
//! let verifier = Verifier::new(
//!     Arc::new(store),
//!     sns_verify::parse_topic_list("arn:aws:sns:eu-central-1:123456789012:ses-feedback"),
//! )?;
//! let envelope: serde_json::Value = serde_json::from_str(body)?;
//! let verified = verifier.verify(&SnsMessage::from_json(&envelope)?, chrono::Utc::now()).await?;
//! # let _ = verified;
//! # Ok(())
//! # }
//! ```

mod cert_url;
mod certificate;
mod error;
mod fetch;
mod message;
mod store;
mod verifier;

pub use cert_url::{CertificateUrl, CertificateUrlError};
pub use certificate::{BadSignature, Certificate, CertificateError};
pub use error::VerifyError;
pub use fetch::{DEFAULT_FETCH_TIMEOUT, MAX_CERTIFICATE_BYTES, ReqwestFetcher};
pub use message::{MessageType, SignatureVersion, SnsMessage, canonical_string};
pub use store::{
    CertificateFetcher, CertificateSource, CertificateStore, DEFAULT_CACHE_CAPACITY, FetchError,
    NoFetcher,
};
pub use verifier::{EmptyAllowList, MAX_CLOCK_SKEW, Verified, Verifier};

/// Environment variable holding the path of a PEM file with pinned SNS signing certificates.
pub const CERT_BUNDLE_ENV: &str = "SNS_CERT_BUNDLE";

/// Environment variable holding the comma-separated allowed topic ARNs.
pub const ALLOWED_TOPIC_ARNS_ENV: &str = "ALLOWED_TOPIC_ARNS";

/// Splits a comma-separated topic ARN list (the `ALLOWED_TOPIC_ARNS` format), trimming spaces
/// and dropping empty items.
pub fn parse_topic_list(raw: &str) -> Vec<String> {
    raw.split(',').map(str::trim).filter(|arn| !arn.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_list_is_trimmed_and_skips_empty_items() {
        let topics =
            parse_topic_list(" arn:aws:sns:eu-central-1:1:a ,,arn:aws:sns:eu-central-1:1:b,");

        assert_eq!(topics, ["arn:aws:sns:eu-central-1:1:a", "arn:aws:sns:eu-central-1:1:b"]);
        assert!(parse_topic_list(" , ").is_empty());
    }
}
