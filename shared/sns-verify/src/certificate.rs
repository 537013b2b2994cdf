//! Parsed SNS signing certificates and the RSA signature check.
//!
//! Owns [`Certificate`]: the validity window and the public key of one X.509 certificate, with
//! the key parsed once for both SHA-1 and SHA-256 PKCS#1 v1.5 verification. Parsing uses
//! `x509-parser`, verification `aws-lc-rs`. Must not depend on the network or on where the
//! certificate came from.

use std::fmt;
use std::path::Path;

use aws_lc_rs::signature::{
    ParsedPublicKey, RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256,
    UnparsedPublicKey,
};
use chrono::{DateTime, Utc};
use x509_parser::error::{PEMError, X509Error};
use x509_parser::nom;
use x509_parser::pem::Pem;

use crate::message::SignatureVersion;

/// Why bytes could not be turned into a usable signing certificate.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// A PEM block is malformed (bad header, base64 or truncation).
    #[error("malformed PEM block")]
    Pem(#[source] PEMError),
    /// A PEM block holds something other than a certificate.
    #[error("PEM block is not a certificate")]
    NotACertificate,
    /// The input holds no certificate at all.
    #[error("no certificate found")]
    Empty,
    /// The DER structure is not a valid X.509 certificate.
    #[error("invalid X.509 certificate")]
    X509(#[source] X509Error),
    /// The certificate's key is not an RSA key of 2048 to 8192 bits.
    #[error("certificate key is not a usable RSA key")]
    Key(#[source] aws_lc_rs::error::KeyRejected),
    /// A validity date is outside the range this crate can represent.
    #[error("certificate validity is out of range")]
    Validity,
    /// Reading a bundle file failed.
    #[error("cannot read certificate bundle")]
    Io(#[source] std::io::Error),
}

/// The RSA signature did not verify with this key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature does not verify")]
pub struct BadSignature;

/// One parsed signing certificate: its validity window and its RSA public key.
pub struct Certificate {
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    subject: String,
    sha1: ParsedPublicKey,
    sha256: ParsedPublicKey,
}

impl Certificate {
    /// Parses one DER-encoded X.509 certificate.
    ///
    /// # Errors
    ///
    /// [`CertificateError::X509`] for invalid DER, [`CertificateError::Key`] when the key is not
    /// RSA 2048-8192, [`CertificateError::Validity`] for unrepresentable dates.
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|err| match err {
            nom::Err::Error(e) | nom::Err::Failure(e) => CertificateError::X509(e),
            nom::Err::Incomplete(_) => CertificateError::X509(X509Error::InvalidCertificate),
        })?;
        let validity = cert.validity();
        let not_before = DateTime::from_timestamp(validity.not_before.timestamp(), 0)
            .ok_or(CertificateError::Validity)?;
        let not_after = DateTime::from_timestamp(validity.not_after.timestamp(), 0)
            .ok_or(CertificateError::Validity)?;
        // The RSAPublicKey structure inside the SPKI bit string.
        let key = &cert.public_key().subject_public_key.data;
        let sha1 = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, key)
            .parse()
            .map_err(CertificateError::Key)?;
        let sha256 = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key)
            .parse()
            .map_err(CertificateError::Key)?;

        Ok(Self { not_before, not_after, subject: cert.subject().to_string(), sha1, sha256 })
    }

    /// Parses every certificate in a PEM document (one or more `CERTIFICATE` blocks; text
    /// between blocks is ignored).
    ///
    /// # Errors
    ///
    /// [`CertificateError::Empty`] when there is no block, [`CertificateError::NotACertificate`]
    /// for a block with another label (a private key in a bundle is a configuration mistake),
    /// and the errors of [`Certificate::from_der`] for each block.
    pub fn from_pem(pem: &[u8]) -> Result<Vec<Self>, CertificateError> {
        let mut certs = Vec::new();
        for block in Pem::iter_from_buffer(pem) {
            let block = match block {
                Ok(block) => block,
                // Trailing text after the last block reads as "no further header".
                Err(PEMError::MissingHeader) => break,
                Err(err) => return Err(CertificateError::Pem(err)),
            };
            if block.label != "CERTIFICATE" {
                return Err(CertificateError::NotACertificate);
            }
            certs.push(Self::from_der(&block.contents)?);
        }
        if certs.is_empty() {
            return Err(CertificateError::Empty);
        }
        Ok(certs)
    }

    /// Parses one certificate served by SNS: PEM (what SNS serves) or, failing a PEM header,
    /// DER. A PEM document must hold exactly one certificate; extra ones are ignored.
    ///
    /// # Errors
    ///
    /// As [`Certificate::from_pem`] or [`Certificate::from_der`].
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, CertificateError> {
        if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            // from_pem never returns an empty list.
            return Self::from_pem(bytes)?.into_iter().next().ok_or(CertificateError::Empty);
        }
        Self::from_der(bytes)
    }

    /// Reads a PEM bundle file (the file `SNS_CERT_BUNDLE` points at).
    ///
    /// # Errors
    ///
    /// [`CertificateError::Io`] when the file cannot be read, else as [`Certificate::from_pem`].
    pub fn load_bundle(path: &Path) -> Result<Vec<Self>, CertificateError> {
        let bytes = std::fs::read(path).map_err(CertificateError::Io)?;
        Self::from_pem(&bytes)
    }

    /// Start of the validity window.
    pub fn not_before(&self) -> DateTime<Utc> {
        self.not_before
    }

    /// End of the validity window (inclusive).
    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }

    /// The subject distinguished name, e.g. `CN=sns.amazonaws.com`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// True when `at` lies within `not_before..=not_after`.
    pub fn is_valid_at(&self, at: DateTime<Utc>) -> bool {
        self.not_before <= at && at <= self.not_after
    }

    /// Checks an RSA PKCS#1 v1.5 signature over `data` with the digest `version` names.
    ///
    /// # Errors
    ///
    /// [`BadSignature`] when the signature does not verify.
    pub fn verify_signature(
        &self,
        version: SignatureVersion,
        data: &[u8],
        signature: &[u8],
    ) -> Result<(), BadSignature> {
        let key = match version {
            SignatureVersion::V1Sha1 => &self.sha1,
            SignatureVersion::V2Sha256 => &self.sha256,
        };
        key.verify_sig(data, signature).map_err(|_| BadSignature)
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}
