//! Errors of this crate, the small vocabulary of upstream error kinds, and the mapping from
//! either protocol's error bodies to that vocabulary.
//!
//! Every `ProtocolError` message is safe to show the caller: serde's messages quote the
//! offending value (`invalid type: string "…"`), and a value in the wrong place may be a
//! credential, so quoted literals are cut before they reach a message.

use serde::Deserialize;
use switchboard_core::redact_serde_message;

/// A failure to decode, validate or translate a message.
///
/// The variants say whose fault it is: `InvalidJson`, `InvalidRequest` and `Unsupported`
/// come from what the caller sent (answer 400); `MalformedUpstream` and `Sse` come from
/// what the upstream sent (answer 502, or a mid-stream error once streaming has begun).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The caller's body is not JSON of the expected shape.
    #[error("the request body is invalid: {0}")]
    InvalidJson(String),
    /// The body parsed but breaks a rule of the protocol.
    #[error("invalid request{}: {message}", param_suffix(.param))]
    InvalidRequest {
        /// The offending field, in the caller's protocol's spelling (`messages[2].content`).
        param: Option<String>,
        /// What is wrong, without echoing values.
        message: String,
    },
    /// The request uses something the target protocol cannot express.
    #[error("{feature} is not supported by the {target} protocol")]
    Unsupported {
        /// What the caller asked for (`n > 1`, `input_audio content parts`, …).
        feature: String,
        /// The protocol that cannot express it.
        target: &'static str,
    },
    /// The upstream's response or stream could not be understood.
    #[error("the upstream response is malformed: {0}")]
    MalformedUpstream(String),
    /// The upstream's event stream broke the SSE framing rules or its size limit.
    #[error("the upstream event stream is invalid: {0}")]
    Sse(#[from] crate::sse::SseError),
}

fn param_suffix(param: &Option<String>) -> String {
    param
        .as_ref()
        .map(|p| format!(" (`{p}`)"))
        .unwrap_or_default()
}

impl ProtocolError {
    /// The error kind to report to the caller.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidJson(_) | Self::InvalidRequest { .. } | Self::Unsupported { .. } => {
                ErrorKind::InvalidRequest
            }
            Self::MalformedUpstream(_) | Self::Sse(_) => ErrorKind::BadGateway,
        }
    }

    pub(crate) fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            param: Some(param.into()),
            message: message.into(),
        }
    }

    pub(crate) fn request_json(err: &serde_json::Error) -> Self {
        Self::request_message(&err.to_string())
    }

    pub(crate) fn upstream_json(err: &serde_json::Error) -> Self {
        Self::upstream_message(&err.to_string())
    }

    /// The caller's body failed to parse with serde's `message`; its values are cut.
    fn request_message(message: &str) -> Self {
        Self::InvalidJson(redact_serde_message(message))
    }

    /// The upstream's body failed to parse with serde's `message`; its values are cut too,
    /// since an upstream may echo the caller's.
    fn upstream_message(message: &str) -> Self {
        Self::MalformedUpstream(redact_serde_message(message))
    }
}

/// The protocol-neutral class of an error, enough to pick a status and each protocol's
/// error `type` and to decide whether a retry may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// 400: the request breaks a rule.
    InvalidRequest,
    /// 401: missing or bad credentials.
    Authentication,
    /// 402 (Anthropic) / 429 `insufficient_quota` (OpenAI): out of credit or over a spend cap.
    Billing,
    /// 403: the credentials may not do this.
    Permission,
    /// 404: no such model, deployment or route.
    NotFound,
    /// 413: the body is too large.
    RequestTooLarge,
    /// 429: slow down.
    RateLimit,
    /// 400 `content_filter`: a provider's safety system refused the prompt.
    ContentFilter,
    /// 500: the provider failed.
    Server,
    /// 502: the upstream answered something this gateway cannot understand.
    BadGateway,
    /// 503 (OpenAI) / 529 (Anthropic): the provider is out of capacity.
    Overloaded,
    /// 504: the provider timed out.
    Timeout,
}

impl ErrorKind {
    /// Whether retrying the same request later may succeed (before any byte was forwarded).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::RateLimit | Self::Server | Self::Overloaded | Self::Timeout | Self::BadGateway
        )
    }

    /// The HTTP status an OpenAI-compatible caller gets for this kind (Anthropic's 529
    /// becomes 503, which OpenAI clients understand).
    pub fn openai_status(self) -> u16 {
        match self {
            Self::Billing => 429,
            Self::Overloaded => 503,
            other => other.common_status(),
        }
    }

    /// The HTTP status an Anthropic caller gets for this kind.
    pub fn anthropic_status(self) -> u16 {
        match self {
            Self::Billing => 402,
            Self::Overloaded => 529,
            other => other.common_status(),
        }
    }

    fn common_status(self) -> u16 {
        match self {
            Self::InvalidRequest | Self::ContentFilter => 400,
            Self::Authentication => 401,
            Self::Billing => 402,
            Self::Permission => 403,
            Self::NotFound => 404,
            Self::RequestTooLarge => 413,
            Self::RateLimit => 429,
            Self::Server => 500,
            Self::BadGateway => 502,
            Self::Overloaded => 503,
            Self::Timeout => 504,
        }
    }

    /// OpenAI's `error.type` and `error.code` for this kind.
    pub fn openai_type_code(self) -> (&'static str, Option<&'static str>) {
        match self {
            Self::InvalidRequest | Self::RequestTooLarge | Self::NotFound => {
                ("invalid_request_error", None)
            }
            Self::Authentication => ("invalid_request_error", Some("invalid_api_key")),
            Self::Billing => ("insufficient_quota", Some("insufficient_quota")),
            Self::Permission => ("permission_error", None),
            Self::RateLimit => ("rate_limit_error", Some("rate_limit_exceeded")),
            Self::ContentFilter => ("invalid_request_error", Some("content_filter")),
            Self::Server | Self::BadGateway => ("server_error", None),
            Self::Overloaded => ("server_error", Some("overloaded")),
            Self::Timeout => ("server_error", Some("timeout")),
        }
    }

    /// Anthropic's `error.type` for this kind.
    pub fn anthropic_type(self) -> &'static str {
        match self {
            Self::InvalidRequest | Self::ContentFilter => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::Billing => "billing_error",
            Self::Permission => "permission_error",
            Self::NotFound => "not_found_error",
            Self::RequestTooLarge => "request_too_large",
            Self::RateLimit => "rate_limit_error",
            Self::Server | Self::BadGateway => "api_error",
            Self::Overloaded => "overloaded_error",
            Self::Timeout => "timeout_error",
        }
    }

    /// The kind for an HTTP status when the body says nothing more precise.
    pub fn from_status(status: u16) -> Self {
        match status {
            401 => Self::Authentication,
            402 => Self::Billing,
            403 => Self::Permission,
            404 => Self::NotFound,
            413 => Self::RequestTooLarge,
            408 | 504 => Self::Timeout,
            429 => Self::RateLimit,
            502 => Self::BadGateway,
            503 | 529 => Self::Overloaded,
            400..=499 => Self::InvalidRequest,
            _ => Self::Server,
        }
    }

    /// The kind for an error `type` or `code` string of either protocol (Anthropic types,
    /// OpenAI types and codes, Azure codes). `None` when the string is not recognized.
    pub fn from_type_or_code(name: &str) -> Option<Self> {
        Some(match name {
            "invalid_request_error"
            | "invalid_value"
            | "context_length_exceeded"
            | "unsupported_parameter"
            | "unsupported_value"
            | "string_above_max_length" => Self::InvalidRequest,
            "authentication_error" | "invalid_api_key" | "401" => Self::Authentication,
            "billing_error" | "insufficient_quota" | "enforced_spend_limit_reached" => {
                Self::Billing
            }
            "permission_error" | "permission_denied" | "403" => Self::Permission,
            "not_found_error" | "model_not_found" | "DeploymentNotFound" | "404" => Self::NotFound,
            "request_too_large" => Self::RequestTooLarge,
            "rate_limit_error" | "rate_limit_exceeded" | "requests" | "tokens" | "429" => {
                Self::RateLimit
            }
            "content_filter" => Self::ContentFilter,
            "api_error" | "server_error" | "500" => Self::Server,
            "overloaded_error" | "overloaded" | "503" | "529" => Self::Overloaded,
            "timeout_error" | "timeout" | "504" => Self::Timeout,
            _ => return None,
        })
    }
}

/// An upstream error answer, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    /// The upstream's HTTP status (0 for an error event inside a 200 stream).
    pub status: u16,
    /// What kind of failure it is.
    pub kind: ErrorKind,
    /// The upstream's message. It comes from the provider, not from the caller's data, but
    /// it may name the gateway's organization at the provider: callers that must hide that
    /// should show a generic message per kind instead.
    pub message: String,
}

/// Longest upstream message kept; longer ones are cut at a character boundary.
const MAX_MESSAGE: usize = 2048;

#[derive(Deserialize)]
struct AnyErrorBody {
    error: Option<AnyErrorObject>,
    /// Bedrock-style and some proxies' flat `{"message": …}`.
    message: Option<String>,
}

#[derive(Deserialize)]
struct AnyErrorObject {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<serde_json::Value>,
    message: Option<String>,
    details: Option<AnyErrorDetails>,
}

#[derive(Deserialize)]
struct AnyErrorDetails {
    error_code: Option<String>,
}

/// Classifies an upstream error body of either protocol (OpenAI/Azure
/// `{"error":{message,type,code}}`, Anthropic `{"type":"error","error":{type,message}}`, or a
/// flat `{"message"}`) with its HTTP status. The most specific hint wins: a spend-cap detail,
/// then the code, then the type, then the status. A body that is not JSON keeps the status
/// and gets a generic message.
pub fn classify_upstream_error(status: u16, body: &[u8]) -> UpstreamError {
    let parsed: Option<AnyErrorBody> = serde_json::from_slice(body).ok();
    let (object, flat) = match parsed {
        Some(b) => (b.error, b.message),
        None => (None, None),
    };
    let by_body = object.as_ref().and_then(kind_from_object);
    let kind = by_body.unwrap_or_else(|| ErrorKind::from_status(status));
    let message = object
        .and_then(|o| o.message)
        .or(flat)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("the upstream provider answered HTTP {status}"));
    UpstreamError {
        status,
        kind,
        message: truncate(message),
    }
}

fn kind_from_object(object: &AnyErrorObject) -> Option<ErrorKind> {
    let detail = object
        .details
        .as_ref()
        .and_then(|d| d.error_code.as_deref());
    let code = match &object.code {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    [detail, code.as_deref(), object.kind.as_deref()]
        .into_iter()
        .flatten()
        .find_map(ErrorKind::from_type_or_code)
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_overloaded_maps_to_503_for_openai_callers() {
        let e = classify_upstream_error(
            529,
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::Overloaded);
        assert_eq!(e.kind.openai_status(), 503);
        assert_eq!(e.kind.anthropic_status(), 529);
        assert_eq!(e.message, "Overloaded");
    }

    #[test]
    fn azure_string_codes_and_spend_caps_are_recognized() {
        let e = classify_upstream_error(429, br#"{"error":{"code":"429","message":"slow"}}"#);
        assert_eq!(e.kind, ErrorKind::RateLimit);
        let e = classify_upstream_error(
            429,
            br#"{"type":"error","error":{"type":"rate_limit_error","message":"cap","details":{"error_code":"enforced_spend_limit_reached"}}}"#,
        );
        assert_eq!(e.kind, ErrorKind::Billing);
        assert!(!e.kind.is_retryable());
        let e = classify_upstream_error(
            429,
            br#"{"error":{"message":"quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::Billing);
    }

    #[test]
    fn non_json_bodies_fall_back_to_the_status() {
        let e = classify_upstream_error(502, b"<html>bad gateway</html>");
        assert_eq!(e.kind, ErrorKind::BadGateway);
        assert!(e.message.contains("502"));
    }

    #[test]
    fn serde_messages_do_not_echo_values() {
        let err = serde_json::from_str::<u32>(r#""sk-canary""#).unwrap_err();
        let e = ProtocolError::request_json(&err);
        assert!(!e.to_string().contains("canary"), "{e}");
    }

    #[test]
    fn serde_messages_follow_the_redaction_table() {
        for case in switchboard_core::secret::SERDE_REDACTION_CASES {
            for e in [
                ProtocolError::request_message(case.message),
                ProtocolError::upstream_message(case.message),
            ] {
                let shown = e.to_string();
                assert!(shown.ends_with(case.redacted), "{shown}");
                assert!(!shown.contains(case.secret), "{shown}");
            }
        }
    }
}
