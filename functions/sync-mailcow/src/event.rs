//! What invoked the function: a batch of the suppression table's stream, or the schedule.
//!
//! Owns the recognition of the two payload shapes and the few facts the sync takes from a stream
//! batch (the first sequence number, the state items it touched, deleted items that were on the
//! SES list). The sync re-reads the table instead of trusting the images, so nothing else of a
//! record matters. Depends on `aws_lambda_events` for the stream record shape only; no AWS calls.

use std::collections::BTreeSet;

use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use serde_json::Value;

/// Event source of DynamoDB stream records.
pub const DYNAMODB_SOURCE: &str = "aws:dynamodb";

/// Sort key of address state items, the only items that change what Mailcow blocks.
const STATE_SK: &str = "STATE";
/// Partition prefix of address state items.
const ADDRESS_PK_PREFIX: &str = "ADDR#";

/// Why an invocation was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Records of the table's stream.
    Stream(StreamBatch),
    /// The EventBridge schedule: the drift-repair run, which always pushes.
    Schedule,
}

/// The facts the sync takes from one stream batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamBatch {
    /// Sequence number of the first record: naming it as the failed item makes Lambda retry
    /// the whole batch, which is one projection.
    pub first_sequence_number: Option<String>,
    /// Records in the batch.
    pub records: usize,
    /// Keys (`address` or `*@domain`) of the state items the batch changed, sorted, once each.
    /// Personal data.
    pub changed_keys: Vec<String>,
    /// Keys of state items the batch deleted (TTL or erasure) while they were on the SES list:
    /// the only trace of an entry that must still be removed from SES. Personal data.
    pub removed_listed: Vec<String>,
}

/// The payload is neither a stream batch nor a scheduled event.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The payload has no recognised shape.
    #[error(
        "unrecognised event: expected DynamoDB stream records (eventSource aws:dynamodb) or an \
         EventBridge scheduled event"
    )]
    Unrecognised,
    /// Stream records that do not have the DynamoDB stream record shape.
    #[error("malformed DynamoDB stream event")]
    MalformedStream(#[source] serde_json::Error),
}

/// Recognises the payload: `Records[0].eventSource == "aws:dynamodb"` is a stream batch,
/// `source == "aws.events"` or `detail-type == "Scheduled Event"` the schedule.
///
/// Fails with [`EventError::Unrecognised`] for any other payload and with
/// [`EventError::MalformedStream`] for stream records that do not parse.
pub fn parse_trigger(payload: Value) -> Result<Trigger, EventError> {
    let first_source = payload
        .get("Records")
        .and_then(|r| r.get(0))
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str);
    if first_source == Some(DYNAMODB_SOURCE) {
        let event: DynamoDbEvent =
            serde_json::from_value(payload).map_err(EventError::MalformedStream)?;
        return Ok(Trigger::Stream(stream_batch(&event)));
    }
    let source = payload.get("source").and_then(Value::as_str);
    let detail_type = payload.get("detail-type").and_then(Value::as_str);
    if source == Some("aws.events") || detail_type == Some("Scheduled Event") {
        return Ok(Trigger::Schedule);
    }
    Err(EventError::Unrecognised)
}

fn stream_batch(event: &DynamoDbEvent) -> StreamBatch {
    let mut changed = BTreeSet::new();
    let mut removed_listed = BTreeSet::new();
    for record in &event.records {
        // The images are DynamoDB JSON (`{"S": "..."}`); reading them through serde_json keeps
        // this independent of the image library's types.
        let keys = serde_json::to_value(&record.change.keys).unwrap_or(Value::Null);
        let pk = string_attribute(&keys, "pk");
        let sk = string_attribute(&keys, "sk");
        let Some(key) = pk.and_then(|pk| pk.strip_prefix(ADDRESS_PK_PREFIX)) else { continue };
        if sk != Some(STATE_SK) {
            continue;
        }
        changed.insert(key.to_owned());
        if record.event_name == "REMOVE" {
            let old = serde_json::to_value(&record.change.old_image).unwrap_or(Value::Null);
            if old.get("ses_listed").and_then(|v| v.get("BOOL")) == Some(&Value::Bool(true)) {
                removed_listed.insert(key.to_owned());
            }
        }
    }
    StreamBatch {
        first_sequence_number: event.records.first().and_then(|r| r.change.sequence_number.clone()),
        records: event.records.len(),
        changed_keys: changed.into_iter().collect(),
        removed_listed: removed_listed.into_iter().collect(),
    }
}

fn string_attribute<'a>(item: &'a Value, name: &str) -> Option<&'a str> {
    item.get(name)?.get("S")?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(name: &str, seq: &str, pk: &str, sk: &str, old_listed: Option<bool>) -> Value {
        let mut change = json!({
            "ApproximateCreationDateTime": 1_700_000_000.0,
            "Keys": {"pk": {"S": pk}, "sk": {"S": sk}},
            "SequenceNumber": seq,
            "SizeBytes": 120,
            "StreamViewType": "NEW_AND_OLD_IMAGES"
        });
        if let Some(listed) = old_listed {
            change["OldImage"] = json!({
                "pk": {"S": pk}, "sk": {"S": sk}, "ses_listed": {"BOOL": listed},
                "recent_deliveries": {"L": [{"S": "m-1"}]}, "version": {"N": "3"}
            });
        }
        json!({
            "eventID": format!("id-{seq}"),
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "eu-central-1",
            "dynamodb": change,
            "eventSourceARN": "arn:aws:dynamodb:eu-central-1:123456789012:table/t/stream/2026"
        })
    }

    #[test]
    fn a_stream_batch_names_its_first_sequence_number_and_the_state_items_it_touched() {
        let payload = json!({"Records": [
            record("MODIFY", "100", "ADDR#b@example.com", "STATE", Some(false)),
            record("INSERT", "101", "ADDR#a@example.com", "EVT#feedback:1", None),
            record("INSERT", "102", "ADDR#a@example.com", "STATE", None),
            record("MODIFY", "103", "META", "SYNC#mailcow", None),
            record("MODIFY", "104", "ADDR#b@example.com", "STATE", Some(true)),
        ]});

        let Trigger::Stream(batch) = parse_trigger(payload).unwrap() else {
            panic!("not a stream batch")
        };

        assert_eq!(batch.first_sequence_number.as_deref(), Some("100"));
        assert_eq!(batch.records, 5);
        assert_eq!(batch.changed_keys, vec!["a@example.com", "b@example.com"]);
        assert!(batch.removed_listed.is_empty(), "a MODIFY is not a deletion");
    }

    #[test]
    fn a_deleted_state_item_that_was_on_the_ses_list_is_remembered() {
        let payload = json!({"Records": [
            record("REMOVE", "7", "ADDR#gone@example.com", "STATE", Some(true)),
            record("REMOVE", "8", "ADDR#never@example.com", "STATE", Some(false)),
            record("REMOVE", "9", "ADDR#plain@example.com", "STATE", None),
        ]});

        let Trigger::Stream(batch) = parse_trigger(payload).unwrap() else {
            panic!("not a stream batch")
        };

        assert_eq!(batch.removed_listed, vec!["gone@example.com"]);
        assert_eq!(batch.changed_keys.len(), 3);
    }

    #[test]
    fn scheduled_events_are_recognised_by_source_or_detail_type() {
        let scheduled = json!({
            "version": "0", "id": "53dc4d37", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2026-11-02T12:00:00Z",
            "region": "eu-central-1", "resources": ["arn:aws:events:eu-central-1:1:rule/r"],
            "detail": {}
        });
        assert_eq!(parse_trigger(scheduled).unwrap(), Trigger::Schedule);
        assert_eq!(parse_trigger(json!({"source": "aws.events"})).unwrap(), Trigger::Schedule);
    }

    #[test]
    fn other_payloads_are_refused() {
        assert!(matches!(parse_trigger(json!({})), Err(EventError::Unrecognised)));
        let sqs = json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]});
        assert!(matches!(parse_trigger(sqs), Err(EventError::Unrecognised)));
        let broken = json!({"Records": [{"eventSource": "aws:dynamodb"}]});
        assert!(matches!(parse_trigger(broken), Err(EventError::MalformedStream(_))));
    }
}
