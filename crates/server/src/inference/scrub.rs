//! What an upstream says in an error is never passed on verbatim: the caller gets the
//! provider's error type and code and the message of an allowlisted field (the
//! classification in `switchboard_protocols::error`), with every substring equal to one of
//! the organization's secret values, or to the credential sent upstream, replaced. A
//! provider that echoes the key it was given (as some do, in a URL or a message) cannot
//! hand it to the organization's members.

use axum::http::HeaderMap;
use switchboard_core::SecretValue;

use crate::dataplane::OrgSnapshot;
use crate::state::AppState;

/// Headers that carry a credential whether or not they are marked sensitive.
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "x-amz-security-token",
];

/// What replaces a secret in a message.
pub const REDACTED: &str = "[redacted]";

/// Secret strings to cut out of upstream messages, longest first (so a secret that contains
/// another is cut whole).
pub struct Scrubber {
    needles: Vec<SecretValue>,
}

impl Scrubber {
    /// The organization's secret values (decrypted: this runs only for upstream errors) and
    /// the credentials in `sent` (every sensitive header of the upstream request).
    pub fn for_upstream(state: &AppState, snapshot: &OrgSnapshot, sent: &HeaderMap) -> Self {
        let secrets = snapshot.secret_values(state.store.as_ref());
        let credentials = sent
            .iter()
            .filter(|(name, value)| {
                value.is_sensitive() || CREDENTIAL_HEADERS.contains(&name.as_str())
            })
            .filter_map(|(_, value)| value.to_str().ok())
            .map(|v| SecretValue::new(v.to_owned()));
        Self::new(secrets.into_iter().chain(credentials))
    }

    /// A scrubber for these values and the parts of them that could be echoed alone.
    pub fn new(values: impl IntoIterator<Item = SecretValue>) -> Self {
        let mut needles = Vec::new();
        for value in values {
            needles.extend(parts(value.expose()));
            needles.push(value);
        }
        needles.retain(|n| !n.is_empty());
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Self { needles }
    }

    /// `message` with every secret replaced by [`REDACTED`].
    pub fn scrub(&self, message: &str) -> String {
        let mut out = message.to_owned();
        for needle in &self.needles {
            if out.contains(needle.expose()) {
                out = out.replace(needle.expose(), REDACTED);
            }
        }
        out
    }
}

/// The pieces of a secret that an upstream may echo alone: the token of a
/// `Bearer <token>` header, the string members of a JSON secret (a service-account key
/// file's private key and e-mail), and the long lines of a multi-line one (a PEM key's).
fn parts(value: &str) -> Vec<SecretValue> {
    let mut parts = Vec::new();
    if let Some(token) = value.strip_prefix("Bearer ") {
        parts.push(token.trim().to_owned());
    }
    if let Ok(serde_json::Value::Object(members)) = serde_json::from_str(value) {
        parts.extend(
            members
                .values()
                .filter_map(|v| v.as_str())
                .filter(|s| s.len() >= MIN_PART)
                .map(str::to_owned),
        );
    }
    if value.contains('\n') {
        parts.extend(
            value
                .lines()
                .map(str::trim)
                .filter(|l| l.len() >= MIN_PART && !l.starts_with("-----"))
                .map(str::to_owned),
        );
    }
    parts.into_iter().map(SecretValue::new).collect()
}

/// Shorter pieces of a secret (a JSON `"type":"service_account"`) are not secret alone.
const MIN_PART: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    fn scrubber(values: &[&str]) -> Scrubber {
        Scrubber::new(values.iter().map(|v| SecretValue::new((*v).to_owned())))
    }

    #[test]
    fn secret_values_and_their_parts_are_cut_out() {
        let s = scrubber(&[
            "sk-canary-123",
            "Bearer tok-abcdef",
            r#"{"type":"service_account","private_key":"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"}"#,
        ]);
        assert_eq!(
            s.scrub("Incorrect API key provided: sk-canary-123."),
            "Incorrect API key provided: [redacted]."
        );
        assert_eq!(
            s.scrub("token tok-abcdef rejected"),
            "token [redacted] rejected"
        );
        assert_eq!(
            s.scrub("bad key MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
            "bad key [redacted]"
        );
        assert_eq!(
            s.scrub("service_account is fine"),
            "service_account is fine"
        );
    }

    #[test]
    fn a_secret_containing_another_is_cut_whole() {
        let s = scrubber(&["abc", "xxabcxx"]);
        assert_eq!(
            s.scrub("key xxabcxx and abc"),
            "key [redacted] and [redacted]"
        );
    }

    #[test]
    fn pem_lines_are_cut_even_alone() {
        // A PEM-shaped secret built here, so no key-looking text is kept in the repository.
        let body: String = ('A'..='Z').chain('a'..='f').collect();
        let (begin, end) = ("BEGIN", "END");
        let pem = format!("-----{begin} PRIVATE KEY-----\n{body}\n-----{end} PRIVATE KEY-----\n");
        let s = scrubber(&[pem.as_str()]);
        assert_eq!(s.scrub(&format!("got {body}")), "got [redacted]");
    }
}
