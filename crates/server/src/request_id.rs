//! A client's `x-request-id` is kept only when it is a plain identifier: 1 to
//! [`MAX_LEN`] characters of `[A-Za-z0-9._:-]`. Anything else (CR/LF, spaces, quotes,
//! non-ASCII, an oversized value, several values) is removed before any layer reads it,
//! and the request-id layer then generates one, so what is logged, stored on the
//! invocation record and sent back is always safe.

use axum::extract::Request;
use axum::http::HeaderValue;

pub const HEADER: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

/// The longest client request id kept.
pub const MAX_LEN: usize = 128;

/// Drops the request's `x-request-id` unless it is one valid value.
pub async fn sanitize(mut request: Request) -> Request {
    let headers = request.headers_mut();
    let mut values = headers.get_all(&HEADER).iter();
    let keep = matches!((values.next(), values.next()), (Some(value), None) if is_valid(value));
    if !keep {
        headers.remove(&HEADER);
    }
    request
}

pub fn is_valid(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    (1..=MAX_LEN).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_are_kept() {
        for good in ["abc", "req-1.2_3:4", &"a".repeat(MAX_LEN)] {
            assert!(is_valid(&HeaderValue::from_str(good).unwrap()), "{good}");
        }
        let bad = [
            "".to_owned(),
            "a".repeat(MAX_LEN + 1),
            "has space".into(),
            "quote\"".into(),
            "semi;colon".into(),
            "slash/".into(),
        ];
        for value in &bad {
            assert!(!is_valid(&HeaderValue::from_str(value).unwrap()), "{value}");
        }
        assert!(!is_valid(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()));
    }
}
