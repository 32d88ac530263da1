//! Identifiers and clocks. Ids are random (uuid v4 entropy) but shaped like the real ones so
//! gateways that validate id formats accept them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `n` random ASCII letters and digits.
pub(crate) fn alnum(n: usize) -> String {
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for byte in uuid::Uuid::new_v4().into_bytes() {
            if out.len() == n {
                break;
            }
            out.push(char::from(ALNUM[usize::from(byte) % ALNUM.len()]));
        }
    }
    out
}

/// `chatcmpl-` + 29 characters, like OpenAI.
pub(crate) fn chat_completion() -> String {
    format!("chatcmpl-{}", alnum(29))
}

/// `call_` + 24 characters, like OpenAI tool calls.
pub(crate) fn tool_call() -> String {
    format!("call_{}", alnum(24))
}

/// `msg_01` + 22 characters, like Anthropic.
pub(crate) fn message() -> String {
    format!("msg_01{}", alnum(22))
}

/// `toolu_01` + 22 characters, like Anthropic.
pub(crate) fn tool_use() -> String {
    format!("toolu_01{}", alnum(22))
}

/// `req_011C` + 20 characters, like Anthropic's `request-id`.
pub(crate) fn anthropic_request() -> String {
    format!("req_011C{}", alnum(20))
}

/// `req_` + 32 hex digits, like OpenAI's `x-request-id`.
pub(crate) fn openai_request() -> String {
    format!("req_{}", uuid::Uuid::new_v4().simple())
}

/// A hyphenated uuid, like Azure's `apim-request-id`.
pub(crate) fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Seconds since the Unix epoch, for `created`.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// RFC 3339 instant `ahead` from now, for Anthropic's rate-limit reset headers.
pub(crate) fn rfc3339_in(ahead: Duration) -> String {
    (OffsetDateTime::now_utc() + ahead)
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
        .format(&Rfc3339)
        .unwrap_or_default()
}
