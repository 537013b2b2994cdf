//! The DynamoDB implementation of [`SuppressionStore`] and the reads the sync and CLI share.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use chrono::{DateTime, Duration, Utc};
use feedback_domain::ports::{
    CommitOutcome, CounterIncrement, EventWrite, HistoryEntry, SuppressionStore, WriteScope,
};
use feedback_domain::{AddressRecord, SuppressionReason, SuppressionTarget};
use tracing::debug;

use crate::StoreError;
use crate::item::{self, Item, n, s};
use crate::schema;

/// Settings of the store beyond the table name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSettings {
    /// How long records without a suppression are kept after their last event.
    pub record_retention: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self { record_retention: Duration::days(400) }
    }
}

/// The suppression table in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoDbSuppressionStore {
    client: Client,
    table: String,
    settings: StoreSettings,
}

impl DynamoDbSuppressionStore {
    /// A store over `table`, using a client built once at init.
    pub fn new(client: Client, table: impl Into<String>, settings: StoreSettings) -> Self {
        Self { client, table: table.into(), settings }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The SDK client, for adapters that extend the store (queries of the CLI).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn key(pk: String, sk: &str) -> Item {
        HashMap::from([(schema::PK.into(), s(pk)), (schema::SK.into(), s(sk))])
    }

    /// The stored record under a key (`address` or `*@domain`), read consistently.
    ///
    /// Fails when DynamoDB refuses the read or the item is malformed.
    pub async fn load_key(&self, key: &str) -> Result<Option<AddressRecord>, StoreError> {
        let started = std::time::Instant::now();
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(schema::address_pk(key), schema::STATE_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::sdk("GetItem", e))?;
        debug!(latency_ms = started.elapsed().as_millis() as u64, "dynamodb get_item");
        out.item().map(item::record_from_item).transpose()
    }

    /// The history of a target, oldest first.
    ///
    /// Fails when DynamoDB refuses the query or an item is malformed.
    pub async fn history(&self, key: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut entries = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :evt)")
                .expression_attribute_values(":pk", s(schema::address_pk(key)))
                .expression_attribute_values(":evt", s("EVT#"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::sdk("Query", e))?;
            for item in out.items() {
                entries.push(item::history_from_item(item)?);
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        entries.sort_by(|a, b| {
            a.at.cmp(&b.at).then_with(|| a.idempotency_key.cmp(&b.idempotency_key))
        });
        Ok(entries)
    }

    /// Every record whose suppression is in force at `now`, read from the `by-state-reason`
    /// index one reason at a time (never a scan). Expired soft bounces that TTL has not deleted
    /// yet are left out.
    ///
    /// Fails when DynamoDB refuses a query or an item is malformed.
    pub async fn active_records(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<AddressRecord>, StoreError> {
        let mut records = Vec::new();
        for reason in SuppressionReason::ALL {
            let mut start: Option<Item> = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(schema::BY_STATE_REASON)
                    .key_condition_expression("gsi1pk = :p")
                    .expression_attribute_values(
                        ":p",
                        s(schema::state_reason_pk("active", reason.as_str())),
                    )
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| StoreError::sdk("Query", e))?;
                for item in out.items() {
                    let record = item::record_from_item(item)?;
                    if record.active_suppression(now).is_some() {
                        records.push(record);
                    }
                }
                start = out.last_evaluated_key().cloned();
                if start.is_none() {
                    break;
                }
            }
        }
        records.sort_by(|a, b| a.target.cmp(&b.target));
        Ok(records)
    }

    fn record_update(
        &self,
        record: &AddressRecord,
        expected_version: u64,
    ) -> Result<Update, StoreError> {
        let mut sets = Vec::new();
        let mut removes = Vec::new();
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        for (i, (name, value)) in
            item::record_attributes(record, self.settings.record_retention).into_iter().enumerate()
        {
            names.insert(format!("#a{i}"), name.to_owned());
            match value {
                Some(value) => {
                    sets.push(format!("#a{i} = :v{i}"));
                    values.insert(format!(":v{i}"), value);
                }
                None => removes.push(format!("#a{i}")),
            }
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let condition = if expected_version == 0 {
            "attribute_not_exists(pk)".to_owned()
        } else {
            names.insert("#ver".into(), "version".into());
            values.insert(":expected".into(), n(expected_version));
            "#ver = :expected".to_owned()
        };
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(schema::address_pk(&record.target.key()), schema::STATE_SK)))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| StoreError::Malformed(e.to_string()))
    }

    fn counter_update(&self, counter: &CounterIncrement) -> Result<Update, StoreError> {
        let sk = format!("DAY#{}#{}", counter.day.format("%Y-%m-%d"), counter.identity);
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(schema::STATS_PK.to_owned(), &sk)))
            .update_expression("ADD #f :by SET #d = :day, #i = :identity")
            .expression_attribute_names("#f", counter.field.as_str())
            .expression_attribute_names("#d", "day")
            .expression_attribute_names("#i", "identity")
            .expression_attribute_values(":by", n(counter.by))
            .expression_attribute_values(":day", s(counter.day.format("%Y-%m-%d").to_string()))
            .expression_attribute_values(":identity", s(counter.identity.clone()))
            .build()
            .map_err(|e| StoreError::Malformed(e.to_string()))
    }
}

/// Index of the record update inside the transaction (after the history put).
const RECORD_INDEX: usize = 1;

impl SuppressionStore for DynamoDbSuppressionStore {
    type Error = StoreError;

    async fn load(&self, target: &SuppressionTarget) -> Result<Option<AddressRecord>, StoreError> {
        self.load_key(&target.key()).await
    }

    async fn commit(&self, write: &EventWrite) -> Result<CommitOutcome, StoreError> {
        let history_pk = match &write.scope {
            WriteScope::Record { record, .. } => schema::address_pk(&record.target.key()),
            WriteScope::Message { ses_message_id } => format!("MSG#{ses_message_id}"),
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item::history_item(history_pk, &write.history)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Malformed(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        if let WriteScope::Record { record, expected_version } = &write.scope {
            let update = self.record_update(record, *expected_version)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        if let Some(counter) = &write.counter {
            items.push(TransactWriteItem::builder().update(self.counter_update(counter)?).build());
        }

        let started = std::time::Instant::now();
        let result =
            self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        debug!(latency_ms = started.elapsed().as_millis() as u64, "dynamodb transact_write_items");
        match result {
            Ok(_) => Ok(CommitOutcome::Applied),
            Err(err) => {
                if let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
                    err.as_service_error()
                {
                    let codes: Vec<Option<&str>> =
                        cancel.cancellation_reasons().iter().map(|r| r.code()).collect();
                    if codes.first().copied().flatten() == Some("ConditionalCheckFailed") {
                        return Ok(CommitOutcome::Duplicate);
                    }
                    let record_conflict = codes.get(RECORD_INDEX).copied().flatten()
                        == Some("ConditionalCheckFailed");
                    let contention = codes.contains(&Some("TransactionConflict"));
                    if record_conflict || contention {
                        return Ok(CommitOutcome::Conflict);
                    }
                }
                Err(StoreError::sdk("TransactWriteItems", err))
            }
        }
    }
}
