//! Simulator of the Mailcow REST API routes the project writes, with Rspamd's view of the result.
//!
//! Owns a loopback HTTP server that answers like `data/web/json_api.php` of mailcow-dockerized
//! (see `shared/research/mailcow-api.md`), for the routes the sync uses:
//!
//! * `POST /api/v1/edit/rspamd-map`: whole-file replace of a global map with
//!   `trim(rspamd_map_data)` plus a newline, answered `["object_modified", map]`. An omitted field
//!   empties the map; an unknown map name is `danger` `["global_map_invalid", map]`; a known map
//!   whose file is missing writes nothing and answers the generic
//!   `{"type":"success","msg":"Task completed"}`.
//! * `GET /api/v1/get/rsetting/all`: every settings rule as `[{"id","desc","content","active"}]`,
//!   or `{}` when there is none. `GET /api/v1/get/rsetting/{id}`: one rule, or `{}`.
//! * `POST /api/v1/add/rsetting`: inserts a rule on every call (no duplicate check) and answers
//!   `settings_map_added` without an id; empty content is `danger` `map_content_empty`.
//! * `POST /api/v1/edit/rsetting`: replaces the given fields of each id (empty content keeps the
//!   old one; content is trimmed), `["object_modified", id]`; an unknown id is `danger`
//!   `["settings_map_invalid", id]`.
//! * `POST /api/v1/delete/rsetting`: removes each id, always `["settings_map_removed", id]`.
//!
//! Request handling follows Mailcow's order: a `Sec-Fetch-Dest` other than `empty` is a bare 403;
//! an `X-API-Key` (stripped to `[A-Za-z0-9-]`) that matches no key is 401 `authentication failed`,
//! a known key from a refused IP is 401 `api access denied for ip X`; without any key a GET
//! answers 200 with an empty body, an add answers `danger` `access_denied`, and an edit or delete
//! answers 403. A read-only key on add/edit/delete is 403 `API read/write access denied`. Then a
//! body that is not JSON is 400, a body without a JSON content type is 200 `Cannot find attributes
//! in post data`, a wrong method is 405, an unknown category is 404 `route not found`. Write
//! replies are 200 for success and failure alike. Ten 401s within 600 s ban the caller, as
//! Mailcow's fail2ban does; a banned caller's requests are never answered.
//!
//! Tests drive it through [`MailcowSim`]: inject faults ([`Fault`]: 500, slow, `danger` reply,
//! invalid JSON, connection reset; for the next N requests, optionally on one route), read the
//! stored map and rules, count requests per route, and ask [`MailcowSim::would_reject`] whether
//! Rspamd would reject mail to an address, which applies the stored denylist lines and settings
//! rules as Rspamd does (module [`rspamd`]). The same controls exist over HTTP for the demo:
//!
//! * `POST /sim/fault` arms a fault: `{"fault": "server_error" | "slow" | "danger" |
//!   "invalid_json" | "connection_reset", "millis"?, "times"?, "route"?}`;
//!   `DELETE /sim/fault` disarms it.
//! * `GET /sim/state`: maps, rules, request counts, ban state.
//! * `GET /sim/would-reject?rcpt=ADDRESS`: `{"reject", "map", "settings"}`.
//! * `POST /sim/ip-allowed` with `{"allowed": false}` makes every key fail the IP allow-list.
//! * `POST /sim/unban` lifts a fail2ban ban and forgets past failures.
//!
//! Nothing here is linked into a Lambda function; it must not depend on project crates.

pub mod rspamd;

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::serve::{IncomingStream, Listener};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use self::rspamd::{RegexpMap, SettingsMap};

/// The global recipient denylist (`GLOBAL_RCPT_BL`).
pub const DENYLIST_MAP: &str = "global_rcpt_blacklist.map";

/// The regexp maps of `$RSPAMD_MAPS` (`data/web/inc/vars.inc.php`), the only names
/// `edit/rspamd-map` accepts; a fresh simulator has each file, empty.
pub const KNOWN_MAPS: [&str; 13] = [
    "global_mime_from_blacklist.map",
    "global_mime_from_whitelist.map",
    "global_smtp_from_blacklist.map",
    "global_smtp_from_whitelist.map",
    "global_rcpt_blacklist.map",
    "global_rcpt_whitelist.map",
    "fishy_tlds.map",
    "bad_words.map",
    "bad_words_de.map",
    "bad_languages.map",
    "bulk_header.map",
    "bad_header.map",
    "monitoring_nolog.map",
];

/// Failed authentications within [`BAN_WINDOW`] that get the caller banned (fail2ban default).
pub const BAN_AFTER_FAILURES: usize = 10;

/// The fail2ban window.
pub const BAN_WINDOW: Duration = Duration::from_secs(600);

/// Request bodies up to PHP's `post_max_size` of Mailcow (64 MiB) are accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// How to run the simulator.
#[derive(Debug, Clone)]
pub struct MailcowSimConfig {
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The read-write API key.
    pub rw_key: String,
    /// The read-only API key, if one is configured.
    pub ro_key: Option<String>,
}

impl Default for MailcowSimConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            rw_key: "SIM-RW-KEY-0001".to_owned(),
            ro_key: Some("SIM-RO-KEY-0001".to_owned()),
        }
    }
}

/// A misbehaviour the simulator can be told to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Fault {
    /// HTTP 500 with an empty body (an uncaught PHP error); nothing is changed.
    ServerError,
    /// Wait this long, then handle the request normally.
    Slow {
        /// Delay in milliseconds.
        millis: u64,
    },
    /// Answer 200 with a `danger` reply (authenticated requests only); nothing is changed.
    Danger,
    /// Handle the request, then answer 200 with a body that is not JSON (a PHP warning).
    InvalidJson,
    /// Read the request and close the connection without answering; nothing is changed.
    ConnectionReset,
}

/// A fault and how often it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultSpec {
    /// What goes wrong.
    #[serde(flatten)]
    pub fault: Fault,
    /// For how many matching requests; `None` until disarmed.
    #[serde(default)]
    pub times: Option<u32>,
    /// Only requests to this path (e.g. `/api/v1/add/rsetting`); `None` for every API route.
    #[serde(default)]
    pub route: Option<String>,
}

impl FaultSpec {
    /// `fault` on the next `times` API requests.
    pub fn next(fault: Fault, times: u32) -> Self {
        Self { fault, times: Some(times), route: None }
    }

    /// `fault` on every API request until disarmed.
    pub fn always(fault: Fault) -> Self {
        Self { fault, times: None, route: None }
    }

    /// Restricts the fault to one path.
    pub fn on_route(mut self, route: impl Into<String>) -> Self {
        self.route = Some(route.into());
        self
    }
}

/// One stored Rspamd settings rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RsettingRow {
    /// Auto-increment id.
    pub id: u64,
    /// Description (how the project finds its rule).
    pub desc: String,
    /// UCL content, spliced by Mailcow into `additional_settings_<id> { }`.
    pub content: String,
    /// 1 when active; only active rules reach Rspamd.
    pub active: i64,
}

/// One write to a map, as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapWrite {
    /// Map file name.
    pub map: String,
    /// `attr.rspamd_map_data` as sent, `None` when the field was omitted.
    pub data: Option<String>,
}

struct SimState {
    rw_key: String,
    ro_key: Option<String>,
    maps: BTreeMap<String, String>,
    map_writes: Vec<MapWrite>,
    rsettings: BTreeMap<u64, RsettingRow>,
    next_id: u64,
    settings: SettingsMap,
    settings_error: Option<String>,
    requests: BTreeMap<String, u64>,
    fault: Option<FaultSpec>,
    ip_allowed: bool,
    auth_failures: VecDeque<Instant>,
    banned: bool,
    /// The denylist as Rspamd compiled it, with the text it was compiled from: Rspamd loads a
    /// map once per change, not once per message.
    compiled_denylist: Option<(String, Arc<RegexpMap>)>,
}

/// Shared state of one simulator: what tests read and change.
#[derive(Clone)]
pub struct MailcowSim {
    inner: Arc<Mutex<SimState>>,
}

impl MailcowSim {
    /// A fresh Mailcow: empty known maps, no settings rules, no faults.
    pub fn new(config: &MailcowSimConfig) -> Self {
        let maps = KNOWN_MAPS.iter().map(|m| ((*m).to_owned(), String::new())).collect();
        let state = SimState {
            rw_key: config.rw_key.clone(),
            ro_key: config.ro_key.clone(),
            maps,
            map_writes: Vec::new(),
            rsettings: BTreeMap::new(),
            next_id: 1,
            settings: SettingsMap::default(),
            settings_error: None,
            requests: BTreeMap::new(),
            fault: None,
            ip_allowed: true,
            auth_failures: VecDeque::new(),
            banned: false,
            compiled_denylist: None,
        };
        Self { inner: Arc::new(Mutex::new(state)) }
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        // A panicking test thread must not hide the state from the others.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Arms a fault, replacing any armed one.
    pub fn set_fault(&self, spec: FaultSpec) {
        self.state().fault = Some(spec);
    }

    /// Disarms the fault.
    pub fn clear_fault(&self) {
        self.state().fault = None;
    }

    /// The content of a map file, `None` when the file does not exist.
    pub fn map(&self, name: &str) -> Option<String> {
        self.state().maps.get(name).cloned()
    }

    /// The content of the recipient denylist.
    pub fn denylist_map(&self) -> String {
        self.map(DENYLIST_MAP).unwrap_or_default()
    }

    /// Deletes a map file, so that edits of it write nothing (and Mailcow says "Task completed").
    pub fn remove_map_file(&self, name: &str) {
        self.state().maps.remove(name);
    }

    /// Every map write received, oldest first.
    pub fn map_writes(&self) -> Vec<MapWrite> {
        self.state().map_writes.clone()
    }

    /// Every settings rule, in id order.
    pub fn rsettings(&self) -> Vec<RsettingRow> {
        self.state().rsettings.values().cloned().collect()
    }

    /// Stores a settings rule directly (an admin's rule, or a duplicate), returning its id.
    pub fn insert_rsetting(&self, desc: &str, content: &str, active: bool) -> u64 {
        let mut state = self.state();
        let id = state.insert_rsetting(desc.to_owned(), content.to_owned(), i64::from(active));
        state.rebuild_settings();
        id
    }

    /// Why the settings map failed to load after the last change, if it did. Rspamd then keeps
    /// using the previous settings.
    pub fn settings_error(&self) -> Option<String> {
        self.state().settings_error.clone()
    }

    /// Requests received on `path` with `method` (every outcome counts, faults included).
    pub fn request_count(&self, method: &str, path: &str) -> u64 {
        self.state().requests.get(&format!("{method} {path}")).copied().unwrap_or(0)
    }

    /// Requests received on every API route.
    pub fn total_requests(&self) -> u64 {
        self.state().requests.values().sum()
    }

    /// Lets every key pass (true) or fail (false) the IP allow-list.
    pub fn set_ip_allowed(&self, allowed: bool) {
        self.state().ip_allowed = allowed;
    }

    /// Failed authentications within the fail2ban window.
    pub fn auth_failures(&self) -> usize {
        let mut state = self.state();
        state.expire_failures(Instant::now());
        state.auth_failures.len()
    }

    /// Whether fail2ban has banned the caller.
    pub fn is_banned(&self) -> bool {
        self.state().banned
    }

    /// Lifts a ban and forgets past failures.
    pub fn unban(&self) {
        let mut state = self.state();
        state.banned = false;
        state.auth_failures.clear();
    }

    /// Whether the stored denylist map makes Rspamd reject mail to `rcpt` (`GLOBAL_RCPT_BL`).
    pub fn would_reject_by_map(&self, rcpt: &str) -> bool {
        let compiled = {
            let mut guard = self.state();
            let state = &mut *guard;
            let text = state.maps.get(DENYLIST_MAP).map_or("", String::as_str);
            match &state.compiled_denylist {
                Some((source, compiled)) if source == text => Arc::clone(compiled),
                _ => {
                    let compiled = Arc::new(RegexpMap::parse(text));
                    state.compiled_denylist = Some((text.to_owned(), Arc::clone(&compiled)));
                    compiled
                }
            }
        };
        compiled.is_match(rcpt)
    }

    /// Whether the loaded settings rules make Rspamd reject an authenticated outbound message
    /// to `rcpt`.
    pub fn would_reject_by_settings(&self, rcpt: &str) -> bool {
        self.state().settings.rejects(rcpt)
    }

    /// Whether Mailcow would reject outbound mail to `rcpt`, by either mechanism.
    pub fn would_reject(&self, rcpt: &str) -> bool {
        self.would_reject_by_map(rcpt) || self.would_reject_by_settings(rcpt)
    }

    /// Counts the request and takes one use of a matching fault. Returns the fault and whether
    /// the caller is banned.
    fn begin_request(&self, method: &Method, path: &str) -> (Option<Fault>, bool) {
        let mut state = self.state();
        *state.requests.entry(format!("{method} {path}")).or_default() += 1;
        if state.banned {
            return (None, true);
        }
        let Some(armed) = state.fault.as_mut() else { return (None, false) };
        if armed.route.as_deref().is_some_and(|r| r != path) {
            return (None, false);
        }
        let fault = armed.fault;
        match armed.times.as_mut() {
            Some(n) if *n <= 1 => state.fault = None,
            Some(n) => *n -= 1,
            None => {}
        }
        (Some(fault), false)
    }
}

impl SimState {
    fn insert_rsetting(&mut self, desc: String, content: String, active: i64) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.rsettings.insert(id, RsettingRow { id, desc, content, active });
        id
    }

    /// Rebuilds what Rspamd loads from the settings map; a broken rule keeps the old settings.
    fn rebuild_settings(&mut self) {
        let rows =
            self.rsettings.values().filter(|r| r.active == 1).map(|r| (r.id, r.content.as_str()));
        match SettingsMap::build(rows) {
            Ok(settings) => {
                self.settings = settings;
                self.settings_error = None;
            }
            Err(err) => {
                warn!(error = %err, "mailcow-sim settings map no longer loads");
                self.settings_error = Some(err);
            }
        }
    }

    fn expire_failures(&mut self, now: Instant) {
        while self.auth_failures.front().is_some_and(|t| now.duration_since(*t) > BAN_WINDOW) {
            self.auth_failures.pop_front();
        }
    }

    fn record_auth_failure(&mut self) {
        let now = Instant::now();
        self.expire_failures(now);
        self.auth_failures.push_back(now);
        if self.auth_failures.len() >= BAN_AFTER_FAILURES {
            self.banned = true;
        }
    }
}

/// A running simulator.
pub struct MailcowSimHandle {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// The shared state.
    pub state: MailcowSim,
    task: JoinHandle<()>,
}

impl MailcowSimHandle {
    /// Stops accepting connections.
    pub fn shutdown(self) {
        self.task.abort();
    }
}

impl Drop for MailcowSimHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a simulator on `config.bind`.
///
/// Fails when the address cannot be bound.
pub async fn spawn(config: MailcowSimConfig) -> io::Result<MailcowSimHandle> {
    let listener = TcpListener::bind(config.bind).await?;
    let addr = listener.local_addr()?;
    let state = MailcowSim::new(&config);
    let app = router(state.clone());
    let listener = SimListener { inner: listener };
    let task = tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<ConnInfo>();
        if let Err(err) = axum::serve(listener, service).await {
            warn!(error = %err, "mailcow-sim stopped");
        }
    });
    Ok(MailcowSimHandle { base_url: format!("http://{addr}"), addr, state, task })
}

fn router(sim: MailcowSim) -> Router {
    Router::new()
        .route("/api/v1/{*query}", any(api))
        .route("/sim/fault", post(control_set_fault).delete(control_clear_fault))
        .route("/sim/state", get(control_state))
        .route("/sim/would-reject", get(control_would_reject))
        .route("/sim/ip-allowed", post(control_ip_allowed))
        .route("/sim/unban", post(control_unban))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(sim)
}

/// What a handler needs to know about its connection: who called, and how to drop it.
#[derive(Clone, Debug)]
struct ConnInfo {
    remote: SocketAddr,
    kill: Arc<AtomicBool>,
}

impl Connected<IncomingStream<'_, SimListener>> for ConnInfo {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        Self { remote: *stream.remote_addr(), kill: stream.io().kill.clone() }
    }
}

/// A TCP listener whose connections can be dropped from inside a handler.
struct SimListener {
    inner: TcpListener,
}

impl Listener for SimListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let kill = Arc::new(AtomicBool::new(false));
                    return (KillableStream { inner: stream, kill }, addr);
                }
                Err(err) => {
                    debug!(error = %err, "mailcow-sim accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A TCP stream that fails every read and write once killed, so hyper drops the connection
/// without sending the response: the client sees the connection close mid-request.
struct KillableStream {
    inner: TcpStream,
    kill: Arc<AtomicBool>,
}

impl KillableStream {
    fn killed(&self) -> bool {
        self.kill.load(Ordering::SeqCst)
    }
}

fn reset() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "mailcow-sim fault: connection reset")
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.killed() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A reply: status and optional JSON body.
struct Reply {
    status: StatusCode,
    body: Option<String>,
}

impl Reply {
    fn json(status: StatusCode, value: &Value) -> Self {
        Self { status, body: Some(value.to_string()) }
    }

    fn ok(value: &Value) -> Self {
        Self::json(StatusCode::OK, value)
    }

    fn error(status: StatusCode, msg: &str) -> Self {
        Self::json(status, &json!({"type": "error", "msg": msg}))
    }

    fn empty(status: StatusCode) -> Self {
        Self { status, body: None }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            Some(body) => (self.status, body).into_response(),
            None => self.status.into_response(),
        };
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

async fn api(
    State(sim): State<MailcowSim>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let (fault, banned) = sim.begin_request(&method, &path);
    if banned {
        // fail2ban drops the packets: the caller only ever sees a timeout.
        std::future::pending::<()>().await;
    }
    match fault {
        Some(Fault::ConnectionReset) => {
            conn.kill.store(true, Ordering::SeqCst);
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Some(Fault::ServerError) => {
            return Reply::empty(StatusCode::INTERNAL_SERVER_ERROR).into_response();
        }
        _ => {}
    }
    let delay = match fault {
        Some(Fault::Slow { millis }) => Duration::from_millis(millis),
        _ => Duration::ZERO,
    };
    let danger = fault == Some(Fault::Danger);
    let remote = conn.remote.ip();
    let worker_sim = sim;
    let worker_path = path.clone();
    // Like PHP, the work finishes even when the caller hangs up first (a timed-out add still
    // inserts its row): it runs in its own task, not in the connection's.
    let worker = tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let request =
            ApiRequest { method: &method, path: &worker_path, headers: &headers, body: &body };
        worker_sim.handle(&request, remote, danger)
    });
    let Ok(reply) = worker.await else {
        return Reply::empty(StatusCode::INTERNAL_SERVER_ERROR).into_response();
    };
    debug!(path, status = reply.status.as_u16(), "mailcow-sim request");
    if fault == Some(Fault::InvalidJson) {
        let garbage =
            "<br />\n<b>Warning</b>:  Undefined array key \"sim\" in <b>json_api.php</b>\n";
        return Reply { status: StatusCode::OK, body: Some(garbage.to_owned()) }.into_response();
    }
    reply.into_response()
}

struct ApiRequest<'a> {
    method: &'a Method,
    path: &'a str,
    headers: &'a HeaderMap,
    body: &'a Bytes,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Session {
    None,
    ReadWrite,
    ReadOnly,
}

/// Mailcow's key filter: every character outside `[A-Za-z0-9-]` is removed before the lookup.
fn strip_key(raw: &[u8]) -> String {
    raw.iter()
        .filter(|b| b.is_ascii_alphanumeric() || **b == b'-')
        .map(|b| char::from(*b))
        .collect()
}

impl MailcowSim {
    fn handle(&self, req: &ApiRequest<'_>, remote: IpAddr, danger: bool) -> Reply {
        let mut state = self.state();
        if req.headers.get("sec-fetch-dest").is_some_and(|v| v.as_bytes() != b"empty") {
            return Reply::empty(StatusCode::FORBIDDEN);
        }
        let session = match req.headers.get("x-api-key") {
            None => Session::None,
            Some(raw) => {
                let key = strip_key(raw.as_bytes());
                let session = if !key.is_empty() && key == state.rw_key {
                    Some(Session::ReadWrite)
                } else if state.ro_key.as_deref().is_some_and(|ro| !key.is_empty() && key == ro) {
                    Some(Session::ReadOnly)
                } else {
                    None
                };
                match session {
                    None => {
                        state.record_auth_failure();
                        return Reply::error(StatusCode::UNAUTHORIZED, "authentication failed");
                    }
                    Some(_) if !state.ip_allowed => {
                        state.record_auth_failure();
                        let msg = format!("api access denied for ip {remote}");
                        return Reply::error(StatusCode::UNAUTHORIZED, &msg);
                    }
                    Some(session) => session,
                }
            }
        };
        let query = req.path.strip_prefix("/api/v1/").unwrap_or_default();
        let mut parts = query.split('/');
        let action = parts.next().unwrap_or_default();
        let category = parts.next().unwrap_or_default();
        let object = parts.next().unwrap_or_default();
        let is_json = req
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
        let body: Option<Value> = if is_json {
            match serde_json::from_slice::<Value>(req.body) {
                Ok(value) => Some(value),
                Err(_) if action != "get" => {
                    return Reply::error(
                        StatusCode::BAD_REQUEST,
                        "Request body doesn't contain valid json!",
                    );
                }
                Err(_) => None,
            }
        } else {
            None
        };
        let write_denied = Reply::error(StatusCode::FORBIDDEN, "API read/write access denied");
        let incomplete =
            Reply::ok(&json!({"type": "error", "msg": "Cannot find attributes in post data"}));
        let only_post = Reply::error(StatusCode::METHOD_NOT_ALLOWED, "only POST method is allowed");
        let not_found = Reply::error(StatusCode::NOT_FOUND, "route not found");
        match action {
            "add" => {
                if session == Session::ReadOnly {
                    return write_denied;
                }
                let Some(attr) = body else { return incomplete };
                if req.method != Method::POST {
                    return only_post;
                }
                match category {
                    "rsetting" if danger => danger_reply("rsettings", "add", &["mysql_error"]),
                    "rsetting" => state.rsetting_add(session, attr),
                    _ => not_found,
                }
            }
            "edit" => {
                if session != Session::ReadWrite {
                    return write_denied;
                }
                let Some(body) = body else { return incomplete };
                if req.method != Method::POST {
                    return only_post;
                }
                let attr = body.get("attr").cloned().unwrap_or(Value::Null);
                let items = as_items(body.get("items"));
                match category {
                    "rspamd-map" if danger => {
                        let map = items.first().map(value_text).unwrap_or_default();
                        danger_reply(
                            "rspamd_maps",
                            "edit",
                            &["global_map_write_error", map.as_str()],
                        )
                    }
                    "rspamd-map" => state.map_edit(&items, &attr),
                    "rsetting" if danger => danger_reply("rsettings", "edit", &["mysql_error"]),
                    "rsetting" => state.rsetting_edit(&items, &attr),
                    _ => not_found,
                }
            }
            "delete" => {
                if session != Session::ReadWrite {
                    return write_denied;
                }
                let Some(body) = body else { return incomplete };
                if req.method != Method::POST {
                    return only_post;
                }
                match category {
                    "rsetting" if danger => danger_reply("rsettings", "delete", &["mysql_error"]),
                    "rsetting" => state.rsetting_delete(&as_items(Some(&body))),
                    _ => not_found,
                }
            }
            "get" => {
                if req.method != Method::GET {
                    return Reply::error(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "only GET method is allowed",
                    );
                }
                if session == Session::None {
                    // No session: json_api.php echoes nothing.
                    return Reply { status: StatusCode::OK, body: Some(String::new()) };
                }
                match (category, object) {
                    ("rsetting", "all") => {
                        let rows: Vec<Value> = state.rsettings.values().map(row_json).collect();
                        if rows.is_empty() {
                            Reply::ok(&json!({}))
                        } else {
                            Reply::ok(&Value::Array(rows))
                        }
                    }
                    ("rsetting", id) => {
                        let row = id.parse::<u64>().ok().and_then(|id| state.rsettings.get(&id));
                        Reply::ok(&row.map_or_else(|| json!({}), row_json))
                    }
                    _ => not_found,
                }
            }
            // json_api.php has no default branch for the action: nothing is echoed.
            _ => Reply { status: StatusCode::OK, body: Some(String::new()) },
        }
    }
}

fn row_json(row: &RsettingRow) -> Value {
    json!({"id": row.id, "desc": row.desc, "content": row.content, "active": row.active})
}

fn danger_reply(function: &str, action: &str, msg: &[&str]) -> Reply {
    let mut msg: Vec<Value> = msg.iter().map(|m| Value::String((*m).to_owned())).collect();
    msg.push(Value::String("simulated fault".to_owned()));
    Reply::ok(&json!([{"type": "danger", "log": [function, action, "-"], "msg": msg}]))
}

/// `(array)json_decode(items)`: a scalar becomes a one-element list, null an empty one.
fn as_items(value: Option<&Value>) -> Vec<Value> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Object(map)) => map.values().cloned().collect(),
        Some(other) => vec![other.clone()],
    }
}

/// A JSON scalar as PHP would print it.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(true) => "1".to_owned(),
        _ => String::new(),
    }
}

/// PHP `empty()` on a JSON value.
fn php_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => true,
        Some(Value::String(s)) => s.is_empty() || s == "0",
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::Bool(true)) => false,
    }
}

/// PHP `intval()` on a JSON value.
fn php_intval(value: Option<&Value>) -> i64 {
    match value {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).unwrap_or(0),
        Some(Value::String(s)) => {
            let s = s.trim_start();
            let end = s
                .char_indices()
                .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+'))))
                .map_or(s.len(), |(i, _)| i);
            s[..end].parse().unwrap_or(0)
        }
        Some(Value::Bool(true)) => 1,
        _ => 0,
    }
}

/// PHP `trim()`.
fn php_trim(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\0' | '\u{0b}'))
}

impl SimState {
    fn map_edit(&mut self, items: &[Value], attr: &Value) -> Reply {
        let raw = attr.get("rspamd_map_data");
        let data = raw.map(value_text).unwrap_or_default();
        let mut replies = Vec::new();
        for item in items {
            let map = value_text(item);
            let log = json!(["rspamd_maps", "edit", {"map": items, "attr": attr}]);
            if !KNOWN_MAPS.contains(&map.as_str()) {
                replies.push(
                    json!({"type": "danger", "log": log, "msg": ["global_map_invalid", map]}),
                );
                continue;
            }
            let Some(content) = self.maps.get_mut(&map) else { continue };
            *content = format!("{}\n", php_trim(&data));
            self.map_writes.push(MapWrite { map: map.clone(), data: raw.map(value_text) });
            replies.push(json!({"type": "success", "log": log, "msg": ["object_modified", map]}));
        }
        generic_or(replies, "success", "Task completed")
    }

    fn rsetting_add(&mut self, session: Session, attr: Value) -> Reply {
        let log = json!(["rsettings", "add", attr]);
        if session != Session::ReadWrite {
            return Reply::ok(&json!([{"type": "danger", "log": log, "msg": "access_denied"}]));
        }
        if php_empty(attr.get("content")) {
            return Reply::ok(&json!([{"type": "danger", "log": log, "msg": "map_content_empty"}]));
        }
        let Some(desc) = attr.get("desc").filter(|d| !d.is_null()) else {
            // `desc` is NOT NULL: the insert fails.
            let msg = json!(["mysql_error", "Column 'desc' cannot be null"]);
            return Reply::ok(&json!([{"type": "danger", "log": log, "msg": msg}]));
        };
        let content = attr.get("content").map(value_text).unwrap_or_default();
        let active = php_intval(attr.get("active"));
        self.insert_rsetting(value_text(desc), content, active);
        self.rebuild_settings();
        Reply::ok(&json!([{"type": "success", "log": log, "msg": "settings_map_added"}]))
    }

    fn rsetting_edit(&mut self, items: &[Value], attr: &Value) -> Reply {
        let log = json!(["rsettings", "edit", {"id": items, "attr": attr}]);
        let mut replies = Vec::new();
        for item in items {
            let id_text = value_text(item);
            let Some(row) = id_text.parse::<u64>().ok().and_then(|id| self.rsettings.get_mut(&id))
            else {
                let msg = json!(["settings_map_invalid", id_text]);
                replies.push(json!({"type": "danger", "log": log, "msg": msg}));
                continue;
            };
            if !php_empty(attr.get("content")) {
                row.content = attr.get("content").map(value_text).unwrap_or_default();
            }
            if !php_empty(attr.get("desc")) {
                row.desc = attr.get("desc").map(value_text).unwrap_or_default();
            }
            if attr.get("active").is_some_and(|a| !a.is_null()) {
                row.active = php_intval(attr.get("active"));
            }
            row.content = php_trim(&row.content).to_owned();
            replies
                .push(json!({"type": "success", "log": log, "msg": ["object_modified", id_text]}));
        }
        self.rebuild_settings();
        generic_or(replies, "success", "Task completed")
    }

    fn rsetting_delete(&mut self, items: &[Value]) -> Reply {
        let mut replies = Vec::new();
        for item in items {
            let id_text = value_text(item);
            if let Ok(id) = id_text.parse::<u64>() {
                self.rsettings.remove(&id);
            }
            let log = json!(["rsettings", "delete", {"id": items}]);
            replies.push(
                json!({"type": "success", "log": log, "msg": ["settings_map_removed", id_text]}),
            );
        }
        self.rebuild_settings();
        generic_or(replies, "success", "Task completed")
    }
}

/// The queued replies, or Mailcow's generic single object when nothing was queued.
fn generic_or(replies: Vec<Value>, kind: &str, msg: &str) -> Reply {
    if replies.is_empty() {
        Reply::ok(&json!({"type": kind, "msg": msg}))
    } else {
        Reply::ok(&Value::Array(replies))
    }
}

async fn control_set_fault(
    State(sim): State<MailcowSim>,
    body: axum::Json<FaultSpec>,
) -> StatusCode {
    sim.set_fault(body.0);
    StatusCode::NO_CONTENT
}

async fn control_clear_fault(State(sim): State<MailcowSim>) -> StatusCode {
    sim.clear_fault();
    StatusCode::NO_CONTENT
}

async fn control_state(State(sim): State<MailcowSim>) -> axum::Json<Value> {
    let state = sim.state();
    axum::Json(json!({
        "maps": state.maps,
        "map_writes": state.map_writes.len(),
        "rsettings": state.rsettings.values().collect::<Vec<_>>(),
        "settings_error": state.settings_error,
        "requests": state.requests,
        "ip_allowed": state.ip_allowed,
        "auth_failures": state.auth_failures.len(),
        "banned": state.banned,
    }))
}

#[derive(Deserialize)]
struct RcptQuery {
    rcpt: String,
}

async fn control_would_reject(
    State(sim): State<MailcowSim>,
    Query(query): Query<RcptQuery>,
) -> axum::Json<Value> {
    let map = sim.would_reject_by_map(&query.rcpt);
    let settings = sim.would_reject_by_settings(&query.rcpt);
    axum::Json(json!({"reject": map || settings, "map": map, "settings": settings}))
}

#[derive(Deserialize)]
struct IpAllowed {
    allowed: bool,
}

async fn control_ip_allowed(
    State(sim): State<MailcowSim>,
    body: axum::Json<IpAllowed>,
) -> StatusCode {
    sim.set_ip_allowed(body.0.allowed);
    StatusCode::NO_CONTENT
}

async fn control_unban(State(sim): State<MailcowSim>) -> StatusCode {
    sim.unban();
    StatusCode::NO_CONTENT
}
