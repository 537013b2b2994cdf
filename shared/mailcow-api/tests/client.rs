//! The client against the Mailcow simulator: success paths, every failure mode, retries.

#![allow(clippy::unwrap_used, reason = "test helpers panic on failure, failing the test")]

use std::time::Duration;

use feedback_domain::SuppressionTarget;
use feedback_domain::ports::Retryable;
use mailcow_api::{
    ApiKey, AuthFailure, MailcowClient, MailcowConfig, MailcowError, RetryPolicy, RsettingId, Url,
    render_denylist_map, render_rsetting,
};
use simulators::mailcow::{
    DENYLIST_MAP, Fault, FaultSpec, MailcowSimConfig, MailcowSimHandle, spawn,
};

const EDIT_MAP: &str = "/api/v1/edit/rspamd-map";
const ADD_RSETTING: &str = "/api/v1/add/rsetting";
const EDIT_RSETTING: &str = "/api/v1/edit/rsetting";
const DESC: &str = "mailcow-ses-feedback suppressions (managed)";
const MAX_ATTEMPTS: u32 = 4;

async fn sim() -> MailcowSimHandle {
    spawn(MailcowSimConfig::default()).await.unwrap()
}

fn rw_key() -> String {
    MailcowSimConfig::default().rw_key
}

fn config(sim: &MailcowSimHandle, key: &str) -> MailcowConfig {
    let mut config =
        MailcowConfig::new(Url::parse(&sim.base_url).unwrap(), ApiKey::new(key).unwrap());
    config.connect_timeout = Duration::from_secs(2);
    config.request_timeout = Duration::from_secs(5);
    config.retry = RetryPolicy {
        max_attempts: MAX_ATTEMPTS,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    config
}

fn client(sim: &MailcowSimHandle, key: &str) -> MailcowClient {
    MailcowClient::new(config(sim, key)).unwrap()
}

fn targets(raw: &[&str]) -> Vec<SuppressionTarget> {
    raw.iter().map(|r| SuppressionTarget::parse(r).unwrap()).collect()
}

fn sample() -> Vec<SuppressionTarget> {
    targets(&["bounced.user@example.com", "a+b|c@example.net", "*@blocked.example"])
}

fn map_requests(sim: &MailcowSimHandle) -> u64 {
    sim.state.request_count("POST", EDIT_MAP)
}

#[tokio::test]
async fn a_pushed_map_is_stored_exactly_and_blocks_only_the_listed_recipients() {
    let sim = sim().await;
    let map = render_denylist_map(&sample());
    client(&sim, &rw_key()).push_denylist_map(&map).await.unwrap();
    assert_eq!(sim.state.denylist_map(), map.text);
    assert_eq!(sim.state.map_writes().last().unwrap().data.as_deref(), Some(map.text.as_str()));
    assert_eq!(map_requests(&sim), 1);
    for blocked in ["Bounced.User@example.com", "a+b|c@example.net", "anyone@blocked.example"] {
        assert!(sim.state.would_reject(blocked), "{blocked}");
    }
    for innocent in ["bounced.user@example.com.evil", "ab@example.net", "x@sub.blocked.example"] {
        assert!(!sim.state.would_reject(innocent), "{innocent}");
    }
}

#[tokio::test]
async fn a_second_push_replaces_the_whole_map() {
    let sim = sim().await;
    let client = client(&sim, &rw_key());
    client.push_denylist_map(&render_denylist_map(&sample())).await.unwrap();
    let smaller = render_denylist_map(&targets(&["only@example.org"]));
    client.push_denylist_map(&smaller).await.unwrap();
    assert_eq!(sim.state.denylist_map(), smaller.text);
    assert!(!sim.state.would_reject("bounced.user@example.com"));
    assert!(sim.state.would_reject("only@example.org"));
}

#[tokio::test]
async fn a_rejected_key_fails_once_without_retry_and_later_calls_fail_fast() {
    let sim = sim().await;
    let client = client(&sim, "WRONG-KEY-1");
    let map = render_denylist_map(&sample());
    let err = client.push_denylist_map(&map).await.unwrap_err();
    assert!(matches!(err, MailcowError::Unauthorized { cause: AuthFailure::KeyRejected }));
    assert!(!Retryable::is_retryable(&err));
    assert!(err.to_string().contains("MAILCOW_API_KEY / MAILCOW_API_KEY_SECRET"), "{err}");
    assert_eq!(map_requests(&sim), 1);
    for _ in 0..20 {
        let again = client.push_denylist_map(&map).await.unwrap_err();
        assert!(matches!(again, MailcowError::Unauthorized { .. }));
        assert!(client.list_rsettings().await.is_err());
    }
    assert_eq!(sim.state.total_requests(), 1);
    assert_eq!(sim.state.auth_failures(), 1);
    assert!(!sim.state.is_banned());
}

#[tokio::test]
async fn a_refused_caller_address_points_at_the_ip_allow_list() {
    let sim = sim().await;
    sim.state.set_ip_allowed(false);
    let err = client(&sim, &rw_key()).list_rsettings().await.unwrap_err();
    match &err {
        MailcowError::Unauthorized { cause: AuthFailure::IpNotAllowed { ip } } => {
            assert_eq!(ip.as_deref(), Some("127.0.0.1"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("allow-list"), "{err}");
    assert_eq!(sim.state.total_requests(), 1);
}

#[tokio::test]
async fn calls_resume_after_the_suspension_when_the_key_is_fixed() {
    let sim = sim().await;
    let mut config = config(&sim, &rw_key());
    config.auth_suspend = Duration::ZERO;
    sim.state.set_ip_allowed(false);
    let client = MailcowClient::new(config).unwrap();
    assert!(client.list_rsettings().await.is_err());
    sim.state.set_ip_allowed(true);
    assert!(client.list_rsettings().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_read_only_key_is_forbidden_and_not_retried() {
    let sim = sim().await;
    let ro_key = MailcowSimConfig::default().ro_key.unwrap();
    let client = client(&sim, &ro_key);
    let err = client.push_denylist_map(&render_denylist_map(&sample())).await.unwrap_err();
    assert!(matches!(err, MailcowError::Forbidden));
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("read-write key"), "{err}");
    assert_eq!(map_requests(&sim), 1);
    assert_eq!(sim.state.denylist_map(), "");
}

#[tokio::test]
async fn a_danger_reply_is_a_rejection_and_is_not_retried() {
    let sim = sim().await;
    sim.state.set_fault(FaultSpec::next(Fault::Danger, 1));
    let err = client(&sim, &rw_key())
        .push_denylist_map(&render_denylist_map(&sample()))
        .await
        .unwrap_err();
    match &err {
        MailcowError::Rejected { kind, msg } => {
            assert_eq!(kind, "danger");
            assert_eq!(msg.key, "global_map_write_error");
            assert_eq!(msg.args.first().map(String::as_str), Some(DENYLIST_MAP));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(map_requests(&sim), 1);
    assert_eq!(sim.state.denylist_map(), "");
}

#[tokio::test]
async fn server_errors_are_retried_until_mailcow_recovers() {
    let sim = sim().await;
    sim.state.set_fault(FaultSpec::next(Fault::ServerError, 2));
    let map = render_denylist_map(&sample());
    client(&sim, &rw_key()).push_denylist_map(&map).await.unwrap();
    assert_eq!(map_requests(&sim), 3);
    assert_eq!(sim.state.denylist_map(), map.text);
}

#[tokio::test]
async fn server_errors_beyond_the_retry_budget_fail_as_retryable() {
    let sim = sim().await;
    sim.state.set_fault(FaultSpec::always(Fault::ServerError));
    let err = client(&sim, &rw_key())
        .push_denylist_map(&render_denylist_map(&sample()))
        .await
        .unwrap_err();
    assert!(matches!(err, MailcowError::ServerError { status: 500 }));
    assert!(err.is_retryable());
    assert_eq!(map_requests(&sim), u64::from(MAX_ATTEMPTS));
}

#[tokio::test]
async fn a_reply_that_is_not_json_is_an_invalid_response() {
    let sim = sim().await;
    sim.state.set_fault(FaultSpec::next(Fault::InvalidJson, 1));
    let err = client(&sim, &rw_key())
        .push_denylist_map(&render_denylist_map(&sample()))
        .await
        .unwrap_err();
    assert!(matches!(err, MailcowError::InvalidResponse { .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(map_requests(&sim), 1);
}

#[tokio::test]
async fn an_answer_slower_than_the_timeout_is_a_retryable_timeout() {
    let sim = sim().await;
    sim.state.set_fault(FaultSpec::always(Fault::Slow { millis: 3_000 }));
    let mut config = config(&sim, &rw_key());
    config.request_timeout = Duration::from_millis(200);
    config.retry.max_attempts = 2;
    let client = MailcowClient::new(config).unwrap();
    let err = client.push_denylist_map(&render_denylist_map(&sample())).await.unwrap_err();
    assert!(matches!(err, MailcowError::Timeout { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(map_requests(&sim), 2);
}

#[tokio::test]
async fn a_reset_connection_is_retried_and_then_succeeds() {
    let sim = sim().await;
    sim.state.set_fault(FaultSpec::next(Fault::ConnectionReset, 1));
    let map = render_denylist_map(&sample());
    client(&sim, &rw_key()).push_denylist_map(&map).await.unwrap();
    assert_eq!(map_requests(&sim), 2);
    assert_eq!(sim.state.denylist_map(), map.text);
}

#[tokio::test]
async fn a_connection_that_keeps_resetting_fails_as_retryable() {
    let sim = sim().await;
    sim.state.set_fault(FaultSpec::always(Fault::ConnectionReset));
    let err = client(&sim, &rw_key())
        .push_denylist_map(&render_denylist_map(&sample()))
        .await
        .unwrap_err();
    assert!(matches!(err, MailcowError::ConnectionLost { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(map_requests(&sim), u64::from(MAX_ATTEMPTS));
}

#[tokio::test]
async fn nothing_listening_is_a_retryable_connect_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = Url::parse(&format!("http://{}", closed.local_addr().unwrap())).unwrap();
    drop(closed);
    let mut config = MailcowConfig::new(url, ApiKey::new(&rw_key()).unwrap());
    config.retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(5),
    };
    let err = MailcowClient::new(config)
        .unwrap()
        .push_denylist_map(&render_denylist_map(&sample()))
        .await
        .unwrap_err();
    assert!(matches!(err, MailcowError::Connect { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_missing_map_file_is_not_taken_for_success() {
    let sim = sim().await;
    sim.state.remove_map_file(DENYLIST_MAP);
    let err = client(&sim, &rw_key())
        .push_denylist_map(&render_denylist_map(&sample()))
        .await
        .unwrap_err();
    assert!(matches!(err, MailcowError::NotApplied { .. }), "{err:?}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn upserting_twice_creates_one_rule_and_then_updates_it() {
    let sim = sim().await;
    let client = client(&sim, &rw_key());
    let first = render_rsetting(&sample()).unwrap();
    let created = client.upsert_rsetting(DESC, &first.content).await.unwrap();
    assert!(created.created);
    assert!(created.duplicates.is_empty());
    assert_eq!(sim.state.request_count("POST", ADD_RSETTING), 1);

    let second = render_rsetting(&targets(&["only@example.org"])).unwrap();
    let updated = client.upsert_rsetting(DESC, &second.content).await.unwrap();
    assert_eq!(updated.id, created.id);
    assert!(!updated.created);
    assert!(updated.updated);
    let rules = sim.state.rsettings();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].content, second.content);
    assert_eq!(rules[0].active, 1);
    assert_eq!(sim.state.request_count("POST", ADD_RSETTING), 1);
    assert_eq!(client.find_rsetting(DESC).await.unwrap(), Some(created.id));

    let edits = sim.state.request_count("POST", EDIT_RSETTING);
    let unchanged = client.upsert_rsetting(DESC, &second.content).await.unwrap();
    assert!(!unchanged.updated);
    assert_eq!(sim.state.request_count("POST", EDIT_RSETTING), edits);
    assert!(sim.state.would_reject("only@example.org"));
    assert!(!sim.state.would_reject("bounced.user@example.com"));
    assert_eq!(sim.state.settings_error(), None);
}

#[tokio::test]
async fn both_mechanisms_reject_the_same_recipients() {
    let map_sim = sim().await;
    let rule_sim = sim().await;
    let list = targets(&[
        "bounced.user@example.com",
        "a+b|c@example.net",
        "o'brien@xn--bcher-kva.example",
        "*@blocked.example",
    ]);
    client(&map_sim, &rw_key()).push_denylist_map(&render_denylist_map(&list)).await.unwrap();
    let content = render_rsetting(&list).unwrap().content;
    client(&rule_sim, &rw_key()).upsert_rsetting(DESC, &content).await.unwrap();
    let probes = [
        ("bounced.user@example.com", true),
        ("BOUNCED.USER@EXAMPLE.COM", true),
        ("a+b|c@example.net", true),
        ("o'brien@xn--bcher-kva.example", true),
        ("anyone@blocked.example", true),
        ("bounced.user@example.com.evil", false),
        ("xbounced.user@example.com", false),
        ("bouncedxuser@example.com", false),
        ("a@example.net", false),
        ("abc@example.net", false),
        ("x@sub.blocked.example", false),
        ("x@blocked.example.org", false),
    ];
    for (rcpt, expected) in probes {
        assert_eq!(map_sim.state.would_reject_by_map(rcpt), expected, "map: {rcpt}");
        assert_eq!(rule_sim.state.would_reject_by_settings(rcpt), expected, "rule: {rcpt}");
    }
}

#[tokio::test]
async fn the_project_rule_wins_over_a_preset_that_disables_checks_for_authenticated_users() {
    let sim = sim().await;
    let preset = "priority = 10;\nauthenticated = yes;\napply \"default\" {\n  \
                  symbols_enabled = [\"DKIM_SIGNED\", \"RATELIMITED\"];\n}";
    sim.state.insert_rsetting(
        "Disable all but DKIM and rate limit for authenticated users",
        preset,
        true,
    );
    assert!(!sim.state.would_reject("bounced.user@example.com"));
    let content = render_rsetting(&sample()).unwrap().content;
    client(&sim, &rw_key()).upsert_rsetting(DESC, &content).await.unwrap();
    assert!(sim.state.would_reject("bounced.user@example.com"));
    assert!(!sim.state.would_reject("innocent@example.com"));
}

#[tokio::test]
async fn duplicate_rules_all_get_the_content_and_are_reported() {
    let sim = sim().await;
    let admin = sim.state.insert_rsetting("admin rule", "priority = 5; rcpt = \"x@y.org\";", true);
    let stale = "priority = 20;\nrcpt = \"released@example.com\";\napply \"default\" {\n  \
                 MAILCOW_BLACK = 9999.0;\n}\nsymbols [\n  \"MAILCOW_BLACK\"\n]";
    let first = sim.state.insert_rsetting(DESC, stale, true);
    let second = sim.state.insert_rsetting(DESC, stale, false);
    assert!(sim.state.would_reject("released@example.com"));

    let content = render_rsetting(&sample()).unwrap().content;
    let outcome = client(&sim, &rw_key()).upsert_rsetting(DESC, &content).await.unwrap();
    assert_eq!(outcome.id, RsettingId(first));
    assert_eq!(outcome.duplicates, [RsettingId(second)]);
    assert!(!outcome.created);
    for rule in sim.state.rsettings() {
        if rule.desc == DESC {
            assert_eq!(rule.content, content);
            assert_eq!(rule.active, 1);
        } else {
            assert_eq!(rule.id, admin);
            assert_eq!(rule.content, "priority = 5; rcpt = \"x@y.org\";");
        }
    }
    assert!(!sim.state.would_reject("released@example.com"));
    assert_eq!(sim.state.request_count("POST", ADD_RSETTING), 0);
}

#[tokio::test]
async fn a_lost_add_reply_is_not_retried_and_the_next_upsert_creates_no_duplicate() {
    let sim = sim().await;
    let client = client(&sim, &rw_key());
    let content = render_rsetting(&sample()).unwrap().content;
    sim.state.set_fault(FaultSpec::next(Fault::ConnectionReset, 1).on_route(ADD_RSETTING));
    let err = client.upsert_rsetting(DESC, &content).await.unwrap_err();
    assert!(matches!(err, MailcowError::ConnectionLost { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(sim.state.request_count("POST", ADD_RSETTING), 1);
    client.upsert_rsetting(DESC, &content).await.unwrap();
    assert_eq!(sim.state.rsettings().len(), 1);
}

#[tokio::test]
async fn an_add_that_timed_out_but_was_applied_is_found_by_the_next_upsert() {
    let sim = sim().await;
    let mut config = config(&sim, &rw_key());
    config.request_timeout = Duration::from_millis(400);
    let client = MailcowClient::new(config).unwrap();
    let content = render_rsetting(&sample()).unwrap().content;
    sim.state.set_fault(FaultSpec::next(Fault::Slow { millis: 1_200 }, 1).on_route(ADD_RSETTING));
    let err = client.upsert_rsetting(DESC, &content).await.unwrap_err();
    assert!(matches!(err, MailcowError::Timeout { .. }), "{err:?}");
    assert_eq!(sim.state.request_count("POST", ADD_RSETTING), 1);
    // The simulator finishes the add after the client gave up, as a slow Mailcow would.
    for _ in 0..250 {
        if !sim.state.rsettings().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let outcome = client.upsert_rsetting(DESC, &content).await.unwrap();
    assert!(!outcome.created);
    assert_eq!(sim.state.rsettings().len(), 1);
    assert_eq!(sim.state.request_count("POST", ADD_RSETTING), 1);
}

#[tokio::test]
async fn a_rule_can_be_deleted_and_deleting_again_succeeds() {
    let sim = sim().await;
    let client = client(&sim, &rw_key());
    let content = render_rsetting(&sample()).unwrap().content;
    let outcome = client.upsert_rsetting(DESC, &content).await.unwrap();
    client.delete_rsetting(outcome.id).await.unwrap();
    assert!(sim.state.rsettings().is_empty());
    assert_eq!(client.get_rsetting(outcome.id).await.unwrap(), None);
    client.delete_rsetting(outcome.id).await.unwrap();
    assert!(!sim.state.would_reject("bounced.user@example.com"));
}

#[tokio::test]
async fn updating_an_unknown_rule_is_a_rejection() {
    let sim = sim().await;
    let content = render_rsetting(&sample()).unwrap().content;
    let err = client(&sim, &rw_key()).update_rsetting(RsettingId(42), &content).await.unwrap_err();
    match err {
        MailcowError::Rejected { msg, .. } => {
            assert_eq!(msg.key, "settings_map_invalid");
            assert_eq!(msg.args, ["42"]);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn empty_content_and_bad_descriptions_are_refused_before_sending() {
    let sim = sim().await;
    let client = client(&sim, &rw_key());
    for (desc, content) in [(DESC, " \n"), ("", "priority = 20;"), ("a\nb", "priority = 20;")] {
        let err = client.upsert_rsetting(desc, content).await.unwrap_err();
        assert!(matches!(err, MailcowError::InvalidRequest { .. }), "{err:?}");
    }
    let long = "d".repeat(256);
    assert!(client.create_rsetting(&long, "priority = 20;").await.is_err());
    assert_eq!(sim.state.total_requests(), 0);
}
