//! `local-stack`: runs the seeded scenario against moto, DynamoDB Local and the simulators that
//! `scripts/demo` started, prints what happened, and checks the final state against the
//! expectation. With `--keep` it stays up (pollers and functions running) until interrupted.
//!
//! Exit status: 0 when the final state matches the expectation exactly, 1 when it differs, 2 on
//! an error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chrono::{SubsecRound, Utc};
use clap::Parser;
use feedback_domain::AddressHasher;
use local_stack::check;
use local_stack::figures::Figures;
use local_stack::generator::{self, Mix};
use local_stack::runtime::binaries_next_to;
use local_stack::sims::MailcowControl;
use local_stack::stack::{Faults, Stack, StackConfig, run_scenario};

/// Runs the whole system locally: topology from infra/template.yaml, the real function
/// binaries behind a Lambda Runtime API, event-source pollers, and a seeded feedback scenario.
#[derive(Debug, Parser)]
#[command(version, max_term_width = 100)]
struct Args {
    /// moto (SQS, SNS, Secrets Manager).
    #[arg(long, env = "MOTO_ENDPOINT", value_name = "URL")]
    moto_endpoint: String,
    /// DynamoDB Local (the suppression table and its stream).
    #[arg(long, env = "DYNAMODB_LOCAL_ENDPOINT", value_name = "URL")]
    dynamodb_endpoint: String,
    /// Base URL of the running mailcow-sim.
    #[arg(long, value_name = "URL")]
    mailcow_url: String,
    /// Its read-write API key.
    #[arg(long, env = "MAILCOW_SIM_RW_KEY", hide_env_values = true, value_name = "KEY")]
    mailcow_key: String,
    /// Base URL of the running ses-suppression-sim.
    #[arg(long, value_name = "URL")]
    ses_url: String,
    /// Directory of the workspace binaries (default: next to this program).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// The SAM template to create the topology from.
    #[arg(long, value_name = "FILE", default_value = TEMPLATE)]
    template: PathBuf,
    /// Stack name: prefix of every resource.
    #[arg(long, default_value = "demo")]
    stack_name: String,
    /// Region of the topology.
    #[arg(long, env = "AWS_REGION", default_value = "eu-central-1")]
    region: String,
    /// Seed of the scenario.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Run without the AWS outage and the Mailcow failures.
    #[arg(long)]
    no_faults: bool,
    /// Multiplies every story of the scenario (29 gives a little over 10,000 notifications).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
    scale: u16,
    /// Least time between two SES calls of the sync (`SES_MIN_INTERVAL_MS`; default: the
    /// function's own, one per second). 0 only with a simulator that does not throttle.
    #[arg(long, value_name = "MS")]
    ses_interval_ms: Option<u64>,
    /// Keep the stack running after the scenario, until interrupted.
    #[arg(long)]
    keep: bool,
    /// Write shell `export` lines for the CLI to this file.
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// Create this file once the scenario is done (its content is the exit status).
    #[arg(long, value_name = "FILE")]
    ready_file: Option<PathBuf>,
    /// Where the functions' logs go.
    #[arg(long, value_name = "DIR", default_value = ".local/demo-logs")]
    log_dir: PathBuf,
}

/// The template of this checkout.
const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/template.yaml");

/// The key of the hash logs carry in the demo (a demo value, not a secret).
const DEMO_HASH_KEY: &str = "local-demo-address-hash-key-0123456789abcdef";

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let ready = args.ready_file.clone();
    let code = match run(args).await {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("local-stack: {e:#}");
            2
        }
    };
    if let Some(path) = ready {
        let _ = std::fs::write(path, code.to_string());
    }
    ExitCode::from(code)
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => binaries_next_to(&std::env::current_exe()?)
            .context("cannot tell where the workspace binaries are; pass --bin-dir")?,
    };
    let config = StackConfig {
        moto_endpoint: args.moto_endpoint.clone(),
        dynamodb_endpoint: args.dynamodb_endpoint.clone(),
        mailcow_url: args.mailcow_url.clone(),
        mailcow_key: args.mailcow_key.clone(),
        ses_url: args.ses_url.clone(),
        bin_dir,
        template: args.template.clone(),
        stack_name: args.stack_name.clone(),
        region: args.region.clone(),
        log_dir: args.log_dir.clone(),
        hash_key: DEMO_HASH_KEY.to_owned(),
        sync_environment: args
            .ses_interval_ms
            .map(|ms| ("SES_MIN_INTERVAL_MS".to_owned(), ms.to_string()))
            .into_iter()
            .collect(),
    };
    let stack = Stack::start(&config).await?;
    print_topology(&stack);

    let base = (Utc::now() - chrono::Duration::days(1)).trunc_subsecs(0);
    let scenario = generator::generate(args.seed, base, Mix { scale: usize::from(args.scale) })?;
    let expected =
        generator::expect(&scenario, &stack.policy, stack.retention, |w| (0..w.len()).collect())
            .await?;
    println!(
        "\nscenario: seed {}, {} SES notifications in {} waves",
        args.seed,
        scenario.notifications.len(),
        scenario.waves()
    );
    for (story, count) in scenario.stories() {
        println!("  {count:>4}  {story}");
    }
    println!();

    let mailcow = MailcowControl::new(&args.mailcow_url);
    let faults = Faults::standard(mailcow.clone(), Duration::from_secs(4), Duration::from_secs(5));
    let report = run_scenario(
        &stack,
        &scenario,
        (!args.no_faults).then_some(&faults),
        Duration::from_secs(240 * u64::from(args.scale)),
        |line| println!("  {line}"),
    )
    .await?;

    let now = Utc::now();
    let observed = check::observe(&stack, &mailcow, &args.ses_url, &expected, now).await?;
    let differences = check::differences(
        &scenario,
        &expected,
        &report,
        &observed,
        now,
        &AddressHasher::new(DEMO_HASH_KEY.as_bytes()),
    );
    let sqs = stack.sqs_poller.as_ref().map(|p| &p.stats);
    println!(
        "\nrun: {:.1} s for {} notifications",
        report.total_seconds,
        scenario.notifications.len()
    );
    println!(
        "  ingest: {} invocations, {} records left on the queue by batchItemFailures, {} calls \
         to SQS failed",
        stack.ingest.invocations(),
        sqs.map_or(0, |s| s.reported_failed.load(std::sync::atomic::Ordering::Relaxed)),
        sqs.map_or(0, |s| s.sqs_errors.load(std::sync::atomic::Ordering::Relaxed)),
    );
    if let Some(stream) = stack.stream_poller.as_ref().map(|p| &p.stats) {
        let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        println!(
            "  sync: {} invocations ({} from the stream, {} retried, {} stream records filtered \
             out), {} failed scheduled run(s)",
            stack.sync.invocations(),
            get(&stream.invocations),
            get(&stream.retries),
            get(&stream.filtered_out),
            report.failed_schedules
        );
    }
    let figures = Figures::collect(&stack, &report, &expected, &mailcow, &args.ses_url).await?;
    for line in figures.lines() {
        println!("  {line}");
    }
    let counts = check::outcome_counts(&observed);
    println!(
        "  outcomes logged by ingest: {}   (expected: {})",
        counts.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "),
        expected.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    );
    println!(
        "  table: {} address records, {} suppressions in force; Mailcow map: {} entries; SES \
         list: {} entries; quarantine: {}; DLQ: {}; sync failures: {}",
        observed.table.records.len(),
        expected.blocked_at(now).len(),
        observed.map_lines,
        observed.ses.len(),
        observed.quarantine.len(),
        observed.dead_letter.len(),
        observed.sync_failures.len()
    );
    if differences.is_empty() {
        println!("  check: the final state matches the expectation exactly");
    } else {
        println!("  check: {} differences from the expected state:", differences.len());
        for d in &differences {
            println!("    {d}");
        }
    }
    println!("  function logs: {}", args.log_dir.display());

    if let Some(path) = &args.env_file {
        write_env(path, &stack, &args)?;
    }
    if let Some(path) = &args.ready_file {
        std::fs::write(path, if differences.is_empty() { "0" } else { "1" })?;
    }
    if args.keep {
        println!("\nthe stack keeps running (pollers and functions); interrupt to stop it");
        wait_for_signal().await;
    }
    stack.stop().await;
    Ok(differences.is_empty())
}

fn print_topology(stack: &Stack) {
    let t = &stack.topology;
    println!("topology from infra/template.yaml (stack {}):", t.stack);
    for (topic, queue, raw) in &t.subscriptions {
        println!("  subscription  {topic} -> {queue} (raw delivery {raw})");
    }
    for q in t.queues.values() {
        let template = match q.template_visibility {
            Some(v) if v != q.visibility_timeout => format!(" (template {v} s)"),
            _ => String::new(),
        };
        let redrive = match &q.redrive {
            Some((dlq, max)) => format!(", to {dlq} after {max} receives"),
            None => String::new(),
        };
        println!(
            "  queue         {} visibility {} s{template}{redrive}",
            q.name, q.visibility_timeout
        );
    }
    println!(
        "  table         {} with stream and TTL, created by suppression_store::schema",
        t.table
    );
    for f in &t.functions {
        let sources: Vec<String> = f
            .sqs
            .iter()
            .map(|s| format!("SQS {} batch {}", s.queue, s.batch_size))
            .chain(f.streams.iter().map(|s| {
                format!(
                    "stream batch {}, {} filter(s), {} retries then {}",
                    s.batch_size,
                    s.filters.len(),
                    s.max_retries,
                    s.on_failure.as_deref().unwrap_or("nothing")
                )
            }))
            .chain(f.schedules.iter().map(|s| format!("schedule {s}")))
            .collect();
        println!("  function      {} ({}): {}", f.name, f.binary, sources.join("; "));
    }
    println!(
        "  note          SNS signatures are not verified locally: moto signs with a placeholder \
         and an unreachable certificate URL, so ingest runs with REQUIRE_SIGNATURE=false and no \
         ALLOWED_TOPIC_ARNS. Verification is tested with real signed fixtures elsewhere."
    );
}

fn write_env(path: &std::path::Path, stack: &Stack, args: &Args) -> anyhow::Result<()> {
    let url = |logical: &str| stack.url(logical).unwrap_or_default();
    let text = format!(
        "export AWS_REGION={region}\n\
         export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test\n\
         export SUPPRESSION_TABLE={table}\n\
         export FEEDBACK_QUEUE_URL={feedback}\n\
         export FEEDBACK_DLQ_URL={dlq}\n\
         export QUARANTINE_QUEUE_URL={quarantine}\n\
         export SES_ENDPOINT_URL={ses}\n\
         export ADDRESS_HASH_KEY={hash}\n\
         # the CLI takes one endpoint: DynamoDB Local for the table commands, moto for `dlq`\n\
         export DYNAMODB_ENDPOINT={dynamodb}\n\
         export MOTO_ENDPOINT={moto}\n\
         export MAILCOW_SIM_URL={mailcow}\n",
        region = stack.topology.region,
        table = stack.topology.table,
        feedback = url(&stack.wiring.feedback),
        dlq = url(&stack.wiring.dead_letter),
        quarantine = url(&stack.wiring.quarantine),
        ses = args.ses_url,
        hash = DEMO_HASH_KEY,
        dynamodb = args.dynamodb_endpoint,
        moto = args.moto_endpoint,
        mailcow = args.mailcow_url,
    );
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
