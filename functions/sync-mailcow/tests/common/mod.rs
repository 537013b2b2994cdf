//! Shared harness of the tests against real servers: a table on moto or DynamoDB Local (created
//! with the store's schema, seeded through the store's `commit` with the domain policy), the
//! Mailcow simulator, the SESv2 simulator, and the handler wired to all three with the real
//! adapters.

// Test code: unwrap is the assertion (clippy.toml allows it only inside `#[test]` functions).
#![allow(clippy::unwrap_used, dead_code)]

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use feedback_domain::policy::{
    self, ManualSuppression, Policy, RecipientEvent, RecipientEventKind,
};
use feedback_domain::ports::{
    CommitOutcome, EventWrite, HistoryEntry, SuppressionStore, WriteScope,
};
use feedback_domain::{
    AddressHasher, AddressRecord, BounceSubType, BounceType, EmailAddress, SuppressionReason,
    SuppressionTarget,
};
use mailcow_api::{ApiKey, MailcowClient, MailcowConfig, RetryPolicy, Url};
use serde_json::{Value, json};
use ses_account_list::{SesAccountList, SesAccountListConfig};
use simulators::mailcow::{MailcowSimConfig, MailcowSimHandle};
use simulators::sesv2;
use suppression_store::{DynamoDbSuppressionStore, StoreSettings, schema};
use sync_mailcow::adapters::{DynamoDbSyncSource, MailcowBlocklist, SYNC_STATE_SK};
use sync_mailcow::handler::DEFAULT_AUTH_BACKOFF;
use sync_mailcow::{Handler, HandlerSettings, MailcowMode};

/// The read-write key the Mailcow simulator accepts by default.
pub const SIM_KEY: &str = "SIM-RW-KEY-0001";

/// Request timeout of the test client: the `slow` fault waits longer than this.
pub const MAILCOW_TIMEOUT: Duration = Duration::from_millis(500);

pub type RealHandler = Handler<DynamoDbSyncSource, MailcowBlocklist, SesAccountList>;

pub fn endpoint(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests through scripts/test, which starts the emulators")
    })
}

pub async fn aws(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("eu-central-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await
}

/// A fresh table of its own on the server named by `var`.
pub async fn store(var: &str) -> DynamoDbSuppressionStore {
    let conf = aws(&endpoint(var)).await;
    let client = aws_sdk_dynamodb::Client::new(&conf);
    let table = format!("sync-test-{}", fastrand::u64(..));
    schema::create_table(&client, &table).await.unwrap();
    DynamoDbSuppressionStore::new(client, table, StoreSettings::default())
}

/// Everything one test runs against.
pub struct World {
    pub store: DynamoDbSuppressionStore,
    pub mailcow: MailcowSimHandle,
    pub ses: sesv2::Handle,
    pub handler: RealHandler,
}

/// A Mailcow client for the simulator: short timeouts, one quick retry, no in-memory brake
/// (the handler's table-backed backoff is what is under test).
pub fn mailcow_client(base_url: &str, key: &str) -> MailcowClient {
    let mut config = MailcowConfig::new(Url::parse(base_url).unwrap(), ApiKey::new(key).unwrap());
    config.connect_timeout = MAILCOW_TIMEOUT;
    config.request_timeout = MAILCOW_TIMEOUT;
    config.retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
    };
    config.auth_suspend = Duration::ZERO;
    MailcowClient::new(config).unwrap()
}

pub async fn world(var: &str) -> World {
    world_with(var, MailcowMode::Map, SIM_KEY).await
}

pub async fn world_with(var: &str, mode: MailcowMode, key: &str) -> World {
    let store = store(var).await;
    let mailcow = simulators::mailcow::spawn(MailcowSimConfig::default()).await.unwrap();
    let ses = sesv2::spawn(sesv2::Config::unthrottled()).await.unwrap();
    let ses_sdk = aws_sdk_sesv2::Client::new(&aws(ses.url()).await);
    let pacing = SesAccountListConfig {
        min_interval: Duration::ZERO,
        max_attempts: std::num::NonZeroU32::new(2).unwrap(),
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
    };
    let handler = Handler {
        source: DynamoDbSyncSource::new(store.clone()),
        blocklist: MailcowBlocklist::new(mailcow_client(&mailcow.base_url, key)),
        account_list: Some(SesAccountList::new(ses_sdk, pacing)),
        settings: HandlerSettings {
            mode,
            auth_backoff: DEFAULT_AUTH_BACKOFF,
            hasher: AddressHasher::new(b"test"),
        },
        metrics: telemetry::MetricsSink::new("test", "sync-mailcow")
            .unwrap()
            .with_writer(std::io::sink()),
    };
    World { store, mailcow, ses, handler }
}

/// An address unique to one test.
pub fn unique(local: &str) -> String {
    format!("{local}.{}@example.com", fastrand::u32(..))
}

pub fn far() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(600)
}

async fn commit_record(
    store: &DynamoDbSuppressionStore,
    decide: impl Fn(Option<&AddressRecord>) -> Option<(AddressRecord, HistoryEntry)>,
    target: &SuppressionTarget,
) {
    for _ in 0..5 {
        let prior = store.load(target).await.unwrap();
        let Some((record, history)) = decide(prior.as_ref()) else { return };
        let write = EventWrite {
            scope: WriteScope::Record {
                record: Box::new(record),
                expected_version: prior.map_or(0, |p| p.version),
            },
            history,
            counter: None,
        };
        match store.commit(&write).await.unwrap() {
            CommitOutcome::Applied | CommitOutcome::Duplicate => return,
            CommitOutcome::Conflict => continue,
        }
    }
    panic!("commit kept conflicting");
}

/// A permanent bounce of `address` at `at`, through the ingest policy.
pub async fn hard_bounce(store: &DynamoDbSuppressionStore, address: &str, at: DateTime<Utc>) {
    let event = RecipientEvent {
        address: EmailAddress::parse(address).unwrap(),
        kind: RecipientEventKind::Bounce {
            bounce_type: BounceType::Permanent,
            sub_type: BounceSubType::General,
            action: Some("failed".into()),
            status: Some("5.1.1".into()),
            diagnostic_code: Some("smtp; 550 5.1.1 unknown user".into()),
        },
        at,
        feedback_id: Some(format!("fb-{}", fastrand::u64(..))),
        ses_message_id: format!("msg-{}", fastrand::u64(..)),
        identity: Some("example.org".into()),
    };
    let target = SuppressionTarget::Address(event.address.clone());
    commit_record(
        store,
        |prior| {
            let (decision, record) = policy::decide(prior, &event, &Policy::default());
            Some((record, event.history_entry(&decision, None)))
        },
        &target,
    )
    .await;
}

fn operator_entry(kind: &str, at: DateTime<Utc>, outcome: &str) -> HistoryEntry {
    HistoryEntry {
        idempotency_key: format!("{kind}:{}", fastrand::u64(..)),
        event_type: kind.to_owned(),
        sub_type: None,
        at,
        feedback_id: None,
        ses_message_id: None,
        outcome: outcome.to_owned(),
        diagnostic_code: None,
        expires_at: None,
    }
}

/// An operator's suppression of `key` (address or `*@domain`), optionally ending at `expires_at`.
pub async fn suppress(
    store: &DynamoDbSuppressionStore,
    key: &str,
    reason: SuppressionReason,
    expires_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) {
    let target = SuppressionTarget::parse(key).unwrap();
    let request =
        ManualSuppression { reason, expires_at, source: "cli".into(), note: Some("test".into()) };
    commit_record(
        store,
        |prior| {
            let (_, record) = policy::suppress_manually(prior, &target, &request, at);
            Some((record, operator_entry("manual", at, "suppressed")))
        },
        &target,
    )
    .await;
}

/// An operator's release of `key`.
pub async fn release(store: &DynamoDbSuppressionStore, key: &str, at: DateTime<Utc>) {
    let target = SuppressionTarget::parse(key).unwrap();
    commit_record(
        store,
        |prior| {
            let record = policy::release(prior?, "tester", "test release", at)?;
            Some((record, operator_entry("release", at, "released")))
        },
        &target,
    )
    .await;
}

/// The raw state item of `key`.
pub async fn state_item(
    store: &DynamoDbSuppressionStore,
    key: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    store
        .client()
        .get_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(schema::address_pk(key)))
        .key("sk", AttributeValue::S(schema::STATE_SK.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item()
        .cloned()
}

/// Whether the state item of `key` carries `ses_listed = true`.
pub async fn ses_listed(store: &DynamoDbSuppressionStore, key: &str) -> bool {
    state_item(store, key)
        .await
        .and_then(|item| item.get("ses_listed").cloned())
        .is_some_and(|v| v == AttributeValue::Bool(true))
}

/// The raw sync state item.
pub async fn sync_item(
    store: &DynamoDbSuppressionStore,
) -> std::collections::HashMap<String, AttributeValue> {
    store
        .client()
        .get_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S("META".into()))
        .key("sk", AttributeValue::S(SYNC_STATE_SK.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item()
        .cloned()
        .unwrap()
}

/// A stream batch (Lambda's event shape) touching the state items of `keys`.
pub fn stream_event(keys: &[&str]) -> Value {
    let records: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            json!({
                "eventID": format!("e{i}"),
                "eventName": "MODIFY",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "eu-central-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1_793_620_800.0,
                    "Keys": {"pk": {"S": format!("ADDR#{key}")}, "sk": {"S": "STATE"}},
                    "SequenceNumber": format!("{}", 100 + i),
                    "SizeBytes": 100,
                    "StreamViewType": "NEW_AND_OLD_IMAGES"
                }
            })
        })
        .collect();
    json!({ "Records": records })
}

pub fn scheduled_event() -> Value {
    json!({
        "version": "0", "id": "c1", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-02T12:00:00Z", "region": "eu-central-1",
        "resources": [], "detail": {}
    })
}

/// The sequence numbers a stream response names as failed.
pub fn failures(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}
