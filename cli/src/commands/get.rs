//! `get`: everything stored about one address or domain entry, with its event history.

use std::io::Write;

use feedback_domain::{AddressRecord, SuppressionState, SuppressionTarget};
use serde_json::Value;

use super::{Ctx, Status};
use crate::args::{Format, GetArgs};
use crate::aws;
use crate::output::{self, Paint, Table, exact, short};

/// Shows the record and history of `args.address`; exit 1 when nothing is stored.
///
/// Fails when the table cannot be read.
pub async fn run(ctx: &Ctx, args: &GetArgs) -> anyhow::Result<Status> {
    let store = aws::store(&ctx.global).await?;
    let key = args.address.key();
    let Some(record) = store.load_key(&key).await? else {
        eprintln!("no record of {key} in table {}", store.table());
        if let SuppressionTarget::Address(address) = &args.address {
            let domain_key = format!("*@{}", address.domain());
            let domain = store.load_key(&domain_key).await?;
            if domain.is_some_and(|d| d.active_suppression(ctx.now).is_some()) {
                eprintln!(
                    "note: its domain is suppressed as a whole: see `suppressions get \
                     '{domain_key}'`"
                );
            }
        }
        return Ok(Status::NothingMatched);
    };
    let history = store.history(&key).await?;
    let mut out = std::io::stdout().lock();
    match ctx.format {
        Format::Json => {
            let mut object = output::record_json(&record, ctx.now);
            if let Value::Object(map) = &mut object {
                let entries = history.iter().map(output::history_json).collect();
                map.insert("history".into(), Value::Array(entries));
            }
            writeln!(out, "{object}")?;
        }
        Format::Csv => {
            writeln!(out, "{}", output::RECORD_CSV_HEADER.join(","))?;
            writeln!(out, "{}", output::csv_line(&output::record_csv(&record, ctx.now)))?;
        }
        Format::Human => {
            write_details(ctx, &record, &mut out)?;
            writeln!(out)?;
            let plural = if history.len() == 1 { "" } else { "s" };
            let title = format!("history ({} event{plural})", history.len());
            writeln!(out, "{}", ctx.style.paint(&title, Paint::Bold))?;
            let header = ["TIME", "TYPE", "SUBTYPE", "OUTCOME", "FEEDBACK ID"];
            let mut table = Table::new(&header, &ctx.style);
            for entry in &history {
                table.row(vec![
                    short(entry.at),
                    entry.event_type.clone(),
                    entry.sub_type.clone().unwrap_or_else(|| "-".into()),
                    entry.outcome.clone(),
                    entry.feedback_id.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            table.write(&mut out)?;
        }
    }
    Ok(Status::Done)
}

fn write_details(ctx: &Ctx, record: &AddressRecord, out: &mut impl Write) -> std::io::Result<()> {
    let state = record.state_name(ctx.now);
    let mut lines: Vec<(&str, String)> =
        vec![("address", record.target.key()), ("state", ctx.style.state(state))];
    if let Some(sup) = &record.suppression {
        let p = &sup.provenance;
        lines.push(("reason", sup.reason.as_str().to_owned()));
        lines.push(("since", format!("{} UTC", short(sup.since))));
        let expires = match sup.expires_at {
            Some(at) => format!("{} UTC", short(at)),
            None => "never".to_owned(),
        };
        lines.push(("expires", expires));
        lines.push(("decided by", if p.source.is_empty() { "-".into() } else { p.source.clone() }));
        let optional = [
            ("note", p.note.clone()),
            ("feedback id", p.feedback_id.clone()),
            ("ses message", p.ses_message_id.clone()),
            (
                "bounce",
                p.bounce_type
                    .as_ref()
                    .map(|t| format!("{t}/{}", p.bounce_sub_type.as_deref().unwrap_or("-"))),
            ),
            ("diagnostic", p.diagnostic_code.clone()),
        ];
        lines.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        if let SuppressionState::Released { at, by, why } = &sup.state {
            let why = if why.is_empty() { String::new() } else { format!(": {why}") };
            lines.push(("released", format!("{} UTC by {by}{why}", short(*at))));
        }
    }
    let window = record.soft_window_start.map(|s| format!(" (window from {})", short(s)));
    lines.push((
        "soft bounces",
        format!("{}{}", record.soft_bounce_count, window.unwrap_or_default()),
    ));
    let delivered = record.last_delivery_at.map_or_else(|| "-".to_owned(), exact);
    lines.push(("last delivery", delivered));
    lines.push(("first seen", exact(record.first_seen)));
    lines.push(("last seen", exact(record.last_seen)));
    for (label, value) in lines {
        // Stored text is shown on one line, control characters removed; only the state carries
        // the tool's own colour codes.
        let value = if label == "state" { value } else { output::one_line(&value, 200) };
        writeln!(out, "{label:<14} {value}")?;
    }
    Ok(())
}
