//! Anthropic Messages request bodies ⇄ [`ChatRequest`].

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::ProtocolError;
use crate::ir::{
    ChatRequest, Image, ImageSource, Message, Part, Reasoning, ReasoningEffort, ResponseFormat,
    Role, Tool, ToolChoice, tool_arguments,
};

const TARGET: &str = "Anthropic Messages";

/// Anthropic rejects thinking budgets below this.
const MIN_THINKING_BUDGET: u32 = 1024;

#[derive(Deserialize)]
struct WireRequest {
    model: String,
    messages: Vec<WireMessage>,
    max_tokens: Option<u32>,
    system: Option<SystemContent>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<u32>,
    stop_sequences: Option<Vec<String>>,
    stream: Option<bool>,
    tools: Option<Vec<WireTool>>,
    tool_choice: Option<WireToolChoice>,
    thinking: Option<WireThinking>,
    metadata: Option<WireMetadata>,
    output_config: Option<WireOutputConfig>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SystemContent {
    Text(String),
    Blocks(Vec<WireBlock>),
}

#[derive(Deserialize)]
struct WireMessage {
    role: WireRole,
    content: Content,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum WireRole {
    User,
    Assistant,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Blocks(Vec<WireBlock>),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock {
    Text {
        text: String,
    },
    Image {
        source: WireImageSource,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        content: Option<Content>,
        #[serde(default)]
        is_error: bool,
    },
    Thinking {
        thinking: String,
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
    #[serde(other)]
    Unsupported,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireImageSource {
    Base64 {
        media_type: String,
        data: String,
    },
    Url {
        url: String,
    },
    #[serde(other)]
    Unsupported,
}

#[derive(Deserialize)]
struct WireTool {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: String,
    description: Option<String>,
    input_schema: Option<Value>,
    strict: Option<bool>,
}

#[derive(Deserialize)]
struct WireToolChoice {
    #[serde(rename = "type")]
    kind: String,
    name: Option<String>,
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Deserialize)]
struct WireThinking {
    #[serde(rename = "type")]
    kind: String,
    budget_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct WireMetadata {
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct WireOutputConfig {
    effort: Option<String>,
    format: Option<WireFormat>,
}

#[derive(Deserialize)]
struct WireFormat {
    #[serde(rename = "type")]
    kind: String,
    schema: Option<Value>,
}

/// Decodes an Anthropic Messages request body.
///
/// `max_tokens` is required, as Anthropic requires it. Tool inputs become compact JSON
/// argument text. Blocks with no IR equivalent (documents, server tools, …) and server tools
/// are rejected rather than silently dropped, since the answer would change.
pub fn decode_request(body: &[u8]) -> Result<ChatRequest, ProtocolError> {
    let wire: WireRequest =
        serde_json::from_slice(body).map_err(|e| ProtocolError::request_json(&e))?;
    let max_tokens = wire
        .max_tokens
        .ok_or_else(|| ProtocolError::invalid("max_tokens", "field required"))?;
    let (tool_choice, parallel) = match wire.tool_choice {
        Some(c) => decode_tool_choice(c)?,
        None => (None, None),
    };
    let mut req = ChatRequest {
        system: decode_system(wire.system)?,
        max_tokens: Some(max_tokens),
        temperature: wire.temperature,
        top_p: wire.top_p,
        top_k: wire.top_k,
        stop: wire.stop_sequences.unwrap_or_default(),
        tools: decode_tools(wire.tools.unwrap_or_default())?,
        tool_choice,
        parallel_tool_calls: parallel,
        stream: wire.stream.unwrap_or(false),
        include_usage: true,
        user: wire.metadata.and_then(|m| m.user_id),
        model: wire.model,
        ..ChatRequest::default()
    };
    let (format, effort) = match wire.output_config {
        Some(o) => (o.format, o.effort),
        None => (None, None),
    };
    req.response_format = format.map(decode_format).transpose()?;
    req.reasoning = decode_reasoning(wire.thinking, effort.as_deref())?;
    for (i, m) in wire.messages.into_iter().enumerate() {
        let role = match m.role {
            WireRole::User => Role::User,
            WireRole::Assistant => Role::Assistant,
        };
        let content = decode_content(m.content, &|| format!("messages.{i}.content"))?;
        req.messages.push(Message { role, content });
    }
    Ok(req)
}

fn decode_system(system: Option<SystemContent>) -> Result<Vec<String>, ProtocolError> {
    match system {
        None => Ok(Vec::new()),
        Some(SystemContent::Text(t)) => Ok(vec![t]),
        Some(SystemContent::Blocks(blocks)) => blocks
            .into_iter()
            .map(|b| match b {
                WireBlock::Text { text } => Ok(text),
                _ => Err(ProtocolError::invalid(
                    "system",
                    "system accepts text blocks only",
                )),
            })
            .collect(),
    }
}

fn decode_content(
    content: Content,
    param: &dyn Fn() -> String,
) -> Result<Vec<Part>, ProtocolError> {
    match content {
        Content::Text(t) => Ok(vec![Part::Text(t)]),
        Content::Blocks(blocks) => blocks.into_iter().map(|b| decode_block(b, param)).collect(),
    }
}

fn decode_block(block: WireBlock, param: &dyn Fn() -> String) -> Result<Part, ProtocolError> {
    Ok(match block {
        WireBlock::Text { text } => Part::Text(text),
        WireBlock::Image { source } => Part::Image(Image {
            source: match source {
                WireImageSource::Base64 { media_type, data } => {
                    ImageSource::Base64 { media_type, data }
                }
                WireImageSource::Url { url } => ImageSource::Url(url),
                WireImageSource::Unsupported => {
                    return Err(ProtocolError::invalid(param(), "unsupported image source"));
                }
            },
            detail: None,
        }),
        WireBlock::ToolUse { id, name, input } => Part::ToolCall {
            id,
            name,
            arguments: match input {
                Value::Null => "{}".to_owned(),
                v => v.to_string(),
            },
        },
        WireBlock::ToolResult {
            tool_use_id,
            content,
            is_error,
        } => Part::ToolResult {
            call_id: tool_use_id,
            content: match content {
                Some(c) => decode_content(c, param)?,
                None => Vec::new(),
            },
            is_error,
        },
        WireBlock::Thinking {
            thinking,
            signature,
        } => Part::Thinking {
            text: thinking,
            signature,
        },
        WireBlock::RedactedThinking { data } => Part::RedactedThinking { data },
        WireBlock::Unsupported => {
            return Err(ProtocolError::invalid(
                param(),
                "only text, image, tool_use, tool_result and thinking blocks can be translated",
            ));
        }
    })
}

fn decode_tools(tools: Vec<WireTool>) -> Result<Vec<Tool>, ProtocolError> {
    tools
        .into_iter()
        .enumerate()
        .map(|(i, t)| match (t.kind.as_deref(), t.input_schema) {
            (None | Some("custom"), Some(schema)) => Ok(Tool {
                name: t.name,
                description: t.description,
                parameters: schema,
                strict: t.strict,
            }),
            _ => Err(ProtocolError::invalid(
                format!("tools.{i}"),
                "only client tools with an input_schema can be translated",
            )),
        })
        .collect()
}

fn decode_tool_choice(
    c: WireToolChoice,
) -> Result<(Option<ToolChoice>, Option<bool>), ProtocolError> {
    let choice = match (c.kind.as_str(), c.name) {
        ("auto", _) => ToolChoice::Auto,
        ("any", _) => ToolChoice::Required,
        ("none", _) => ToolChoice::None,
        ("tool", Some(name)) => ToolChoice::Named(name),
        _ => return Err(ProtocolError::invalid("tool_choice", "unknown tool_choice")),
    };
    Ok((Some(choice), c.disable_parallel_tool_use.map(|d| !d)))
}

fn decode_format(f: WireFormat) -> Result<ResponseFormat, ProtocolError> {
    match (f.kind.as_str(), f.schema) {
        ("json_schema", Some(schema)) => Ok(ResponseFormat::JsonSchema {
            name: "response".into(),
            description: None,
            schema,
            strict: Some(true),
        }),
        _ => Err(ProtocolError::invalid(
            "output_config.format",
            "only json_schema formats are supported",
        )),
    }
}

fn decode_reasoning(
    thinking: Option<WireThinking>,
    effort: Option<&str>,
) -> Result<Option<Reasoning>, ProtocolError> {
    if let Some(t) = thinking {
        return match (t.kind.as_str(), t.budget_tokens) {
            ("enabled", Some(b)) => Ok(Some(Reasoning::Budget(b))),
            ("disabled", _) => Ok(Some(Reasoning::Disabled)),
            ("adaptive", _) => Ok(Some(Reasoning::Adaptive)),
            _ => Err(ProtocolError::invalid(
                "thinking",
                "unknown thinking configuration",
            )),
        };
    }
    effort
        .map(|e| {
            ReasoningEffort::parse(e)
                .map(Reasoning::Effort)
                .ok_or_else(|| ProtocolError::invalid("output_config.effort", "unknown effort"))
        })
        .transpose()
}

/// Encodes a request for an Anthropic upstream, naming `upstream_model`.
///
/// Translation rules (provider reference, section 7):
/// - `n > 1` is rejected;
/// - system text is one top-level string (parts joined by blank lines); `json_object`
///   response formats (no equivalent) add a system instruction asking for one JSON object;
///   `json_schema` becomes `output_config.format`;
/// - tool messages and user messages in a row merge into one user message (all results of
///   one assistant turn in the next user turn); consecutive same-role messages merge;
///   empty text blocks, and messages left empty, are dropped;
/// - tool-call arguments are parsed into `input` objects (empty → `{}`); invalid JSON or a
///   non-object is a [`ProtocolError::InvalidRequest`];
/// - thinking parts without a signature are dropped (Anthropic rejects them);
/// - `max_tokens` defaults to `default_max_tokens`; temperature is clamped to 1.0;
/// - a thinking budget is kept below `max_tokens` (and reasoning is left off when
///   `max_tokens` cannot fit the 1024-token minimum); with thinking on, `temperature` and
///   `top_k` are dropped, as Anthropic rejects them;
/// - tool ids outside `[A-Za-z0-9_-]` are rewritten the same way in calls and results.
pub fn encode_request(
    req: &ChatRequest,
    upstream_model: &str,
    default_max_tokens: u32,
) -> Result<Vec<u8>, ProtocolError> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(ProtocolError::Unsupported {
            feature: "n > 1".into(),
            target: TARGET,
        });
    }
    let max_tokens = req.max_tokens.unwrap_or(default_max_tokens);
    let mut body = Map::new();
    body.insert("model".into(), upstream_model.into());
    body.insert("max_tokens".into(), max_tokens.into());
    let system = system_text(req);
    if !system.is_empty() {
        body.insert("system".into(), system.into());
    }
    body.insert(
        "messages".into(),
        Value::Array(encode_messages(&req.messages)?),
    );
    let thinking = req.reasoning.and_then(|r| encode_thinking(r, max_tokens));
    encode_sampling(req, thinking.is_some(), &mut body);
    encode_tools(req, &mut body);
    encode_output_config(req, &mut body);
    if let Some(t) = thinking {
        body.insert("thinking".into(), t);
    }
    if let Some(u) = &req.user {
        body.insert("metadata".into(), json!({"user_id": u}));
    }
    if req.stream {
        body.insert("stream".into(), true.into());
    }
    Ok(serde_json::to_vec(&Value::Object(body)).unwrap_or_default())
}

/// The hoisted system text. Anthropic has no "any JSON object" mode, so a `json_object`
/// request gets the instruction OpenAI itself requires callers to write.
fn system_text(req: &ChatRequest) -> String {
    let mut text = req.system.join("\n\n");
    if req.response_format == Some(ResponseFormat::JsonObject) {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str("Respond with a single valid JSON object and nothing else.");
    }
    text
}

fn encode_sampling(req: &ChatRequest, thinking: bool, body: &mut Map<String, Value>) {
    if !thinking {
        if let Some(t) = req.temperature {
            body.insert("temperature".into(), t.clamp(0.0, 1.0).into());
        }
        if let Some(k) = req.top_k {
            body.insert("top_k".into(), k.into());
        }
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), p.into());
    }
    if !req.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(req.stop));
    }
}

fn encode_thinking(r: Reasoning, max_tokens: u32) -> Option<Value> {
    let budget = match r {
        Reasoning::Disabled => return None,
        Reasoning::Adaptive => return Some(json!({"type": "adaptive"})),
        Reasoning::Effort(e) => e.budget_tokens(),
        Reasoning::Budget(b) => b,
    };
    if max_tokens <= MIN_THINKING_BUDGET {
        return None;
    }
    let budget = budget.clamp(MIN_THINKING_BUDGET, max_tokens - 1);
    Some(json!({"type": "enabled", "budget_tokens": budget}))
}

fn encode_tools(req: &ChatRequest, body: &mut Map<String, Value>) {
    if req.tools.is_empty() {
        // Anthropic rejects a tool_choice without tools; there is nothing to choose.
        return;
    }
    let tools: Vec<Value> = req.tools.iter().map(encode_tool).collect();
    body.insert("tools".into(), tools.into());
    let mut choice = match &req.tool_choice {
        None | Some(ToolChoice::Auto) => json!({"type": "auto"}),
        Some(ToolChoice::Required) => json!({"type": "any"}),
        Some(ToolChoice::None) => json!({"type": "none"}),
        Some(ToolChoice::Named(name)) => json!({"type": "tool", "name": name}),
    };
    let no_parallel = req.parallel_tool_calls == Some(false);
    if no_parallel && req.tool_choice != Some(ToolChoice::None) {
        choice["disable_parallel_tool_use"] = true.into();
    }
    if req.tool_choice.is_some() || no_parallel {
        body.insert("tool_choice".into(), choice);
    }
}

fn encode_tool(t: &Tool) -> Value {
    let mut v = json!({"name": t.name});
    if let Some(d) = &t.description {
        v["description"] = d.as_str().into();
    }
    v["input_schema"] = if t.parameters.is_object() {
        t.parameters.clone()
    } else {
        json!({"type": "object", "properties": {}})
    };
    if let Some(s) = t.strict {
        v["strict"] = s.into();
    }
    v
}

fn encode_output_config(req: &ChatRequest, body: &mut Map<String, Value>) {
    match &req.response_format {
        None | Some(ResponseFormat::Text) | Some(ResponseFormat::JsonObject) => {}
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            body.insert(
                "output_config".into(),
                json!({"format": {"type": "json_schema", "schema": schema}}),
            );
        }
    }
}

fn encode_messages(messages: &[Message]) -> Result<Vec<Value>, ProtocolError> {
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::with_capacity(messages.len());
    for m in messages {
        let role = match m.role {
            Role::Assistant => "assistant",
            Role::User | Role::Tool => "user",
        };
        let mut blocks = Vec::with_capacity(m.content.len());
        for p in &m.content {
            if let Some(b) = encode_part(p)? {
                blocks.push(b);
            }
        }
        match out.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    Ok(out
        .into_iter()
        .filter(|(_, blocks)| !blocks.is_empty())
        .map(|(role, blocks)| json!({"role": role, "content": blocks}))
        .collect())
}

fn encode_part(p: &Part) -> Result<Option<Value>, ProtocolError> {
    Ok(Some(match p {
        Part::Text(t) | Part::Refusal(t) if t.is_empty() => return Ok(None),
        Part::Text(t) | Part::Refusal(t) => json!({"type": "text", "text": t}),
        Part::Image(img) => encode_image(img),
        Part::ToolCall {
            id,
            name,
            arguments,
        } => json!({"type": "tool_use", "id": sanitize_id(id), "name": name,
            "input": tool_arguments(arguments, id)?}),
        Part::ToolResult {
            call_id,
            content,
            is_error,
        } => encode_tool_result(call_id, content, *is_error),
        Part::Thinking {
            text,
            signature: Some(sig),
        } => json!({"type": "thinking", "thinking": text, "signature": sig}),
        Part::Thinking { .. } => return Ok(None),
        Part::RedactedThinking { data } => json!({"type": "redacted_thinking", "data": data}),
    }))
}

fn encode_tool_result(call_id: &str, content: &[Part], is_error: bool) -> Value {
    let only_text = content.iter().all(|p| matches!(p, Part::Text(_)));
    let body = if only_text {
        Value::String(crate::openai::joined_text(content))
    } else {
        content
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) if !t.is_empty() => Some(json!({"type": "text", "text": t})),
                Part::Image(img) => Some(encode_image(img)),
                _ => None,
            })
            .collect()
    };
    let mut v =
        json!({"type": "tool_result", "tool_use_id": sanitize_id(call_id), "content": body});
    if is_error {
        v["is_error"] = true.into();
    }
    v
}

fn encode_image(img: &Image) -> Value {
    let source = match &img.source {
        ImageSource::Url(url) => json!({"type": "url", "url": url}),
        ImageSource::Base64 { media_type, data } => {
            json!({"type": "base64", "media_type": media_type, "data": data})
        }
    };
    json!({"type": "image", "source": source})
}

/// Anthropic tool ids must match `^[a-zA-Z0-9_-]+$`; other characters become `_` so a
/// call and its result still match.
fn sanitize_id(id: &str) -> String {
    let clean: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() { "_".into() } else { clean }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(req: &ChatRequest) -> Value {
        serde_json::from_slice(&encode_request(req, "claude", 4096).unwrap()).unwrap()
    }

    #[test]
    fn max_tokens_is_required_on_decode_and_defaulted_on_encode() {
        let e = decode_request(br#"{"model":"m","messages":[]}"#).unwrap_err();
        assert!(e.to_string().contains("max_tokens"));
        assert_eq!(encode(&ChatRequest::default())["max_tokens"], 4096);
    }

    #[test]
    fn thinking_budget_stays_below_max_tokens_and_drops_temperature() {
        let req = ChatRequest {
            max_tokens: Some(2000),
            temperature: Some(1.5),
            reasoning: Some(Reasoning::Effort(ReasoningEffort::High)),
            ..ChatRequest::default()
        };
        let v = encode(&req);
        assert_eq!(v["thinking"]["budget_tokens"], 1999);
        assert!(v.get("temperature").is_none());
        let req = ChatRequest {
            max_tokens: Some(1000),
            temperature: Some(1.5),
            reasoning: Some(Reasoning::Budget(2000)),
            ..ChatRequest::default()
        };
        let v = encode(&req);
        assert!(v.get("thinking").is_none());
        assert_eq!(v["temperature"], 1.0);
    }

    #[test]
    fn bad_ids_are_sanitized_consistently() {
        assert_eq!(sanitize_id("call_a|fc.b"), "call_a_fc_b");
        assert_eq!(sanitize_id(""), "_");
    }

    #[test]
    fn n_above_one_and_json_object_are_unsupported() {
        let req = ChatRequest {
            n: Some(2),
            ..ChatRequest::default()
        };
        assert!(matches!(
            encode_request(&req, "c", 1),
            Err(ProtocolError::Unsupported { .. })
        ));
        let req = ChatRequest {
            response_format: Some(ResponseFormat::JsonObject),
            ..ChatRequest::default()
        };
        assert!(
            encode(&req)["system"]
                .as_str()
                .unwrap()
                .contains("JSON object")
        );
    }
}
