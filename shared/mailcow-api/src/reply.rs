//! Reading what Mailcow answers: the `{type, log, msg}` reply shapes and GET payloads.
//!
//! Owns the rule that only an all-`success` reply is a success, the mapping of Mailcow's error
//! objects to [`MailcowError`], and the lenient parsing of settings rows (ids and flags arrive as
//! numbers or strings depending on the PHP/PDO setup). It never keeps a body, and never the `log`
//! field, which echoes the request (addresses, and for some routes passwords).

use serde_json::Value;

use crate::error::{AuthFailure, MailcowError, MailcowMsg};

/// One entry of a write reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyEntry {
    /// `success`, `danger`, `warning`, `error`, ...
    pub kind: String,
    /// The language key and its arguments.
    pub msg: MailcowMsg,
}

impl ReplyEntry {
    fn is_success(&self) -> bool {
        self.kind == "success"
    }
}

/// A write reply: the queued entries, or Mailcow's generic single object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteReply {
    /// A JSON array of entries (the function queued messages).
    Entries(Vec<ReplyEntry>),
    /// A single object: the function queued nothing (`Task completed`, `Cannot edit item`, ...).
    Single(ReplyEntry),
}

fn invalid(reason: impl Into<String>) -> MailcowError {
    MailcowError::InvalidResponse { reason: reason.into(), source: None }
}

fn parse_json(body: &[u8]) -> Result<Value, MailcowError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid(
            "empty body: Mailcow treated the request as unauthenticated \
             (is the X-API-Key header reaching it?)",
        ));
    }
    serde_json::from_slice(body).map_err(|source| MailcowError::InvalidResponse {
        reason: "body is not JSON".to_owned(),
        source: Some(source),
    })
}

fn msg_of(value: Option<&Value>) -> MailcowMsg {
    fn text(value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
    match value {
        Some(Value::Array(items)) => MailcowMsg {
            key: items.first().map(text).unwrap_or_default(),
            args: items.iter().skip(1).map(text).collect(),
        },
        Some(other) => MailcowMsg { key: text(other), args: Vec::new() },
        None => MailcowMsg::default(),
    }
}

fn entry_of(value: &Value) -> Result<ReplyEntry, MailcowError> {
    let Some(kind) = value.get("type").and_then(Value::as_str) else {
        return Err(invalid("reply entry without a \"type\""));
    };
    Ok(ReplyEntry { kind: kind.to_owned(), msg: msg_of(value.get("msg")) })
}

/// The authentication failure an error object describes, if it describes one. Mailcow normally
/// sends these with HTTP 401, but some setups answer them with 200.
pub(crate) fn auth_failure_of(msg: &MailcowMsg) -> Option<AuthFailure> {
    if msg.key == "authentication failed" {
        return Some(AuthFailure::KeyRejected);
    }
    msg.key.strip_prefix("api access denied for ip").map(|rest| {
        let ip = rest.trim();
        AuthFailure::IpNotAllowed { ip: (!ip.is_empty()).then(|| ip.to_owned()) }
    })
}

/// Parses a write reply (HTTP 200).
///
/// Fails with [`MailcowError::InvalidResponse`] for an empty or non-JSON body or an unexpected
/// shape.
pub fn parse_write_reply(body: &[u8]) -> Result<WriteReply, MailcowError> {
    match parse_json(body)? {
        Value::Array(items) if !items.is_empty() => {
            Ok(WriteReply::Entries(items.iter().map(entry_of).collect::<Result<_, _>>()?))
        }
        Value::Array(_) => Err(invalid("empty reply list")),
        object @ Value::Object(_) => Ok(WriteReply::Single(entry_of(&object)?)),
        _ => Err(invalid("reply is neither an object nor a list")),
    }
}

/// Checks that every entry of a write reply is a success and returns the entries.
///
/// Fails with [`MailcowError::Unauthorized`] for an authentication error object,
/// [`MailcowError::Rejected`] for the first entry that is not a success (`danger`, `error`,
/// `warning`), and as [`parse_write_reply`] does.
pub fn expect_success(body: &[u8]) -> Result<WriteReply, MailcowError> {
    let reply = parse_write_reply(body)?;
    let entries: &[ReplyEntry] = match &reply {
        WriteReply::Entries(entries) => entries,
        WriteReply::Single(entry) => std::slice::from_ref(entry),
    };
    if let Some(bad) = entries.iter().find(|e| !e.is_success()) {
        if let Some(cause) = auth_failure_of(&bad.msg) {
            return Err(MailcowError::Unauthorized { cause });
        }
        return Err(MailcowError::Rejected { kind: bad.kind.clone(), msg: bad.msg.clone() });
    }
    Ok(reply)
}

/// One settings rule as `get/rsetting` lists it.
#[derive(Clone, PartialEq, Eq)]
pub struct Rsetting {
    /// Mailcow's row id.
    pub id: RsettingId,
    /// Description.
    pub desc: String,
    /// UCL content. May hold addresses: not shown by `Debug`.
    pub content: String,
    /// Whether the rule is active, when the reply says so in a form this client understands.
    pub active: Option<bool>,
}

impl std::fmt::Debug for Rsetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rsetting")
            .field("id", &self.id)
            .field("desc", &self.desc)
            .field("content_len", &self.content.len())
            .field("active", &self.active)
            .finish()
    }
}

/// The id of a settings rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RsettingId(pub u64);

impl std::fmt::Display for RsettingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

fn lenient_u64(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn lenient_bool(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n == 1),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "yes" | "true" => Some(true),
            "0" | "no" | "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn rsetting_of(value: &Value) -> Result<Rsetting, MailcowError> {
    let id = lenient_u64(value.get("id")).ok_or_else(|| invalid("settings rule without an id"))?;
    let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    // Some versions send `active` as the localised "Yes"/"No" and the number as `active_int`.
    let active =
        lenient_bool(value.get("active_int")).or_else(|| lenient_bool(value.get("active")));
    Ok(Rsetting { id: RsettingId(id), desc: text("desc"), content: text("content"), active })
}

/// An error object (`{"type":"error"|"danger",...}`) where data was expected.
fn error_object(value: &Value) -> Option<MailcowError> {
    let kind = value.get("type").and_then(Value::as_str)?;
    if kind == "success" {
        return None;
    }
    let msg = msg_of(value.get("msg"));
    Some(match auth_failure_of(&msg) {
        Some(cause) => MailcowError::Unauthorized { cause },
        None => MailcowError::Rejected { kind: kind.to_owned(), msg },
    })
}

/// Parses `GET get/rsetting/all`: a list, or `{}` when there is none.
///
/// Fails with [`MailcowError::InvalidResponse`] for an empty or malformed body, and with
/// [`MailcowError::Unauthorized`] or [`MailcowError::Rejected`] for an error object.
pub fn parse_rsetting_list(body: &[u8]) -> Result<Vec<Rsetting>, MailcowError> {
    match parse_json(body)? {
        Value::Array(items) => items.iter().map(rsetting_of).collect(),
        Value::Object(map) if map.is_empty() => Ok(Vec::new()),
        object @ Value::Object(_) => match error_object(&object) {
            Some(err) => Err(err),
            None => Err(invalid("settings list is an object")),
        },
        _ => Err(invalid("settings list is neither a list nor an object")),
    }
}

/// Parses `GET get/rsetting/{id}`: the rule, or `{}` when it does not exist.
///
/// Fails as [`parse_rsetting_list`] does.
pub fn parse_rsetting_one(body: &[u8]) -> Result<Option<Rsetting>, MailcowError> {
    match parse_json(body)? {
        Value::Object(map) if map.is_empty() => Ok(None),
        object @ Value::Object(_) => match error_object(&object) {
            Some(err) => Err(err),
            None => rsetting_of(&object).map(Some),
        },
        // Some endpoints wrap a single row in a list.
        Value::Array(items) => items.first().map(rsetting_of).transpose(),
        _ => Err(invalid("settings rule is neither an object nor a list")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_all_success_reply_is_a_success() {
        let ok = br#"[{"type":"success","log":["x"],"msg":["object_modified","m"]}]"#;
        assert!(expect_success(ok).is_ok());
        let mixed = br#"[{"type":"success","msg":"a"},{"type":"warning","msg":"b"}]"#;
        assert!(matches!(
            expect_success(mixed),
            Err(MailcowError::Rejected { kind, msg }) if kind == "warning" && msg.key == "b"
        ));
        let danger = br#"[{"type":"danger","log":[],"msg":["global_map_invalid","x.map"]}]"#;
        match expect_success(danger) {
            Err(MailcowError::Rejected { msg, .. }) => {
                assert_eq!(
                    msg,
                    MailcowMsg { key: "global_map_invalid".into(), args: vec!["x.map".into()] }
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_single_object_reply_is_read() {
        let generic = br#"{"type":"success","msg":"Task completed"}"#;
        let Ok(WriteReply::Single(entry)) = expect_success(generic) else { panic!("not single") };
        assert_eq!(entry.msg.key, "Task completed");
        let failure = br#"{"type":"error","msg":"Cannot edit item"}"#;
        assert!(matches!(expect_success(failure), Err(MailcowError::Rejected { .. })));
    }

    #[test]
    fn auth_error_objects_in_a_200_reply_are_auth_failures() {
        let key = br#"{"type":"error","msg":"authentication failed"}"#;
        assert!(matches!(
            parse_rsetting_list(key),
            Err(MailcowError::Unauthorized { cause: AuthFailure::KeyRejected })
        ));
        let ip = br#"{"type":"error","msg":"api access denied for ip 203.0.113.9"}"#;
        assert!(matches!(
            expect_success(ip),
            Err(MailcowError::Unauthorized { cause: AuthFailure::IpNotAllowed { ip: Some(ip) } })
                if ip == "203.0.113.9"
        ));
    }

    #[test]
    fn empty_and_non_json_bodies_are_invalid_responses() {
        for body in [&b""[..], b"  \n", b"<html>login</html>", b"[]", b"42"] {
            assert!(
                matches!(parse_write_reply(body), Err(MailcowError::InvalidResponse { .. })),
                "{body:?}"
            );
        }
    }

    #[test]
    fn settings_rows_accept_numbers_strings_and_localised_flags() {
        let body = br#"[{"id":"7","desc":"d","content":"c","active_int":"1","active":"Yes"},
                        {"id":9,"desc":"e","content":"","active":0}]"#;
        let rows = parse_rsetting_list(body).unwrap();
        assert_eq!(rows[0].id, RsettingId(7));
        assert_eq!(rows[0].active, Some(true));
        assert_eq!(rows[1].id, RsettingId(9));
        assert_eq!(rows[1].active, Some(false));
        assert!(parse_rsetting_list(b"{}").unwrap().is_empty());
        assert_eq!(parse_rsetting_one(b"{}").unwrap(), None);
    }
}
