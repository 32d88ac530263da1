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
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::PortError;

/// `{"ok":true,"result":{…}}`
pub fn object_envelope(result: Value) -> Response {
    Json(json!({ "ok": true, "result": result })).into_response()
}

/// `{"ok":true,"result":[…],"nextCursor":…}`
pub fn list_envelope(result: Vec<Value>, next_cursor: Option<String>) -> Response {
    Json(json!({ "ok": true, "result": result, "nextCursor": next_cursor })).into_response()
}

/// `?limit=&cursor=`, the paging of every JSON listing.
#[derive(Deserialize)]
pub struct PageQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

impl PageQuery {
    /// The page size: 50 unless asked, never below 1 or above 200.
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(50).clamp(1, 200)
    }

    /// Where the page starts, as `decode` reads the cursor: absent or empty is the first
    /// page, a cursor `decode` refuses is a 400.
    pub fn cursor<T>(
        &self,
        decode: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, PortError> {
        match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => Ok(None),
            Some(cursor) => decode(cursor)
                .map(Some)
                .ok_or_else(|| PortError::invalid_request("cursor is invalid")),
        }
    }

    /// The cursor of the page after `items`, which were read with [`Self::limit`]: only a
    /// full page may have one after it.
    pub fn next<T>(&self, items: &[T], cursor_of: impl FnOnce(&T) -> String) -> Option<String> {
        (items.len() == self.limit() as usize)
            .then(|| items.last().map(cursor_of))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(limit: Option<u32>, cursor: Option<&str>) -> PageQuery {
        PageQuery {
            limit,
            cursor: cursor.map(str::to_owned),
        }
    }

    #[test]
    fn limits_are_clamped() {
        assert_eq!(page(None, None).limit(), 50);
        assert_eq!(page(Some(0), None).limit(), 1);
        assert_eq!(page(Some(1000), None).limit(), 200);
    }

    #[test]
    fn an_absent_or_empty_cursor_is_the_first_page_and_a_bad_one_a_400() {
        let decode = |c: &str| c.parse::<i64>().ok();
        assert_eq!(page(None, None).cursor(decode).unwrap(), None);
        assert_eq!(page(None, Some("")).cursor(decode).unwrap(), None);
        assert_eq!(page(None, Some("7")).cursor(decode).unwrap(), Some(7));
        let bad = page(None, Some("x")).cursor(decode).unwrap_err();
        assert_eq!(bad.name.status(), 400);
    }

    #[test]
    fn only_a_full_page_has_a_next_cursor() {
        let two = page(Some(2), None);
        assert_eq!(two.next(&[1, 2], |n| n.to_string()), Some("2".into()));
        assert_eq!(two.next(&[1], |n| n.to_string()), None);
    }
}
