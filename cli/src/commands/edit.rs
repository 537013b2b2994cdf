//! `add` and `remove`: an operator's manual suppression and release of one address or domain.
//! The stream carries the change on to Mailcow and SES.

use std::io::Write;

use anyhow::{Context as _, bail};
use feedback_domain::SuppressionReason;
use feedback_domain::policy::ManualSuppression;
use serde_json::json;

use super::{Ctx, Status};
use crate::args::{AddArgs, Format, RemoveArgs};
use crate::aws;
use crate::output::{self, short};
use crate::write::{self, EventLabel, Released, Suppressed};

/// Suppresses `args.target` by hand.
///
/// Fails for a reason other than `manual`, an expiry in the past, or a store failure.
pub async fn add(ctx: &Ctx, args: &AddArgs) -> anyhow::Result<Status> {
    if args.reason != SuppressionReason::Manual {
        bail!(
            "only reason `manual` can be added by hand ({} entries come from feedback or \
             imports): use --reason manual",
            args.reason
        );
    }
    let expires_at = args.expires.map(|span| span.end(ctx.now));
    if expires_at.is_some_and(|end| end <= ctx.now) {
        bail!("--expires lies in the past: give a length (30d) or a future date");
    }
    let store = aws::store(&ctx.global).await?;
    let request = ManualSuppression {
        reason: SuppressionReason::Manual,
        expires_at,
        source: "cli".to_owned(),
        note: args.note.clone(),
    };
    let label = EventLabel {
        key: format!("manual:{}", ctx.now.timestamp_millis()),
        event_type: "manual",
        sub_type: None,
    };
    let key = args.target.key();
    let outcome = write::suppress(&store, &args.target, &request, &label, ctx.now, None)
        .await
        .context("could not add the suppression")?;
    let mut out = std::io::stdout().lock();
    let (outcome_name, message) = match &outcome {
        Suppressed::Applied(_) => {
            let until = expires_at
                .map_or_else(|| "no expiry".to_owned(), |e| format!("until {}", short(e)));
            ("suppressed", format!("suppressed {key} (manual, {until})"))
        }
        Suppressed::Already(reason) => (
            "already_suppressed",
            format!("{key} is already suppressed ({reason}): nothing changed"),
        ),
        Suppressed::Duplicate => ("duplicate", "the same add was applied already".to_owned()),
    };
    match ctx.format {
        Format::Json => {
            writeln!(out, "{}", json!({ "address": key, "outcome": outcome_name }))?;
        }
        _ => writeln!(out, "{message}")?,
    }
    Ok(Status::Done)
}

/// Releases the suppression of `args.address`; exit 1 when there is none in force.
///
/// Fails when no operator name is known or the store fails.
pub async fn remove(ctx: &Ctx, args: &RemoveArgs) -> anyhow::Result<Status> {
    let by = args
        .by
        .as_deref()
        .filter(|b| !b.trim().is_empty())
        .context("who releases it is recorded: pass --by NAME (USER is not set)")?;
    let store = aws::store(&ctx.global).await?;
    let key = args.address.key();
    let outcome = write::release(&store, &args.address, by, &args.why, ctx.now)
        .await
        .context("could not release the suppression")?;
    let mut out = std::io::stdout().lock();
    match outcome {
        Released::Applied(record) => {
            match ctx.format {
                Format::Json => writeln!(out, "{}", output::record_json(&record, ctx.now))?,
                _ => writeln!(
                    out,
                    "released {key} (by {by}); the history is kept, Mailcow and SES follow \
                     through the stream"
                )?,
            }
            Ok(Status::Done)
        }
        Released::Unknown => {
            eprintln!("no record of {key}: nothing to release");
            Ok(Status::NothingMatched)
        }
        Released::NotActive(state) => {
            eprintln!("{key} is not suppressed (state {state}): nothing to release");
            Ok(Status::NothingMatched)
        }
    }
}
