//! DynamoDB requests per notification kind, counted on the wire: the real handler with the real
//! `DynamoDbSuppressionStore`, whose SDK client carries an interceptor that records every HTTP
//! attempt by its `x-amz-target` operation and response status. Runs against moto
//! (`MOTO_ENDPOINT`) and against DynamoDB Local (`DYNAMODB_LOCAL_ENDPOINT`), both started by
//! `scripts/test`; run with `-- --nocapture` to see the table.
//!
//! The design promises one GetItem and one TransactWriteItems per affected address (the
//! transaction holds the history put that makes the write idempotent, the record update and the
//! daily counter), one TransactWriteItems for a Send event, and for a replay one GetItem plus one
//! transaction that DynamoDB cancels on the history condition. The interceptor also asks for
//! `ReturnConsumedCapacity: TOTAL` (the store does not), so the table shows capacity units where
//! the server reports them: DynamoDB Local does, moto reports a fixed 0.5 for reads and nothing
//! for transactions, and a cancelled transaction returns an error without capacity.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers fail loudly on purpose.

mod common;

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
    BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsInput, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use chrono::Duration;
use common::{CountingConfirmer, MemoryQuarantine, fixture, sqs_event};
use feedback_domain::{AddressHasher, Policy, policy};
use ingest_feedback::adapters::SnsAuthenticator;
use ingest_feedback::{Handler, HandlerSettings, RecordOutcome};
use ses_wire::Content;
use sns_verify::NoFetcher;
use suppression_store::{DynamoDbSuppressionStore, StoreSettings, schema};

const GET_ITEM: &str = "GetItem";
const TRANSACT: &str = "TransactWriteItems";

/// One HTTP attempt the SDK made.
#[derive(Debug, Clone)]
struct Attempt {
    operation: String,
    status: Option<u16>,
    capacity_units: Option<f64>,
}

/// Records every attempt of the client it is installed on. Each test drives one record at a time
/// and the handler writes its recipients one after the other, so attempts never overlap and a
/// response belongs to the latest attempt.
#[derive(Debug, Clone, Default)]
struct RequestLog(Arc<Mutex<Vec<Attempt>>>);

impl RequestLog {
    fn take(&self) -> Vec<Attempt> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for RequestLog {
    fn name(&self) -> &'static str {
        "RequestLog"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input_mut();
        if let Some(get) = input.downcast_mut::<GetItemInput>() {
            get.return_consumed_capacity = Some(ReturnConsumedCapacity::Total);
        } else if let Some(transact) = input.downcast_mut::<TransactWriteItemsInput>() {
            transact.return_consumed_capacity = Some(ReturnConsumedCapacity::Total);
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or("<none>");
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        self.0.lock().unwrap().push(Attempt { operation, status: None, capacity_units: None });
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let status = context.response().status().as_u16();
        let capacity_units = match context.output_or_error() {
            Ok(output) => {
                if let Some(get) = output.downcast_ref::<GetItemOutput>() {
                    get.consumed_capacity().and_then(|c| c.capacity_units())
                } else if let Some(transact) = output.downcast_ref::<TransactWriteItemsOutput>() {
                    let units: Vec<f64> = transact
                        .consumed_capacity()
                        .iter()
                        .filter_map(|c| c.capacity_units())
                        .collect();
                    (!units.is_empty()).then(|| units.iter().sum())
                } else {
                    None
                }
            }
            Err(_) => None,
        };
        if let Some(last) = self.0.lock().unwrap().last_mut() {
            last.status = Some(status);
            last.capacity_units = capacity_units;
        }
        Ok(())
    }
}

type CountedHandler = Handler<
    DynamoDbSuppressionStore,
    MemoryQuarantine,
    SnsAuthenticator<NoFetcher>,
    CountingConfirmer,
>;

/// A handler on a fresh table of `endpoint` whose DynamoDB client reports to the returned log.
async fn counted_handler(endpoint: &str) -> (CountedHandler, RequestLog) {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("eu-central-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await;
    let log = RequestLog::default();
    let ddb_conf = aws_sdk_dynamodb::config::Builder::from(&conf).interceptor(log.clone()).build();
    let ddb = aws_sdk_dynamodb::Client::from_conf(ddb_conf);
    let table = format!("requests-test-{}", fastrand::u64(..));
    schema::create_table(&ddb, &table).await.unwrap();
    log.take();
    let handler = Handler {
        store: DynamoDbSuppressionStore::new(ddb, table, StoreSettings::default()),
        quarantine: MemoryQuarantine::default(),
        authenticator: None,
        confirmer: None,
        settings: HandlerSettings {
            policy: Policy::default(),
            retention: Duration::days(400),
            hasher: AddressHasher::new(b"test"),
            require_signature: false,
            auto_confirm_subscriptions: false,
        },
        metrics: telemetry::MetricsSink::new("test", "ingest")
            .unwrap()
            .with_writer(std::io::sink()),
    };
    (handler, log)
}

/// The requests one record caused.
#[derive(Debug, Default)]
struct Row {
    addresses: usize,
    get_item: usize,
    transact: usize,
    transact_failed: usize,
    other: usize,
    read_units: Option<f64>,
    write_units: Option<f64>,
}

impl Row {
    fn from_attempts(addresses: usize, attempts: &[Attempt]) -> Self {
        let mut row = Self { addresses, ..Self::default() };
        for attempt in attempts {
            let units = attempt.capacity_units;
            match attempt.operation.as_str() {
                GET_ITEM => {
                    row.get_item += 1;
                    row.read_units = add(row.read_units, units);
                }
                TRANSACT => {
                    row.transact += 1;
                    if attempt.status.is_none_or(|s| s >= 400) {
                        row.transact_failed += 1;
                    }
                    row.write_units = add(row.write_units, units);
                }
                _ => row.other += 1,
            }
        }
        row
    }
}

fn add(sum: Option<f64>, units: Option<f64>) -> Option<f64> {
    match (sum, units) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    }
}

/// Distinct valid recipients the policy acts on, derived from the body by the wire model.
fn affected_addresses(body: &str) -> usize {
    match ses_wire::parse_sqs_body(body).unwrap().content {
        Content::Feedback(feedback) => policy::recipient_events(&feedback).events.len(),
        other => panic!("fixture is not feedback: {other:?}"),
    }
}

/// Runs one body as a one-record batch and returns the outcome with the requests it caused.
async fn run(
    handler: &CountedHandler,
    log: &RequestLog,
    body: &str,
) -> (RecordOutcome, Vec<Attempt>) {
    let (response, outcomes) = handler.handle_batch(&sqs_event(&[body.to_owned()])).await;
    assert!(response.batch_item_failures.is_empty(), "no record may fail: {outcomes:?}");
    (outcomes[0].clone(), log.take())
}

struct Case {
    label: &'static str,
    fixture: &'static str,
    kind: &'static str,
}

const CASES: [Case; 7] = [
    Case {
        label: "hard bounce",
        fixture: "ses-notification-bounce-permanent-general.simulator.relay.json",
        kind: "bounce",
    },
    Case {
        label: "hard bounce, 2 recipients",
        fixture: "ses-notification-bounce-permanent-general-no-dsn-two-recipients.aws-docs.json",
        kind: "bounce",
    },
    Case {
        label: "soft bounce",
        fixture: "derived/ses-notification-bounce-transient-mailboxfull.derived.json",
        kind: "bounce",
    },
    Case {
        label: "complaint",
        fixture: "ses-notification-complaint-abuse-with-feedback-report.aws-docs.json",
        kind: "complaint",
    },
    Case {
        label: "not-spam complaint",
        fixture: "derived/ses-notification-complaint-not-spam.derived.json",
        kind: "complaint",
    },
    Case {
        label: "delivery",
        fixture: "ses-notification-delivery.aws-docs.json",
        kind: "delivery",
    },
    Case { label: "send", fixture: "ses-event-send.aws-docs.json", kind: "send" },
];

fn units(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

fn print_table(server: &str, rows: &[(String, Row)]) {
    println!("\nDynamoDB requests per notification ({server}; capacity units as reported)");
    println!(
        "{:<38} {:>9} {:>7} {:>18} {:>6} {:>12} {:>6} {:>6}",
        "notification",
        "addresses",
        "GetItem",
        "TransactWrite",
        "other",
        "writes/addr",
        "RCU",
        "WCU"
    );
    for (label, row) in rows {
        let writes = format!("{}", row.transact);
        let writes = if row.transact_failed > 0 {
            format!("{writes} ({} failed)", row.transact_failed)
        } else {
            writes
        };
        let per_address = if row.addresses == 0 {
            "-".to_owned()
        } else {
            format!("{:.2}", row.transact as f64 / row.addresses as f64)
        };
        println!(
            "{label:<38} {:>9} {:>7} {writes:>18} {:>6} {per_address:>12} {:>6} {:>6}",
            row.addresses,
            row.get_item,
            row.other,
            units(row.read_units),
            units(row.write_units)
        );
    }
}

/// Every kind on a fresh table (the first time its addresses are seen), then a replay of the same
/// record, with the exact request counts the design promises.
async fn requests_per_notification_kind(server: &str, endpoint: &str) {
    let mut rows: Vec<(String, Row)> = Vec::new();
    for case in &CASES {
        let body = fixture(case.fixture);
        let (handler, log) = counted_handler(endpoint).await;

        let (outcome, attempts) = run(&handler, &log, &body).await;
        let RecordOutcome::Applied { kind, duplicates, invalid, .. } = outcome else {
            panic!("{}: not applied: {outcome:?}", case.label)
        };
        assert_eq!((kind, duplicates, invalid), (case.kind, 0, 0), "{}", case.label);
        let addresses = if case.kind == "send" { 0 } else { affected_addresses(&body) };
        let first = Row::from_attempts(addresses, &attempts);

        let (outcome, attempts) = run(&handler, &log, &body).await;
        let RecordOutcome::Applied { duplicates, suppressed, .. } = outcome else {
            panic!("{}: replay not applied: {outcome:?}", case.label)
        };
        assert_eq!((duplicates, suppressed), (addresses.max(1), 0), "{}: replay", case.label);
        let replay = Row::from_attempts(addresses, &attempts);

        if case.kind == "send" {
            // Counted once per SES message: no read, one transaction; a replay is refused by it.
            assert_eq!((first.get_item, first.transact, first.transact_failed), (0, 1, 0));
            assert_eq!((replay.get_item, replay.transact, replay.transact_failed), (0, 1, 1));
        } else {
            assert!(addresses >= 1, "{}: no affected address", case.label);
            // One consistent read and one transaction per address: history put (the
            // idempotency guard), record update and counter in a single write request.
            assert_eq!(
                (first.get_item, first.transact, first.transact_failed),
                (addresses, addresses, 0),
                "{}",
                case.label
            );
            // A replay reads the record again, and its transaction fails on the history put's
            // condition (TransactionCanceledException): nothing is written.
            assert_eq!(
                (replay.get_item, replay.transact, replay.transact_failed),
                (addresses, addresses, addresses),
                "{}: replay",
                case.label
            );
        }
        assert_eq!((first.other, replay.other), (0, 0), "{}: unexpected operations", case.label);
        // The target: at most one write request per address plus one for idempotency.
        assert!(first.transact <= addresses + 1, "{}", case.label);

        rows.push((case.label.to_owned(), first));
        rows.push((format!("  replay of {}", case.label), replay));
    }
    print_table(server, &rows);
}

fn endpoint(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests through scripts/test, which starts the emulators")
    })
}

#[tokio::test]
async fn each_notification_kind_costs_one_read_and_one_transaction_per_address_on_moto() {
    requests_per_notification_kind("moto", &endpoint("MOTO_ENDPOINT")).await;
}

#[tokio::test]
async fn each_notification_kind_costs_one_read_and_one_transaction_per_address_on_dynamodb_local() {
    requests_per_notification_kind("DynamoDB Local", &endpoint("DYNAMODB_LOCAL_ENDPOINT")).await;
}
