//! Anthropic Messages response bodies ⇄ [`ChatResponse`], usage and stop reasons.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::ProtocolError;
use crate::ir::{ChatResponse, Part, StopReason, Usage};

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    content: Vec<WireBlock>,
    stop_reason: Option<String>,
    stop_sequence: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    Thinking {
        thinking: String,
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
    /// Server tool blocks, compaction, fallback markers, …: nothing a client of another
    /// protocol could act on.
    #[serde(other)]
    Other,
}

/// Anthropic's usage object, as received in responses, `message_start` and
/// `message_delta`. Every field is optional because `message_delta` sends only some.
#[derive(Deserialize, Default, Debug, Clone, Copy)]
pub(crate) struct WireUsage {
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
    pub(crate) cache_creation_input_tokens: Option<u64>,
    pub(crate) cache_read_input_tokens: Option<u64>,
}

/// Anthropic's raw counters, kept separately so partial updates can be merged before
/// converting (Anthropic `input_tokens` excludes the cache counters; the IR's includes them).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawUsage {
    input: u64,
    output: u64,
    cache_creation: u64,
    cache_read: u64,
}

impl RawUsage {
    /// Applies the fields present in `w`, leaving the others.
    pub(crate) fn merge(&mut self, w: &WireUsage) {
        let set = |slot: &mut u64, v: Option<u64>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut self.input, w.input_tokens);
        set(&mut self.output, w.output_tokens);
        set(&mut self.cache_creation, w.cache_creation_input_tokens);
        set(&mut self.cache_read, w.cache_read_input_tokens);
    }

    pub(crate) fn to_ir(self) -> Usage {
        Usage {
            input_tokens: self
                .input
                .saturating_add(self.cache_creation)
                .saturating_add(self.cache_read),
            output_tokens: self.output,
            cached_input_tokens: self.cache_read,
            cache_creation_input_tokens: self.cache_creation,
            reasoning_tokens: 0,
        }
    }
}

/// Anthropic's usage object, as sent: `input_tokens` excludes cache reads and writes.
#[derive(Serialize)]
pub(crate) struct OutUsage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

impl OutUsage {
    pub(crate) fn from_ir(u: &Usage) -> Self {
        Self {
            input_tokens: u
                .input_tokens
                .saturating_sub(u.cached_input_tokens)
                .saturating_sub(u.cache_creation_input_tokens),
            cache_creation_input_tokens: u.cache_creation_input_tokens,
            cache_read_input_tokens: u.cached_input_tokens,
            output_tokens: u.output_tokens,
        }
    }
}

/// Decodes a non-streamed Anthropic response. Blocks other protocols cannot carry (server
/// tool use and results, compaction, fallback markers) are skipped.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, ProtocolError> {
    let wire: WireResponse =
        serde_json::from_slice(body).map_err(|e| ProtocolError::upstream_json(&e))?;
    let mut usage = RawUsage::default();
    usage.merge(&wire.usage);
    Ok(ChatResponse {
        id: wire.id,
        model: wire.model,
        content: wire.content.into_iter().filter_map(decode_block).collect(),
        stop_reason: wire
            .stop_reason
            .as_deref()
            .map(stop_from_anthropic)
            .unwrap_or(StopReason::EndTurn),
        stop_sequence: wire.stop_sequence,
        usage: usage.to_ir(),
    })
}

fn decode_block(b: WireBlock) -> Option<Part> {
    Some(match b {
        WireBlock::Text { text } => Part::Text(text),
        WireBlock::ToolUse { id, name, input } => Part::ToolCall {
            id,
            name,
            arguments: match input {
                Value::Null => "{}".to_owned(),
                v => v.to_string(),
            },
        },
        WireBlock::Thinking {
            thinking,
            signature,
        } => Part::Thinking {
            text: thinking,
            signature,
        },
        WireBlock::RedactedThinking { data } => Part::RedactedThinking { data },
        WireBlock::Other => return None,
    })
}

/// Anthropic `stop_reason` → IR.
pub fn stop_from_anthropic(reason: &str) -> StopReason {
    match reason {
        "end_turn" => StopReason::EndTurn,
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "tool_use" => StopReason::ToolUse,
        "refusal" => StopReason::ContentFilter,
        other => StopReason::Other(other.to_owned()),
    }
}

/// IR → Anthropic `stop_reason`.
pub fn stop_to_anthropic(reason: &StopReason) -> &str {
    match reason {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::ToolUse => "tool_use",
        StopReason::ContentFilter => "refusal",
        StopReason::Other(s) if s == "pause_turn" => "pause_turn",
        StopReason::Other(_) => "end_turn",
    }
}

/// Encodes a complete answer as an Anthropic `message`, reporting `model`.
///
/// Tool-call argument text is parsed into `input` (empty → `{}`). Arguments that are not a
/// JSON object are the upstream's fault and yield [`ProtocolError::MalformedUpstream`].
/// A refusal is rendered as text. Thinking without a signature is rendered as a thinking
/// block with an empty signature (the caller cannot replay it to Anthropic anyway).
pub fn encode_response(resp: &ChatResponse, model: &str) -> Result<Vec<u8>, ProtocolError> {
    let content = resp
        .content
        .iter()
        .filter_map(|p| encode_block(p).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let body = json!({
        "id": resp.id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_to_anthropic(&resp.stop_reason),
        "stop_sequence": resp.stop_sequence,
        "usage": OutUsage::from_ir(&resp.usage),
    });
    Ok(serde_json::to_vec(&body).unwrap_or_default())
}

fn encode_block(p: &Part) -> Result<Option<Value>, ProtocolError> {
    Ok(Some(match p {
        Part::Text(t) | Part::Refusal(t) => json!({"type": "text", "text": t}),
        Part::ToolCall {
            id,
            name,
            arguments,
        } => json!({"type": "tool_use", "id": id, "name": name,
            "input": upstream_arguments(arguments)?}),
        Part::Thinking { text, signature } => json!({"type": "thinking", "thinking": text,
            "signature": signature.as_deref().unwrap_or("")}),
        Part::RedactedThinking { data } => json!({"type": "redacted_thinking", "data": data}),
        Part::Image(_) | Part::ToolResult { .. } => return Ok(None),
    }))
}

fn upstream_arguments(arguments: &str) -> Result<Value, ProtocolError> {
    if arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(ProtocolError::MalformedUpstream(
            "a tool call's arguments are not a JSON object".into(),
        )),
    }
}

/// A fresh `msg_…` id for answers the gateway reports under its own id.
pub fn new_message_id() -> String {
    format!("msg_{}", uuid::Uuid::new_v4().simple())
}

#[derive(Serialize)]
pub(crate) struct ErrorEnvelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorObject<'a>,
}

#[derive(Serialize)]
struct ErrorObject<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

impl<'a> ErrorEnvelope<'a> {
    pub(crate) fn new(kind: &'a str, message: &'a str) -> Self {
        Self {
            kind: "error",
            error: ErrorObject { kind, message },
        }
    }
}

/// An Anthropic error body: `{"type":"error","error":{"type","message"}}`.
pub fn error_body(kind: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&ErrorEnvelope::new(kind, message)).expect("wire structs always serialize")
}

/// The status and body an Anthropic caller gets for an error of `kind`.
pub fn error_response(kind: crate::ErrorKind, message: &str) -> (u16, Vec<u8>) {
    (
        kind.anthropic_status(),
        error_body(kind.anthropic_type(), message),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_cache_in_input_and_round_trips() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"c",
          "content":[{"type":"text","text":"hi"},{"type":"server_tool_use","id":"s","name":"web_search","input":{}},
          {"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}}],
          "stop_reason":"tool_use","stop_sequence":null,
          "usage":{"input_tokens":10,"cache_creation_input_tokens":3,"cache_read_input_tokens":5,"output_tokens":7}}"#;
        let r = decode_response(body).unwrap();
        assert_eq!(r.usage.input_tokens, 18);
        assert_eq!(r.usage.cached_input_tokens, 5);
        assert_eq!(r.content.len(), 2);
        assert_eq!(r.stop_reason, StopReason::ToolUse);
        let again = decode_response(&encode_response(&r, "c").unwrap()).unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn invalid_upstream_arguments_are_an_upstream_error() {
        let r = ChatResponse {
            id: "x".into(),
            model: "m".into(),
            content: vec![Part::ToolCall {
                id: "c".into(),
                name: "f".into(),
                arguments: "{\"a\":".into(),
            }],
            stop_reason: StopReason::ToolUse,
            stop_sequence: None,
            usage: Usage::default(),
        };
        assert!(matches!(
            encode_response(&r, "m"),
            Err(ProtocolError::MalformedUpstream(_))
        ));
    }

    #[test]
    fn error_body_shape() {
        let v: Value =
            serde_json::from_slice(&error_body("overloaded_error", "Overloaded")).unwrap();
        assert_eq!(
            v,
            json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})
        );
    }
}
