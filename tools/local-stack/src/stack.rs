//! The running system: topology in moto (and the table in DynamoDB Local), the fault proxies in
//! front of both, both functions behind their Runtime APIs, and the event-source pollers; plus the
//! scenario run the demo and the end-to-end test share (waves, faults, settling, the final drift
//! repair).
//!
//! Why the table is not in moto: moto runs each request in its own thread, and its
//! TransactWriteItems deep-copies the whole table to roll back a cancelled transaction, then puts
//! the copy back. Concurrent transactions (ingest commits up to eight records at once) therefore
//! lose each other's writes, and every transaction costs a copy of the table (about 0.1 s at a
//! few hundred items). DynamoDB Local has neither problem and streams like DynamoDB does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use feedback_domain::policy::Policy;

use crate::dynamodb_local::DynamoDbLocal;
use crate::generator::{self, Scenario};
use crate::observe;
use crate::pollers::{self, SqsPoller, SqsSourceConfig, StreamPoller, StreamSourceConfig};
use crate::proxy::FaultProxy;
use crate::runtime::{FunctionLaunch, LambdaFunction};
use crate::sims::MailcowControl;
use crate::template::Template;
use crate::topology::{self, AwsClients, LocalOverrides, Topology};

/// Binary of the ingest function.
pub const INGEST: &str = "ingest-feedback";
/// Binary of the sync function.
pub const SYNC: &str = "sync-mailcow";

/// Messages published but not yet done with that a wave allows on the feedback queue. moto's
/// ReceiveMessage walks the whole queue (about 0.6 ms per queued message on the development
/// machine), so a backlog of thousands would measure moto instead of the pipeline; SES, too,
/// publishes as mail goes out rather than in one burst.
pub const MAX_BACKLOG: u64 = 64;

/// How to start the stack.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// moto's endpoint (`http://127.0.0.1:PORT`): SQS, SNS, Secrets Manager.
    pub moto_endpoint: String,
    /// DynamoDB's endpoint (DynamoDB Local): the table and its stream.
    pub dynamodb_endpoint: String,
    /// Base URL of the Mailcow simulator.
    pub mailcow_url: String,
    /// Its read-write API key (stored in the secret the sync reads).
    pub mailcow_key: String,
    /// Base URL of the SES suppression-list simulator.
    pub ses_url: String,
    /// Directory of the workspace binaries (`target/debug`).
    pub bin_dir: PathBuf,
    /// `infra/template.yaml`.
    pub template: PathBuf,
    /// Stack name: prefix of every resource name.
    pub stack_name: String,
    /// Region.
    pub region: String,
    /// Where the functions' logs go.
    pub log_dir: PathBuf,
    /// `AddressHashKey` (at least 32 characters).
    pub hash_key: String,
    /// Variables set for `sync-mailcow` on top of the template's (e.g. `SES_MIN_INTERVAL_MS`
    /// for a run whose SES simulator does not throttle).
    pub sync_environment: BTreeMap<String, String>,
}

/// The queues and topic the run uses, found through the functions' wiring in the template.
#[derive(Debug, Clone)]
pub struct Wiring {
    /// Topic SES publishes to.
    pub topic_arn: String,
    /// Logical id of the queue ingest reads.
    pub feedback: String,
    /// Logical id of its dead-letter queue.
    pub dead_letter: String,
    /// Logical id of the quarantine queue.
    pub quarantine: String,
    /// Logical id of the sync's failure queue.
    pub sync_failures: String,
}

/// Everything running.
pub struct Stack {
    /// What was created.
    pub topology: Topology,
    /// Which resource plays which part.
    pub wiring: Wiring,
    /// Clients straight to moto (the generator as SES, the test as observer).
    pub direct: AwsClients,
    /// The proxy the functions and pollers reach moto through.
    pub proxy: FaultProxy,
    /// The proxy they reach DynamoDB through.
    pub dynamodb_proxy: FaultProxy,
    /// The ingest function.
    pub ingest: Arc<LambdaFunction>,
    /// The sync function.
    pub sync: Arc<LambdaFunction>,
    /// The SQS poller feeding ingest.
    pub sqs_poller: Option<SqsPoller>,
    /// The stream poller feeding the sync.
    pub stream_poller: Option<StreamPoller>,
    /// The policy ingest runs with (from its environment).
    pub policy: Policy,
    /// History retention ingest runs with.
    pub retention: chrono::Duration,
    /// The ingest function's log.
    pub ingest_log: PathBuf,
    /// The sync function's log.
    pub sync_log: PathBuf,
    /// Local values that differ from the template.
    pub overrides: LocalOverrides,
}

async fn socket_of(url: &str) -> anyhow::Result<SocketAddr> {
    let host = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("{url} is not an http:// URL"))?
        .trim_end_matches('/');
    tokio::net::lookup_host(host).await?.next().ok_or_else(|| anyhow!("{host} does not resolve"))
}

fn wiring(topology: &Topology) -> anyhow::Result<Wiring> {
    let ingest = topology.function(INGEST)?;
    let sync = topology.function(SYNC)?;
    let feedback = ingest.sqs.first().ok_or_else(|| anyhow!("ingest has no SQS event source"))?;
    let queue = topology.queue(&feedback.queue)?;
    let dead_letter = queue
        .redrive
        .as_ref()
        .ok_or_else(|| anyhow!("the feedback queue has no redrive policy"))?;
    let quarantine_url = ingest
        .environment
        .get("QUARANTINE_QUEUE_URL")
        .ok_or_else(|| anyhow!("ingest has no QUARANTINE_QUEUE_URL"))?;
    let quarantine = topology
        .queues
        .values()
        .find(|q| &q.url == quarantine_url)
        .ok_or_else(|| anyhow!("QUARANTINE_QUEUE_URL names no created queue"))?;
    let stream = sync.streams.first().ok_or_else(|| anyhow!("the sync has no stream source"))?;
    let sync_failures = stream
        .on_failure
        .clone()
        .or_else(|| sync.dead_letter_queue.clone())
        .ok_or_else(|| anyhow!("the sync has no failure destination"))?;
    let topic = topology
        .subscriptions
        .iter()
        .find(|(_, q, _)| *q == feedback.queue)
        .and_then(|(t, _, _)| topology.topics.get(t))
        .ok_or_else(|| anyhow!("no topic is subscribed to the feedback queue"))?;
    Ok(Wiring {
        topic_arn: topic.clone(),
        feedback: feedback.queue.clone(),
        dead_letter: dead_letter.0.clone(),
        quarantine: quarantine.logical_id.clone(),
        sync_failures,
    })
}

/// The policy and history retention ingest is started with, read by ingest's own `Config`.
fn policy_of(env: &BTreeMap<String, String>) -> anyhow::Result<(Policy, chrono::Duration)> {
    let vars = env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let config = ingest_feedback::Config::from_vars(&vars)
        .context("the environment ingest-feedback is started with")?;
    Ok((config.policy, config.history_retention))
}

impl Stack {
    /// Creates the topology in moto and starts the proxy, both functions and the pollers.
    ///
    /// Fails when moto is unreachable, the template cannot be applied, or a binary is missing.
    pub async fn start(config: &StackConfig) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.log_dir)?;
        let template = Template::load(&config.template)?;
        let direct =
            AwsClients::new(&config.moto_endpoint, &config.dynamodb_endpoint, &config.region).await;
        let mut overrides = LocalOverrides::default();
        overrides.parameters.insert("MailcowUrl".into(), config.mailcow_url.clone());
        overrides.parameters.insert("AddressHashKey".into(), config.hash_key.clone());
        overrides.parameters.insert("NeverSuppress".into(), generator::NEVER_SUPPRESS.into());
        let topology = topology::create(
            &template,
            &direct,
            &config.stack_name,
            &config.region,
            &overrides,
            &config.mailcow_key,
        )
        .await
        .context("creating the topology in moto")?;
        let wiring = wiring(&topology)?;

        let proxy = FaultProxy::start(socket_of(&config.moto_endpoint).await?).await?;
        let dynamodb_proxy = FaultProxy::start(socket_of(&config.dynamodb_endpoint).await?).await?;
        let via_proxy = AwsClients::new(&proxy.url(), &dynamodb_proxy.url(), &config.region).await;

        let launch = |binary: &str| -> anyhow::Result<FunctionLaunch> {
            let spec = topology.function(binary)?;
            let mut env = spec.environment.clone();
            env.insert("AWS_ENDPOINT_URL".into(), proxy.url());
            env.insert("AWS_ENDPOINT_URL_DYNAMODB".into(), dynamodb_proxy.url());
            // moto has no SESv2 suppression-list API: the sync's SES client goes to the simulator.
            env.insert("AWS_ENDPOINT_URL_SESV2".into(), config.ses_url.clone());
            env.insert("AWS_ACCESS_KEY_ID".into(), "test".into());
            env.insert("AWS_SECRET_ACCESS_KEY".into(), "test".into());
            if binary == SYNC {
                env.extend(config.sync_environment.clone());
            }
            if binary == INGEST {
                // moto signs SNS messages with a placeholder signature and a certificate URL
                // that cannot be fetched offline, so the local stack accepts envelopes without
                // verifying them. Verification itself is tested with real signed fixtures
                // (shared/sns-verify, functions/ingest-feedback).
                env.insert("REQUIRE_SIGNATURE".into(), "false".into());
                env.remove("ALLOWED_TOPIC_ARNS");
            }
            Ok(FunctionLaunch {
                name: spec.name.clone(),
                binary: config.bin_dir.join(binary),
                timeout: Duration::from_secs(u64::from(spec.timeout)),
                memory: spec.memory,
                region: config.region.clone(),
                environment: env,
                log_file: config.log_dir.join(format!("{binary}.log")),
            })
        };
        let ingest_launch = launch(INGEST)?;
        let sync_launch = launch(SYNC)?;
        let (policy, retention) = policy_of(&ingest_launch.environment)?;
        let ingest_log = ingest_launch.log_file.clone();
        let sync_log = sync_launch.log_file.clone();
        let ingest = Arc::new(LambdaFunction::start(ingest_launch).await?);
        let sync = Arc::new(LambdaFunction::start(sync_launch).await?);

        let ingest_spec = topology.function(INGEST)?;
        let source = &ingest_spec.sqs[0];
        let queue = topology.queue(&source.queue)?;
        let sqs_poller = SqsPoller::start(
            via_proxy.sqs.clone(),
            SqsSourceConfig {
                url: queue.url.clone(),
                arn: queue.arn.clone(),
                region: config.region.clone(),
                batch_size: source.batch_size,
                wait_seconds: source.batching_window.max(1),
                visibility_timeout: queue.visibility_timeout,
                report_failures: source.report_failures,
            },
            Arc::clone(&ingest),
        );
        let sync_spec = topology.function(SYNC)?;
        let stream = &sync_spec.streams[0];
        let on_failure_url = match &stream.on_failure {
            Some(logical) => Some(topology.queue(logical)?.url.clone()),
            None => None,
        };
        let stream_poller = StreamPoller::start(
            via_proxy.streams.clone(),
            via_proxy.sqs.clone(),
            StreamSourceConfig {
                stream_arn: topology.stream_arn.clone(),
                region: config.region.clone(),
                batch_size: stream.batch_size,
                batching_window: stream.batching_window,
                max_retries: stream.max_retries,
                filters: stream.filters.clone(),
                on_failure_url,
                report_failures: stream.report_failures,
            },
            Arc::clone(&sync),
        );

        Ok(Self {
            topology,
            wiring,
            direct,
            proxy,
            dynamodb_proxy,
            ingest,
            sync,
            sqs_poller: Some(sqs_poller),
            stream_poller: Some(stream_poller),
            policy,
            retention,
            ingest_log,
            sync_log,
            overrides,
        })
    }

    /// URL of a queue by the part it plays.
    ///
    /// Fails only for a queue missing from the topology (not after a successful start).
    pub fn url(&self, logical: &str) -> anyhow::Result<String> {
        Ok(self.topology.queue(logical)?.url.clone())
    }

    /// Publishes one wave, a few messages at a time (the order within a wave does not change
    /// the outcome), keeping at most [`MAX_BACKLOG`] messages on the feedback queue as SES's
    /// steady stream would; returns (SNS MessageId, index into the scenario) per message.
    ///
    /// Fails when SNS keeps refusing a publish.
    pub async fn publish_wave(
        &self,
        scenario: &Scenario,
        wave: usize,
    ) -> anyhow::Result<Vec<(String, usize)>> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};

        let deleted = |s: &SqsPoller| s.stats.deleted.load(std::sync::atomic::Ordering::SeqCst);
        let deleted_before = self.sqs_poller.as_ref().map_or(0, deleted);
        let published = std::sync::atomic::AtomicU64::new(0);
        let in_wave = scenario.notifications.iter().enumerate().filter(|(_, n)| n.wave == wave);
        stream::iter(in_wave)
            .map(|(index, n)| {
                let published = &published;
                async move {
                    // Records the function failed stay on the queue and count as backlog.
                    while let Some(poller) = &self.sqs_poller {
                        let done = deleted(poller).saturating_sub(deleted_before);
                        let sent = published.load(std::sync::atomic::Ordering::SeqCst);
                        if sent.saturating_sub(done) < MAX_BACKLOG {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    published.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let id =
                        generator::publish(&self.direct.sns, &self.wiring.topic_arn, n).await?;
                    anyhow::Ok((id, index))
                }
            })
            .buffer_unordered(4)
            .try_collect()
            .await
    }

    /// Waits until the feedback queue is empty, no batch is in hand, and the stream poller has
    /// read the stream to its end twice since.
    ///
    /// Fails after `timeout`.
    pub async fn settle(&self, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        let (Some(sqs), Some(stream)) = (&self.sqs_poller, &self.stream_poller) else {
            bail!("the pollers are stopped");
        };
        loop {
            if started.elapsed() > timeout {
                bail!("the stack did not settle within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            let depth =
                observe::queue_depth(&self.direct, &self.topology, &self.wiring.feedback).await?;
            if depth > 0 || sqs.stats.busy.load(std::sync::atomic::Ordering::SeqCst) {
                continue;
            }
            let reads = stream.stats.empty_reads.load(std::sync::atomic::Ordering::SeqCst);
            while stream.stats.empty_reads.load(std::sync::atomic::Ordering::SeqCst) < reads + 2 {
                if started.elapsed() > timeout {
                    bail!("the stream poller did not catch up within {timeout:?}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let depth =
                observe::queue_depth(&self.direct, &self.topology, &self.wiring.feedback).await?;
            if depth == 0 && !sqs.stats.busy.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(());
            }
        }
    }

    /// One run of the drift-repair schedule (an asynchronous invocation; a failure goes to the
    /// function's dead-letter queue). Returns whether it succeeded.
    ///
    /// Fails only when the template gives the sync no schedule.
    pub async fn drift_repair(&self) -> anyhow::Result<bool> {
        let spec = self.topology.function(SYNC)?;
        if spec.schedules.is_empty() {
            bail!("the template gives the sync no schedule");
        }
        let dead_letter = match &spec.dead_letter_queue {
            Some(logical) => Some(self.url(logical)?),
            None => None,
        };
        let event = pollers::scheduled_event(
            &self.topology.region,
            &format!("{}-drift-repair", self.topology.stack),
        );
        Ok(pollers::invoke_scheduled(
            &self.sync,
            &self.direct.sqs,
            dead_letter.as_deref(),
            event,
            spec.async_retries,
        )
        .await)
    }

    /// Makes AWS unreachable for the functions and pollers: both proxies reset every
    /// connection until [`Stack::resume_aws`].
    pub fn pause_aws(&self) {
        self.proxy.pause();
        self.dynamodb_proxy.pause();
    }

    /// Lets the functions and pollers reach AWS again.
    pub fn resume_aws(&self) {
        self.proxy.resume();
        self.dynamodb_proxy.resume();
    }

    /// Stream batches retried so far.
    pub fn stream_retries(&self) -> u64 {
        self.stream_poller
            .as_ref()
            .map_or(0, |p| p.stats.retries.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Connections the proxies reset so far.
    pub fn resets(&self) -> u64 {
        self.proxy.resets() + self.dynamodb_proxy.resets()
    }

    /// Stops the pollers, then the functions.
    pub async fn stop(mut self) {
        if let Some(p) = self.sqs_poller.take() {
            p.stop().await;
        }
        if let Some(p) = self.stream_poller.take() {
            p.stop().await;
        }
        if let Ok(f) = Arc::try_unwrap(self.ingest) {
            f.stop().await;
        }
        if let Ok(f) = Arc::try_unwrap(self.sync) {
            f.stop().await;
        }
    }
}

/// What happens to AWS during the first wave.
#[derive(Clone)]
pub enum AwsFault {
    /// moto and DynamoDB unreachable for this long: both proxies reset every connection.
    Outage(Duration),
    /// The table's DynamoDB Local killed (SIGKILL) while a batch is in hand, and started again
    /// on its on-disk data after `down`.
    Crash {
        /// The process behind the table.
        dynamodb: Arc<tokio::sync::Mutex<DynamoDbLocal>>,
        /// How long it stays dead.
        down: Duration,
    },
}

impl std::fmt::Debug for AwsFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Outage(d) => f.debug_tuple("Outage").field(d).finish(),
            Self::Crash { down, .. } => f.debug_struct("Crash").field("down", down).finish(),
        }
    }
}

/// Faults to inject during a run.
#[derive(Debug, Clone)]
pub struct Faults {
    /// What happens to AWS during the first wave.
    pub aws: AwsFault,
    /// The Mailcow simulator to fail during the second wave (and the third).
    pub mailcow: MailcowControl,
    /// The simulator's faults of the second wave, armed one after the other: each stays until
    /// a stream batch has met it and is being retried (`{"fault": "server_error"}`,
    /// `{"fault": "danger"}`, `{"fault": "slow", "millis": ...}`, ...). The scheduled drift
    /// repair runs once while the last one is armed, and fails.
    pub mailcow_faults: Vec<serde_json::Value>,
    /// How long the second wave's faults last at least.
    pub mailcow_outage: Duration,
    /// Third wave: Mailcow refuses the sync's credentials (API allow-list) until a stream batch
    /// and the schedule have met the refusal.
    pub refuse_credentials: bool,
}

impl Faults {
    /// The faults of the end-to-end test: AWS cut off for `outage`, Mailcow answering 500 for
    /// at least `mailcow_outage`.
    pub fn standard(mailcow: MailcowControl, outage: Duration, mailcow_outage: Duration) -> Self {
        Self {
            aws: AwsFault::Outage(outage),
            mailcow,
            mailcow_faults: vec![serde_json::json!({"fault": "server_error"})],
            mailcow_outage,
            refuse_credentials: false,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// SNS MessageId -> index of the notification in the scenario.
    pub published: BTreeMap<String, usize>,
    /// Scheduled runs that failed (each one is a message on the sync failure queue).
    pub failed_schedules: usize,
    /// Seconds per wave from first publish to settled.
    pub wave_seconds: Vec<f64>,
    /// Connections the proxy reset while moto was cut off.
    pub proxy_resets: u64,
    /// Times the table's DynamoDB Local was killed and started again.
    pub dynamodb_restarts: u32,
    /// Stream batches the poller gave up on after their retries (each one is a message on the
    /// sync failure queue).
    pub stream_given_up: u64,
    /// Seconds of the whole run.
    pub total_seconds: f64,
}

/// Runs a scenario wave by wave, with the faults if given, then one drift-repair run.
///
/// Fails when a wave does not settle within `settle_timeout`, publishing fails, or the final
/// drift repair does not succeed.
pub async fn run_scenario(
    stack: &Stack,
    scenario: &Scenario,
    faults: Option<&Faults>,
    settle_timeout: Duration,
    mut progress: impl FnMut(&str),
) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let mut report = RunReport::default();
    for wave in 0..scenario.waves() {
        let wave_start = Instant::now();
        let count = scenario.wave(wave).count();
        progress(&format!("wave {}: publishing {count} notifications to the SNS topic", wave + 1));
        let retries_before = stack.stream_retries();
        if let (1, Some(f)) = (wave, faults)
            && let Some(first) = f.mailcow_faults.first()
        {
            progress(&format!("wave 2: Mailcow fault {first} from now on"));
            f.mailcow.fail_with(first.clone()).await?;
        }
        if let (2, Some(f)) = (wave, faults)
            && f.refuse_credentials
        {
            progress("wave 3: Mailcow refuses the sync's credentials from now on");
            f.mailcow.allow_caller(false).await?;
        }
        let published = match (wave, faults) {
            (0, Some(f)) => {
                let (published, fault) =
                    tokio::join!(stack.publish_wave(scenario, wave), aws_fault(stack, &f.aws));
                progress(&fault?);
                published?
            }
            _ => stack.publish_wave(scenario, wave).await?,
        };
        report.published.extend(published);
        if let (1, Some(f)) = (wave, faults) {
            // Each fault stays until a stream batch has met it (and is being retried); with
            // the last one the schedule fires once: that run fails and is recorded on the
            // sync's failure queue. A stream batch has retries to spare (the template allows
            // 5) and the next fault counts as one of them.
            let mut retries = retries_before;
            for (i, fault) in f.mailcow_faults.iter().enumerate() {
                if i > 0 {
                    f.mailcow.fail_with(fault.clone()).await?;
                }
                retries = wait_for_stream_retry(stack, retries, settle_timeout).await?;
                progress(&format!(
                    "wave 2: a stream batch met Mailcow fault {fault} and is being retried"
                ));
            }
            if !stack.drift_repair().await? {
                report.failed_schedules += 1;
                progress("wave 2: the scheduled drift repair failed and went to the failure queue");
            }
            tokio::time::sleep(f.mailcow_outage.saturating_sub(wave_start.elapsed())).await;
            f.mailcow.heal().await?;
            progress(&format!(
                "wave 2: Mailcow healthy again after {:.1} s",
                wave_start.elapsed().as_secs_f64()
            ));
        }
        if let (2, Some(f)) = (wave, faults)
            && f.refuse_credentials
        {
            wait_for_stream_retry(stack, retries_before, settle_timeout).await?;
            progress("wave 3: a stream batch met the refused credentials");
            if !stack.drift_repair().await? {
                report.failed_schedules += 1;
                progress(
                    "wave 3: the scheduled drift repair was refused and went to the failure queue",
                );
            }
            // The operator fixes the allow-list; stream runs leave Mailcow alone after a refusal
            // until a scheduled run gets through, so the next schedule is what resumes them.
            f.mailcow.allow_caller(true).await?;
            if !stack.drift_repair().await? {
                bail!("the drift repair after the credentials were fixed failed");
            }
            progress("wave 3: credentials accepted again, the next scheduled run resumed the sync");
        }
        stack.settle(settle_timeout).await.with_context(|| format!("wave {}", wave + 1))?;
        let seconds = wave_start.elapsed().as_secs_f64();
        progress(&format!("wave {}: processed in {seconds:.1} s", wave + 1));
        report.wave_seconds.push(seconds);
    }
    progress("drift repair: one scheduled run of the sync");
    if !stack.drift_repair().await? {
        bail!("the final drift repair failed; see {}", stack.sync_log.display());
    }
    report.proxy_resets = stack.resets();
    if let Some(Faults { aws: AwsFault::Crash { dynamodb, .. }, .. }) = faults {
        report.dynamodb_restarts = dynamodb.lock().await.restarts();
    }
    report.stream_given_up = stack
        .stream_poller
        .as_ref()
        .map_or(0, |p| p.stats.given_up.load(std::sync::atomic::Ordering::SeqCst));
    report.total_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Waits until the stream poller has retried more batches than `before`; returns the count.
async fn wait_for_stream_retry(
    stack: &Stack,
    before: u64,
    timeout: Duration,
) -> anyhow::Result<u64> {
    let waiting = Instant::now();
    loop {
        let now = stack.stream_retries();
        if now > before {
            return Ok(now);
        }
        if waiting.elapsed() > timeout {
            bail!("no stream batch met the Mailcow fault within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Injects the first wave's AWS fault while the wave is published; returns what it did.
async fn aws_fault(stack: &Stack, fault: &AwsFault) -> anyhow::Result<String> {
    match fault {
        AwsFault::Outage(outage) => {
            // moto and DynamoDB go away while the first wave is being processed.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            stack.pause_aws();
            tokio::time::sleep(*outage).await;
            stack.resume_aws();
            Ok(format!(
                "wave 1: AWS (moto and DynamoDB) unreachable for {outage:?} mid-wave \
                 ({} connections reset)",
                stack.resets()
            ))
        }
        AwsFault::Crash { dynamodb, down } => {
            // Killed while ingest has a batch in hand, after some batches went through.
            let sqs =
                stack.sqs_poller.as_ref().ok_or_else(|| anyhow!("the pollers are stopped"))?;
            let waiting = Instant::now();
            while sqs.stats.batches.load(std::sync::atomic::Ordering::SeqCst) < 5
                || !sqs.stats.busy.load(std::sync::atomic::Ordering::SeqCst)
            {
                if waiting.elapsed() > Duration::from_secs(120) {
                    bail!("ingest never had a batch in hand to crash DynamoDB under");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let mut dynamodb = dynamodb.lock().await;
            dynamodb.kill().await;
            let batch = sqs.stats.batches.load(std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(*down).await;
            dynamodb.restart().await.context("starting DynamoDB Local again")?;
            Ok(format!(
                "wave 1: DynamoDB Local killed (SIGKILL) during ingest batch {batch}, started \
                 again on its data after {down:?}"
            ))
        }
    }
}
