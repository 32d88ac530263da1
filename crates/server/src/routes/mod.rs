//! The HTTP routes, one module per resource.

pub mod audit;
pub mod defaults;
pub mod interactions;
pub mod ops;
pub mod providers;
pub mod secrets;
pub mod settings;
pub mod tokens;
pub mod users;

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// `{"ok":true,"result":{…}}`
pub fn object_envelope(result: Value) -> Response {
    Json(json!({ "ok": true, "result": result })).into_response()
}

/// `{"ok":true,"result":[…],"nextCursor":…}`
pub fn list_envelope(result: Vec<Value>, next_cursor: Option<String>) -> Response {
    Json(json!({ "ok": true, "result": result, "nextCursor": next_cursor })).into_response()
}

/// Page size bounds shared by every listing.
pub fn page_limit(requested: Option<u32>) -> u32 {
    requested.unwrap_or(50).clamp(1, 200)
}
