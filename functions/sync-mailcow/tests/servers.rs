//! The handler with its real adapters against real servers: the table on moto
//! (`MOTO_ENDPOINT`) and on DynamoDB Local (`DYNAMODB_LOCAL_ENDPOINT`), the Mailcow simulator and
//! the SESv2 simulator. Every scenario runs on both table servers, each on a table of its own.

// Scenarios are plain async fns run on both servers; unwrap is their assertion (clippy.toml
// allows it only inside `#[test]` functions).
#![allow(clippy::unwrap_used)]

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, Utc};
use feedback_domain::SuppressionReason;
use feedback_domain::policy::{self, Policy, RecipientEvent, RecipientEventKind};
use feedback_domain::ports::{CommitOutcome, EventWrite, SuppressionStore, WriteScope};
use feedback_domain::{EmailAddress, SuppressionTarget};
use simulators::mailcow::{Fault, FaultSpec};
use simulators::sesv2::Reason;
use sync_mailcow::MailcowMode;

use common::*;

async fn a_suppression_is_blocked_by_mailcow_and_listed_in_ses(var: &str) {
    let w = world(var).await;
    let bounced = unique("bounced");
    let annoyed = unique("annoyed");
    let now = Utc::now();
    hard_bounce(&w.store, &bounced, now).await;
    suppress(&w.store, &annoyed, SuppressionReason::Complaint, None, now).await;
    suppress(&w.store, "*@blocked.example", SuppressionReason::Manual, None, now).await;
    assert!(!w.mailcow.state.would_reject(&bounced));

    let response = w.handler.handle_event(stream_event(&[&bounced]), now, far()).await.unwrap();

    assert!(failures(&response).is_empty(), "{response}");
    let map = w.mailcow.state.denylist_map();
    assert!(map.starts_with("# managed by mailcow-ses-feedback"), "{map}");
    assert!(w.mailcow.state.would_reject(&bounced));
    assert!(w.mailcow.state.would_reject(&annoyed));
    assert!(w.mailcow.state.would_reject("anyone@blocked.example"));
    assert!(!w.mailcow.state.would_reject("innocent@example.com"));
    assert_eq!(w.ses.entry(&bounced).unwrap().reason, Reason::Bounce);
    assert_eq!(w.ses.entry(&annoyed).unwrap().reason, Reason::Complaint);
    assert_eq!(w.ses.entries().len(), 2, "domains are not sent to SES");
    assert!(ses_listed(&w.store, &bounced).await);
    assert!(ses_listed(&w.store, &annoyed).await);
    let sync = sync_item(&w.store).await;
    assert_eq!(sync["last_result"], AttributeValue::S("success".into()));
    assert_eq!(sync["version"], AttributeValue::N("1".into()));
    assert!(sync["last_hash"].as_s().unwrap().starts_with("map:"));
}

async fn release_and_expiry_unblock_the_address_and_delete_the_ses_entry(var: &str) {
    let w = world(var).await;
    let released = unique("released");
    let soft = unique("soft");
    let now = Utc::now();
    let ends = now + Duration::hours(1);
    hard_bounce(&w.store, &released, now).await;
    suppress(&w.store, &soft, SuppressionReason::SoftBounce, Some(ends), now).await;
    w.handler.handle_event(scheduled_event(), now, far()).await.unwrap();
    assert!(w.mailcow.state.would_reject(&released) && w.mailcow.state.would_reject(&soft));
    assert_eq!(w.ses.entries().len(), 2);

    release(&w.store, &released, now + Duration::minutes(5)).await;
    let later = ends + Duration::minutes(1);
    let response = w.handler.handle_event(stream_event(&[&released]), later, far()).await.unwrap();

    assert!(failures(&response).is_empty(), "{response}");
    assert!(!w.mailcow.state.would_reject(&released));
    assert!(!w.mailcow.state.would_reject(&soft), "expired before TTL deleted it");
    assert!(w.ses.entries().is_empty(), "{:?}", w.ses.entries());
    assert!(!ses_listed(&w.store, &released).await);
    assert!(!ses_listed(&w.store, &soft).await);
    assert!(state_item(&w.store, &soft).await.is_some(), "the item itself is TTL's business");
}

async fn an_unchanged_table_is_not_pushed_again(var: &str) {
    let w = world(var).await;
    let bounced = unique("steady");
    let now = Utc::now();
    hard_bounce(&w.store, &bounced, now).await;
    w.handler.handle_event(stream_event(&[&bounced]), now, far()).await.unwrap();
    let (requests, ses_requests) = (w.mailcow.state.total_requests(), w.ses.stats().requests);

    // The ses_listed write made a stream record of its own: its invocation finds nothing to do.
    let echo = w.handler.handle_event(stream_event(&[&bounced]), now, far()).await.unwrap();

    assert!(failures(&echo).is_empty());
    assert_eq!(w.mailcow.state.total_requests(), requests);
    assert_eq!(w.ses.stats().requests, ses_requests);
    assert_eq!(sync_item(&w.store).await["version"], AttributeValue::N("1".into()));
}

async fn mailcow_faults_fail_the_batch_and_the_next_run_converges(var: &str) {
    let w = world(var).await;
    let now = Utc::now();
    let faults = [Fault::ServerError, Fault::Slow { millis: 1500 }, Fault::Danger];
    for fault in faults {
        let address = unique("during-fault");
        hard_bounce(&w.store, &address, now).await;
        w.mailcow.state.set_fault(FaultSpec::always(fault));

        let failed = w.handler.handle_event(stream_event(&[&address]), now, far()).await.unwrap();

        assert_eq!(failures(&failed), vec!["100"], "{fault:?}");
        if !matches!(fault, Fault::Slow { .. }) {
            // A slow request may still complete after the client gave up, so only the others
            // are known to have changed nothing.
            assert!(!w.mailcow.state.would_reject(&address), "{fault:?}");
        }
        let sync = sync_item(&w.store).await;
        assert_eq!(sync["last_result"], AttributeValue::S("failed".into()), "{fault:?}");
        assert!(!sync.contains_key("last_hash"), "{fault:?}");

        w.mailcow.state.clear_fault();
        let retried = w.handler.handle_event(stream_event(&[&address]), now, far()).await.unwrap();

        assert!(failures(&retried).is_empty(), "{fault:?}");
        assert!(w.mailcow.state.would_reject(&address), "{fault:?}");
    }
}

async fn an_auth_failure_is_tried_once_and_then_left_alone(var: &str) {
    let w = world_with(var, MailcowMode::Map, "WRONG-KEY-0001").await;
    let address = unique("blocked-by-auth");
    let now = Utc::now();
    hard_bounce(&w.store, &address, now).await;

    let refused = w.handler.handle_event(stream_event(&[&address]), now, far()).await.unwrap();

    assert_eq!(failures(&refused).len(), 1);
    assert_eq!(w.mailcow.state.total_requests(), 1, "a 401 is not retried");
    let sync = sync_item(&w.store).await;
    assert!(sync.contains_key("auth_failed_at"));
    assert!(sync["last_error"].as_s().unwrap().contains("MAILCOW_API_KEY_SECRET"));

    let soon = now + Duration::minutes(2);
    let skipped = w.handler.handle_event(stream_event(&[&address]), soon, far()).await.unwrap();

    assert_eq!(failures(&skipped).len(), 1, "still failing until the key is fixed");
    assert_eq!(w.mailcow.state.total_requests(), 1, "no request within the backoff");
    assert_eq!(w.mailcow.state.auth_failures(), 1);
}

async fn the_rsetting_mode_blocks_through_a_settings_rule(var: &str) {
    let w = world_with(var, MailcowMode::Rsetting, SIM_KEY).await;
    let address = unique("ruled");
    let now = Utc::now();
    hard_bounce(&w.store, &address, now).await;

    let response = w.handler.handle_event(stream_event(&[&address]), now, far()).await.unwrap();

    assert!(failures(&response).is_empty(), "{response}");
    assert!(w.mailcow.state.would_reject_by_settings(&address));
    assert_eq!(w.mailcow.state.rsettings().len(), 1);
    assert!(w.mailcow.state.denylist_map().is_empty(), "the map is not touched in this mode");
}

async fn marking_ses_listed_leaves_the_ingest_lock_alone(var: &str) {
    let w = world(var).await;
    let address = unique("locked");
    let now = Utc::now();
    hard_bounce(&w.store, &address, now).await;
    let target = SuppressionTarget::Address(EmailAddress::parse(&address).unwrap());
    let before = w.store.load(&target).await.unwrap().unwrap();
    w.handler.handle_event(stream_event(&[&address]), now, far()).await.unwrap();
    assert!(ses_listed(&w.store, &address).await);

    // The ingest path read the record before the sync marked it; its write must still apply.
    let delivery = RecipientEvent {
        address: EmailAddress::parse(&address).unwrap(),
        kind: RecipientEventKind::Delivery,
        at: now + Duration::minutes(1),
        feedback_id: None,
        ses_message_id: "msg-delivery".into(),
        identity: None,
    };
    let (decision, record) = policy::decide(Some(&before), &delivery, &Policy::default());
    let write = EventWrite {
        scope: WriteScope::Record { record: Box::new(record), expected_version: before.version },
        history: delivery.history_entry(&decision, None),
        counter: None,
    };

    assert_eq!(w.store.commit(&write).await.unwrap(), CommitOutcome::Applied);
    assert!(ses_listed(&w.store, &address).await, "an ingest write keeps ses_listed");
}

async fn a_scheduled_run_pushes_and_lists_many_suppressions(var: &str) {
    let w = world(var).await;
    let many: Vec<String> = (0..30).map(|i| unique(&format!("bulk{i}"))).collect();
    let now = Utc::now();
    for address in &many {
        hard_bounce(&w.store, address, now).await;
    }

    let answer = w.handler.handle_event(scheduled_event(), now, far()).await.unwrap();

    assert_eq!(answer["result"], "success", "{answer}");
    assert!(many.iter().all(|a| w.mailcow.state.would_reject(a)));
    assert_eq!(w.ses.entries().len(), many.len());
    let map = w.mailcow.state.denylist_map();
    assert!(map.contains(&format!("# entries: {}", many.len())), "{map}");
}

macro_rules! on_both_servers {
    ($($name:ident),* $(,)?) => {
        mod moto {
            $(#[tokio::test] async fn $name() { super::$name("MOTO_ENDPOINT").await })*
        }
        mod dynamodb_local {
            $(#[tokio::test] async fn $name() { super::$name("DYNAMODB_LOCAL_ENDPOINT").await })*
        }
    };
}

on_both_servers!(
    a_suppression_is_blocked_by_mailcow_and_listed_in_ses,
    release_and_expiry_unblock_the_address_and_delete_the_ses_entry,
    an_unchanged_table_is_not_pushed_again,
    mailcow_faults_fail_the_batch_and_the_next_run_converges,
    an_auth_failure_is_tried_once_and_then_left_alone,
    the_rsetting_mode_blocks_through_a_settings_rule,
    marking_ses_listed_leaves_the_ingest_lock_alone,
    a_scheduled_run_pushes_and_lists_many_suppressions,
);
