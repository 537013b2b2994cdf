//! What the system ended with, read back from moto in the same shape as
//! [`crate::generator::Expectation`]: every item of the table (a scan: this is a test and demo
//! tool reading a few thousand items, not a production path), the daily counters through the
//! store crate, and the contents of the queues.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use chrono::NaiveDate;
use feedback_domain::AddressRecord;
use serde_json::Value;
use suppression_store::{CounterValues, DynamoDbSuppressionStore, StoreSettings, schema};

use crate::topology::{AwsClients, Topology};

/// The table, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TableState {
    /// State records by key.
    pub records: BTreeMap<String, AddressRecord>,
    /// History by key: (idempotency key, outcome).
    pub history: BTreeMap<String, BTreeSet<(String, String)>>,
    /// SES message ids of counted Send events.
    pub sends: BTreeSet<String>,
    /// Daily counters by (day, identity).
    pub counters: BTreeMap<(NaiveDate, String), CounterValues>,
    /// Items the comparison does not cover (the sync's own `META` items), by partition.
    pub other: BTreeMap<String, usize>,
}

/// Reads the whole table.
///
/// Fails when a read fails or an item does not parse.
pub async fn table_state(
    clients: &AwsClients,
    table: &str,
    days: (NaiveDate, NaiveDate),
) -> anyhow::Result<TableState> {
    let mut state = TableState {
        records: BTreeMap::new(),
        history: BTreeMap::new(),
        sends: BTreeSet::new(),
        counters: BTreeMap::new(),
        other: BTreeMap::new(),
    };
    let mut start = None;
    loop {
        let out = clients
            .dynamodb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .context("scanning the table")?;
        for item in out.items() {
            let text = |name: &str| match item.get(name) {
                Some(AttributeValue::S(s)) => s.clone(),
                _ => String::new(),
            };
            let (pk, sk) = (text(schema::PK), text(schema::SK));
            if let Some(key) = pk.strip_prefix("ADDR#") {
                if sk == schema::STATE_SK {
                    state
                        .records
                        .insert(key.to_owned(), suppression_store::record_from_item(item)?);
                } else if sk.starts_with("EVT#") {
                    let entry = suppression_store::history_from_item(item)?;
                    state
                        .history
                        .entry(key.to_owned())
                        .or_default()
                        .insert((entry.idempotency_key, entry.outcome));
                }
            } else if let Some(id) = pk.strip_prefix("MSG#") {
                state.sends.insert(id.to_owned());
            } else if pk != schema::STATS_PK {
                *state.other.entry(pk).or_default() += 1;
            }
        }
        start = out.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    let store =
        DynamoDbSuppressionStore::new(clients.dynamodb.clone(), table, StoreSettings::default());
    for day in store.daily_counters(days.0, days.1).await? {
        state.counters.insert((day.day, day.identity), day.values);
    }
    Ok(state)
}

/// One message on a queue.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    /// The body.
    pub body: String,
    /// String message attributes.
    pub attributes: BTreeMap<String, String>,
    /// How often it was received (before this look).
    pub receive_count: u64,
}

impl QueuedMessage {
    /// The SNS `Message` inside an envelope body, or the body itself.
    pub fn sns_message(&self) -> String {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|v| v.get("Message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| self.body.clone())
    }
}

/// Every message on a queue, left on it and visible again afterwards (nothing is deleted).
///
/// Fails when SQS refuses a call.
pub async fn queue_contents(clients: &AwsClients, url: &str) -> anyhow::Result<Vec<QueuedMessage>> {
    let mut out = Vec::new();
    let mut handles = Vec::new();
    loop {
        let received = clients
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names("All")
            .send()
            .await
            .context("reading a queue")?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            handles.extend(m.receipt_handle.clone());
            out.push(QueuedMessage {
                body: m.body.clone().unwrap_or_default(),
                attributes: m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.string_value()?.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default(),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0),
            });
        }
    }
    // Hidden only while being read: make them visible again at once, as `dlq list` does.
    for handle in handles {
        clients
            .sqs
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(handle)
            .visibility_timeout(0)
            .send()
            .await
            .context("making a read message visible again")?;
    }
    Ok(out)
}

/// Messages on a queue right now (visible and in flight), from the queue attributes.
///
/// Fails when SQS refuses the call.
pub async fn queue_depth(
    clients: &AwsClients,
    topology: &Topology,
    logical: &str,
) -> anyhow::Result<u64> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let url = &topology.queue(logical)?.url;
    let out = clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await?;
    let attrs = out.attributes.unwrap_or_default();
    let get = |a: A| attrs.get(&a).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok(get(A::ApproximateNumberOfMessages) + get(A::ApproximateNumberOfMessagesNotVisible))
}
