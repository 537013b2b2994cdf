//! Simulator of the SESv2 account-level suppression list, and of the read-only account,
//! identity and configuration-set calls that `suppressions doctor` makes.
//!
//! Owns a loopback HTTP server that answers the restJson1 routes `aws-sdk-sesv2` calls for
//! `PutSuppressedDestination`, `GetSuppressedDestination`, `ListSuppressedDestinations` and
//! `DeleteSuppressedDestination`, with the behaviour of the real service that adapters must cope
//! with: addresses match exactly (no case folding), a missing address is a 404
//! `NotFoundException`, listing is paged with an opaque `NextToken`, and the account-wide limit of
//! one request per second is answered with 429 `TooManyRequestsException`. Errors carry the code
//! in the `x-amzn-ErrorType` header and in the body's `__type`, so the SDK maps them to its typed
//! errors.
//!
//! It also answers `GetAccount`, `GetEmailIdentity` and `GetConfigurationSetEventDestinations`
//! from state the test sets ([`Account`], [`Identity`], [`EventDestination`]): an identity or
//! configuration set that was never set is a 404 `NotFoundException`, as in SES. These count
//! as requests and are throttled like the rest, but have no counter of their own.
//!
//! Tests in the same process drive it through [`Handle`] (seed and read entries, count requests,
//! change the throttle, inject 500s, set the account, identities and event destinations). The `ses-suppression-sim` binary offers the same controls
//! over HTTP; these routes are neither counted nor throttled:
//!
//! | route | effect |
//! |---|---|
//! | `GET /_sim/entries` | every entry, as JSON |
//! | `POST /_sim/entries` | seed one entry (`{"email_address","reason","last_update_time"?,...}`) |
//! | `DELETE /_sim/entries` | remove every entry |
//! | `GET /_sim/stats` | request counters ([`Stats`]) |
//! | `POST /_sim/reset` | remove entries, zero counters, cancel injected failures |
//! | `PUT /_sim/throttle` | `{"interval_ms": 1000, "burst": 1}`; `{"interval_ms": null}` turns it off |
//! | `PUT /_sim/fail-next` | `{"count": n}`: the next n API requests get a 500 |
//! | `PUT /_sim/account` | replace the account ([`Account`] as JSON) |
//! | `PUT /_sim/identities` | add or replace an identity ([`Identity`] as JSON) |
//! | `PUT /_sim/configuration-sets/{name}/event-destinations` | set a configuration set's destinations (a JSON array of [`EventDestination`]) |
//!
//! `POST /_sim/reset` also forgets identities and configuration sets and restores the default
//! account.
//!
//! It depends on nothing of the project (only axum, serde and chrono) and is never linked into a
//! Lambda function.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Largest `PageSize` the simulator accepts; also the page size when the request names none.
pub const MAX_PAGE_SIZE: usize = 1000;

/// Prefix of every `NextToken` the simulator hands out; anything else is an invalid token.
const TOKEN_PREFIX: &str = "simtoken-";

/// Why SES put an address on the account list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// A hard bounce.
    Bounce,
    /// A complaint.
    Complaint,
}

impl Reason {
    /// The wire value: `BOUNCE` or `COMPLAINT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bounce => "BOUNCE",
            Self::Complaint => "COMPLAINT",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "BOUNCE" => Some(Self::Bounce),
            "COMPLAINT" => Some(Self::Complaint),
            _ => None,
        }
    }
}

/// One address on the simulated list, exactly as SES would store it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The address as it was put (matching is exact, case included).
    pub email_address: String,
    /// Why it is listed.
    pub reason: Reason,
    /// When it was added or last updated; kept to the millisecond, as SES does.
    #[serde(default = "Utc::now")]
    pub last_update_time: DateTime<Utc>,
    /// `Attributes.MessageId`: set when SES itself listed the address after a send.
    #[serde(default)]
    pub message_id: Option<String>,
    /// `Attributes.FeedbackId`: set when SES itself listed the address after feedback.
    #[serde(default)]
    pub feedback_id: Option<String>,
}

impl Entry {
    /// An entry updated now, without attributes (what `PutSuppressedDestination` creates).
    pub fn new(email_address: impl Into<String>, reason: Reason) -> Self {
        Self {
            email_address: email_address.into(),
            reason,
            last_update_time: Utc::now().trunc_subsecs(3),
            message_id: None,
            feedback_id: None,
        }
    }
}

/// A token bucket: `burst` requests at once, refilled at one request per `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Time to earn one request back.
    pub interval: Duration,
    /// Requests that may arrive back to back after a quiet period (at least 1).
    pub burst: u32,
}

impl Throttle {
    /// One request per `interval`, no burst: the SES account limit when `interval` is 1 s.
    pub const fn every(interval: Duration) -> Self {
        Self { interval, burst: 1 }
    }
}

/// How a simulator starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Request throttle; `None` accepts every request.
    pub throttle: Option<Throttle>,
}

impl Config {
    /// A simulator that never throttles.
    pub fn unthrottled() -> Self {
        Self { throttle: None }
    }
}

impl Default for Config {
    /// One request per second, as SES enforces for every call except sending.
    fn default() -> Self {
        Self { throttle: Some(Throttle::every(Duration::from_secs(1))) }
    }
}

/// Counters of the SES API requests the simulator received (control routes excluded).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Every API request, whatever its outcome.
    pub requests: u64,
    /// Requests answered 429 `TooManyRequestsException`.
    pub throttled: u64,
    /// Requests answered with an injected 500.
    pub failed: u64,
    /// `PutSuppressedDestination` requests.
    pub put: u64,
    /// `GetSuppressedDestination` requests.
    pub get: u64,
    /// `ListSuppressedDestinations` requests.
    pub list: u64,
    /// `DeleteSuppressedDestination` requests.
    pub delete: u64,
}

/// The account as `GetAccount` reports it. The default is a new account: in the sandbox
/// (200 messages a day, 1 per second), sending enabled, healthy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// `ProductionAccessEnabled`: false while the account is in the sandbox.
    pub production_access_enabled: bool,
    /// `SendingEnabled`: false when sending is paused for the account.
    pub sending_enabled: bool,
    /// `EnforcementStatus`: `HEALTHY`, `PROBATION` or `SHUTDOWN`.
    pub enforcement_status: String,
    /// `SendQuota.Max24HourSend`.
    pub max_24_hour_send: f64,
    /// `SendQuota.MaxSendRate` (messages per second).
    pub max_send_rate: f64,
    /// `SendQuota.SentLast24Hours`.
    pub sent_last_24_hours: f64,
    /// `Details.ReviewDetails.Status` of a production access request: `PENDING`, `FAILED`,
    /// `GRANTED` or `DENIED`; `None` leaves `Details` out, as for an account that never asked.
    #[serde(default)]
    pub review_status: Option<String>,
}

impl Default for Account {
    fn default() -> Self {
        Self {
            production_access_enabled: false,
            sending_enabled: true,
            enforcement_status: "HEALTHY".into(),
            max_24_hour_send: 200.0,
            max_send_rate: 1.0,
            sent_last_24_hours: 0.0,
            review_status: None,
        }
    }
}

/// A sending identity as `GetEmailIdentity` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The domain or address, exactly as it was created (the lookup is exact).
    pub name: String,
    /// `IdentityType`: `DOMAIN` or `EMAIL_ADDRESS`.
    pub identity_type: String,
    /// `VerifiedForSendingStatus`.
    pub verified_for_sending: bool,
    /// `VerificationStatus`: `PENDING`, `SUCCESS`, `FAILED`, `TEMPORARY_FAILURE` or `NOT_STARTED`.
    pub verification_status: String,
    /// `DkimAttributes.Status`.
    pub dkim_status: String,
    /// `DkimAttributes.SigningEnabled`.
    pub dkim_signing_enabled: bool,
    /// `DkimAttributes.Tokens`: the Easy DKIM selectors (three for a domain).
    #[serde(default)]
    pub dkim_tokens: Vec<String>,
    /// `MailFromAttributes.MailFromDomain`; `None` leaves `MailFromAttributes` out.
    #[serde(default)]
    pub mail_from_domain: Option<String>,
    /// `MailFromAttributes.MailFromDomainStatus`: `PENDING`, `SUCCESS`, `FAILED` or
    /// `TEMPORARY_FAILURE`.
    #[serde(default)]
    pub mail_from_status: Option<String>,
    /// `ConfigurationSetName`: the identity's default configuration set.
    #[serde(default)]
    pub configuration_set: Option<String>,
}

impl Identity {
    /// A domain identity, verified, with Easy DKIM signing under these tokens and nothing else
    /// set.
    pub fn verified_domain(name: impl Into<String>, dkim_tokens: &[&str]) -> Self {
        Self {
            name: name.into(),
            identity_type: "DOMAIN".into(),
            verified_for_sending: true,
            verification_status: "SUCCESS".into(),
            dkim_status: "SUCCESS".into(),
            dkim_signing_enabled: true,
            dkim_tokens: dkim_tokens.iter().map(|t| (*t).to_owned()).collect(),
            mail_from_domain: None,
            mail_from_status: None,
            configuration_set: None,
        }
    }
}

/// One event destination of a configuration set (SNS destinations only carry a target here;
/// others are reported with their name, switch and event types alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDestination {
    /// `Name`.
    pub name: String,
    /// `Enabled`.
    pub enabled: bool,
    /// `MatchingEventTypes`: `SEND`, `REJECT`, `BOUNCE`, `COMPLAINT`, `DELIVERY`, ...
    pub matching_event_types: Vec<String>,
    /// `SnsDestination.TopicArn`.
    #[serde(default)]
    pub sns_topic_arn: Option<String>,
}

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct Handle {
    addr: SocketAddr,
    url: String,
    shared: Shared,
    task: JoinHandle<()>,
}

impl Handle {
    /// The endpoint URL to give the SDK (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The socket the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds or replaces an entry, as if SES had listed the address.
    pub fn seed(&self, entry: Entry) {
        self.shared.seed(entry);
    }

    /// Every entry, ordered by address.
    pub fn entries(&self) -> Vec<Entry> {
        self.shared.lock().entries.values().cloned().collect()
    }

    /// The entry stored under exactly this address.
    pub fn entry(&self, email_address: &str) -> Option<Entry> {
        self.shared.lock().entries.get(email_address).cloned()
    }

    /// The request counters so far.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// Sets the counters back to zero.
    pub fn reset_stats(&self) {
        self.shared.lock().stats = Stats::default();
    }

    /// Replaces the throttle (a full bucket); `None` or a zero interval turns it off.
    pub fn set_throttle(&self, throttle: Option<Throttle>) {
        self.shared.lock().bucket = Bucket::for_throttle(throttle);
    }

    /// Answers the next `count` API requests with 500 `InternalFailure` (replaces any count
    /// still pending). Throttled requests do not use up the count.
    pub fn fail_next(&self, count: u32) {
        self.shared.lock().fail_next = count;
    }

    /// Replaces what `GetAccount` reports.
    pub fn set_account(&self, account: Account) {
        self.shared.lock().account = account;
    }

    /// Adds or replaces an identity for `GetEmailIdentity`.
    pub fn put_identity(&self, identity: Identity) {
        self.shared.lock().identities.insert(identity.name.clone(), identity);
    }

    /// Creates or replaces a configuration set with these event destinations.
    pub fn put_event_destinations(
        &self,
        configuration_set: &str,
        destinations: Vec<EventDestination>,
    ) {
        self.shared.lock().configuration_sets.insert(configuration_set.to_owned(), destinations);
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a simulator on `127.0.0.1` with an OS-chosen port.
///
/// Fails when no loopback port can be bound.
pub async fn spawn(config: Config) -> std::io::Result<Handle> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let shared = Shared::new(&config);
    let app = router(shared.clone());
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "sesv2 simulator stopped");
        }
    });
    Ok(Handle { addr, url: format!("http://{addr}"), shared, task })
}

/// Serves the simulator on `listener` until the future is dropped.
///
/// Fails when accepting connections fails.
pub async fn serve(listener: TcpListener, config: Config) -> std::io::Result<()> {
    axum::serve(listener, router(Shared::new(&config))).await
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/v2/email/suppression/addresses", put(put_destination).get(list_destinations))
        .route(
            "/v2/email/suppression/addresses/{email_address}",
            get(get_destination).delete(delete_destination),
        )
        .route("/v2/email/account", get(get_account))
        .route("/v2/email/identities/{email_identity}", get(get_identity))
        .route(
            "/v2/email/configuration-sets/{name}/event-destinations",
            get(get_event_destinations),
        )
        .route("/_sim/entries", get(control_entries).post(control_seed).delete(control_clear))
        .route("/_sim/stats", get(control_stats))
        .route("/_sim/reset", post(control_reset))
        .route("/_sim/throttle", put(control_throttle))
        .route("/_sim/fail-next", put(control_fail_next))
        .route("/_sim/account", put(control_account))
        .route("/_sim/identities", put(control_identity))
        .route(
            "/_sim/configuration-sets/{name}/event-destinations",
            put(control_event_destinations),
        )
        .fallback(unknown_route)
        .with_state(shared)
}

#[derive(Debug)]
struct Inner {
    entries: BTreeMap<String, Entry>,
    bucket: Option<Bucket>,
    fail_next: u32,
    stats: Stats,
    account: Account,
    identities: BTreeMap<String, Identity>,
    configuration_sets: BTreeMap<String, Vec<EventDestination>>,
}

#[derive(Debug, Clone)]
struct Shared(Arc<Mutex<Inner>>);

impl Shared {
    fn new(config: &Config) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            entries: BTreeMap::new(),
            bucket: Bucket::for_throttle(config.throttle),
            fail_next: 0,
            stats: Stats::default(),
            account: Account::default(),
            identities: BTreeMap::new(),
            configuration_sets: BTreeMap::new(),
        })))
    }

    fn seed(&self, mut entry: Entry) {
        entry.last_update_time = entry.last_update_time.trunc_subsecs(3);
        self.lock().entries.insert(entry.email_address.clone(), entry);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map half-written, so keep serving.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts the request, then applies the throttle and any injected failure.
    fn admit(&self, operation: Operation) -> Result<(), ApiError> {
        let mut inner = self.lock();
        inner.stats.requests += 1;
        match operation {
            Operation::Put => inner.stats.put += 1,
            Operation::Get => inner.stats.get += 1,
            Operation::List => inner.stats.list += 1,
            Operation::Delete => inner.stats.delete += 1,
            Operation::Read => {}
        }
        if let Some(bucket) = inner.bucket.as_mut()
            && !bucket.try_take(Instant::now())
        {
            inner.stats.throttled += 1;
            return Err(ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "TooManyRequestsException",
                message: "Too many requests have been made to the operation.",
            });
        }
        if inner.fail_next > 0 {
            inner.fail_next -= 1;
            inner.stats.failed += 1;
            return Err(ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "InternalFailure",
                message: "The request processing has failed because of an unknown error.",
            });
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum Operation {
    Put,
    Get,
    List,
    Delete,
    /// Account, identity and configuration-set reads: counted in `requests` only.
    Read,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    throttle: Throttle,
    /// When the bucket will be full again if nothing more is taken (the "theoretical arrival
    /// time" of the generic cell rate algorithm). Exact arithmetic on instants, no float drift.
    full_at: Instant,
}

impl Bucket {
    fn for_throttle(throttle: Option<Throttle>) -> Option<Self> {
        let throttle = throttle.filter(|t| !t.interval.is_zero())?;
        Some(Self { throttle, full_at: Instant::now() })
    }

    /// Takes one token if there is one; a refused request takes nothing.
    fn try_take(&mut self, now: Instant) -> bool {
        let burst_allowance = self.throttle.interval * (self.throttle.burst.max(1) - 1);
        let full_at = self.full_at.max(now);
        if full_at.saturating_duration_since(now) > burst_allowance {
            return false;
        }
        self.full_at = full_at + self.throttle.interval;
        true
    }
}

/// An error answer as SES sends it: the code in `x-amzn-ErrorType` (with the service namespace
/// suffix that the SDK strips) and in the body's `__type`, the text in `message`.
#[derive(Debug, Clone, Copy)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "__type": self.code, "message": self.message });
        let mut response = (self.status, Json(body)).into_response();
        let header = format!("{}:http://internal.amazon.com/coral/com.amazonaws.sesv2/", self.code);
        if let Ok(value) = HeaderValue::from_str(&header) {
            response.headers_mut().insert("x-amzn-ErrorType", value);
        }
        response
    }
}

fn bad_request(message: &'static str) -> ApiError {
    ApiError { status: StatusCode::BAD_REQUEST, code: "BadRequestException", message }
}

fn not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "NotFoundException",
        message: "The email address is not on the suppression list for your account.",
    }
}

fn invalid_token() -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "InvalidNextTokenException",
        message: "The NextToken is not valid.",
    }
}

fn empty_ok() -> Response {
    (StatusCode::OK, Json(json!({}))).into_response()
}

/// Epoch seconds, as a JSON number (restJson1 timestamps in bodies).
fn epoch_seconds(at: DateTime<Utc>) -> Value {
    match at.timestamp_subsec_millis() {
        0 => json!(at.timestamp()),
        millis => json!(at.timestamp() as f64 + f64::from(millis) / 1000.0),
    }
}

/// What SES checks before listing an address: one `@` with something on both sides.
fn plausible_address(raw: &str) -> bool {
    let mut parts = raw.split('@');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty()
    ) && raw.len() <= 320
        && !raw.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutBody {
    email_address: Option<String>,
    reason: Option<String>,
}

async fn put_destination(State(shared): State<Shared>, body: Bytes) -> Result<Response, ApiError> {
    shared.admit(Operation::Put)?;
    let body = serde_json::from_slice::<PutBody>(&body)
        .map_err(|_| bad_request("The request body is not valid JSON."))?;
    let address = body
        .email_address
        .filter(|a| plausible_address(a))
        .ok_or(bad_request("EmailAddress is missing or not a valid email address."))?;
    let reason = body
        .reason
        .as_deref()
        .and_then(Reason::parse)
        .ok_or(bad_request("Reason must be BOUNCE or COMPLAINT."))?;
    // A put replaces an existing entry: new reason, new time, no attributes.
    shared.lock().entries.insert(address.clone(), Entry::new(address, reason));
    Ok(empty_ok())
}

async fn get_destination(
    State(shared): State<Shared>,
    Path(address): Path<String>,
) -> Result<Response, ApiError> {
    shared.admit(Operation::Get)?;
    let entry = shared.lock().entries.get(&address).cloned().ok_or_else(not_found)?;
    let mut attributes = Map::new();
    if let Some(message_id) = entry.message_id {
        attributes.insert("MessageId".into(), Value::String(message_id));
    }
    if let Some(feedback_id) = entry.feedback_id {
        attributes.insert("FeedbackId".into(), Value::String(feedback_id));
    }
    let body = json!({
        "SuppressedDestination": {
            "EmailAddress": entry.email_address,
            "Reason": entry.reason.as_str(),
            "LastUpdateTime": epoch_seconds(entry.last_update_time),
            "Attributes": attributes,
        }
    });
    Ok((StatusCode::OK, Json(body)).into_response())
}

async fn delete_destination(
    State(shared): State<Shared>,
    Path(address): Path<String>,
) -> Result<Response, ApiError> {
    shared.admit(Operation::Delete)?;
    shared.lock().entries.remove(&address).map(|_| empty_ok()).ok_or_else(not_found)
}

/// The parsed query of a list request.
struct ListQuery {
    reasons: BTreeSet<&'static str>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    after: Option<String>,
    page_size: usize,
}

impl ListQuery {
    fn parse(pairs: Vec<(String, String)>) -> Result<Self, ApiError> {
        let mut query = Self {
            reasons: BTreeSet::new(),
            start: None,
            end: None,
            after: None,
            page_size: MAX_PAGE_SIZE,
        };
        for (key, value) in pairs {
            match key.as_str() {
                "Reason" => match Reason::parse(&value) {
                    Some(reason) => {
                        query.reasons.insert(reason.as_str());
                    }
                    None => return Err(bad_request("Reason must be BOUNCE or COMPLAINT.")),
                },
                "StartDate" => query.start = Some(parse_date(&value)?),
                "EndDate" => query.end = Some(parse_date(&value)?),
                "NextToken" => query.after = Some(decode_token(&value)?),
                "PageSize" => {
                    query.page_size = value
                        .parse::<usize>()
                        .ok()
                        .filter(|size| (1..=MAX_PAGE_SIZE).contains(size))
                        .ok_or_else(|| bad_request("PageSize must be between 1 and 1000."))?;
                }
                _ => {}
            }
        }
        Ok(query)
    }

    fn matches(&self, entry: &Entry) -> bool {
        (self.reasons.is_empty() || self.reasons.contains(entry.reason.as_str()))
            && self.start.is_none_or(|start| entry.last_update_time >= start)
            && self.end.is_none_or(|end| entry.last_update_time <= end)
    }
}

/// The SDK sends query timestamps as RFC 3339; other clients may send epoch seconds.
fn parse_date(raw: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(at.with_timezone(&Utc));
    }
    raw.parse::<f64>()
        .ok()
        .filter(|secs| secs.is_finite())
        .and_then(|secs| DateTime::from_timestamp_millis((secs * 1000.0) as i64))
        .ok_or_else(|| bad_request("StartDate and EndDate must be timestamps."))
}

fn encode_token(after: &str) -> String {
    let mut token = String::from(TOKEN_PREFIX);
    for byte in after.bytes() {
        token.push_str(&format!("{byte:02x}"));
    }
    token
}

fn decode_token(token: &str) -> Result<String, ApiError> {
    let hex = token.strip_prefix(TOKEN_PREFIX).ok_or_else(invalid_token)?;
    if hex.is_empty() || hex.len() % 2 != 0 {
        return Err(invalid_token());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid_token)?;
    String::from_utf8(bytes).map_err(|_| invalid_token())
}

async fn list_destinations(
    State(shared): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    shared.admit(Operation::List)?;
    let query = ListQuery::parse(pairs)?;
    let inner = shared.lock();
    let lower = match &query.after {
        Some(after) => Bound::Excluded(after.clone()),
        None => Bound::Unbounded,
    };
    let mut matching = inner
        .entries
        .range((lower, Bound::Unbounded))
        .map(|(_, entry)| entry)
        .filter(|entry| query.matches(entry));
    let page: Vec<&Entry> = matching.by_ref().take(query.page_size).collect();
    let more = matching.next().is_some();
    let summaries: Vec<Value> = page
        .iter()
        .map(|entry| {
            json!({
                "EmailAddress": entry.email_address,
                "Reason": entry.reason.as_str(),
                "LastUpdateTime": epoch_seconds(entry.last_update_time),
            })
        })
        .collect();
    let mut body = json!({ "SuppressedDestinationSummaries": summaries });
    if let (true, Some(last)) = (more, page.last()) {
        body["NextToken"] = Value::String(encode_token(&last.email_address));
    }
    Ok((StatusCode::OK, Json(body)).into_response())
}

async fn get_account(State(shared): State<Shared>) -> Result<Response, ApiError> {
    shared.admit(Operation::Read)?;
    let account = shared.lock().account.clone();
    let mut body = json!({
        "DedicatedIpAutoWarmupEnabled": false,
        "EnforcementStatus": account.enforcement_status,
        "ProductionAccessEnabled": account.production_access_enabled,
        "SendingEnabled": account.sending_enabled,
        "SendQuota": {
            "Max24HourSend": account.max_24_hour_send,
            "MaxSendRate": account.max_send_rate,
            "SentLast24Hours": account.sent_last_24_hours,
        },
        "SuppressionAttributes": { "SuppressedReasons": ["BOUNCE", "COMPLAINT"] },
    });
    if let Some(status) = account.review_status {
        body["Details"] = json!({
            "MailType": "TRANSACTIONAL",
            "WebsiteURL": "https://www.example.com",
            "ContactLanguage": "EN",
            "UseCaseDescription": "Transactional mail relayed by a Mailcow server.",
            "AdditionalContactEmailAddresses": [],
            "ReviewDetails": { "Status": status, "CaseId": "sim-case-1" },
        });
    }
    Ok((StatusCode::OK, Json(body)).into_response())
}

fn identity_not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "NotFoundException",
        message: "The identity does not exist.",
    }
}

async fn get_identity(
    State(shared): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    shared.admit(Operation::Read)?;
    let identity = shared.lock().identities.get(&name).cloned().ok_or_else(identity_not_found)?;
    let mut body = json!({
        "IdentityType": identity.identity_type,
        "FeedbackForwardingStatus": false,
        "VerifiedForSendingStatus": identity.verified_for_sending,
        "VerificationStatus": identity.verification_status,
        "DkimAttributes": {
            "SigningEnabled": identity.dkim_signing_enabled,
            "Status": identity.dkim_status,
            "Tokens": identity.dkim_tokens,
            "SigningAttributesOrigin": "AWS_SES",
            "NextSigningKeyLength": "RSA_2048_BIT",
            "CurrentSigningKeyLength": "RSA_2048_BIT",
        },
        "Policies": {},
        "Tags": [],
    });
    if let Some(domain) = identity.mail_from_domain {
        body["MailFromAttributes"] = json!({
            "MailFromDomain": domain,
            "MailFromDomainStatus": identity.mail_from_status.unwrap_or_else(|| "PENDING".into()),
            "BehaviorOnMxFailure": "USE_DEFAULT_VALUE",
        });
    }
    if let Some(set) = identity.configuration_set {
        body["ConfigurationSetName"] = Value::String(set);
    }
    Ok((StatusCode::OK, Json(body)).into_response())
}

async fn get_event_destinations(
    State(shared): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    shared.admit(Operation::Read)?;
    let destinations = shared.lock().configuration_sets.get(&name).cloned().ok_or(ApiError {
        status: StatusCode::NOT_FOUND,
        code: "NotFoundException",
        message: "The configuration set does not exist.",
    })?;
    let destinations: Vec<Value> = destinations
        .into_iter()
        .map(|d| {
            let mut destination = json!({
                "Name": d.name,
                "Enabled": d.enabled,
                "MatchingEventTypes": d.matching_event_types,
            });
            if let Some(topic) = d.sns_topic_arn {
                destination["SnsDestination"] = json!({ "TopicArn": topic });
            }
            destination
        })
        .collect();
    Ok((StatusCode::OK, Json(json!({ "EventDestinations": destinations }))).into_response())
}

async fn unknown_route() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "UnknownOperationException",
        message: "The simulator has no such route.",
    }
}

async fn control_entries(State(shared): State<Shared>) -> Json<Vec<Entry>> {
    Json(shared.lock().entries.values().cloned().collect())
}

async fn control_seed(State(shared): State<Shared>, Json(entry): Json<Entry>) -> StatusCode {
    shared.seed(entry);
    StatusCode::NO_CONTENT
}

async fn control_clear(State(shared): State<Shared>) -> StatusCode {
    shared.lock().entries.clear();
    StatusCode::NO_CONTENT
}

async fn control_stats(State(shared): State<Shared>) -> Json<Stats> {
    Json(shared.lock().stats.clone())
}

async fn control_reset(State(shared): State<Shared>) -> StatusCode {
    let mut inner = shared.lock();
    inner.entries.clear();
    inner.stats = Stats::default();
    inner.fail_next = 0;
    inner.account = Account::default();
    inner.identities.clear();
    inner.configuration_sets.clear();
    StatusCode::NO_CONTENT
}

async fn control_account(State(shared): State<Shared>, Json(account): Json<Account>) -> StatusCode {
    shared.lock().account = account;
    StatusCode::NO_CONTENT
}

async fn control_identity(
    State(shared): State<Shared>,
    Json(identity): Json<Identity>,
) -> StatusCode {
    shared.lock().identities.insert(identity.name.clone(), identity);
    StatusCode::NO_CONTENT
}

async fn control_event_destinations(
    State(shared): State<Shared>,
    Path(name): Path<String>,
    Json(destinations): Json<Vec<EventDestination>>,
) -> StatusCode {
    shared.lock().configuration_sets.insert(name, destinations);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct ThrottleControl {
    interval_ms: Option<u64>,
    #[serde(default = "one")]
    burst: u32,
}

fn one() -> u32 {
    1
}

async fn control_throttle(
    State(shared): State<Shared>,
    Json(control): Json<ThrottleControl>,
) -> StatusCode {
    let throttle = control
        .interval_ms
        .map(|ms| Throttle { interval: Duration::from_millis(ms), burst: control.burst });
    shared.lock().bucket = Bucket::for_throttle(throttle);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct FailControl {
    count: u32,
}

async fn control_fail_next(
    State(shared): State<Shared>,
    Json(control): Json<FailControl>,
) -> StatusCode {
    shared.lock().fail_next = control.count;
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use aws_sdk_sesv2::config::retry::RetryConfig;
    use aws_sdk_sesv2::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_sesv2::types::SuppressionListReason;

    use super::*;

    fn client(sim: &Handle) -> aws_sdk_sesv2::Client {
        let config = aws_sdk_sesv2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-central-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "static"))
            .endpoint_url(sim.url())
            .retry_config(RetryConfig::disabled())
            .build();
        aws_sdk_sesv2::Client::from_conf(config)
    }

    #[tokio::test]
    async fn sdk_sees_a_typed_not_found_for_a_missing_address() {
        let sim = spawn(Config::unthrottled()).await.unwrap();

        let err = client(&sim)
            .get_suppressed_destination()
            .email_address("nobody@example.com")
            .send()
            .await
            .unwrap_err();

        let service = err.into_service_error();
        assert!(service.is_not_found_exception(), "{service:?}");
    }

    #[tokio::test]
    async fn sdk_round_trips_put_get_and_delete_with_exact_matching() {
        let sim = spawn(Config::unthrottled()).await.unwrap();
        let ses = client(&sim);

        ses.put_suppressed_destination()
            .email_address("First+Tag@Example.com")
            .reason(SuppressionListReason::Complaint)
            .send()
            .await
            .unwrap();
        let got = ses
            .get_suppressed_destination()
            .email_address("First+Tag@Example.com")
            .send()
            .await
            .unwrap();
        let lower = ses
            .get_suppressed_destination()
            .email_address("first+tag@example.com")
            .send()
            .await
            .unwrap_err();
        ses.delete_suppressed_destination()
            .email_address("First+Tag@Example.com")
            .send()
            .await
            .unwrap();
        let again = ses
            .delete_suppressed_destination()
            .email_address("First+Tag@Example.com")
            .send()
            .await
            .unwrap_err();

        let destination = got.suppressed_destination().unwrap();
        assert_eq!(destination.email_address(), "First+Tag@Example.com");
        assert_eq!(destination.reason(), &SuppressionListReason::Complaint);
        assert!(destination.last_update_time().secs() > 1_700_000_000);
        assert!(lower.into_service_error().is_not_found_exception());
        assert!(again.into_service_error().is_not_found_exception());
        assert!(sim.entries().is_empty());
    }

    #[tokio::test]
    async fn sdk_reads_seeded_attributes_and_epoch_timestamps() {
        let sim = spawn(Config::unthrottled()).await.unwrap();
        let at = DateTime::from_timestamp_millis(1_733_241_600_250).unwrap();
        sim.seed(Entry {
            email_address: "bounced@example.com".into(),
            reason: Reason::Bounce,
            last_update_time: at,
            message_id: Some("msg-1".into()),
            feedback_id: Some("fb-1".into()),
        });

        let got = client(&sim)
            .get_suppressed_destination()
            .email_address("bounced@example.com")
            .send()
            .await
            .unwrap();

        let destination = got.suppressed_destination().unwrap();
        assert_eq!(destination.last_update_time().to_millis().unwrap(), 1_733_241_600_250);
        let attributes = destination.attributes().unwrap();
        assert_eq!(attributes.message_id(), Some("msg-1"));
        assert_eq!(attributes.feedback_id(), Some("fb-1"));
    }

    #[tokio::test]
    async fn sdk_sees_typed_throttling_bad_request_and_invalid_token_errors() {
        let sim = spawn(Config::unthrottled()).await.unwrap();
        let ses = client(&sim);

        let bad_reason = ses
            .put_suppressed_destination()
            .email_address("x@example.com")
            .reason(SuppressionListReason::from("SPAM"))
            .send()
            .await
            .unwrap_err();
        let bad_token =
            ses.list_suppressed_destinations().next_token("garbage").send().await.unwrap_err();
        sim.set_throttle(Some(Throttle::every(Duration::from_secs(60))));
        ses.list_suppressed_destinations().send().await.unwrap();
        let throttled = ses.list_suppressed_destinations().send().await.unwrap_err();

        assert!(bad_reason.into_service_error().is_bad_request_exception());
        assert!(bad_token.into_service_error().is_invalid_next_token_exception());
        assert!(throttled.into_service_error().is_too_many_requests_exception());
        assert_eq!(sim.stats().throttled, 1);
    }

    #[tokio::test]
    async fn injected_failures_reach_the_sdk_as_500_and_then_stop() {
        let sim = spawn(Config::unthrottled()).await.unwrap();
        let ses = client(&sim);
        sim.fail_next(1);

        let failed = ses.list_suppressed_destinations().send().await.unwrap_err();
        let next = ses.list_suppressed_destinations().send().await;

        assert_eq!(failed.raw_response().unwrap().status().as_u16(), 500);
        assert!(next.is_ok());
        let stats = sim.stats();
        assert_eq!((stats.requests, stats.failed, stats.list), (2, 1, 2));
    }

    #[tokio::test]
    async fn sdk_pages_filter_by_reason_and_date() {
        let sim = spawn(Config::unthrottled()).await.unwrap();
        let early = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let late = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        for i in 0..5 {
            let mut entry = Entry::new(format!("b{i}@example.com"), Reason::Bounce);
            entry.last_update_time = if i < 2 { early } else { late };
            sim.seed(entry);
        }
        sim.seed(Entry::new("c@example.com", Reason::Complaint));
        let ses = client(&sim);

        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let page = ses
                .list_suppressed_destinations()
                .reasons(SuppressionListReason::Bounce)
                .start_date(aws_sdk_sesv2::primitives::DateTime::from_secs(1_750_000_000))
                .page_size(2)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            seen.extend(
                page.suppressed_destination_summaries()
                    .iter()
                    .map(|s| s.email_address().to_owned()),
            );
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }

        assert_eq!(seen, ["b2@example.com", "b3@example.com", "b4@example.com"]);
    }

    #[tokio::test]
    async fn sdk_reads_the_account_sandbox_by_default_then_as_set() {
        let sim = spawn(Config::unthrottled()).await.unwrap();
        let ses = client(&sim);

        let fresh = ses.get_account().send().await.unwrap();
        sim.set_account(Account {
            production_access_enabled: true,
            enforcement_status: "PROBATION".into(),
            max_24_hour_send: 50_000.0,
            max_send_rate: 14.0,
            sent_last_24_hours: 1234.0,
            review_status: Some("GRANTED".into()),
            ..Account::default()
        });
        let set = ses.get_account().send().await.unwrap();

        assert!(!fresh.production_access_enabled());
        assert!(fresh.sending_enabled());
        assert_eq!(fresh.enforcement_status(), Some("HEALTHY"));
        assert_eq!(fresh.send_quota().unwrap().max24_hour_send(), 200.0);
        assert!(fresh.details().is_none());
        assert!(set.production_access_enabled());
        assert_eq!(set.enforcement_status(), Some("PROBATION"));
        let quota = set.send_quota().unwrap();
        assert_eq!(
            (quota.max24_hour_send(), quota.max_send_rate(), quota.sent_last24_hours()),
            (50_000.0, 14.0, 1234.0)
        );
        let review = set.details().and_then(|d| d.review_details()).unwrap();
        assert_eq!(review.status().map(|s| s.as_str()), Some("GRANTED"));
    }

    #[tokio::test]
    async fn sdk_reads_an_identity_with_dkim_tokens_mail_from_and_default_set() {
        let sim = spawn(Config::unthrottled()).await.unwrap();
        let mut identity = Identity::verified_domain("example.org", &["tok1", "tok2", "tok3"]);
        identity.mail_from_domain = Some("bounce.example.org".into());
        identity.mail_from_status = Some("SUCCESS".into());
        identity.configuration_set = Some("feedback".into());
        sim.put_identity(identity);
        let ses = client(&sim);

        let got = ses.get_email_identity().email_identity("example.org").send().await.unwrap();
        let missing =
            ses.get_email_identity().email_identity("Example.org").send().await.unwrap_err();

        assert!(got.verified_for_sending_status());
        assert_eq!(got.identity_type().map(|t| t.as_str()), Some("DOMAIN"));
        assert_eq!(got.verification_status().map(|s| s.as_str()), Some("SUCCESS"));
        let dkim = got.dkim_attributes().unwrap();
        assert_eq!(dkim.tokens(), ["tok1", "tok2", "tok3"]);
        assert!(dkim.signing_enabled());
        assert_eq!(dkim.status().map(|s| s.as_str()), Some("SUCCESS"));
        let mail_from = got.mail_from_attributes().unwrap();
        assert_eq!(mail_from.mail_from_domain(), "bounce.example.org");
        assert_eq!(mail_from.mail_from_domain_status().as_str(), "SUCCESS");
        assert_eq!(got.configuration_set_name(), Some("feedback"));
        assert!(missing.into_service_error().is_not_found_exception());
    }

    #[tokio::test]
    async fn sdk_reads_event_destinations_and_a_missing_set_is_not_found() {
        let sim = spawn(Config::unthrottled()).await.unwrap();
        sim.put_event_destinations(
            "feedback",
            vec![
                EventDestination {
                    name: "to-sns".into(),
                    enabled: true,
                    matching_event_types: vec!["BOUNCE".into(), "COMPLAINT".into()],
                    sns_topic_arn: Some("arn:aws:sns:eu-central-1:123456789012:fb".into()),
                },
                EventDestination {
                    name: "metrics".into(),
                    enabled: false,
                    matching_event_types: vec!["SEND".into()],
                    sns_topic_arn: None,
                },
            ],
        );
        let ses = client(&sim);

        let got = ses
            .get_configuration_set_event_destinations()
            .configuration_set_name("feedback")
            .send()
            .await
            .unwrap();
        let missing = ses
            .get_configuration_set_event_destinations()
            .configuration_set_name("other")
            .send()
            .await
            .unwrap_err();

        let destinations = got.event_destinations();
        assert_eq!(destinations.len(), 2);
        assert_eq!(destinations[0].name(), "to-sns");
        assert!(destinations[0].enabled());
        let types: Vec<&str> =
            destinations[0].matching_event_types().iter().map(|t| t.as_str()).collect();
        assert_eq!(types, ["BOUNCE", "COMPLAINT"]);
        assert_eq!(
            destinations[0].sns_destination().map(|s| s.topic_arn()),
            Some("arn:aws:sns:eu-central-1:123456789012:fb")
        );
        assert!(!destinations[1].enabled());
        assert!(destinations[1].sns_destination().is_none());
        assert!(missing.into_service_error().is_not_found_exception());
        assert_eq!(sim.stats().requests, 2);
    }

    #[test]
    fn bucket_refuses_until_an_interval_has_passed_and_refused_requests_cost_nothing() {
        let start = Instant::now();
        let mut bucket =
            Bucket { throttle: Throttle::every(Duration::from_millis(100)), full_at: start };

        assert!(bucket.try_take(start));
        assert!(!bucket.try_take(start + Duration::from_millis(50)));
        assert!(!bucket.try_take(start + Duration::from_millis(90)));
        assert!(bucket.try_take(start + Duration::from_millis(100)));
        assert!(!bucket.try_take(start + Duration::from_millis(150)));
    }

    #[test]
    fn bucket_allows_a_burst_after_a_quiet_period_but_never_more() {
        let start = Instant::now();
        let mut bucket = Bucket {
            throttle: Throttle { interval: Duration::from_millis(100), burst: 2 },
            full_at: start,
        };
        let later = start + Duration::from_secs(10);

        assert!(bucket.try_take(later));
        assert!(bucket.try_take(later));
        assert!(!bucket.try_take(later));
    }

    #[test]
    fn next_tokens_round_trip_and_foreign_tokens_are_rejected() {
        let token = encode_token("Ä@example.com");

        assert_eq!(decode_token(&token).unwrap(), "Ä@example.com");
        assert!(decode_token("simtoken-zz").is_err());
        assert!(decode_token("simtoken-").is_err());
        assert!(decode_token("AAAA").is_err());
    }

    #[test]
    fn zero_interval_means_no_throttle() {
        assert!(Bucket::for_throttle(Some(Throttle::every(Duration::ZERO))).is_none());
        assert!(Bucket::for_throttle(None).is_none());
    }
}
