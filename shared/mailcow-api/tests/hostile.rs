//! A hostile entry can never widen a block.
//!
//! Rendered lines are loaded with the simulator's model of Rspamd (`RegexpMap`, `SettingsMap`)
//! and checked against the address they stand for and against its one-character neighbours:
//! every line matches exactly its own address (up to ASCII case), and a domain line matches every
//! mailbox of that domain and nothing else.

#![allow(clippy::unwrap_used, reason = "test helpers panic on failure, failing the test")]

use feedback_domain::{EmailAddress, SuppressionTarget};
use mailcow_api::render::escape_regex;
use mailcow_api::{map_line, render_denylist_map, render_rsetting};
use proptest::prelude::*;
use simulators::mailcow::rspamd::{RegexpMap, RspamdRegexp, SettingsMap};

/// Local parts built from every character `EmailAddress::parse` accepts that means something in
/// a regex or a map (`. + ? | ^ $ { } / #`), plus ordinary ones and a non-ASCII letter.
fn local_part() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9.+?|^${}/#'!%&=~_é-]{1,12}"
}

fn domain() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,6}(\\.[a-z0-9]{1,3}(-[a-z0-9]{1,3})?){0,2}\\.(com|org|example)"
}

fn address() -> impl Strategy<Value = EmailAddress> {
    (local_part(), domain())
        .prop_filter_map("not a mailbox", |(l, d)| EmailAddress::parse(&format!("{l}@{d}")).ok())
}

/// Every string one deletion, substitution or insertion away from `s` (all differ from `s`
/// even ignoring ASCII case).
fn neighbours(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    for i in 0..chars.len() {
        let mut deleted = chars.clone();
        deleted.remove(i);
        out.push(deleted.iter().collect());
        let mut substituted = chars.clone();
        substituted[i] = if chars[i].eq_ignore_ascii_case(&'a') { 'b' } else { 'a' };
        out.push(substituted.iter().collect());
    }
    for i in 0..=chars.len() {
        for extra in ['z', '.', '@'] {
            let mut inserted = chars.clone();
            inserted.insert(i, extra);
            out.push(inserted.iter().collect());
        }
    }
    out
}

fn map_of(targets: &[SuppressionTarget]) -> RegexpMap {
    RegexpMap::parse(&render_denylist_map(targets).text)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn an_address_line_matches_its_address_and_none_of_its_neighbours(address in address()) {
        let target = SuppressionTarget::Address(address.clone());
        let map = map_of(std::slice::from_ref(&target));
        let own = address.as_str();
        if own.contains('#') {
            prop_assert!(map_line(&target).is_err());
            prop_assert!(map.keys().is_empty());
            return Ok(());
        }
        prop_assert_eq!(map.keys().len(), 1);
        prop_assert!(map.keys()[0].error().is_none(), "{:?}", map.keys()[0].error());
        prop_assert!(map.is_match(own));
        prop_assert!(map.is_match(&own.to_ascii_uppercase()));
        for neighbour in neighbours(own) {
            prop_assert!(!map.is_match(&neighbour), "{} matched {}", map.keys()[0].key, neighbour);
        }
        let local = address.local_part();
        let domain = address.domain();
        for other in [
            format!("{local}@sub.{domain}"),
            format!("{local}@{domain}.evil.example"),
            format!("x{own}"),
            format!("{own}x"),
        ] {
            prop_assert!(!map.is_match(&other), "{} matched {}", map.keys()[0].key, other);
        }
    }

    #[test]
    fn each_line_of_a_map_matches_exactly_one_listed_address(
        addresses in proptest::collection::vec(address(), 1..8),
    ) {
        let targets: Vec<SuppressionTarget> =
            addresses.iter().cloned().map(SuppressionTarget::Address).collect();
        let map = map_of(&targets);
        let mut listed: Vec<&str> =
            addresses.iter().map(EmailAddress::as_str).filter(|a| !a.contains('#')).collect();
        listed.sort_unstable();
        listed.dedup();
        prop_assert_eq!(map.keys().len(), listed.len());
        for key in map.keys() {
            let hits = listed.iter().filter(|a| key.is_match(a)).count();
            prop_assert_eq!(hits, 1, "{} matched {} listed addresses", key.key, hits);
        }
    }

    #[test]
    fn a_domain_line_matches_every_mailbox_there_and_nothing_else(
        domain in domain(),
        local in local_part(),
    ) {
        let target = SuppressionTarget::parse(&format!("*@{domain}")).unwrap();
        let map = map_of(std::slice::from_ref(&target));
        prop_assert_eq!(map.keys().len(), 1);
        if let Ok(address) = EmailAddress::parse(&format!("{local}@{domain}")) {
            prop_assert!(map.is_match(address.as_str()));
            prop_assert!(map.is_match(&address.as_str().to_ascii_uppercase()));
        }
        let first_dot = domain.find('.').unwrap();
        let mut dotless = domain.clone();
        dotless.replace_range(first_dot..=first_dot, "x");
        for other in [
            format!("x@sub.{domain}"),
            format!("x@x{domain}"),
            format!("x@{}", &domain[1..]),
            format!("x@{domain}.evil.example"),
            format!("x@{dotless}"),
            format!("x@{domain}x"),
            domain.clone(),
        ] {
            prop_assert!(!map.is_match(&other), "{} matched {}", map.keys()[0].key, other);
        }
    }

    #[test]
    fn escaping_makes_any_text_a_literal(text in "\\PC{0,16}") {
        let re = RspamdRegexp::compile(&format!("/^{}$/", escape_regex(&text))).unwrap();
        prop_assert!(re.is_match(&text));
        for neighbour in neighbours(&text) {
            prop_assert!(!re.is_match(&neighbour), "{:?} matched {:?}", text, neighbour);
        }
    }

    #[test]
    fn the_settings_rule_stays_valid_and_rejects_only_its_targets(
        addresses in proptest::collection::vec(address(), 1..6),
        domains in proptest::collection::vec(domain(), 0..3),
    ) {
        let mut targets: Vec<SuppressionTarget> =
            addresses.iter().cloned().map(SuppressionTarget::Address).collect();
        let domain_target = |d: &String| SuppressionTarget::parse(&format!("*@{d}")).unwrap();
        targets.extend(domains.iter().map(domain_target));
        let setting = render_rsetting(&targets).unwrap();
        let settings = SettingsMap::build([(1, setting.content.as_str())]);
        prop_assert!(settings.is_ok(), "{:?}", settings.err());
        let settings = settings.unwrap();
        let blocked_domain = |rcpt: &str| {
            rcpt.rsplit_once('@').is_some_and(|(_, d)| domains.iter().any(|b| b == d))
        };
        let listed: Vec<&str> = addresses.iter().map(EmailAddress::as_str).collect();
        for address in &addresses {
            let own = address.as_str();
            let renderable = !own.contains('$') && !own.starts_with('/');
            prop_assert_eq!(settings.rejects(own), renderable || blocked_domain(own), "{}", own);
            for neighbour in neighbours(own) {
                let lowered = neighbour.to_ascii_lowercase();
                if listed.contains(&lowered.as_str()) || blocked_domain(&lowered) {
                    continue;
                }
                prop_assert!(!settings.rejects(&neighbour), "{} rejected", neighbour);
            }
        }
    }
}

#[test]
fn metacharacters_accepted_in_local_parts_are_literal_in_the_map() {
    let cases: [(&str, &[&str]); 6] = [
        ("a.b@example.com", &["axb@example.com", "a.b@exampleXcom"]),
        ("a|b@example.com", &["a@example.com", "b@example.com"]),
        ("a+@example.com", &["aa@example.com", "a@example.com"]),
        ("a?b@example.com", &["ab@example.com", "b@example.com"]),
        ("^$@example.com", &["@example.com", "x@example.com"]),
        ("{1}a@example.com", &["a@example.com", "1a@example.com"]),
    ];
    for (listed, innocents) in cases {
        let target = SuppressionTarget::parse(listed).unwrap();
        let map = map_of(&[target]);
        assert!(map.is_match(listed), "{listed}");
        for innocent in innocents {
            assert!(!map.is_match(innocent), "{listed} blocked {innocent}");
        }
    }
}

#[test]
fn characters_the_address_parser_refuses_cannot_reach_the_map() {
    for hostile in ["a*@example.com", ".*@example.com", "(a)@example.com", "[a]@example.com"] {
        assert!(SuppressionTarget::parse(hostile).is_err(), "{hostile}");
    }
    // Even if one did, the escaping keeps it literal.
    let re = RspamdRegexp::compile(&format!("/^{}$/i", escape_regex(".*@example.com"))).unwrap();
    assert!(re.is_match(".*@example.com"));
    assert!(!re.is_match("anyone@example.com"));
}
