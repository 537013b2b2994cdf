//! The projection of the suppression table: which recipients Mailcow blocks, and which SES
//! account-list calls are still owed. Pure functions over [`TargetState`]s; no I/O.

use std::collections::BTreeMap;

use feedback_domain::{EmailAddress, SuppressionReason, SuppressionTarget};
use mailcow_api::{RenderError, render_denylist_map, render_rsetting};
use ses_account_list::SesReason;

use crate::config::MailcowMode;
use crate::ports::{Rendering, TargetState};

/// Every known target by key (`address` or `*@domain`), merged from the table's reads.
pub type View = BTreeMap<String, TargetState>;

/// The SES reason of a suppression: SES knows only bounces and complaints.
pub fn ses_reason(reason: SuppressionReason) -> SesReason {
    match reason {
        SuppressionReason::Complaint => SesReason::Complaint,
        SuppressionReason::HardBounce
        | SuppressionReason::SoftBounce
        | SuppressionReason::Manual
        | SuppressionReason::SesAccountList => SesReason::Bounce,
    }
}

/// The targets Mailcow must block: every suppression in force.
pub fn blocked_targets(view: &View) -> Vec<SuppressionTarget> {
    view.values().filter(|s| s.active.is_some()).map(|s| s.target.clone()).collect()
}

/// Renders `targets` in the format of `mode`.
///
/// Fails only when the settings rule cannot be rendered (its priority would lose against
/// Mailcow's own rules).
pub fn render(mode: MailcowMode, targets: &[SuppressionTarget]) -> Result<Rendering, RenderError> {
    Ok(match mode {
        MailcowMode::Map => Rendering::Map(render_denylist_map(targets)),
        MailcowMode::Rsetting => Rendering::Rsetting(render_rsetting(targets)?),
    })
}

impl Rendering {
    /// What the sync state stores and compares: `<mode>:<sha256>`, so a change of mode pushes.
    pub fn fingerprint(&self) -> String {
        match self {
            Self::Map(map) => format!("map:{}", map.sha256),
            Self::Rsetting(rule) => format!("rsetting:{}", rule.sha256),
        }
    }

    /// Entries written (map lines or `rcpt` lines).
    pub fn entries(&self) -> usize {
        match self {
            Self::Map(map) => map.lines,
            Self::Rsetting(rule) => rule.rcpts,
        }
    }

    /// Targets that could not be written safely and were left out.
    pub fn skipped(&self) -> &[mailcow_api::SkipCount] {
        match self {
            Self::Map(map) => &map.skipped,
            Self::Rsetting(rule) => &rule.skipped,
        }
    }

    /// Size of the body sent to Mailcow, in bytes.
    pub fn bytes(&self) -> usize {
        match self {
            Self::Map(map) => map.text.len(),
            Self::Rsetting(rule) => rule.content.len(),
        }
    }
}

/// One SES account-list call still owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SesTask {
    /// List the address; then set `ses_listed`.
    Put {
        /// The address.
        address: EmailAddress,
        /// Why.
        reason: SesReason,
    },
    /// Remove the address; then remove `ses_listed` (if the item still exists).
    Delete {
        /// The address.
        address: EmailAddress,
        /// Whether the state item exists.
        exists: bool,
    },
}

impl SesTask {
    /// The address the task is about.
    pub fn address(&self) -> &EmailAddress {
        match self {
            Self::Put { address, .. } | Self::Delete { address, .. } => address,
        }
    }
}

/// The SES calls owed, in the order they are made: deletions of deleted items first (their only
/// record is the stream batch at hand), then puts and deletions alternately, so that a large
/// backlog of one kind does not starve the other. Domains (`*@domain`) are never sent to SES,
/// which suppresses single addresses only.
pub fn ses_tasks(view: &View) -> Vec<SesTask> {
    let mut urgent = Vec::new();
    let mut puts = Vec::new();
    let mut deletes = Vec::new();
    for state in view.values() {
        let SuppressionTarget::Address(address) = &state.target else { continue };
        match (state.active, state.ses_listed) {
            (Some(reason), false) => {
                puts.push(SesTask::Put { address: address.clone(), reason: ses_reason(reason) });
            }
            (None, true) if !state.exists => {
                urgent.push(SesTask::Delete { address: address.clone(), exists: false });
            }
            (None, true) => {
                deletes.push(SesTask::Delete { address: address.clone(), exists: true })
            }
            _ => {}
        }
    }
    let mut tasks = urgent;
    let mut puts = puts.into_iter();
    let mut deletes = deletes.into_iter();
    loop {
        match (puts.next(), deletes.next()) {
            (None, None) => break,
            (put, delete) => tasks.extend(put.into_iter().chain(delete)),
        }
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(key: &str, active: Option<SuppressionReason>, listed: bool) -> TargetState {
        TargetState {
            target: SuppressionTarget::parse(key).unwrap(),
            active,
            ses_listed: listed,
            exists: true,
        }
    }

    fn view(states: Vec<TargetState>) -> View {
        states.into_iter().map(|s| (s.target.key(), s)).collect()
    }

    #[test]
    fn reasons_map_to_the_two_ses_reasons() {
        assert_eq!(ses_reason(SuppressionReason::HardBounce), SesReason::Bounce);
        assert_eq!(ses_reason(SuppressionReason::SoftBounce), SesReason::Bounce);
        assert_eq!(ses_reason(SuppressionReason::SesAccountList), SesReason::Bounce);
        assert_eq!(ses_reason(SuppressionReason::Manual), SesReason::Bounce);
        assert_eq!(ses_reason(SuppressionReason::Complaint), SesReason::Complaint);
    }

    #[test]
    fn only_suppressions_in_force_are_blocked() {
        let view = view(vec![
            state("active@example.com", Some(SuppressionReason::HardBounce), false),
            state("*@blocked.example", Some(SuppressionReason::Manual), false),
            state("expired@example.com", None, true),
        ]);

        let keys: Vec<String> = blocked_targets(&view).iter().map(|t| t.key()).collect();

        assert_eq!(keys, vec!["*@blocked.example", "active@example.com"]);
    }

    #[test]
    fn the_map_fingerprint_changes_with_the_content_and_the_mode() {
        let one = [SuppressionTarget::parse("a@example.com").unwrap()];
        let map = render(MailcowMode::Map, &one).unwrap();
        let empty = render(MailcowMode::Map, &[]).unwrap();
        let rule = render(MailcowMode::Rsetting, &one).unwrap();

        assert!(map.fingerprint().starts_with("map:"));
        assert_ne!(map.fingerprint(), empty.fingerprint());
        assert!(rule.fingerprint().starts_with("rsetting:"));
        let Rendering::Map(text) = &map else { panic!("map mode renders a map") };
        assert!(text.text.starts_with("# managed by mailcow-ses-feedback"));
        assert_eq!(map.entries(), 1);
    }

    #[test]
    fn ses_tasks_put_new_suppressions_and_delete_ended_ones_but_skip_domains() {
        let mut gone = state("erased@example.com", None, true);
        gone.exists = false;
        let view = view(vec![
            state("new1@example.com", Some(SuppressionReason::Complaint), false),
            state("new2@example.com", Some(SuppressionReason::HardBounce), false),
            state("listed@example.com", Some(SuppressionReason::HardBounce), true),
            state("released@example.com", None, true),
            state("never@example.com", None, false),
            state("*@domain.example", Some(SuppressionReason::Manual), false),
            gone,
        ]);

        let tasks = ses_tasks(&view);

        let address = |raw: &str| EmailAddress::parse(raw).unwrap();
        assert_eq!(
            tasks,
            vec![
                SesTask::Delete { address: address("erased@example.com"), exists: false },
                SesTask::Put { address: address("new1@example.com"), reason: SesReason::Complaint },
                SesTask::Delete { address: address("released@example.com"), exists: true },
                SesTask::Put { address: address("new2@example.com"), reason: SesReason::Bounce },
            ]
        );
    }
}
