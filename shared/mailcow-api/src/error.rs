//! What can go wrong when talking to Mailcow, and whether trying again can help.
//!
//! Owns [`MailcowError`] (calls) and [`ConfigError`] (building a client). Messages name the
//! setting to fix and never carry an address, a request body or the API key.

use std::fmt;
use std::time::Duration;

use feedback_domain::ports::Retryable;

/// A Mailcow language key with its arguments, e.g. `["object_modified", "7"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailcowMsg {
    /// The key (`data/web/lang/lang.en-gb.json`), or a literal message for generic replies.
    pub key: String,
    /// The arguments, as text.
    pub args: Vec<String>,
}

impl fmt::Display for MailcowMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

/// Why Mailcow refused the caller (HTTP 401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// `authentication failed`: the key is unknown or inactive.
    KeyRejected,
    /// `api access denied for ip X`: the key is valid but the caller's address is not allowed.
    IpNotAllowed {
        /// The address Mailcow saw, when it said.
        ip: Option<String>,
    },
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KeyRejected => f.write_str(
                "Mailcow rejected the API key (HTTP 401 \"authentication failed\"): set \
                 MAILCOW_API_KEY / MAILCOW_API_KEY_SECRET to an active read-write key \
                 (System > Configuration > Access > API)",
            ),
            Self::IpNotAllowed { ip } => write!(
                f,
                "Mailcow refused this caller's address {} (HTTP 401 \"api access denied for \
                 ip\"): add it to the API IP allow-list (System > Configuration > Access > API, \
                 or API_ALLOW_FROM in mailcow.conf)",
                ip.as_deref().unwrap_or("(not reported)")
            ),
        }
    }
}

/// A failed Mailcow call.
#[derive(Debug, thiserror::Error)]
pub enum MailcowError {
    /// HTTP 401, or an authentication error object. Never retried: Mailcow's fail2ban bans a
    /// caller after 10 failures in 600 s. The client also suspends calls for a while.
    #[error("{cause}; no retry, to stay clear of Mailcow's fail2ban")]
    Unauthorized {
        /// Key or IP allow-list.
        cause: AuthFailure,
    },
    /// HTTP 403: the key is read-only (or the session is incomplete).
    #[error(
        "Mailcow refused the write with HTTP 403 \"API read/write access denied\": \
         MAILCOW_API_KEY / MAILCOW_API_KEY_SECRET holds the read-only key, set the read-write key"
    )]
    Forbidden,
    /// A `danger`, `error` or `warning` reply (HTTP 200). Not transient: Mailcow validated and
    /// refused, or failed to write (`global_map_write_error` means the map file cannot be
    /// written, which a retry seconds later does not fix).
    #[error("Mailcow refused the request ({kind}: {msg})")]
    Rejected {
        /// `danger`, `error` or `warning`.
        kind: String,
        /// Mailcow's language key and arguments.
        msg: MailcowMsg,
    },
    /// Mailcow answered success without doing the work.
    #[error("Mailcow answered success but {what}")]
    NotApplied {
        /// What did not happen.
        what: &'static str,
    },
    /// HTTP 5xx.
    #[error("Mailcow answered HTTP {status}")]
    ServerError {
        /// The status code.
        status: u16,
    },
    /// Any other unexpected status (400, 404 `route not found`, 405, 3xx, ...).
    #[error("Mailcow answered HTTP {status}{}", status_detail(msg.as_ref()))]
    UnexpectedStatus {
        /// The status code.
        status: u16,
        /// The `msg` of the error object, when there was one.
        msg: Option<MailcowMsg>,
    },
    /// No complete answer within the request timeout.
    #[error("Mailcow did not answer within {timeout:?}")]
    Timeout {
        /// The request timeout.
        timeout: Duration,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The connection could not be established (DNS, refused, TLS handshake): nothing was sent.
    #[error("cannot connect to Mailcow (check MAILCOW_URL and the network path)")]
    Connect {
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The connection broke after the request was sent (reset, closed without an answer).
    #[error("the connection to Mailcow broke before an answer arrived")]
    ConnectionLost {
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// A reply this client cannot read (empty, not JSON, unexpected shape).
    #[error("unreadable Mailcow reply: {reason}")]
    InvalidResponse {
        /// What was wrong, without the body.
        reason: String,
        /// The JSON error, when there was one.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// The caller asked for something this client refuses to send.
    #[error("refused to send the request: {reason}")]
    InvalidRequest {
        /// Why.
        reason: &'static str,
    },
    /// The HTTP client could not be built (TLS setup, e.g. an unusable MAILCOW_CA_BUNDLE). It
    /// is built on the first request; nothing was sent.
    #[error("the HTTP client for Mailcow could not be built")]
    HttpClient {
        /// What reqwest reported.
        #[source]
        source: reqwest::Error,
    },
}

fn status_detail(msg: Option<&MailcowMsg>) -> String {
    msg.map(|m| format!(" ({m})")).unwrap_or_default()
}

impl MailcowError {
    /// Whether a later attempt can succeed without anyone changing configuration: 5xx, 408,
    /// 429, timeouts and connection failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::ServerError { .. }
            | Self::Timeout { .. }
            | Self::Connect { .. }
            | Self::ConnectionLost { .. } => true,
            Self::UnexpectedStatus { status, .. } => matches!(status, 408 | 429),
            Self::Unauthorized { .. }
            | Self::Forbidden
            | Self::Rejected { .. }
            | Self::NotApplied { .. }
            | Self::InvalidResponse { .. }
            | Self::InvalidRequest { .. }
            | Self::HttpClient { .. } => false,
        }
    }

    /// Whether the error is about credentials or access (401, 403): an operator must act.
    pub fn is_auth(&self) -> bool {
        matches!(self, Self::Unauthorized { .. } | Self::Forbidden)
    }

    /// A short stable name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unauthorized { .. } => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::Rejected { .. } => "rejected",
            Self::NotApplied { .. } => "not_applied",
            Self::ServerError { .. } => "server_error",
            Self::UnexpectedStatus { .. } => "unexpected_status",
            Self::Timeout { .. } => "timeout",
            Self::Connect { .. } => "connect",
            Self::ConnectionLost { .. } => "connection_lost",
            Self::InvalidResponse { .. } => "invalid_response",
            Self::InvalidRequest { .. } => "invalid_request",
            Self::HttpClient { .. } => "http_client",
        }
    }
}

impl Retryable for MailcowError {
    fn is_retryable(&self) -> bool {
        MailcowError::is_retryable(self)
    }
}

/// Why a [`crate::MailcowClient`] cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The API key is empty or holds characters Mailcow strips before the lookup.
    #[error("MAILCOW_API_KEY / MAILCOW_API_KEY_SECRET is invalid: {reason}")]
    InvalidApiKey {
        /// What is wrong with it (never the key).
        reason: &'static str,
    },
    /// The URL cannot be used as a base URL.
    #[error("MAILCOW_URL is invalid: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The extra root CA is not a PEM certificate.
    #[error("the Mailcow CA certificate is not valid PEM")]
    CaCertificate {
        /// The TLS library's error.
        #[source]
        source: reqwest::Error,
    },
    /// The extra root CA file holds no certificate.
    #[error("the Mailcow CA certificate file holds no certificate")]
    NoCaCertificate,
}
