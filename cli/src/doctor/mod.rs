//! `suppressions doctor`: checks the sender's whole setup the way strict receivers do (SPF,
//! DKIM, DMARC, the custom MAIL FROM domain, reverse DNS, the contact page on the PTR host,
//! STARTTLS, DANE, MTA-STS), the SES account, and this system itself. It only reads.
//!
//! Every check yields one [`Finding`]: pass, warn, fail or skip (not applicable, or not
//! configured), a one-line explanation and, when something must change in DNS, the records to
//! publish. The command exits 0 when no check warned or failed, 1 otherwise, and 2 when it
//! could not run at all (bad flags, unreadable CA bundle, no region).
//!
//! DNS goes through [`dns`], TLS through [`tls`]; the record parsers ([`spf`], [`dmarc`],
//! [`mta_sts`]) know nothing of the network. Only [`ses`] and [`system`] call AWS.

mod checks;
pub mod dmarc;
pub mod dns;
pub mod mta_sts;
mod ses;
pub mod spf;
mod system;
pub mod tls;

use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::args::{DoctorArgs, Format};
use crate::aws;
use crate::commands::{Ctx, Status};
use crate::output::{Paint, Style};

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// As strict receivers want it.
    Pass,
    /// Works, but costs deliverability or hides problems.
    Warn,
    /// Broken: mail is lost, refused or marked as spam.
    Fail,
    /// Not applicable, or not configured for this run; does not change the exit status.
    Skip,
}

impl Verdict {
    /// The word printed and written to JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
            Self::Skip => "skip",
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Short id of the check (`spf`, `smtp:25`).
    pub check: String,
    /// How it ended.
    pub verdict: Verdict,
    /// One line: what was found and, when not a pass, what to do.
    pub message: String,
    /// Records to publish (zone-file syntax), or policy lines, that fix it.
    pub publish: Vec<String>,
}

impl Finding {
    fn new(check: &str, verdict: Verdict, message: String) -> Self {
        Self { check: check.to_owned(), verdict, message, publish: Vec::new() }
    }

    /// A pass.
    pub fn pass(check: &str, message: impl Into<String>) -> Self {
        Self::new(check, Verdict::Pass, message.into())
    }

    /// A warning.
    pub fn warn(check: &str, message: impl Into<String>) -> Self {
        Self::new(check, Verdict::Warn, message.into())
    }

    /// A failure.
    pub fn fail(check: &str, message: impl Into<String>) -> Self {
        Self::new(check, Verdict::Fail, message.into())
    }

    /// Not applicable or not configured.
    pub fn skip(check: &str, message: impl Into<String>) -> Self {
        Self::new(check, Verdict::Skip, message.into())
    }

    /// Adds records to publish.
    pub fn publish(mut self, lines: impl IntoIterator<Item = String>) -> Self {
        self.publish.extend(lines);
        self
    }
}

/// What every check may use: the validated flags, the resolver and the trust store.
#[derive(Debug)]
pub struct Setup {
    /// The sending domain, normalised.
    pub domain: String,
    /// The Mailcow host's address.
    pub ip: IpAddr,
    /// `--mailcow-host` when it was a name.
    pub host_name: Option<String>,
    /// The SES region.
    pub region: String,
    /// Mailcow's DKIM selector.
    pub dkim_selector: Option<String>,
    /// Text the contact page must contain.
    pub markers: Vec<String>,
    /// STARTTLS ports; the first is the MX port.
    pub smtp_ports: Vec<u16>,
    /// Port of the HTTPS checks.
    pub https_port: u16,
    /// Wait per step.
    pub timeout: Duration,
    /// The resolver.
    pub dns: dns::Dns,
    /// The roots.
    pub trust: tls::Trust,
    /// The time the run started.
    pub now: DateTime<Utc>,
}

fn valid_domain(raw: &str) -> anyhow::Result<String> {
    let domain = dns::normalise(raw);
    let labels_ok = domain.split('.').all(|l| {
        !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if !domain.contains('.') || !labels_ok {
        bail!("--domain {raw:?} is not a domain name (e.g. example.org)");
    }
    Ok(domain)
}

/// Prints findings as they come: a line each (with the records to publish under it), or one
/// JSON object each.
struct Printer {
    format: Format,
    style: Style,
    findings: Vec<Finding>,
}

impl Printer {
    fn emit(&mut self, finding: Finding) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if self.format == Format::Json {
            let line = json!({
                "check": finding.check,
                "status": finding.verdict.as_str(),
                "message": finding.message,
                "publish": finding.publish,
            });
            writeln!(out, "{line}")?;
        } else {
            let paint = match finding.verdict {
                Verdict::Pass => Paint::Green,
                Verdict::Warn => Paint::Yellow,
                Verdict::Fail => Paint::Red,
                Verdict::Skip => Paint::Dim,
            };
            let word = self.style.paint(finding.verdict.as_str(), paint);
            writeln!(out, "{word}  {:<14} {}", finding.check, finding.message)?;
            for line in &finding.publish {
                writeln!(out, "      {} {line}", self.style.paint("publish:", Paint::Bold))?;
            }
        }
        out.flush()?;
        self.findings.push(finding);
        Ok(())
    }

    fn emit_all(&mut self, findings: Vec<Finding>) -> anyhow::Result<()> {
        findings.into_iter().try_for_each(|f| self.emit(f))
    }

    fn finish(&self) -> anyhow::Result<Status> {
        let count = |v: Verdict| self.findings.iter().filter(|f| f.verdict == v).count();
        let (pass, warn, fail, skip) = (
            count(Verdict::Pass),
            count(Verdict::Warn),
            count(Verdict::Fail),
            count(Verdict::Skip),
        );
        if self.format != Format::Json {
            writeln!(
                std::io::stdout().lock(),
                "\n{pass} passed, {warn} {}, {fail} failed, {skip} skipped",
                if warn == 1 { "warning" } else { "warnings" }
            )?;
        }
        Ok(if warn + fail == 0 { Status::Done } else { Status::ChecksFailed })
    }
}

/// Runs every check and prints the findings; [`Status::ChecksFailed`] when one warned or
/// failed.
///
/// Fails (exit 2) when the flags are invalid, the CA bundle cannot be read, no region is set
/// or the Mailcow host name does not resolve.
pub async fn run(ctx: &Ctx, args: &DoctorArgs) -> anyhow::Result<Status> {
    let domain = valid_domain(&args.domain)?;
    let timeout = Duration::from_secs(args.timeout);
    let trust = tls::Trust::load(args.ca_bundle.as_deref())?;
    let resolver = dns::Dns::new(args.resolver, timeout)?;
    let config = aws::sdk_config(&ctx.global).await?;
    let region = config.region().map(ToString::to_string).unwrap_or_default();
    let (ip, host_name) = match args.mailcow_host.parse::<IpAddr>() {
        Ok(ip) => (ip, None),
        Err(_) => {
            let name = dns::normalise(&args.mailcow_host);
            let ips = resolver
                .ips(&name)
                .await
                .with_context(|| format!("could not resolve --mailcow-host {name}"))?;
            let Some(ip) = ips.iter().find(|ip| ip.is_ipv4()).or(ips.first()).copied() else {
                bail!("--mailcow-host {name} has no A or AAAA record: pass its IP address");
            };
            (ip, Some(name))
        }
    };
    let setup = Setup {
        domain,
        ip,
        host_name,
        region,
        dkim_selector: args.dkim_selector.clone(),
        markers: args.contact_marker.clone(),
        smtp_ports: args.smtp_port.clone(),
        https_port: args.https_port,
        timeout,
        dns: resolver,
        trust,
        now: ctx.now,
    };
    if ctx.format != Format::Json {
        println!(
            "{}",
            ctx.style.paint(
                &format!(
                    "doctor: {} via SES {}, Mailcow host {}",
                    setup.domain, setup.region, setup.ip
                ),
                Paint::Bold
            )
        );
    }
    let mut printer = Printer { format: ctx.format, style: ctx.style, findings: Vec::new() };

    let facts = ses::Facts::gather(&config, args, &setup.domain).await;

    printer.emit(checks::spf(&setup).await)?;
    printer.emit(checks::dkim_ses(&setup, &facts.identity).await)?;
    printer.emit(checks::dkim_mailcow(&setup).await)?;
    let (finding, dmarc) = checks::dmarc(&setup).await;
    printer.emit(finding)?;
    printer.emit(checks::mail_from(&setup, &facts.identity, dmarc.as_ref()).await)?;
    let (finding, host) = checks::ptr(&setup).await;
    printer.emit(finding)?;
    printer.emit(checks::contact_page(&setup, host.as_deref()).await)?;
    let (findings, chain) = checks::smtp(&setup, host.as_deref()).await;
    printer.emit_all(findings)?;
    printer.emit(checks::dane(&setup, host.as_deref(), chain.as_deref()).await)?;
    printer.emit(checks::mta_sts(&setup).await)?;

    printer.emit_all(ses::findings(&facts, &setup, args))?;
    printer.emit_all(system::findings(&config, &ctx.global, args, ctx.now).await)?;
    printer.finish()
}

/// `3h`, `2d`, `12m`: how long ago `at` was.
pub fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (now - at).num_minutes().max(0);
    match minutes {
        m if m < 90 => format!("{m}m"),
        m if m < 48 * 60 => format!("{}h", m / 60),
        m => format!("{}d", m / (24 * 60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_normalised_and_checked() {
        assert_eq!(valid_domain("Example.ORG.").unwrap(), "example.org");
        assert!(valid_domain("localhost").is_err());
        assert!(valid_domain("exa mple.org").is_err());
        assert!(valid_domain("a..org").is_err());
    }

    #[test]
    fn ages_read_in_minutes_hours_or_days() {
        let now = Utc::now();
        assert_eq!(ago(now - chrono::Duration::minutes(5), now), "5m");
        assert_eq!(ago(now - chrono::Duration::hours(5), now), "5h");
        assert_eq!(ago(now - chrono::Duration::days(3), now), "3d");
    }
}
