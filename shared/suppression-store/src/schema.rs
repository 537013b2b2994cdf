//! The table's key design and its creation.
//!
//! | item | `pk` | `sk` |
//! |---|---|---|
//! | address state | `ADDR#<address or *@domain>` | `STATE` |
//! | history entry (and idempotency marker) | `ADDR#<address>` | `EVT#<idempotency key>` |
//! | marker of an event without address (Send) | `MSG#<ses message id>` | `EVT#send` |
//! | daily counters | `STATS` | `DAY#<yyyy-mm-dd>#<identity>` |
//! | sync state | `META` | `SYNC#<name>` |
//!
//! Index `by-state-reason` (`gsi1pk` = `<state>#<reason>`, `gsi1sk` = `<changed at>#<address>`)
//! and index `by-domain` (`gsi2pk` = `DOMAIN#<domain>`, `gsi2sk` = `<address>`) are sparse: only
//! state items that carry a suppression have their keys. `ttl` holds the expiry in epoch seconds.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, SseSpecification, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};

use crate::StoreError;

/// Partition key attribute.
pub const PK: &str = "pk";
/// Sort key attribute.
pub const SK: &str = "sk";
/// TTL attribute (epoch seconds).
pub const TTL: &str = "ttl";
/// Index by state and reason.
pub const BY_STATE_REASON: &str = "by-state-reason";
/// Index by domain.
pub const BY_DOMAIN: &str = "by-domain";
/// Sort key of an address state item.
pub const STATE_SK: &str = "STATE";
/// Partition of the daily counters.
pub const STATS_PK: &str = "STATS";

/// Partition key of a target's items.
pub fn address_pk(key: &str) -> String {
    format!("ADDR#{key}")
}

/// Sort key of a history entry.
pub fn history_sk(idempotency_key: &str) -> String {
    format!("EVT#{idempotency_key}")
}

/// Partition value of `by-state-reason`.
pub fn state_reason_pk(state: &str, reason: &str) -> String {
    format!("{state}#{reason}")
}

/// Partition value of `by-domain`.
pub fn domain_pk(domain: &str) -> String {
    format!("DOMAIN#{domain}")
}

/// Creates the table with its indexes, stream (NEW_AND_OLD_IMAGES), TTL and encryption, and
/// waits until it is active. The same design as `infra/template.yaml`.
///
/// Fails when the table exists already (`ResourceInUseException`) or the call is refused.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| StoreError::Malformed(e.to_string()))
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| StoreError::Malformed(e.to_string()))
    };
    let index = |name: &str, pk: &str, sk: &str| -> Result<GlobalSecondaryIndex, StoreError> {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(pk, KeyType::Hash)?)
            .key_schema(key(sk, KeyType::Range)?)
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .map_err(|e| StoreError::Malformed(e.to_string()))
    };
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(PK)?)
        .attribute_definitions(attr(SK)?)
        .attribute_definitions(attr("gsi1pk")?)
        .attribute_definitions(attr("gsi1sk")?)
        .attribute_definitions(attr("gsi2pk")?)
        .attribute_definitions(attr("gsi2sk")?)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(index(BY_STATE_REASON, "gsi1pk", "gsi1sk")?)
        .global_secondary_indexes(index(BY_DOMAIN, "gsi2pk", "gsi2sk")?)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(|e| StoreError::Malformed(e.to_string()))?,
        )
        .sse_specification(SseSpecification::builder().enabled(true).build())
        .send()
        .await
        .map_err(|e| StoreError::sdk("CreateTable", e))?;

    for _ in 0..60 {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| StoreError::sdk("DescribeTable", e))?;
        let status =
            described.table().and_then(|t| t.table_status()).map(|s| s.as_str().to_owned());
        if status.as_deref() == Some("ACTIVE") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL)
                .enabled(true)
                .build()
                .map_err(|e| StoreError::Malformed(e.to_string()))?,
        )
        .send()
        .await
        .map_err(|e| StoreError::sdk("UpdateTimeToLive", e))?;
    Ok(())
}
