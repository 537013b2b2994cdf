//! Presentation shared by the commands: colour (only on a terminal, never with `NO_COLOR`),
//! aligned tables, CSV fields, and the JSON and table shapes of a suppression record.
//!
//! Addresses are printed here on purpose: this is the operator's own terminal or file. Nothing
//! here logs.

use std::io::{IsTerminal, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use feedback_domain::ports::HistoryEntry;
use feedback_domain::{AddressRecord, SuppressionState, SuppressionTarget};
use serde_json::{Value, json};

/// Whether and how to colour text written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    colour: bool,
}

/// The few colours the tool uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paint {
    /// Blocking states and threshold breaches.
    Red,
    /// Warnings: expiring or near a threshold.
    Yellow,
    /// Lifted or fine.
    Green,
    /// Secondary text.
    Dim,
    /// Headers.
    Bold,
}

impl Style {
    /// Colour when stdout is a terminal and `NO_COLOR` is not set.
    pub fn detect() -> Self {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Self { colour }
    }

    /// No colour at all.
    #[cfg(test)]
    pub fn plain() -> Self {
        Self { colour: false }
    }

    /// `text` in `paint`, or unchanged without colour.
    pub fn paint(&self, text: &str, paint: Paint) -> String {
        if !self.colour {
            return text.to_owned();
        }
        let code = match paint {
            Paint::Red => "31",
            Paint::Yellow => "33",
            Paint::Green => "32",
            Paint::Dim => "2",
            Paint::Bold => "1",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// A state name in its colour.
    pub fn state(&self, state: &str) -> String {
        match state {
            "active" => self.paint(state, Paint::Red),
            "expired" => self.paint(state, Paint::Yellow),
            "released" => self.paint(state, Paint::Green),
            _ => self.paint(state, Paint::Dim),
        }
    }
}

/// RFC 3339 with milliseconds and `Z`, as stored: for JSON and CSV.
pub fn exact(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `2026-11-01 12:00` (UTC): for tables.
pub fn short(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}

fn opt_short(at: Option<DateTime<Utc>>) -> String {
    at.map(short).unwrap_or_else(|| "-".to_owned())
}

/// Rows of cells printed as columns separated by two spaces; a cell's width is counted in
/// characters without colour codes. Right-aligns the columns listed in `right`.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
    right: Vec<usize>,
}

impl Table {
    /// A table with a header row.
    pub fn new(header: &[&str], style: &Style) -> Self {
        let header = header.iter().map(|h| style.paint(h, Paint::Bold)).collect();
        Self { rows: vec![header], right: Vec::new() }
    }

    /// Right-aligns these columns (numbers).
    pub fn align_right(mut self, columns: &[usize]) -> Self {
        self.right = columns.to_vec();
        self
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Number of rows after the header.
    pub fn len(&self) -> usize {
        self.rows.len() - 1
    }

    /// Writes the table.
    ///
    /// Fails when the writer does.
    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows.iter().map(|r| r.get(c).map_or(0, |v| visible_len(v))).max().unwrap_or(0)
            })
            .collect();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                let pad = " ".repeat(widths[c].saturating_sub(visible_len(cell)));
                let last = c + 1 == row.len();
                if self.right.contains(&c) {
                    line.push_str(&pad);
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if !last {
                        line.push_str(&pad);
                    }
                }
                if !last {
                    line.push_str("  ");
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// Characters of `text` that take up room on the terminal (colour codes excluded).
pub fn visible_len(text: &str) -> usize {
    let mut len = 0;
    let mut in_escape = false;
    for c in text.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => len += 1,
        }
    }
    len
}

/// One CSV field, quoted when it holds a separator, quote or line break.
pub fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// One CSV line from fields.
pub fn csv_line(fields: &[String]) -> String {
    fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",")
}

fn kind(target: &SuppressionTarget) -> &'static str {
    match target {
        SuppressionTarget::Address(_) => "address",
        SuppressionTarget::Domain(_) => "domain",
    }
}

/// The columns of a record in CSV (`export`, `list --csv`); `import FILE.csv` reads them back.
pub const RECORD_CSV_HEADER: [&str; 13] = [
    "address",
    "kind",
    "state",
    "reason",
    "since",
    "expires_at",
    "released_at",
    "released_by",
    "release_note",
    "source",
    "note",
    "feedback_id",
    "soft_bounce_count",
];

/// A record as CSV fields in [`RECORD_CSV_HEADER`] order.
pub fn record_csv(record: &AddressRecord, now: DateTime<Utc>) -> Vec<String> {
    let sup = record.suppression.as_ref();
    let released = sup.and_then(|s| match &s.state {
        SuppressionState::Released { at, by, why } => Some((*at, by.clone(), why.clone())),
        SuppressionState::Active => None,
    });
    let opt = |v: Option<String>| v.unwrap_or_default();
    vec![
        record.target.key(),
        kind(&record.target).to_owned(),
        record.state_name(now).to_owned(),
        opt(sup.map(|s| s.reason.as_str().to_owned())),
        opt(sup.map(|s| exact(s.since))),
        opt(sup.and_then(|s| s.expires_at).map(exact)),
        opt(released.as_ref().map(|r| exact(r.0))),
        opt(released.as_ref().map(|r| r.1.clone())),
        opt(released.as_ref().map(|r| r.2.clone())),
        opt(sup.map(|s| s.provenance.source.clone())),
        opt(sup.and_then(|s| s.provenance.note.clone())),
        opt(sup.and_then(|s| s.provenance.feedback_id.clone())),
        record.soft_bounce_count.to_string(),
    ]
}

/// A record as a JSON object (without history).
pub fn record_json(record: &AddressRecord, now: DateTime<Utc>) -> Value {
    let sup = record.suppression.as_ref();
    let released = sup.and_then(|s| match &s.state {
        SuppressionState::Released { at, by, why } => Some((*at, by.clone(), why.clone())),
        SuppressionState::Active => None,
    });
    let provenance = sup.map(|s| &s.provenance);
    json!({
        "address": record.target.key(),
        "kind": kind(&record.target),
        "domain": record.target.domain(),
        "state": record.state_name(now),
        "suppressed": record.active_suppression(now).is_some(),
        "reason": sup.map(|s| s.reason.as_str()),
        "since": sup.map(|s| exact(s.since)),
        "expires_at": sup.and_then(|s| s.expires_at).map(exact),
        "released_at": released.as_ref().map(|r| exact(r.0)),
        "released_by": released.as_ref().map(|r| r.1.clone()),
        "release_note": released.as_ref().map(|r| r.2.clone()),
        "provenance": provenance.map(|p| json!({
            "source": p.source,
            "note": p.note,
            "feedback_id": p.feedback_id,
            "ses_message_id": p.ses_message_id,
            "bounce_type": p.bounce_type,
            "bounce_sub_type": p.bounce_sub_type,
            "diagnostic_code": p.diagnostic_code,
        })),
        "soft_bounce_count": record.soft_bounce_count,
        "soft_window_start": record.soft_window_start.map(exact),
        "last_soft_bounce_at": record.last_soft_bounce_at.map(exact),
        "last_delivery_at": record.last_delivery_at.map(exact),
        "first_seen": exact(record.first_seen),
        "last_seen": exact(record.last_seen),
    })
}

/// A history entry as a JSON object.
pub fn history_json(entry: &HistoryEntry) -> Value {
    json!({
        "type": entry.event_type,
        "subtype": entry.sub_type,
        "timestamp": exact(entry.at),
        "feedback_id": entry.feedback_id,
        "ses_message_id": entry.ses_message_id,
        "outcome": entry.outcome,
        "diagnostic_code": entry.diagnostic_code,
        "key": entry.idempotency_key,
    })
}

/// The columns of `list`.
pub const LIST_HEADER: [&str; 6] = ["ADDRESS", "STATE", "REASON", "CHANGED", "EXPIRES", "NOTE"];

/// A record as a `list` row.
pub fn record_row(record: &AddressRecord, now: DateTime<Utc>, style: &Style) -> Vec<String> {
    let sup = record.suppression.as_ref();
    let changed = sup.map(|s| match &s.state {
        SuppressionState::Released { at, .. } => *at,
        SuppressionState::Active => s.since,
    });
    let note = sup.and_then(|s| match &s.state {
        SuppressionState::Released { by, why, .. } if why.is_empty() => Some(format!("by {by}")),
        SuppressionState::Released { by, why, .. } => Some(format!("by {by}: {why}")),
        SuppressionState::Active => s.provenance.note.clone(),
    });
    vec![
        record.target.key(),
        style.state(record.state_name(now)),
        sup.map_or("-", |s| s.reason.as_str()).to_owned(),
        opt_short(changed),
        opt_short(sup.and_then(|s| s.expires_at)),
        note.map(|n| one_line(&n, 60)).unwrap_or_default(),
    ]
}

/// `text` on one line, cut to `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_on_visible_width_and_trim_trailing_space() {
        let style = Style::plain();
        let mut table = Table::new(&["A", "NUMBER"], &style).align_right(&[1]);
        table.row(vec!["long-value".into(), "7".into()]);
        table.row(vec!["\x1b[31mx\x1b[0m".into(), "1234".into()]);
        let mut out = Vec::new();
        table.write(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "A           NUMBER\nlong-value       7\n\x1b[31mx\x1b[0m             1234\n"
        );
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn notes_are_flattened_and_cut() {
        assert_eq!(one_line("a\nb", 10), "a b");
        assert_eq!(one_line("abcdefghijkl", 5), "abcd…");
    }
}
