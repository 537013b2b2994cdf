//! The Mailcow REST client: pushes the denylist map and keeps the project's settings rule.
//!
//! Owns transport concerns: TLS (rustls, system roots plus an optional extra CA for a
//! self-signed Mailcow; there is deliberately no switch that turns verification off), timeouts,
//! bounded retries with exponential backoff and full jitter for transient failures only, and the
//! auth-failure brake: after a 401 or 403 no request is retried, and further calls fail fast for
//! [`MailcowConfig::auth_suspend`], because Mailcow's fail2ban bans an address after 10 failed
//! authentications in 600 s. Redirects are not followed: the API key header would go along.
//!
//! The API key never appears in `Debug` output or logs; request and reply bodies are never
//! logged (replies echo the request, which holds addresses).

use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, HeaderValue};
use reqwest::{Certificate, Method, StatusCode, Url};
use serde_json::{Value, json};
use tracing::{debug, info, instrument, warn};

use crate::error::{AuthFailure, ConfigError, MailcowError};
use crate::render::{DENYLIST_MAP, RenderedMap};
use crate::reply::{
    Rsetting, RsettingId, WriteReply, auth_failure_of, expect_success, parse_rsetting_list,
    parse_rsetting_one,
};

const EDIT_MAP: &str = "api/v1/edit/rspamd-map";
const LIST_RSETTINGS: &str = "api/v1/get/rsetting/all";
const ADD_RSETTING: &str = "api/v1/add/rsetting";
const EDIT_RSETTING: &str = "api/v1/edit/rsetting";
const DELETE_RSETTING: &str = "api/v1/delete/rsetting";

/// Longest description Mailcow stores (`settingsmap.desc` is `VARCHAR(255)`).
const MAX_DESC_LEN: usize = 255;

/// A Mailcow API key. `Debug` never shows it.
#[derive(Clone)]
pub struct ApiKey(HeaderValue);

impl ApiKey {
    /// Validates a key: surrounding whitespace (a trailing newline from a secret store) is
    /// removed; what remains must be non-empty and use only `A-Z a-z 0-9 -`, because Mailcow
    /// strips every other character before looking the key up, so such a key can never match.
    ///
    /// Fails with [`ConfigError::InvalidApiKey`].
    pub fn new(raw: &str) -> Result<Self, ConfigError> {
        let key = raw.trim();
        if key.is_empty() {
            return Err(ConfigError::InvalidApiKey { reason: "it is empty" });
        }
        if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(ConfigError::InvalidApiKey {
                reason: "it holds characters other than A-Z, a-z, 0-9 and '-', which Mailcow \
                         strips before the lookup",
            });
        }
        let mut value = HeaderValue::from_str(key)
            .map_err(|_| ConfigError::InvalidApiKey { reason: "it is not a valid header value" })?;
        value.set_sensitive(true);
        Ok(Self(value))
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// How often and how patiently to retry transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff before the second attempt, doubled for each further one.
    pub base_delay: Duration,
    /// Upper bound of one backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub fn none() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// The wait after failed attempt `attempt` (1-based): uniformly random between zero and
    /// `min(max_delay, base_delay * 2^(attempt - 1))` ("full jitter"), so that several senders
    /// that failed together do not retry together.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        let cap = self.base_delay.saturating_mul(factor).min(self.max_delay);
        let cap_micros = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(fastrand::u64(0..=cap_micros))
    }
}

/// Everything a [`MailcowClient`] needs.
#[derive(Clone)]
pub struct MailcowConfig {
    /// Mailcow's base URL (`MAILCOW_URL`), e.g. `https://mail.example.org`. Plain `http` is
    /// accepted only for loopback hosts (the local simulator).
    pub base_url: Url,
    /// The read-write API key.
    pub api_key: ApiKey,
    /// PEM of extra root certificates to trust besides the system roots (self-signed Mailcow).
    pub extra_root_ca_pem: Option<Vec<u8>>,
    /// Limit for establishing a connection.
    pub connect_timeout: Duration,
    /// Limit for one whole request, connection included.
    pub request_timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// How long calls fail fast after a 401 or 403 before one is tried again.
    pub auth_suspend: Duration,
}

impl MailcowConfig {
    /// Defaults: connect 5 s, request 20 s, 4 attempts, calls suspended 15 min after an auth
    /// failure (one probe per 15 min stays far below fail2ban's 10 per 10 min).
    pub fn new(base_url: Url, api_key: ApiKey) -> Self {
        Self {
            base_url,
            api_key,
            extra_root_ca_pem: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            retry: RetryPolicy::default(),
            auth_suspend: Duration::from_secs(15 * 60),
        }
    }
}

impl std::fmt::Debug for MailcowConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailcowConfig")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.api_key)
            .field("extra_root_ca", &self.extra_root_ca_pem.is_some())
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("auth_suspend", &self.auth_suspend)
            .finish()
    }
}

/// What [`MailcowClient::upsert_rsetting`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsettingUpsert {
    /// The project's rule (the lowest id with the description).
    pub id: RsettingId,
    /// Whether the rule was created by this call.
    pub created: bool,
    /// Whether any rule's content was written.
    pub updated: bool,
    /// Further rules with the same description (from an earlier add whose reply was lost).
    /// They were given the same content, so none keeps a stale block; delete them with
    /// [`MailcowClient::delete_rsetting`].
    pub duplicates: Vec<RsettingId>,
}

/// Which failures a call may retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RetryMode {
    /// Every retryable failure: the call is idempotent.
    Idempotent,
    /// Only failures to connect, where nothing was sent: `add` inserts a row on every call, so
    /// a retry after a timeout or a lost reply could create a duplicate.
    ConnectOnly,
}

#[derive(Debug, Clone)]
enum Suspension {
    Unauthorized(AuthFailure),
    Forbidden,
}

impl Suspension {
    fn error(&self) -> MailcowError {
        match self {
            Self::Unauthorized(cause) => MailcowError::Unauthorized { cause: cause.clone() },
            Self::Forbidden => MailcowError::Forbidden,
        }
    }
}

/// Client of the Mailcow REST API.
pub struct MailcowClient {
    /// Built on the first request: building it loads the TLS trust store, which made up a third
    /// of the function's cold start.
    http: OnceLock<reqwest::Client>,
    connect_timeout: Duration,
    extra_roots: Vec<Certificate>,
    base: Url,
    key: ApiKey,
    retry: RetryPolicy,
    request_timeout: Duration,
    auth_suspend: Duration,
    suspended: Mutex<Option<(Instant, Suspension)>>,
}

impl std::fmt::Debug for MailcowClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailcowClient").field("base", &self.base.as_str()).finish_non_exhaustive()
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

impl MailcowClient {
    /// Builds the client.
    ///
    /// Fails when the URL is not an `https` base URL (or `http` on loopback) or when the extra CA
    /// is not PEM. The HTTP client itself is built on the first request.
    pub fn new(config: MailcowConfig) -> Result<Self, ConfigError> {
        let mut base = config.base_url;
        if base.cannot_be_a_base() || base.host_str().is_none() {
            return Err(ConfigError::InvalidUrl { reason: "it is not an http(s) URL with a host" });
        }
        match base.scheme() {
            "https" => {}
            "http" if is_loopback_host(&base) => {}
            "http" => {
                return Err(ConfigError::InvalidUrl {
                    reason: "plain http would send the API key in clear text; use https",
                });
            }
            _ => return Err(ConfigError::InvalidUrl { reason: "the scheme must be https" }),
        }
        base.set_query(None);
        base.set_fragment(None);
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let mut extra_roots = Vec::new();
        if let Some(pem) = &config.extra_root_ca_pem {
            extra_roots = Certificate::from_pem_bundle(pem)
                .map_err(|source| ConfigError::CaCertificate { source })?;
            if extra_roots.is_empty() {
                return Err(ConfigError::NoCaCertificate);
            }
        }
        Ok(Self {
            http: OnceLock::new(),
            connect_timeout: config.connect_timeout,
            extra_roots,
            base,
            key: config.api_key,
            retry: RetryPolicy { max_attempts: config.retry.max_attempts.max(1), ..config.retry },
            request_timeout: config.request_timeout,
            auth_suspend: config.auth_suspend,
            suspended: Mutex::new(None),
        })
    }

    /// Replaces the whole recipient denylist map with `map.text`.
    ///
    /// Fails when Mailcow refuses (see [`MailcowError`]), or with [`MailcowError::NotApplied`]
    /// when it answers success without reporting the map as modified (the map file is missing
    /// on the server, so nothing was written).
    #[instrument(skip_all, fields(map = DENYLIST_MAP, lines = map.lines))]
    pub async fn push_denylist_map(&self, map: &RenderedMap) -> Result<(), MailcowError> {
        let body = json!({"items": [DENYLIST_MAP], "attr": {"rspamd_map_data": map.text}});
        let reply = self.send(Method::POST, EDIT_MAP, Some(&body), RetryMode::Idempotent).await?;
        let modified = match self.checked(expect_success(&reply))? {
            WriteReply::Entries(entries) => entries.iter().any(|e| {
                e.msg.key == "object_modified"
                    && e.msg.args.first().map(String::as_str) == Some(DENYLIST_MAP)
            }),
            WriteReply::Single(_) => false,
        };
        if !modified {
            return Err(MailcowError::NotApplied {
                what: "did not report the map as modified (is the map file missing on the server?)",
            });
        }
        let sha256 = map.sha256.get(..12).unwrap_or(&map.sha256);
        info!(lines = map.lines, sha256, bytes = map.text.len(), "denylist map pushed");
        Ok(())
    }

    /// Every settings rule.
    ///
    /// Fails when Mailcow refuses or answers something unreadable.
    #[instrument(skip_all)]
    pub async fn list_rsettings(&self) -> Result<Vec<Rsetting>, MailcowError> {
        let reply = self.send(Method::GET, LIST_RSETTINGS, None, RetryMode::Idempotent).await?;
        self.checked(parse_rsetting_list(&reply))
    }

    /// One settings rule, `None` when it does not exist.
    ///
    /// Fails when Mailcow refuses or answers something unreadable.
    #[instrument(skip_all, fields(rule_id = id.0))]
    pub async fn get_rsetting(&self, id: RsettingId) -> Result<Option<Rsetting>, MailcowError> {
        let path = format!("api/v1/get/rsetting/{id}");
        let reply = self.send(Method::GET, &path, None, RetryMode::Idempotent).await?;
        self.checked(parse_rsetting_one(&reply))
    }

    /// The lowest id of the rules described `desc`, if any.
    ///
    /// Fails as [`Self::list_rsettings`] does.
    pub async fn find_rsetting(&self, desc: &str) -> Result<Option<RsettingId>, MailcowError> {
        Ok(self.rules_described(desc).await?.first().map(|r| r.id))
    }

    /// Creates an active rule. Mailcow inserts a new row on every call and returns no id, so
    /// this is attempted once (retried only when the connection could not be made): use
    /// [`Self::upsert_rsetting`] unless you know no rule exists.
    ///
    /// Fails with [`MailcowError::InvalidRequest`] for an empty content or a description that
    /// is empty, longer than 255 characters or holds control characters, and when Mailcow
    /// refuses.
    #[instrument(skip_all)]
    pub async fn create_rsetting(&self, desc: &str, content: &str) -> Result<(), MailcowError> {
        check_desc(desc)?;
        check_content(content)?;
        let body = json!({"desc": desc, "content": content, "active": 1});
        let reply =
            self.send(Method::POST, ADD_RSETTING, Some(&body), RetryMode::ConnectOnly).await?;
        self.checked(expect_success(&reply))?;
        info!("settings rule created");
        Ok(())
    }

    /// Replaces a rule's content and makes it active.
    ///
    /// Fails with [`MailcowError::InvalidRequest`] for an empty content (Mailcow would keep the
    /// old one), [`MailcowError::Rejected`] for an unknown id (`settings_map_invalid`), and when
    /// Mailcow refuses otherwise.
    #[instrument(skip_all, fields(rule_id = id.0))]
    pub async fn update_rsetting(&self, id: RsettingId, content: &str) -> Result<(), MailcowError> {
        check_content(content)?;
        let body = json!({"items": [id.to_string()], "attr": {"content": content, "active": 1}});
        let reply =
            self.send(Method::POST, EDIT_RSETTING, Some(&body), RetryMode::Idempotent).await?;
        match self.checked(expect_success(&reply))? {
            WriteReply::Entries(_) => Ok(()),
            WriteReply::Single(_) => {
                Err(MailcowError::NotApplied { what: "modified no settings rule" })
            }
        }
    }

    /// Deletes a rule. Deleting a rule that does not exist succeeds (Mailcow does not check).
    ///
    /// Fails when Mailcow refuses.
    #[instrument(skip_all, fields(rule_id = id.0))]
    pub async fn delete_rsetting(&self, id: RsettingId) -> Result<(), MailcowError> {
        let body = json!([id.to_string()]);
        let reply =
            self.send(Method::POST, DELETE_RSETTING, Some(&body), RetryMode::Idempotent).await?;
        self.checked(expect_success(&reply))?;
        info!("settings rule deleted");
        Ok(())
    }

    /// Makes the rule described `desc` hold `content`: creates it once when missing (then
    /// lists again, since add returns no id), writes the content to every rule with that
    /// description whose content or active flag differs, and reads the rule back.
    ///
    /// Several rules with the description are reported in [`RsettingUpsert::duplicates`], not
    /// deleted. Fails when any call fails, or with [`MailcowError::NotApplied`] when the rule is
    /// not listed after creation or reads back with other content.
    #[instrument(skip_all)]
    pub async fn upsert_rsetting(
        &self,
        desc: &str,
        content: &str,
    ) -> Result<RsettingUpsert, MailcowError> {
        check_desc(desc)?;
        check_content(content)?;
        let mut ours = self.rules_described(desc).await?;
        let created = ours.is_empty();
        if created {
            self.create_rsetting(desc, content).await?;
            ours = self.rules_described(desc).await?;
        }
        let Some(primary) = ours.first().map(|r| r.id) else {
            return Err(MailcowError::NotApplied {
                what: "the created settings rule is not listed",
            });
        };
        let mut updated = false;
        for rule in &ours {
            if rule.content.trim() == content.trim() && rule.active == Some(true) {
                continue;
            }
            self.update_rsetting(rule.id, content).await?;
            updated = true;
        }
        if updated {
            let stored = self.get_rsetting(primary).await?;
            if stored.is_none_or(|r| r.content.trim() != content.trim()) {
                return Err(MailcowError::NotApplied {
                    what: "the settings rule reads back with other content",
                });
            }
        }
        let duplicates: Vec<RsettingId> = ours.iter().skip(1).map(|r| r.id).collect();
        if !duplicates.is_empty() {
            warn!(rule_id = primary.0, duplicates = duplicates.len(), "duplicate settings rules");
        }
        info!(rule_id = primary.0, created, updated, "settings rule upserted");
        Ok(RsettingUpsert { id: primary, created, updated, duplicates })
    }

    async fn rules_described(&self, desc: &str) -> Result<Vec<Rsetting>, MailcowError> {
        let mut rules: Vec<Rsetting> =
            self.list_rsettings().await?.into_iter().filter(|r| r.desc == desc).collect();
        rules.sort_by_key(|r| r.id);
        Ok(rules)
    }

    fn suspension(&self) -> MutexGuard<'_, Option<(Instant, Suspension)>> {
        self.suspended.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an auth failure found in a 200 reply, so later calls fail fast too.
    fn checked<T>(&self, result: Result<T, MailcowError>) -> Result<T, MailcowError> {
        if let Err(err) = &result {
            self.note_auth_failure(err);
        }
        result
    }

    fn note_auth_failure(&self, err: &MailcowError) {
        let suspension = match err {
            MailcowError::Unauthorized { cause } => Suspension::Unauthorized(cause.clone()),
            MailcowError::Forbidden => Suspension::Forbidden,
            _ => return,
        };
        warn!(
            error_kind = err.kind(),
            suspend_secs = self.auth_suspend.as_secs(),
            "mailcow refused the credentials, calls suspended"
        );
        *self.suspension() = Some((Instant::now(), suspension));
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        mode: RetryMode,
    ) -> Result<Vec<u8>, MailcowError> {
        let suspended = self
            .suspension()
            .as_ref()
            .filter(|(since, _)| since.elapsed() < self.auth_suspend)
            .map(|(_, suspension)| suspension.error());
        if let Some(err) = suspended {
            debug!(route = path, "mailcow call skipped, credentials were refused recently");
            return Err(err);
        }
        let url = self
            .base
            .join(path)
            .map_err(|_| MailcowError::InvalidRequest { reason: "cannot build the request URL" })?;
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let result = self.send_once(method.clone(), url.clone(), body).await;
            let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            match result {
                Ok(reply) => {
                    debug!(route = path, attempt, elapsed_ms, "mailcow call");
                    *self.suspension() = None;
                    return Ok(reply);
                }
                Err(err) if err.is_auth() => {
                    self.note_auth_failure(&err);
                    return Err(err);
                }
                Err(err) => {
                    let allowed = match mode {
                        RetryMode::Idempotent => err.is_retryable(),
                        RetryMode::ConnectOnly => matches!(err, MailcowError::Connect { .. }),
                    };
                    if !allowed || attempt >= self.retry.max_attempts {
                        warn!(
                            route = path,
                            attempt,
                            elapsed_ms,
                            error_kind = err.kind(),
                            "mailcow call failed"
                        );
                        return Err(err);
                    }
                    let delay = self.retry.delay(attempt);
                    let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                    warn!(
                        route = path,
                        attempt,
                        elapsed_ms,
                        delay_ms,
                        error_kind = err.kind(),
                        "mailcow call failed, retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    fn http(&self) -> Result<&reqwest::Client, MailcowError> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let built = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mailcow-ses-feedback/", env!("CARGO_PKG_VERSION")))
            .tls_certs_merge(self.extra_roots.iter().cloned())
            .build()
            .map_err(|source| MailcowError::HttpClient { source })?;
        // Two first requests at once may both build one; either client serves.
        Ok(self.http.get_or_init(move || built))
    }

    async fn send_once(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Vec<u8>, MailcowError> {
        let mut request = self
            .http()?
            .request(method, url)
            .header("X-API-Key", self.key.0.clone())
            .header(ACCEPT, "application/json")
            .timeout(self.request_timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let reply = response.bytes().await.map_err(|e| self.transport_error(e))?.to_vec();
        classify_status(status, &reply)?;
        Ok(reply)
    }

    fn transport_error(&self, source: reqwest::Error) -> MailcowError {
        if source.is_builder() {
            MailcowError::InvalidRequest { reason: "the HTTP request could not be built" }
        } else if source.is_connect() {
            MailcowError::Connect { source }
        } else if source.is_timeout() {
            MailcowError::Timeout { timeout: self.request_timeout, source }
        } else {
            MailcowError::ConnectionLost { source }
        }
    }
}

/// Maps a non-2xx status to its error.
fn classify_status(status: StatusCode, reply: &[u8]) -> Result<(), MailcowError> {
    if status.is_success() {
        return Ok(());
    }
    let msg = serde_json::from_slice::<Value>(reply).ok().and_then(|v| match v.get("msg") {
        Some(Value::String(s)) => {
            Some(crate::error::MailcowMsg { key: s.clone(), args: Vec::new() })
        }
        _ => None,
    });
    Err(match status.as_u16() {
        401 => MailcowError::Unauthorized {
            cause: msg.as_ref().and_then(auth_failure_of).unwrap_or(AuthFailure::KeyRejected),
        },
        403 => MailcowError::Forbidden,
        code @ 500..=599 => MailcowError::ServerError { status: code },
        code => MailcowError::UnexpectedStatus { status: code, msg },
    })
}

fn check_desc(desc: &str) -> Result<(), MailcowError> {
    if desc.trim().is_empty() {
        return Err(MailcowError::InvalidRequest { reason: "the rule description is empty" });
    }
    if desc.chars().count() > MAX_DESC_LEN {
        return Err(MailcowError::InvalidRequest {
            reason: "the rule description is longer than 255 characters",
        });
    }
    if desc.chars().any(char::is_control) {
        return Err(MailcowError::InvalidRequest {
            reason: "the rule description holds control characters",
        });
    }
    Ok(())
}

fn check_content(content: &str) -> Result<(), MailcowError> {
    if content.trim().is_empty() {
        return Err(MailcowError::InvalidRequest {
            reason: "the rule content is empty (Mailcow refuses it on add and ignores it on edit)",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_trimmed_validated_and_never_shown() {
        let key = ApiKey::new(" ABC-123-def\n").unwrap();
        assert_eq!(key.0.to_str().unwrap(), "ABC-123-def");
        assert!(key.0.is_sensitive());
        assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
        assert!(ApiKey::new("  ").is_err());
        assert!(ApiKey::new("abc_def").is_err());
        let config = MailcowConfig::new(Url::parse("https://mail.example.org").unwrap(), key);
        assert!(!format!("{config:?}").contains("ABC-123"));
    }

    #[test]
    fn plain_http_is_refused_except_on_loopback() {
        let key = ApiKey::new("K-1").unwrap();
        let build = |url: &str| {
            MailcowClient::new(MailcowConfig::new(Url::parse(url).unwrap(), key.clone()))
        };
        assert!(matches!(build("http://mail.example.org"), Err(ConfigError::InvalidUrl { .. })));
        assert!(matches!(build("ftp://mail.example.org"), Err(ConfigError::InvalidUrl { .. })));
        assert!(build("http://127.0.0.1:8080").is_ok());
        assert!(build("http://[::1]:8080").is_ok());
        assert!(build("http://localhost").is_ok());
        let client = build("https://mail.example.org/mailcow?x=1").unwrap();
        assert_eq!(client.base.as_str(), "https://mail.example.org/mailcow/");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let key = ApiKey::new("K-1").unwrap();
        let mut config = MailcowConfig::new(Url::parse("https://mail.example.org").unwrap(), key);
        config.extra_root_ca_pem = Some(b"not a certificate".to_vec());
        assert!(MailcowClient::new(config).is_err());
    }

    #[test]
    fn the_client_and_its_futures_can_cross_threads() {
        fn assert_send<T: Send>(_: &T) {}
        fn assert_sync<T: Send + Sync>() {}
        assert_sync::<MailcowClient>();
        assert_sync::<MailcowError>();
        let key = ApiKey::new("K-1").unwrap();
        let url = Url::parse("https://mail.example.org").unwrap();
        let client = MailcowClient::new(MailcowConfig::new(url, key)).unwrap();
        let map = crate::render::render_denylist_map(&[]);
        assert_send(&client.push_denylist_map(&map));
        assert_send(&client.upsert_rsetting("d", "priority = 20;"));
    }

    #[test]
    fn backoff_stays_within_the_exponential_cap() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        for _ in 0..200 {
            assert!(policy.delay(1) <= Duration::from_millis(100));
            assert!(policy.delay(2) <= Duration::from_millis(200));
            assert!(policy.delay(3) <= Duration::from_millis(350));
            assert!(policy.delay(30) <= Duration::from_millis(350));
        }
    }

    #[test]
    fn statuses_map_to_their_errors() {
        let ip = br#"{"type":"error","msg":"api access denied for ip 10.0.0.9"}"#;
        assert!(matches!(
            classify_status(StatusCode::UNAUTHORIZED, ip),
            Err(MailcowError::Unauthorized { cause: AuthFailure::IpNotAllowed { .. } })
        ));
        assert!(matches!(
            classify_status(StatusCode::UNAUTHORIZED, b""),
            Err(MailcowError::Unauthorized { cause: AuthFailure::KeyRejected })
        ));
        assert!(matches!(
            classify_status(StatusCode::FORBIDDEN, b""),
            Err(MailcowError::Forbidden)
        ));
        let bad = classify_status(StatusCode::BAD_GATEWAY, b"").unwrap_err();
        assert!(bad.is_retryable());
        let route = br#"{"type":"error","msg":"route not found"}"#;
        let err = classify_status(StatusCode::NOT_FOUND, route).unwrap_err();
        assert!(!err.is_retryable());
        assert_eq!(err.to_string(), "Mailcow answered HTTP 404 (route not found)");
        assert!(classify_status(StatusCode::TOO_MANY_REQUESTS, b"").unwrap_err().is_retryable());
    }
}
