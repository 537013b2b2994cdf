//! The feedback generator: a seeded scenario of SES notifications drawn from the fixture shapes
//! in `tests/fixtures/ses/`, published to the SNS topic, and the exact outcome the system must
//! reach for it.
//!
//! A scenario is a set of per-address stories (a hard bounce; three soft bounces; a delivery
//! followed by an out-of-office reply; a delivery reported before the soft bounces that
//! preceded it; ...), plus duplicates, SES setup chatter and malformed messages. Stories are spread over *waves*: each wave is published only after the previous one
//! has been fully processed, and within a wave an address appears in at most one notification
//! (or in identical copies of it), so the result does not depend on the order the queue hands
//! records out in. That is what makes an exact expectation possible; a unit test checks it by
//! folding every wave in shuffled orders.
//!
//! The expectation is computed from the domain crate (`feedback_domain::policy`) over what
//! `ses_wire` parses, in an in-memory store with the table's idempotency rules. It depends on the
//! domain and wire crates only; publishing is in [`publish`].

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, bail};
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use feedback_domain::memory::InMemorySuppressionStore;
use feedback_domain::policy::{self, Policy};
use feedback_domain::ports::{
    CommitOutcome, CounterField, EventWrite, HistoryEntry, SuppressionStore, WriteScope,
};
use feedback_domain::{AddressRecord, FeedbackEvent, SuppressionTarget};
use serde_json::{Value, json};
use ses_wire::Content;
use suppression_store::CounterValues;

/// Fixture shapes, each filled with generated ids, times and recipients.
mod shapes {
    macro_rules! fixture {
        ($name:ident, $file:literal) => {
            pub const $name: &str = include_str!(concat!("../../../tests/fixtures/ses/", $file));
        };
    }
    fixture!(HARD_GENERAL, "ses-notification-bounce-permanent-general.simulator.relay.json");
    fixture!(HARD_NOEMAIL, "derived/ses-notification-bounce-permanent-noemail.derived.json");
    fixture!(HARD_LISTED, "ses-notification-bounce-suppressionlist-address.simulator.relay.json");
    fixture!(
        HARD_TENANT,
        "derived/ses-notification-bounce-permanent-ontenantsuppressionlist.derived.json"
    );
    fixture!(
        HARD_TWO,
        "ses-notification-bounce-permanent-general-no-dsn-two-recipients.aws-docs.json"
    );
    fixture!(HARD_EVENT, "ses-event-bounce-permanent-general.aws-docs.json");
    fixture!(SOFT_FULL, "derived/ses-notification-bounce-transient-mailboxfull.derived.json");
    fixture!(
        SOFT_UNDETERMINED,
        "derived/ses-notification-bounce-undetermined-undetermined.derived.json"
    );
    fixture!(
        SOFT_TIMEOUT,
        "derived/ses-notification-bounce-transient-customtimeoutexceeded.derived.json"
    );
    fixture!(SOFT_GENERAL, "ses-notification-bounce-transient-general-ooto.simulator.relay.json");
    fixture!(
        CONTENT_SIZE,
        "derived/ses-notification-bounce-transient-messagetoolarge.derived.json"
    );
    fixture!(
        CONTENT_REJECTED,
        "derived/ses-notification-bounce-transient-contentrejected.derived.json"
    );
    fixture!(
        CONTENT_ATTACHMENT,
        "derived/ses-notification-bounce-transient-attachmentrejected.derived.json"
    );
    fixture!(
        COMPLAINT_ABUSE,
        "ses-notification-complaint-abuse-with-feedback-report.aws-docs.json"
    );
    fixture!(COMPLAINT_BARE, "ses-notification-complaint-without-feedback-report.aws-docs.json");
    fixture!(COMPLAINT_EVENT, "ses-event-complaint-abuse.aws-docs.json");
    fixture!(NOT_SPAM, "derived/ses-notification-complaint-not-spam.derived.json");
    fixture!(DELIVERY, "ses-notification-delivery.aws-docs.json");
    fixture!(DELIVERY_EVENT, "ses-event-delivery.aws-docs.json");
    fixture!(DELIVERY_OOTO, "ses-notification-delivery-ooto.simulator.relay.json");
    fixture!(SEND_EVENT, "ses-event-send.aws-docs.json");
    fixture!(OPEN_EVENT, "ses-event-open.aws-docs.json");
    fixture!(SUBSCRIBED, "derived/sns-notification-subscription-succeeded.derived.json");
    fixture!(VALIDATED, "sns-notification-event-destination-validation-plaintext.anymail.json");
}

/// `NEVER_SUPPRESS` of the local stack: the scenario has stories for both entries.
pub const NEVER_SUPPRESS: &str = "postmaster@example.org,*@partner.example";

/// Domains recipients are drawn from (reserved names only).
const DOMAINS: [&str; 4] = ["example.com", "example.net", "example.org", "mail.example"];

/// Sending identities (the counters are kept per identity).
const IDENTITIES: [&str; 2] = ["example.com", "news.example.com"];

const NAMES: [&str; 12] = [
    "anna", "ben", "chloe", "dmitri", "elif", "farid", "greta", "hugo", "ines", "jonas", "kira",
    "lars",
];

/// What ingest must do with a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Expect {
    /// Applied to the table (possibly as a duplicate, possibly with nothing to change).
    Applied,
    /// Acknowledged without effect (SES setup chatter).
    Ignored,
    /// Set aside on the quarantine queue with this reason.
    Quarantined(&'static str),
}

impl Expect {
    /// `applied`, `ignored` or `quarantined`, as ingest logs the outcome.
    pub fn name(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Ignored => "ignored",
            Self::Quarantined(_) => "quarantined",
        }
    }
}

/// One SNS message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Wave it is published in (0-based).
    pub wave: usize,
    /// The story it belongs to (`hard_bounce`, `soft_burst`, `malformed`, ...).
    pub story: &'static str,
    /// The SNS `Message`: SES JSON, SES's plain-text chatter, or something broken.
    pub message: String,
    /// What ingest must do with it (the story's intent, checked against the policy).
    pub expect: Expect,
}

/// A generated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The seed.
    pub seed: u64,
    /// Time the events are placed after.
    pub base: DateTime<Utc>,
    /// Everything to publish, wave by wave.
    pub notifications: Vec<Notification>,
}

impl Scenario {
    /// Number of waves.
    pub fn waves(&self) -> usize {
        self.notifications.iter().map(|n| n.wave + 1).max().unwrap_or(0)
    }

    /// The notifications of one wave.
    pub fn wave(&self, wave: usize) -> impl Iterator<Item = &Notification> {
        self.notifications.iter().filter(move |n| n.wave == wave)
    }

    /// Notifications per story, for the report.
    pub fn stories(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for n in &self.notifications {
            *out.entry(n.story).or_default() += 1;
        }
        out
    }
}

/// How many stories of each kind; [`Mix::standard`] is what the demo and the test run.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// Multiplies every story count.
    pub scale: usize,
}

impl Mix {
    /// About 360 notifications, about 55 of them suppressing an address (the sync mirrors each
    /// suppression into SES at one request per second, as the real account allows).
    pub fn standard() -> Self {
        Self { scale: 1 }
    }

    /// The load run: every story 29 times, a little over 10,000 notifications.
    pub fn load() -> Self {
        Self { scale: 29 }
    }
}

struct Fill<'a> {
    message_id: &'a str,
    at: DateTime<Utc>,
    recipients: &'a [String],
    feedback_id: Option<&'a str>,
    identity: &'a str,
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A fixture shape with the generated values put in. Everything else stays as in the fixture.
fn fill(shape: &str, f: &Fill<'_>) -> anyhow::Result<String> {
    let mut v: Value = serde_json::from_str(shape)?;
    let source = format!("Newsletter <news@{}>", f.identity);
    let mail =
        v.get_mut("mail").and_then(Value::as_object_mut).ok_or_else(|| anyhow!("no mail"))?;
    mail.insert("messageId".into(), json!(f.message_id));
    mail.insert("timestamp".into(), json!(stamp(f.at - Duration::seconds(2))));
    mail.insert("destination".into(), json!(f.recipients));
    mail.insert("source".into(), json!(source));
    mail.insert(
        "sourceArn".into(),
        json!(format!("arn:aws:ses:eu-central-1:123456789012:identity/{}", f.identity)),
    );
    // Headers repeat the recipients; keep their shape, not the fixture's people.
    if mail.contains_key("headers") {
        mail.insert(
            "headers".into(),
            json!([
                {"name": "From", "value": source},
                {"name": "To", "value": f.recipients.join(", ")},
                {"name": "Subject", "value": "Monthly news"}
            ]),
        );
        mail.insert(
            "commonHeaders".into(),
            json!({"from": [source], "to": f.recipients, "subject": "Monthly news"}),
        );
    }
    for (key, list) in [("bounce", "bouncedRecipients"), ("complaint", "complainedRecipients")] {
        if let Some(object) = v.get_mut(key).and_then(Value::as_object_mut) {
            object.insert("timestamp".into(), json!(stamp(f.at)));
            if object.contains_key("arrivalDate") {
                object.insert("arrivalDate".into(), json!(stamp(f.at - Duration::seconds(1))));
            }
            if let Some(id) = f.feedback_id {
                object.insert("feedbackId".into(), json!(id));
            }
            let prototype = object
                .get(list)
                .and_then(|l| l.get(0))
                .cloned()
                .ok_or_else(|| anyhow!("{key} has no {list}"))?;
            let recipients: Vec<Value> = f
                .recipients
                .iter()
                .map(|r| {
                    let mut one = prototype.clone();
                    one["emailAddress"] = json!(r);
                    one
                })
                .collect();
            object.insert(list.into(), Value::Array(recipients));
        }
    }
    if let Some(object) = v.get_mut("delivery").and_then(Value::as_object_mut) {
        object.insert("timestamp".into(), json!(stamp(f.at)));
        object.insert("recipients".into(), json!(f.recipients));
    }
    if let Some(object) = v.get_mut("open").and_then(Value::as_object_mut) {
        object.insert("timestamp".into(), json!(stamp(f.at)));
    }
    Ok(v.to_string())
}

struct Generator {
    rng: fastrand::Rng,
    base: DateTime<Utc>,
    next: usize,
    out: Vec<Notification>,
}

impl Generator {
    fn id(&mut self) -> String {
        let r = &mut self.rng;
        format!(
            "{:016x}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}-000000",
            r.u64(..),
            r.u32(..),
            r.u16(..),
            r.u16(..),
            r.u16(..),
            r.u64(..1 << 48)
        )
    }

    fn address(&mut self, domain: Option<&str>) -> String {
        self.next += 1;
        let name = NAMES[self.rng.usize(..NAMES.len())];
        let domain = domain.unwrap_or(DOMAINS[self.rng.usize(..DOMAINS.len())]);
        format!("{name}.{:04}@{domain}", self.next)
    }

    fn identity(&mut self) -> &'static str {
        IDENTITIES[self.rng.usize(..IDENTITIES.len())]
    }

    /// A start time within the first day after the base, to the millisecond.
    fn start(&mut self) -> DateTime<Utc> {
        self.base + Duration::milliseconds(self.rng.i64(0..6 * 3600 * 1000))
    }

    fn pick(&mut self, shapes: &[&'static str]) -> &'static str {
        shapes[self.rng.usize(..shapes.len())]
    }

    /// One SES notification about `recipients`.
    fn push(
        &mut self,
        wave: usize,
        story: &'static str,
        shape: &str,
        at: DateTime<Utc>,
        recipients: &[String],
        message_id: Option<&str>,
    ) -> anyhow::Result<()> {
        let generated = self.id();
        let feedback_id = self.id();
        let identity = self.identity();
        let message = fill(
            shape,
            &Fill {
                message_id: message_id.unwrap_or(&generated),
                at,
                recipients,
                feedback_id: Some(&feedback_id),
                identity,
            },
        )?;
        self.out.push(Notification { wave, story, message, expect: Expect::Applied });
        Ok(())
    }

    fn raw(&mut self, wave: usize, story: &'static str, message: String, expect: Expect) {
        self.out.push(Notification { wave, story, message, expect });
    }
}

/// Generates the scenario for `seed`, with events placed in the hours after `base`.
///
/// Fails only when a fixture shape does not have the fields the generator fills (a broken
/// fixture file).
pub fn generate(seed: u64, base: DateTime<Utc>, mix: Mix) -> anyhow::Result<Scenario> {
    use shapes::*;

    let mut g = Generator { rng: fastrand::Rng::with_seed(seed), base, next: 0, out: Vec::new() };
    let n = |count: usize| count * mix.scale.max(1);
    let hour = Duration::hours(1);
    let waves = 3;

    // Hard bounces, one notification per address, in any wave.
    for _ in 0..n(20) {
        let to = vec![g.address(None)];
        let shape = g.pick(&[HARD_GENERAL, HARD_NOEMAIL, HARD_LISTED, HARD_TENANT, HARD_EVENT]);
        let (wave, at) = (g.rng.usize(..waves), g.start());
        g.push(wave, "hard_bounce", shape, at, &to, None)?;
    }
    // One bounce naming two recipients.
    for _ in 0..n(4) {
        let to = vec![g.address(None), g.address(None)];
        let (wave, at) = (g.rng.usize(..waves), g.start());
        g.push(wave, "hard_bounce_two_recipients", HARD_TWO, at, &to, None)?;
    }
    // A hard bounce, then another one later: already suppressed.
    for _ in 0..n(3) {
        let to = vec![g.address(None)];
        let at = g.start();
        g.push(0, "hard_bounce_repeated", HARD_GENERAL, at, &to, None)?;
        g.push(1, "hard_bounce_repeated", HARD_EVENT, at + hour, &to, None)?;
    }
    // Three soft bounces within the window: suppressed for 14 days from the third.
    let soft = [SOFT_FULL, SOFT_UNDETERMINED, SOFT_TIMEOUT, SOFT_GENERAL];
    for _ in 0..n(8) {
        let to = vec![g.address(None)];
        let at = g.start();
        for wave in 0..3 {
            let shape = g.pick(&soft);
            let when = at + hour * (2 * wave as i32 + 1);
            g.push(wave, "soft_burst", shape, when, &to, None)?;
        }
    }
    // Two soft bounces: counted, not suppressed.
    for _ in 0..n(20) {
        let to = vec![g.address(None)];
        let at = g.start();
        for wave in 0..2 {
            let shape = g.pick(&soft);
            g.push(wave, "soft_counted", shape, at + hour * wave as i32, &to, None)?;
        }
    }
    // Two soft bounces, then a delivery after them: the count starts again.
    for _ in 0..n(8) {
        let to = vec![g.address(None)];
        let at = g.start();
        for wave in 0..2 {
            let shape = g.pick(&soft);
            g.push(wave, "soft_then_delivery", shape, at + hour * wave as i32, &to, None)?;
        }
        g.push(2, "soft_then_delivery", DELIVERY, at + hour * 3, &to, None)?;
    }
    // Out of order: the delivery is reported first, the two soft bounces that happened before
    // it arrive later; they must end as if they had arrived in order (not counted).
    for _ in 0..n(6) {
        let to = vec![g.address(None)];
        let at = g.start();
        g.push(0, "delivery_before_bounces", DELIVERY, at + hour * 3, &to, None)?;
        for step in 0..2 {
            let shape = g.pick(&soft);
            g.push(1, "delivery_before_bounces", shape, at + hour * step, &to, None)?;
        }
    }
    // A soft bounce, then a hard one.
    for _ in 0..n(4) {
        let to = vec![g.address(None)];
        let at = g.start();
        let shape = g.pick(&soft);
        g.push(0, "soft_then_hard", shape, at, &to, None)?;
        g.push(1, "soft_then_hard", HARD_GENERAL, at + hour, &to, None)?;
    }
    // Bounces of the message, not the address: recorded only.
    for _ in 0..n(15) {
        let to = vec![g.address(None)];
        let shape = g.pick(&[CONTENT_SIZE, CONTENT_REJECTED, CONTENT_ATTACHMENT]);
        let (wave, at) = (g.rng.usize(..waves), g.start());
        g.push(wave, "content_bounce", shape, at, &to, None)?;
    }
    // Complaints, with and without a feedback report, and from event publishing.
    for _ in 0..n(10) {
        let to = vec![g.address(None)];
        let shape = g.pick(&[COMPLAINT_ABUSE, COMPLAINT_BARE, COMPLAINT_EVENT]);
        let (wave, at) = (g.rng.usize(..waves), g.start());
        g.push(wave, "complaint", shape, at, &to, None)?;
    }
    // `not-spam` reports: recorded only.
    for _ in 0..n(10) {
        let to = vec![g.address(None)];
        let (wave, at) = (g.rng.usize(..waves), g.start());
        g.push(wave, "complaint_not_spam", NOT_SPAM, at, &to, None)?;
    }
    // Deliveries to one to three recipients.
    for _ in 0..n(70) {
        let count = g.rng.usize(1..=3);
        let to: Vec<String> = (0..count).map(|_| g.address(None)).collect();
        let shape = g.pick(&[DELIVERY, DELIVERY_EVENT]);
        let (wave, at) = (g.rng.usize(..waves), g.start());
        g.push(wave, "delivery", shape, at, &to, None)?;
    }
    // A delivery, then an out-of-office reply to the same message: an auto-reply, not counted.
    for _ in 0..n(15) {
        let to = vec![g.address(None)];
        let at = g.start();
        let message_id = g.id();
        g.push(0, "auto_reply", DELIVERY_OOTO, at, &to, Some(&message_id))?;
        g.push(1, "auto_reply", SOFT_GENERAL, at + Duration::minutes(3), &to, Some(&message_id))?;
    }
    // Addresses that NEVER_SUPPRESS protects.
    let protected = [
        "postmaster@example.org".to_owned(),
        g.address(Some("partner.example")),
        g.address(Some("partner.example")),
    ];
    for (wave, address) in protected.iter().enumerate() {
        let at = g.start();
        let to = [address.clone()];
        g.push(wave, "never_suppress", HARD_GENERAL, at, &to, None)?;
    }
    // Send and open events: counted or ignored by the policy, no address record.
    for _ in 0..n(35) {
        let to = vec![g.address(None)];
        let (wave, at) = (g.rng.usize(..waves), g.start());
        g.push(wave, "send_event", SEND_EVENT, at, &to, None)?;
    }
    for _ in 0..n(12) {
        let to = vec![g.address(None)];
        let (wave, at) = (g.rng.usize(..waves), g.start());
        g.push(wave, "open_event", OPEN_EVENT, at, &to, None)?;
    }

    // SES delivers some notifications twice; SNS gives each copy its own MessageId.
    let originals = g.out.len();
    for _ in 0..n(25) {
        let copy = g.out[g.rng.usize(..originals)].clone();
        g.out.push(Notification { story: "duplicate", ..copy });
    }

    // Setup chatter SES publishes while notifications are configured.
    let message = |fixture: &str| -> anyhow::Result<String> {
        let v: Value = serde_json::from_str(fixture)?;
        Ok(v["Message"].as_str().unwrap_or_default().to_owned())
    };
    g.raw(0, "setup_chatter", message(VALIDATED)?, Expect::Ignored);
    g.raw(0, "setup_chatter", message(SUBSCRIBED)?, Expect::Ignored);
    let setup = json!({
        "notificationType": "Bounce",
        "mail": {"messageId": "AMAZON_SES_SETUP_NOTIFICATION", "destination": []}
    });
    g.raw(1, "setup_chatter", setup.to_string(), Expect::Ignored);

    // Malformed messages: each is quarantined with its reason.
    let to = vec![g.address(None)];
    let at = g.start();
    let id = g.id();
    let hard = fill(
        HARD_GENERAL,
        &Fill {
            message_id: &id,
            at,
            recipients: &to,
            feedback_id: Some(&id),
            identity: "example.com",
        },
    )?;
    g.raw(0, "malformed", hard[..hard.len() / 2].to_owned(), Expect::Quarantined("not_json"));
    g.raw(
        1,
        "malformed",
        "{\"greeting\":\"hello\"}".to_owned(),
        Expect::Quarantined("not_ses_feedback"),
    );
    g.raw(2, "malformed", "[1,2,3]".to_owned(), Expect::Quarantined("not_ses_feedback"));
    let mut missing: Value = serde_json::from_str(&hard)?;
    if let Some(bounce) = missing.get_mut("bounce").and_then(Value::as_object_mut) {
        bounce.remove("bouncedRecipients");
    }
    g.raw(1, "malformed", missing.to_string(), Expect::Quarantined("missing_field"));
    let mut late: Value = serde_json::from_str(&hard)?;
    late["bounce"]["timestamp"] = json!("yesterday at noon");
    g.raw(2, "malformed", late.to_string(), Expect::Quarantined("bad_timestamp"));
    let mut typed: Value = serde_json::from_str(&hard)?;
    typed["mail"] = json!("not an object");
    g.raw(0, "malformed", typed.to_string(), Expect::Quarantined("malformed"));

    // Publish order within a wave is shuffled; the outcome must not depend on it.
    g.rng.shuffle(&mut g.out);
    g.out.sort_by_key(|n| n.wave);
    Ok(Scenario { seed, base, notifications: g.out })
}

/// The SQS body SNS produces for a message (non-raw delivery), with the fields the wire crate
/// reads. The signature is a placeholder: the local stack does not verify signatures.
pub fn sns_envelope(message: &str, topic_arn: &str, message_id: &str) -> String {
    json!({
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": topic_arn,
        "Message": message,
        "Timestamp": "2026-01-01T00:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "placeholder",
        "SigningCertURL": "https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-local.pem",
        "UnsubscribeURL": "https://sns.eu-central-1.amazonaws.com/?Action=Unsubscribe"
    })
    .to_string()
}

/// The exact final state of the system after a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// State records by key (`address`).
    pub records: BTreeMap<String, AddressRecord>,
    /// History by key: (idempotency key, outcome).
    pub history: BTreeMap<String, BTreeSet<(String, String)>>,
    /// SES message ids of counted Send events.
    pub sends: BTreeSet<String>,
    /// Daily counters by (day, identity).
    pub counters: BTreeMap<(NaiveDate, String), CounterValues>,
    /// Quarantined messages with their reason, sorted.
    pub quarantined: Vec<(String, String)>,
    /// Notifications per expected outcome name.
    pub outcomes: BTreeMap<&'static str, usize>,
}

impl Expectation {
    /// Keys of the suppressions in force at `now`: what Mailcow must block.
    pub fn blocked_at(&self, now: DateTime<Utc>) -> BTreeSet<String> {
        self.records
            .iter()
            .filter(|(_, r)| r.active_suppression(now).is_some())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The SES account list at `now`: address -> `BOUNCE` or `COMPLAINT`.
    pub fn ses_list_at(&self, now: DateTime<Utc>) -> BTreeMap<String, &'static str> {
        self.records
            .iter()
            .filter_map(|(k, r)| {
                let reason = r.active_suppression(now)?.reason;
                let ses = match reason {
                    feedback_domain::SuppressionReason::Complaint => "COMPLAINT",
                    _ => "BOUNCE",
                };
                Some((k.clone(), ses))
            })
            .collect()
    }
}

/// Folds the scenario through the policy, wave by wave, in the given order within each wave.
///
/// Fails when a notification's outcome under the wire crate and the policy differs from what
/// its story intends (a generator bug), which keeps the expectation honest.
pub async fn expect(
    scenario: &Scenario,
    policy: &Policy,
    retention: Duration,
    order: impl Fn(&[&Notification]) -> Vec<usize>,
) -> anyhow::Result<Expectation> {
    let store = InMemorySuppressionStore::default();
    let mut out = Expectation {
        records: BTreeMap::new(),
        history: BTreeMap::new(),
        sends: BTreeSet::new(),
        counters: BTreeMap::new(),
        quarantined: Vec::new(),
        outcomes: BTreeMap::new(),
    };
    for wave in 0..scenario.waves() {
        let in_wave: Vec<&Notification> = scenario.wave(wave).collect();
        for index in order(&in_wave) {
            let n = in_wave[index];
            let body = sns_envelope(&n.message, "arn:aws:sns:eu-central-1:123456789012:t", "m");
            let outcome = match ses_wire::parse_sqs_body(&body) {
                Err(e) => {
                    out.quarantined.push((n.message.clone(), e.reason_code().to_owned()));
                    Expect::Quarantined(e.reason_code())
                }
                Ok(parsed) => match parsed.content {
                    Content::Feedback(feedback) => {
                        apply(&store, &feedback, policy, retention, &mut out).await?;
                        Expect::Applied
                    }
                    Content::Setup(_) => Expect::Ignored,
                    other => bail!("story {} produced {other:?}", n.story),
                },
            };
            if outcome != n.expect {
                bail!(
                    "story {}: the policy gives {outcome:?}, the story intends {:?}",
                    n.story,
                    n.expect
                );
            }
            *out.outcomes.entry(outcome.name()).or_default() += 1;
        }
    }
    for record in store.records() {
        out.records.insert(record.target.key(), record);
    }
    out.quarantined.sort();
    Ok(out)
}

async fn apply(
    store: &InMemorySuppressionStore,
    feedback: &feedback_domain::Feedback,
    policy: &Policy,
    retention: Duration,
    out: &mut Expectation,
) -> anyhow::Result<()> {
    let identity = feedback.mail.identity.clone().unwrap_or_else(|| "unknown".to_owned());
    if let FeedbackEvent::Send { .. } = &feedback.event {
        if out.sends.insert(feedback.mail.message_id.clone()) {
            let day = match &feedback.event {
                FeedbackEvent::Send { at } => at.date_naive(),
                _ => unreachable_day(),
            };
            let count = u64::try_from(feedback.mail.destination_count.max(1)).unwrap_or(1);
            out.counters.entry((day, identity)).or_default().sends += count;
        }
        return Ok(());
    }
    for event in policy::recipient_events(feedback).events {
        let target = SuppressionTarget::Address(event.address.clone());
        let prior = store.load(&target).await?;
        let (decision, record) = policy::decide(prior.as_ref(), &event, policy);
        let history = event.history_entry(&decision, Some(event.at + retention));
        let write = EventWrite {
            scope: WriteScope::Record {
                record: Box::new(record),
                expected_version: prior.as_ref().map_or(0, |r| r.version),
            },
            history: history.clone(),
            counter: None,
        };
        match store.commit(&write).await? {
            CommitOutcome::Applied => {
                let key = event.address.as_str().to_owned();
                let HistoryEntry { idempotency_key, outcome, .. } = history;
                out.history.entry(key).or_default().insert((idempotency_key, outcome));
                if let Some(field) = event.counter_field() {
                    let values =
                        out.counters.entry((event.at.date_naive(), identity.clone())).or_default();
                    match field {
                        CounterField::Sends => values.sends += 1,
                        CounterField::Deliveries => values.deliveries += 1,
                        CounterField::HardBounces => values.hard_bounces += 1,
                        CounterField::SoftBounces => values.soft_bounces += 1,
                        CounterField::Complaints => values.complaints += 1,
                    }
                }
            }
            CommitOutcome::Duplicate => {}
            CommitOutcome::Conflict => bail!("the in-memory fold cannot conflict"),
        }
    }
    Ok(())
}

fn unreachable_day() -> NaiveDate {
    NaiveDate::MIN
}

/// Publishes one notification to the topic and returns SNS's `MessageId`. Retries a few
/// times when the endpoint is briefly unavailable.
///
/// Fails when SNS keeps refusing.
pub async fn publish(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    notification: &Notification,
) -> anyhow::Result<String> {
    let mut last = None;
    for attempt in 0..5 {
        match sns.publish().topic_arn(topic_arn).message(&notification.message).send().await {
            Ok(out) => return out.message_id.ok_or_else(|| anyhow!("Publish gave no MessageId")),
            Err(e) => {
                last = Some(aws_sdk_sns::error::DisplayErrorContext(e).to_string());
                tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
            }
        }
    }
    Err(anyhow!("publishing to the feedback topic failed: {}", last.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use chrono::TimeZone;

    fn base() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap()
    }

    fn policy() -> Policy {
        Policy {
            never_suppress: feedback_domain::policy::NeverSuppress::parse(NEVER_SUPPRESS).unwrap(),
            ..Policy::default()
        }
    }

    #[tokio::test]
    async fn the_same_seed_gives_the_same_scenario_and_another_seed_another() {
        let a = generate(7, base(), Mix::standard()).unwrap();
        let b = generate(7, base(), Mix::standard()).unwrap();
        let c = generate(8, base(), Mix::standard()).unwrap();
        assert_eq!(a.notifications, b.notifications);
        assert_ne!(a.notifications, c.notifications);
        assert!(a.notifications.len() > 300, "hundreds of notifications");
    }

    #[tokio::test]
    async fn the_expectation_does_not_depend_on_the_order_within_a_wave() {
        let scenario = generate(11, base(), Mix::standard()).unwrap();
        let retention = Duration::days(400);
        let in_order =
            expect(&scenario, &policy(), retention, |w| (0..w.len()).collect()).await.unwrap();
        for seed in 0..4 {
            let shuffled = expect(&scenario, &policy(), retention, |w| {
                let mut order: Vec<usize> = (0..w.len()).collect();
                fastrand::Rng::with_seed(seed).shuffle(&mut order);
                order
            })
            .await
            .unwrap();
            assert_eq!(shuffled, in_order, "order {seed} changed the outcome");
        }
        let reversed = expect(&scenario, &policy(), retention, |w| (0..w.len()).rev().collect())
            .await
            .unwrap();
        assert_eq!(reversed, in_order);
    }

    #[tokio::test]
    async fn every_story_ends_as_it_intends() {
        let scenario = generate(3, base(), Mix::standard()).unwrap();
        let expected =
            expect(&scenario, &policy(), Duration::days(400), |w| (0..w.len()).collect())
                .await
                .unwrap();
        let now = base() + Duration::days(1);
        let reason =
            |key: &str| expected.records[key].active_suppression(now).map(|s| s.reason.as_str());
        let first = |story: &str| -> Vec<String> {
            scenario
                .notifications
                .iter()
                .filter(|n| n.story == story)
                .map(|n| {
                    let v: Value = serde_json::from_str(&n.message).unwrap();
                    v["mail"]["destination"][0].as_str().unwrap().to_owned()
                })
                .collect()
        };
        for key in first("hard_bounce") {
            assert_eq!(reason(&key), Some("hard_bounce"));
        }
        for key in first("soft_burst") {
            assert_eq!(reason(&key), Some("soft_bounce"));
            let suppression = expected.records[&key].suppression.as_ref().unwrap();
            assert_eq!(suppression.expires_at, Some(suppression.since + Duration::days(14)));
        }
        for key in first("soft_counted") {
            assert_eq!(reason(&key), None);
            assert_eq!(expected.records[&key].soft_bounce_count, 2);
        }
        for key in first("soft_then_delivery") {
            assert_eq!(expected.records[&key].soft_bounce_count, 0);
        }
        for key in first("soft_then_hard") {
            assert_eq!(reason(&key), Some("hard_bounce"));
        }
        for key in first("complaint") {
            assert_eq!(reason(&key), Some("complaint"));
        }
        for story in
            ["complaint_not_spam", "content_bounce", "never_suppress", "auto_reply", "delivery"]
        {
            for key in first(story) {
                assert_eq!(reason(&key), None, "{story}");
            }
        }
        for key in first("delivery_before_bounces") {
            let record = &expected.records[&key];
            assert_eq!(record.soft_bounce_count, 0, "soft bounces older than the delivery");
            assert_eq!(reason(&key), None);
            let outcomes: Vec<&str> =
                expected.history[&key].iter().map(|(_, o)| o.as_str()).collect();
            assert_eq!(outcomes, ["recorded"; 3], "delivery + two late soft bounces recorded");
        }
        for key in first("auto_reply") {
            assert_eq!(expected.records[&key].soft_bounce_count, 0, "an auto-reply is not counted");
            assert!(expected.history[&key].iter().any(|(_, outcome)| outcome == "recorded"));
        }
        assert_eq!(expected.quarantined.len(), 6);
        assert_eq!(expected.outcomes["ignored"], 3);
        assert_eq!(
            expected.outcomes.values().sum::<usize>(),
            scenario.notifications.len(),
            "every notification has an outcome"
        );
    }
}
