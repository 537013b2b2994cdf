//! `forget`: erasure of everything the table holds about one address (GDPR right to erasure):
//! the state item and the whole event history. Asks for confirmation unless `--yes`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context as _, bail};
use serde_json::json;

use super::{Ctx, Status};
use crate::args::{ForgetArgs, Format};
use crate::aws;

/// Erases `args.address`; exit 1 when nothing is stored.
///
/// Fails when confirmation is refused or impossible (no terminal and no `--yes`), or the store
/// fails.
pub async fn run(ctx: &Ctx, args: &ForgetArgs) -> anyhow::Result<Status> {
    let store = aws::store(&ctx.global).await?;
    let key = args.address.key();
    let record = store.load_key(&key).await?;
    let history = store.history(&key).await?.len();
    if record.is_none() && history == 0 {
        eprintln!("nothing is stored about {key}");
        return Ok(Status::NothingMatched);
    }
    let active = record.as_ref().is_some_and(|r| r.active_suppression(ctx.now).is_some());
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            bail!("refusing to erase without confirmation: pass --yes when not on a terminal");
        }
        let mut err = std::io::stderr().lock();
        write!(
            err,
            "Erase everything stored about {key} (its record and {history} history entries)?{} \
             This cannot be undone. Type yes to continue: ",
            if active { " It is suppressed now and could be mailed again." } else { "" }
        )?;
        err.flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "yes" | "y") {
            bail!("not confirmed: nothing was erased");
        }
    }
    let deleted = store.forget(&key).await.context("erasure stopped; run forget again")?;
    let mut out = std::io::stdout().lock();
    match ctx.format {
        Format::Json => {
            writeln!(out, "{}", json!({ "address": key, "deleted_items": deleted }))?;
        }
        _ => {
            writeln!(out, "erased {key}: {deleted} items deleted")?;
            if active {
                writeln!(out, "note: the suppression is gone with it; the address can be mailed")?;
            }
        }
    }
    Ok(Status::Done)
}
