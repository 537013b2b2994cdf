//! Golden tests of the rendered denylist map and settings rule.
//!
//! The expected hashes were computed independently (Python `hashlib.sha256`) from the expected
//! texts below.

#![allow(clippy::unwrap_used, reason = "test helpers panic on failure, failing the test")]

use feedback_domain::SuppressionTarget;
use mailcow_api::render::{NO_MATCH_RCPT, sha256_hex};
use mailcow_api::{SkipCount, SkipReason, render_denylist_map, render_rsetting};
use simulators::mailcow::rspamd::{RegexpMap, SettingsMap};

const INPUT: [&str; 7] = [
    "Bounced.User@Example.com",
    "*@Example.ORG",
    "o'brien+tag@bücher.example",
    "cash$money@example.net",
    "/slash@example.com",
    "hash#tag@example.com",
    "bounced.user@example.com",
];

const EXPECTED_MAP: &str = "\
# managed by mailcow-ses-feedback: do not edit, every sync overwrites this map
# entries: 5
/@example\\.org$/i
/^\\/slash@example\\.com$/i
/^bounced\\.user@example\\.com$/i
/^cash\\$money@example\\.net$/i
/^o'brien\\+tag@xn--bcher-kva\\.example$/i
";

const EXPECTED_MAP_SHA256: &str =
    "0f35c530700349c1a7d6f38db83a7e56ae27d2aa79cb566638b2da9710873cd8";

const EXPECTED_RSETTING: &str = "\
priority = 20;
rcpt = \"@example.org\";
rcpt = \"bounced.user@example.com\";
rcpt = \"hash#tag@example.com\";
rcpt = \"o'brien+tag@xn--bcher-kva.example\";
apply \"default\" {
  MAILCOW_BLACK = 9999.0;
}
symbols [
  \"MAILCOW_BLACK\"
]";

const EXPECTED_RSETTING_SHA256: &str =
    "282d22976fd8a6c1699eab33575c9968f8e0687a79b05d37afbb2a6b33c5cba9";

fn targets(raw: &[&str]) -> Vec<SuppressionTarget> {
    raw.iter().map(|r| SuppressionTarget::parse(r).unwrap()).collect()
}

#[test]
fn addresses_and_domains_render_to_the_expected_map_lines() {
    let map = render_denylist_map(&targets(&INPUT));
    assert_eq!(map.text, EXPECTED_MAP);
    assert_eq!(map.lines, 5);
    assert_eq!(map.sha256, EXPECTED_MAP_SHA256);
    assert_eq!(sha256_hex(EXPECTED_MAP), EXPECTED_MAP_SHA256);
    assert_eq!(map.skipped, [SkipCount { reason: SkipReason::CommentCharacter, count: 1 }]);
    assert_eq!(map.skipped_total(), 1);
}

#[test]
fn the_same_targets_in_another_order_give_the_same_bytes_and_hash() {
    let forward = render_denylist_map(&targets(&INPUT));
    let mut reversed = targets(&INPUT);
    reversed.reverse();
    let mut doubled = targets(&INPUT);
    doubled.extend(targets(&INPUT));
    for other in [render_denylist_map(&reversed), render_denylist_map(&doubled)] {
        assert_eq!(other.text, forward.text);
        assert_eq!(other.sha256, forward.sha256);
    }
    let setting = render_rsetting(&targets(&INPUT)).unwrap();
    assert_eq!(render_rsetting(&reversed).unwrap().content, setting.content);
}

#[test]
fn the_settings_rule_renders_to_the_expected_content() {
    let setting = render_rsetting(&targets(&INPUT)).unwrap();
    assert_eq!(setting.content, EXPECTED_RSETTING);
    assert_eq!(setting.sha256, EXPECTED_RSETTING_SHA256);
    assert_eq!(setting.rcpts, 4);
    assert_eq!(
        setting.skipped,
        [
            SkipCount { reason: SkipReason::Dollar, count: 1 },
            SkipCount { reason: SkipReason::LeadingSlash, count: 1 },
        ]
    );
}

#[test]
fn the_rendered_outputs_load_in_the_rspamd_model_and_block_exactly_the_targets() {
    let map = RegexpMap::parse(&render_denylist_map(&targets(&INPUT)).text);
    assert_eq!(map.keys().len(), 5);
    assert!(map.keys().iter().all(|k| k.error().is_none()));
    let setting = render_rsetting(&targets(&INPUT)).unwrap();
    let settings = SettingsMap::build([(1, setting.content.as_str())]).unwrap();
    for rcpt in
        ["BOUNCED.user@example.com", "anyone@example.org", "o'brien+tag@xn--bcher-kva.example"]
    {
        assert!(map.is_match(rcpt), "{rcpt}");
        assert!(settings.rejects(rcpt), "{rcpt}");
    }
    for rcpt in ["bouncedXuser@example.com", "x@sub.example.org", "o'brien@xn--bcher-kva.example"] {
        assert!(!map.is_match(rcpt), "{rcpt}");
        assert!(!settings.rejects(rcpt), "{rcpt}");
    }
}

#[test]
fn an_empty_list_renders_a_header_only_map_and_a_rule_that_matches_nothing() {
    let map = render_denylist_map(&[]);
    assert_eq!(map.lines, 0);
    assert!(map.text.starts_with("# managed by mailcow-ses-feedback"));
    assert!(RegexpMap::parse(&map.text).keys().is_empty());
    let setting = render_rsetting(&[]).unwrap();
    assert_eq!(setting.rcpts, 0);
    assert!(setting.content.contains(&format!("rcpt = \"{NO_MATCH_RCPT}\";")));
    let settings = SettingsMap::build([(1, setting.content.as_str())]).unwrap();
    assert!(!settings.rejects("someone@example.com"));
}

#[test]
fn debug_output_of_rendered_lists_hides_the_addresses() {
    let map = render_denylist_map(&targets(&INPUT));
    let setting = render_rsetting(&targets(&INPUT)).unwrap();
    for debug in [format!("{map:?}"), format!("{setting:?}")] {
        assert!(!debug.contains("bounced"), "{debug}");
    }
}
