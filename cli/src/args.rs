//! The command line: every flag, subcommand and environment fallback, as clap definitions.
//!
//! Completions and the man page are generated from these same definitions. Values are parsed
//! into types here (reasons, targets, time specs); nothing in this module talks to AWS.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use feedback_domain::{SuppressionReason, SuppressionTarget};

use crate::timespec::{Moment, Span};

/// Operator tool for the SES feedback suppression list.
///
/// Reads and changes the DynamoDB suppression table that the feedback processor keeps, imports
/// the SES account-level suppression list, shows sending statistics and replays the dead-letter
/// and quarantine queues. Works against AWS and against a local emulator (--endpoint-url).
///
/// Exit status: 0 on success, 1 when nothing matched (unknown address, empty result) or a
/// `doctor` check warned or failed, 2 on error.
#[derive(Debug, Parser)]
#[command(name = "suppressions", version, max_term_width = 100)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The suppression table.
    #[arg(long, global = true, env = "SUPPRESSION_TABLE", value_name = "NAME")]
    pub table: Option<String>,
    /// AWS region of the table and queues.
    #[arg(long, global = true, env = "AWS_REGION", value_name = "REGION")]
    pub region: Option<String>,
    /// Named profile from the AWS config files.
    #[arg(long, global = true, env = "AWS_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// Endpoint of every AWS API, e.g. a local emulator (http://127.0.0.1:5000).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// JSON output: one object per line for lists.
    #[arg(long, global = true, conflicts_with = "csv")]
    pub json: bool,
    /// CSV output with a header row, for lists.
    #[arg(long, global = true)]
    pub csv: bool,
}

impl GlobalArgs {
    /// The output format the flags ask for.
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else if self.csv {
            Format::Csv
        } else {
            Format::Human
        }
    }
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned tables and sentences.
    Human,
    /// JSON; one object per line for lists.
    Json,
    /// CSV with a header row.
    Csv,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the table itself.
    #[command(subcommand)]
    Table(TableCommand),
    /// Show one address (or *@domain): state, reason, provenance, expiry and event history.
    Get(GetArgs),
    /// List suppressions, filtered through the table's indexes.
    List(ListArgs),
    /// Suppress an address or a whole domain (*@domain) by hand.
    Add(AddArgs),
    /// Release a suppression; the history is kept and the release recorded.
    Remove(RemoveArgs),
    /// Erase everything stored about an address, history included (right to erasure).
    Forget(ForgetArgs),
    /// Import the SES account-level suppression list, or a CSV file (dry run unless --apply).
    Import(ImportArgs),
    /// Write the whole list (every entry with a suppression, in any state), streamed.
    Export(ExportArgs),
    /// Daily deliveries, bounces and complaints, with rates next to SES's thresholds.
    Stats(StatsArgs),
    /// Inspect and replay the dead-letter and quarantine queues.
    Dlq(DlqArgs),
    /// Check the sender's whole setup as strict receivers do: SPF, DKIM, DMARC, PTR, contact
    /// page, STARTTLS, DANE, MTA-STS, the SES account, and this system (read-only).
    Doctor(Box<DoctorArgs>),
    /// Print the keyed hash that logs carry instead of an address.
    Hash(HashArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print the man page (roff).
    Man,
}

/// `table` subcommands.
#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// Create the table with its indexes, stream and TTL (the same design as infra/).
    Create,
}

/// `get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The address, or *@domain for a domain entry.
    #[arg(value_parser = parse_target)]
    pub address: SuppressionTarget,
}

/// Suppression states as `list --state` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateFilter {
    /// In force now.
    Active,
    /// Ran out (soft bounces, timed manual entries) and not yet deleted.
    Expired,
    /// Lifted by an operator.
    Released,
}

/// `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this reason (hard_bounce, soft_bounce, complaint, manual, ses_account_list).
    #[arg(long, value_parser = parse_reason)]
    pub reason: Option<SuppressionReason>,
    /// Only entries whose state changed at or after this: a date (2026-11-01), an RFC 3339
    /// time, or an age (7d, 12h, 2w).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<Moment>,
    /// Only entries whose state changed before the end of this date (or before this time or
    /// age).
    #[arg(long, value_name = "WHEN")]
    pub until: Option<Moment>,
    /// Only addresses at this domain (and the *@domain entry).
    #[arg(long)]
    pub domain: Option<String>,
    /// Only this state; all states when not given.
    #[arg(long, value_enum)]
    pub state: Option<StateFilter>,
    /// At most this many entries (newest state change first).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

/// `add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The address, or *@domain to suppress every address of a domain.
    #[arg(value_parser = parse_target, value_name = "ADDRESS|*@DOMAIN")]
    pub target: SuppressionTarget,
    /// Why; only `manual` can be added by hand.
    #[arg(long, value_parser = parse_reason, default_value = "manual")]
    pub reason: SuppressionReason,
    /// A note kept with the entry.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// End the suppression after this long (30d, 12h, 2w) or at this date or time.
    #[arg(long, value_name = "WHEN")]
    pub expires: Option<Span>,
}

/// `remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The address, or *@domain.
    #[arg(value_parser = parse_target)]
    pub address: SuppressionTarget,
    /// Who releases it (recorded).
    #[arg(long, env = "USER", value_name = "NAME")]
    pub by: Option<String>,
    /// Why it is released (recorded).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub why: String,
}

/// `forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The address, or *@domain.
    #[arg(value_parser = parse_target)]
    pub address: SuppressionTarget,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `import`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["file", "from_ses"])))]
pub struct ImportArgs {
    /// A CSV file: a column `address` (or `email`), optional `reason`, `note`, `expires_at`
    /// and `state` (rows not `active` are skipped). Without a header the first column is the
    /// address.
    #[arg(value_name = "FILE.csv")]
    pub file: Option<PathBuf>,
    /// Import the SES account-level suppression list (reason ses_account_list).
    #[arg(long)]
    pub from_ses: bool,
    /// Write the changes; without it only a dry run is shown.
    #[arg(long)]
    pub apply: bool,
    /// Reason of CSV rows without a `reason` column.
    #[arg(long, value_parser = parse_reason, default_value = "manual")]
    pub reason: SuppressionReason,
    /// Ignore the checkpoint of an interrupted SES import and start from the first page.
    #[arg(long)]
    pub restart: bool,
    /// Endpoint of the SESv2 API when it differs from --endpoint-url (e.g. a simulator).
    #[arg(long, env = "SES_ENDPOINT_URL", value_name = "URL")]
    pub ses_endpoint_url: Option<String>,
    /// Entries per SES page (SES allows up to 1000).
    #[arg(long, default_value_t = 1000, hide = true,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub ses_page_size: u16,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// CSV with a header row; `import FILE.csv` reads it back.
    Csv,
    /// One JSON object per line.
    Json,
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ExportFormat,
}

/// `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Number of days, ending today (UTC).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=400))]
    pub days: u32,
    /// Only these sending identities (repeat the flag for several); all when not given.
    #[arg(long, value_name = "IDENTITY")]
    pub identity: Vec<String>,
    /// Also write a self-contained HTML page with the same charts.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// The last day shown instead of today (for reproducible output).
    #[arg(long, hide = true, value_name = "YYYY-MM-DD")]
    pub today: Option<chrono::NaiveDate>,
}

/// `dlq`.
#[derive(Debug, Args)]
pub struct DlqArgs {
    /// The feedback dead-letter queue.
    #[arg(long, global = true, env = "FEEDBACK_DLQ_URL", value_name = "URL")]
    pub dlq_url: Option<String>,
    /// The quarantine queue (records set aside as untrusted or unreadable).
    #[arg(long, global = true, env = "QUARANTINE_QUEUE_URL", value_name = "URL")]
    pub quarantine_url: Option<String>,
    /// The feedback queue, where redrive sends messages.
    #[arg(long, global = true, env = "FEEDBACK_QUEUE_URL", value_name = "URL")]
    pub queue_url: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: DlqCommand,
}

/// Which set-aside queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueueChoice {
    /// The dead-letter queue.
    Dlq,
    /// The quarantine queue.
    Quarantine,
    /// Both (list only).
    Both,
}

/// `dlq` subcommands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Show the messages waiting and why each was set aside; messages stay in the queue.
    ///
    /// Looking receives the messages, so their receive counts include earlier looks.
    List {
        /// Which queue.
        #[arg(long, value_enum, default_value = "both")]
        queue: QueueChoice,
        /// Look at most at this many messages per queue.
        #[arg(long, default_value_t = 100, value_name = "N")]
        max: usize,
        /// Also show the recipients' addresses.
        #[arg(long)]
        show_addresses: bool,
    },
    /// Send messages back to the feedback queue, body unchanged (dry run unless --apply).
    Redrive {
        /// Which queue to drain.
        #[arg(long = "from", value_enum, default_value = "dlq")]
        queue: QueueChoice,
        /// Move at most this many messages.
        #[arg(long, default_value_t = 1000, value_name = "N")]
        max: usize,
        /// Move the messages; without it only a dry run is shown.
        #[arg(long)]
        apply: bool,
        /// Also show the recipients' addresses.
        #[arg(long)]
        show_addresses: bool,
    },
}

/// `doctor`.
///
/// Every check prints pass, warn, fail or skip (not applicable or not configured) with a
/// one-line explanation and the records to publish. Exit status: 0 when no check warned or
/// failed, 1 when one did, 2 when the doctor could not run.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The sending domain: the SES identity Mailcow relays for.
    #[arg(long, env = "SENDING_DOMAIN", value_name = "DOMAIN")]
    pub domain: String,
    /// The Mailcow host: its public IP address, or a name that resolves to it.
    #[arg(long, env = "MAILCOW_HOST", value_name = "HOST|IP")]
    pub mailcow_host: String,
    /// Mailcow's own DKIM selector (Configuration > ARC/DKIM keys; `dkim` by default) to check
    /// its key record too.
    #[arg(long, value_name = "SELECTOR")]
    pub dkim_selector: Option<String>,
    /// Text the contact page on the PTR host name must contain: the operator's name, address,
    /// postmaster or abuse contact (repeat the flag; case is ignored).
    #[arg(long, value_name = "TEXT")]
    pub contact_marker: Vec<String>,
    /// SMTP ports that must offer STARTTLS (repeat the flag); the first is the port other
    /// servers deliver to, whose certificate DANE checks.
    #[arg(long, value_name = "PORT", default_values_t = [25u16, 587])]
    pub smtp_port: Vec<u16>,
    /// Port of the contact page and of the MTA-STS policy host.
    #[arg(long, value_name = "PORT", default_value_t = 443, hide = true)]
    pub https_port: u16,
    /// The SES configuration set that sends feedback to this system.
    #[arg(
        long,
        env = "SES_CONFIGURATION_SET",
        value_name = "NAME",
        default_value = "mailcow-ses-feedback"
    )]
    pub configuration_set: String,
    /// This system's SNS topic (stack output FeedbackTopicArn).
    #[arg(long, env = "FEEDBACK_TOPIC_ARN", value_name = "ARN")]
    pub topic_arn: Option<String>,
    /// The feedback queue.
    #[arg(long, env = "FEEDBACK_QUEUE_URL", value_name = "URL")]
    pub queue_url: Option<String>,
    /// The feedback dead-letter queue.
    #[arg(long, env = "FEEDBACK_DLQ_URL", value_name = "URL")]
    pub dlq_url: Option<String>,
    /// The quarantine queue.
    #[arg(long, env = "QUARANTINE_QUEUE_URL", value_name = "URL")]
    pub quarantine_url: Option<String>,
    /// DNS server to ask instead of the system's resolvers (IP or IP:PORT).
    #[arg(long, value_name = "IP:PORT", value_parser = parse_resolver)]
    pub resolver: Option<SocketAddr>,
    /// Seconds to wait for each DNS answer, connection and exchange.
    #[arg(long, value_name = "SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=120))]
    pub timeout: u64,
    /// PEM file of CA certificates to trust besides the public roots (a private CA); never a
    /// way to skip verification.
    #[arg(long, value_name = "FILE.pem")]
    pub ca_bundle: Option<PathBuf>,
    /// Endpoint of the SESv2 API when it differs from --endpoint-url (e.g. a simulator).
    #[arg(long, env = "SES_ENDPOINT_URL", value_name = "URL")]
    pub ses_endpoint_url: Option<String>,
}

fn parse_resolver(raw: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = raw.parse::<SocketAddr>() {
        return Ok(addr);
    }
    raw.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{raw:?} is not an IP address or IP:PORT"))
}

/// `hash`.
#[derive(Debug, Args)]
pub struct HashArgs {
    /// The address (normalised before hashing, as the functions do), or *@domain.
    #[arg(value_parser = parse_target)]
    pub address: SuppressionTarget,
    /// The key the functions hash with; their built-in default when unset.
    #[arg(long, env = "ADDRESS_HASH_KEY", hide_env_values = true, value_name = "KEY")]
    pub hash_key: Option<String>,
}

/// `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

fn parse_target(raw: &str) -> Result<SuppressionTarget, String> {
    SuppressionTarget::parse(raw).map_err(|e| format!("{e} (expected local@domain or *@domain)"))
}

fn parse_reason(raw: &str) -> Result<SuppressionReason, String> {
    raw.parse().map_err(|e| format!("{e}"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn import_needs_a_file_or_from_ses() {
        assert!(Cli::try_parse_from(["suppressions", "import"]).is_err());
        assert!(Cli::try_parse_from(["suppressions", "import", "--from-ses"]).is_ok());
        assert!(Cli::try_parse_from(["suppressions", "import", "x.csv", "--apply"]).is_ok());
    }

    #[test]
    fn doctor_takes_a_resolver_with_or_without_port_and_repeated_ports() {
        let cli = Cli::try_parse_from([
            "suppressions",
            "doctor",
            "--domain",
            "example.org",
            "--mailcow-host",
            "192.0.2.1",
            "--resolver",
            "127.0.0.1:5353",
            "--smtp-port",
            "2525",
            "--smtp-port",
            "587",
        ])
        .unwrap();
        let Command::Doctor(args) = cli.command else { panic!("not doctor") };
        assert_eq!(args.resolver, Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(args.smtp_port, [2525, 587]);
        assert_eq!(parse_resolver("::1"), Ok("[::1]:53".parse().unwrap()));
        assert!(parse_resolver("dns.example").is_err());
        let defaults = Cli::try_parse_from([
            "suppressions",
            "doctor",
            "--domain",
            "example.org",
            "--mailcow-host",
            "mail.example.org",
        ])
        .unwrap();
        let Command::Doctor(args) = defaults.command else { panic!("not doctor") };
        assert_eq!(args.smtp_port, [25, 587]);
        assert_eq!(args.https_port, 443);
    }

    #[test]
    fn malformed_addresses_and_unknown_reasons_are_usage_errors() {
        assert!(Cli::try_parse_from(["suppressions", "get", "not-an-address"]).is_err());
        let bad_reason = ["suppressions", "list", "--reason", "bounce"];
        assert!(Cli::try_parse_from(bad_reason).is_err());
        let domain = Cli::try_parse_from(["suppressions", "add", "*@example.com"]).unwrap();
        assert!(matches!(
            domain.command,
            Command::Add(AddArgs { target: SuppressionTarget::Domain(_), .. })
        ));
    }
}
