//! `import --from-ses` and `import FILE.csv`: bulk manual suppressions from the SES
//! account-level suppression list or from a CSV file.
//!
//! Both plan first (one consistent batch read per 50 addresses) and show a dry run unless
//! `--apply`. Writes are idempotent: each address gets the history key `import:ses:<address>`
//! or `import:csv:<address>`, so an address imported once is never imported again (even after
//! a release), and addresses already suppressed are skipped. The SES listing is paced by the
//! `ses_account_list` adapter (one request per second, retries on throttling); with `--apply`
//! its position is saved after every page, so a rerun after an interruption continues there.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::time::Duration as StdDuration;

use anyhow::{Context as _, bail};
use chrono::Duration;
use feedback_domain::policy::{self, Decision, ManualSuppression};
use feedback_domain::ports::Retryable;
use feedback_domain::{SuppressionReason, SuppressionTarget};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use ses_account_list::{Entry, SesAccountList, SesAccountListConfig, SesListError};
use suppression_store::{Checkpoint, DynamoDbSuppressionStore};
use tokio::task::JoinSet;

use super::{Ctx, Status};
use crate::args::{Format, ImportArgs};
use crate::aws;
use crate::csv::{self, Row};
use crate::output::{Table, short};
use crate::timespec::parse_expiry;
use crate::write::{self, EventLabel, Suppressed};

/// Writes in flight at once during `--apply`.
const CONCURRENT_WRITES: usize = 8;
/// Addresses planned (read) together.
const PLAN_BATCH: usize = 500;
/// Planned imports shown in a human dry run.
const SAMPLE: usize = 20;
/// Name of the SES import's checkpoint.
const SES_CHECKPOINT: &str = "ses";
/// How long a saved SES position is kept: SES tokens do not live long.
const CHECKPOINT_KEEP_DAYS: i64 = 7;
/// Extra waits after the adapter gave up on a throttled or failing SES page.
const SES_PAGE_RETRIES: u32 = 3;

/// One address an import wants to suppress.
#[derive(Debug, Clone)]
struct Candidate {
    /// CSV line, if from a file.
    line: Option<usize>,
    target: SuppressionTarget,
    request: ManualSuppression,
    label: EventLabel,
}

/// What happens (or happened) to a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Would be imported (dry run) or was imported.
    Import,
    /// Suppressed already: skipped.
    Already(SuppressionReason),
    /// Imported by an earlier run (history key exists): skipped.
    Before,
    /// The same address appeared earlier in this import: skipped.
    Repeated,
}

impl Action {
    fn name(self, apply: bool) -> &'static str {
        match self {
            Self::Import if apply => "imported",
            Self::Import => "would_import",
            Self::Already(_) => "already_suppressed",
            Self::Before => "imported_before",
            Self::Repeated => "repeated",
        }
    }
}

/// Counts for the summary.
#[derive(Debug, Default)]
struct Tally {
    import: u64,
    already: u64,
    before: u64,
    repeated: u64,
    not_active: u64,
    invalid: u64,
}

/// State shared by the batches of one run.
struct Run<'a> {
    ctx: &'a Ctx,
    store: DynamoDbSuppressionStore,
    apply: bool,
    seen: HashSet<String>,
    tally: Tally,
    sample: Vec<Candidate>,
    progress: ProgressBar,
}

impl Run<'_> {
    /// Plans a batch and, with `--apply`, writes it.
    async fn process(&mut self, batch: Vec<Candidate>) -> anyhow::Result<()> {
        let keys: Vec<_> = batch.iter().map(|c| (c.target.key(), c.label.key.clone())).collect();
        let statuses = self.store.import_status(&keys).await?;
        let mut writes = Vec::new();
        let mut decided = Vec::new();
        for (candidate, status) in batch.into_iter().zip(statuses) {
            let action = if !self.seen.insert(candidate.target.key()) {
                Action::Repeated
            } else if status.imported_before {
                Action::Before
            } else {
                let prior = status.record.as_ref();
                let (decision, _) = policy::suppress_manually(
                    prior,
                    &candidate.target,
                    &candidate.request,
                    self.ctx.now,
                );
                match decision {
                    Decision::AlreadySuppressed { reason } => Action::Already(reason),
                    _ => Action::Import,
                }
            };
            if action == Action::Import && self.apply {
                writes.push((candidate, status.record));
            } else {
                decided.push((candidate, action));
            }
        }
        decided.extend(self.write_all(writes).await?);
        for (candidate, action) in decided {
            self.record(&candidate, action)?;
        }
        Ok(())
    }

    /// Writes planned imports, [`CONCURRENT_WRITES`] at a time.
    async fn write_all(
        &self,
        writes: Vec<(Candidate, Option<feedback_domain::AddressRecord>)>,
    ) -> anyhow::Result<Vec<(Candidate, Action)>> {
        let mut done = Vec::new();
        let mut tasks = JoinSet::new();
        let mut pending = writes.into_iter();
        loop {
            while tasks.len() < CONCURRENT_WRITES {
                let Some((candidate, prior)) = pending.next() else { break };
                let store = self.store.clone();
                let now = self.ctx.now;
                tasks.spawn(async move {
                    let outcome = write::suppress(
                        &store,
                        &candidate.target,
                        &candidate.request,
                        &candidate.label,
                        now,
                        Some(prior),
                    )
                    .await;
                    (candidate, outcome)
                });
            }
            let Some(joined) = tasks.join_next().await else { break };
            let (candidate, outcome) = joined.context("an import task failed")?;
            let action = match outcome.context("import stopped; run it again to continue")? {
                Suppressed::Applied(_) => Action::Import,
                Suppressed::Already(reason) => Action::Already(reason),
                Suppressed::Duplicate => Action::Before,
            };
            self.progress.inc(1);
            done.push((candidate, action));
        }
        Ok(done)
    }

    fn record(&mut self, candidate: &Candidate, action: Action) -> anyhow::Result<()> {
        match action {
            Action::Import => {
                self.tally.import += 1;
                if self.sample.len() < SAMPLE {
                    self.sample.push(candidate.clone());
                }
            }
            Action::Already(_) => self.tally.already += 1,
            Action::Before => self.tally.before += 1,
            Action::Repeated => self.tally.repeated += 1,
        }
        if !self.apply || action != Action::Import {
            self.progress.inc(1);
        }
        if self.ctx.format == Format::Json {
            let line = json!({
                "line": candidate.line,
                "address": candidate.target.key(),
                "action": action.name(self.apply),
                "reason": candidate.request.reason.as_str(),
                "current_reason": match action {
                    Action::Already(reason) => Some(reason.as_str()),
                    _ => None,
                },
            });
            self.progress.suspend(|| writeln!(std::io::stdout().lock(), "{line}"))?;
        }
        Ok(())
    }

    /// Prints the summary (and the sample in a human dry run).
    fn finish(&self, source: &str) -> anyhow::Result<()> {
        self.progress.finish_and_clear();
        let t = &self.tally;
        let mut out = std::io::stdout().lock();
        if self.ctx.format == Format::Json {
            let summary = json!({
                "summary": true,
                "source": source,
                "applied": self.apply,
                "import": t.import,
                "already_suppressed": t.already,
                "imported_before": t.before,
                "repeated": t.repeated,
                "not_active": t.not_active,
                "invalid": t.invalid,
            });
            eprintln!("{summary}");
            return Ok(());
        }
        if !self.apply && !self.sample.is_empty() {
            let mut table = Table::new(&["LINE", "ADDRESS", "REASON", "EXPIRES"], &self.ctx.style);
            for c in &self.sample {
                table.row(vec![
                    c.line.map_or_else(|| "-".to_owned(), |l| l.to_string()),
                    c.target.key(),
                    c.request.reason.as_str().to_owned(),
                    c.request.expires_at.map_or_else(|| "never".to_owned(), short),
                ]);
            }
            table.write(&mut out)?;
            if t.import > self.sample.len() as u64 {
                writeln!(
                    out,
                    "... and {} more (--json lists all)",
                    t.import - self.sample.len() as u64
                )?;
            }
            writeln!(out)?;
        }
        let verb = if self.apply { "imported" } else { "would import" };
        let lines = [
            (verb, t.import),
            ("already suppressed", t.already),
            ("imported before", t.before),
            ("repeated in the input", t.repeated),
            ("not active (skipped)", t.not_active),
            ("invalid (skipped)", t.invalid),
        ];
        writeln!(out, "{source}:")?;
        for (label, count) in lines {
            if count > 0 || label == verb {
                writeln!(out, "  {label:<22} {count:>7}")?;
            }
        }
        if !self.apply {
            writeln!(out, "dry run: nothing was written; run again with --apply to import")?;
        }
        Ok(())
    }
}

fn progress_bar(len: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    match len {
        Some(len) => {
            let bar = ProgressBar::new(len);
            if let Ok(style) =
                ProgressStyle::with_template("{bar:40} {pos}/{len} addresses ({eta} left)")
            {
                bar.set_style(style);
            }
            bar
        }
        None => {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {pos} addresses {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(StdDuration::from_millis(200));
            bar
        }
    }
}

/// Runs the import the arguments ask for.
///
/// Fails when the source or the table cannot be read, a write fails, or (CSV) some rows were
/// broken; good rows are still imported with `--apply`.
pub async fn run(ctx: &Ctx, args: &ImportArgs) -> anyhow::Result<Status> {
    let store = aws::store(&ctx.global).await?;
    let mut run = Run {
        ctx,
        store,
        apply: args.apply,
        seen: HashSet::new(),
        tally: Tally::default(),
        sample: Vec::new(),
        progress: ProgressBar::hidden(),
    };
    match &args.file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("could not read {}", path.display()))?;
            import_csv(&mut run, &text, args.reason).await
        }
        None => import_ses(&mut run, args).await,
    }
}

/// Columns of an import file.
struct Columns {
    address: usize,
    reason: Option<usize>,
    note: Option<usize>,
    expires: Option<usize>,
    state: Option<usize>,
}

impl Columns {
    /// Reads a header row, or `None` when the row is data.
    fn from_header(row: &Row) -> Option<Self> {
        let names: Vec<String> = row.fields.iter().map(|f| f.trim().to_lowercase()).collect();
        let find = |wanted: &[&str]| names.iter().position(|n| wanted.contains(&n.as_str()));
        let address = find(&["address", "email", "email_address", "emailaddress"])?;
        Some(Self {
            address,
            reason: find(&["reason"]),
            note: find(&["note"]),
            expires: find(&["expires_at", "expires"]),
            state: find(&["state"]),
        })
    }
}

async fn import_csv(
    run: &mut Run<'_>,
    text: &str,
    default_reason: SuppressionReason,
) -> anyhow::Result<Status> {
    let rows = csv::read(text);
    let mut broken = 0u64;
    let mut report = |line: usize, problem: &str| {
        broken += 1;
        eprintln!("line {line}: {problem}; row skipped");
    };
    let mut rows = rows.into_iter().peekable();
    let columns = match rows.peek() {
        Some(Ok(first)) => match Columns::from_header(first) {
            Some(columns) => {
                rows.next();
                columns
            }
            None => Columns { address: 0, reason: Some(1), note: None, expires: None, state: None },
        },
        _ => Columns { address: 0, reason: Some(1), note: None, expires: None, state: None },
    };
    let mut candidates = Vec::new();
    for row in rows {
        let row = match row {
            Ok(row) => row,
            Err(bad) => {
                report(bad.line, bad.problem);
                continue;
            }
        };
        let field = |index: Option<usize>| {
            index.and_then(|i| row.fields.get(i)).map(|f| f.trim()).filter(|f| !f.is_empty())
        };
        if field(columns.state).is_some_and(|s| s != "active") {
            run.tally.not_active += 1;
            continue;
        }
        let Some(raw) = field(Some(columns.address)) else {
            report(row.line, "no address");
            continue;
        };
        let target = match SuppressionTarget::parse(raw) {
            Ok(target) => target,
            Err(e) => {
                report(row.line, &e.to_string());
                continue;
            }
        };
        let reason = match field(columns.reason).map(str::parse::<SuppressionReason>) {
            None => default_reason,
            Some(Ok(reason)) => reason,
            Some(Err(e)) => {
                report(row.line, &e.to_string());
                continue;
            }
        };
        let expires_at = match parse_expiry(field(columns.expires).unwrap_or("")) {
            Ok(expiry) => expiry,
            Err(problem) => {
                report(row.line, &problem);
                continue;
            }
        };
        if expires_at.is_some_and(|end| end <= run.ctx.now) {
            run.tally.not_active += 1;
            continue;
        }
        candidates.push(Candidate {
            line: Some(row.line),
            label: EventLabel {
                key: format!("import:csv:{}", target.key()),
                event_type: "import",
                sub_type: Some("csv".to_owned()),
            },
            target,
            request: ManualSuppression {
                reason,
                expires_at,
                source: "csv_import".to_owned(),
                note: field(columns.note).map(str::to_owned),
            },
        });
    }
    run.progress = progress_bar(Some(candidates.len() as u64));
    let mut pending = candidates.into_iter().peekable();
    while pending.peek().is_some() {
        let batch: Vec<_> = pending.by_ref().take(PLAN_BATCH).collect();
        run.process(batch).await?;
    }
    run.finish("CSV file")?;
    if broken > 0 {
        bail!(
            "{broken} row(s) could not be imported (line numbers above){}: fix them and import \
             again; rows already imported are skipped",
            if run.apply { "; the good rows were imported" } else { "" }
        );
    }
    let matched = run.tally.import + run.tally.already + run.tally.before;
    Ok(if matched == 0 { Status::NothingMatched } else { Status::Done })
}

fn ses_candidate(entry: &Entry) -> Result<Candidate, String> {
    let address = entry.normalized_address().map_err(|e| {
        let domain = entry.address.rsplit_once('@').map_or("", |(_, d)| d);
        format!("an SES entry at {domain} is not a valid address ({e}); skipped")
    })?;
    let target = SuppressionTarget::Address(address);
    Ok(Candidate {
        line: None,
        label: EventLabel {
            key: format!("import:ses:{}", target.key()),
            event_type: "import",
            sub_type: Some(format!("ses:{}", entry.reason.as_str())),
        },
        target,
        request: ManualSuppression {
            reason: SuppressionReason::SesAccountList,
            expires_at: None,
            source: "ses_import".to_owned(),
            note: Some(format!(
                "SES account list: {} since {}",
                entry.reason.as_str(),
                crate::output::exact(entry.last_update)
            )),
        },
    })
}

async fn import_ses(run: &mut Run<'_>, args: &ImportArgs) -> anyhow::Result<Status> {
    let config = aws::sdk_config(&run.ctx.global).await?;
    let mut ses_config = aws_sdk_sesv2::config::Builder::from(&config);
    if let Some(url) = &args.ses_endpoint_url {
        ses_config = ses_config.endpoint_url(url);
    }
    let list = SesAccountList::new(
        aws_sdk_sesv2::Client::from_conf(ses_config.build()),
        SesAccountListConfig::default(),
    );
    let mut token = None;
    let mut pages = 0u64;
    if args.apply {
        if args.restart {
            run.store.clear_checkpoint(SES_CHECKPOINT).await?;
        } else if let Some(saved) = run.store.checkpoint(SES_CHECKPOINT).await? {
            eprintln!(
                "continuing an interrupted import after page {} (saved {}); --restart starts over",
                saved.pages,
                short(saved.saved_at)
            );
            token = Some(saved.token);
            pages = saved.pages;
        }
    }
    run.progress = progress_bar(None);
    let mut resumed = token.is_some();
    loop {
        let page = match list_page(&list, token.clone(), args.ses_page_size, &run.progress).await {
            Ok(page) => page,
            Err(SesListError::InvalidNextToken { .. }) if resumed => {
                run.progress.suspend(|| {
                    eprintln!("the saved position has expired; starting from the first page");
                });
                resumed = false;
                token = None;
                pages = 0;
                continue;
            }
            Err(e) => {
                return Err(e).context(if run.apply {
                    "SES listing stopped; run the import again to continue from the last page"
                } else {
                    "SES listing stopped"
                });
            }
        };
        let mut batch = Vec::new();
        for entry in &page.entries {
            match ses_candidate(entry) {
                Ok(candidate) => batch.push(candidate),
                Err(problem) => {
                    run.tally.invalid += 1;
                    run.progress.suspend(|| eprintln!("{problem}"));
                }
            }
        }
        run.process(batch).await?;
        pages += 1;
        run.progress.set_message(format!("from {pages} SES pages"));
        token = page.next_token;
        let Some(next) = &token else { break };
        if run.apply {
            let checkpoint = Checkpoint { token: next.clone(), pages, saved_at: run.ctx.now };
            run.store
                .save_checkpoint(SES_CHECKPOINT, &checkpoint, Duration::days(CHECKPOINT_KEEP_DAYS))
                .await?;
        }
    }
    if run.apply {
        run.store.clear_checkpoint(SES_CHECKPOINT).await?;
    }
    run.finish(&format!("SES account list ({pages} pages)"))?;
    let matched = run.tally.import + run.tally.already + run.tally.before;
    Ok(if matched == 0 { Status::NothingMatched } else { Status::Done })
}

/// One SES page; when the adapter gave up on a retryable failure (throttling), waits and asks
/// again a few times before failing.
async fn list_page(
    list: &SesAccountList,
    token: Option<String>,
    page_size: u16,
    progress: &ProgressBar,
) -> Result<ses_account_list::Page, SesListError> {
    let mut attempt = 0;
    loop {
        match list.list_page(token.clone(), page_size).await {
            Err(e) if e.is_retryable() && attempt < SES_PAGE_RETRIES => {
                attempt += 1;
                let wait = StdDuration::from_secs(5 * u64::from(attempt));
                progress.suspend(|| {
                    eprintln!(
                        "SES answered {}; waiting {} s before asking again",
                        e.kind(),
                        wait.as_secs()
                    );
                });
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}
