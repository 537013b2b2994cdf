//! Black-box tests of `stats`: counters seeded with PutItem, output compared with a committed,
//! hand-checked snapshot (`tests/fixtures/stats_14_days.txt`).

// Helpers outside #[test] functions unwrap too: a failed setup is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::Env;

/// One counter item: day of November 2026, identity, sends, deliveries, hard, soft, complaints.
type Counter = (u32, &'static str, u64, u64, u64, u64, u64);

/// Two identities over 14 days: a quiet start, a day without data (Nov 4), a day whose
/// configuration set published no Send events (Nov 6), a hard-bounce spike over the review
/// threshold (Nov 10) and a complaint spike over the pause threshold (Nov 12).
const COUNTERS: [Counter; 15] = [
    (1, "mail.example.org", 400, 396, 2, 2, 0),
    (2, "mail.example.org", 500, 494, 3, 3, 0),
    (3, "mail.example.org", 450, 445, 1, 4, 1),
    (5, "mail.example.org", 300, 297, 2, 1, 0),
    (6, "mail.example.org", 0, 190, 4, 6, 0),
    (7, "mail.example.org", 420, 414, 3, 3, 0),
    (8, "mail.example.org", 380, 376, 2, 2, 0),
    (9, "mail.example.org", 410, 404, 4, 2, 0),
    (10, "mail.example.org", 200, 182, 12, 6, 0),
    (10, "news.example.org", 100, 95, 6, 0, 0),
    (11, "mail.example.org", 390, 385, 3, 2, 0),
    (12, "mail.example.org", 300, 297, 1, 2, 2),
    (12, "news.example.org", 200, 198, 1, 1, 1),
    (13, "mail.example.org", 350, 346, 2, 2, 0),
    (14, "mail.example.org", 330, 327, 1, 2, 0),
];

async fn seeded() -> Env {
    let env = Env::with_table("stats").await;
    let ddb = env.dynamodb().await;
    let n = |v: u64| AttributeValue::N(v.to_string());
    for (day, identity, sends, deliveries, hard, soft, complaints) in COUNTERS {
        ddb.put_item()
            .table_name(&env.table)
            .item("pk", AttributeValue::S("STATS".into()))
            .item("sk", AttributeValue::S(format!("DAY#2026-11-{day:02}#{identity}")))
            .item("sends", n(sends))
            .item("deliveries", n(deliveries))
            .item("hard_bounces", n(hard))
            .item("soft_bounces", n(soft))
            .item("complaints", n(complaints))
            .send()
            .await
            .unwrap();
    }
    // Outside the window: must not count.
    ddb.put_item()
        .table_name(&env.table)
        .item("pk", AttributeValue::S("STATS".into()))
        .item("sk", AttributeValue::S("DAY#2026-10-31#mail.example.org".into()))
        .item("hard_bounces", n(999))
        .send()
        .await
        .unwrap();
    env
}

#[tokio::test]
async fn stats_output_matches_the_checked_snapshot() {
    let env = seeded().await;

    let run = env.run(&["stats", "--days", "14", "--today", "2026-11-14"]).await.expect(0);

    let expected = include_str!("fixtures/stats_14_days.txt");
    if run.stdout != expected {
        let path = std::env::temp_dir().join("stats_14_days.actual.txt");
        std::fs::write(&path, &run.stdout).unwrap();
        panic!("stats output differs from the snapshot; actual output in {}", path.display());
    }
}

#[tokio::test]
async fn stats_for_one_identity_sum_only_its_counters() {
    let env = seeded().await;

    let run = env
        .run(&["stats", "--days", "14", "--today", "2026-11-14", "--identity", "news.example.org"])
        .await
        .expect(0);

    assert!(run.stdout.contains("identities: news.example.org"), "{}", run.stdout);
    let total = run.stdout.lines().find(|l| l.starts_with("total")).unwrap();
    let fields: Vec<_> = total.split_whitespace().collect();
    assert_eq!(fields[1..6], ["300", "293", "7", "1", "1"]);
}

#[tokio::test]
async fn stats_json_has_one_line_per_day_with_rates() {
    let env = seeded().await;

    let run = env.run(&["stats", "--days", "3", "--today", "2026-11-12", "--json"]).await;

    let lines = run.expect(0).json_lines();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["day"], "2026-11-10");
    assert_eq!(lines[0]["hard_bounces"], 18);
    assert_eq!(lines[0]["bounce_rate"], 0.06);
    assert_eq!(lines[2]["complaints"], 3);
    assert_eq!(lines[2]["complaint_rate"], 0.006);
}

#[tokio::test]
async fn stats_html_is_a_self_contained_page_with_the_charts() {
    let env = seeded().await;
    let file = std::env::temp_dir().join(format!("{}.html", env.table));

    env.run(&["stats", "--days", "14", "--today", "2026-11-14", "--html", file.to_str().unwrap()])
        .await
        .expect(0);

    let page = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(page.matches("<svg").count(), 3);
    assert!(page.contains("review 5%") && page.contains("pause 0.5%"));
    assert!(page.contains("<td>2026-11-10</td>"));
    assert!(!page.contains("<script") && !page.contains("http://") && !page.contains("https://"));
}

#[tokio::test]
async fn stats_without_counters_in_the_window_exit_1() {
    let env = seeded().await;

    let run = env.run(&["stats", "--days", "5", "--today", "2026-10-20"]).await.expect(1);

    assert!(run.stderr.contains("no counters"), "{}", run.stderr);
}
