//! The comparison of a finished run with its [`Expectation`]: the table item by item, what
//! Mailcow would reject, the SES account list, every queue, and the outcome ingest logged for
//! every published notification. Differences name keyed hashes of addresses, never addresses.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use chrono::{DateTime, Utc};
use feedback_domain::AddressHasher;
use serde_json::Value;

use crate::generator::{Expectation, Scenario};
use crate::observe::{self, QueuedMessage, TableState};
use crate::sims::{self, MailcowControl};
use crate::stack::{RunReport, Stack};

/// What a finished run left behind.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The table.
    pub table: TableState,
    /// Entry lines of the denylist map Mailcow received.
    pub map_lines: usize,
    /// The addresses those lines match exactly.
    pub map_entries: BTreeSet<String>,
    /// Would Mailcow reject mail to it: every address that must be blocked, and a sample of
    /// the others.
    pub rejects: BTreeMap<String, bool>,
    /// The SES account list.
    pub ses: BTreeMap<String, String>,
    /// Messages left on the feedback queue (visible or in flight).
    pub feedback_depth: u64,
    /// The feedback DLQ.
    pub dead_letter: Vec<QueuedMessage>,
    /// The quarantine queue.
    pub quarantine: Vec<QueuedMessage>,
    /// The sync's failure queue.
    pub sync_failures: Vec<QueuedMessage>,
    /// Final outcome ingest logged per SNS MessageId (`applied`, `ignored`, `quarantined`).
    pub outcomes: BTreeMap<String, String>,
}

/// How many addresses that must not be blocked are checked against the simulator.
const UNBLOCKED_SAMPLE: usize = 40;

/// The address an exact-address map line (`/^address$/i`) matches, with the regex escapes
/// removed; `None` for other lines.
fn map_address(line: &str) -> Option<String> {
    let inner = line.trim().strip_prefix("/^")?.strip_suffix("$/i")?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next()? } else { c });
    }
    Some(out)
}

/// Reads everything back after a run.
///
/// Fails when moto, a simulator or the ingest log cannot be read.
pub async fn observe(
    stack: &Stack,
    mailcow: &MailcowControl,
    ses_url: &str,
    expected: &Expectation,
    now: DateTime<Utc>,
) -> anyhow::Result<Observed> {
    let days = expected.counters.keys().map(|(d, _)| *d);
    let first = days.clone().min().unwrap_or_default();
    let last = days.max().unwrap_or_default();
    let table = observe::table_state(&stack.direct, &stack.topology.table, (first, last)).await?;
    let map = mailcow.denylist_map().await?;
    let lines: Vec<&str> =
        map.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).collect();
    let map_entries: BTreeSet<String> = lines.iter().filter_map(|l| map_address(l)).collect();
    // Rspamd's view, from the simulator: every address that must be blocked, and a fixed sample
    // of the others (each question costs the simulator a pass over the map's regexes).
    let blocked = expected.blocked_at(now);
    let others: Vec<&String> = expected
        .records
        .keys()
        .chain(table.records.keys())
        .filter(|k| !blocked.contains(*k))
        .collect();
    let step = (others.len() / UNBLOCKED_SAMPLE).max(1);
    let mut rejects = BTreeMap::new();
    for key in blocked.iter().chain(others.into_iter().step_by(step)) {
        if !rejects.contains_key(key) {
            rejects.insert(key.clone(), mailcow.would_reject(key).await?);
        }
    }
    let ses = sims::ses_entries(ses_url).await?;
    let feedback_depth =
        observe::queue_depth(&stack.direct, &stack.topology, &stack.wiring.feedback).await?;
    let dead_letter =
        observe::queue_contents(&stack.direct, &stack.url(&stack.wiring.dead_letter)?).await?;
    let quarantine =
        observe::queue_contents(&stack.direct, &stack.url(&stack.wiring.quarantine)?).await?;
    let sync_failures =
        observe::queue_contents(&stack.direct, &stack.url(&stack.wiring.sync_failures)?).await?;

    let sns_ids = match &stack.sqs_poller {
        Some(p) => p.stats.sns_ids.lock().map(|m| m.clone()).unwrap_or_default(),
        None => std::collections::HashMap::new(),
    };
    let log = std::fs::read_to_string(&stack.ingest_log)
        .with_context(|| format!("reading {}", stack.ingest_log.display()))?;
    let mut outcomes = BTreeMap::new();
    for line in log.lines() {
        let Ok(entry) = serde_json::from_str::<Value>(line) else { continue };
        let field = |name: &str| entry.get(name).and_then(Value::as_str);
        let (Some("record processed"), Some(sqs_id), Some(outcome)) =
            (field("message"), field("message_id"), field("outcome"))
        else {
            continue;
        };
        if let Some(sns_id) = sns_ids.get(sqs_id) {
            outcomes.insert(sns_id.clone(), outcome.to_owned());
        }
    }
    Ok(Observed {
        table,
        map_lines: lines.len(),
        map_entries,
        rejects,
        ses,
        feedback_depth,
        dead_letter,
        quarantine,
        sync_failures,
        outcomes,
    })
}

/// Every way the run differs from the expectation; empty when it matches exactly.
pub fn differences(
    scenario: &Scenario,
    expected: &Expectation,
    report: &RunReport,
    observed: &Observed,
    now: DateTime<Utc>,
    hasher: &AddressHasher,
) -> Vec<String> {
    let mut out = Vec::new();
    let h = |key: &str| hasher.hash(key).to_string();

    let keys: BTreeSet<&String> =
        expected.records.keys().chain(observed.table.records.keys()).collect();
    for key in keys {
        match (expected.records.get(key), observed.table.records.get(key)) {
            (Some(e), Some(o)) if e != o => out.push(format!(
                "record {} differs: expected {:?}, stored {:?}",
                h(key),
                summary(e),
                summary(o)
            )),
            (Some(_), None) => out.push(format!("record {} is missing from the table", h(key))),
            (None, Some(_)) => {
                out.push(format!("record {} is in the table but not expected", h(key)))
            }
            _ => {}
        }
        let (e, o) = (expected.history.get(key), observed.table.history.get(key));
        if e != o {
            out.push(format!(
                "history of {} differs: expected {:?}, stored {:?}",
                h(key),
                e.map(|s| s.iter().map(|(_, outcome)| outcome.as_str()).collect::<Vec<_>>()),
                o.map(|s| s.iter().map(|(_, outcome)| outcome.as_str()).collect::<Vec<_>>())
            ));
        }
    }
    if expected.sends != observed.table.sends {
        out.push(format!(
            "send markers: expected {}, stored {}",
            expected.sends.len(),
            observed.table.sends.len()
        ));
    }
    if expected.counters != observed.table.counters {
        out.push(format!(
            "daily counters differ: expected {:?}, stored {:?}",
            expected.counters, observed.table.counters
        ));
    }

    let blocked = expected.blocked_at(now);
    if observed.map_entries != blocked || observed.map_lines != blocked.len() {
        out.push(format!(
            "the Mailcow map has {} lines ({} addresses), expected {}; {} expected ones missing",
            observed.map_lines,
            observed.map_entries.len(),
            blocked.len(),
            blocked.difference(&observed.map_entries).count()
        ));
    }
    if blocked.iter().any(|k| !observed.rejects.contains_key(k)) {
        out.push("not every blocked address was checked against Mailcow".to_owned());
    }
    for (key, rejects) in &observed.rejects {
        if *rejects != blocked.contains(key) {
            out.push(format!(
                "Mailcow would {}reject mail to {}",
                if *rejects { "" } else { "not " },
                h(key)
            ));
        }
    }
    let ses: BTreeMap<String, String> =
        expected.ses_list_at(now).into_iter().map(|(k, v)| (k, v.to_owned())).collect();
    if ses != observed.ses {
        out.push(format!(
            "the SES account list has {} entries, expected {} ({} differ)",
            observed.ses.len(),
            ses.len(),
            ses.iter().filter(|(k, v)| observed.ses.get(*k) != Some(v)).count()
                + observed.ses.keys().filter(|k| !ses.contains_key(*k)).count()
        ));
    }

    if observed.feedback_depth != 0 {
        out.push(format!("{} messages are left on the feedback queue", observed.feedback_depth));
    }
    if !observed.dead_letter.is_empty() {
        out.push(format!("{} messages are on the feedback DLQ", observed.dead_letter.len()));
    }
    let mut quarantined: Vec<(String, String)> = observed
        .quarantine
        .iter()
        .map(|m| (m.sns_message(), m.attributes.get("reason").cloned().unwrap_or_default()))
        .collect();
    quarantined.sort();
    if quarantined != expected.quarantined {
        out.push(format!(
            "quarantine holds {:?}, expected {:?}",
            quarantined.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>(),
            expected.quarantined.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>()
        ));
    }
    // Every message on the sync's failure queue is a failed schedule or a stream batch the
    // poller gave up on, and the run counted each one.
    let scheduled =
        observed.sync_failures.iter().filter(|m| m.body.contains("\"Scheduled Event\"")).count();
    let given_up =
        observed.sync_failures.iter().filter(|m| m.body.contains("DDBStreamBatchInfo")).count();
    if scheduled != report.failed_schedules
        || given_up as u64 != report.stream_given_up
        || observed.sync_failures.len() != scheduled + given_up
    {
        out.push(format!(
            "the sync failure queue holds {} messages ({scheduled} failed schedules, {given_up} \
             given-up stream batches), expected {} and {}",
            observed.sync_failures.len(),
            report.failed_schedules,
            report.stream_given_up
        ));
    }

    for (sns_id, index) in &report.published {
        let wanted = scenario.notifications[*index].expect;
        match observed.outcomes.get(sns_id) {
            Some(outcome) if outcome == wanted.name() => {}
            Some(outcome) => out.push(format!(
                "notification {index} ({}) ended {outcome}, expected {}",
                scenario.notifications[*index].story,
                wanted.name()
            )),
            None => out.push(format!(
                "notification {index} ({}) has no logged outcome",
                scenario.notifications[*index].story
            )),
        }
    }
    if report.published.len() != scenario.notifications.len() {
        out.push(format!(
            "{} of {} notifications were published",
            report.published.len(),
            scenario.notifications.len()
        ));
    }
    out
}

/// Counts of a run's outcomes by name, from the ingest log.
pub fn outcome_counts(observed: &Observed) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for outcome in observed.outcomes.values() {
        *counts.entry(outcome.clone()).or_default() += 1;
    }
    counts
}

fn summary(record: &feedback_domain::AddressRecord) -> String {
    format!(
        "{{suppression: {:?}, soft: {}, window: {:?}, last_soft: {:?}, last_delivery: {:?}, \
         deliveries: {}, version: {}, seen: {}..{}}}",
        record.suppression.as_ref().map(|s| (s.reason.as_str(), s.since, s.expires_at, &s.state)),
        record.soft_bounce_count,
        record.soft_window_start,
        record.last_soft_bounce_at,
        record.last_delivery_at,
        record.recent_deliveries.len(),
        record.version,
        record.first_seen,
        record.last_seen
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_address_lines_of_the_map_read_back_as_addresses() {
        assert_eq!(
            map_address("/^anna\\.0001@example\\.com$/i").as_deref(),
            Some("anna.0001@example.com")
        );
        assert_eq!(map_address("/@example\\.com$/i"), None);
        assert_eq!(map_address("# entries: 1"), None);
    }
}
