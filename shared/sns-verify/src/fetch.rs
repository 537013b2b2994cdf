//! The production [`CertificateFetcher`]: an HTTPS GET with reqwest (rustls).
//!
//! Owns the HTTP details of fetching a signing certificate: timeouts, no redirects (a redirect
//! could leave the SNS host the URL rule approved), a body size cap and the mapping of failures
//! to retryable or permanent [`FetchError`]s. Must not parse certificates or know about messages.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::{Client, StatusCode, redirect};
use url::Url;

use crate::cert_url::CertificateUrl;
use crate::store::{CertificateFetcher, FetchError};

/// Largest accepted certificate body. SNS certificates are about 2 KiB of PEM.
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

/// Default overall timeout of one certificate fetch.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Fetches certificates over HTTPS with a shared reqwest client.
///
/// The client is built on the first fetch, not with the fetcher: building it loads the TLS trust
/// store, which measured as a third of the function's cold start, and most invocations never
/// fetch (the certificate is pinned or already cached).
#[derive(Debug, Clone)]
pub struct ReqwestFetcher {
    timeout: Duration,
    client: OnceLock<Client>,
}

impl ReqwestFetcher {
    /// A fetcher whose requests give up after `timeout` (connecting gets at most half of it).
    /// Redirects are never followed. A client that cannot be built (TLS backend setup) fails the
    /// first fetch with a permanent [`FetchError::Request`].
    pub fn new(timeout: Duration) -> Self {
        Self { timeout, client: OnceLock::new() }
    }

    fn client(&self) -> Result<&Client, FetchError> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let built = Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout / 2)
            .redirect(redirect::Policy::none())
            .user_agent(concat!("sns-verify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(FetchError::Request)?;
        // Two first fetches at once may both build one; either client serves.
        Ok(self.client.get_or_init(move || built))
    }

    /// GETs `url` and returns the body of a 200 answer.
    ///
    /// Crate-private so that only [`CertificateUrl`]s reach it from outside; the unit tests use
    /// it against a loopback server to check the error classification.
    pub(crate) async fn get(&self, url: &Url) -> Result<Vec<u8>, FetchError> {
        let mut response =
            self.client()?.get(url.clone()).send().await.map_err(FetchError::Request)?;
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status { status: response.status().as_u16() });
        }
        let limit = MAX_CERTIFICATE_BYTES;
        if response.content_length().is_some_and(|len| len > limit as u64) {
            return Err(FetchError::TooLarge { limit });
        }

        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(FetchError::Request)? {
            if body.len() + chunk.len() > limit {
                return Err(FetchError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

impl CertificateFetcher for ReqwestFetcher {
    async fn fetch(&self, url: &CertificateUrl) -> Result<Vec<u8>, FetchError> {
        self.get(url.as_url()).await
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// Serves one canned HTTP answer per connection on loopback; returns the base URL.
    async fn serve(answer: &'static [u8]) -> Url {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let mut request = Vec::new();
                let mut buf = [0_u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket.write_all(answer).await;
                let _ = socket.shutdown().await;
            }
        });
        Url::parse(&format!("http://{addr}/cert.pem")).unwrap()
    }

    fn fetcher() -> ReqwestFetcher {
        ReqwestFetcher::new(Duration::from_secs(5))
    }

    #[tokio::test]
    async fn a_200_answer_returns_the_body() {
        let url =
            serve(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello").await;

        let body = fetcher().get(&url).await.unwrap();

        assert_eq!(body, b"hello");
    }

    #[tokio::test]
    async fn a_404_is_permanent_and_a_503_is_retryable() {
        let not_found =
            serve(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        let unavailable = serve(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;

        let permanent = fetcher().get(&not_found).await.unwrap_err();
        let transient = fetcher().get(&unavailable).await.unwrap_err();

        assert!(matches!(permanent, FetchError::Status { status: 404 }), "{permanent:?}");
        assert!(!permanent.is_retryable());
        assert!(matches!(transient, FetchError::Status { status: 503 }), "{transient:?}");
        assert!(transient.is_retryable());
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed_and_is_permanent() {
        let url = serve(
            b"HTTP/1.1 302 Found\r\nLocation: https://evil.example/x.pem\r\n\
              Content-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;

        let err = fetcher().get(&url).await.unwrap_err();

        assert!(matches!(err, FetchError::Status { status: 302 }), "{err:?}");
        assert!(!err.is_retryable());
    }

    #[tokio::test]
    async fn an_oversized_body_is_refused_permanently() {
        let url =
            serve(b"HTTP/1.1 200 OK\r\nContent-Length: 999999\r\nConnection: close\r\n\r\n").await;

        let err = fetcher().get(&url).await.unwrap_err();

        assert!(matches!(err, FetchError::TooLarge { .. }), "{err:?}");
        assert!(!err.is_retryable());
    }

    #[tokio::test]
    async fn a_refused_connection_is_retryable() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let url = Url::parse(&format!("http://{addr}/cert.pem")).unwrap();

        let err = fetcher().get(&url).await.unwrap_err();

        assert!(matches!(err, FetchError::Request(_)), "{err:?}");
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out_retryably() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (hold_tx, hold_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            // Accept, then keep the socket open without answering until the test ends.
            let accepted = listener.accept().await;
            let _ = hold_rx.await;
            drop(accepted);
        });
        let url = Url::parse(&format!("http://{addr}/cert.pem")).unwrap();
        let fetcher = ReqwestFetcher::new(Duration::from_millis(200));

        let err = fetcher.get(&url).await.unwrap_err();
        drop(hold_tx);

        let FetchError::Request(source) = &err else { panic!("{err:?}") };
        assert!(source.is_timeout(), "{source:?}");
        assert!(err.is_retryable());
    }
}
