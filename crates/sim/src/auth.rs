//! Credential extraction shared by the protocols.

use http::HeaderMap;

/// Value of header `name` if present and valid UTF-8.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = header(headers, "authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// First non-empty credential among the given headers (`authorization` means Bearer).
pub(crate) fn first_key<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .filter_map(|name| match *name {
            "authorization" => bearer(headers),
            other => header(headers, other),
        })
        .find(|key| !key.is_empty())
}

/// Whether `given` matches the configured key; without one any non-empty key passes.
pub(crate) fn key_ok(expected: Option<&str>, given: &str) -> bool {
    !given.is_empty() && expected.is_none_or(|key| key == given)
}

/// Masks a key the way OpenAI does in its 401 message: a short prefix, stars, the last four.
/// Short keys are fully starred so the simulator never echoes a whole key.
pub(crate) fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 12 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}
