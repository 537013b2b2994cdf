//! The real implementations of the handler's ports: the suppression table in DynamoDB, Mailcow
//! through `mailcow-api`, the SES account list through `ses-account-list`, and the read of the
//! Mailcow API key from Secrets Manager at init.
//!
//! Reads here are `Query` (on the `by-state-reason` index) and `GetItem`; writes are the
//! `ses_listed` flag (`UpdateItem`, never touching `version`) and the sync state item
//! (`PutItem` conditioned on its own `version`). Nothing logs an address or the API key.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use feedback_domain::ports::Retryable;
use feedback_domain::{EmailAddress, SuppressionReason, SuppressionTarget};
use futures_util::StreamExt;
use mailcow_api::{ApiKey, MailcowClient, MailcowConfig, MailcowError};
use ses_account_list::{DeleteOutcome, SesAccountList, SesListError, SesReason};
use suppression_store::{DynamoDbSuppressionStore, StoreError, schema};
use tracing::{error, warn};

use crate::config::Config;
use crate::ports::{
    AccountList, Blocklist, BlocklistError, Rendering, SaveOutcome, SuppressionSource, SyncState,
    TargetState,
};

/// Description of the project's Rspamd settings rule: how the sync finds it again.
pub const RSETTING_DESC: &str = "mailcow-ses-feedback suppressions (managed)";

/// Sort key of the sync state item in the `META` partition.
pub const SYNC_STATE_SK: &str = "SYNC#mailcow";

/// Partition of the sync state.
const META_PK: &str = "META";

/// Consistent reads in flight at once for the keys of a stream batch.
const READ_CONCURRENCY: usize = 8;

/// Attributes a sync read needs; everything else of a state item is left on the server.
const PROJECTION: &str = "#pk, #address, #state, #reason, #expires, #listed";

type Item = HashMap<String, AttributeValue>;

fn projection_names() -> HashMap<String, String> {
    [
        ("#pk", schema::PK),
        ("#address", "address"),
        ("#state", "state"),
        ("#reason", "reason"),
        ("#expires", "expires_at"),
        ("#listed", "ses_listed"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn sdk_error<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = err.as_service_error().and_then(|e| e.code()).map(str::to_owned);
    // As in the store: only a request DynamoDB refuses as malformed can never succeed.
    let retryable = !matches!(code.as_deref(), Some("ValidationException"));
    StoreError::Sdk { operation, code, retryable, source: Box::new(err) }
}

fn is_condition_failure<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn time(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    string(item, name)
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| StoreError::Malformed(format!("attribute {name} is not a timestamp")))
        })
        .transpose()
}

fn format_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Reads what the sync needs from a state item, judged at `now`.
fn target_state(item: &Item, now: DateTime<Utc>) -> Result<TargetState, StoreError> {
    let key = string(item, "address")
        .or_else(|| string(item, schema::PK).and_then(|pk| pk.strip_prefix("ADDR#")))
        .ok_or_else(|| StoreError::Malformed("state item without address".into()))?;
    let target = SuppressionTarget::parse(key)
        .map_err(|e| StoreError::Malformed(format!("stored address does not parse: {e}")))?;
    let reason: Option<SuppressionReason> = string(item, "reason")
        .map(|r| r.parse().map_err(|e| StoreError::Malformed(format!("{e}"))))
        .transpose()?;
    let expires_at = time(item, "expires_at")?;
    let in_force = string(item, "state") == Some("active") && expires_at.is_none_or(|e| e > now);
    Ok(TargetState {
        target,
        active: reason.filter(|_| in_force),
        ses_listed: matches!(item.get("ses_listed"), Some(AttributeValue::Bool(true))),
        exists: true,
    })
}

/// What a consistent read of one state item found.
enum ConsistentRead {
    Found(TargetState),
    Missing,
    /// Unreadable: the index's view of the key is kept.
    Malformed,
}

/// The suppression table as the sync sees it, over the store's client and table.
#[derive(Debug, Clone)]
pub struct DynamoDbSyncSource {
    store: DynamoDbSuppressionStore,
}

impl DynamoDbSyncSource {
    /// A source over the store's table.
    pub fn new(store: DynamoDbSuppressionStore) -> Self {
        Self { store }
    }

    fn client(&self) -> &Client {
        self.store.client()
    }

    fn table(&self) -> &str {
        self.store.table()
    }

    fn state_key(key: &str) -> Item {
        HashMap::from([
            (schema::PK.to_owned(), AttributeValue::S(schema::address_pk(key))),
            (schema::SK.to_owned(), AttributeValue::S(schema::STATE_SK.to_owned())),
        ])
    }

    fn meta_key() -> Item {
        HashMap::from([
            (schema::PK.to_owned(), AttributeValue::S(META_PK.to_owned())),
            (schema::SK.to_owned(), AttributeValue::S(SYNC_STATE_SK.to_owned())),
        ])
    }

    /// Every item of one `by-state-reason` partition, optionally only those marked
    /// `ses_listed`, read page by page.
    async fn partition(
        &self,
        partition: String,
        only_listed: bool,
        now: DateTime<Utc>,
        into: &mut Vec<TargetState>,
    ) -> Result<(), StoreError> {
        let mut start: Option<Item> = None;
        let mut malformed = 0usize;
        loop {
            let mut request = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(schema::BY_STATE_REASON)
                .key_condition_expression("gsi1pk = :p")
                .expression_attribute_values(":p", AttributeValue::S(partition.clone()))
                .projection_expression(PROJECTION)
                .set_expression_attribute_names(Some(projection_names()))
                .set_exclusive_start_key(start);
            if only_listed {
                request = request
                    .filter_expression("#listed = :t")
                    .expression_attribute_values(":t", AttributeValue::Bool(true));
            }
            let out = request.send().await.map_err(|e| sdk_error("Query", e))?;
            for item in out.items() {
                match target_state(item, now) {
                    Ok(state) => into.push(state),
                    Err(_) => malformed += 1,
                }
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        if malformed > 0 {
            // Skipped rather than failing every run: the rest of the list must still be kept.
            error!(partition = %partition, malformed, "malformed state items left out");
        }
        Ok(())
    }

    async fn read_one(&self, key: &str, now: DateTime<Utc>) -> Result<ConsistentRead, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(Self::state_key(key)))
            .consistent_read(true)
            .projection_expression(PROJECTION)
            .set_expression_attribute_names(Some(projection_names()))
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        match out.item() {
            None => Ok(ConsistentRead::Missing),
            Some(item) => match target_state(item, now) {
                Ok(state) => Ok(ConsistentRead::Found(state)),
                Err(_) => {
                    error!("malformed state item left to the index view");
                    Ok(ConsistentRead::Malformed)
                }
            },
        }
    }
}

impl SuppressionSource for DynamoDbSyncSource {
    type Error = StoreError;

    async fn suppressions(&self, now: DateTime<Utc>) -> Result<Vec<TargetState>, StoreError> {
        let mut states = Vec::new();
        for reason in SuppressionReason::ALL {
            let partition = schema::state_reason_pk("active", reason.as_str());
            self.partition(partition, false, now, &mut states).await?;
        }
        Ok(states)
    }

    async fn released_listed(&self) -> Result<Vec<TargetState>, StoreError> {
        let mut states = Vec::new();
        for reason in SuppressionReason::ALL {
            let partition = schema::state_reason_pk("released", reason.as_str());
            self.partition(partition, true, Utc::now(), &mut states).await?;
        }
        Ok(states)
    }

    async fn read_targets(
        &self,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, Option<TargetState>)>, StoreError> {
        let reads: Vec<Result<(String, ConsistentRead), StoreError>> =
            futures_util::stream::iter(keys.to_vec())
                .map(|key| async move { self.read_one(&key, now).await.map(|read| (key, read)) })
                .buffer_unordered(READ_CONCURRENCY)
                .collect()
                .await;
        let mut states = Vec::with_capacity(reads.len());
        for read in reads {
            match read? {
                (key, ConsistentRead::Found(state)) => states.push((key, Some(state))),
                (key, ConsistentRead::Missing) => states.push((key, None)),
                (_, ConsistentRead::Malformed) => {}
            }
        }
        states.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(states)
    }

    async fn set_ses_listed(&self, key: &str, listed: bool) -> Result<bool, StoreError> {
        // Only `ses_listed` changes: the ingest path's optimistic lock conditions on `version`,
        // which must stay as it is.
        let mut request = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(Self::state_key(key)))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#listed", "ses_listed");
        request = if listed {
            request
                .update_expression("SET #listed = :t")
                .expression_attribute_values(":t", AttributeValue::Bool(true))
        } else {
            request.update_expression("REMOVE #listed")
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(sdk_error("UpdateItem", err)),
        }
    }

    async fn sync_state(&self) -> Result<SyncState, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(Self::meta_key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        let Some(item) = out.item() else { return Ok(SyncState::default()) };
        let number = |name: &str| -> Result<Option<u64>, StoreError> {
            item.get(name)
                .map(|v| {
                    v.as_n().ok().and_then(|n| n.parse().ok()).ok_or_else(|| {
                        StoreError::Malformed(format!("sync state {name} is not a number"))
                    })
                })
                .transpose()
        };
        let owned = |name: &str| string(item, name).map(str::to_owned);
        Ok(SyncState {
            last_hash: owned("last_hash"),
            last_push_at: time(item, "last_push_at")?,
            last_result: owned("last_result"),
            last_error: owned("last_error"),
            last_attempt_at: time(item, "last_attempt_at")?,
            auth_failed_at: time(item, "auth_failed_at")?,
            entries: number("entries")?,
            version: number("version")?.unwrap_or(0),
        })
    }

    async fn save_sync_state(
        &self,
        state: &SyncState,
        expected_version: u64,
    ) -> Result<SaveOutcome, StoreError> {
        let mut item = Self::meta_key();
        let mut put = |name: &str, value: Option<AttributeValue>| {
            if let Some(value) = value {
                item.insert(name.to_owned(), value);
            }
        };
        let s = |v: &Option<String>| v.clone().map(AttributeValue::S);
        let t = |v: Option<DateTime<Utc>>| v.map(|v| AttributeValue::S(format_time(v)));
        put("last_hash", s(&state.last_hash));
        put("last_push_at", t(state.last_push_at));
        put("last_result", s(&state.last_result));
        put("last_error", s(&state.last_error));
        put("last_attempt_at", t(state.last_attempt_at));
        put("auth_failed_at", t(state.auth_failed_at));
        put("entries", state.entries.map(|n| AttributeValue::N(n.to_string())));
        put("version", Some(AttributeValue::N(state.version.to_string())));
        let mut request = self.client().put_item().table_name(self.table()).set_item(Some(item));
        request = if expected_version == 0 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request
                .condition_expression("#v = :expected")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(
                    ":expected",
                    AttributeValue::N(expected_version.to_string()),
                )
        };
        match request.send().await {
            Ok(_) => Ok(SaveOutcome::Saved),
            Err(err) if is_condition_failure(&err) => Ok(SaveOutcome::Conflict),
            Err(err) => Err(sdk_error("PutItem", err)),
        }
    }
}

impl BlocklistError for MailcowError {
    fn is_auth(&self) -> bool {
        MailcowError::is_auth(self)
    }

    fn kind(&self) -> &'static str {
        MailcowError::kind(self)
    }
}

/// Mailcow, written through its REST API: the denylist map replaced whole, or the project's
/// settings rule upserted.
#[derive(Debug)]
pub struct MailcowBlocklist {
    client: MailcowClient,
}

impl MailcowBlocklist {
    /// A blocklist over a client built once at init.
    pub fn new(client: MailcowClient) -> Self {
        Self { client }
    }
}

impl Blocklist for MailcowBlocklist {
    type Error = MailcowError;

    async fn push(&self, rendering: &Rendering) -> Result<(), MailcowError> {
        match rendering {
            Rendering::Map(map) => self.client.push_denylist_map(map).await,
            Rendering::Rsetting(rule) => {
                let upsert = self.client.upsert_rsetting(RSETTING_DESC, &rule.content).await?;
                // Duplicates come from an add whose reply was lost; they hold the same content
                // now, so removing them is tidying, not correctness.
                for id in upsert.duplicates {
                    if let Err(e) = self.client.delete_rsetting(id).await {
                        warn!(rule_id = id.0, error = %e, "duplicate settings rule not deleted");
                    }
                }
                Ok(())
            }
        }
    }
}

impl AccountList for SesAccountList {
    type Error = SesListError;

    async fn put(&self, address: &EmailAddress, reason: SesReason) -> Result<(), SesListError> {
        SesAccountList::put(self, address, reason).await
    }

    async fn delete(&self, address: &EmailAddress) -> Result<DeleteOutcome, SesListError> {
        SesAccountList::delete(self, address).await
    }
}

/// The Mailcow API key could not be read from Secrets Manager. Never carries the key.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The `GetSecretValue` call failed (missing secret, missing permission, network).
    #[error(
        "reading MAILCOW_API_KEY_SECRET from Secrets Manager failed ({})",
        code.as_deref().unwrap_or("no response")
    )]
    Fetch {
        /// Secrets Manager's error code, if it answered.
        code: Option<String>,
        /// The SDK error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The secret holds binary data or nothing.
    #[error("the MAILCOW_API_KEY_SECRET secret holds no string: store the key as plain text")]
    NotAString,
    /// The string is not a usable Mailcow API key.
    #[error("the MAILCOW_API_KEY_SECRET secret is not a usable key")]
    InvalidKey(#[source] mailcow_api::ConfigError),
}

impl Retryable for SecretError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Fetch { .. })
    }
}

/// Reads the Mailcow API key (a plain string) from the secret `secret_id`.
///
/// Fails when Secrets Manager refuses, the secret holds no string, or the string is not a
/// valid key.
pub async fn read_api_key(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<ApiKey, SecretError> {
    let out = client.get_secret_value().secret_id(secret_id).send().await.map_err(|err| {
        SecretError::Fetch {
            code: err.as_service_error().and_then(|e| e.code()).map(str::to_owned),
            source: Box::new(err),
        }
    })?;
    let raw = out.secret_string().ok_or(SecretError::NotAString)?;
    ApiKey::new(raw).map_err(SecretError::InvalidKey)
}

/// The Mailcow client could not be built at init.
#[derive(Debug, thiserror::Error)]
pub enum MailcowInitError {
    /// `MAILCOW_CA_BUNDLE` names a file that cannot be read.
    #[error("MAILCOW_CA_BUNDLE {path} cannot be read")]
    CaBundle {
        /// The configured path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The client refused the URL, key or certificates.
    #[error(transparent)]
    Client(#[from] mailcow_api::ConfigError),
}

/// Builds the Mailcow client from the configuration and the key read at init.
///
/// The client's own in-memory suspension after an auth failure is turned off: the handler
/// keeps that backoff in the table, where it outlives the container and still lets each
/// scheduled run try once.
///
/// Fails when the CA bundle cannot be read or the client refuses the URL, key or bundle.
pub fn mailcow_client(config: &Config, key: ApiKey) -> Result<MailcowClient, MailcowInitError> {
    let mut mailcow = MailcowConfig::new(config.mailcow_url.clone(), key);
    if let Some(path) = &config.ca_bundle {
        let pem = std::fs::read(path).map_err(|source| MailcowInitError::CaBundle {
            path: path.display().to_string(),
            source,
        })?;
        mailcow.extra_root_ca_pem = Some(pem);
    }
    mailcow.auth_suspend = std::time::Duration::ZERO;
    mailcow.request_timeout = config.mailcow_timeout;
    Ok(MailcowClient::new(mailcow)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.to_owned())
    }

    #[test]
    fn a_state_item_is_in_force_until_it_expires_or_is_released() {
        let now = Utc.with_ymd_and_hms(2026, 11, 2, 12, 0, 0).unwrap();
        let soft = item(&[
            ("pk", s("ADDR#soft@example.com")),
            ("address", s("soft@example.com")),
            ("state", s("active")),
            ("reason", s("soft_bounce")),
            ("expires_at", s("2026-11-02T13:00:00.000Z")),
            ("ses_listed", AttributeValue::Bool(true)),
        ]);
        let later = now + chrono::Duration::hours(2);

        let fresh = target_state(&soft, now).unwrap();
        let expired = target_state(&soft, later).unwrap();

        assert_eq!(fresh.active, Some(SuppressionReason::SoftBounce));
        assert!(fresh.ses_listed);
        assert_eq!(expired.active, None, "expired before TTL deleted it");

        let released = item(&[
            ("pk", s("ADDR#*@example.org")),
            ("state", s("released")),
            ("reason", s("manual")),
        ]);
        let state = target_state(&released, now).unwrap();
        assert_eq!(state.target.key(), "*@example.org");
        assert_eq!(state.active, None);
        assert!(!state.ses_listed);
    }

    #[test]
    fn a_malformed_state_item_is_reported_without_its_content() {
        let bad = item(&[("address", s("not an address")), ("state", s("active"))]);
        let err = target_state(&bad, Utc::now()).unwrap_err();
        assert!(!err.to_string().contains("not an address"), "{err}");
    }
}
