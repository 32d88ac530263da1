//! Gemini `GenerateContentResponse` → [`ChatResponse`]; finish reasons, usage, errors.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{ErrorKind, ProtocolError, UpstreamError, classify_upstream_error};
use crate::ir::{ChatResponse, Part, StopReason, Usage};

/// One response (also one stream chunk: each has the same shape).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireResponse {
    #[serde(default)]
    pub(crate) candidates: Vec<WireCandidate>,
    pub(crate) usage_metadata: Option<WireUsage>,
    pub(crate) model_version: Option<String>,
    pub(crate) response_id: Option<String>,
    pub(crate) prompt_feedback: Option<Value>,
    /// A mid-stream failure: `{"error":{"code","message","status"}}`.
    pub(crate) error: Option<WireError>,
}

#[derive(Deserialize, Default)]
pub(crate) struct WireError {
    pub(crate) message: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) code: Option<u16>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireCandidate {
    pub(crate) content: Option<WireContent>,
    pub(crate) finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
pub(crate) struct WireContent {
    #[serde(default)]
    pub(crate) parts: Vec<Value>,
}

#[derive(Deserialize, Default, Debug, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireUsage {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
}

impl WireUsage {
    /// `thoughtsTokenCount` is not inside `candidatesTokenCount`; the IR's output includes
    /// reasoning, so they add up. The cache count is already inside the prompt count.
    pub(crate) fn to_ir(self) -> Usage {
        Usage {
            input_tokens: self.prompt_token_count,
            output_tokens: self
                .candidates_token_count
                .saturating_add(self.thoughts_token_count),
            cached_input_tokens: self.cached_content_token_count,
            cache_creation_input_tokens: 0,
            reasoning_tokens: self.thoughts_token_count,
        }
    }
}

/// One decoded part: content, and the `thoughtSignature` it carried.
pub(crate) enum DecodedPart {
    Text(String),
    Thought(String),
    Call {
        id: Option<String>,
        name: String,
        args: String,
    },
    Skip,
}

pub(crate) fn decode_part(part: &Value) -> (DecodedPart, Option<String>) {
    let signature = part
        .get("thoughtSignature")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let thought = part.get("thought").and_then(Value::as_bool) == Some(true);
    let decoded = if let Some(text) = part.get("text").and_then(Value::as_str) {
        if thought {
            DecodedPart::Thought(text.to_owned())
        } else {
            DecodedPart::Text(text.to_owned())
        }
    } else if let Some(call) = part.get("functionCall") {
        DecodedPart::Call {
            id: call.get("id").and_then(Value::as_str).map(str::to_owned),
            name: call
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            args: call
                .get("args")
                .map_or_else(|| "{}".to_owned(), Value::to_string),
        }
    } else {
        DecodedPart::Skip
    };
    (decoded, signature)
}

/// An id for a function call that came without one (Gemini ids are optional).
pub fn new_call_id() -> String {
    format!("call_{}", &uuid::Uuid::new_v4().simple().to_string()[..24])
}

/// Decodes a non-streamed response (the first candidate).
///
/// A `thoughtSignature` becomes a signature-only [`Part::Thinking`] right before the part
/// that carried it, so re-encoding for Gemini puts it back where it was (Gemini 3 requires
/// the signature of a function call to be replayed).
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, ProtocolError> {
    let wire: WireResponse =
        serde_json::from_slice(body).map_err(|e| ProtocolError::upstream_json(&e))?;
    let candidate = wire.candidates.into_iter().next().unwrap_or_default();
    let mut content = Vec::new();
    let mut called = false;
    for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
        let (decoded, signature) = decode_part(&part);
        if let Some(signature) = signature {
            content.push(Part::Thinking {
                text: String::new(),
                signature: Some(signature),
            });
        }
        match decoded {
            DecodedPart::Text(t) if !t.is_empty() => content.push(Part::Text(t)),
            DecodedPart::Thought(t) => content.push(Part::Thinking {
                text: t,
                signature: None,
            }),
            DecodedPart::Call { id, name, args } => {
                called = true;
                content.push(Part::ToolCall {
                    id: id.unwrap_or_else(new_call_id),
                    name,
                    arguments: args,
                });
            }
            DecodedPart::Text(_) | DecodedPart::Skip => {}
        }
    }
    let stop_reason = match (&candidate.finish_reason, &wire.prompt_feedback) {
        (Some(r), _) => stop_from_gemini(r, called),
        (None, Some(_)) => StopReason::ContentFilter,
        (None, None) => StopReason::EndTurn,
    };
    Ok(ChatResponse {
        id: wire.response_id.unwrap_or_default(),
        model: wire.model_version.unwrap_or_default(),
        content,
        stop_reason,
        stop_sequence: None,
        usage: wire.usage_metadata.unwrap_or_default().to_ir(),
    })
}

/// Gemini `finishReason` → IR. Gemini says `STOP` after function calls too, so whether the
/// answer called a function decides between end of turn and tool use.
pub fn stop_from_gemini(reason: &str, called_function: bool) -> StopReason {
    match reason {
        "STOP" if called_function => StopReason::ToolUse,
        "STOP" | "FINISH_REASON_UNSPECIFIED" => StopReason::EndTurn,
        "MAX_TOKENS" => StopReason::MaxTokens,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "LANGUAGE"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => StopReason::ContentFilter,
        other => StopReason::Other(other.to_ascii_lowercase()),
    }
}

/// The kind of a Google RPC `status` string.
pub fn status_kind(status: &str) -> Option<ErrorKind> {
    Some(match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => ErrorKind::InvalidRequest,
        "UNAUTHENTICATED" => ErrorKind::Authentication,
        "PERMISSION_DENIED" => ErrorKind::Permission,
        "NOT_FOUND" => ErrorKind::NotFound,
        "RESOURCE_EXHAUSTED" => ErrorKind::RateLimit,
        "INTERNAL" | "UNKNOWN" | "DATA_LOSS" => ErrorKind::Server,
        "UNAVAILABLE" => ErrorKind::Overloaded,
        "DEADLINE_EXCEEDED" => ErrorKind::Timeout,
        _ => return None,
    })
}

/// Classifies a Google error body (`{"error":{"code","message","status"}}`); the `status`
/// string wins over the HTTP status.
pub fn classify_error(status: u16, body: &[u8]) -> UpstreamError {
    let mut classified = classify_upstream_error(status, body);
    let rpc_status = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        v.pointer("/error/status")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    if let Some(kind) = rpc_status.as_deref().and_then(status_kind) {
        classified.kind = kind;
    }
    classified
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_adds_thoughts_and_function_calls_mean_tool_use() {
        let body = br#"{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"f","args":{"a":1}},"thoughtSignature":"s"}]},"finishReason":"STOP"}],
            "usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":1,"totalTokenCount":106,"thoughtsTokenCount":100},"modelVersion":"gemini-3","responseId":"r1"}"#;
        let r = decode_response(body).unwrap();
        assert_eq!(r.stop_reason, StopReason::ToolUse);
        assert_eq!(r.usage.output_tokens, 101);
        assert_eq!(r.usage.reasoning_tokens, 100);
        assert_eq!(r.usage.total_tokens(), 106);
        assert!(matches!(&r.content[0], Part::Thinking { signature: Some(s), .. } if s == "s"));
        assert!(
            matches!(&r.content[1], Part::ToolCall { arguments, .. } if arguments == r#"{"a":1}"#)
        );
    }

    #[test]
    fn google_errors_classify_by_status_string() {
        let e = classify_error(
            429,
            br#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::RateLimit);
        assert_eq!(e.message, "Quota exceeded");
        let e = classify_error(
            403,
            br#"{"error":{"code":403,"message":"no","status":"PERMISSION_DENIED"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::Permission);
    }
}
