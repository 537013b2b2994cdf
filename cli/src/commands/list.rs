//! `list` and `export`: entries read from the table's indexes, never by a scan.
//!
//! Without `--domain`, `list` queries the `by-state-reason` partitions it needs (one per state
//! and reason, with the time range as a sort-key range) and merges them newest first, fetching
//! pages only as output needs them. With `--domain` it reads the `by-domain` partition and
//! filters the rest. `export` streams every partition page by page.

use std::collections::VecDeque;
use std::io::Write;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use feedback_domain::{AddressRecord, DomainName, SuppressionReason, SuppressionState};
use suppression_store::{
    Cursor, DynamoDbSuppressionStore, ExpiryFilter, StateReasonQuery, StoredState,
};

use super::{Ctx, Status};
use crate::args::{ExportArgs, ExportFormat, Format, ListArgs, StateFilter};
use crate::aws;
use crate::output::{self, Table};

/// When the state of a record last changed: its release, or the start of its suppression.
fn changed_at(record: &AddressRecord) -> Option<DateTime<Utc>> {
    record.suppression.as_ref().map(|s| match &s.state {
        SuppressionState::Released { at, .. } => *at,
        SuppressionState::Active => s.since,
    })
}

/// The filters of `list`, resolved against the start time of the run.
struct Filter {
    reason: Option<SuppressionReason>,
    state: Option<StateFilter>,
    from: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
}

impl Filter {
    fn matches(&self, record: &AddressRecord) -> bool {
        let Some(sup) = &record.suppression else { return false };
        let state = record.state_name(self.now);
        let changed = changed_at(record);
        self.reason.is_none_or(|r| r == sup.reason)
            && self.state.is_none_or(|s| state == state_name(s))
            && self.from.is_none_or(|from| changed.is_some_and(|c| c >= from))
            && self.before.is_none_or(|before| changed.is_some_and(|c| c < before))
    }
}

fn state_name(state: StateFilter) -> &'static str {
    match state {
        StateFilter::Active => "active",
        StateFilter::Expired => "expired",
        StateFilter::Released => "released",
    }
}

/// One `by-state-reason` partition being read page by page.
struct Partition {
    query: StateReasonQuery,
    buffer: VecDeque<AddressRecord>,
    next: Option<Cursor>,
    done: bool,
}

impl Partition {
    /// The next record of the partition, fetching pages while the buffer is empty.
    async fn head(
        &mut self,
        store: &DynamoDbSuppressionStore,
    ) -> anyhow::Result<Option<&AddressRecord>> {
        while self.buffer.is_empty() && !self.done {
            let page = store.state_reason_page(&self.query, self.next.take()).await?;
            self.buffer.extend(page.records);
            self.next = page.next;
            self.done = self.next.is_none();
        }
        Ok(self.buffer.front())
    }
}

fn partitions(filter: &Filter, newest_first: bool, page_size: Option<i32>) -> Vec<Partition> {
    let plans: Vec<(StoredState, ExpiryFilter)> = match filter.state {
        None => vec![
            (StoredState::Active, ExpiryFilter::Any),
            (StoredState::Released, ExpiryFilter::Any),
        ],
        Some(StateFilter::Active) => {
            vec![(StoredState::Active, ExpiryFilter::InForceAt(filter.now))]
        }
        Some(StateFilter::Expired) => {
            vec![(StoredState::Active, ExpiryFilter::ExpiredAt(filter.now))]
        }
        Some(StateFilter::Released) => vec![(StoredState::Released, ExpiryFilter::Any)],
    };
    let reasons: Vec<SuppressionReason> = match filter.reason {
        Some(reason) => vec![reason],
        None => SuppressionReason::ALL.to_vec(),
    };
    let mut out = Vec::new();
    for (state, expiry) in plans {
        for reason in &reasons {
            out.push(Partition {
                query: StateReasonQuery {
                    state,
                    reason: *reason,
                    changed_from: filter.from,
                    changed_before: filter.before,
                    expiry,
                    newest_first,
                    page_size,
                },
                buffer: VecDeque::new(),
                next: None,
                done: false,
            });
        }
    }
    out
}

/// Where `list` writes: a table collected to align it, or lines streamed as they come.
enum Sink<'a> {
    Table(Table),
    Lines(std::io::StdoutLock<'a>),
}

impl Sink<'_> {
    fn push(&mut self, ctx: &Ctx, record: &AddressRecord) -> std::io::Result<()> {
        match self {
            Self::Table(table) => {
                table.row(output::record_row(record, ctx.now, &ctx.style));
                Ok(())
            }
            Self::Lines(out) if ctx.format == Format::Json => {
                writeln!(out, "{}", output::record_json(record, ctx.now))
            }
            Self::Lines(out) => {
                writeln!(out, "{}", output::csv_line(&output::record_csv(record, ctx.now)))
            }
        }
    }
}

/// Lists the entries the filters select; exit 1 when there are none.
///
/// Fails when the table cannot be read or `--domain` is not a domain name.
pub async fn list(ctx: &Ctx, args: &ListArgs) -> anyhow::Result<Status> {
    let store = aws::store(&ctx.global).await?;
    let filter = Filter {
        reason: args.reason,
        state: args.state,
        from: args.since.map(|m| m.start(ctx.now)),
        before: args.until.map(|m| m.end(ctx.now)),
        now: ctx.now,
    };
    let limit = args.limit.unwrap_or(usize::MAX);
    let mut sink = match ctx.format {
        Format::Human => Sink::Table(Table::new(&output::LIST_HEADER, &ctx.style)),
        Format::Json => Sink::Lines(std::io::stdout().lock()),
        Format::Csv => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", output::RECORD_CSV_HEADER.join(","))?;
            Sink::Lines(out)
        }
    };
    let mut shown = 0;
    if let Some(domain) = &args.domain {
        let domain = DomainName::parse(domain)
            .map_err(|e| anyhow::anyhow!("--domain is not a domain name: {e}"))?;
        let mut next = None;
        'pages: loop {
            let page = store.domain_page(domain.as_str(), None, next).await?;
            for record in page.records.iter().filter(|r| filter.matches(r)) {
                if shown == limit {
                    break 'pages;
                }
                sink.push(ctx, record)?;
                shown += 1;
            }
            next = page.next;
            if next.is_none() {
                break;
            }
        }
    } else {
        let page_size = args.limit.map(|l| i32::try_from(l.clamp(10, 1000)).unwrap_or(1000));
        let mut parts = partitions(&filter, true, page_size);
        while shown < limit {
            // Newest state change first across every partition: take the largest head.
            let mut best: Option<(usize, (DateTime<Utc>, String))> = None;
            for (index, part) in parts.iter_mut().enumerate() {
                if let Some(head) = part.head(&store).await? {
                    let order =
                        (changed_at(head).unwrap_or(DateTime::UNIX_EPOCH), head.target.key());
                    if best.as_ref().is_none_or(|(_, b)| order > *b) {
                        best = Some((index, order));
                    }
                }
            }
            let Some((index, _)) = best else { break };
            let Some(record) = parts[index].buffer.pop_front() else { break };
            // The index answers by partition and range; the filter re-checks what it
            // cannot express (an expiry passing between the query and now).
            if filter.matches(&record) {
                sink.push(ctx, &record)?;
                shown += 1;
            }
        }
    }
    if let Sink::Table(table) = &sink
        && table.len() > 0
    {
        table.write(&mut std::io::stdout().lock())?;
    }
    if shown == 0 {
        eprintln!("no entries match");
        return Ok(Status::NothingMatched);
    }
    Ok(Status::Done)
}

/// Writes every entry with a suppression (any state), partition by partition, page by page.
///
/// Fails when the table cannot be read or stdout is closed.
pub async fn export(ctx: &Ctx, args: &ExportArgs) -> anyhow::Result<Status> {
    let store = aws::store(&ctx.global).await?;
    let filter = Filter { reason: None, state: None, from: None, before: None, now: ctx.now };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.format == ExportFormat::Csv {
        writeln!(out, "{}", output::RECORD_CSV_HEADER.join(","))?;
    }
    let mut count = 0u64;
    for mut part in partitions(&filter, false, None) {
        loop {
            let page = store
                .state_reason_page(&part.query, part.next.take())
                .await
                .context("export stopped; the output is incomplete")?;
            for record in &page.records {
                match args.format {
                    ExportFormat::Csv => {
                        writeln!(out, "{}", output::csv_line(&output::record_csv(record, ctx.now)))?
                    }
                    ExportFormat::Json => {
                        writeln!(out, "{}", output::record_json(record, ctx.now))?
                    }
                }
                count += 1;
            }
            out.flush()?;
            part.next = page.next;
            if part.next.is_none() {
                break;
            }
        }
    }
    eprintln!("exported {count} entries");
    Ok(Status::Done)
}
