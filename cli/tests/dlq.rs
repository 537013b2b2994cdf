//! Black-box tests of `dlq list` and `dlq redrive` against SQS queues in moto.

// Helpers outside #[test] functions unwrap too: a failed setup is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};
use common::Env;
use serde_json::json;

struct Queues {
    client: aws_sdk_sqs::Client,
    dlq: String,
    quarantine: String,
    feedback: String,
}

/// A bounce for `bounced@example.net`, as SES publishes it, inside an SNS envelope.
fn bounce_body() -> String {
    let ses = json!({
        "eventType": "Bounce",
        "mail": { "messageId": "0100-ses-msg-1", "destination": ["bounced@example.net"] },
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [{ "emailAddress": "bounced@example.net" }],
            "timestamp": "2026-11-01T12:00:00.000Z",
            "feedbackId": "fb-1"
        }
    });
    json!({ "Type": "Notification", "MessageId": "sns-1", "Message": ses.to_string() }).to_string()
}

async fn queues(env: &Env) -> Queues {
    let client = aws_sdk_sqs::Client::new(&env.sdk().await);
    let create = |name: String| {
        let client = client.clone();
        async move {
            client
                .create_queue()
                .queue_name(name)
                .send()
                .await
                .unwrap()
                .queue_url()
                .unwrap()
                .to_owned()
        }
    };
    let id = fastrand::u32(..);
    let queues = Queues {
        dlq: create(format!("dlq-{id}")).await,
        quarantine: create(format!("quarantine-{id}")).await,
        feedback: create(format!("feedback-{id}")).await,
        client,
    };
    queues
        .client
        .send_message()
        .queue_url(&queues.dlq)
        .message_body(bounce_body())
        .send()
        .await
        .unwrap();
    let attribute = |v: &str| {
        MessageAttributeValue::builder().data_type("String").string_value(v).build().unwrap()
    };
    queues
        .client
        .send_message()
        .queue_url(&queues.quarantine)
        .message_body("{\"not\": \"signed\"}")
        .message_attributes("reason", attribute("unsigned"))
        .message_attributes("detail", attribute("raw delivery body without an SNS signature"))
        .send()
        .await
        .unwrap();
    queues
}

async fn depth(queues: &Queues, url: &str) -> u64 {
    let out = queues
        .client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    out.attributes().unwrap().values().map(|v| v.parse::<u64>().unwrap()).sum()
}

fn with_queues(env: &Env, queues: &Queues) -> Env {
    let mut env = env.clone();
    env.vars.push(("FEEDBACK_DLQ_URL".into(), queues.dlq.clone()));
    env.vars.push(("QUARANTINE_QUEUE_URL".into(), queues.quarantine.clone()));
    env.vars.push(("FEEDBACK_QUEUE_URL".into(), queues.feedback.clone()));
    env
}

#[tokio::test]
async fn dlq_list_shows_why_without_addresses_and_leaves_the_messages() {
    let base = Env::new("dlq-list");
    let queues = queues(&base).await;
    let env = with_queues(&base, &queues);

    let run = env.run(&["dlq", "list", "--json"]).await.expect(0);

    let lines = run.json_lines();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    let dlq = lines.iter().find(|l| l["queue"] == "dlq").unwrap();
    assert_eq!(dlq["event_type"], "Bounce");
    assert_eq!(dlq["ses_message_id"], "0100-ses-msg-1");
    assert_eq!(dlq["recipient_count"], 1);
    assert!(dlq["receive_count"].as_u64().unwrap() >= 1);
    assert!(dlq["reason"].is_null());
    let quarantined = lines.iter().find(|l| l["queue"] == "quarantine").unwrap();
    assert_eq!(quarantined["reason"], "unsigned");
    assert_eq!(quarantined["detail"], "raw delivery body without an SNS signature");
    assert!(!run.stdout.contains("bounced@example.net"));
    let human = env.run(&["dlq", "list"]).await.expect(0);
    assert!(human.stdout.contains("unsigned: raw delivery body"), "{}", human.stdout);
    assert!(!human.stdout.contains("bounced@example.net"));
    let shown = env.run(&["dlq", "list", "--queue", "dlq", "--show-addresses"]).await.expect(0);
    assert!(shown.stdout.contains("bounced@example.net"), "{}", shown.stdout);
    assert_eq!(depth(&queues, &queues.dlq).await, 1);
    assert_eq!(depth(&queues, &queues.quarantine).await, 1);
}

#[tokio::test]
async fn dlq_redrive_is_a_dry_run_until_apply_then_moves_bodies_unchanged() {
    let base = Env::new("dlq-redrive");
    let queues = queues(&base).await;
    let env = with_queues(&base, &queues);

    let dry = env.run(&["dlq", "redrive"]).await.expect(0);
    assert!(dry.stderr.contains("dry run"), "{}", dry.stderr);
    assert_eq!(depth(&queues, &queues.feedback).await, 0);

    let moved = env.run(&["dlq", "redrive", "--apply"]).await.expect(0);
    assert!(moved.stdout.contains("moved 1 messages"), "{}", moved.stdout);
    let received = queues
        .client
        .receive_message()
        .queue_url(&queues.feedback)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    assert_eq!(received.messages().len(), 1);
    assert_eq!(received.messages()[0].body(), Some(bounce_body().as_str()));
    assert_eq!(depth(&queues, &queues.dlq).await, 0);
    assert_eq!(depth(&queues, &queues.quarantine).await, 1);
    env.run(&["dlq", "redrive", "--apply"]).await.expect(1);
}

#[tokio::test]
async fn dlq_without_queue_urls_says_which_flag_to_set() {
    let env = Env::new("dlq-missing");

    let run = env.run(&["dlq", "list", "--queue", "quarantine"]).await.expect(2);

    assert!(run.stderr.contains("--quarantine-url or set QUARANTINE_QUEUE_URL"), "{}", run.stderr);
}
