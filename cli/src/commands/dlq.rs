//! `dlq list` and `dlq redrive`: the messages set aside by the feedback path. The dead-letter
//! queue holds records the function failed on repeatedly (SQS moved them; they carry no note,
//! so their receive count and age tell the story); the quarantine queue holds records the
//! function refused, with message attributes `reason` and `detail`.
//!
//! Listing receives messages and makes them visible again at once; nothing is deleted. Redrive
//! sends each body unchanged to the feedback queue and deletes the original only after the send
//! succeeded. Addresses in the bodies are shown only with `--show-addresses`.

use std::collections::HashSet;
use std::io::Write;

use anyhow::{Context as _, bail};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Ctx, Status};
use crate::args::{DlqArgs, DlqCommand, Format, QueueChoice};
use crate::aws::{self, AwsCallError};
use crate::output::{Paint, Table, one_line, short};

/// How long a received message stays hidden while the tool looks at it or moves it.
const HIDE_SECONDS: i32 = 60;

/// What the tool shows about one set-aside message.
#[derive(Debug, Clone, PartialEq)]
struct Summary {
    queue: &'static str,
    message_id: String,
    sent_at: Option<DateTime<Utc>>,
    receives: Option<u64>,
    reason: Option<String>,
    detail: Option<String>,
    event: Option<String>,
    ses_message_id: Option<String>,
    recipients: Vec<String>,
    bytes: usize,
}

fn attribute(message: &Message, name: &str) -> Option<String> {
    message.message_attributes()?.get(name)?.string_value().map(str::to_owned)
}

fn system(message: &Message, name: MessageSystemAttributeName) -> Option<&str> {
    message.attributes()?.get(&name).map(String::as_str)
}

/// Reads what the body says without trusting it: an SNS envelope around SES JSON, or SES JSON
/// itself (raw delivery). Anything else yields nothing.
fn describe_body(body: &str) -> (Option<String>, Option<String>, Vec<String>) {
    let Ok(outer) = serde_json::from_str::<Value>(body) else { return (None, None, Vec::new()) };
    let inner = match outer.get("Message").and_then(Value::as_str) {
        Some(message) => serde_json::from_str::<Value>(message).unwrap_or(Value::Null),
        None => outer,
    };
    let event = inner
        .get("eventType")
        .or_else(|| inner.get("notificationType"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let ses_id = inner.pointer("/mail/messageId").and_then(Value::as_str).map(str::to_owned);
    let mut recipients = Vec::new();
    let lists = [
        ("/bounce/bouncedRecipients", Some("emailAddress")),
        ("/complaint/complainedRecipients", Some("emailAddress")),
        ("/delivery/recipients", None),
    ];
    for (pointer, field) in lists {
        for entry in inner.pointer(pointer).and_then(Value::as_array).into_iter().flatten() {
            let address = match field {
                Some(field) => entry.get(field).and_then(Value::as_str),
                None => entry.as_str(),
            };
            recipients.extend(address.map(str::to_owned));
        }
    }
    (event, ses_id, recipients)
}

fn summarise(queue: &'static str, message: &Message) -> Summary {
    let body = message.body().unwrap_or_default();
    let (event, ses_message_id, recipients) = describe_body(body);
    let sent_at = system(message, MessageSystemAttributeName::SentTimestamp)
        .and_then(|ms| ms.parse::<i64>().ok())
        .and_then(DateTime::from_timestamp_millis);
    Summary {
        queue,
        message_id: message.message_id().unwrap_or_default().to_owned(),
        sent_at,
        receives: system(message, MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|n| n.parse().ok()),
        reason: attribute(message, "reason"),
        detail: attribute(message, "detail"),
        event,
        ses_message_id,
        recipients,
        bytes: body.len(),
    }
}

fn age(sent_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(sent) = sent_at else { return "-".to_owned() };
    let minutes = (now - sent).num_minutes().max(0);
    match minutes {
        m if m < 60 => format!("{m}m"),
        m if m < 48 * 60 => format!("{}h", m / 60),
        m => format!("{}d", m / (24 * 60)),
    }
}

/// Receives messages of a queue until it answers empty or `max` distinct messages were seen.
/// The messages stay hidden for [`HIDE_SECONDS`] unless the caller makes them visible again.
async fn receive_all(client: &Client, url: &str, max: usize) -> anyhow::Result<Vec<Message>> {
    let mut seen = HashSet::new();
    let mut messages = Vec::new();
    while messages.len() < max {
        let batch = i32::try_from((max - messages.len()).min(10)).unwrap_or(10);
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(batch)
            .visibility_timeout(HIDE_SECONDS)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| AwsCallError::new("sqs ReceiveMessage", e))?;
        let received = out.messages();
        if received.is_empty() {
            break;
        }
        for message in received {
            if seen.insert(message.message_id().unwrap_or_default().to_owned()) {
                messages.push(message.clone());
            }
        }
    }
    Ok(messages)
}

/// Makes received messages visible again, so that a look changes nothing.
async fn release_all(client: &Client, url: &str, messages: &[Message]) -> anyhow::Result<()> {
    for chunk in messages.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle()?)
                    .visibility_timeout(0)
                    .build()
                    .ok()
            })
            .collect();
        client
            .change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| AwsCallError::new("sqs ChangeMessageVisibilityBatch", e))?;
    }
    Ok(())
}

fn queues(args: &DlqArgs, choice: QueueChoice) -> anyhow::Result<Vec<(&'static str, &str)>> {
    let dlq = || {
        args.dlq_url
            .as_deref()
            .context("no dead-letter queue given: pass --dlq-url or set FEEDBACK_DLQ_URL")
    };
    let quarantine = || {
        args.quarantine_url
            .as_deref()
            .context("no quarantine queue given: pass --quarantine-url or set QUARANTINE_QUEUE_URL")
    };
    Ok(match choice {
        QueueChoice::Dlq => vec![("dlq", dlq()?)],
        QueueChoice::Quarantine => vec![("quarantine", quarantine()?)],
        QueueChoice::Both => vec![("dlq", dlq()?), ("quarantine", quarantine()?)],
    })
}

fn print(ctx: &Ctx, summaries: &[Summary], show_addresses: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if ctx.format == Format::Json {
        for s in summaries {
            let mut line = json!({
                "queue": s.queue,
                "message_id": s.message_id,
                "sent_at": s.sent_at.map(crate::output::exact),
                "receive_count": s.receives,
                "reason": s.reason,
                "detail": s.detail,
                "event_type": s.event,
                "ses_message_id": s.ses_message_id,
                "recipient_count": s.recipients.len(),
                "bytes": s.bytes,
            });
            if show_addresses {
                line["recipients"] = json!(s.recipients);
            }
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    let mut header = vec!["QUEUE", "MESSAGE ID", "SENT", "AGE", "RECEIVES", "WHY", "EVENT"];
    header.push(if show_addresses { "RECIPIENTS" } else { "RCPTS" });
    let mut table = Table::new(&header, &ctx.style);
    for s in summaries {
        let why = match (&s.reason, &s.detail) {
            (Some(r), Some(d)) => format!("{r}: {}", one_line(d, 50)),
            (Some(r), None) => r.clone(),
            _ => ctx.style.paint("failed processing", Paint::Dim),
        };
        let event = match (&s.event, &s.ses_message_id) {
            (Some(e), Some(id)) => format!("{e} {}", one_line(id, 24)),
            (Some(e), None) => e.clone(),
            _ => format!("unreadable body, {} bytes", s.bytes),
        };
        let recipients =
            if show_addresses { s.recipients.join(" ") } else { s.recipients.len().to_string() };
        table.row(vec![
            s.queue.to_owned(),
            s.message_id.clone(),
            s.sent_at.map_or_else(|| "-".to_owned(), short),
            age(s.sent_at, ctx.now),
            s.receives.map_or_else(|| "-".to_owned(), |n| n.to_string()),
            why,
            event,
            recipients,
        ]);
    }
    table.write(&mut out)?;
    Ok(())
}

/// Runs `dlq list` or `dlq redrive`; exit 1 when the queues are empty.
///
/// Fails when a queue URL is missing or an SQS call fails.
pub async fn run(ctx: &Ctx, args: &DlqArgs) -> anyhow::Result<Status> {
    let config = aws::sdk_config(&ctx.global).await?;
    let client = Client::new(&config);
    match &args.command {
        DlqCommand::List { queue, max, show_addresses } => {
            let mut summaries = Vec::new();
            for (name, url) in queues(args, *queue)? {
                let messages = receive_all(&client, url, *max).await?;
                release_all(&client, url, &messages).await?;
                summaries.extend(messages.iter().map(|m| summarise(name, m)));
            }
            if summaries.is_empty() {
                eprintln!("no messages waiting");
                return Ok(Status::NothingMatched);
            }
            print(ctx, &summaries, *show_addresses)?;
            Ok(Status::Done)
        }
        DlqCommand::Redrive { queue, max, apply, show_addresses } => {
            if *queue == QueueChoice::Both {
                bail!("redrive one queue at a time: --from dlq or --from quarantine");
            }
            let target = args
                .queue_url
                .as_deref()
                .context("no feedback queue given: pass --queue-url or set FEEDBACK_QUEUE_URL")?;
            let [(name, url)] = queues(args, *queue)?[..] else {
                bail!("exactly one source queue expected");
            };
            if !apply {
                let messages = receive_all(&client, url, *max).await?;
                release_all(&client, url, &messages).await?;
                if messages.is_empty() {
                    eprintln!("no messages waiting in the {name} queue");
                    return Ok(Status::NothingMatched);
                }
                let summaries: Vec<_> = messages.iter().map(|m| summarise(name, m)).collect();
                print(ctx, &summaries, *show_addresses)?;
                eprintln!(
                    "dry run: {} messages would go back to the feedback queue; run again with \
                     --apply to move them",
                    summaries.len()
                );
                return Ok(Status::Done);
            }
            let moved = redrive(&client, url, target, *max).await?;
            if moved == 0 {
                eprintln!("no messages waiting in the {name} queue");
                return Ok(Status::NothingMatched);
            }
            let mut out = std::io::stdout().lock();
            match ctx.format {
                Format::Json => writeln!(out, "{}", json!({ "queue": name, "moved": moved }))?,
                _ => writeln!(
                    out,
                    "moved {moved} messages from the {name} queue to the feedback queue"
                )?,
            }
            Ok(Status::Done)
        }
    }
}

/// Moves up to `max` messages: send the body unchanged, then delete the original. A message
/// whose send fails stays in its queue (visible again after [`HIDE_SECONDS`]).
async fn redrive(client: &Client, from: &str, to: &str, max: usize) -> anyhow::Result<usize> {
    let mut moved = 0;
    let mut done: HashSet<String> = HashSet::new();
    while moved < max {
        let batch = receive_all(client, from, (max - moved).min(10)).await?;
        if batch.is_empty() {
            break;
        }
        for message in batch {
            let id = message.message_id().unwrap_or_default().to_owned();
            if done.contains(&id) {
                continue;
            }
            client
                .send_message()
                .queue_url(to)
                .message_body(message.body().unwrap_or_default())
                .send()
                .await
                .map_err(|e| AwsCallError::new("sqs SendMessage", e))
                .with_context(|| format!("message {id} was not moved; {moved} moved so far"))?;
            if let Some(handle) = message.receipt_handle() {
                client
                    .delete_message()
                    .queue_url(from)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|e| AwsCallError::new("sqs DeleteMessage", e))
                    .with_context(|| {
                        format!("message {id} was sent but not deleted: it may be replayed twice")
                    })?;
            }
            done.insert(id);
            moved += 1;
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_read_through_the_sns_envelope_or_raw() {
        let ses = r#"{"eventType":"Bounce","mail":{"messageId":"m-1"},
            "bounce":{"bouncedRecipients":[{"emailAddress":"a@example.com"}]}}"#;
        let envelope = json!({ "Type": "Notification", "Message": ses }).to_string();
        let (event, id, rcpts) = describe_body(&envelope);
        assert_eq!(event.as_deref(), Some("Bounce"));
        assert_eq!(id.as_deref(), Some("m-1"));
        assert_eq!(rcpts, ["a@example.com"]);
        let raw = r#"{"notificationType":"Delivery","delivery":{"recipients":["b@example.com"]}}"#;
        assert_eq!(describe_body(raw).2, ["b@example.com"]);
        assert_eq!(describe_body("not json"), (None, None, Vec::new()));
    }
}
