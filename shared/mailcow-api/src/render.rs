//! Rendering the suppression list into what Mailcow stores: pure, deterministic, no I/O.
//!
//! Owns the two output formats and the rules that keep a hostile address from widening a block:
//!
//! * [`render_denylist_map`]: the Rspamd regexp map `global_rcpt_blacklist.map` (multimap
//!   `GLOBAL_RCPT_BL`). One line per target, `/^local@domain$/i` for an address and
//!   `/@domain$/i` for a whole domain, every regex metacharacter escaped. Rspamd searches each
//!   line in the recipient, so an unanchored or unescaped line would block innocent recipients.
//!   Lines starting with `#` are comments in Rspamd maps; the header uses that.
//! * [`render_rsetting`]: the content of one Rspamd settings rule (UCL) that applies
//!   `MAILCOW_BLACK`. Rspamd compares a plain `rcpt` string with the lowercased recipient, and
//!   `@domain` with the recipient's domain (`settings.lua`), so no regex is needed: addresses are
//!   written as lowercase literals and domains as `@domain`. Mailcow splices this content into the
//!   one settings map that holds every domain's rules, so it is generated strictly.
//!
//! A target that cannot be written safely in a format is skipped and counted, never widened or
//! silently dropped. It must not depend on HTTP or the AWS SDK.

use std::collections::BTreeMap;
use std::fmt;

use aws_lc_rs::digest;
use feedback_domain::SuppressionTarget;

/// The map file of the global recipient denylist.
pub const DENYLIST_MAP: &str = "global_rcpt_blacklist.map";

/// First line of the rendered map: who owns it.
pub const MAP_HEADER: &str =
    "# managed by mailcow-ses-feedback: do not edit, every sync overwrites this map";

/// Priority of the project's settings rule. Mailcow's own rules use 4 to 10 and Rspamd applies
/// only the highest-priority matching rule, so anything above 10 wins over them.
pub const RSETTING_PRIORITY: u32 = 20;

/// Weight applied to `MAILCOW_BLACK`: far above Mailcow's reject threshold (15) even with the
/// `MAILCOW_AUTH` bonus (-20) of authenticated senders.
pub const MAILCOW_BLACK_WEIGHT: &str = "9999.0";

/// `rcpt` written when no target can be rendered: `.invalid` is reserved (RFC 6761), so the rule
/// stays valid and matches nothing. An empty content would be refused by Mailcow's add and
/// ignored by its edit.
pub const NO_MATCH_RCPT: &str = "@mailcow-ses-feedback.invalid";

/// Why a target was not rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// Contains `#`, which starts a comment in Rspamd maps.
    CommentCharacter,
    /// Contains whitespace, which separates key and value in Rspamd maps.
    Whitespace,
    /// Contains a control character.
    ControlCharacter,
    /// Contains `"`, which would end a UCL string or start a quoted map key.
    Quote,
    /// Contains `\`, an escape character in UCL and in map keys.
    Backslash,
    /// Contains `$`: UCL expands `$VAR` inside strings (settings rule only).
    Dollar,
    /// Starts with `/`, which turns a settings `rcpt` string into a regexp (settings rule only).
    LeadingSlash,
}

impl SkipReason {
    /// A stable lowercase name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CommentCharacter => "comment_character",
            Self::Whitespace => "whitespace",
            Self::ControlCharacter => "control_character",
            Self::Quote => "quote",
            Self::Backslash => "backslash",
            Self::Dollar => "dollar",
            Self::LeadingSlash => "leading_slash",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many targets were skipped for one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkipCount {
    /// The reason.
    pub reason: SkipReason,
    /// How many targets.
    pub count: usize,
}

/// The rendered recipient denylist.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedMap {
    /// The whole file, newline-terminated: what `rspamd_map_data` carries. Personal data.
    pub text: String,
    /// Number of entry lines (header excluded).
    pub lines: usize,
    /// Targets that were not rendered, by reason (sorted by reason, no zero counts).
    pub skipped: Vec<SkipCount>,
    /// SHA-256 of `text`, lowercase hex: compare with the last pushed hash to write only changes.
    pub sha256: String,
}

impl RenderedMap {
    /// Total number of skipped targets.
    pub fn skipped_total(&self) -> usize {
        self.skipped.iter().map(|s| s.count).sum()
    }
}

impl fmt::Debug for RenderedMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedMap")
            .field("lines", &self.lines)
            .field("skipped", &self.skipped)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// The rendered settings rule.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedSetting {
    /// The UCL content for `add/rsetting` and `edit/rsetting`, without a trailing newline
    /// (Mailcow trims it on edit). Personal data.
    pub content: String,
    /// Number of `rcpt` lines for real targets (the no-match placeholder is not counted).
    pub rcpts: usize,
    /// Targets that were not rendered, by reason.
    pub skipped: Vec<SkipCount>,
    /// SHA-256 of `content`, lowercase hex.
    pub sha256: String,
}

impl RenderedSetting {
    /// Total number of skipped targets.
    pub fn skipped_total(&self) -> usize {
        self.skipped.iter().map(|s| s.count).sum()
    }
}

impl fmt::Debug for RenderedSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedSetting")
            .field("rcpts", &self.rcpts)
            .field("skipped", &self.skipped)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// Why a settings rule cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The priority would not win over Mailcow's own rules (4 to 10).
    #[error("settings rule priority {0} is not above 10, Mailcow's own rules would win")]
    PriorityTooLow(u32),
}

/// Characters a PCRE (or `regex` crate) pattern treats specially, plus the `/` delimiter of
/// Rspamd's `/pattern/flags` form.
const REGEX_SPECIAL: &str = "\\^$.|?*+()[]{}/";

/// Escapes every regex metacharacter and the `/` delimiter, so the text matches only itself.
pub fn escape_regex(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if REGEX_SPECIAL.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn check_map_safe(value: &str) -> Result<(), SkipReason> {
    for c in value.chars() {
        let reason = match c {
            '#' => SkipReason::CommentCharacter,
            '"' => SkipReason::Quote,
            '\\' => SkipReason::Backslash,
            c if c.is_whitespace() => SkipReason::Whitespace,
            c if c.is_control() => SkipReason::ControlCharacter,
            _ => continue,
        };
        return Err(reason);
    }
    Ok(())
}

fn check_rsetting_safe(value: &str) -> Result<(), SkipReason> {
    if value.starts_with('/') {
        return Err(SkipReason::LeadingSlash);
    }
    for c in value.chars() {
        let reason = match c {
            '"' => SkipReason::Quote,
            '\\' => SkipReason::Backslash,
            '$' => SkipReason::Dollar,
            c if c.is_whitespace() => SkipReason::Whitespace,
            c if c.is_control() => SkipReason::ControlCharacter,
            _ => continue,
        };
        return Err(reason);
    }
    Ok(())
}

/// The denylist line for one target: `/^local@domain$/i` or `/@domain$/i`.
///
/// Fails with the reason when the target cannot be written into a regexp map safely.
pub fn map_line(target: &SuppressionTarget) -> Result<String, SkipReason> {
    match target {
        SuppressionTarget::Address(address) => {
            check_map_safe(address.as_str())?;
            Ok(format!("/^{}$/i", escape_regex(address.as_str())))
        }
        SuppressionTarget::Domain(domain) => {
            check_map_safe(domain.as_str())?;
            Ok(format!("/@{}$/i", escape_regex(domain.as_str())))
        }
    }
}

/// The settings `rcpt` value for one target (without quotes): the address, or `@domain`.
///
/// Fails with the reason when the target cannot be written into a UCL string safely.
pub fn rsetting_rcpt(target: &SuppressionTarget) -> Result<String, SkipReason> {
    let value = match target {
        // Rspamd lowercases the recipient and compares it with the key as written.
        SuppressionTarget::Address(address) => address.as_str().to_lowercase(),
        SuppressionTarget::Domain(domain) => format!("@{}", domain.as_str().to_lowercase()),
    };
    check_rsetting_safe(&value)?;
    Ok(value)
}

/// Renders the denylist map: header, then one sorted, deduplicated line per target.
///
/// The same set of targets in any order gives the same bytes and hash.
pub fn render_denylist_map(targets: &[SuppressionTarget]) -> RenderedMap {
    let (lines, skipped) = collect(targets, map_line);
    let mut text = String::with_capacity(64 + lines.len() * 40);
    text.push_str(MAP_HEADER);
    text.push('\n');
    text.push_str(&format!("# entries: {}\n", lines.len()));
    for line in &lines {
        text.push_str(line);
        text.push('\n');
    }
    let sha256 = sha256_hex(&text);
    RenderedMap { text, lines: lines.len(), skipped, sha256 }
}

/// Renders the settings rule with [`RSETTING_PRIORITY`].
///
/// Fails only as [`render_rsetting_with_priority`] does.
pub fn render_rsetting(targets: &[SuppressionTarget]) -> Result<RenderedSetting, RenderError> {
    render_rsetting_with_priority(targets, RSETTING_PRIORITY)
}

/// Renders the settings rule: priority, one sorted `rcpt` line per target, and the
/// `MAILCOW_BLACK` apply block.
///
/// Fails with [`RenderError::PriorityTooLow`] for a priority of 10 or less.
pub fn render_rsetting_with_priority(
    targets: &[SuppressionTarget],
    priority: u32,
) -> Result<RenderedSetting, RenderError> {
    if priority <= 10 {
        return Err(RenderError::PriorityTooLow(priority));
    }
    let (rcpts, skipped) = collect(targets, rsetting_rcpt);
    let mut content = format!("priority = {priority};\n");
    let placeholder = [NO_MATCH_RCPT.to_owned()];
    let written = if rcpts.is_empty() { &placeholder[..] } else { &rcpts[..] };
    for rcpt in written {
        content.push_str(&format!("rcpt = \"{rcpt}\";\n"));
    }
    content.push_str(&format!(
        "apply \"default\" {{\n  MAILCOW_BLACK = {MAILCOW_BLACK_WEIGHT};\n}}\n"
    ));
    content.push_str("symbols [\n  \"MAILCOW_BLACK\"\n]");
    let sha256 = sha256_hex(&content);
    Ok(RenderedSetting { content, rcpts: rcpts.len(), skipped, sha256 })
}

/// Renders each target, sorting and deduplicating the results and counting the skips.
fn collect(
    targets: &[SuppressionTarget],
    render: impl Fn(&SuppressionTarget) -> Result<String, SkipReason>,
) -> (Vec<String>, Vec<SkipCount>) {
    let mut lines = Vec::with_capacity(targets.len());
    let mut skipped: BTreeMap<SkipReason, usize> = BTreeMap::new();
    for target in targets {
        match render(target) {
            Ok(line) => lines.push(line),
            Err(reason) => *skipped.entry(reason).or_default() += 1,
        }
    }
    lines.sort_unstable();
    lines.dedup();
    let skipped = skipped.into_iter().map(|(reason, count)| SkipCount { reason, count }).collect();
    (lines, skipped)
}

/// SHA-256 of `text` as lowercase hex.
pub fn sha256_hex(text: &str) -> String {
    let digest = digest::digest(&digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_every_metacharacter_and_the_delimiter() {
        assert_eq!(escape_regex("a.b+c?d|e"), "a\\.b\\+c\\?d\\|e");
        assert_eq!(escape_regex("^$*()[]{}\\/"), "\\^\\$\\*\\(\\)\\[\\]\\{\\}\\\\\\/");
        assert_eq!(escape_regex("plain-text_1'!%&=~`"), "plain-text_1'!%&=~`");
    }

    #[test]
    fn map_safety_refuses_map_syntax_characters() {
        assert_eq!(check_map_safe("a#b"), Err(SkipReason::CommentCharacter));
        assert_eq!(check_map_safe("a b"), Err(SkipReason::Whitespace));
        assert_eq!(check_map_safe("a\u{a0}b"), Err(SkipReason::Whitespace));
        assert_eq!(check_map_safe("a\u{7}b"), Err(SkipReason::ControlCharacter));
        assert_eq!(check_map_safe("a\"b"), Err(SkipReason::Quote));
        assert_eq!(check_map_safe("a\\b"), Err(SkipReason::Backslash));
        assert_eq!(check_map_safe("a$b.c|d"), Ok(()));
    }

    #[test]
    fn rsetting_safety_refuses_ucl_syntax_and_regex_form() {
        assert_eq!(check_rsetting_safe("/a@b"), Err(SkipReason::LeadingSlash));
        assert_eq!(check_rsetting_safe("a$b@c"), Err(SkipReason::Dollar));
        assert_eq!(check_rsetting_safe("a\"b@c"), Err(SkipReason::Quote));
        assert_eq!(check_rsetting_safe("a\\b@c"), Err(SkipReason::Backslash));
        assert_eq!(check_rsetting_safe("a\nb@c"), Err(SkipReason::Whitespace));
        assert_eq!(check_rsetting_safe("a#b/c{d}@e"), Ok(()));
    }

    #[test]
    fn a_priority_of_ten_or_less_is_refused() {
        assert_eq!(render_rsetting_with_priority(&[], 10), Err(RenderError::PriorityTooLow(10)));
        assert!(render_rsetting_with_priority(&[], 11).is_ok());
    }

    #[test]
    fn the_hash_is_sha256_of_the_text() {
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
