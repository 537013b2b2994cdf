//! What a finished run cost and how fast it went: pipeline throughput, where the time of the
//! waves went (ingest's own CPU, ingest waiting on DynamoDB, everything outside ingest: moto's
//! SNS and SQS, the poller, the sync catching up), and the calls the sync made to Mailcow and
//! SES per suppression. Shared by the load test and `local-stack` (`bench/pipeline`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::generator::Expectation;
use crate::sims::{self, MailcowControl};
use crate::stack::{RunReport, Stack};

/// The figures of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// Notifications published.
    pub notifications: usize,
    /// Seconds of the waves, each from its first publish until the pipeline had settled.
    pub wave_seconds: f64,
    /// Ingest invocations.
    pub ingest_invocations: u64,
    /// Time ingest spent in invocations.
    pub ingest_busy: Duration,
    /// CPU time of the ingest process (`None` where `/proc` cannot tell).
    pub ingest_cpu: Option<Duration>,
    /// Sync invocations (stream and schedule).
    pub sync_invocations: u64,
    /// Time the sync spent in invocations.
    pub sync_busy: Duration,
    /// CPU time of the sync process.
    pub sync_cpu: Option<Duration>,
    /// Addresses suppressed by the run.
    pub suppressions: usize,
    /// Mailcow API requests by `METHOD path`, as the simulator counted them.
    pub mailcow_requests: BTreeMap<String, u64>,
    /// SES suppression-list requests by kind (`put`, `delete`, `get`, `list`, `throttled`, ...).
    pub ses_requests: BTreeMap<String, u64>,
}

/// A share of a whole, in per cent.
fn share(part: Duration, whole: f64) -> f64 {
    if whole > 0.0 { 100.0 * part.as_secs_f64() / whole } else { 0.0 }
}

impl Figures {
    /// Reads the counters after a run.
    ///
    /// Fails when a simulator does not answer.
    pub async fn collect(
        stack: &Stack,
        report: &RunReport,
        expected: &Expectation,
        mailcow: &MailcowControl,
        ses_url: &str,
    ) -> anyhow::Result<Self> {
        let state = mailcow.state().await?;
        let mailcow_requests = state
            .get("requests")
            .and_then(serde_json::Value::as_object)
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.contains("/api/v1/"))
                    .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            notifications: report.published.len(),
            wave_seconds: report.wave_seconds.iter().sum(),
            ingest_invocations: stack.ingest.invocations(),
            ingest_busy: stack.ingest.busy(),
            ingest_cpu: stack.ingest.cpu_time().await,
            sync_invocations: stack.sync.invocations(),
            sync_busy: stack.sync.busy(),
            sync_cpu: stack.sync.cpu_time().await,
            suppressions: expected.records.values().filter(|r| r.suppression.is_some()).count(),
            mailcow_requests,
            ses_requests: sims::ses_stats(ses_url).await?,
        })
    }

    /// Notifications per second through SNS -> SQS -> ingest -> DynamoDB.
    pub fn throughput(&self) -> f64 {
        if self.wave_seconds > 0.0 { self.notifications as f64 / self.wave_seconds } else { 0.0 }
    }

    /// Mailcow API requests that wrote (`POST`).
    pub fn mailcow_writes(&self) -> u64 {
        self.mailcow_requests.iter().filter(|(k, _)| k.starts_with("POST ")).map(|(_, v)| v).sum()
    }

    /// Every Mailcow API request.
    pub fn mailcow_total(&self) -> u64 {
        self.mailcow_requests.values().sum()
    }

    /// Every SES request.
    pub fn ses_total(&self) -> u64 {
        self.ses_requests.get("requests").copied().unwrap_or_default()
    }

    /// The report, one line per figure.
    pub fn lines(&self) -> Vec<String> {
        let waves = self.wave_seconds;
        let per = |n: u64| {
            if self.suppressions > 0 { n as f64 / self.suppressions as f64 } else { 0.0 }
        };
        let ses = |key: &str| self.ses_requests.get(key).copied().unwrap_or_default();
        let mut out = vec![
            format!(
                "pipeline: {} notifications in {waves:.1} s of waves: {:.0} notifications/s",
                self.notifications,
                self.throughput()
            ),
            format!(
                "ingest: {} invocations, busy {:.1} s ({:.0} % of the waves)",
                self.ingest_invocations,
                self.ingest_busy.as_secs_f64(),
                share(self.ingest_busy, waves)
            ),
        ];
        if let Some(cpu) = self.ingest_cpu {
            let waiting = self.ingest_busy.saturating_sub(cpu);
            let outside = Duration::from_secs_f64(waves).saturating_sub(self.ingest_busy);
            out.push(format!(
                "time of the waves: ingest CPU (our code, SDK included) {:.1} s = {:.1} %, ingest \
                 waiting on DynamoDB {:.1} s = {:.1} %, outside ingest (moto's SNS and SQS, the \
                 poller, the sync catching up) {:.1} s = {:.1} %; {:.0} µs of ingest CPU per \
                 notification",
                cpu.as_secs_f64(),
                share(cpu, waves),
                waiting.as_secs_f64(),
                share(waiting, waves),
                outside.as_secs_f64(),
                share(outside, waves),
                cpu.as_secs_f64() * 1e6 / self.notifications.max(1) as f64
            ));
        }
        out.push(format!(
            "sync: {} invocations, busy {:.1} s{}",
            self.sync_invocations,
            self.sync_busy.as_secs_f64(),
            self.sync_cpu.map_or(String::new(), |c| format!(", CPU {:.1} s", c.as_secs_f64()))
        ));
        out.push(format!(
            "calls per suppression ({} suppressed addresses): Mailcow {:.3} ({} requests, {} \
             writes), SES {:.2} ({} requests: {} put, {} delete, {} throttled)",
            self.suppressions,
            per(self.mailcow_total()),
            self.mailcow_total(),
            self.mailcow_writes(),
            per(self.ses_total()),
            self.ses_total(),
            ses("put"),
            ses("delete"),
            ses("throttled")
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> Figures {
        Figures {
            notifications: 1_000,
            wave_seconds: 20.0,
            ingest_invocations: 100,
            ingest_busy: Duration::from_secs(10),
            ingest_cpu: Some(Duration::from_secs(2)),
            sync_invocations: 30,
            sync_busy: Duration::from_secs(6),
            sync_cpu: Some(Duration::from_secs(1)),
            suppressions: 200,
            mailcow_requests: BTreeMap::from([
                ("POST /api/v1/edit/rspamd-map".to_owned(), 25),
                ("GET /api/v1/get/status/version".to_owned(), 5),
            ]),
            ses_requests: BTreeMap::from([
                ("requests".to_owned(), 210),
                ("put".to_owned(), 200),
                ("delete".to_owned(), 10),
            ]),
        }
    }

    #[test]
    fn the_time_of_the_waves_splits_into_cpu_waiting_and_outside_ingest() {
        let f = figures();
        assert_eq!(f.throughput(), 50.0);
        let lines = f.lines().join("\n");
        assert!(lines.contains("1000 notifications in 20.0 s of waves: 50 notifications/s"));
        assert!(lines.contains("ingest CPU (our code, SDK included) 2.0 s = 10.0 %"), "{lines}");
        assert!(lines.contains("ingest waiting on DynamoDB 8.0 s = 40.0 %"), "{lines}");
        assert!(lines.contains("the sync catching up) 10.0 s = 50.0 %"), "{lines}");
        assert!(lines.contains("2000 µs of ingest CPU per notification"), "{lines}");
    }

    #[test]
    fn calls_per_suppression_count_every_request_and_name_the_writes() {
        let f = figures();
        assert_eq!((f.mailcow_total(), f.mailcow_writes(), f.ses_total()), (30, 25, 210));
        let lines = f.lines().join("\n");
        assert!(lines.contains("Mailcow 0.150 (30 requests, 25 writes)"), "{lines}");
        assert!(lines.contains("SES 1.05 (210 requests: 200 put, 10 delete, 0 throttled)"));
        let none = Figures { suppressions: 0, ingest_cpu: None, ..figures() };
        assert!(none.lines().join("\n").contains("Mailcow 0.000"), "no division by zero");
        assert!(!none.lines().join("\n").contains("time of the waves"), "no CPU, no split");
    }
}
