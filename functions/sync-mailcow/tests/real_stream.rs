//! The handler fed with records read from the table's real stream (DynamoDB Local's, and moto's
//! as a second opinion): DescribeTable for the stream ARN, DescribeStream for the shards,
//! GetShardIterator at TRIM_HORIZON, GetRecords, then each record converted into the JSON
//! Lambda delivers. Proves the handler accepts what a stream really carries, including the
//! REMOVE of an erased item and the echo of its own `ses_listed` writes.

// Scenarios are plain async fns run on both servers; unwrap is their assertion (clippy.toml
// allows it only inside `#[test]` functions).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use chrono::Utc;
use feedback_domain::SuppressionReason;
use serde_json::{Map, Value, json};
use suppression_store::DynamoDbSuppressionStore;

use common::*;

/// DynamoDB JSON of a stream attribute value (`{"S": "..."}`, `{"L": [...]}`, ...).
fn attribute(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(b) => json!({"NULL": b}),
        AttributeValue::Ss(v) => json!({"SS": v}),
        AttributeValue::Ns(v) => json!({"NS": v}),
        AttributeValue::L(items) => json!({"L": items.iter().map(attribute).collect::<Vec<_>>()}),
        AttributeValue::M(map) => json!({"M": image(map)}),
        other => panic!("attribute type not used by the table: {other:?}"),
    }
}

fn image(map: &std::collections::HashMap<String, AttributeValue>) -> Value {
    Value::Object(map.iter().map(|(k, v)| (k.clone(), attribute(v))).collect::<Map<_, _>>())
}

/// One stream record in the shape of a Lambda DynamoDB event record.
fn lambda_record(record: &Record, stream_arn: &str) -> Value {
    let change = record.dynamodb().unwrap();
    let mut dynamodb = Map::new();
    let created = change.approximate_creation_date_time().unwrap();
    dynamodb.insert("ApproximateCreationDateTime".into(), json!(created.secs() as f64));
    dynamodb.insert("Keys".into(), image(change.keys().unwrap()));
    if let Some(new) = change.new_image() {
        dynamodb.insert("NewImage".into(), image(new));
    }
    if let Some(old) = change.old_image() {
        dynamodb.insert("OldImage".into(), image(old));
    }
    dynamodb.insert("SequenceNumber".into(), json!(change.sequence_number().unwrap()));
    dynamodb.insert("SizeBytes".into(), json!(change.size_bytes().unwrap()));
    dynamodb.insert("StreamViewType".into(), json!(change.stream_view_type().unwrap().as_str()));
    json!({
        "eventID": record.event_id().unwrap(),
        "eventName": record.event_name().unwrap().as_str(),
        "eventVersion": record.event_version().unwrap_or("1.1"),
        "eventSource": record.event_source().unwrap(),
        "awsRegion": record.aws_region().unwrap_or("eu-central-1"),
        "dynamodb": Value::Object(dynamodb),
        "eventSourceARN": stream_arn,
    })
}

/// Reads every record of every shard from TRIM_HORIZON, skipping the sequence numbers in
/// `seen` (and adding the new ones), in the Lambda event shape.
async fn new_records(
    var: &str,
    store: &DynamoDbSuppressionStore,
    seen: &mut BTreeSet<String>,
) -> Value {
    let streams = aws_sdk_dynamodbstreams::Client::new(&aws(&endpoint(var)).await);
    let described = store.client().describe_table().table_name(store.table()).send().await.unwrap();
    let stream_arn = described.table().unwrap().latest_stream_arn().unwrap().to_owned();
    let stream = streams.describe_stream().stream_arn(&stream_arn).send().await.unwrap();
    let shards = stream.stream_description().unwrap().shards().to_vec();
    let mut records = Vec::new();
    for shard in shards {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&stream_arn)
            .shard_id(shard.shard_id().unwrap())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator()
            .map(str::to_owned);
        // An open shard always hands out a next iterator: stop at the first empty page.
        while let Some(current) = iterator {
            let page = streams.get_records().shard_iterator(current).send().await.unwrap();
            if page.records().is_empty() {
                break;
            }
            for record in page.records() {
                let sequence = record.dynamodb().unwrap().sequence_number().unwrap().to_owned();
                if seen.insert(sequence) {
                    records.push(lambda_record(record, &stream_arn));
                }
            }
            iterator = page.next_shard_iterator().map(str::to_owned);
        }
    }
    json!({ "Records": records })
}

fn event_names(event: &Value) -> Vec<String> {
    event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["eventName"].as_str().unwrap().to_owned())
        .collect()
}

async fn the_handler_accepts_records_of_the_real_stream(var: &str) {
    let w = world(var).await;
    let mut seen = BTreeSet::new();
    let bounced = unique("streamed");
    let annoyed = unique("streamed-complaint");
    let now = Utc::now();
    hard_bounce(&w.store, &bounced, now).await;
    suppress(&w.store, &annoyed, SuppressionReason::Complaint, None, now).await;

    let batch = new_records(var, &w.store, &mut seen).await;
    assert!(event_names(&batch).iter().any(|n| n == "INSERT"), "{batch}");
    let response = w.handler.handle_event(batch, now, far()).await.unwrap();

    assert!(failures(&response).is_empty(), "{response}");
    assert!(w.mailcow.state.would_reject(&bounced));
    assert!(w.mailcow.state.would_reject(&annoyed));
    assert_eq!(w.ses.entries().len(), 2);
    let (requests, ses_requests) = (w.mailcow.state.total_requests(), w.ses.stats().requests);

    // The ses_listed writes are on the stream too (with the sync state's own item, which the
    // deployed filter drops); their invocation has nothing to do.
    let echo = new_records(var, &w.store, &mut seen).await;
    let modified = event_names(&echo).iter().filter(|n| *n == "MODIFY").count();
    assert_eq!(modified, 2, "{echo}");
    let response = w.handler.handle_event(echo, now, far()).await.unwrap();

    assert!(failures(&response).is_empty(), "{response}");
    assert_eq!(w.mailcow.state.total_requests(), requests, "no push for the echo");
    assert_eq!(w.ses.stats().requests, ses_requests, "no SES call for the echo");

    // Erasure deletes the state item: its REMOVE record is the only trace of the SES entry.
    w.store.forget(&bounced).await.unwrap();
    let removal = new_records(var, &w.store, &mut seen).await;
    assert!(event_names(&removal).iter().any(|n| n == "REMOVE"), "{removal}");
    let response = w.handler.handle_event(removal, now, far()).await.unwrap();

    assert!(failures(&response).is_empty(), "{response}");
    assert!(!w.mailcow.state.would_reject(&bounced));
    assert!(w.mailcow.state.would_reject(&annoyed));
    assert!(w.ses.entry(&bounced).is_none(), "the erased address left the SES list");
    assert!(w.ses.entry(&annoyed).is_some());
}

mod dynamodb_local {
    #[tokio::test]
    async fn the_handler_accepts_records_of_the_real_stream() {
        super::the_handler_accepts_records_of_the_real_stream("DYNAMODB_LOCAL_ENDPOINT").await
    }
}

mod moto {
    #[tokio::test]
    async fn the_handler_accepts_records_of_the_real_stream() {
        super::the_handler_accepts_records_of_the_real_stream("MOTO_ENDPOINT").await
    }
}
