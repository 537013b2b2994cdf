//! Reads and maintenance the operator tool needs beyond the ingest path: pages of the two
//! indexes (list, export), batch lookups before imports, erasure of everything stored under one
//! address, the daily counters and the checkpoints of resumable imports.
//!
//! Every read here is a `GetItem`, `BatchGetItem` or `Query`; nothing scans the table. Like the
//! rest of the crate it depends on the domain crate and the DynamoDB SDK only, and it logs no
//! addresses.

use std::collections::{HashMap, HashSet};
use std::time::Duration as StdDuration;

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, KeysAndAttributes, WriteRequest};
use chrono::{DateTime, NaiveDate, Utc};
use feedback_domain::{AddressRecord, SuppressionReason};

use crate::item::{self, Item, n, s};
use crate::{DynamoDbSuppressionStore, StoreError, schema};

/// Most keys one `BatchGetItem` request may carry.
const BATCH_GET_MAX: usize = 100;
/// Most requests one `BatchWriteItem` request may carry.
const BATCH_WRITE_MAX: usize = 25;
/// How often unprocessed keys of a batch call are sent again before giving up.
const BATCH_ATTEMPTS: u32 = 8;
/// Partition of the sync and import bookkeeping items.
const META_PK: &str = "META";

/// Where the next page of a query starts. Opaque: pass it back unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor(Item);

/// One page of state items read from an index.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordPage {
    /// The records on this page, in index order.
    pub records: Vec<AddressRecord>,
    /// Where the next page starts; `None` after the last page.
    pub next: Option<Cursor>,
}

/// The two suppression states the `by-state-reason` index partitions on. Whether an active
/// suppression has expired is decided when reading, so expired entries live in `Active`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoredState {
    /// `active#<reason>`: in force, or expired but not yet deleted by TTL.
    Active,
    /// `released#<reason>`: lifted by an operator.
    Released,
}

impl StoredState {
    /// `active` or `released`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Released => "released",
        }
    }
}

/// Which active entries a query keeps, judged on `expires_at` at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryFilter {
    /// Keep everything.
    Any,
    /// Keep entries without an expiry or with one after the time.
    InForceAt(DateTime<Utc>),
    /// Keep entries whose expiry is at or before the time.
    ExpiredAt(DateTime<Utc>),
}

/// A query of one `by-state-reason` partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateReasonQuery {
    /// The partition's state.
    pub state: StoredState,
    /// The partition's reason.
    pub reason: SuppressionReason,
    /// Only entries whose last state change is at or after this time.
    pub changed_from: Option<DateTime<Utc>>,
    /// Only entries whose last state change is before this time.
    pub changed_before: Option<DateTime<Utc>>,
    /// Server-side filter on the expiry.
    pub expiry: ExpiryFilter,
    /// Newest state change first (otherwise oldest first).
    pub newest_first: bool,
    /// Items DynamoDB evaluates per page (before the expiry filter); `None` for its 1 MB pages.
    pub page_size: Option<i32>,
}

/// The daily counters of one sending identity on one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterValues {
    /// Recipients SES accepted (`Send` events).
    pub sends: u64,
    /// Delivered recipients.
    pub deliveries: u64,
    /// Hard-bounced recipients.
    pub hard_bounces: u64,
    /// Soft-bounced recipients.
    pub soft_bounces: u64,
    /// Complained recipients.
    pub complaints: u64,
}

impl CounterValues {
    /// Adds another set of counters to this one.
    pub fn add(&mut self, other: &Self) {
        self.sends += other.sends;
        self.deliveries += other.deliveries;
        self.hard_bounces += other.hard_bounces;
        self.soft_bounces += other.soft_bounces;
        self.complaints += other.complaints;
    }
}

/// One counter item: a day, an identity and its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyCounters {
    /// The UTC day.
    pub day: NaiveDate,
    /// The sending identity (`unknown` when SES did not say).
    pub identity: String,
    /// The values.
    pub values: CounterValues,
}

/// What a batch lookup before an import found for one target.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportStatus {
    /// The stored record, if any.
    pub record: Option<AddressRecord>,
    /// Whether a history entry under the import's idempotency key exists already.
    pub imported_before: bool,
}

/// Progress of an interrupted, resumable import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Where the source listing continues (e.g. an SES `NextToken`).
    pub token: String,
    /// Pages fully applied so far.
    pub pages: u64,
    /// When the checkpoint was written.
    pub saved_at: DateTime<Utc>,
}

impl DynamoDbSuppressionStore {
    /// One page of a `by-state-reason` partition.
    ///
    /// Fails when DynamoDB refuses the query (a missing table answers
    /// `ResourceNotFoundException`) or an item is malformed.
    pub async fn state_reason_page(
        &self,
        query: &StateReasonQuery,
        start: Option<Cursor>,
    ) -> Result<RecordPage, StoreError> {
        let mut request = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(schema::BY_STATE_REASON)
            .scan_index_forward(!query.newest_first)
            .set_limit(query.page_size)
            .set_exclusive_start_key(start.map(|c| c.0))
            .expression_attribute_values(
                ":p",
                s(schema::state_reason_pk(query.state.as_str(), query.reason.as_str())),
            );
        // The sort key starts with the RFC 3339 time of the change, so a time range is a key
        // range: `<time>#<address>` sorts after `<time>` and before any later time.
        let from = query.changed_from.map(item::time);
        let before = query.changed_before.map(item::time);
        let condition = match (from, before) {
            (Some(from), Some(before)) => {
                request = request
                    .expression_attribute_values(":from", s(from))
                    .expression_attribute_values(":before", s(before));
                "gsi1pk = :p AND gsi1sk BETWEEN :from AND :before"
            }
            (Some(from), None) => {
                request = request.expression_attribute_values(":from", s(from));
                "gsi1pk = :p AND gsi1sk >= :from"
            }
            (None, Some(before)) => {
                request = request.expression_attribute_values(":before", s(before));
                "gsi1pk = :p AND gsi1sk < :before"
            }
            (None, None) => "gsi1pk = :p",
        };
        request = request.key_condition_expression(condition);
        request = match query.expiry {
            ExpiryFilter::Any => request,
            ExpiryFilter::InForceAt(now) => request
                .filter_expression("attribute_not_exists(expires_at) OR expires_at > :now")
                .expression_attribute_values(":now", s(item::time(now))),
            ExpiryFilter::ExpiredAt(now) => request
                .filter_expression("expires_at <= :now")
                .expression_attribute_values(":now", s(item::time(now))),
        };
        let out = request.send().await.map_err(|e| StoreError::sdk("Query", e))?;
        let records = out.items().iter().map(item::record_from_item).collect::<Result<_, _>>()?;
        Ok(RecordPage { records, next: out.last_evaluated_key().cloned().map(Cursor) })
    }

    /// One page of the `by-domain` index: every entry with a suppression (in any state) whose
    /// address is at `domain`, and the `*@domain` entry itself, ordered by address.
    ///
    /// Fails when DynamoDB refuses the query or an item is malformed.
    pub async fn domain_page(
        &self,
        domain: &str,
        page_size: Option<i32>,
        start: Option<Cursor>,
    ) -> Result<RecordPage, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(schema::BY_DOMAIN)
            .key_condition_expression("gsi2pk = :d")
            .expression_attribute_values(":d", s(schema::domain_pk(domain)))
            .set_limit(page_size)
            .set_exclusive_start_key(start.map(|c| c.0))
            .send()
            .await
            .map_err(|e| StoreError::sdk("Query", e))?;
        let records = out.items().iter().map(item::record_from_item).collect::<Result<_, _>>()?;
        Ok(RecordPage { records, next: out.last_evaluated_key().cloned().map(Cursor) })
    }

    /// For each `(target key, idempotency key)`, the stored record and whether a history entry
    /// under that idempotency key exists. Reads consistently, 50 targets per `BatchGetItem`.
    /// The answer has one element per input, in input order.
    ///
    /// Fails when DynamoDB refuses a read, keeps leaving keys unprocessed, or an item is
    /// malformed.
    pub async fn import_status(
        &self,
        targets: &[(String, String)],
    ) -> Result<Vec<ImportStatus>, StoreError> {
        let mut records: HashMap<String, AddressRecord> = HashMap::new();
        let mut markers: HashSet<(String, String)> = HashSet::new();
        let mut seen = HashSet::new();
        let unique: Vec<&(String, String)> = targets.iter().filter(|t| seen.insert(*t)).collect();
        for chunk in unique.chunks(BATCH_GET_MAX / 2) {
            let mut keys = Vec::with_capacity(chunk.len() * 2);
            for (target, idempotency_key) in chunk {
                let pk = schema::address_pk(target);
                keys.push(key(pk.clone(), schema::STATE_SK.to_owned()));
                keys.push(key(pk, schema::history_sk(idempotency_key)));
            }
            for found in self.batch_get(keys).await? {
                let pk = string_attr(&found, schema::PK);
                let sk = string_attr(&found, schema::SK);
                let Some(target) = pk.strip_prefix("ADDR#") else { continue };
                if sk == schema::STATE_SK {
                    records.insert(target.to_owned(), item::record_from_item(&found)?);
                } else if let Some(marker) = sk.strip_prefix("EVT#") {
                    markers.insert((target.to_owned(), marker.to_owned()));
                }
            }
        }
        Ok(targets
            .iter()
            .map(|t| ImportStatus {
                record: records.get(&t.0).cloned(),
                imported_before: markers.contains(t),
            })
            .collect())
    }

    /// Deletes every item stored under a target key (`address` or `*@domain`): the state item
    /// and the whole history. Returns how many items were deleted; 0 when nothing was stored.
    /// Queries again after deleting, so that an event written meanwhile is erased too.
    ///
    /// Fails when DynamoDB refuses a call or keeps leaving deletes unprocessed.
    pub async fn forget(&self, target_key: &str) -> Result<usize, StoreError> {
        let pk = schema::address_pk(target_key);
        let mut deleted = 0;
        loop {
            let keys = self.partition_keys(&pk).await?;
            if keys.is_empty() {
                return Ok(deleted);
            }
            deleted += keys.len();
            self.batch_delete(keys).await?;
        }
    }

    /// The daily counters of every identity from `from` to `to` (both included, UTC days): one
    /// paginated `Query` on the `STATS` partition with the sort key between the two days.
    ///
    /// Fails when DynamoDB refuses the query or a counter item is malformed.
    pub async fn daily_counters(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyCounters>, StoreError> {
        // `DAY#<day>#<identity>`: '$' sorts right after '#', so `DAY#<to>$` ends the last day.
        let low = format!("DAY#{}", from.format("%Y-%m-%d"));
        let high = format!("DAY#{}$", to.format("%Y-%m-%d"));
        let mut counters = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
                .expression_attribute_values(":pk", s(schema::STATS_PK))
                .expression_attribute_values(":low", s(low.clone()))
                .expression_attribute_values(":high", s(high.clone()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::sdk("Query", e))?;
            for found in out.items() {
                counters.push(counters_from_item(found)?);
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(counters);
            }
        }
    }

    /// The checkpoint saved under `name` by an interrupted import, if any.
    ///
    /// Fails when DynamoDB refuses the read or the item is malformed.
    pub async fn checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(key(META_PK.to_owned(), checkpoint_sk(name))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::sdk("GetItem", e))?;
        let Some(found) = out.item() else { return Ok(None) };
        let saved_at = DateTime::parse_from_rfc3339(&string_attr(found, "saved_at"))
            .map_err(|_| StoreError::Malformed("checkpoint saved_at is not a timestamp".into()))?
            .with_timezone(&Utc);
        Ok(Some(Checkpoint {
            token: string_attr(found, "token"),
            pages: number_attr(found, "pages")?,
            saved_at,
        }))
    }

    /// Saves the checkpoint of an import under `name`. It expires (TTL) after `keep`, since the
    /// token it holds goes stale.
    ///
    /// Fails when DynamoDB refuses the write.
    pub async fn save_checkpoint(
        &self,
        name: &str,
        checkpoint: &Checkpoint,
        keep: chrono::Duration,
    ) -> Result<(), StoreError> {
        let mut found = key(META_PK.to_owned(), checkpoint_sk(name));
        found.insert("token".into(), s(checkpoint.token.clone()));
        found.insert("pages".into(), n(checkpoint.pages));
        found.insert("saved_at".into(), s(item::time(checkpoint.saved_at)));
        found.insert(schema::TTL.into(), n((checkpoint.saved_at + keep).timestamp()));
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(found))
            .send()
            .await
            .map_err(|e| StoreError::sdk("PutItem", e))?;
        Ok(())
    }

    /// Removes the checkpoint under `name` (after a completed import, or to start over).
    ///
    /// Fails when DynamoDB refuses the delete.
    pub async fn clear_checkpoint(&self, name: &str) -> Result<(), StoreError> {
        self.client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(key(META_PK.to_owned(), checkpoint_sk(name))))
            .send()
            .await
            .map_err(|e| StoreError::sdk("DeleteItem", e))?;
        Ok(())
    }

    async fn partition_keys(&self, pk: &str) -> Result<Vec<Item>, StoreError> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .projection_expression("pk, sk")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::sdk("Query", e))?;
            keys.extend(out.items().iter().cloned());
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(keys);
            }
        }
    }

    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        let mut pending = keys;
        for attempt in 0..BATCH_ATTEMPTS {
            if pending.is_empty() {
                return Ok(found);
            }
            backoff(attempt).await;
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Malformed(e.to_string()))?;
            let out = self
                .client()
                .batch_get_item()
                .request_items(self.table(), request)
                .send()
                .await
                .map_err(|e| StoreError::sdk("BatchGetItem", e))?;
            if let Some(items) = out.responses().and_then(|r| r.get(self.table())) {
                found.extend(items.iter().cloned());
            }
            if let Some(rest) = out.unprocessed_keys().and_then(|u| u.get(self.table())) {
                pending = rest.keys().to_vec();
            }
        }
        if pending.is_empty() {
            Ok(found)
        } else {
            Err(StoreError::Contended { attempts: BATCH_ATTEMPTS })
        }
    }

    async fn batch_delete(&self, keys: Vec<Item>) -> Result<(), StoreError> {
        for chunk in keys.chunks(BATCH_WRITE_MAX) {
            let mut pending = chunk
                .iter()
                .map(|k| {
                    DeleteRequest::builder()
                        .set_key(Some(k.clone()))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(|e| StoreError::Malformed(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt == BATCH_ATTEMPTS {
                    return Err(StoreError::Contended { attempts: BATCH_ATTEMPTS });
                }
                backoff(attempt).await;
                let out = self
                    .client()
                    .batch_write_item()
                    .request_items(self.table(), std::mem::take(&mut pending))
                    .send()
                    .await
                    .map_err(|e| StoreError::sdk("BatchWriteItem", e))?;
                if let Some(rest) = out.unprocessed_items().and_then(|u| u.get(self.table())) {
                    pending = rest.clone();
                }
                attempt += 1;
            }
        }
        Ok(())
    }
}

/// Waits before a retry of unprocessed batch keys: nothing before the first attempt, then
/// 50 ms doubling up to about 3 s, as DynamoDB asks for throttled batch items.
async fn backoff(attempt: u32) {
    if attempt > 0 {
        let millis = 50u64 << attempt.min(6);
        tokio::time::sleep(StdDuration::from_millis(millis + fastrand::u64(..millis))).await;
    }
}

fn key(pk: String, sk: String) -> Item {
    HashMap::from([(schema::PK.to_owned(), s(pk)), (schema::SK.to_owned(), s(sk))])
}

fn checkpoint_sk(name: &str) -> String {
    format!("IMPORT#{name}")
}

fn string_attr(found: &Item, name: &str) -> String {
    found.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

fn number_attr(found: &Item, name: &str) -> Result<u64, StoreError> {
    match found.get(name) {
        None => Ok(0),
        Some(AttributeValue::N(v)) => {
            v.parse().map_err(|_| StoreError::Malformed(format!("attribute {name} is not a count")))
        }
        Some(_) => Err(StoreError::Malformed(format!("attribute {name} is not a number"))),
    }
}

fn counters_from_item(found: &Item) -> Result<DailyCounters, StoreError> {
    let sk = string_attr(found, schema::SK);
    let mut parts = sk.splitn(3, '#');
    let (Some("DAY"), Some(day), Some(identity)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(StoreError::Malformed("counter sort key is not DAY#<day>#<identity>".into()));
    };
    let day = NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| StoreError::Malformed("counter day is not a date".into()))?;
    Ok(DailyCounters {
        day,
        identity: identity.to_owned(),
        values: CounterValues {
            sends: number_attr(found, "sends")?,
            deliveries: number_attr(found, "deliveries")?,
            hard_bounces: number_attr(found, "hard_bounces")?,
            soft_bounces: number_attr(found, "soft_bounces")?,
            complaints: number_attr(found, "complaints")?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_items_parse_day_identity_and_missing_fields_as_zero() {
        let found = HashMap::from([
            ("pk".to_owned(), s("STATS")),
            ("sk".to_owned(), s("DAY#2026-11-02#mail.example.org")),
            ("deliveries".to_owned(), n(7)),
            ("complaints".to_owned(), n(1)),
        ]);

        let parsed = counters_from_item(&found).unwrap();

        assert_eq!(parsed.day, NaiveDate::from_ymd_opt(2026, 11, 2).unwrap());
        assert_eq!(parsed.identity, "mail.example.org");
        assert_eq!(
            parsed.values,
            CounterValues { deliveries: 7, complaints: 1, ..CounterValues::default() }
        );
    }

    #[test]
    fn counter_items_with_a_foreign_sort_key_are_malformed() {
        let found = HashMap::from([("sk".to_owned(), s("SYNC#mailcow"))]);

        assert!(matches!(counters_from_item(&found), Err(StoreError::Malformed(_))));
    }
}
