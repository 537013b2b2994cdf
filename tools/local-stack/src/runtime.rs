//! A Lambda Runtime API on loopback, and the real function binary running behind it.
//!
//! One [`LambdaFunction`] per function: an HTTP server answering the runtime routes the
//! `lambda_runtime` crate calls (`GET /2018-06-01/runtime/invocation/next` as a long poll, then
//! `.../{id}/response` or `.../{id}/error`, and `/runtime/init/error`), and the binary as a child
//! process with `AWS_LAMBDA_RUNTIME_API` pointing at it. Invocations are serial, one at a time,
//! as in one Lambda execution environment. A binary that exits is started again (a new
//! environment), and an invocation that outlives the function's timeout fails with
//! [`InvokeError::Timeout`] and restarts the binary, as Lambda does.
//!
//! Depends on axum and tokio only; it knows nothing about the events it carries.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// How an invocation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InvokeError {
    /// The handler returned an error (`/response/error`).
    #[error("function error {error_type}: {message}")]
    Function {
        /// `errorType`.
        error_type: String,
        /// `errorMessage`.
        message: String,
    },
    /// The function did not answer within its timeout.
    #[error("function timed out after {0:?}")]
    Timeout(Duration),
    /// The process exited while handling the invocation.
    #[error("the function process exited during the invocation")]
    Crashed,
}

/// What the caller supplies to start a function.
#[derive(Debug, Clone)]
pub struct FunctionLaunch {
    /// Function name (`AWS_LAMBDA_FUNCTION_NAME`).
    pub name: String,
    /// The binary to run.
    pub binary: PathBuf,
    /// Timeout of one invocation.
    pub timeout: Duration,
    /// Memory in MB (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
    pub memory: u32,
    /// Region.
    pub region: String,
    /// The complete environment of the process besides the runtime's own variables.
    pub environment: BTreeMap<String, String>,
    /// Where stdout and stderr of the process go (appended).
    pub log_file: PathBuf,
}

struct Invocation {
    id: String,
    payload: Value,
    deadline_ms: u64,
}

type Reply = oneshot::Sender<Result<Value, InvokeError>>;

struct RuntimeState {
    arn: String,
    next: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, Reply>>,
    init_errors: AtomicU64,
}

impl RuntimeState {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Reply>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn finish(&self, id: &str, result: Result<Value, InvokeError>) -> bool {
        match self.pending().remove(id) {
            Some(reply) => reply.send(result).is_ok(),
            None => false,
        }
    }

    fn fail_all(&self, error: &InvokeError) {
        for (_, reply) in self.pending().drain() {
            let _ = reply.send(Err(error.clone()));
        }
    }
}

/// A function binary behind its own Runtime API.
pub struct LambdaFunction {
    name: String,
    timeout: Duration,
    queue: mpsc::Sender<Invocation>,
    state: Arc<RuntimeState>,
    child: Arc<tokio::sync::Mutex<Option<Child>>>,
    stopping: Arc<AtomicBool>,
    invocations: AtomicU64,
    busy_nanos: AtomicU64,
    server: JoinHandle<()>,
    supervisor: JoinHandle<()>,
    /// Address of the Runtime API.
    pub runtime_api: SocketAddr,
}

impl LambdaFunction {
    /// Starts the Runtime API on a free loopback port and the binary behind it.
    ///
    /// Fails when the binary does not exist, the port cannot be bound or the log file cannot
    /// be opened.
    pub async fn start(launch: FunctionLaunch) -> anyhow::Result<Self> {
        if !launch.binary.is_file() {
            return Err(anyhow!(
                "function binary {} not found: build the workspace first (cargo build --workspace)",
                launch.binary.display()
            ));
        }
        let (queue, receiver) = mpsc::channel(16);
        let state = Arc::new(RuntimeState {
            arn: format!(
                "arn:aws:lambda:{}:{}:function:{}",
                launch.region,
                crate::template::ACCOUNT_ID,
                launch.name
            ),
            next: tokio::sync::Mutex::new(receiver),
            pending: Mutex::new(HashMap::new()),
            init_errors: AtomicU64::new(0),
        });
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let runtime_api = listener.local_addr()?;
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(Arc::clone(&state));
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                warn!(error = %e, "runtime api stopped");
            }
        });

        let child = Arc::new(tokio::sync::Mutex::new(None));
        let stopping = Arc::new(AtomicBool::new(false));
        let first = spawn_process(&launch, runtime_api)?;
        *child.lock().await = Some(first);
        let supervisor = tokio::spawn(supervise(
            launch.clone(),
            runtime_api,
            Arc::clone(&child),
            Arc::clone(&stopping),
            Arc::clone(&state),
        ));
        info!(function = %launch.name, runtime_api = %runtime_api, "function started");
        Ok(Self {
            name: launch.name,
            timeout: launch.timeout,
            queue,
            state,
            child,
            stopping,
            invocations: AtomicU64::new(0),
            busy_nanos: AtomicU64::new(0),
            server,
            supervisor,
            runtime_api,
        })
    }

    /// The function's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Invocations made so far.
    pub fn invocations(&self) -> u64 {
        self.invocations.load(Ordering::Relaxed)
    }

    /// Time spent in invocations so far: from handing the event over to the answer, summed.
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.busy_nanos.load(Ordering::Relaxed))
    }

    /// CPU time the current process has used so far, all its threads, user and system (from
    /// `/proc/<pid>/stat`, in 10 ms ticks); `None` off Linux or while no process runs. A
    /// process started again after a crash or timeout counts from zero.
    pub async fn cpu_time(&self) -> Option<Duration> {
        let pid = self.child.lock().await.as_ref()?.id()?;
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces: the fields after it start behind its `)`.
        let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let total = ticks(11)? + ticks(12)?;
        Some(Duration::from_millis(total * 10))
    }

    /// Invokes the function synchronously and waits for its answer.
    ///
    /// Fails when the handler returns an error, the invocation outlives the timeout (the
    /// process is then restarted) or the process exits meanwhile.
    pub async fn invoke(&self, payload: Value) -> Result<Value, InvokeError> {
        let started = std::time::Instant::now();
        let result = self.invoke_once(payload).await;
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy_nanos.fetch_add(nanos, Ordering::Relaxed);
        result
    }

    async fn invoke_once(&self, payload: Value) -> Result<Value, InvokeError> {
        let n = self.invocations.fetch_add(1, Ordering::Relaxed);
        let id = format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            fastrand::u32(..),
            n & 0xffff,
            fastrand::u16(..0x1000),
            fastrand::u16(..0x1000),
            fastrand::u64(..1 << 48)
        );
        let deadline = SystemTime::now() + self.timeout;
        let deadline_ms =
            deadline.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default();
        let (reply, answer) = oneshot::channel();
        self.state.pending().insert(id.clone(), reply);
        if self.queue.send(Invocation { id: id.clone(), payload, deadline_ms }).await.is_err() {
            self.state.pending().remove(&id);
            return Err(InvokeError::Crashed);
        }
        // A little grace over the timeout for the process to report what it has.
        match tokio::time::timeout(self.timeout + Duration::from_secs(1), answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(InvokeError::Crashed),
            Err(_) => {
                self.state.pending().remove(&id);
                warn!(function = %self.name, "invocation timed out, restarting the function");
                if let Some(child) = self.child.lock().await.as_mut() {
                    let _ = child.start_kill();
                }
                Err(InvokeError::Timeout(self.timeout))
            }
        }
    }

    /// Stops the process and the Runtime API.
    pub async fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(child) = self.child.lock().await.as_mut() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        self.supervisor.abort();
        self.server.abort();
    }
}

fn spawn_process(launch: &FunctionLaunch, runtime_api: SocketAddr) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&launch.log_file)
        .with_context(|| format!("opening {}", launch.log_file.display()))?;
    let log_err = log.try_clone()?;
    let mut command = Command::new(&launch.binary);
    command
        .env_clear()
        .envs(&launch.environment)
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", &launch.name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", launch.memory.to_string())
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", launch.name))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        .env("AWS_REGION", &launch.region)
        .env("AWS_DEFAULT_REGION", &launch.region)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .kill_on_drop(true);
    command.spawn().with_context(|| format!("starting {}", launch.binary.display()))
}

async fn supervise(
    launch: FunctionLaunch,
    runtime_api: SocketAddr,
    child: Arc<tokio::sync::Mutex<Option<Child>>>,
    stopping: Arc<AtomicBool>,
    state: Arc<RuntimeState>,
) {
    loop {
        // Poll instead of holding the lock across `wait`, so `invoke` can kill the process.
        let status = loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut guard = child.lock().await;
            match guard.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => break Some(status),
                Some(Ok(None)) => continue,
                Some(Err(_)) | None => break None,
            }
        };
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        warn!(function = %launch.name, ?status, "function process exited, starting a new one");
        state.fail_all(&InvokeError::Crashed);
        tokio::time::sleep(Duration::from_millis(300)).await;
        match spawn_process(&launch, runtime_api) {
            Ok(next) => *child.lock().await = Some(next),
            Err(e) => {
                warn!(function = %launch.name, error = %e, "function could not be restarted");
                return;
            }
        }
    }
}

async fn next(State(state): State<Arc<RuntimeState>>) -> Response {
    // An invocation its caller gave up on while it waited (timeout, crash) is not run.
    let invocation = {
        let mut queue = state.next.lock().await;
        loop {
            match queue.recv().await {
                Some(i) if !state.pending().contains_key(&i.id) => continue,
                other => break other,
            }
        }
    };
    let Some(invocation) = invocation else {
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    put("lambda-runtime-aws-request-id", &invocation.id);
    put("lambda-runtime-deadline-ms", &invocation.deadline_ms.to_string());
    put("lambda-runtime-invoked-function-arn", &state.arn);
    put(
        "lambda-runtime-trace-id",
        &format!("Root=1-{:08x}-{:024x}", invocation.deadline_ms / 1000, fastrand::u128(..1 << 96)),
    );
    put("content-type", "application/json");
    (StatusCode::OK, headers, invocation.payload.to_string()).into_response()
}

async fn response(
    State(state): State<Arc<RuntimeState>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    if state.finish(&id, Ok(value)) { StatusCode::ACCEPTED } else { StatusCode::BAD_REQUEST }
}

async fn error(
    State(state): State<Arc<RuntimeState>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let error =
        InvokeError::Function { error_type: text("errorType"), message: text("errorMessage") };
    if state.finish(&id, Err(error)) { StatusCode::ACCEPTED } else { StatusCode::BAD_REQUEST }
}

async fn init_error(State(state): State<Arc<RuntimeState>>, body: Bytes) -> StatusCode {
    state.init_errors.fetch_add(1, Ordering::Relaxed);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let error_type = body.get("errorType").and_then(Value::as_str).unwrap_or_default().to_owned();
    warn!(error_type, "function init failed");
    StatusCode::ACCEPTED
}

/// The directory of the workspace's binaries next to a test or tool executable
/// (`target/debug/deps/x` -> `target/debug`).
pub fn binaries_next_to(executable: &Path) -> Option<PathBuf> {
    let dir = executable.parent()?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().map(Path::to_path_buf)
    } else {
        Some(dir.to_path_buf())
    }
}
