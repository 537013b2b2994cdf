//! Mapping between domain values and DynamoDB items.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use feedback_domain::ports::HistoryEntry;
use feedback_domain::{
    AddressRecord, Provenance, Suppression, SuppressionState, SuppressionTarget,
};

use crate::StoreError;
use crate::schema;

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Attributes of a state item, as `SET` values (`Some`) or `REMOVE`s (`None`).
pub(crate) fn record_attributes(
    record: &AddressRecord,
    retention: Duration,
) -> Vec<(&'static str, Option<AttributeValue>)> {
    let key = record.target.key();
    let kind = match record.target {
        SuppressionTarget::Address(_) => "address",
        SuppressionTarget::Domain(_) => "domain",
    };
    let opt_s = |v: &Option<String>| v.as_ref().map(|v| s(v.clone()));
    let opt_t = |v: Option<DateTime<Utc>>| v.map(|v| s(time(v)));
    let suppression = record.suppression.as_ref();
    let provenance = suppression.map(|s| &s.provenance);
    let released = suppression.and_then(|s| match &s.state {
        SuppressionState::Released { at, by, why } => Some((*at, by.clone(), why.clone())),
        SuppressionState::Active => None,
    });
    let state = match (suppression, &released) {
        (None, _) => "none",
        (Some(_), Some(_)) => "released",
        (Some(_), None) => "active",
    };
    // Index keys: only items with a suppression appear in the indexes.
    let changed_at = released.as_ref().map(|r| r.0).or(suppression.map(|s| s.since));
    let gsi1 = suppression.map(|sup| {
        (
            s(schema::state_reason_pk(state, sup.reason.as_str())),
            s(format!("{}#{key}", time(changed_at.unwrap_or(sup.since)))),
        )
    });
    // Expiry: a soft suppression goes when it ends; a record with no suppression goes after the
    // retention period; active or released suppressions stay.
    let ttl = match suppression {
        Some(sup) if released.is_none() => sup.expires_at.map(|e| n(e.timestamp())),
        Some(_) => None,
        None => Some(n((record.last_seen + retention).timestamp())),
    };
    vec![
        ("address", Some(s(key.clone()))),
        ("domain", Some(s(record.target.domain()))),
        ("kind", Some(s(kind))),
        ("state", Some(s(state))),
        ("reason", suppression.map(|x| s(x.reason.as_str()))),
        ("since", opt_t(suppression.map(|x| x.since))),
        ("expires_at", opt_t(suppression.and_then(|x| x.expires_at))),
        ("released_at", opt_t(released.as_ref().map(|r| r.0))),
        ("released_by", released.as_ref().map(|r| s(r.1.clone()))),
        ("release_note", released.as_ref().map(|r| s(r.2.clone()))),
        ("first_seen", Some(s(time(record.first_seen)))),
        ("last_seen", Some(s(time(record.last_seen)))),
        ("soft_bounce_count", Some(n(record.soft_bounce_count))),
        ("soft_window_start", opt_t(record.soft_window_start)),
        ("last_soft_bounce_at", opt_t(record.last_soft_bounce_at)),
        ("last_delivery_at", opt_t(record.last_delivery_at)),
        (
            "recent_deliveries",
            (!record.recent_deliveries.is_empty()).then(|| {
                AttributeValue::L(record.recent_deliveries.iter().map(|m| s(m.clone())).collect())
            }),
        ),
        ("feedback_id", provenance.and_then(|p| opt_s(&p.feedback_id))),
        ("ses_message_id", provenance.and_then(|p| opt_s(&p.ses_message_id))),
        ("bounce_type", provenance.and_then(|p| opt_s(&p.bounce_type))),
        ("bounce_sub_type", provenance.and_then(|p| opt_s(&p.bounce_sub_type))),
        ("diagnostic_code", provenance.and_then(|p| opt_s(&p.diagnostic_code))),
        ("decided_by", provenance.map(|p| s(p.source.clone()))),
        ("note", provenance.and_then(|p| opt_s(&p.note))),
        ("version", Some(n(record.version))),
        ("gsi1pk", gsi1.as_ref().map(|g| g.0.clone())),
        ("gsi1sk", gsi1.map(|g| g.1)),
        ("gsi2pk", suppression.map(|_| s(schema::domain_pk(record.target.domain())))),
        ("gsi2sk", suppression.map(|_| s(key.clone()))),
        (schema::TTL, ttl),
    ]
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_time(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    get_s(item, name)
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| StoreError::Malformed(format!("attribute {name} is not a timestamp")))
        })
        .transpose()
}

fn req_time(item: &Item, name: &str) -> Result<DateTime<Utc>, StoreError> {
    get_time(item, name)?.ok_or_else(|| StoreError::Malformed(format!("attribute {name} missing")))
}

fn get_n(item: &Item, name: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        None => Ok(0),
        Some(v) => v
            .as_n()
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Malformed(format!("attribute {name} is not a number"))),
    }
}

fn owned(item: &Item, name: &str) -> Option<String> {
    get_s(item, name).map(str::to_owned)
}

/// Reads a state item back into a record.
///
/// Fails with [`StoreError::Malformed`] when a required attribute is missing or mistyped.
pub fn record_from_item(item: &Item) -> Result<AddressRecord, StoreError> {
    let key = get_s(item, "address").ok_or_else(|| StoreError::Malformed("no address".into()))?;
    let target = SuppressionTarget::parse(key)
        .map_err(|e| StoreError::Malformed(format!("stored address does not parse: {e}")))?;
    let suppression = match get_s(item, "reason") {
        None => None,
        Some(reason) => {
            let reason = reason.parse().map_err(|e| StoreError::Malformed(format!("{e}")))?;
            let state = match get_s(item, "state") {
                Some("released") => SuppressionState::Released {
                    at: req_time(item, "released_at")?,
                    by: owned(item, "released_by").unwrap_or_default(),
                    why: owned(item, "release_note").unwrap_or_default(),
                },
                _ => SuppressionState::Active,
            };
            Some(Suppression {
                reason,
                since: req_time(item, "since")?,
                expires_at: get_time(item, "expires_at")?,
                state,
                provenance: Provenance {
                    feedback_id: owned(item, "feedback_id"),
                    ses_message_id: owned(item, "ses_message_id"),
                    bounce_type: owned(item, "bounce_type"),
                    bounce_sub_type: owned(item, "bounce_sub_type"),
                    diagnostic_code: owned(item, "diagnostic_code"),
                    source: owned(item, "decided_by").unwrap_or_default(),
                    note: owned(item, "note"),
                },
            })
        }
    };
    let recent_deliveries = match item.get("recent_deliveries") {
        Some(AttributeValue::L(list)) => {
            list.iter().filter_map(|v| v.as_s().ok().cloned()).collect()
        }
        _ => Vec::new(),
    };
    Ok(AddressRecord {
        target,
        suppression,
        first_seen: req_time(item, "first_seen")?,
        last_seen: req_time(item, "last_seen")?,
        soft_bounce_count: u32::try_from(get_n(item, "soft_bounce_count")?)
            .map_err(|_| StoreError::Malformed("soft_bounce_count out of range".into()))?,
        soft_window_start: get_time(item, "soft_window_start")?,
        last_soft_bounce_at: get_time(item, "last_soft_bounce_at")?,
        last_delivery_at: get_time(item, "last_delivery_at")?,
        recent_deliveries,
        version: get_n(item, "version")?,
    })
}

/// The history item for an entry under partition `pk`.
pub(crate) fn history_item(pk: String, entry: &HistoryEntry) -> Item {
    let mut item = Item::new();
    item.insert(schema::PK.into(), s(pk));
    item.insert(schema::SK.into(), s(schema::history_sk(&entry.idempotency_key)));
    item.insert("event_type".into(), s(entry.event_type.clone()));
    item.insert("at".into(), s(time(entry.at)));
    item.insert("outcome".into(), s(entry.outcome.clone()));
    let optional = [
        ("sub_type", &entry.sub_type),
        ("feedback_id", &entry.feedback_id),
        ("ses_message_id", &entry.ses_message_id),
        ("diagnostic_code", &entry.diagnostic_code),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            item.insert(name.into(), s(value.clone()));
        }
    }
    if let Some(expires) = entry.expires_at {
        item.insert(schema::TTL.into(), n(expires.timestamp()));
    }
    item
}

/// Reads a history item back.
///
/// Fails with [`StoreError::Malformed`] when a required attribute is missing.
pub fn history_from_item(item: &Item) -> Result<HistoryEntry, StoreError> {
    let sk = get_s(item, schema::SK).unwrap_or_default();
    let expires_at = match item.get(schema::TTL).and_then(|v| v.as_n().ok()) {
        Some(v) => v.parse::<i64>().ok().and_then(|secs| DateTime::from_timestamp(secs, 0)),
        None => None,
    };
    Ok(HistoryEntry {
        idempotency_key: sk.strip_prefix("EVT#").unwrap_or(sk).to_owned(),
        event_type: owned(item, "event_type").unwrap_or_default(),
        sub_type: owned(item, "sub_type"),
        at: req_time(item, "at")?,
        feedback_id: owned(item, "feedback_id"),
        ses_message_id: owned(item, "ses_message_id"),
        outcome: owned(item, "outcome").unwrap_or_default(),
        diagnostic_code: owned(item, "diagnostic_code"),
        expires_at,
    })
}
