//! Black-box tests of `import`: CSV files with broken rows, and the SES account list from the
//! SESv2 simulator (`simulators::sesv2`), including throttling and an interrupted run.

// Helpers outside #[test] functions unwrap too: a failed setup is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration as StdDuration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use common::Env;
use feedback_domain::SuppressionReason;
use simulators::sesv2::{self, Reason, Throttle};
use suppression_store::Checkpoint;

fn write_csv(env: &Env, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{}-{}.csv", env.table, fastrand::u32(..)));
    std::fs::write(&path, text).unwrap();
    path
}

const BROKEN_CSV: &str = "address,reason,note,expires_at\n\
    good@example.com,manual,from the old system,\n\
    not-an-address,manual,,\n\
    other@example.com,bounce,,\n\
    dated@example.com,manual,,next week\n\
    \"quoted\"junk@example.com,manual,,\n\
    Second@Example.com,complaint,,2099-01-01\n\
    already@example.com,manual,,\n";

#[tokio::test]
async fn a_csv_dry_run_reports_broken_lines_and_writes_nothing() {
    let env = Env::with_table("csv-dry").await;
    let file = write_csv(&env, BROKEN_CSV);

    let run = env.run(&["import", file.to_str().unwrap()]).await.expect(2);

    for line in ["line 3:", "line 4:", "line 5:", "line 6:"] {
        assert!(run.stderr.contains(line), "{line}: {}", run.stderr);
    }
    assert!(!run.stderr.contains("line 2:") && !run.stderr.contains("line 7:"));
    assert!(run.stdout.contains("would import"), "{}", run.stdout);
    assert!(run.stdout.contains("dry run"), "{}", run.stdout);
    assert!(env.items_of("good@example.com").await.is_empty());
    std::fs::remove_file(file).unwrap();
}

#[tokio::test]
async fn a_csv_import_applies_the_good_rows_and_a_rerun_duplicates_nothing() {
    let env = Env::with_table("csv-apply").await;
    env.seed("already@example.com", SuppressionReason::HardBounce, Utc::now(), None).await;
    let file = write_csv(&env, BROKEN_CSV);
    let path = file.to_str().unwrap();

    let first = env.run(&["import", path, "--apply", "--json"]).await.expect(2);
    let second = env.run(&["import", path, "--apply", "--json"]).await.expect(2);

    let actions = |run: &common::Run| {
        run.json_lines()
            .iter()
            .map(|l| {
                (
                    l["address"].as_str().unwrap().to_owned(),
                    l["action"].as_str().unwrap().to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    let mut got = actions(&first);
    got.sort();
    assert_eq!(
        got,
        [
            ("already@example.com".to_owned(), "already_suppressed".to_owned()),
            ("good@example.com".to_owned(), "imported".to_owned()),
            ("second@example.com".to_owned(), "imported".to_owned()),
        ]
    );
    assert!(first.stderr.contains("the good rows were imported"), "{}", first.stderr);
    assert!(actions(&second).iter().all(|(_, a)| a != "imported"), "{}", second.stdout);

    let good = env.run(&["get", "good@example.com", "--json"]).await.expect(0);
    let record = &good.json_lines()[0];
    assert_eq!(record["reason"], "manual");
    assert_eq!(record["provenance"]["note"], "from the old system");
    let history = record["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["type"], "import");
    assert_eq!(history[0]["key"], "import:csv:good@example.com");
    let second_record = env.run(&["get", "second@example.com", "--json"]).await.expect(0);
    assert_eq!(second_record.json_lines()[0]["reason"], "complaint");
    assert_eq!(second_record.json_lines()[0]["expires_at"], "2099-01-01T00:00:00.000Z");
    let kept = env.run(&["get", "already@example.com", "--json"]).await.expect(0);
    assert_eq!(kept.json_lines()[0]["reason"], "hard_bounce");
    std::fs::remove_file(file).unwrap();
}

#[tokio::test]
async fn a_csv_without_header_takes_the_first_column_as_address() {
    let env = Env::with_table("csv-plain").await;
    let file = write_csv(&env, "a@example.com\r\nb@example.com,ses_account_list\r\n\r\n");

    let run = env.run(&["import", file.to_str().unwrap(), "--apply"]).await.expect(0);

    assert!(run.stdout.contains("imported"), "{}", run.stdout);
    let b = env.run(&["get", "b@example.com", "--json"]).await.expect(0);
    assert_eq!(b.json_lines()[0]["reason"], "ses_account_list");
    env.run(&["get", "a@example.com"]).await.expect(0);
    std::fs::remove_file(file).unwrap();
}

async fn simulator(count: usize) -> sesv2::Handle {
    let sim = sesv2::spawn(sesv2::Config::unthrottled()).await.unwrap();
    for i in 0..count {
        let reason = if i % 3 == 0 { Reason::Complaint } else { Reason::Bounce };
        sim.seed(sesv2::Entry::new(format!("Listed{i:02}@Example.com"), reason));
    }
    sim
}

fn ses_env(env: &Env, sim: &sesv2::Handle) -> Env {
    let mut env = env.clone();
    env.vars.push(("SES_ENDPOINT_URL".into(), sim.url().to_owned()));
    env
}

#[tokio::test]
async fn the_ses_list_imports_after_a_dry_run_and_a_rerun_duplicates_nothing() {
    let sim = simulator(5).await;
    let table = Env::with_table("ses").await;
    let env = ses_env(&table, &sim);
    env.seed("listed01@example.com", SuppressionReason::HardBounce, Utc::now(), None).await;

    let dry = env.run(&["import", "--from-ses"]).await.expect(0);
    assert!(dry.stdout.contains("would import"), "{}", dry.stdout);
    assert!(env.items_of("listed00@example.com").await.is_empty());

    let applied = env.run(&["import", "--from-ses", "--apply", "--json"]).await.expect(0);
    let imported: Vec<_> = applied
        .json_lines()
        .into_iter()
        .filter(|l| l["action"] == "imported")
        .map(|l| l["address"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(imported.len(), 4, "{}", applied.stdout);
    let record = env.run(&["get", "listed00@example.com", "--json"]).await.expect(0);
    let record = &record.json_lines()[0];
    assert_eq!(record["reason"], "ses_account_list");
    assert_eq!(record["history"][0]["key"], "import:ses:listed00@example.com");
    assert_eq!(record["history"][0]["subtype"], "ses:COMPLAINT");
    let kept = env.run(&["get", "listed01@example.com", "--json"]).await.expect(0);
    assert_eq!(kept.json_lines()[0]["reason"], "hard_bounce");

    let rerun = env.run(&["import", "--from-ses", "--apply", "--json"]).await.expect(0);
    assert!(rerun.json_lines().iter().all(|l| l["action"] != "imported"), "{}", rerun.stdout);
    assert_eq!(env.items_of("listed00@example.com").await.len(), 2);
}

#[tokio::test]
async fn a_throttled_ses_listing_waits_and_completes() {
    let sim = simulator(6).await;
    sim.set_throttle(Some(Throttle::every(StdDuration::from_millis(2500))));
    let table = Env::with_table("ses-throttle").await;
    let env = ses_env(&table, &sim);

    env.run(&["import", "--from-ses", "--apply", "--ses-page-size", "3"]).await.expect(0);

    assert!(sim.stats().throttled > 0, "{:?}", sim.stats());
    let listed = env.run(&["list", "--reason", "ses_account_list", "--json"]).await.expect(0);
    assert_eq!(listed.json_lines().len(), 6);
}

#[tokio::test]
async fn an_interrupted_ses_import_continues_where_it_stopped() {
    let sim = simulator(8).await;
    let table = Env::with_table("ses-resume").await;
    let env = ses_env(&table, &sim);
    let ddb = env.dynamodb().await;
    let checkpoint_saved = || async {
        ddb.get_item()
            .table_name(&env.table)
            .key("pk", AttributeValue::S("META".into()))
            .key("sk", AttributeValue::S("IMPORT#ses".into()))
            .send()
            .await
            .unwrap()
            .item()
            .is_some()
    };

    // Kill the run as soon as its first page is applied (pages are a second apart).
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_suppressions"))
        .args(["import", "--from-ses", "--apply", "--ses-page-size", "2"])
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "eu-central-1")
        .env("AWS_ENDPOINT_URL", &env.endpoint)
        .env("SES_ENDPOINT_URL", sim.url())
        .env("SUPPRESSION_TABLE", &env.table)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while !checkpoint_saved().await {
        assert!(child.try_wait().unwrap().is_none(), "the import ended before a checkpoint");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    child.kill().await.unwrap();
    let first_run = sim.stats().list;
    let before = env.run(&["list", "--json"]).await;
    let imported_before = before.json_lines().len();
    assert!((2..8).contains(&imported_before), "{}", before.stdout);

    let rerun = env.run(&["import", "--from-ses", "--apply", "--ses-page-size", "2"]).await;

    let rerun = rerun.expect(0);
    assert!(rerun.stderr.contains("continuing an interrupted import"), "{}", rerun.stderr);
    assert!(sim.stats().list - first_run < 4, "the rerun listed from the start");
    let all = env.run(&["list", "--json"]).await.expect(0);
    assert_eq!(all.json_lines().len(), 8);
    for i in 0..8 {
        let items = env.items_of(&format!("listed{i:02}@example.com")).await;
        assert_eq!(items.len(), 2, "listed{i:02}: state and exactly one history entry");
    }
    assert!(!checkpoint_saved().await, "a completed import removes its checkpoint");
}

#[tokio::test]
async fn a_stale_checkpoint_starts_the_ses_listing_over() {
    let sim = simulator(3).await;
    let table = Env::with_table("ses-stale").await;
    let env = ses_env(&table, &sim);
    let stale = Checkpoint { token: "expired-token".into(), pages: 4, saved_at: Utc::now() };
    env.store().await.save_checkpoint("ses", &stale, chrono::Duration::days(1)).await.unwrap();

    let run = env.run(&["import", "--from-ses", "--apply"]).await.expect(0);

    assert!(run.stderr.contains("starting from the first page"), "{}", run.stderr);
    let listed = env.run(&["list", "--json"]).await.expect(0);
    assert_eq!(listed.json_lines().len(), 3);
}
