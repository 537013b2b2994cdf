//! Where signing certificates come from: an operator-pinned bundle, an in-memory cache, a fetch.
//!
//! Owns [`CertificateStore`], the [`CertificateFetcher`] port and its [`FetchError`].
//!
//! Pinned certificates (the `SNS_CERT_BUNDLE` file) are matched by key, not by URL: SNS
//! certificate file names are opaque, and a bundle carries no names. For a message whose
//! `SigningCertURL` already passed the host rule, every pinned certificate whose validity covers
//! the message `Timestamp` is tried before anything is fetched or looked up, and the first key
//! that verifies the signature wins. This is sound because the operator trusts every pinned key
//! for any SNS message (the URL is not signed, so it could not add trust anyway), and it keeps no
//! state: a pinned match is never cached under a URL, so a message carrying a genuine signature
//! next to someone else's URL cannot bind that URL to the wrong certificate. When no pinned key
//! verifies, the store falls back to its cache and then to the fetcher, unless it was built with
//! [`CertificateStore::pinned_only`].
//!
//! Fetched certificates are cached by normalised URL, parsed, for the life of the process (a warm
//! Lambda keeps them across invocations). The cache is bounded; when full the oldest entry is
//! dropped. Must not depend on a particular HTTP client: the fetcher is a trait.

use std::collections::VecDeque;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use feedback_domain::ports::Retryable;
use tracing::debug;

use crate::cert_url::CertificateUrl;
use crate::certificate::{Certificate, CertificateError};
use crate::error::VerifyError;

/// Default number of cached certificates. SNS uses one certificate per region at a time, plus
/// the next one around a rotation.
pub const DEFAULT_CACHE_CAPACITY: NonZeroUsize = match NonZeroUsize::new(16) {
    Some(capacity) => capacity,
    None => NonZeroUsize::MIN,
};

/// Why fetching a certificate failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request did not complete: DNS, connect, TLS, timeout or a broken body.
    #[error("certificate request failed")]
    Request(#[source] reqwest::Error),
    /// The server answered with a status other than 200 (redirects are not followed).
    #[error("certificate server answered {status}")]
    Status {
        /// The HTTP status code.
        status: u16,
    },
    /// The body is larger than any certificate.
    #[error("certificate body exceeds {limit} bytes")]
    TooLarge {
        /// The size limit in bytes.
        limit: usize,
    },
}

impl FetchError {
    /// True for transport failures, timeouts, 408, 429 and 5xx; false for other statuses, an
    /// oversized body and a request that could not even be built.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Request(err) => !err.is_builder(),
            Self::Status { status } => matches!(status, 408 | 429 | 500..=599),
            Self::TooLarge { .. } => false,
        }
    }
}

impl Retryable for FetchError {
    fn is_retryable(&self) -> bool {
        FetchError::is_retryable(self)
    }
}

/// Port: fetch the bytes behind a validated certificate URL.
///
/// Implementations receive only URLs that passed the host rule. Production uses
/// [`crate::ReqwestFetcher`]; tests serve fixture bytes from memory.
pub trait CertificateFetcher: Send + Sync {
    /// Fetches the certificate body (PEM or DER).
    ///
    /// # Errors
    ///
    /// A [`FetchError`] saying whether a retry can help.
    fn fetch(
        &self,
        url: &CertificateUrl,
    ) -> impl Future<Output = Result<Vec<u8>, FetchError>> + Send;
}

/// A shared fetcher is a fetcher (several stores can share one HTTP client; tests keep a handle
/// on the fake they hand to the store).
impl<T: CertificateFetcher> CertificateFetcher for Arc<T> {
    fn fetch(
        &self,
        url: &CertificateUrl,
    ) -> impl Future<Output = Result<Vec<u8>, FetchError>> + Send {
        T::fetch(self, url)
    }
}

/// The fetcher type of a store that never fetches; see [`CertificateStore::pinned_only`]. It has
/// no values, so no fetch can happen.
#[derive(Debug, Clone, Copy)]
pub enum NoFetcher {}

impl CertificateFetcher for NoFetcher {
    async fn fetch(&self, _url: &CertificateUrl) -> Result<Vec<u8>, FetchError> {
        match *self {}
    }
}

/// Where the certificate that verified a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateSource {
    /// The operator's pinned bundle; nothing was fetched.
    Pinned,
    /// The in-memory cache of earlier fetches.
    Cached,
    /// Fetched for this message (and now cached).
    Fetched,
}

/// Pinned certificates, a bounded cache and an optional fetcher.
#[derive(Debug)]
pub struct CertificateStore<F> {
    pinned: Vec<Certificate>,
    fetcher: Option<F>,
    cache: Mutex<VecDeque<(String, Arc<Certificate>)>>,
    capacity: NonZeroUsize,
}

impl<F: CertificateFetcher> CertificateStore<F> {
    /// A store that fetches through `fetcher` and caches up to [`DEFAULT_CACHE_CAPACITY`]
    /// certificates.
    pub fn new(fetcher: F) -> Self {
        Self {
            pinned: Vec::new(),
            fetcher: Some(fetcher),
            cache: Mutex::new(VecDeque::new()),
            capacity: DEFAULT_CACHE_CAPACITY,
        }
    }

    /// Adds pinned certificates, tried before the cache and any fetch (see the module docs).
    #[must_use]
    pub fn with_pinned(mut self, certs: Vec<Certificate>) -> Self {
        self.pinned.extend(certs);
        self
    }

    /// Sets how many fetched certificates are kept.
    #[must_use]
    pub fn with_cache_capacity(mut self, capacity: NonZeroUsize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The pinned certificates.
    pub fn pinned(&self) -> &[Certificate] {
        &self.pinned
    }

    /// Whether a certificate that is not pinned can be obtained at all.
    pub fn can_fetch(&self) -> bool {
        self.fetcher.is_some()
    }

    /// The certificate behind `url`, from the cache or, on a miss, fetched, parsed and cached.
    ///
    /// Returns `None` when the store has no fetcher.
    ///
    /// # Errors
    ///
    /// [`VerifyError::CertificateFetch`] when fetching fails and
    /// [`VerifyError::CertificateInvalid`] when the body is not a usable certificate.
    pub async fn certificate(
        &self,
        url: &CertificateUrl,
    ) -> Result<Option<(Arc<Certificate>, CertificateSource)>, VerifyError> {
        let Some(fetcher) = &self.fetcher else {
            return Ok(None);
        };
        if let Some(cert) = self.cached(url.as_str()) {
            return Ok(Some((cert, CertificateSource::Cached)));
        }

        let started = Instant::now();
        let fetched = fetcher.fetch(url).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let body = match fetched {
            Ok(body) => body,
            Err(source) => {
                debug!(url = %url, latency_ms, error = %source, "certificate fetch failed");
                return Err(VerifyError::CertificateFetch { url: url.to_string(), source });
            }
        };
        debug!(url = %url, latency_ms, bytes = body.len(), "certificate fetched");

        let cert = Certificate::from_pem_or_der(&body).map_err(|source: CertificateError| {
            VerifyError::CertificateInvalid { url: url.to_string(), source }
        })?;
        let cert = Arc::new(cert);
        self.insert(url.as_str(), Arc::clone(&cert));
        Ok(Some((cert, CertificateSource::Fetched)))
    }

    /// Number of cached (fetched) certificates.
    pub fn cached_len(&self) -> usize {
        self.lock().len()
    }

    fn cached(&self, key: &str) -> Option<Arc<Certificate>> {
        self.lock().iter().find(|(url, _)| url == key).map(|(_, cert)| Arc::clone(cert))
    }

    fn insert(&self, key: &str, cert: Arc<Certificate>) {
        let mut cache = self.lock();
        // Two concurrent misses for one URL both fetch; keep a single entry.
        cache.retain(|(url, _)| url != key);
        while cache.len() >= self.capacity.get() {
            cache.pop_front();
        }
        cache.push_back((key.to_owned(), cert));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(String, Arc<Certificate>)>> {
        // Every mutation leaves the deque consistent, so a panic elsewhere cannot corrupt it.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CertificateStore<NoFetcher> {
    /// A store that only ever uses `certs` and never touches the network. A message that no
    /// pinned key verifies fails with [`VerifyError::SignatureMismatch`], including messages
    /// signed with a certificate SNS rotated to after the bundle was built.
    pub fn pinned_only(certs: Vec<Certificate>) -> Self {
        Self {
            pinned: certs,
            fetcher: None,
            cache: Mutex::new(VecDeque::new()),
            capacity: DEFAULT_CACHE_CAPACITY,
        }
    }
}
