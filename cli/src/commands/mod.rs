//! One module per command; [`run`] dispatches. Commands print results to stdout and notes to
//! stderr, and return whether anything matched.

mod dlq;
mod edit;
mod forget;
mod get;
mod import;
mod list;
mod stats;

use std::io::Write;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::CommandFactory;
use feedback_domain::AddressHasher;

use crate::args::{Cli, Command, Format, GlobalArgs, TableCommand};
use crate::aws;
use crate::output::Style;

/// How a command ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Done; exit 0.
    Done,
    /// Nothing matched (unknown address, empty result); exit 1.
    NothingMatched,
    /// A `doctor` check warned or failed; exit 1.
    ChecksFailed,
}

/// What every command gets: the global flags, the output settings and the time it started.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Global flags.
    pub global: GlobalArgs,
    /// `--json`, `--csv` or tables.
    pub format: Format,
    /// Colour on stdout.
    pub style: Style,
    /// The time the command started: one "now" for every decision of a run.
    pub now: DateTime<Utc>,
}

/// Runs the command the command line names.
///
/// Fails when the command does; the error carries its context.
pub async fn run(cli: Cli) -> anyhow::Result<Status> {
    let ctx = Ctx {
        format: cli.global.format(),
        global: cli.global,
        style: Style::detect(),
        now: Utc::now(),
    };
    match cli.command {
        Command::Table(TableCommand::Create) => create_table(&ctx).await,
        Command::Get(args) => get::run(&ctx, &args).await,
        Command::List(args) => list::list(&ctx, &args).await,
        Command::Add(args) => edit::add(&ctx, &args).await,
        Command::Remove(args) => edit::remove(&ctx, &args).await,
        Command::Forget(args) => forget::run(&ctx, &args).await,
        Command::Import(args) => import::run(&ctx, &args).await,
        Command::Export(args) => list::export(&ctx, &args).await,
        Command::Stats(args) => stats::run(&ctx, &args).await,
        Command::Dlq(args) => dlq::run(&ctx, &args).await,
        Command::Doctor(args) => crate::doctor::run(&ctx, &args).await,
        Command::Hash(args) => {
            let hasher = match &args.hash_key {
                Some(key) => AddressHasher::new(key.as_bytes()),
                None => AddressHasher::default(),
            };
            let hash = hasher.hash(&args.address.key());
            let mut out = std::io::stdout().lock();
            match ctx.format {
                Format::Json => writeln!(out, "{}", serde_json::json!({ "hash": hash }))?,
                _ => writeln!(out, "{hash}")?,
            }
            if args.hash_key.is_none() {
                eprintln!(
                    "note: ADDRESS_HASH_KEY is not set: this is the hash under the default key"
                );
            }
            Ok(Status::Done)
        }
        Command::Completions(args) => {
            let mut command = Cli::command();
            clap_complete::generate(
                args.shell,
                &mut command,
                "suppressions",
                &mut std::io::stdout(),
            );
            Ok(Status::Done)
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            std::io::stdout().lock().write_all(&page)?;
            Ok(Status::Done)
        }
    }
}

async fn create_table(ctx: &Ctx) -> anyhow::Result<Status> {
    let store = aws::store(&ctx.global).await?;
    suppression_store::schema::create_table(store.client(), store.table())
        .await
        .with_context(|| format!("could not create table {}", store.table()))?;
    println!(
        "created table {} (indexes by-state-reason and by-domain, stream NEW_AND_OLD_IMAGES, \
         TTL on `ttl`)",
        store.table()
    );
    Ok(Status::Done)
}
