//! Bounds on the numbers and counts of an inference request (catalogue item 29): an absurd
//! `n`, `max_tokens` or message, tool or stop count is refused with a 400 before anything
//! is sent upstream, on both the pass-through and the translating path (the upstream's own
//! limits vary, and an unbounded `n` has taken providers' servers down, CVE-2026-34756).
//! Read from the raw top-level members, each counted in one pass.

use serde::de::IgnoredAny;

use super::raw_json::RawObject;

/// Completions per request (`n`; OpenAI allows up to 128, most providers 1).
pub const MAX_N: u64 = 16;
/// Output tokens asked for (`max_tokens`, `max_completion_tokens`, `max_output_tokens`);
/// above every current model's output limit.
pub const MAX_OUTPUT_TOKENS: u64 = 1_000_000;
/// Messages in one request (`messages`, `input`).
pub const MAX_MESSAGES: usize = 10_000;
/// Tools offered (`tools`, `functions`).
pub const MAX_TOOLS: usize = 512;
/// Stop sequences (`stop`, `stop_sequences`).
pub const MAX_STOP: usize = 16;

/// Numeric members checked only for being finite.
const FLOATS: [&str; 6] = [
    "temperature",
    "top_p",
    "top_k",
    "frequency_penalty",
    "presence_penalty",
    "seed",
];

/// `Err` names the first member out of bounds.
pub fn check(raw: &RawObject<'_>) -> Result<(), String> {
    for key in FLOATS {
        number(raw, key)?;
    }
    if number(raw, "n")?.is_some_and(|n| n > MAX_N) {
        return Err(format!("'n' must be at most {MAX_N}"));
    }
    for key in ["max_tokens", "max_completion_tokens", "max_output_tokens"] {
        if number(raw, key)?.is_some_and(|v| v > MAX_OUTPUT_TOKENS) {
            return Err(format!("'{key}' must be at most {MAX_OUTPUT_TOKENS}"));
        }
    }
    for (key, max) in [
        ("messages", MAX_MESSAGES),
        ("input", MAX_MESSAGES),
        ("tools", MAX_TOOLS),
        ("functions", MAX_TOOLS),
        ("stop", MAX_STOP),
        ("stop_sequences", MAX_STOP),
    ] {
        if count(raw, key).is_some_and(|n| n > max) {
            return Err(format!("'{key}' may have at most {max} items"));
        }
    }
    Ok(())
}

/// A numeric member as a count when it is a non-negative integer. A number no float can
/// hold (`1e999999`) is refused: it would reach the upstream's parser as infinity. Other
/// values (floats, negatives, strings) are the codecs' and the upstream's to judge.
fn number(raw: &RawObject<'_>, key: &str) -> Result<Option<u64>, String> {
    let Some(text) = raw.get(key).map(|v| v.get()) else {
        return Ok(None);
    };
    if let Ok(n) = serde_json::from_str::<u64>(text) {
        return Ok(Some(n));
    }
    let numeric = text.starts_with(|c: char| c == '-' || c.is_ascii_digit());
    match serde_json::from_str::<f64>(text) {
        // An integer too large for u64 counts as the largest one.
        Ok(value) if value.is_finite() => Ok((value >= u64::MAX as f64).then_some(u64::MAX)),
        _ if numeric => Err(format!("'{key}' is out of range")),
        _ => Ok(None),
    }
}

/// The number of items of a member when it is an array.
fn count(raw: &RawObject<'_>, key: &str) -> Option<usize> {
    let value = raw.get(key)?.get();
    if !value.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<IgnoredAny>>(value)
        .ok()
        .map(|items| items.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(body: &str) -> Result<(), String> {
        check(&RawObject::parse(body.as_bytes()).unwrap())
    }

    #[test]
    fn ordinary_requests_pass() {
        assert!(checked(r#"{"n":1,"max_tokens":4096,"messages":[{},{}],"stop":["a"]}"#).is_ok());
        assert!(checked(r#"{"n":null,"max_tokens":1.5,"tools":"x"}"#).is_ok());
    }

    #[test]
    fn absurd_numbers_and_counts_are_refused() {
        assert!(checked(r#"{"n":1000000}"#).unwrap_err().contains("'n'"));
        assert!(checked(r#"{"max_tokens":99999999999}"#).is_err());
        assert!(checked(r#"{"n":123456789012345678901234567890}"#).is_err());
        assert!(
            checked(r#"{"max_tokens":1e999999}"#)
                .unwrap_err()
                .contains("range")
        );
        assert!(checked(r#"{"temperature":-1e999999}"#).is_err());
        assert!(checked(r#"{"temperature":0.7,"max_tokens":"10"}"#).is_ok());
        let stops = format!(r#"{{"stop":[{}]}}"#, vec!["\"s\""; 17].join(","));
        assert!(checked(&stops).unwrap_err().contains("'stop'"));
        let tools = format!(r#"{{"tools":[{}]}}"#, vec!["{}"; 513].join(","));
        assert!(checked(&tools).is_err());
        let messages = format!(r#"{{"messages":[{}]}}"#, vec!["{}"; 10_001].join(","));
        assert!(checked(&messages).unwrap_err().contains("10000"));
    }
}
