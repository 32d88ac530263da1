//! Request extraction for the management API: size-capped, depth-capped, strict JSON
//! bodies and query strings whose failures answer in the Port envelope rather than axum's
//! plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use switchboard_core::{ErrorName, PortError, redact_serde_message};

use crate::error::ApiError;

/// The management routes' body limit (Port: "Request body is too large (limit is 1MiB)").
pub const MANAGEMENT_BODY_LIMIT: usize = 1024 * 1024;

/// A request body read up to the management limit and parsed only when the handler asks,
/// so that a member's write is refused with 403 whatever its body holds.
pub struct JsonBody(Bytes);

impl JsonBody {
    /// Deserializes into `T`. `T` should deny unknown fields so that typos are errors, never
    /// silently ignored settings. Nesting deeper than 128 levels is refused by serde_json's
    /// recursion limit and reported as a 400.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        parse_json(&self.0)
    }

    /// Like [`JsonBody::parse`], but an empty body is `T::default()`: for routes whose every
    /// field is optional (`POST /v1/tokens`), so `curl -X POST` alone works.
    pub fn parse_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, ApiError> {
        match self.0.is_empty() {
            true => Ok(T::default()),
            false => parse_json(&self.0),
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_limited(req, state).await.map(JsonBody)
    }
}

async fn read_limited<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    let req = req.map(|body| axum::body::Body::new(http_body_limited(body)));
    Bytes::from_request(req, state).await.map_err(|_| {
        ApiError(PortError::new(
            ErrorName::PayloadTooLarge,
            "Request body is too large (limit is 1MiB)",
        ))
    })
}

fn http_body_limited(body: axum::body::Body) -> http_body_util::Limited<axum::body::Body> {
    http_body_util::Limited::new(body, MANAGEMENT_BODY_LIMIT)
}

/// A query string parsed into `T`; a malformed one (a wrong type, a repeated parameter) is a
/// 400 in the Port envelope that names the problem without echoing the caller's values.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        parse_query(query).map(Query)
    }
}

fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| invalid_query("it is not a valid URI query"))?,
    )
    .map(|q| q.0)
    .map_err(|rejection| invalid_query(&redact_serde_message(&rejection.body_text())))
}

fn invalid_query(why: &str) -> ApiError {
    ApiError(PortError::invalid_request(format!(
        "The query string is invalid: {why}"
    )))
}

/// Parses `bytes` as `T`, mapping every failure to a 400 that says what was wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(PortError::invalid_request("A JSON request body is required").into());
    }
    // serde reads a struct from a JSON array too (`[null, null]` fills its fields in order):
    // every body this API takes is an object, so anything else is refused up front.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(PortError::invalid_request("The request body must be a JSON object").into());
    }
    serde_json::from_slice(bytes)
        .map_err(|error| ApiError(PortError::invalid_request(invalid_body(&error.to_string()))))
}

/// The message of a 400 for a body serde refused with `serde_message`: the caller's values
/// are cut (see [`redact_serde_message`]), field names stay.
fn invalid_body(serde_message: &str) -> String {
    if serde_message.contains("recursion limit") {
        return "JSON nesting is too deep (limit is 128 levels)".to_owned();
    }
    format!(
        "The request body is invalid: {}",
        redact_serde_message(serde_message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        flag: bool,
    }

    #[test]
    fn wrong_typed_values_are_not_echoed() {
        let err = parse_json::<Body>(br#"{"flag":"sk-canary-123"}"#).unwrap_err();
        assert!(!err.0.message.contains("canary"), "{}", err.0.message);
        assert!(err.0.message.contains("invalid type"));
    }

    #[test]
    fn unknown_variants_are_not_echoed() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        enum Kind {
            Admin,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Body {
            kind: Kind,
        }
        let err = parse_json::<Body>(br#"{"kind":"sk-canary-456"}"#).unwrap_err();
        assert!(!err.0.message.contains("canary"), "{}", err.0.message);
        assert!(err.0.message.contains("expected"), "{}", err.0.message);
    }

    #[test]
    fn serde_messages_follow_the_redaction_table() {
        for case in switchboard_core::secret::SERDE_REDACTION_CASES {
            let shown = invalid_body(case.message);
            assert!(shown.ends_with(case.redacted), "{shown}");
            assert!(!shown.contains(case.secret), "{shown}");
        }
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Optional {
            a: Option<bool>,
            b: Option<bool>,
        }
        for body in [&b"[null, null]"[..], b"null", b"7", b" \"x\""] {
            let err = parse_json::<Optional>(body).unwrap_err();
            assert!(
                err.0.message.contains("must be a JSON object"),
                "{}",
                err.0.message
            );
        }
        assert!(parse_json::<Optional>(b" {}").is_ok());
    }

    #[test]
    fn unknown_fields_are_named() {
        let err = parse_json::<Body>(br#"{"flag":true,"extra":1}"#).unwrap_err();
        assert!(err.0.message.contains("`extra`"), "{}", err.0.message);
    }

    #[test]
    fn a_bad_query_is_a_port_400_without_the_value() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Q {
            validate_connection: Option<bool>,
        }
        let err = parse_query::<Q>("validate_connection=sk-canary-9").unwrap_err();
        assert_eq!(err.0.name.status(), 400);
        assert!(!err.0.message.contains("canary"), "{}", err.0.message);
        let err =
            parse_query::<Q>("validate_connection=true&validate_connection=false").unwrap_err();
        assert!(err.0.message.contains("duplicate"), "{}", err.0.message);
        assert!(parse_query::<Q>("validate_connection=true").is_ok());
    }

    #[test]
    fn deep_nesting_is_a_400() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        let err = parse_json::<serde_json::Value>(deep.as_bytes()).unwrap_err();
        assert_eq!(err.0.name.status(), 400);
        assert!(err.0.message.contains("too deep"));
    }
}
