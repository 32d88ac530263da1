//! Bedrock Converse responses → [`ChatResponse`]; stop reasons, usage and errors.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{ErrorKind, ProtocolError, UpstreamError, classify_upstream_error};
use crate::ir::{ChatResponse, Part, StopReason, Usage};

#[derive(Deserialize)]
struct WireResponse {
    output: Option<WireOutput>,
    #[serde(rename = "stopReason")]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
struct WireOutput {
    message: Option<WireMessage>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Vec<Value>,
}

/// Converse `usage` (`TokenUsage`): `inputTokens` excludes the cache counters.
#[derive(Deserialize, Default, Debug, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
    #[serde(default)]
    cache_write_input_tokens: u64,
}

impl WireUsage {
    pub(crate) fn to_ir(self) -> Usage {
        Usage {
            input_tokens: self
                .input_tokens
                .saturating_add(self.cache_read_input_tokens)
                .saturating_add(self.cache_write_input_tokens),
            output_tokens: self.output_tokens,
            cached_input_tokens: self.cache_read_input_tokens,
            cache_creation_input_tokens: self.cache_write_input_tokens,
            reasoning_tokens: 0,
        }
    }
}

/// Decodes a Converse response. Bedrock has no response id in the body (only the
/// `x-amzn-RequestId` header), so one is generated; `model` is the model id called.
pub fn decode_response(body: &[u8], model: &str) -> Result<ChatResponse, ProtocolError> {
    let wire: WireResponse =
        serde_json::from_slice(body).map_err(|e| ProtocolError::upstream_json(&e))?;
    let blocks = wire
        .output
        .and_then(|o| o.message)
        .map(|m| m.content)
        .unwrap_or_default();
    let content = blocks.iter().filter_map(decode_block).collect();
    Ok(ChatResponse {
        id: new_response_id(),
        model: model.to_owned(),
        content,
        stop_reason: stop_from_bedrock(wire.stop_reason.as_deref().unwrap_or("end_turn")),
        stop_sequence: None,
        usage: wire.usage.to_ir(),
    })
}

/// An id for an answer that came without one.
pub fn new_response_id() -> String {
    format!("msg_bdrk_{}", uuid::Uuid::new_v4().simple())
}

/// One content block; server-side tool blocks, citations and the like are skipped.
fn decode_block(block: &Value) -> Option<Part> {
    if let Some(t) = block.get("text").and_then(Value::as_str) {
        return Some(Part::Text(t.to_owned()));
    }
    if let Some(u) = block.get("toolUse") {
        if u.get("type").and_then(Value::as_str) == Some("server_tool_use") {
            return None;
        }
        return Some(Part::ToolCall {
            id: u.get("toolUseId")?.as_str()?.to_owned(),
            name: u.get("name")?.as_str()?.to_owned(),
            arguments: u.get("input").map_or_else(|| "{}".into(), Value::to_string),
        });
    }
    let reasoning = block.get("reasoningContent")?;
    if let Some(data) = reasoning.get("redactedContent").and_then(Value::as_str) {
        return Some(Part::RedactedThinking {
            data: data.to_owned(),
        });
    }
    let text = reasoning.get("reasoningText")?;
    Some(Part::Thinking {
        text: text.get("text").and_then(Value::as_str)?.to_owned(),
        signature: text
            .get("signature")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// Bedrock `stopReason` → IR.
pub fn stop_from_bedrock(reason: &str) -> StopReason {
    match reason {
        "end_turn" => StopReason::EndTurn,
        "stop_sequence" => StopReason::StopSequence,
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "tool_use" => StopReason::ToolUse,
        "guardrail_intervened" | "content_filtered" => StopReason::ContentFilter,
        other => StopReason::Other(other.to_owned()),
    }
}

/// The error kind of a Bedrock exception name, as sent in `x-amzn-ErrorType`, a body's
/// `__type`, or an event-stream `:exception-type` (lowerCamel there).
pub fn error_kind(exception: &str) -> Option<ErrorKind> {
    // `Name:namespace` (header) and `namespace#Name` (`__type`) both reduce to `Name`.
    let name = exception.split(':').next().unwrap_or(exception);
    let name = name.rsplit('#').next().unwrap_or(name);
    let mut chars = name.chars();
    let first = chars.next()?.to_ascii_uppercase();
    let name: String = std::iter::once(first).chain(chars).collect();
    Some(match name.as_str() {
        "ThrottlingException" => ErrorKind::RateLimit,
        "ModelNotReadyException" | "ServiceUnavailableException" => ErrorKind::Overloaded,
        "ValidationException" | "ConflictException" | "ServiceQuotaExceededException" => {
            ErrorKind::InvalidRequest
        }
        "AccessDeniedException" => ErrorKind::Permission,
        "ResourceNotFoundException" => ErrorKind::NotFound,
        "ModelTimeoutException" => ErrorKind::Timeout,
        "ModelErrorException" | "ModelStreamErrorException" => ErrorKind::BadGateway,
        "InternalServerException" | "InternalFailure" => ErrorKind::Server,
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "ExpiredTokenException"
        | "IncompleteSignatureException"
        | "MissingAuthenticationTokenException" => ErrorKind::Authentication,
        _ => return None,
    })
}

/// Classifies a Bedrock error answer: the `x-amzn-ErrorType` header wins, then a body
/// `__type`/`code`, then the status. The message is the body's `message`.
///
/// Throttling (429) and ModelNotReady (429 on the wire, modelled retryable) come out as
/// retryable kinds; ModelNotReady is reported as overloaded (503 to callers).
pub fn classify_error(status: u16, amzn_error_type: Option<&str>, body: &[u8]) -> UpstreamError {
    let mut classified = classify_upstream_error(status, body);
    let body_type = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        ["__type", "code", "Code"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_owned))
    });
    let kind = amzn_error_type
        .and_then(error_kind)
        .or_else(|| body_type.as_deref().and_then(error_kind));
    if let Some(kind) = kind {
        classified.kind = kind;
    }
    classified
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_response_decodes_with_cache_usage() {
        let body = br#"{"output":{"message":{"role":"assistant","content":[{"text":"Hello!"}]}},"stopReason":"end_turn",
            "usage":{"inputTokens":2,"outputTokens":30,"totalTokens":1329,"cacheReadInputTokens":1322,"cacheWriteInputTokens":0},"metrics":{"latencyMs":268}}"#;
        let r = decode_response(body, "m").unwrap();
        assert_eq!(r.content, vec![Part::Text("Hello!".into())]);
        assert_eq!(r.usage.input_tokens, 1324);
        assert_eq!(r.usage.cached_input_tokens, 1322);
        assert_eq!(r.stop_reason, StopReason::EndTurn);
    }

    #[test]
    fn errors_map_by_header_then_body_then_status() {
        let throttled = classify_error(
            429,
            Some("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            br#"{"message":"Rate exceeded"}"#,
        );
        assert_eq!(throttled.kind, ErrorKind::RateLimit);
        assert!(throttled.kind.is_retryable());
        assert_eq!(throttled.message, "Rate exceeded");
        let body_only = classify_error(
            429,
            None,
            br#"{"__type":"ThrottlingException","message":"x"}"#,
        );
        assert_eq!(body_only.kind, ErrorKind::RateLimit);
        let not_ready = classify_error(429, Some("ModelNotReadyException"), b"{}");
        assert_eq!(not_ready.kind.openai_status(), 503);
        assert_eq!(
            classify_error(403, Some("AccessDeniedException"), b"{}").kind,
            ErrorKind::Permission
        );
        assert_eq!(
            classify_error(400, None, br#"{"message":"invalid"}"#).kind,
            ErrorKind::InvalidRequest
        );
        assert_eq!(
            error_kind("throttlingException"),
            Some(ErrorKind::RateLimit)
        );
    }
}
