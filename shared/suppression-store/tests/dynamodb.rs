//! The store against real local DynamoDB servers: moto (`MOTO_ENDPOINT`) and AWS's DynamoDB
//! Local (`DYNAMODB_LOCAL_ENDPOINT`), both started by `scripts/test`. Every test runs on both,
//! each on a table of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers fail loudly on purpose.

use chrono::{DateTime, Duration, TimeZone, Utc};
use feedback_domain::policy::{self, Policy, RecipientEvent, RecipientEventKind};
use feedback_domain::ports::{
    CommitOutcome, CounterField, CounterIncrement, EventWrite, SuppressionStore, WriteScope,
};
use feedback_domain::{BounceSubType, BounceType, EmailAddress, SuppressionTarget};
use suppression_store::{DynamoDbSuppressionStore, StoreSettings, schema};

fn endpoint(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests through scripts/test, which starts the emulators")
    })
}

async fn store(var: &str) -> DynamoDbSuppressionStore {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint(var))
        .region(aws_config::Region::new("eu-central-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&conf);
    let table = format!("suppressions-test-{}", fastrand::u64(..));
    schema::create_table(&client, &table).await.unwrap();
    DynamoDbSuppressionStore::new(client, table, StoreSettings::default())
}

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0).unwrap()
}

fn event(address: &str, kind: RecipientEventKind, day: u32, feedback: &str) -> RecipientEvent {
    RecipientEvent {
        address: EmailAddress::parse(address).unwrap(),
        kind,
        at: at(day),
        feedback_id: Some(feedback.to_owned()),
        ses_message_id: format!("msg-{feedback}"),
        identity: Some("example.org".into()),
    }
}

fn hard() -> RecipientEventKind {
    RecipientEventKind::Bounce {
        bounce_type: BounceType::Permanent,
        sub_type: BounceSubType::General,
        action: Some("failed".into()),
        status: Some("5.1.1".into()),
        diagnostic_code: Some("smtp; 550 5.1.1 unknown".into()),
    }
}

fn soft() -> RecipientEventKind {
    RecipientEventKind::Bounce {
        bounce_type: BounceType::Transient,
        sub_type: BounceSubType::MailboxFull,
        action: None,
        status: None,
        diagnostic_code: None,
    }
}

async fn apply(store: &DynamoDbSuppressionStore, e: &RecipientEvent) -> CommitOutcome {
    let target = SuppressionTarget::Address(e.address.clone());
    let prior = store.load(&target).await.unwrap();
    let (decision, record) = policy::decide(prior.as_ref(), e, &Policy::default());
    let write = EventWrite {
        scope: WriteScope::Record {
            record: Box::new(record),
            expected_version: prior.map_or(0, |p| p.version),
        },
        history: e.history_entry(&decision, Some(e.at + Duration::days(30))),
        counter: e.counter_field().map(|field| CounterIncrement {
            identity: "example.org".into(),
            day: e.at.date_naive(),
            field,
            by: 1,
        }),
    };
    store.commit(&write).await.unwrap()
}

async fn record_round_trips_exactly(var: &str) {
    let store = store(var).await;
    let e = event("Person@Example.com", hard(), 1, "fb-1");
    assert_eq!(apply(&store, &e).await, CommitOutcome::Applied);
    let prior = None;
    let (_, expected) = policy::decide(prior, &e, &Policy::default());
    let loaded = store.load_key("person@example.com").await.unwrap().unwrap();
    assert_eq!(loaded, expected);
    let history = store.history("person@example.com").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].idempotency_key, "feedback:fb-1");
    assert_eq!(history[0].outcome, "suppressed");
    assert_eq!(history[0].sub_type.as_deref(), Some("Permanent/General"));
}

async fn the_same_feedback_twice_is_a_duplicate_and_changes_nothing(var: &str) {
    let store = store(var).await;
    let e = event("dup@example.com", soft(), 1, "fb-dup");
    assert_eq!(apply(&store, &e).await, CommitOutcome::Applied);
    assert_eq!(apply(&store, &e).await, CommitOutcome::Duplicate);
    let record = store.load_key("dup@example.com").await.unwrap().unwrap();
    assert_eq!(record.soft_bounce_count, 1);
    assert_eq!(record.version, 1);
    assert_eq!(store.history("dup@example.com").await.unwrap().len(), 1);
}

async fn a_stale_version_is_a_conflict_and_writes_nothing(var: &str) {
    let store = store(var).await;
    let first = event("race@example.com", soft(), 1, "fb-a");
    apply(&store, &first).await;
    let second = event("race@example.com", soft(), 2, "fb-b");
    let (decision, record) = policy::decide(None, &second, &Policy::default());
    let stale = EventWrite {
        scope: WriteScope::Record { record: Box::new(record), expected_version: 0 },
        history: second.history_entry(&decision, None),
        counter: None,
    };
    assert_eq!(store.commit(&stale).await.unwrap(), CommitOutcome::Conflict);
    assert_eq!(store.history("race@example.com").await.unwrap().len(), 1, "history rolled back");
}

async fn active_records_come_from_the_index_without_expired_soft_bounces(var: &str) {
    let store = store(var).await;
    apply(&store, &event("hard@example.com", hard(), 1, "h")).await;
    for (day, id) in [(1, "s1"), (2, "s2"), (3, "s3")] {
        apply(&store, &event("soft@example.com", soft(), day, id)).await;
    }
    apply(&store, &event("once@example.com", soft(), 1, "o")).await;
    let keys = |records: Vec<feedback_domain::AddressRecord>| {
        records.into_iter().map(|r| r.target.key()).collect::<Vec<_>>()
    };
    assert_eq!(
        keys(store.active_records(at(4)).await.unwrap()),
        ["hard@example.com", "soft@example.com"]
    );
    // The soft suppression ends 14 days after the third bounce.
    assert_eq!(keys(store.active_records(at(18)).await.unwrap()), ["hard@example.com"]);
}

async fn daily_counters_add_up_per_identity_and_day(var: &str) {
    let store = store(var).await;
    for i in 0..3 {
        apply(&store, &event(&format!("c{i}@example.com"), hard(), 5, &format!("c{i}"))).await;
    }
    let write = EventWrite {
        scope: WriteScope::Message { ses_message_id: "send-1".into() },
        history: feedback_domain::ports::HistoryEntry {
            idempotency_key: "send".into(),
            event_type: "send".into(),
            sub_type: None,
            at: at(5),
            feedback_id: None,
            ses_message_id: Some("send-1".into()),
            outcome: "counted".into(),
            diagnostic_code: None,
            expires_at: None,
        },
        counter: Some(CounterIncrement {
            identity: "example.org".into(),
            day: at(5).date_naive(),
            field: CounterField::Sends,
            by: 7,
        }),
    };
    assert_eq!(store.commit(&write).await.unwrap(), CommitOutcome::Applied);
    assert_eq!(store.commit(&write).await.unwrap(), CommitOutcome::Duplicate);
    let item = store
        .client()
        .get_item()
        .table_name(store.table())
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("STATS".into()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("DAY#2026-11-05#example.org".into()))
        .send()
        .await
        .unwrap();
    let item = item.item().unwrap();
    let number = |name: &str| item.get(name).unwrap().as_n().unwrap().parse::<u64>().unwrap();
    assert_eq!(number("hard_bounces"), 3);
    assert_eq!(number("sends"), 7);
}

macro_rules! on_both_servers {
    ($($name:ident),* $(,)?) => {
        mod moto {
            $(#[tokio::test] async fn $name() { super::$name("MOTO_ENDPOINT").await })*
        }
        mod dynamodb_local {
            $(#[tokio::test] async fn $name() { super::$name("DYNAMODB_LOCAL_ENDPOINT").await })*
        }
    };
}

on_both_servers!(
    record_round_trips_exactly,
    the_same_feedback_twice_is_a_duplicate_and_changes_nothing,
    a_stale_version_is_a_conflict_and_writes_nothing,
    active_records_come_from_the_index_without_expired_soft_bounces,
    daily_counters_add_up_per_identity_and_day,
);
