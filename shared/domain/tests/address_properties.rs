//! Properties of address normalisation over generated input: whatever SES reports, what is
//! accepted is one normalised mailbox, and normalising it again changes nothing.

use feedback_domain::{EmailAddress, SuppressionTarget};
use proptest::prelude::*;

/// Characters that can never be part of a stored mailbox.
const FORBIDDEN: &[char] =
    &[' ', '\t', '\n', '\r', '\u{0}', '\u{7f}', '*', ',', ';', '<', '>', '"', '\\', '(', ')'];

fn local_part() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'+/=?^_`{|}~-]{1,20}(\\.[A-Za-z0-9_+-]{1,10}){0,2}"
}

fn domain() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9]{1,12}(-[A-Za-z0-9]{1,5})?(\\.[A-Za-z0-9]{1,12}){0,2}\\.[A-Za-z]{2,6}",
        // Internationalised labels, stored as punycode.
        "(bücher|müller|straße|例え|пример)\\.(de|example|рф)",
    ]
}

fn address() -> impl Strategy<Value = String> {
    (local_part(), domain()).prop_map(|(local, domain)| format!("{local}@{domain}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn whatever_is_accepted_is_one_normalised_mailbox(raw in any::<String>()) {
        if let Ok(address) = EmailAddress::parse(&raw) {
            let text = address.as_str();
            prop_assert_eq!(text.matches('@').count(), 1);
            prop_assert!(text.len() <= 254);
            prop_assert!(!text.chars().any(|c| FORBIDDEN.contains(&c) || c.is_whitespace()));
            prop_assert!(address.domain().is_ascii(), "the domain is stored as punycode");
            prop_assert_eq!(EmailAddress::parse(text), Ok(address.clone()), "idempotent");
        }
    }

    #[test]
    fn generated_addresses_are_accepted_and_normalising_twice_changes_nothing(raw in address()) {
        let once = EmailAddress::parse(&raw).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(EmailAddress::parse(once.as_str()), Ok(once.clone()));
        prop_assert_eq!(once.as_str(), once.as_str().to_lowercase());
    }

    #[test]
    fn case_and_display_names_do_not_make_another_address(
        raw in address(),
        name in "[A-Za-z .'-]{0,30}",
    ) {
        let plain = EmailAddress::parse(&raw);
        // ASCII upper case only: Unicode upper case is not reversible (`ß` becomes `SS`, another
        // domain), and SES reports what the recipient's server wrote.
        prop_assert_eq!(EmailAddress::parse(&raw.to_ascii_uppercase()), plain.clone());
        prop_assert_eq!(EmailAddress::parse(&format!("\"{name}\" <{raw}>")), plain.clone());
        prop_assert_eq!(EmailAddress::parse(&format!("  <{raw}>  ")), plain);
    }

    #[test]
    fn a_forbidden_character_anywhere_is_refused(
        raw in address(),
        position in any::<prop::sample::Index>(),
        bad in prop::sample::select(FORBIDDEN),
    ) {
        let mut chars: Vec<char> = raw.chars().collect();
        let at = position.index(chars.len() + 1);
        chars.insert(at, bad);
        let damaged: String = chars.into_iter().collect();
        // Surrounding whitespace is trimmed like SES's own formatting; anywhere else it is refused.
        let trimmed_away = bad.is_whitespace() && (at == 0 || at == raw.chars().count());
        prop_assert_eq!(EmailAddress::parse(&damaged).is_err(), !trimmed_away, "{:?}", damaged);
    }

    #[test]
    fn two_addresses_joined_are_never_one(a in address(), b in address()) {
        for joined in [format!("{a},{b}"), format!("{a} {b}"), format!("{a};{b}"), format!("{a}@{b}")] {
            prop_assert!(EmailAddress::parse(&joined).is_err(), "{:?}", joined);
        }
    }

    #[test]
    fn a_domain_pattern_and_an_address_never_share_a_key(raw in address()) {
        let address = EmailAddress::parse(&raw).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let domain = SuppressionTarget::parse(&format!("*@{}", address.domain()))
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let single = SuppressionTarget::parse(address.as_str())
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_ne!(domain.key(), single.key());
        prop_assert_eq!(domain.domain(), single.domain());
    }
}
