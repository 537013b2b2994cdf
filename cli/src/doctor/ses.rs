//! The SES side: what `GetAccount`, `GetEmailIdentity` and
//! `GetConfigurationSetEventDestinations` say, read once, and the findings about the account,
//! its quota, the identity and the configuration set's wiring to this system's topic.
//!
//! The facts are plain data, so the DNS checks can use the identity's DKIM tokens and MAIL
//! FROM domain without knowing the SDK.

use aws_config::SdkConfig;
use aws_sdk_sesv2::Client;

use super::{Finding, Setup};
use crate::args::DoctorArgs;
use crate::aws::describe_call;

/// A read that may find nothing.
#[derive(Debug, Clone)]
pub enum Lookup<T> {
    /// Found.
    Found(T),
    /// SES answered `NotFoundException`.
    Missing,
    /// The call failed; why.
    Failed(String),
}

/// The account as `GetAccount` reports it.
#[derive(Debug, Clone)]
pub struct AccountFacts {
    production: bool,
    sending: bool,
    enforcement: String,
    review: Option<String>,
    max_24h: f64,
    max_rate: f64,
    sent_24h: f64,
}

/// The sending identity as `GetEmailIdentity` reports it.
#[derive(Debug, Clone)]
pub struct IdentityFacts {
    /// `VerifiedForSendingStatus`.
    pub verified: bool,
    /// `VerificationStatus`.
    pub verification_status: String,
    /// `DkimAttributes.Status`.
    pub dkim_status: String,
    /// `DkimAttributes.Tokens`.
    pub dkim_tokens: Vec<String>,
    /// The zone the DKIM CNAMEs point into (`dkim.amazonses.com` unless SES says otherwise).
    pub dkim_zone: String,
    /// The custom MAIL FROM domain and its status.
    pub mail_from: Option<(String, String)>,
    /// The identity's default configuration set.
    pub configuration_set: Option<String>,
}

/// One enabled or disabled event destination.
#[derive(Debug, Clone)]
pub struct Destination {
    name: String,
    enabled: bool,
    events: Vec<String>,
    topic: Option<String>,
}

/// Everything the doctor reads from SES.
#[derive(Debug, Clone)]
pub struct Facts {
    /// `GetAccount`.
    pub account: Result<AccountFacts, String>,
    /// `GetEmailIdentity` of the sending domain.
    pub identity: Lookup<IdentityFacts>,
    /// `GetConfigurationSetEventDestinations` of `--configuration-set`.
    pub destinations: Lookup<Vec<Destination>>,
}

impl Facts {
    /// Reads the account, the identity and the configuration set at once. Failures are kept
    /// as facts: each becomes a failed check, never an aborted run.
    pub async fn gather(config: &SdkConfig, args: &DoctorArgs, domain: &str) -> Self {
        let mut builder = aws_sdk_sesv2::config::Builder::from(config);
        if let Some(url) = &args.ses_endpoint_url {
            builder = builder.endpoint_url(url);
        }
        let client = Client::from_conf(builder.build());
        let (account, identity, destinations) = tokio::join!(
            client.get_account().send(),
            client.get_email_identity().email_identity(domain).send(),
            client
                .get_configuration_set_event_destinations()
                .configuration_set_name(&args.configuration_set)
                .send(),
        );
        let account = account
            .map(|a| {
                let quota = a.send_quota();
                AccountFacts {
                    production: a.production_access_enabled(),
                    sending: a.sending_enabled(),
                    enforcement: a.enforcement_status().unwrap_or("UNKNOWN").to_owned(),
                    review: a
                        .details()
                        .and_then(|d| d.review_details())
                        .and_then(|r| r.status())
                        .map(|s| s.as_str().to_owned()),
                    max_24h: quota.map_or(0.0, |q| q.max24_hour_send()),
                    max_rate: quota.map_or(0.0, |q| q.max_send_rate()),
                    sent_24h: quota.map_or(0.0, |q| q.sent_last24_hours()),
                }
            })
            .map_err(|e| describe_call("sesv2 GetAccount", e));
        let identity = match identity {
            Ok(i) => Lookup::Found(IdentityFacts {
                verified: i.verified_for_sending_status(),
                verification_status: i
                    .verification_status()
                    .map_or("UNKNOWN", |s| s.as_str())
                    .to_owned(),
                dkim_status: i
                    .dkim_attributes()
                    .and_then(|d| d.status())
                    .map_or("UNKNOWN", |s| s.as_str())
                    .to_owned(),
                dkim_tokens: i.dkim_attributes().map(|d| d.tokens().to_vec()).unwrap_or_default(),
                dkim_zone: i
                    .dkim_attributes()
                    .and_then(|d| d.signing_hosted_zone())
                    .map_or("dkim.amazonses.com".to_owned(), super::dns::normalise),
                mail_from: i.mail_from_attributes().map(|m| {
                    (
                        super::dns::normalise(m.mail_from_domain()),
                        m.mail_from_domain_status().as_str().to_owned(),
                    )
                }),
                configuration_set: i.configuration_set_name().map(str::to_owned),
            }),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => {
                Lookup::Missing
            }
            Err(e) => Lookup::Failed(describe_call("sesv2 GetEmailIdentity", e)),
        };
        let destinations = match destinations {
            Ok(out) => Lookup::Found(
                out.event_destinations()
                    .iter()
                    .map(|d| Destination {
                        name: d.name().to_owned(),
                        enabled: d.enabled(),
                        events: d
                            .matching_event_types()
                            .iter()
                            .map(|t| t.as_str().to_owned())
                            .collect(),
                        topic: d.sns_destination().map(|s| s.topic_arn().to_owned()),
                    })
                    .collect(),
            ),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => {
                Lookup::Missing
            }
            Err(e) => {
                Lookup::Failed(describe_call("sesv2 GetConfigurationSetEventDestinations", e))
            }
        };
        Self { account, identity, destinations }
    }
}

fn account(facts: &Facts, s: &Setup) -> Finding {
    const ID: &str = "ses-account";
    let a = match &facts.account {
        Ok(a) => a,
        Err(e) => {
            return Finding::fail(
                ID,
                format!("could not read the SES account in {}: {e}", s.region),
            );
        }
    };
    if !a.sending {
        return Finding::fail(
            ID,
            format!(
                "sending is paused for the SES account in {}: see the SES console's account dashboard",
                s.region
            ),
        );
    }
    if a.enforcement == "SHUTDOWN" {
        return Finding::fail(
            ID,
            "SES has shut down sending for the account (enforcement SHUTDOWN): contact AWS support",
        );
    }
    if !a.production {
        let why = match a.review.as_deref() {
            Some("PENDING") => "production access was requested and is under review".to_owned(),
            Some(status @ ("DENIED" | "FAILED")) => {
                format!("the production access request was {}", status.to_lowercase())
            }
            _ => "request production access in the SES console".to_owned(),
        };
        return Finding::fail(
            ID,
            format!(
                "the SES account in {} is in the sandbox: it delivers only to verified addresses; {why}",
                s.region
            ),
        );
    }
    if a.enforcement == "PROBATION" {
        return Finding::warn(
            ID,
            "the account is under review (enforcement PROBATION): bounce or complaint rates are too high; see `suppressions stats`",
        );
    }
    Finding::pass(ID, format!("production access, sending enabled, enforcement {}", a.enforcement))
}

fn quota(facts: &Facts) -> Finding {
    const ID: &str = "ses-quota";
    let Ok(a) = &facts.account else {
        return Finding::skip(ID, "needs the SES account (see ses-account)");
    };
    let rate = format!("up to {}/s", a.max_rate);
    if a.max_24h < 0.0 {
        return Finding::pass(
            ID,
            format!("{} messages in the last 24 h, no daily limit, {rate}", a.sent_24h),
        );
    }
    let summary = format!("{} of {} messages in the last 24 h, {rate}", a.sent_24h, a.max_24h);
    if a.sent_24h >= a.max_24h {
        Finding::fail(
            ID,
            format!("{summary}: the daily quota is used up; SES refuses further mail"),
        )
    } else if a.sent_24h >= 0.8 * a.max_24h {
        Finding::warn(
            ID,
            format!("{summary}: over 80 % of the daily quota; ask for more in the SES console"),
        )
    } else {
        Finding::pass(ID, summary)
    }
}

fn identity(facts: &Facts, s: &Setup, set: &str) -> Finding {
    const ID: &str = "ses-identity";
    let i = match &facts.identity {
        Lookup::Found(i) => i,
        Lookup::Missing => {
            return Finding::fail(
                ID,
                format!(
                    "SES has no identity {} in {}: create it (`aws sesv2 create-email-identity --email-identity {}`)",
                    s.domain, s.region, s.domain
                ),
            );
        }
        Lookup::Failed(e) => {
            return Finding::fail(ID, format!("could not read the identity {}: {e}", s.domain));
        }
    };
    if !i.verified {
        return Finding::fail(
            ID,
            format!(
                "{} is not verified for sending (status {}): publish the DKIM records (see dkim)",
                s.domain, i.verification_status
            ),
        );
    }
    if i.configuration_set.as_deref() != Some(set) {
        let now =
            i.configuration_set.as_deref().map_or("no default configuration set".to_owned(), |c| {
                format!("default configuration set {c}")
            });
        return Finding::warn(
            ID,
            format!(
                "{} is verified but has {now}: mail without an X-SES-CONFIGURATION-SET header gives no feedback; run `aws sesv2 put-email-identity-configuration-set-attributes --email-identity {} --configuration-set-name {set}`",
                s.domain, s.domain
            ),
        );
    }
    Finding::pass(
        ID,
        format!("{} is verified for sending, default configuration set {set}", s.domain),
    )
}

fn events(facts: &Facts, s: &Setup, set: &str, topic: Option<&str>) -> Finding {
    const ID: &str = "ses-events";
    let destinations = match &facts.destinations {
        Lookup::Found(d) => d,
        Lookup::Missing => {
            return Finding::fail(
                ID,
                format!(
                    "configuration set {set} does not exist in {}: deploy the stack or pass --configuration-set",
                    s.region
                ),
            );
        }
        Lookup::Failed(e) => {
            return Finding::fail(ID, format!("could not read configuration set {set}: {e}"));
        }
    };
    let sns: Vec<&Destination> =
        destinations.iter().filter(|d| d.enabled && d.topic.is_some()).collect();
    let Some(topic) = topic else {
        if sns.is_empty() {
            return Finding::fail(
                ID,
                format!(
                    "configuration set {set} has no enabled SNS event destination: no feedback reaches this system"
                ),
            );
        }
        let topics: Vec<&str> = sns.iter().filter_map(|d| d.topic.as_deref()).collect();
        return Finding::warn(
            ID,
            format!(
                "{set} publishes to {}; pass --topic-arn (stack output FeedbackTopicArn) to check it is this system's topic",
                topics.join(", ")
            ),
        );
    };
    let Some(destination) = sns.iter().find(|d| d.topic.as_deref() == Some(topic)) else {
        return Finding::fail(
            ID,
            format!(
                "no enabled event destination of {set} publishes to {topic}: no feedback reaches this system"
            ),
        );
    };
    let has = |t: &str| destination.events.iter().any(|e| e.eq_ignore_ascii_case(t));
    let missing: Vec<&str> = ["BOUNCE", "COMPLAINT"].into_iter().filter(|t| !has(t)).collect();
    if !missing.is_empty() {
        return Finding::fail(
            ID,
            format!(
                "destination {} of {set} does not send {}: those never reach the suppression list",
                destination.name,
                missing.join(" or ")
            ),
        );
    }
    if !has("DELIVERY") {
        return Finding::warn(
            ID,
            format!(
                "destination {} sends no DELIVERY events: `suppressions stats` and soft-bounce recovery miss them",
                destination.name
            ),
        );
    }
    Finding::pass(
        ID,
        format!(
            "destination {} of {set} sends {} to this system's topic",
            destination.name,
            destination.events.join(", ")
        ),
    )
}

/// The SES findings, in the order they print.
pub fn findings(facts: &Facts, s: &Setup, args: &DoctorArgs) -> Vec<Finding> {
    vec![
        account(facts, s),
        quota(facts),
        identity(facts, s, &args.configuration_set),
        events(facts, s, &args.configuration_set, args.topic_arn.as_deref()),
    ]
}
