//! Errors on the inference surfaces, each in its caller's own protocol: OpenAI's
//! `{"error":{"message","type","param","code"}}` with the Port error name in `code`, and
//! Anthropic's `{"type":"error","error":{"type","message"}}` with it in `error.type`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_core::{ErrorName, PortError};

/// Which public protocol a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    OpenAi,
    Anthropic,
}

impl Surface {
    /// The surface's name in invocation records.
    pub fn name(self) -> &'static str {
        match self {
            Surface::OpenAi => "openai",
            Surface::Anthropic => "anthropic",
        }
    }
}

/// An error ready to be rendered on a surface.
#[derive(Clone, Debug)]
pub struct SurfaceError {
    pub status: u16,
    /// The Port error name, or an upstream error type for errors the provider reported.
    pub name: String,
    pub message: String,
    /// Seconds, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

impl SurfaceError {
    pub fn new(status: u16, name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            name: name.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, ErrorName::InvalidRequest.as_str(), message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            401,
            ErrorName::Unauthorized.as_str(),
            "A valid Switchboard API token is required",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            500,
            ErrorName::Internal.as_str(),
            "An internal error occurred",
        )
    }

    /// The body of this error on `surface`.
    pub fn body(&self, surface: Surface) -> serde_json::Value {
        match surface {
            Surface::OpenAi => json!({
                "error": {
                    "message": self.message,
                    "type": openai_type(self.status),
                    "param": null,
                    "code": self.name,
                }
            }),
            Surface::Anthropic => json!({
                "type": "error",
                "error": { "type": self.name, "message": self.message },
            }),
        }
    }

    pub fn into_response(self, surface: Surface) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut response = (status, axum::Json(self.body(surface))).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<PortError> for SurfaceError {
    fn from(error: PortError) -> Self {
        Self::new(error.name.status(), error.name.as_str(), error.message)
    }
}

/// OpenAI's `type` for a status, so SDK users see familiar values.
fn openai_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_names_travel_in_each_surfaces_own_field() {
        let error = SurfaceError::from(PortError::model_not_enabled("gpt-9", "openai"));
        let openai = error.body(Surface::OpenAi);
        assert_eq!(openai["error"]["code"], "LLMProviderModelNotEnabledError");
        assert_eq!(openai["error"]["type"], "invalid_request_error");
        assert!(openai["error"]["param"].is_null());
        let anthropic = error.body(Surface::Anthropic);
        assert_eq!(anthropic["type"], "error");
        assert_eq!(
            anthropic["error"]["type"],
            "LLMProviderModelNotEnabledError"
        );
    }
}
