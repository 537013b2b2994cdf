//! Black-box tests of the record commands (`table create`, `get`, `add`, `remove`, `list`,
//! `export`, `forget`, `hash`, `completions`, `man`) against moto.

// Helpers outside #[test] functions unwrap too: a failed setup is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::{Duration, Utc};
use common::Env;
use feedback_domain::{AddressHasher, SuppressionReason};
use serde_json::Value;

fn addresses(lines: &[Value]) -> Vec<String> {
    lines.iter().map(|l| l["address"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn table_create_makes_the_table_with_stream_ttl_and_both_indexes() {
    let env = Env::with_table("create").await;
    let ddb = env.dynamodb().await;

    let table = ddb.describe_table().table_name(&env.table).send().await.unwrap();
    let table = table.table().unwrap();
    let ttl = ddb.describe_time_to_live().table_name(&env.table).send().await.unwrap();

    let stream = table.stream_specification().unwrap();
    assert!(stream.stream_enabled());
    assert_eq!(stream.stream_view_type().unwrap().as_str(), "NEW_AND_OLD_IMAGES");
    let mut indexes: Vec<_> =
        table.global_secondary_indexes().iter().map(|i| i.index_name().unwrap()).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, ["by-domain", "by-state-reason"]);
    assert_eq!(ttl.time_to_live_description().unwrap().attribute_name(), Some("ttl"));
}

#[tokio::test]
async fn creating_the_table_twice_exits_2_and_says_it_exists() {
    let env = Env::with_table("twice").await;

    let run = env.run(&["table", "create"]).await.expect(2);

    assert!(run.stderr.contains("exists already"), "{}", run.stderr);
}

#[tokio::test]
async fn a_missing_table_exits_2_and_points_to_table_create() {
    let env = Env::new("missing");

    let run = env.run(&["get", "someone@example.com"]).await.expect(2);

    assert!(run.stderr.contains("run `suppressions table create`"), "{}", run.stderr);
    assert!(run.stderr.contains("--table/--region"), "{}", run.stderr);
}

#[tokio::test]
async fn without_a_table_name_the_tool_says_how_to_give_one() {
    let mut env = Env::new("unnamed");
    env.vars.push(("SUPPRESSION_TABLE".into(), String::new()));

    let run = env.run(&["list"]).await.expect(2);

    assert!(run.stderr.contains("--table or set SUPPRESSION_TABLE"), "{}", run.stderr);
}

#[tokio::test]
async fn missing_credentials_and_an_unreachable_endpoint_are_explained() {
    let mut no_credentials = Env::new("no-credentials");
    no_credentials.unset = vec!["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];
    let mut unreachable = Env::new("unreachable");
    unreachable.endpoint = "http://127.0.0.1:9".into();

    let missing = no_credentials.run(&["get", "a@example.com"]).await.expect(2);
    let refused = unreachable.run(&["list"]).await.expect(2);

    assert!(missing.stderr.contains("hint: no AWS credentials found"), "{}", missing.stderr);
    assert!(
        refused.stderr.contains("hint: could not reach http://127.0.0.1:9"),
        "{}",
        refused.stderr
    );
}

#[tokio::test]
async fn get_of_an_unknown_address_exits_1() {
    let env = Env::with_table("unknown").await;

    let run = env.run(&["get", "nobody@example.com", "--json"]).await.expect(1);

    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("no record"), "{}", run.stderr);
}

#[tokio::test]
async fn malformed_addresses_unknown_reasons_and_bad_dates_exit_2() {
    let env = Env::with_table("bad-input").await;

    for args in [
        &["add", "not-an-address"][..],
        &["add", "two@at@example.com"],
        &["get", "a b@example.com"],
        &["list", "--reason", "bounce"],
        &["list", "--since", "yesterday"],
        &["add", "x@example.com", "--expires", "soon"],
        &["add", "x@example.com", "--reason", "hard_bounce"],
    ] {
        let run = env.run(args).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(!run.stderr.is_empty(), "{args:?}");
    }
    assert!(env.items_of("x@example.com").await.is_empty());
}

#[tokio::test]
async fn add_then_get_shows_the_manual_suppression_with_expiry_note_and_history() {
    let env = Env::with_table("add").await;

    let added = env.run(&["add", "Jane@Example.com", "--note", "asked", "--expires", "30d"]).await;
    let got = env.run(&["get", "jane@example.com", "--json"]).await.expect(0);

    assert_eq!(added.code, 0, "{}", added.stderr);
    let record = &got.json_lines()[0];
    assert_eq!(record["address"], "jane@example.com");
    assert_eq!(record["state"], "active");
    assert_eq!(record["suppressed"], true);
    assert_eq!(record["reason"], "manual");
    assert_eq!(record["provenance"]["note"], "asked");
    assert_eq!(record["soft_bounce_count"], 0);
    assert!(record["last_delivery_at"].is_null());
    let expires: chrono::DateTime<Utc> = record["expires_at"].as_str().unwrap().parse().unwrap();
    assert!((expires - Utc::now() - Duration::days(30)).num_minutes().abs() < 5);
    let history = record["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["type"], "manual");
    assert_eq!(history[0]["outcome"], "suppressed");
    assert!(history[0]["timestamp"].is_string());
    assert!(history[0].get("feedback_id").is_some());

    let human = env.run(&["get", "jane@example.com"]).await.expect(0);
    assert!(human.stdout.contains("reason         manual"), "{}", human.stdout);
    assert!(human.stdout.contains("history (1 event)"), "{}", human.stdout);
}

#[tokio::test]
async fn adding_an_address_that_is_suppressed_already_changes_nothing() {
    let env = Env::with_table("add-twice").await;
    env.seed("hard@example.com", SuppressionReason::HardBounce, Utc::now(), None).await;

    let run = env.run(&["add", "hard@example.com"]).await.expect(0);

    assert!(run.stdout.contains("already suppressed (hard_bounce)"), "{}", run.stdout);
    let got = env.run(&["get", "hard@example.com", "--json"]).await.expect(0);
    assert_eq!(got.json_lines()[0]["reason"], "hard_bounce");
    assert_eq!(got.json_lines()[0]["history"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_whole_domain_is_a_domain_entry_and_get_of_its_addresses_points_to_it() {
    let env = Env::with_table("domain").await;

    env.run(&["add", "*@Spam.Example"]).await.expect(0);

    let entry = env.run(&["get", "*@spam.example", "--json"]).await.expect(0);
    assert_eq!(entry.json_lines()[0]["kind"], "domain");
    assert_eq!(entry.json_lines()[0]["state"], "active");
    let member = env.run(&["get", "someone@spam.example"]).await.expect(1);
    assert!(member.stderr.contains("'*@spam.example'"), "{}", member.stderr);
    let listed = env.run(&["list", "--domain", "spam.example", "--json"]).await.expect(0);
    assert_eq!(addresses(&listed.json_lines()), ["*@spam.example"]);
}

#[tokio::test]
async fn remove_releases_keeps_the_history_and_records_who_and_why() {
    let env = Env::with_table("remove").await;
    env.seed("gone@example.com", SuppressionReason::Complaint, Utc::now(), None).await;

    env.run(&["remove", "gone@example.com", "--by", "alice", "--why", "customer asked"])
        .await
        .expect(0);

    let got = env.run(&["get", "gone@example.com", "--json"]).await.expect(0);
    let record = &got.json_lines()[0];
    assert_eq!(record["state"], "released");
    assert_eq!(record["suppressed"], false);
    assert_eq!(record["released_by"], "alice");
    assert_eq!(record["release_note"], "customer asked");
    let history = record["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["type"], "release");
    assert_eq!(history[1]["subtype"], "complaint");

    let again = env.run(&["remove", "gone@example.com"]).await.expect(1);
    assert!(again.stderr.contains("state released"), "{}", again.stderr);
    let by_default = env.run(&["remove", "nobody@example.com"]).await.expect(1);
    assert!(by_default.stderr.contains("no record"), "{}", by_default.stderr);
}

#[tokio::test]
async fn remove_takes_the_operator_name_from_user_by_default() {
    let env = Env::with_table("remove-user").await;
    env.seed("u@example.com", SuppressionReason::Manual, Utc::now(), None).await;

    env.run(&["remove", "u@example.com"]).await.expect(0);

    let got = env.run(&["get", "u@example.com", "--json"]).await.expect(0);
    assert_eq!(got.json_lines()[0]["released_by"], "tester");
}

/// Seeds a table with entries of several reasons, states, domains and times.
async fn seeded() -> Env {
    let env = Env::with_table("list").await;
    let now = Utc::now();
    let day = Duration::days(1);
    env.seed("hard-old@a.example", SuppressionReason::HardBounce, now - day * 20, None).await;
    env.seed("hard-new@a.example", SuppressionReason::HardBounce, now - day * 2, None).await;
    env.seed("complaint@b.example", SuppressionReason::Complaint, now - day * 3, None).await;
    env.seed("soft@a.example", SuppressionReason::SoftBounce, now - day * 4, Some(now + day)).await;
    let expired_end = Some(now - day * 5);
    env.seed("expired@b.example", SuppressionReason::SoftBounce, now - day * 10, expired_end).await;
    env.seed("released@a.example", SuppressionReason::Complaint, now - day * 30, None).await;
    env.run(&["remove", "released@a.example", "--why", "test"]).await.expect(0);
    env
}

#[tokio::test]
async fn list_filters_by_reason_state_domain_and_time() {
    let env = seeded().await;
    let list = |args: &'static [&'static str]| {
        let env = env.clone();
        async move {
            let mut all = vec!["list", "--json"];
            all.extend_from_slice(args);
            let run = env.run(&all).await;
            assert!(run.code <= 1, "{args:?}: {}", run.stderr);
            addresses(&run.json_lines())
        }
    };

    assert_eq!(
        list(&[]).await,
        [
            "released@a.example",
            "hard-new@a.example",
            "complaint@b.example",
            "soft@a.example",
            "expired@b.example",
            "hard-old@a.example",
        ]
    );
    assert_eq!(
        list(&["--reason", "hard_bounce"]).await,
        ["hard-new@a.example", "hard-old@a.example"]
    );
    assert_eq!(
        list(&["--state", "active"]).await,
        ["hard-new@a.example", "complaint@b.example", "soft@a.example", "hard-old@a.example"]
    );
    assert_eq!(list(&["--state", "expired"]).await, ["expired@b.example"]);
    assert_eq!(list(&["--state", "released"]).await, ["released@a.example"]);
    assert_eq!(
        list(&["--since", "7d", "--state", "active"]).await,
        ["hard-new@a.example", "complaint@b.example", "soft@a.example"]
    );
    assert_eq!(list(&["--until", "7d"]).await, ["expired@b.example", "hard-old@a.example"]);
    assert_eq!(
        list(&["--domain", "b.example"]).await,
        ["complaint@b.example", "expired@b.example"]
    );
    assert_eq!(
        list(&["--domain", "a.example", "--reason", "complaint"]).await,
        ["released@a.example"]
    );
    assert_eq!(list(&["--limit", "2"]).await, ["released@a.example", "hard-new@a.example"]);
}

#[tokio::test]
async fn list_with_no_match_exits_1_and_a_date_range_is_inclusive_of_whole_days() {
    let env = seeded().await;
    let today = Utc::now().date_naive().to_string();

    env.run(&["list", "--reason", "ses_account_list"]).await.expect(1);
    let run = env.run(&["list", "--since", &today, "--until", &today, "--csv"]).await.expect(0);

    let lines: Vec<_> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("address,kind,state,reason"));
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert!(lines[1].starts_with("released@a.example,address,released,complaint,"));
}

#[tokio::test]
async fn export_writes_every_entry_and_its_csv_imports_into_another_table() {
    let env = seeded().await;

    let csv = env.run(&["export"]).await.expect(0);
    let json = env.run(&["export", "--format", "json"]).await.expect(0);

    assert_eq!(csv.stdout.lines().count(), 7, "{}", csv.stdout);
    assert_eq!(json.json_lines().len(), 6);
    let file = std::env::temp_dir().join(format!("{}.csv", env.table));
    std::fs::write(&file, &csv.stdout).unwrap();
    let copy = Env::with_table("copy").await;
    let imported = copy.run(&["import", file.to_str().unwrap(), "--apply"]).await.expect(0);
    assert!(imported.stdout.contains("imported"), "{}", imported.stdout);
    let active = copy.run(&["list", "--json"]).await.expect(0);
    let mut got = addresses(&active.json_lines());
    got.sort();
    assert_eq!(
        got,
        ["complaint@b.example", "hard-new@a.example", "hard-old@a.example", "soft@a.example"]
    );
    let soft = copy.run(&["get", "soft@a.example", "--json"]).await.expect(0);
    assert_eq!(soft.json_lines()[0]["reason"], "soft_bounce");
    assert!(soft.json_lines()[0]["expires_at"].is_string());
    std::fs::remove_file(file).unwrap();
}

#[tokio::test]
async fn forget_erases_record_and_history_only_when_confirmed() {
    let env = Env::with_table("forget").await;
    env.seed("erase@example.com", SuppressionReason::HardBounce, Utc::now(), None).await;
    env.run(&["remove", "erase@example.com"]).await.expect(0);
    assert_eq!(env.items_of("erase@example.com").await.len(), 3);

    let refused = env.run_with_input(&["forget", "erase@example.com"], Some("yes\n")).await;
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert_eq!(env.items_of("erase@example.com").await.len(), 3);

    let done = env.run(&["forget", "erase@example.com", "--yes"]).await.expect(0);
    assert!(done.stdout.contains("3 items deleted"), "{}", done.stdout);
    assert!(env.items_of("erase@example.com").await.is_empty());
    env.run(&["get", "erase@example.com"]).await.expect(1);
    env.run(&["forget", "erase@example.com", "--yes"]).await.expect(1);
}

#[tokio::test]
async fn hash_matches_the_functions_hash_of_the_normalised_address() {
    let env = Env::new("hash");
    let mut keyed = env.clone();
    keyed.vars.push(("ADDRESS_HASH_KEY".into(), "operator-key".into()));

    let default = env.run(&["hash", "\"Jane\" <Jane@Example.COM>"]).await.expect(0);
    let with_env = keyed.run(&["hash", "jane@example.com"]).await.expect(0);
    let with_flag = env.run(&["hash", "jane@example.com", "--hash-key", "operator-key"]).await;

    assert_eq!(default.stdout.trim(), AddressHasher::default().hash("jane@example.com"));
    assert!(default.stderr.contains("default key"));
    let expected = AddressHasher::new(b"operator-key").hash("jane@example.com");
    assert_eq!(with_env.stdout.trim(), expected);
    assert_eq!(with_flag.expect(0).stdout.trim(), expected);
    env.run(&["hash", "not an address"]).await.expect(2);
}

#[tokio::test]
async fn completions_and_the_man_page_come_from_the_command_definitions() {
    let env = Env::new("docs");

    for shell in ["bash", "zsh", "fish"] {
        let run = env.run(&["completions", shell]).await.expect(0);
        assert!(run.stdout.contains("suppressions"), "{shell}");
        assert!(run.stdout.contains("from-ses"), "{shell}");
    }
    let man = env.run(&["man"]).await.expect(0);
    assert!(man.stdout.starts_with(".ie") || man.stdout.contains(".TH suppressions"));
    assert!(man.stdout.contains("SUPPRESSION_TABLE"));
}
