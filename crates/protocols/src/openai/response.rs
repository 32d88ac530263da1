//! OpenAI Chat Completions response bodies ⇄ [`ChatResponse`], usage and finish reasons.

use serde::{Deserialize, Serialize};

use crate::error::ProtocolError;
use crate::ir::{ChatResponse, Part, StopReason, Usage};

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    choices: Vec<WireChoice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    index: u32,
    message: WireMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    content: Option<String>,
    refusal: Option<String>,
    /// Non-standard, sent by several OpenAI-compatible servers.
    reasoning_content: Option<String>,
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
struct WireToolCall {
    id: String,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: String,
}

/// OpenAI's usage object, as received.
#[derive(Deserialize, Default)]
pub(crate) struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    prompt_tokens_details: Option<PromptDetails>,
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize, Default)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct CompletionDetails {
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    pub(crate) fn to_ir(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_tokens,
            output_tokens: self.completion_tokens,
            cached_input_tokens: self
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            cache_creation_input_tokens: 0,
            reasoning_tokens: self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }
    }
}

/// Decodes a non-streamed OpenAI response. Only choice 0 is read (the gateway never asks
/// a translating upstream for more than one).
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, ProtocolError> {
    let wire: WireResponse =
        serde_json::from_slice(body).map_err(|e| ProtocolError::upstream_json(&e))?;
    let choice = wire.choices.into_iter().find(|c| c.index == 0);
    let (content, stop_reason) = match choice {
        Some(c) => (
            decode_message(c.message),
            c.finish_reason
                .as_deref()
                .map(stop_from_finish)
                .unwrap_or(StopReason::EndTurn),
        ),
        // Azure answers a filtered prompt with no choice at all.
        None => (Vec::new(), StopReason::ContentFilter),
    };
    Ok(ChatResponse {
        id: wire.id,
        model: wire.model,
        content,
        stop_reason,
        stop_sequence: None,
        usage: wire.usage.map(|u| u.to_ir()).unwrap_or_default(),
    })
}

fn decode_message(m: WireMessage) -> Vec<Part> {
    let mut parts = Vec::new();
    if let Some(r) = m.reasoning_content.filter(|r| !r.is_empty()) {
        parts.push(Part::Thinking {
            text: r,
            signature: None,
        });
    }
    if let Some(t) = m.content.filter(|t| !t.is_empty()) {
        parts.push(Part::Text(t));
    }
    if let Some(r) = m.refusal.filter(|r| !r.is_empty()) {
        parts.push(Part::Refusal(r));
    }
    for call in m.tool_calls.unwrap_or_default() {
        parts.push(Part::ToolCall {
            id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
        });
    }
    parts
}

/// OpenAI `finish_reason` → IR.
pub fn stop_from_finish(reason: &str) -> StopReason {
    match reason {
        "stop" => StopReason::EndTurn,
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::ContentFilter,
        other => StopReason::Other(other.to_owned()),
    }
}

/// IR → OpenAI `finish_reason`. Stop sequences and reasons OpenAI lacks read as `stop`.
pub fn finish_from_stop(reason: &StopReason) -> &'static str {
    match reason {
        StopReason::EndTurn | StopReason::StopSequence | StopReason::Other(_) => "stop",
        StopReason::MaxTokens => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::ContentFilter => "content_filter",
    }
}

/// OpenAI's usage object, as sent.
#[derive(Serialize)]
pub(crate) struct OutUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: OutPromptDetails,
    completion_tokens_details: OutCompletionDetails,
}

#[derive(Serialize)]
struct OutPromptDetails {
    cached_tokens: u64,
    audio_tokens: u64,
}

#[derive(Serialize)]
struct OutCompletionDetails {
    reasoning_tokens: u64,
    audio_tokens: u64,
    accepted_prediction_tokens: u64,
    rejected_prediction_tokens: u64,
}

impl OutUsage {
    pub(crate) fn from_ir(u: &Usage) -> Self {
        Self {
            prompt_tokens: u.input_tokens,
            completion_tokens: u.output_tokens,
            total_tokens: u.total_tokens(),
            prompt_tokens_details: OutPromptDetails {
                cached_tokens: u.cached_input_tokens,
                audio_tokens: 0,
            },
            completion_tokens_details: OutCompletionDetails {
                reasoning_tokens: u.reasoning_tokens,
                audio_tokens: 0,
                accepted_prediction_tokens: 0,
                rejected_prediction_tokens: 0,
            },
        }
    }
}

#[derive(Serialize)]
struct OutResponse<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [OutChoice<'a>; 1],
    usage: OutUsage,
}

#[derive(Serialize)]
struct OutChoice<'a> {
    index: u32,
    message: OutMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct OutMessage<'a> {
    role: &'static str,
    content: Option<String>,
    refusal: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<OutToolCall<'a>>,
    annotations: [(); 0],
}

#[derive(Serialize)]
pub(crate) struct OutToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: OutFunction<'a>,
}

#[derive(Serialize)]
struct OutFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

/// Encodes a complete answer as an OpenAI `chat.completion`, reporting `model` (the name the
/// caller used) rather than the upstream's. Thinking parts are not representable and are
/// dropped; `content` is `null` when there is no text, as OpenAI sends it.
pub fn encode_response(resp: &ChatResponse, model: &str) -> Vec<u8> {
    let mut text = String::new();
    let mut refusal = String::new();
    let mut tool_calls = Vec::new();
    for p in &resp.content {
        match p {
            Part::Text(t) => text.push_str(t),
            Part::Refusal(r) => refusal.push_str(r),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => tool_calls.push(OutToolCall {
                id,
                kind: "function",
                function: OutFunction {
                    name,
                    // An empty argument string is not valid JSON; OpenAI sends `{}`.
                    arguments: if arguments.is_empty() {
                        "{}"
                    } else {
                        arguments
                    },
                },
            }),
            _ => {}
        }
    }
    let out = OutResponse {
        id: &resp.id,
        object: "chat.completion",
        created: unix_now(),
        model,
        choices: [OutChoice {
            index: 0,
            message: OutMessage {
                role: "assistant",
                content: (!text.is_empty()).then_some(text),
                refusal: (!refusal.is_empty()).then_some(refusal),
                tool_calls,
                annotations: [],
            },
            logprobs: None,
            finish_reason: finish_from_stop(&resp.stop_reason),
        }],
        usage: OutUsage::from_ir(&resp.usage),
    };
    serde_json::to_vec(&out).expect("wire structs always serialize")
}

/// Seconds since the Unix epoch, for `created`.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A fresh `chatcmpl-…` id for answers the gateway reports under its own id.
pub fn new_completion_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4().simple())
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorObject<'a>,
}

#[derive(Serialize)]
pub(crate) struct ErrorObject<'a> {
    pub(crate) message: &'a str,
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    pub(crate) param: Option<&'a str>,
    pub(crate) code: Option<&'a str>,
}

/// An OpenAI error body: `{"error":{"message","type","param":null,"code"}}`.
pub fn error_body(kind: &str, code: Option<&str>, message: &str) -> Vec<u8> {
    let body = ErrorBody {
        error: ErrorObject {
            message,
            kind,
            param: None,
            code,
        },
    };
    serde_json::to_vec(&body).expect("wire structs always serialize")
}

/// The status and body an OpenAI caller gets for an error of `kind`.
pub fn error_response(kind: crate::ErrorKind, message: &str) -> (u16, Vec<u8>) {
    let (type_name, code) = kind.openai_type_code();
    (kind.openai_status(), error_body(type_name, code, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn decodes_tool_calls_usage_and_finish_reason() {
        let body = br#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o",
          "choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,
          "tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},
          "logprobs":null,"finish_reason":"tool_calls"}],
          "usage":{"prompt_tokens":14,"completion_tokens":37,"total_tokens":51,
          "prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}}"#;
        let r = decode_response(body).unwrap();
        assert_eq!(r.stop_reason, StopReason::ToolUse);
        assert_eq!(r.usage.input_tokens, 14);
        assert_eq!(r.usage.cached_input_tokens, 4);
        assert_eq!(r.usage.reasoning_tokens, 2);
        assert_eq!(r.content.len(), 1);
    }

    #[test]
    fn encodes_the_exact_openai_shape() {
        let resp = ChatResponse {
            id: "chatcmpl-x".into(),
            model: "upstream".into(),
            content: vec![Part::Text("hi".into())],
            stop_reason: StopReason::MaxTokens,
            stop_sequence: None,
            usage: Usage {
                input_tokens: 3,
                output_tokens: 4,
                cached_input_tokens: 1,
                ..Usage::default()
            },
        };
        let v: Value = serde_json::from_slice(&encode_response(&resp, "alias")).unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["model"], "alias");
        assert_eq!(v["choices"][0]["message"]["content"], "hi");
        assert!(v["choices"][0]["message"]["refusal"].is_null());
        assert!(v["choices"][0]["message"].get("tool_calls").is_none());
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["usage"]["total_tokens"], 7);
        assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 1);
        assert_eq!(
            v["usage"]["completion_tokens_details"]["reasoning_tokens"],
            0
        );
    }

    #[test]
    fn error_bodies_have_the_openai_shape() {
        let v: Value =
            serde_json::from_slice(&error_body("invalid_request_error", None, "bad")).unwrap();
        assert_eq!(v["error"]["message"], "bad");
        assert!(v["error"]["code"].is_null());
        assert!(v["error"]["param"].is_null());
        let (status, body) = error_response(crate::ErrorKind::Overloaded, "busy");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (503, Some("overloaded"))
        );
    }
}
