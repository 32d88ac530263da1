//! Response builders shared by the protocols.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use serde_json::{Value, json};

/// Content type of every SSE response (as recorded from OpenAI and Anthropic).
pub(crate) const EVENT_STREAM: &str = "text/event-stream; charset=utf-8";

/// Headers built from `(name, value)` pairs; invalid pairs are skipped, never panicked on.
pub(crate) fn headers<I, K, V>(pairs: I) -> HeaderMap
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_ref().as_bytes());
        let value = HeaderValue::from_str(value.as_ref());
        if let (Ok(name), Ok(value)) = (name, value) {
            map.append(name, value);
        }
    }
    map
}

/// A compact JSON response.
pub(crate) fn json(status: StatusCode, mut headers: HeaderMap, body: &Value) -> Response {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (status, headers, bytes).into_response()
}

/// A 200 `text/event-stream` response.
pub(crate) fn sse(mut headers: HeaderMap, body: Body) -> Response {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    (StatusCode::OK, headers, body).into_response()
}

/// Adds `retry-after` (seconds) and `retry-after-ms` when a retry hint was requested.
pub(crate) fn add_retry_after(headers: &mut HeaderMap, seconds: Option<u64>) {
    if let Some(seconds) = seconds {
        let extra = self::headers([
            ("retry-after", seconds.to_string()),
            ("retry-after-ms", (seconds * 1000).to_string()),
        ]);
        headers.extend(extra);
    }
}

/// Status code from a directive, falling back to 500 for nonsense values.
pub(crate) fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Fallback for routes no provider has, in OpenAI's unknown-URL shape.
pub(crate) async fn unknown_route(method: Method, uri: Uri) -> Response {
    let message = format!("Invalid URL ({method} {})", uri.path());
    let body = json!({"error": {
        "message": message, "type": "invalid_request_error", "param": null, "code": null,
    }});
    json(StatusCode::NOT_FOUND, HeaderMap::new(), &body)
}
