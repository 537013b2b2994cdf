//! How Rspamd reads what the Mailcow API stores: regexp maps and settings rules.
//!
//! Owns the answer to "would Rspamd reject mail to this recipient?" for the two mechanisms the
//! project writes: the global recipient denylist (multimap `GLOBAL_RCPT_BL`, a regexp map,
//! prefilter, action reject) and a settings rule that applies `MAILCOW_BLACK`. It is pure: no I/O,
//! no HTTP, so tests can use it without a running simulator.
//!
//! What is modelled, from Rspamd's sources (`src/libutil/map_helpers.c` `rspamd_parse_kv_list`,
//! `src/libutil/regexp.c` `rspamd_regexp_new_len`, `src/plugins/lua/settings.lua`,
//! `lualib/lua_maps.lua` `rspamd_maybe_check_map`):
//!
//! * Map lines: leading whitespace skipped; `#` starts a comment (after a key too, unless escaped
//!   as `\#` in a plain key); a key that starts with `/` runs to the next unescaped `/` and then to
//!   whitespace or `#`; whitespace separates key and value; a key that starts with `"` is quoted.
//!   A last line without a newline is dropped when it is a `/.../` key, as Rspamd does (Mailcow
//!   always appends one).
//! * Regexps: `/pattern/flags` or `m<sep>pattern<sep>flags` (full match), otherwise the whole key
//!   is an unanchored pattern. Flags `i m s x u` change matching (`u` = UTF-8 mode; without it the
//!   pattern matches bytes and `i` folds ASCII only, as PCRE in raw mode does); `O L r` are
//!   accepted and ignored; an unknown flag ends flag parsing. Matching is a search, not a full
//!   match. Patterns are compiled with the `regex` crate, so PCRE-only syntax (backreferences,
//!   lookaround) makes a line invalid here although Rspamd would accept it.
//! * Settings `rcpt` strings: `/.../flags` is a regexp (searched in the address), `@domain` matches
//!   the recipient's domain, a string with `@` matches the whole address, anything else the local
//!   part; plain strings compare against the lowercased recipient (`what:lower() == key`), so they
//!   are case-insensitive only when written in lowercase. `map:` references never match here.
//! * Settings selection: rules are tried from the highest priority down (`high` = 3,
//!   `medium` = 2, default 1, numbers as given); the first priority level with a matching rule
//!   decides. The message is modelled as an authenticated outbound submission: `authenticated`
//!   holds, `rcpt` is evaluated, every other condition (`from`, `ip`, `header`, ...) is unknown and
//!   makes the rule not match. A rule rejects when it adds `MAILCOW_BLACK` (in `symbols`) and
//!   applies a weight at or above Mailcow's reject threshold (15).

use std::fmt;

use regex::bytes::{Regex, RegexBuilder};

/// Mailcow's `reject` action threshold (`data/conf/rspamd/local.d/actions.conf`).
pub const REJECT_THRESHOLD: f64 = 15.0;

/// One compiled Rspamd regexp.
#[derive(Clone)]
pub struct RspamdRegexp {
    re: Regex,
    full_match: bool,
}

impl fmt::Debug for RspamdRegexp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RspamdRegexp({:?}, full_match: {})", self.re.as_str(), self.full_match)
    }
}

impl RspamdRegexp {
    /// Compiles a key the way `rspamd_regexp_new(key, NULL)` does.
    ///
    /// Fails when a `/.../` or `m{...}` key is not closed, or the pattern does not compile.
    pub fn compile(key: &str) -> Result<Self, String> {
        let bytes = key.as_bytes();
        let mut full_match = false;
        let (pattern, flags) = if bytes.len() > 1 && bytes[0] == b'/' {
            split_delimited(key, 1, '/')?
        } else if bytes.len() > 1 && bytes[0] == b'm' && !bytes[1].is_ascii_alphanumeric() {
            let open = key[1..].chars().next().unwrap_or('/');
            let close = if open == '{' { '}' } else { open };
            full_match = true;
            split_delimited(key, 1 + open.len_utf8(), close)?
        } else {
            (key, "")
        };
        let mut builder = RegexBuilder::new(pattern);
        builder.unicode(false);
        for flag in flags.chars() {
            match flag {
                'i' => {
                    builder.case_insensitive(true);
                }
                'm' => {
                    builder.multi_line(true);
                }
                's' => {
                    builder.dot_matches_new_line(true);
                }
                'x' => {
                    builder.ignore_whitespace(true);
                }
                'u' => {
                    builder.unicode(true);
                }
                'r' => {
                    builder.unicode(false);
                }
                'O' | 'L' => {}
                // Rspamd warns and stops reading flags; the pattern still compiles.
                _ => break,
            }
        }
        let re = builder.build().map_err(|err| format!("cannot compile {key:?}: {err}"))?;
        Ok(Self { re, full_match })
    }

    /// Whether the regexp finds a match in `text` (the whole text for `m{...}` keys).
    pub fn is_match(&self, text: &str) -> bool {
        if self.full_match {
            self.re.find(text.as_bytes()).is_some_and(|m| m.start() == 0 && m.end() == text.len())
        } else {
            self.re.is_match(text.as_bytes())
        }
    }
}

/// Splits `key` at the last `close`, after the opening delimiter that ends at `start`.
fn split_delimited(key: &str, start: usize, close: char) -> Result<(&str, &str), String> {
    match key.rfind(close) {
        Some(last) if last >= start => Ok((&key[start..last], &key[last + close.len_utf8()..])),
        _ => Err(format!("pattern is not enclosed with {close}: {key:?}")),
    }
}

/// One key of a regexp map, with its compiled regexp when it compiled.
#[derive(Debug, Clone)]
pub struct MapKey {
    /// 1-based line on which the key started.
    pub line: usize,
    /// The key as Rspamd stored it.
    pub key: String,
    regexp: Result<RspamdRegexp, String>,
}

impl MapKey {
    /// The compile error Rspamd would log for this key, if any.
    pub fn error(&self) -> Option<&str> {
        self.regexp.as_ref().err().map(String::as_str)
    }

    /// Whether this key matches `text`. A key that did not compile matches nothing.
    pub fn is_match(&self, text: &str) -> bool {
        self.regexp.as_ref().is_ok_and(|re| re.is_match(text))
    }
}

/// A regexp map as Rspamd loads it from a file.
#[derive(Debug, Clone, Default)]
pub struct RegexpMap {
    keys: Vec<MapKey>,
}

impl RegexpMap {
    /// Reads map text the way Rspamd's list parser does (see the module documentation).
    pub fn parse(text: &str) -> Self {
        let mut keys: Vec<MapKey> = Vec::new();
        for (line, key) in parse_kv_keys(text) {
            // Rspamd keeps the first of duplicate keys.
            if keys.iter().any(|k| k.key == key) {
                continue;
            }
            let regexp = RspamdRegexp::compile(&key);
            keys.push(MapKey { line, key, regexp });
        }
        Self { keys }
    }

    /// Every key, in file order.
    pub fn keys(&self) -> &[MapKey] {
        &self.keys
    }

    /// Whether any key matches the recipient (what `GLOBAL_RCPT_BL` checks).
    pub fn is_match(&self, rcpt: &str) -> bool {
        self.keys.iter().any(|k| k.is_match(rcpt))
    }

    /// The keys that match the recipient.
    pub fn matching_keys(&self, rcpt: &str) -> Vec<&str> {
        self.keys.iter().filter(|k| k.is_match(rcpt)).map(|k| k.key.as_str()).collect()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KvState {
    SkipSpacesBeforeKey,
    ReadKey,
    ReadKeyQuoted,
    ReadKeySlashed,
    ReadKeyAfterSlash,
    BackslashQuoted,
    BackslashSlashed,
    SkipSpacesAfterKey,
    ReadValue,
    SkipComment,
    ReadEol,
}

/// The keys of a map, with the line each started on: a port of `rspamd_parse_kv_list`.
fn parse_kv_keys(text: &str) -> Vec<(usize, String)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut state = KvState::SkipSpacesBeforeKey;
    let (mut p, mut c) = (0usize, 0usize);
    let mut line = 1usize;
    let mut key_line = 1usize;
    let mut pending: Option<String> = None;
    let store = |from: usize, to: usize| -> String {
        String::from_utf8_lossy(&b[from..to]).trim().to_owned()
    };
    while p < b.len() {
        let ch = b[p];
        match state {
            KvState::SkipSpacesBeforeKey => {
                if ch.is_ascii_whitespace() {
                    if ch == b'\n' {
                        line += 1;
                    }
                    p += 1;
                } else {
                    key_line = line;
                    if ch == b'"' {
                        p += 1;
                        c = p;
                        state = KvState::ReadKeyQuoted;
                    } else if ch == b'/' {
                        c = p;
                        p += 1;
                        state = KvState::ReadKeySlashed;
                    } else {
                        c = p;
                        state = KvState::ReadKey;
                    }
                }
            }
            KvState::ReadKey | KvState::ReadKeyAfterSlash => {
                let escaped_hash =
                    state == KvState::ReadKey && p > c && b[p - 1] == b'\\' && ch == b'#';
                if ch == b'#' && !escaped_hash {
                    if p > c {
                        out.push((key_line, store(c, p)));
                    }
                    state = KvState::SkipComment;
                } else if ch == b'\r' || ch == b'\n' {
                    if p > c {
                        out.push((key_line, store(c, p)));
                    }
                    state = KvState::ReadEol;
                } else if ch.is_ascii_whitespace() {
                    if p > c {
                        pending = Some(store(c, p));
                        state = KvState::SkipSpacesAfterKey;
                    } else {
                        state = KvState::SkipComment;
                    }
                } else {
                    p += 1;
                }
            }
            KvState::ReadKeyQuoted => {
                if ch == b'\\' {
                    state = KvState::BackslashQuoted;
                    p += 1;
                } else if ch == b'"' {
                    pending = Some(store(c, p));
                    state = KvState::SkipSpacesAfterKey;
                    p += 1;
                } else {
                    if ch == b'\n' {
                        line += 1;
                    }
                    p += 1;
                }
            }
            KvState::ReadKeySlashed => {
                if ch == b'\\' {
                    state = KvState::BackslashSlashed;
                    p += 1;
                } else if ch == b'/' {
                    state = KvState::ReadKeyAfterSlash;
                } else {
                    if ch == b'\n' {
                        line += 1;
                    }
                    p += 1;
                }
            }
            KvState::BackslashQuoted => {
                p += 1;
                state = KvState::ReadKeyQuoted;
            }
            KvState::BackslashSlashed => {
                p += 1;
                state = KvState::ReadKeySlashed;
            }
            KvState::SkipSpacesAfterKey => {
                if ch == b' ' || ch == b'\t' {
                    p += 1;
                } else {
                    c = p;
                    state = KvState::ReadValue;
                }
            }
            KvState::ReadValue => {
                if ch == b'#' || ch == b'\r' || ch == b'\n' {
                    if let Some(key) = pending.take() {
                        out.push((key_line, key));
                    }
                    state = if ch == b'#' { KvState::SkipComment } else { KvState::ReadEol };
                } else {
                    p += 1;
                }
            }
            KvState::SkipComment => {
                if ch == b'\r' || ch == b'\n' {
                    state = KvState::ReadEol;
                } else {
                    p += 1;
                }
            }
            KvState::ReadEol => {
                if ch == b'\r' || ch == b'\n' {
                    if ch == b'\n' {
                        line += 1;
                    }
                    p += 1;
                } else {
                    state = KvState::SkipSpacesBeforeKey;
                }
            }
        }
    }
    match state {
        KvState::ReadKey if p > c => out.push((key_line, store(c, p))),
        KvState::ReadValue => {
            if let Some(key) = pending.take() {
                out.push((key_line, key));
            }
        }
        _ => {}
    }
    out
}

/// A value of the small UCL subset settings rules are written in.
#[derive(Debug, Clone, PartialEq)]
pub enum Ucl {
    /// A quoted string or an unquoted atom that is not a number.
    Str(String),
    /// A number.
    Num(f64),
    /// An object; keys may repeat (UCL turns repeats into implicit arrays).
    Obj(Vec<(String, Ucl)>),
    /// An array.
    Arr(Vec<Ucl>),
}

impl Ucl {
    /// Every value stored under `key` in an object, flattening arrays.
    fn all(&self, key: &str) -> Vec<&Ucl> {
        let Ucl::Obj(pairs) = self else { return Vec::new() };
        let mut out = Vec::new();
        for (k, v) in pairs {
            if k.eq_ignore_ascii_case(key) {
                match v {
                    Ucl::Arr(items) => out.extend(items.iter()),
                    other => out.push(other),
                }
            }
        }
        out
    }

    fn first(&self, key: &str) -> Option<&Ucl> {
        self.all(key).into_iter().next()
    }
}

/// Parses the body of a UCL object (what Mailcow splices into `additional_settings_<id> { }`).
///
/// Fails, with the byte offset, on anything the strict subset does not accept: an unterminated
/// string or comment, an invalid escape, a control character inside a string, an unbalanced
/// brace or bracket, or a missing value.
pub fn parse_ucl_body(text: &str) -> Result<Ucl, String> {
    let mut parser = UclParser { b: text.as_bytes(), p: 0 };
    let body = parser.object_body(None)?;
    Ok(body)
}

struct UclParser<'a> {
    b: &'a [u8],
    p: usize,
}

impl UclParser<'_> {
    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("ucl: {what} at byte {}", self.p))
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.p).copied()
    }

    /// Skips whitespace and comments. Returns whether a newline was crossed.
    fn skip_ws(&mut self) -> Result<bool, String> {
        let mut newline = false;
        loop {
            match self.peek() {
                Some(b'\n') => {
                    newline = true;
                    self.p += 1;
                }
                Some(ch) if ch.is_ascii_whitespace() => self.p += 1,
                Some(b'#') => {
                    while let Some(ch) = self.peek() {
                        if ch == b'\n' {
                            break;
                        }
                        self.p += 1;
                    }
                }
                Some(b'/') if self.b.get(self.p + 1) == Some(&b'*') => {
                    let Some(end) = find(self.b, self.p + 2, b"*/") else {
                        return self.err("unterminated comment");
                    };
                    self.p = end + 2;
                }
                _ => return Ok(newline),
            }
        }
    }

    fn object_body(&mut self, close: Option<u8>) -> Result<Ucl, String> {
        let mut pairs = Vec::new();
        loop {
            self.skip_ws()?;
            match self.peek() {
                None if close.is_none() => return Ok(Ucl::Obj(pairs)),
                None => return self.err("unexpected end inside an object"),
                Some(ch) if Some(ch) == close => {
                    self.p += 1;
                    return Ok(Ucl::Obj(pairs));
                }
                Some(b'}') | Some(b']') => return self.err("unbalanced closing brace"),
                Some(b';') | Some(b',') => self.p += 1,
                Some(_) => {
                    let key = self.key()?;
                    self.skip_ws()?;
                    if matches!(self.peek(), Some(b'=') | Some(b':')) {
                        self.p += 1;
                        self.skip_ws()?;
                    }
                    let value = self.value()?;
                    // A closing brace or bracket ends a statement by itself.
                    let braced = matches!(value, Ucl::Obj(_) | Ucl::Arr(_));
                    pairs.push((key, value));
                    self.terminator(braced)?;
                }
            }
        }
    }

    fn terminator(&mut self, braced: bool) -> Result<(), String> {
        let newline = self.skip_ws()?;
        match self.peek() {
            Some(b';') | Some(b',') => {
                self.p += 1;
                Ok(())
            }
            None | Some(b'}') | Some(b']') => Ok(()),
            Some(_) if newline || braced => Ok(()),
            Some(_) => self.err("expected ';' or a newline after a value"),
        }
    }

    fn key(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(b'"') | Some(b'\'') => self.string(),
            _ => {
                let atom = self.atom();
                if atom.is_empty() {
                    return self.err("expected a key");
                }
                Ok(atom)
            }
        }
    }

    fn atom(&mut self) -> String {
        let start = self.p;
        while let Some(ch) = self.peek() {
            if ch.is_ascii_alphanumeric() || matches!(ch, b'_' | b'-' | b'.' | b'+' | b'@' | b'$') {
                self.p += 1;
            } else {
                break;
            }
        }
        String::from_utf8_lossy(&self.b[start..self.p]).into_owned()
    }

    fn value(&mut self) -> Result<Ucl, String> {
        let value = match self.peek() {
            Some(b'{') => {
                self.p += 1;
                return self.object_body(Some(b'}'));
            }
            Some(b'[') => {
                self.p += 1;
                return self.array();
            }
            Some(b'"') | Some(b'\'') => Ucl::Str(self.string()?),
            _ => {
                let atom = self.atom();
                if atom.is_empty() {
                    return self.err("expected a value");
                }
                match atom.parse::<f64>() {
                    Ok(n) => Ucl::Num(n),
                    Err(_) => Ucl::Str(atom),
                }
            }
        };
        // `apply "default" { ... }` is a named section: apply { default { ... } }.
        let save = self.p;
        self.skip_ws()?;
        if let (Some(b'{'), Ucl::Str(name)) = (self.peek(), &value) {
            self.p += 1;
            let inner = self.object_body(Some(b'}'))?;
            return Ok(Ucl::Obj(vec![(name.clone(), inner)]));
        }
        self.p = save;
        Ok(value)
    }

    fn array(&mut self) -> Result<Ucl, String> {
        let mut items = Vec::new();
        loop {
            self.skip_ws()?;
            match self.peek() {
                None => return self.err("unexpected end inside an array"),
                Some(b']') => {
                    self.p += 1;
                    return Ok(Ucl::Arr(items));
                }
                Some(b'}') => return self.err("unbalanced closing brace in an array"),
                Some(b',') | Some(b';') => self.p += 1,
                Some(_) => items.push(self.value()?),
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.b[self.p];
        self.p += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(ch) = self.peek() else { return self.err("unterminated string") };
            self.p += 1;
            if ch == quote {
                return String::from_utf8(out).or_else(|_| self.err("invalid UTF-8 in a string"));
            }
            if ch < 0x20 || ch == 0x7f {
                return self.err("control character inside a string");
            }
            if ch != b'\\' {
                out.push(ch);
                continue;
            }
            let Some(esc) = self.peek() else { return self.err("unterminated escape") };
            self.p += 1;
            let decoded = match (quote, esc) {
                (b'\'', b'\'') => b'\'',
                (b'\'', _) => {
                    out.push(b'\\');
                    esc
                }
                (_, b'"') => b'"',
                (_, b'\\') => b'\\',
                (_, b'/') => b'/',
                (_, b'n') => b'\n',
                (_, b't') => b'\t',
                (_, b'r') => b'\r',
                (_, b'b') => 0x08,
                (_, b'f') => 0x0c,
                _ => return self.err("invalid escape in a string"),
            };
            out.push(decoded);
        }
    }
}

fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

/// How one `rcpt` string of a settings rule matches.
#[derive(Debug, Clone)]
pub enum AddrMatcher {
    /// A whole address, compared with the lowercased recipient.
    Name(String),
    /// A local part, compared with the lowercased local part.
    User(String),
    /// `@domain`: compared with the lowercased recipient domain.
    Domain(String),
    /// `/re/flags`: searched in the recipient as given.
    Regexp(RspamdRegexp),
    /// `map:...`, or a regexp that did not compile: matches nothing here.
    Never,
}

impl AddrMatcher {
    fn from_rcpt(value: &str) -> Self {
        if value.starts_with("map:") {
            return Self::Never;
        }
        if value.starts_with('/') {
            return RspamdRegexp::compile(value).map_or(Self::Never, Self::Regexp);
        }
        if let Some(domain) = value.strip_prefix('@') {
            return Self::Domain(domain.to_owned());
        }
        if value.contains('@') {
            Self::Name(value.to_owned())
        } else {
            Self::User(value.to_owned())
        }
    }

    /// Whether the matcher accepts the recipient.
    pub fn is_match(&self, rcpt: &str) -> bool {
        let (user, domain) = match rcpt.rsplit_once('@') {
            Some((user, domain)) => (user, Some(domain)),
            None => (rcpt, None),
        };
        match self {
            Self::Name(name) => rcpt.to_ascii_lowercase() == *name,
            Self::User(want) => user.to_ascii_lowercase() == *want,
            Self::Domain(want) => domain.is_some_and(|d| d.to_ascii_lowercase() == *want),
            Self::Regexp(re) => re.is_match(rcpt),
            Self::Never => false,
        }
    }
}

/// One settings rule as Rspamd would use it for an outbound message.
#[derive(Debug, Clone)]
pub struct SettingsRule {
    /// Mailcow's row id.
    pub id: u64,
    /// Priority: higher is tried first.
    pub priority: i64,
    /// `rcpt` conditions (ORed); empty when the rule has none.
    pub rcpt: Vec<AddrMatcher>,
    /// Whether the rule requires an authenticated sender.
    pub authenticated: bool,
    /// Whether the rule has conditions the simulator cannot evaluate (`from`, `ip`, ...).
    pub unknown_conditions: bool,
    /// The `MAILCOW_BLACK` weight the rule applies, if any.
    pub black_weight: Option<f64>,
    /// Whether `symbols` adds `MAILCOW_BLACK`.
    pub adds_black: bool,
}

impl SettingsRule {
    /// Builds a rule from the content Mailcow stores for one row.
    ///
    /// Fails when the content is not valid UCL (the whole settings map then fails to load).
    pub fn parse(id: u64, content: &str) -> Result<Self, String> {
        let body = parse_ucl_body(content)?;
        let priority = match body.first("priority") {
            Some(Ucl::Num(n)) => *n as i64,
            Some(Ucl::Str(s)) if s == "high" => 3,
            Some(Ucl::Str(s)) if s == "medium" => 2,
            _ => 1,
        };
        let rcpt = body
            .all("rcpt")
            .into_iter()
            .map(|v| match v {
                Ucl::Str(s) => AddrMatcher::from_rcpt(s),
                _ => AddrMatcher::Never,
            })
            .collect();
        const UNKNOWN: [&str; 12] = [
            "from",
            "from_mime",
            "rcpt_mime",
            "ip",
            "client_ip",
            "user",
            "hostname",
            "local",
            "inverse",
            "request_header",
            "header",
            "selector",
        ];
        let unknown_conditions = UNKNOWN.iter().any(|k| body.first(k).is_some());
        let authenticated = body.first("authenticated").is_some();
        let apply = body.first("apply");
        let black_weight = apply.and_then(|apply| {
            let scope = apply.first("default").unwrap_or(apply);
            match scope.first("MAILCOW_BLACK") {
                Some(Ucl::Num(n)) => Some(*n),
                _ => None,
            }
        });
        let adds_black = body.all("symbols").into_iter().any(|v| match v {
            Ucl::Str(s) => s == "MAILCOW_BLACK",
            Ucl::Obj(pairs) => pairs.iter().any(|(k, _)| k == "MAILCOW_BLACK"),
            _ => false,
        });
        Ok(Self { id, priority, rcpt, authenticated, unknown_conditions, black_weight, adds_black })
    }

    /// Whether the rule's conditions hold for an authenticated outbound message to `rcpt`.
    pub fn matches(&self, rcpt: &str) -> bool {
        if self.unknown_conditions {
            return false;
        }
        let rcpt_ok = !self.rcpt.is_empty() && self.rcpt.iter().any(|m| m.is_match(rcpt));
        // A rule matches when at least one condition matched and none failed.
        match (self.rcpt.is_empty(), self.authenticated) {
            (true, true) => true,
            (true, false) => false,
            (false, _) => rcpt_ok,
        }
    }

    /// Whether applying the rule rejects the message.
    pub fn rejects(&self) -> bool {
        self.adds_black && self.black_weight.is_some_and(|w| w >= REJECT_THRESHOLD)
    }
}

/// The settings map Rspamd builds from every active Mailcow rule.
#[derive(Debug, Clone, Default)]
pub struct SettingsMap {
    rules: Vec<SettingsRule>,
}

impl SettingsMap {
    /// Builds the map from active rows `(id, content)` in id order.
    ///
    /// Fails when any row is not valid UCL: Mailcow splices every row into one document, so one
    /// bad row makes Rspamd reject the whole map (and keep the previous one).
    pub fn build<'a>(rows: impl IntoIterator<Item = (u64, &'a str)>) -> Result<Self, String> {
        let rules = rows
            .into_iter()
            .map(|(id, content)| {
                SettingsRule::parse(id, content).map_err(|e| format!("rule {id}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { rules })
    }

    /// The rules, in id order.
    pub fn rules(&self) -> &[SettingsRule] {
        &self.rules
    }

    /// The rule that decides for `rcpt`, if any: within the highest priority level that has a
    /// matching rule, the last one applied wins (Rspamd applies each match in turn).
    pub fn deciding_rule(&self, rcpt: &str) -> Option<&SettingsRule> {
        let top = self.rules.iter().filter(|r| r.matches(rcpt)).map(|r| r.priority).max()?;
        self.rules.iter().rfind(|r| r.priority == top && r.matches(rcpt))
    }

    /// Whether the settings reject an authenticated outbound message to `rcpt`.
    pub fn rejects(&self, rcpt: &str) -> bool {
        self.deciding_rule(rcpt).is_some_and(SettingsRule::rejects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_lines_are_keys_and_comments_are_skipped() {
        let map = RegexpMap::parse(
            "# header\n  /^a@b\\.c$/i  # trailing comment\nplain\n\n\
             /x\\/y/ value\n\"quoted key\"\n",
        );
        let keys: Vec<&str> = map.keys().iter().map(|k| k.key.as_str()).collect();
        assert_eq!(keys, ["/^a@b\\.c$/i", "plain", "/x\\/y/", "quoted key"]);
    }

    #[test]
    fn an_unanchored_line_matches_innocent_recipients() {
        let map = RegexpMap::parse("bob@example.com\n");
        assert!(map.is_match("xbob@example.com.evil.net"));
        let anchored = RegexpMap::parse("/^bob@example\\.com$/i\n");
        assert!(!anchored.is_match("xbob@example.com.evil.net"));
        assert!(anchored.is_match("Bob@Example.COM"));
    }

    #[test]
    fn a_hash_inside_a_slashed_key_is_part_of_it_but_ends_a_plain_key() {
        let map = RegexpMap::parse("/^a#b@x$/\nc#d\n");
        let keys: Vec<&str> = map.keys().iter().map(|k| k.key.as_str()).collect();
        assert_eq!(keys, ["/^a#b@x$/", "c"]);
    }

    #[test]
    fn a_last_slashed_line_without_newline_is_dropped_like_rspamd_does() {
        assert!(RegexpMap::parse("/^a@x$/").keys().is_empty());
        assert_eq!(RegexpMap::parse("/^a@x$/\n").keys().len(), 1);
    }

    #[test]
    fn case_folding_without_the_u_flag_is_ascii_only() {
        let re = RspamdRegexp::compile("/^jos\u{e9}@x$/i").unwrap();
        assert!(re.is_match("JOS\u{e9}@X"));
        assert!(!re.is_match("JOS\u{c9}@X"));
        let unicode = RspamdRegexp::compile("/^jos\u{e9}@x$/iu").unwrap();
        assert!(unicode.is_match("JOS\u{c9}@X"));
    }

    #[test]
    fn unclosed_patterns_do_not_compile_and_match_nothing() {
        let map = RegexpMap::parse("/abc\n");
        assert!(map.keys().iter().all(|k| !k.is_match("/abc")));
    }

    #[test]
    fn the_project_rule_rejects_only_its_recipients() {
        let content = "priority = 20;\nrcpt = \"a@x.org\";\nrcpt = \"@y.org\";\n\
                       apply \"default\" {\n  MAILCOW_BLACK = 9999.0;\n}\n\
                       symbols [\n  \"MAILCOW_BLACK\"\n]";
        let map = SettingsMap::build([(7, content)]).unwrap();
        assert!(map.rejects("A@X.org"));
        assert!(map.rejects("anyone@y.org"));
        assert!(!map.rejects("x@sub.y.org"));
        assert!(!map.rejects("b@x.org"));
    }

    #[test]
    fn a_higher_priority_rule_without_black_shadows_the_project_rule() {
        let ours = "priority = 5; rcpt = \"a@x.org\"; apply { MAILCOW_BLACK = 9999; } \
                    symbols [\"MAILCOW_BLACK\"]";
        let preset = "priority = 10; authenticated = yes; apply { symbols_enabled = [\"DKIM\"]; }";
        let map = SettingsMap::build([(1, preset), (2, ours)]).unwrap();
        assert!(!map.rejects("a@x.org"));
    }

    #[test]
    fn broken_ucl_is_refused() {
        for bad in ["rcpt = \"a\"b\";", "apply {", "}", "rcpt = \"a\nb\";", "rcpt = \"\\q\";"] {
            assert!(parse_ucl_body(bad).is_err(), "{bad:?}");
        }
    }
}
