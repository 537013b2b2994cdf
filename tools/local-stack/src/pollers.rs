//! Event-source pollers as the Lambda service runs them: an SQS poller that invokes with the
//! SQS event JSON and deletes only the records not listed in `batchItemFailures`, a DynamoDB
//! stream poller that builds the stream event, applies the template's filter criteria and
//! retries from the failed sequence number (then gives up to the on-failure destination), and the
//! scheduled invocation (EventBridge event, failures to the function's dead-letter queue).
//!
//! Depends on the SQS and DynamoDB Streams SDKs and on [`crate::runtime`]. Logs carry ids and
//! counts, never a record body.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use base64::Engine;
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::runtime::LambdaFunction;

/// What the SQS poller did, for waiting and for the report.
#[derive(Debug, Default)]
pub struct SqsStats {
    /// Invocations made.
    pub batches: AtomicU64,
    /// Records received (each receive counts).
    pub received: AtomicU64,
    /// Records deleted after the function succeeded with them.
    pub deleted: AtomicU64,
    /// Records the function listed in `batchItemFailures` (left on the queue).
    pub reported_failed: AtomicU64,
    /// Invocations that failed as a whole (every record left on the queue).
    pub failed_invocations: AtomicU64,
    /// Calls to SQS that failed (the endpoint was unreachable or refused).
    pub sqs_errors: AtomicU64,
    /// True while a batch is being handled.
    pub busy: AtomicBool,
    /// SQS message id -> SNS `MessageId` of its body, for every record received.
    pub sns_ids: Mutex<HashMap<String, String>>,
}

/// A running SQS poller.
pub struct SqsPoller {
    /// What it did.
    pub stats: Arc<SqsStats>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

/// Where and how the SQS poller reads.
#[derive(Debug, Clone)]
pub struct SqsSourceConfig {
    /// Queue URL.
    pub url: String,
    /// Queue ARN (`eventSourceARN`).
    pub arn: String,
    /// Region (`awsRegion`).
    pub region: String,
    /// Records per invocation.
    pub batch_size: u32,
    /// Long-poll wait in seconds (the batching window, at least 1).
    pub wait_seconds: u32,
    /// Visibility timeout: deletions are tried until shortly before it ends.
    pub visibility_timeout: u32,
    /// Whether the function reports batch item failures.
    pub report_failures: bool,
}

impl SqsPoller {
    /// Starts polling `source` for `function`.
    pub fn start(
        sqs: aws_sdk_sqs::Client,
        source: SqsSourceConfig,
        function: Arc<LambdaFunction>,
    ) -> Self {
        let stats = Arc::new(SqsStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let task =
            tokio::spawn(sqs_loop(sqs, source, function, Arc::clone(&stats), Arc::clone(&stop)));
        Self { stats, stop, task }
    }

    /// Stops after the batch in hand (or after ten seconds, when AWS is gone).
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if tokio::time::timeout(Duration::from_secs(10), &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}

async fn sqs_loop(
    sqs: aws_sdk_sqs::Client,
    source: SqsSourceConfig,
    function: Arc<LambdaFunction>,
    stats: Arc<SqsStats>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        let received = sqs
            .receive_message()
            .queue_url(&source.url)
            .max_number_of_messages(i32::try_from(source.batch_size.clamp(1, 10)).unwrap_or(10))
            .wait_time_seconds(i32::try_from(source.wait_seconds.max(1)).unwrap_or(1))
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await;
        let received_at = Instant::now();
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                stats.sqs_errors.fetch_add(1, Ordering::Relaxed);
                debug!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "receive failed");
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        stats.busy.store(true, Ordering::SeqCst);
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.received.fetch_add(messages.len() as u64, Ordering::Relaxed);
        {
            let mut ids = stats.sns_ids.lock().unwrap_or_else(PoisonError::into_inner);
            for message in &messages {
                if let (Some(id), Some(sns)) = (&message.message_id, sns_message_id(message)) {
                    ids.insert(id.clone(), sns);
                }
            }
        }

        let event = sqs_event(&messages, &source);
        let delete: Vec<&Message> = match function.invoke(event).await {
            Ok(response) => {
                let failed = batch_item_failures(&response);
                if !source.report_failures && !failed.is_empty() {
                    warn!("batch item failures reported without ReportBatchItemFailures: ignored");
                }
                let failed: HashSet<String> =
                    if source.report_failures { failed } else { HashSet::new() };
                stats.reported_failed.fetch_add(failed.len() as u64, Ordering::Relaxed);
                messages
                    .iter()
                    .filter(|m| !m.message_id.as_ref().is_some_and(|id| failed.contains(id)))
                    .collect()
            }
            Err(e) => {
                // The whole batch comes back after the visibility timeout.
                stats.failed_invocations.fetch_add(1, Ordering::Relaxed);
                let records = messages.len();
                warn!(function = function.name(), error = %e, records, "invocation failed");
                Vec::new()
            }
        };
        // Lambda stops deleting when the visibility timeout ends, because another poller may
        // hold the message by then. This poller is the queue's only consumer, so the receipt
        // handles stay current until it receives again: it keeps trying a little longer, which
        // keeps an outage that outlasts the invocation from redelivering finished records.
        let visibility = Duration::from_secs(u64::from(source.visibility_timeout));
        let deadline = (received_at + visibility).max(Instant::now() + Duration::from_secs(15));
        let deleted = delete_until(&sqs, &source.url, &delete, deadline, &stats).await;
        stats.deleted.fetch_add(deleted, Ordering::Relaxed);
        stats.busy.store(false, Ordering::SeqCst);
    }
}

/// Deletes the messages, retrying the ones SQS could not delete (e.g. while unreachable) until
/// `deadline`; what is left then comes back after the visibility timeout.
async fn delete_until(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    messages: &[&Message],
    deadline: Instant,
    stats: &SqsStats,
) -> u64 {
    let mut left: Vec<(String, String)> = messages
        .iter()
        .enumerate()
        .filter_map(|(i, m)| m.receipt_handle.clone().map(|h| (i.to_string(), h)))
        .collect();
    let mut deleted = 0;
    while !left.is_empty() {
        let entries: Vec<DeleteMessageBatchRequestEntry> = left
            .iter()
            .filter_map(|(id, handle)| {
                DeleteMessageBatchRequestEntry::builder().id(id).receipt_handle(handle).build().ok()
            })
            .collect();
        match sqs.delete_message_batch().queue_url(url).set_entries(Some(entries)).send().await {
            Ok(out) => {
                let failed: HashSet<&str> = out.failed().iter().map(|f| f.id()).collect();
                deleted += (left.len() - failed.len()) as u64;
                left.retain(|(id, _)| failed.contains(id.as_str()));
            }
            Err(e) => {
                stats.sqs_errors.fetch_add(1, Ordering::Relaxed);
                debug!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "delete failed");
            }
        }
        if left.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if !left.is_empty() {
        warn!(records = left.len(), "records could not be deleted in time and will come back");
    }
    deleted
}

fn sns_message_id(message: &Message) -> Option<String> {
    let body: Value = serde_json::from_str(message.body.as_deref()?).ok()?;
    body.get("MessageId")?.as_str().map(str::to_owned)
}

/// The SQS event Lambda sends for a batch (the shape of `aws_lambda_events::sqs::SqsEvent`).
pub fn sqs_event(messages: &[Message], source: &SqsSourceConfig) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: Map<String, Value> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone())))
                        .collect()
                })
                .unwrap_or_default();
            let message_attributes: Map<String, Value> =
                m.message_attributes()
                    .map(|a| {
                        a.iter()
                        .map(|(k, v)| {
                            (k.clone(), json!({
                                "stringValue": v.string_value(),
                                "binaryValue": v.binary_value().map(|b| {
                                    base64::engine::general_purpose::STANDARD.encode(b.as_ref())
                                }),
                                "stringListValues": [],
                                "binaryListValues": [],
                                "dataType": v.data_type(),
                            }))
                        })
                        .collect()
                    })
                    .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": source.arn,
                "awsRegion": source.region,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The `itemIdentifier`s of a `{"batchItemFailures": [...]}` answer.
pub fn batch_item_failures(response: &Value) -> HashSet<String> {
    response
        .get("batchItemFailures")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.get("itemIdentifier")?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What the stream poller did.
#[derive(Debug, Default)]
pub struct StreamStats {
    /// Invocations made (retries included).
    pub invocations: AtomicU64,
    /// Batches that had to be retried.
    pub retries: AtomicU64,
    /// Batches given up and sent to the on-failure destination.
    pub given_up: AtomicU64,
    /// Stream records read.
    pub records: AtomicU64,
    /// Records dropped by the filter criteria.
    pub filtered_out: AtomicU64,
    /// Reads that found nothing new: each one means the poller had caught up at that moment.
    pub empty_reads: AtomicU64,
    /// Calls to the stream that failed.
    pub stream_errors: AtomicU64,
}

/// Where and how the stream poller reads.
#[derive(Debug, Clone)]
pub struct StreamSourceConfig {
    /// Stream ARN.
    pub stream_arn: String,
    /// Region.
    pub region: String,
    /// Records per invocation.
    pub batch_size: u32,
    /// Seconds to wait for a batch to fill.
    pub batching_window: u32,
    /// Retries of a failing batch before it is given up.
    pub max_retries: u32,
    /// Filter patterns; empty means every record.
    pub filters: Vec<Value>,
    /// On-failure destination queue URL.
    pub on_failure_url: Option<String>,
    /// Whether the function reports batch item failures.
    pub report_failures: bool,
}

/// A running stream poller.
pub struct StreamPoller {
    /// What it did.
    pub stats: Arc<StreamStats>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl StreamPoller {
    /// Starts reading the stream from its oldest record (TRIM_HORIZON).
    pub fn start(
        streams: aws_sdk_dynamodbstreams::Client,
        sqs: aws_sdk_sqs::Client,
        source: StreamSourceConfig,
        function: Arc<LambdaFunction>,
    ) -> Self {
        let stats = Arc::new(StreamStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(stream_loop(
            streams,
            sqs,
            source,
            function,
            Arc::clone(&stats),
            Arc::clone(&stop),
        ));
        Self { stats, stop, task }
    }

    /// Stops after the batch in hand (or after ten seconds, when AWS is gone).
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if tokio::time::timeout(Duration::from_secs(10), &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}

/// Where the stream poller is: the shard it reads and the last sequence number it handled.
#[derive(Debug, Default)]
struct Position {
    shard: Option<String>,
    after: Option<String>,
}

/// Reads the next records after the position, from a fresh iterator. Moves on to the child
/// shard once the current one is closed and read to its end.
async fn read_next(
    streams: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    position: &mut Position,
    limit: u32,
) -> Result<Vec<aws_sdk_dynamodbstreams::types::Record>, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let described = streams
        .describe_stream()
        .stream_arn(stream_arn)
        .send()
        .await
        .map_err(|e| err(&aws_sdk_dynamodbstreams::error::DisplayErrorContext(e)))?;
    let shards = described.stream_description().map(|d| d.shards()).unwrap_or_default();
    let current = match &position.shard {
        Some(id) => shards.iter().find(|s| s.shard_id() == Some(id.as_str())),
        None => shards.iter().find(|s| {
            s.parent_shard_id().is_none_or(|p| !shards.iter().any(|o| o.shard_id() == Some(p)))
        }),
    };
    let Some(current) = current else { return Err("the stream has no shard".to_owned()) };
    let shard = current.shard_id().unwrap_or_default().to_owned();
    position.shard = Some(shard.clone());
    let closed =
        current.sequence_number_range().is_some_and(|r| r.ending_sequence_number().is_some());
    let mut request = streams.get_shard_iterator().stream_arn(stream_arn).shard_id(&shard);
    request = match &position.after {
        Some(sequence) => request
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .sequence_number(sequence),
        None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
    };
    let iterator = request
        .send()
        .await
        .map_err(|e| err(&aws_sdk_dynamodbstreams::error::DisplayErrorContext(e)))?
        .shard_iterator
        .ok_or("no shard iterator")?;
    let out = streams
        .get_records()
        .shard_iterator(iterator)
        .limit(i32::try_from(limit).unwrap_or(100))
        .send()
        .await
        .map_err(|e| err(&aws_sdk_dynamodbstreams::error::DisplayErrorContext(e)))?;
    let records = out.records.unwrap_or_default();
    if records.is_empty()
        && closed
        && let Some(child) = shards.iter().find(|s| s.parent_shard_id() == Some(shard.as_str()))
    {
        position.shard = child.shard_id().map(str::to_owned);
        position.after = None;
    }
    Ok(records)
}

async fn stream_loop(
    streams: aws_sdk_dynamodbstreams::Client,
    sqs: aws_sdk_sqs::Client,
    source: StreamSourceConfig,
    function: Arc<LambdaFunction>,
    stats: Arc<StreamStats>,
    stop: Arc<AtomicBool>,
) {
    let mut position = Position::default();
    let mut filling = false;
    while !stop.load(Ordering::SeqCst) {
        // A fresh iterator from the checkpoint for every read, as Lambda resumes from its
        // checkpoint; it also keeps working where an emulator replaces a shard object.
        let records =
            match read_next(&streams, &source.stream_arn, &mut position, source.batch_size).await {
                Ok(records) => records,
                Err(e) => {
                    stats.stream_errors.fetch_add(1, Ordering::Relaxed);
                    debug!(error = %e, "stream read failed");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    continue;
                }
            };
        if records.is_empty() {
            stats.empty_reads.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        // The batching window: a short batch waits once for more records.
        if !filling && source.batching_window > 0 && (records.len() as u32) < source.batch_size {
            filling = true;
            tokio::time::sleep(Duration::from_secs(u64::from(source.batching_window))).await;
            continue;
        }
        filling = false;
        stats.records.fetch_add(records.len() as u64, Ordering::Relaxed);
        let last = records.last().and_then(|r| r.dynamodb()).and_then(|d| d.sequence_number());
        let last = last.map(str::to_owned);
        let events: Vec<Value> =
            records.iter().map(|r| stream_record(r, &source.stream_arn)).collect();
        let kept: Vec<Value> = events
            .into_iter()
            .filter(|e| source.filters.is_empty() || source.filters.iter().any(|f| matches(f, e)))
            .collect();
        stats.filtered_out.fetch_add((records.len() - kept.len()) as u64, Ordering::Relaxed);
        if !kept.is_empty() {
            deliver(&sqs, &source, &function, &stats, kept).await;
        }
        if last.is_some() {
            position.after = last;
        }
    }
}

/// Invokes until the batch succeeds or the retries are used up.
async fn deliver(
    sqs: &aws_sdk_sqs::Client,
    source: &StreamSourceConfig,
    function: &LambdaFunction,
    stats: &StreamStats,
    mut batch: Vec<Value>,
) {
    let mut attempts = 0u32;
    loop {
        stats.invocations.fetch_add(1, Ordering::Relaxed);
        let result = function.invoke(json!({ "Records": batch })).await;
        let retry_from = match result {
            Ok(response) if source.report_failures => {
                let failed = batch_item_failures(&response);
                // The lowest failed sequence number: everything from it on is retried.
                batch
                    .iter()
                    .position(|r| {
                        r.pointer("/dynamodb/SequenceNumber")
                            .and_then(Value::as_str)
                            .is_some_and(|s| failed.contains(s))
                    })
                    .or(if failed.is_empty() { None } else { Some(0) })
            }
            Ok(_) => None,
            Err(e) => {
                warn!(function = function.name(), error = %e, "stream invocation failed");
                Some(0)
            }
        };
        let Some(from) = retry_from else { return };
        batch.drain(..from);
        attempts += 1;
        if attempts > source.max_retries {
            give_up(sqs, source, function, stats, &batch, attempts).await;
            return;
        }
        stats.retries.fetch_add(1, Ordering::Relaxed);
        let backoff = Duration::from_millis(500 * u64::from(attempts.min(4)));
        info!(function = function.name(), attempts, records = batch.len(), "stream batch retried");
        tokio::time::sleep(backoff).await;
    }
}

async fn give_up(
    sqs: &aws_sdk_sqs::Client,
    source: &StreamSourceConfig,
    function: &LambdaFunction,
    stats: &StreamStats,
    batch: &[Value],
    attempts: u32,
) {
    stats.given_up.fetch_add(1, Ordering::Relaxed);
    let sequence = |r: Option<&Value>| {
        r.and_then(|r| r.pointer("/dynamodb/SequenceNumber")).cloned().unwrap_or(Value::Null)
    };
    let note = json!({
        "requestContext": {
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": attempts,
            "functionArn": function.name(),
        },
        "version": "1.0",
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "DDBStreamBatchInfo": {
            "startSequenceNumber": sequence(batch.first()),
            "endSequenceNumber": sequence(batch.last()),
            "batchSize": batch.len(),
            "streamArn": source.stream_arn,
        }
    });
    warn!(function = function.name(), records = batch.len(), "stream batch given up");
    let Some(url) = &source.on_failure_url else { return };
    for _ in 0..20 {
        match sqs.send_message().queue_url(url).message_body(note.to_string()).send().await {
            Ok(_) => return,
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    warn!(function = function.name(), "the on-failure destination refused the note 20 times");
}

/// One stream record as Lambda delivers it (the shape of `aws_lambda_events::dynamodb`).
pub fn stream_record(record: &aws_sdk_dynamodbstreams::types::Record, stream_arn: &str) -> Value {
    let image = |item: Option<&HashMap<String, AttributeValue>>| -> Option<Value> {
        item.map(|i| Value::Object(i.iter().map(|(k, v)| (k.clone(), attribute(v))).collect()))
    };
    let change = record.dynamodb();
    let mut dynamodb = Map::new();
    if let Some(change) = change {
        if let Some(at) = change.approximate_creation_date_time() {
            dynamodb.insert("ApproximateCreationDateTime".into(), json!(at.secs()));
        }
        dynamodb.insert("Keys".into(), image(change.keys()).unwrap_or(json!({})));
        if let Some(new) = image(change.new_image()) {
            dynamodb.insert("NewImage".into(), new);
        }
        if let Some(old) = image(change.old_image()) {
            dynamodb.insert("OldImage".into(), old);
        }
        dynamodb.insert("SequenceNumber".into(), json!(change.sequence_number()));
        dynamodb.insert("SizeBytes".into(), json!(change.size_bytes()));
        dynamodb.insert(
            "StreamViewType".into(),
            json!(change.stream_view_type().map(|v| v.as_str().to_owned())),
        );
    }
    json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str().to_owned()),
        "eventVersion": record.event_version().unwrap_or("1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.aws_region(),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    })
}

fn attribute(value: &AttributeValue) -> Value {
    let b64 = |b: &aws_sdk_dynamodbstreams::primitives::Blob| {
        base64::engine::general_purpose::STANDARD.encode(b.as_ref())
    };
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(n) => json!({ "NULL": n }),
        AttributeValue::Ss(v) => json!({ "SS": v }),
        AttributeValue::Ns(v) => json!({ "NS": v }),
        AttributeValue::B(b) => json!({ "B": b64(b) }),
        AttributeValue::Bs(v) => json!({ "BS": v.iter().map(b64).collect::<Vec<_>>() }),
        AttributeValue::L(items) => json!({ "L": items.iter().map(attribute).collect::<Vec<_>>() }),
        AttributeValue::M(map) => {
            let fields: Map<_, _> = map.iter().map(|(k, v)| (k.clone(), attribute(v))).collect();
            json!({ "M": fields })
        }
        _ => Value::Null,
    }
}

/// Lambda's event filtering, for the exact-value patterns the template uses: every key of the
/// pattern must be present, and a list of values matches when the record's value is one of them.
pub fn matches(pattern: &Value, value: &Value) -> bool {
    match pattern {
        Value::Object(fields) => {
            fields.iter().all(|(k, p)| value.get(k).is_some_and(|v| matches(p, v)))
        }
        Value::Array(allowed) => allowed.iter().any(|a| a == value),
        other => other == value,
    }
}

/// The EventBridge event a schedule rule sends.
pub fn scheduled_event(region: &str, rule: &str) -> Value {
    let now = chrono::Utc::now();
    json!({
        "version": "0",
        "id": format!("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", fastrand::u32(..), fastrand::u16(..),
            fastrand::u16(..), fastrand::u16(..), fastrand::u64(..1 << 48)),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": crate::template::ACCOUNT_ID,
        "time": now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": region,
        "resources": [
            format!("arn:aws:events:{region}:{}:rule/{rule}", crate::template::ACCOUNT_ID)
        ],
        "detail": {}
    })
}

/// Runs one scheduled (asynchronous) invocation. A failure that outlasts `retries` goes to the
/// dead-letter queue as Lambda sends it: the event as the body, the error in attributes.
/// Returns whether the function succeeded.
pub async fn invoke_scheduled(
    function: &LambdaFunction,
    sqs: &aws_sdk_sqs::Client,
    dead_letter_url: Option<&str>,
    event: Value,
    retries: u32,
) -> bool {
    let mut last_error = None;
    for _ in 0..=retries {
        match function.invoke(event.clone()).await {
            Ok(_) => return true,
            Err(e) => last_error = Some(e),
        }
    }
    let error = last_error.map(|e| e.to_string()).unwrap_or_default();
    warn!(function = function.name(), error = %error, "scheduled invocation failed");
    if let Some(url) = dead_letter_url {
        let attribute = |v: &str| {
            aws_sdk_sqs::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .ok()
        };
        for _ in 0..20 {
            let sent = sqs
                .send_message()
                .queue_url(url)
                .message_body(event.to_string())
                .set_message_attributes(Some(
                    [("ErrorCode", "200"), ("ErrorMessage", error.as_str())]
                        .into_iter()
                        .filter_map(|(k, v)| attribute(v).map(|a| (k.to_owned(), a)))
                        .collect(),
                ))
                .send()
                .await;
            if sent.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_template_filter_keeps_only_state_items() {
        let pattern: Value =
            serde_json::from_str(r#"{"dynamodb": {"Keys": {"sk": {"S": ["STATE"]}}}}"#).unwrap();
        let record = |sk: &str| {
            let keys = json!({"pk": {"S": "ADDR#a@example.com"}, "sk": {"S": sk}});
            json!({"eventName": "INSERT", "dynamodb": {"Keys": keys}})
        };
        assert!(matches(&pattern, &record("STATE")));
        assert!(!matches(&pattern, &record("EVT#feedback:1")));
        assert!(!matches(&pattern, &json!({"dynamodb": {}})));
    }

    #[test]
    fn stream_records_have_the_shape_the_sync_function_parses() {
        let record = aws_sdk_dynamodbstreams::types::Record::builder()
            .event_id("1")
            .event_name(aws_sdk_dynamodbstreams::types::OperationType::Insert)
            .aws_region("eu-central-1")
            .dynamodb(
                aws_sdk_dynamodbstreams::types::StreamRecord::builder()
                    .keys("pk", AttributeValue::S("ADDR#a@example.com".into()))
                    .keys("sk", AttributeValue::S("STATE".into()))
                    .new_image("version", AttributeValue::N("1".into()))
                    .new_image("recent", AttributeValue::L(vec![AttributeValue::S("m".into())]))
                    .sequence_number("100")
                    .size_bytes(10)
                    .stream_view_type(
                        aws_sdk_dynamodbstreams::types::StreamViewType::NewAndOldImages,
                    )
                    .build(),
            )
            .build();
        let event =
            json!({"Records": [stream_record(&record, "arn:aws:dynamodb:x:1:table/t/stream/s")]});
        let parsed: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_value(event).unwrap();
        assert_eq!(parsed.records[0].change.sequence_number.as_deref(), Some("100"));
        assert_eq!(parsed.records[0].event_name, "INSERT");
    }

    #[test]
    fn sqs_events_have_the_shape_lambda_sends() {
        let message = Message::builder()
            .message_id("m-1")
            .receipt_handle("r-1")
            .body("{\"Type\":\"Notification\",\"MessageId\":\"sns-1\"}")
            .md5_of_body("x")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .build();
        let source = SqsSourceConfig {
            url: "http://q".into(),
            arn: "arn:aws:sqs:eu-central-1:123456789012:q".into(),
            region: "eu-central-1".into(),
            batch_size: 10,
            wait_seconds: 1,
            visibility_timeout: 6,
            report_failures: true,
        };
        let parsed: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_value(sqs_event(std::slice::from_ref(&message), &source)).unwrap();
        assert_eq!(parsed.records[0].message_id.as_deref(), Some("m-1"));
        assert_eq!(parsed.records[0].attributes["ApproximateReceiveCount"], "2");
        assert_eq!(parsed.records[0].event_source_arn.as_deref(), Some(source.arn.as_str()));
        assert_eq!(sns_message_id(&message).as_deref(), Some("sns-1"));
        let failures =
            batch_item_failures(&json!({"batchItemFailures": [{"itemIdentifier": "m-1"}]}));
        assert!(failures.contains("m-1"));
    }
}
