//! This system itself: the feedback queue answers (and admits the topic), the dead-letter and
//! quarantine queues are empty, and the last Mailcow push of `sync-mailcow` succeeded.
//!
//! The push state is the `META` / `SYNC#mailcow` item that sync-mailcow writes (attributes
//! `last_result`, `last_error`, `last_push_at`, `last_attempt_at`, `auth_failed_at`,
//! `entries`); it is read here directly, without linking the function's crate.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{DateTime, Utc};

use super::{Finding, ago};
use crate::args::{DoctorArgs, GlobalArgs};
use crate::aws::describe_call;

async fn attributes(
    client: &aws_sdk_sqs::Client,
    url: &str,
) -> Result<HashMap<QueueAttributeName, String>, String> {
    client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .map(|out| out.attributes().cloned().unwrap_or_default())
        .map_err(|e| describe_call("sqs GetQueueAttributes", e))
}

fn count(attrs: &HashMap<QueueAttributeName, String>, name: QueueAttributeName) -> u64 {
    attrs.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

async fn feedback_queue(client: &aws_sdk_sqs::Client, args: &DoctorArgs) -> Finding {
    const ID: &str = "feedback-queue";
    let Some(url) = &args.queue_url else {
        return Finding::skip(ID, "pass --queue-url or set FEEDBACK_QUEUE_URL to check it");
    };
    let attrs = match attributes(client, url).await {
        Ok(attrs) => attrs,
        Err(e) => return Finding::fail(ID, format!("the feedback queue does not answer: {e}")),
    };
    let waiting = count(&attrs, QueueAttributeName::ApproximateNumberOfMessages);
    let in_flight = count(&attrs, QueueAttributeName::ApproximateNumberOfMessagesNotVisible);
    if let Some(topic) = &args.topic_arn {
        let policy = attrs.get(&QueueAttributeName::Policy).map(String::as_str).unwrap_or_default();
        if !policy.contains(topic.as_str()) {
            return Finding::fail(
                ID,
                format!(
                    "the queue policy does not admit {topic}: SNS cannot deliver feedback to it"
                ),
            );
        }
    }
    Finding::pass(ID, format!("answers; {waiting} waiting, {in_flight} in processing"))
}

async fn set_aside(
    client: &aws_sdk_sqs::Client,
    id: &str,
    url: Option<&str>,
    flag: &str,
    queue: &str,
) -> Finding {
    let Some(url) = url else { return Finding::skip(id, format!("pass {flag} to check it")) };
    let attrs = match attributes(client, url).await {
        Ok(attrs) => attrs,
        Err(e) => return Finding::fail(id, format!("the {id} queue does not answer: {e}")),
    };
    let total = count(&attrs, QueueAttributeName::ApproximateNumberOfMessages)
        + count(&attrs, QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        + count(&attrs, QueueAttributeName::ApproximateNumberOfMessagesDelayed);
    if total == 0 {
        return Finding::pass(id, "empty");
    }
    Finding::fail(
        id,
        format!(
            "{total} messages set aside: see why with `suppressions dlq list --queue {queue}`, \
             replay with `suppressions dlq redrive --from {queue}`"
        ),
    )
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn time(item: &HashMap<String, AttributeValue>, name: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text(item, name)?).ok().map(|t| t.with_timezone(&Utc))
}

fn when(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    at.map_or_else(
        || "never".to_owned(),
        |at| format!("{} ago ({})", ago(at, now), at.format("%Y-%m-%d %H:%M UTC")),
    )
}

async fn mailcow_push(config: &SdkConfig, global: &GlobalArgs, now: DateTime<Utc>) -> Finding {
    const ID: &str = "mailcow-push";
    let Some(table) = global.table.as_deref().filter(|t| !t.is_empty()) else {
        return Finding::skip(ID, "pass --table or set SUPPRESSION_TABLE to check it");
    };
    let out = aws_sdk_dynamodb::Client::new(config)
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S("META".into()))
        .key("sk", AttributeValue::S("SYNC#mailcow".into()))
        .consistent_read(true)
        .send()
        .await;
    let item = match out {
        Ok(out) => match out.item() {
            Some(item) => item.clone(),
            None => {
                return Finding::warn(
                    ID,
                    "no Mailcow push recorded yet: check that sync-mailcow runs (its schedule and \
                     the table stream)",
                );
            }
        },
        Err(e) => {
            let why = describe_call("dynamodb GetItem", e);
            return Finding::fail(ID, format!("could not read the sync state: {why}"));
        }
    };
    let last_push = time(&item, "last_push_at");
    if let Some(at) = time(&item, "auth_failed_at") {
        return Finding::fail(
            ID,
            format!(
                "Mailcow refused the API key {}: store a valid read-write key; last successful push {}",
                ago(at, now) + " ago",
                when(last_push, now)
            ),
        );
    }
    match text(&item, "last_result") {
        Some("success") => {
            let entries = item
                .get("entries")
                .and_then(|v| v.as_n().ok())
                .map_or(String::new(), |n| format!(", {n} entries"));
            Finding::pass(ID, format!("last push succeeded {}{entries}", when(last_push, now)))
        }
        Some("failed") => Finding::fail(
            ID,
            format!(
                "the last push attempt {} failed: {}; last successful push {}",
                when(time(&item, "last_attempt_at"), now),
                text(&item, "last_error").unwrap_or("no reason recorded"),
                when(last_push, now)
            ),
        ),
        other => Finding::warn(
            ID,
            format!(
                "the sync state says {:?}: no push result recorded",
                other.unwrap_or("nothing")
            ),
        ),
    }
}

/// The system findings, in the order they print.
pub async fn findings(
    config: &SdkConfig,
    global: &GlobalArgs,
    args: &DoctorArgs,
    now: DateTime<Utc>,
) -> Vec<Finding> {
    let sqs = aws_sdk_sqs::Client::new(config);
    vec![
        feedback_queue(&sqs, args).await,
        set_aside(&sqs, "dlq", args.dlq_url.as_deref(), "--dlq-url or set FEEDBACK_DLQ_URL", "dlq")
            .await,
        set_aside(
            &sqs,
            "quarantine",
            args.quarantine_url.as_deref(),
            "--quarantine-url or set QUARANTINE_QUEUE_URL",
            "quarantine",
        )
        .await,
        mailcow_push(config, global, now).await,
    ]
}
