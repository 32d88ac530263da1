//! A secret value that cannot leak by accident.

use std::fmt;
use zeroize::Zeroizing;

/// A credential or other secret in memory. It has no `Display` or `Serialize`, its `Debug`
/// prints a placeholder, and its bytes are wiped on drop. Reading it takes an explicit
/// [`SecretValue::expose`], which is easy to audit for with grep.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretValue {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

/// Deserializable so request bodies can carry a secret straight into this type; there is
/// deliberately no `Serialize`.
impl<'de> serde::Deserialize<'de> for SecretValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue([redacted])")
    }
}

/// Cuts the caller's values out of a serde error message, so that a value sent in the wrong
/// field (possibly a credential) is never echoed in a response or a log line.
///
/// serde quotes a string value with `"` (escaped as by `Debug`, so `\"` does not end it) and
/// an unknown variant with backticks (unescaped, so the value itself may hold a backtick:
/// it ends only where serde's own `` `, expected `` or `` `, there are no variants `` follows).
/// Field names and the list of expected variants stay: they are the schema's, not the
/// caller's. Anything left unterminated is cut to the end of the message: when in doubt, less
/// is shown. Every caller's tests run [`SERDE_REDACTION_CASES`].
pub fn redact_serde_message(message: &str) -> String {
    redact_quoted(&redact_unknown_variant(message))
}

/// ``unknown variant `VALUE`, expected …``: the value becomes `…`.
fn redact_unknown_variant(message: &str) -> String {
    const MARK: &str = "unknown variant `";
    const ENDS: [&str; 2] = ["`, expected ", "`, there are no variants"];
    let Some(start) = message.find(MARK).map(|at| at + MARK.len()) else {
        return message.to_owned();
    };
    let rest = &message[start..];
    let end = ENDS.iter().filter_map(|end| rest.rfind(end)).max();
    let tail = end.map_or("`", |end| &rest[end..]);
    format!("{}…{tail}", &message[..start])
}

/// Every `"…"` literal loses its content; a backslash inside one escapes the next character.
fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    let mut escaped = false;
    for c in message.chars() {
        match (quoted, escaped, c) {
            (false, _, '"') => {
                quoted = true;
                out.push_str("\"…");
            }
            (false, _, c) => out.push(c),
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => {
                quoted = false;
                out.push('"');
            }
            (true, false, _) => {}
        }
    }
    out
}

/// One case of the redaction rule: a serde message, what must never survive of it, and
/// what it must become.
pub struct RedactionCase {
    pub message: &'static str,
    pub secret: &'static str,
    pub redacted: &'static str,
}

/// The cases every user of [`redact_serde_message`] is tested against, so that no caller
/// can drift from the rule (two copies once disagreed on an unterminated backtick).
pub const SERDE_REDACTION_CASES: &[RedactionCase] = &[
    RedactionCase {
        message: r#"invalid type: string "sk-canary-1", expected a boolean at line 1 column 22"#,
        secret: "canary-1",
        redacted: r#"invalid type: string "…", expected a boolean at line 1 column 22"#,
    },
    RedactionCase {
        message: r#"invalid type: string "sk-\"canary-2\" tail", expected u32 at line 1 column 9"#,
        secret: "canary-2",
        redacted: r#"invalid type: string "…", expected u32 at line 1 column 9"#,
    },
    RedactionCase {
        message: r#"invalid value: string "sk-canary-3\\", expected a URL"#,
        secret: "canary-3",
        redacted: r#"invalid value: string "…", expected a URL"#,
    },
    RedactionCase {
        message: "unknown variant `sk-canary-4`, expected `admin` or `member` at line 1 column 20",
        secret: "canary-4",
        redacted: "unknown variant `…`, expected `admin` or `member` at line 1 column 20",
    },
    RedactionCase {
        message: "unknown variant `sk-can`ary-5`, expected one of `a`, `b`",
        secret: "ary-5",
        redacted: "unknown variant `…`, expected one of `a`, `b`",
    },
    RedactionCase {
        message: "unknown variant `sk-canary-6`, there are no variants",
        secret: "canary-6",
        redacted: "unknown variant `…`, there are no variants",
    },
    RedactionCase {
        message: "unknown variant `sk-canary-7",
        secret: "canary-7",
        redacted: "unknown variant `…`",
    },
    RedactionCase {
        message: r#"invalid type: string "sk-canary-8"#,
        secret: "canary-8",
        redacted: r#"invalid type: string "…"#,
    },
    RedactionCase {
        message: "unknown field `extra`, expected `flag` at line 1 column 20",
        secret: "sk-",
        redacted: "unknown field `extra`, expected `flag` at line 1 column 20",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_follow_the_redaction_table() {
        for case in SERDE_REDACTION_CASES {
            let redacted = redact_serde_message(case.message);
            assert_eq!(redacted, case.redacted, "{}", case.message);
            assert!(!redacted.contains(case.secret), "{redacted}");
        }
    }

    #[test]
    fn real_serde_messages_lose_their_values() {
        let bodies = [
            (r#""sk-\"canary\" still secret""#, "still secret"),
            (r#""sk-canary-\\""#, "canary"),
        ];
        for (body, secret) in bodies {
            let err = serde_json::from_str::<bool>(body).unwrap_err().to_string();
            assert!(err.contains(secret), "the case must exercise serde: {err}");
            let redacted = redact_serde_message(&err);
            assert!(!redacted.contains(secret), "{redacted}");
            assert!(redacted.contains("expected a boolean"), "{redacted}");
        }
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = SecretValue::new("sk-canary-value".into());
        assert!(!format!("{s:?}").contains("canary"));
        assert_eq!(s.expose(), "sk-canary-value");
    }
}
