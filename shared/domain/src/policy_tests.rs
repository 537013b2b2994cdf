use chrono::TimeZone;
use proptest::prelude::*;

use super::*;
use crate::feedback::{
    Bounce, BouncedRecipient, Complaint, Delivery, EventKind, FeedbackSource, MailContext,
};

fn t(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
}

fn addr() -> EmailAddress {
    EmailAddress::parse("person@example.com").unwrap()
}

fn bounce(bt: &str, st: &str, action: Option<&str>, status: Option<&str>) -> RecipientEventKind {
    RecipientEventKind::Bounce {
        bounce_type: BounceType::from_wire(bt),
        sub_type: BounceSubType::from_wire(st),
        action: action.map(str::to_owned),
        status: status.map(str::to_owned),
        diagnostic_code: Some("smtp; 550 5.1.1 user unknown".into()),
    }
}

fn complaint(feedback_type: Option<&str>) -> RecipientEventKind {
    RecipientEventKind::Complaint {
        feedback_type: feedback_type.map(ComplaintFeedbackType::from_wire),
        sub_type: None,
    }
}

fn event(kind: RecipientEventKind, at: DateTime<Utc>, message: &str) -> RecipientEvent {
    RecipientEvent {
        address: addr(),
        kind,
        at,
        feedback_id: Some(format!("fb-{message}-{}", at.timestamp())),
        ses_message_id: message.to_owned(),
        identity: Some("example.org".into()),
    }
}

/// Applies events in order, as the store would, and returns every decision and the final record.
fn run(events: &[RecipientEvent], policy: &Policy) -> (Vec<Decision>, Option<AddressRecord>) {
    let mut record: Option<AddressRecord> = None;
    let mut decisions = Vec::new();
    for e in events {
        let (decision, next) = decide(record.as_ref(), e, policy);
        decisions.push(decision);
        record = Some(next);
    }
    (decisions, record)
}

#[test]
fn bounce_classification_follows_type_and_recipient_dsn() {
    let cases = [
        ("Permanent", "General", Some("failed"), Some("5.1.1"), BounceClass::Hard),
        ("Permanent", "NoEmail", None, None, BounceClass::Hard),
        ("Permanent", "Suppressed", Some("failed"), None, BounceClass::Hard),
        ("Permanent", "OnAccountSuppressionList", None, None, BounceClass::Hard),
        ("Permanent", "OnTenantSuppressionList", None, None, BounceClass::Hard),
        ("Permanent", "General", Some("delayed"), Some("4.0.0"), BounceClass::Soft),
        ("Permanent", "General", Some("failed"), Some("4.4.7"), BounceClass::Soft),
        ("Permanent", "General", Some("relayed"), None, BounceClass::Soft),
        ("Transient", "General", None, None, BounceClass::Soft),
        ("Transient", "MailboxFull", Some("failed"), Some("5.2.2"), BounceClass::Soft),
        ("Transient", "CustomTimeoutExceeded", None, None, BounceClass::Soft),
        ("Transient", "General", Some("failed"), Some("5.4.4"), BounceClass::Soft),
        ("Undetermined", "Undetermined", None, None, BounceClass::Soft),
        ("Transient", "MessageTooLarge", None, None, BounceClass::Content),
        ("Transient", "ContentRejected", None, None, BounceClass::Content),
        ("Transient", "AttachmentRejected", None, None, BounceClass::Content),
    ];
    for (bt, st, action, status, expected) in cases {
        let got = classify_bounce(
            &BounceType::from_wire(bt),
            &BounceSubType::from_wire(st),
            action,
            status,
        );
        assert_eq!(got, expected, "{bt}/{st} action={action:?} status={status:?}");
    }
}

#[test]
fn hard_bounce_suppresses_without_expiry_and_keeps_provenance() {
    let e = event(bounce("Permanent", "General", Some("failed"), Some("5.1.1")), t(1, 10), "m1");
    let (decision, record) = decide(None, &e, &Policy::default());
    assert_eq!(
        decision,
        Decision::Suppressed { reason: SuppressionReason::HardBounce, expires_at: None }
    );
    let s = record.suppression.unwrap();
    assert_eq!(s.since, t(1, 10));
    assert_eq!(s.provenance.bounce_sub_type.as_deref(), Some("General"));
    assert_eq!(s.provenance.diagnostic_code.as_deref(), Some("smtp; 550 5.1.1 user unknown"));
    assert_eq!(s.provenance.source, "policy");
    assert_eq!(record.version, 1);
}

#[test]
fn third_soft_bounce_in_window_suppresses_until_event_time_plus_fourteen_days() {
    let soft = || bounce("Transient", "MailboxFull", None, None);
    let events =
        [event(soft(), t(1, 0), "a"), event(soft(), t(3, 0), "b"), event(soft(), t(7, 0), "c")];
    let (decisions, record) = run(&events, &Policy::default());
    assert_eq!(decisions[0], Decision::SoftBounceCounted { count: 1 });
    assert_eq!(decisions[1], Decision::SoftBounceCounted { count: 2 });
    let expires = t(7, 0) + Duration::days(14);
    assert_eq!(
        decisions[2],
        Decision::Suppressed { reason: SuppressionReason::SoftBounce, expires_at: Some(expires) }
    );
    let record = record.unwrap();
    assert!(record.active_suppression(t(20, 23)).is_some());
    assert!(record.active_suppression(t(21, 0)).is_none(), "expiry is measured from the event");
    assert_eq!(record.state_name(t(22, 0)), "expired");
}

#[test]
fn soft_bounces_spread_beyond_the_window_start_a_new_count() {
    let soft = || bounce("Transient", "General", None, None);
    let events =
        [event(soft(), t(1, 0), "a"), event(soft(), t(5, 0), "b"), event(soft(), t(9, 0), "c")];
    let (decisions, _) = run(&events, &Policy::default());
    assert_eq!(decisions[2], Decision::SoftBounceCounted { count: 1 });
}

#[test]
fn content_bounces_are_recorded_and_never_counted() {
    let events: Vec<_> = (1..=5)
        .map(|d| event(bounce("Transient", "MessageTooLarge", None, None), t(d, 0), "m"))
        .collect();
    let (decisions, record) = run(&events, &Policy::default());
    assert!(decisions.iter().all(|d| *d == Decision::Recorded { why: "content_bounce" }));
    assert_eq!(record.unwrap().soft_bounce_count, 0);
}

#[test]
fn auto_reply_for_a_delivered_message_is_not_counted() {
    let events = [
        event(RecipientEventKind::Delivery, t(1, 0), "ooto-msg"),
        event(bounce("Transient", "General", None, None), t(1, 1), "ooto-msg"),
    ];
    let (decisions, record) = run(&events, &Policy::default());
    assert_eq!(decisions[1], Decision::Recorded { why: "auto_reply" });
    assert_eq!(record.unwrap().soft_bounce_count, 0);
}

#[test]
fn delivery_resets_the_soft_count_but_never_lifts_a_hard_bounce() {
    let policy = Policy::default();
    let events = [
        event(bounce("Transient", "General", None, None), t(1, 0), "a"),
        event(RecipientEventKind::Delivery, t(2, 0), "b"),
    ];
    let (_, record) = run(&events, &policy);
    let record = record.unwrap();
    assert_eq!(record.soft_bounce_count, 0);
    assert_eq!(record.last_delivery_at, Some(t(2, 0)));

    let events = [
        event(bounce("Permanent", "NoEmail", None, None), t(1, 0), "a"),
        event(RecipientEventKind::Delivery, t(2, 0), "b"),
    ];
    let (_, record) = run(&events, &policy);
    let record = record.unwrap();
    assert_eq!(
        record.active_suppression(t(3, 0)).map(|s| s.reason),
        Some(SuppressionReason::HardBounce)
    );
}

#[test]
fn a_late_delivery_report_does_not_reset_newer_soft_bounces() {
    let events = [
        event(bounce("Transient", "General", None, None), t(3, 0), "a"),
        event(RecipientEventKind::Delivery, t(2, 0), "old"),
    ];
    let (_, record) = run(&events, &Policy::default());
    assert_eq!(record.unwrap().soft_bounce_count, 1);
}

#[test]
fn soft_bounces_reported_after_a_later_delivery_end_as_if_they_had_arrived_in_order() {
    let policy = Policy::default();
    let soft = |day, m| event(bounce("Transient", "MailboxFull", None, None), t(day, 0), m);
    let delivery = event(RecipientEventKind::Delivery, t(3, 0), "d");
    let in_order = [soft(1, "a"), soft(2, "b"), delivery.clone()];
    let (_, ordered) = run(&in_order, &policy);
    let late = [delivery, soft(1, "a"), soft(2, "b")];
    let (decisions, reordered) = run(&late, &policy);

    let (ordered, reordered) = (ordered.unwrap(), reordered.unwrap());
    assert_eq!(ordered.soft_bounce_count, 0);
    assert_eq!(reordered.soft_bounce_count, 0, "the late reports are not counted");
    assert_eq!(reordered.active_suppression(t(3, 0)), None);
    assert_eq!(decisions[1], Decision::Recorded { why: "before_delivery" });
    // At the same instant either order ends with no count, as `record_delivery` resets then.
    let (_, tie) = run(&[soft(3, "t"), event(RecipientEventKind::Delivery, t(3, 0), "d")], &policy);
    assert_eq!(tie.unwrap().soft_bounce_count, 0);
    let (_, tie) = run(&[event(RecipientEventKind::Delivery, t(3, 0), "d"), soft(3, "t")], &policy);
    assert_eq!(tie.unwrap().soft_bounce_count, 0);
    // A soft bounce after the delivery still counts.
    let (decision, next) = decide(Some(&reordered), &soft(4, "c"), &policy);
    assert_eq!(decision, Decision::SoftBounceCounted { count: 1 });
    assert_eq!(next.soft_bounce_count, 1);
}

#[test]
fn complaints_suppress_except_not_spam() {
    let (d, _) = decide(None, &event(complaint(Some("abuse")), t(1, 0), "m"), &Policy::default());
    assert_eq!(d, Decision::Suppressed { reason: SuppressionReason::Complaint, expires_at: None });
    let (d, _) = decide(None, &event(complaint(None), t(1, 0), "m"), &Policy::default());
    assert_eq!(d, Decision::Suppressed { reason: SuppressionReason::Complaint, expires_at: None });
    let (d, r) =
        decide(None, &event(complaint(Some("not-spam")), t(1, 0), "m"), &Policy::default());
    assert_eq!(d, Decision::Recorded { why: "not_spam" });
    assert!(r.suppression.is_none());
}

#[test]
fn a_soft_bounce_never_downgrades_a_complaint() {
    let mut events = vec![event(complaint(Some("abuse")), t(1, 0), "c")];
    events.extend((2..=4).map(|d| event(bounce("Transient", "General", None, None), t(d, 0), "s")));
    let (decisions, record) = run(&events, &Policy::default());
    assert_eq!(decisions[3], Decision::AlreadySuppressed { reason: SuppressionReason::Complaint });
    let s = record.unwrap().suppression.unwrap();
    assert_eq!((s.reason, s.expires_at), (SuppressionReason::Complaint, None));
}

#[test]
fn a_hard_bounce_replaces_an_expiring_soft_suppression() {
    let mut events: Vec<_> =
        (1..=3).map(|d| event(bounce("Transient", "General", None, None), t(d, 0), "s")).collect();
    events.push(event(bounce("Permanent", "General", None, None), t(4, 0), "h"));
    let (decisions, record) = run(&events, &Policy::default());
    assert_eq!(
        decisions[3],
        Decision::Suppressed { reason: SuppressionReason::HardBounce, expires_at: None }
    );
    assert_eq!(record.unwrap().suppression.unwrap().expires_at, None);
}

#[test]
fn never_suppress_addresses_and_domains_are_only_recorded() {
    let policy = Policy {
        never_suppress: NeverSuppress::parse("postmaster@example.org, *@example.com").unwrap(),
        ..Policy::default()
    };
    let (d, r) =
        decide(None, &event(bounce("Permanent", "General", None, None), t(1, 0), "m"), &policy);
    assert_eq!(d, Decision::Recorded { why: "never_suppress" });
    assert!(r.suppression.is_none());
    assert!(NeverSuppress::parse("ok@example.com, not an address").is_err());
}

#[test]
fn replaying_an_event_older_than_a_release_does_not_suppress_again() {
    let policy = Policy::default();
    let hard = event(bounce("Permanent", "General", None, None), t(1, 0), "m");
    let (_, record) = decide(None, &hard, &policy);
    let released = release(&record, "ops", "customer fixed mailbox", t(5, 0)).unwrap();
    assert_eq!(released.state_name(t(6, 0)), "released");
    let (d, again) = decide(Some(&released), &hard, &policy);
    assert_eq!(d, Decision::Recorded { why: "before_release" });
    assert_eq!(again.state_name(t(6, 0)), "released");
    let newer = event(bounce("Permanent", "General", None, None), t(8, 0), "m2");
    let (d, _) = decide(Some(&released), &newer, &policy);
    assert_eq!(d, Decision::Suppressed { reason: SuppressionReason::HardBounce, expires_at: None });
}

#[test]
fn release_needs_an_active_suppression() {
    let (_, record) =
        decide(None, &event(RecipientEventKind::Delivery, t(1, 0), "m"), &Policy::default());
    assert!(release(&record, "ops", "why", t(2, 0)).is_none());
}

#[test]
fn manual_suppression_does_not_replace_a_permanent_one() {
    let target = SuppressionTarget::Address(addr());
    let (_, hard) = decide(
        None,
        &event(bounce("Permanent", "General", None, None), t(1, 0), "m"),
        &Policy::default(),
    );
    let request = ManualSuppression {
        reason: SuppressionReason::Manual,
        expires_at: Some(t(30, 0)),
        source: "cli".into(),
        note: None,
    };
    let (d, r) = suppress_manually(Some(&hard), &target, &request, t(2, 0));
    assert_eq!(d, Decision::AlreadySuppressed { reason: SuppressionReason::HardBounce });
    assert_eq!(r.suppression.unwrap().reason, SuppressionReason::HardBounce);
    let (d, r) = suppress_manually(None, &target, &request, t(2, 0));
    assert_eq!(
        d,
        Decision::Suppressed { reason: SuppressionReason::Manual, expires_at: Some(t(30, 0)) }
    );
    assert_eq!(r.suppression.unwrap().provenance.source, "cli");
}

#[test]
fn idempotency_keys_use_feedback_id_then_message_id() {
    let mut e = event(bounce("Permanent", "General", None, None), t(1, 0), "msg-1");
    e.feedback_id = Some("fb-1".into());
    assert_eq!(e.idempotency_key(), "feedback:fb-1");
    e.feedback_id = None;
    assert_eq!(e.idempotency_key(), format!("bounce:msg-1:{}", t(1, 0).timestamp_millis()));
    let d = event(RecipientEventKind::Delivery, t(1, 0), "msg-1");
    assert_eq!(d.idempotency_key(), "delivery:msg-1");
}

fn feedback(event: FeedbackEvent) -> Feedback {
    Feedback {
        source: FeedbackSource::Notification,
        mail: MailContext {
            message_id: "msg".into(),
            sent_at: None,
            identity: Some("example.org".into()),
            destination_count: 3,
        },
        event,
    }
}

#[test]
fn recipient_events_normalise_deduplicate_and_report_invalid_recipients() {
    let recipient = |a: &str| BouncedRecipient {
        address: a.into(),
        action: Some("failed".into()),
        status: Some("5.1.1".into()),
        diagnostic_code: None,
    };
    let fb = feedback(FeedbackEvent::Bounce(Bounce {
        bounce_type: BounceType::Permanent,
        sub_type: BounceSubType::General,
        feedback_id: Some("fb".into()),
        timestamp: t(1, 0),
        recipients: vec![
            recipient("\"A\" <A@Example.com>"),
            recipient("a@example.com"),
            recipient("*@example.com"),
            recipient("b@example.com"),
        ],
    }));
    let out = recipient_events(&fb);
    let got: Vec<_> = out.events.iter().map(|e| e.address.as_str()).collect();
    assert_eq!(got, ["a@example.com", "b@example.com"]);
    assert_eq!(out.invalid, [AddressError::ForbiddenCharacter]);

    let complaint = feedback(FeedbackEvent::Complaint(Complaint {
        feedback_id: Some("c".into()),
        timestamp: t(1, 0),
        sub_type: None,
        feedback_type: None,
        recipients: vec!["x@example.net".into()],
    }));
    assert_eq!(recipient_events(&complaint).events.len(), 1);
    let delivery =
        feedback(FeedbackEvent::Delivery(Delivery { timestamp: t(1, 0), recipients: vec![] }));
    assert!(recipient_events(&delivery).events.is_empty());
    let open = feedback(FeedbackEvent::Other { kind: EventKind::Open });
    assert!(recipient_events(&open).events.is_empty());
}

fn arb_kind() -> impl Strategy<Value = RecipientEventKind> {
    prop_oneof![
        Just(bounce("Permanent", "General", Some("failed"), Some("5.1.1"))),
        Just(bounce("Permanent", "General", Some("delayed"), Some("4.0.0"))),
        Just(bounce("Transient", "General", None, None)),
        Just(bounce("Transient", "MailboxFull", None, None)),
        Just(bounce("Transient", "ContentRejected", None, None)),
        Just(bounce("Undetermined", "Undetermined", None, None)),
        Just(complaint(Some("abuse"))),
        Just(complaint(Some("not-spam"))),
        Just(RecipientEventKind::Delivery),
    ]
}

proptest! {
    /// Once a permanent suppression is in force, no later event removes it or changes its
    /// reason; an expiring one only ever ends later or becomes permanent.
    #[test]
    fn nothing_is_ever_downgraded(kinds in prop::collection::vec((arb_kind(), 0u32..48), 1..40)) {
        let policy = Policy::default();
        let mut record: Option<AddressRecord> = None;
        let mut at = t(1, 0);
        for (i, (kind, gap_hours)) in kinds.into_iter().enumerate() {
            at += Duration::hours(i64::from(gap_hours));
            let before = record.as_ref().and_then(|r| r.active_suppression(at).cloned());
            let (_, next) = decide(record.as_ref(), &event(kind, at, &format!("m{i}")), &policy);
            let after = next.active_suppression(at).cloned();
            if let Some(before) = before {
                let after = after.expect("an active suppression stayed active");
                match before.expires_at {
                    None => {
                        prop_assert_eq!(after.reason, before.reason);
                        prop_assert_eq!(after.expires_at, None);
                    }
                    Some(end) => prop_assert!(after.expires_at.is_none_or(|new| new >= end)),
                }
            }
            prop_assert_eq!(next.version, record.as_ref().map_or(0, |r| r.version) + 1);
            record = Some(next);
        }
    }
}
