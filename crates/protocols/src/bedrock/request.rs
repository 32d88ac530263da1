//! [`ChatRequest`] → Bedrock Converse / ConverseStream request bodies.

use serde_json::{Map, Value, json};

use crate::error::ProtocolError;
use crate::ir::{
    ChatRequest, Image, ImageSource, Message, Part, Reasoning, ResponseFormat, Role, Tool,
    ToolChoice, tool_arguments,
};

const TARGET: &str = "Bedrock Converse";
/// Anthropic (also through Bedrock) rejects thinking budgets below this.
const MIN_THINKING_BUDGET: u32 = 1024;
/// Bedrock needs a user turn first; this stands in when the conversation opens with the
/// assistant (a prefill). Blank text is rejected, so it cannot be empty.
const OPENING_USER_TEXT: &str = ".";

/// Per-provider settings that shape the body.
#[derive(Debug, Clone, Default)]
pub struct EncodeOptions {
    /// `inferenceConfig.maxTokens` when the caller set none (Converse would otherwise use
    /// the model's default, which is small for some models).
    pub default_max_tokens: Option<u32>,
    /// `(guardrailIdentifier, guardrailVersion)` from the provider configuration.
    pub guardrail: Option<(String, String)>,
    /// The request goes to ConverseStream (adds `streamProcessingMode` to the guardrail).
    pub stream: bool,
}

/// Encodes a Converse (or ConverseStream: same body) request for `model_id`.
///
/// The model id is not part of the body (it is in the URL); it decides which
/// model-specific fields go into `additionalModelRequestFields` (Anthropic `thinking`,
/// `top_k`). Translation rules (provider reference, section 7):
/// - `n > 1` and image URLs are rejected (Bedrock takes only inline bytes or S3, and the
///   gateway does not fetch URLs on the caller's behalf);
/// - the conversation starts with a user turn and strictly alternates: same-role runs and
///   tool messages merge, tool results lead their user turn, blank text is dropped;
/// - `toolConfig` is sent whenever tools are declared and the choice is not `none`, and
///   also whenever the history holds tool blocks (Bedrock rejects such a history without
///   one), with specs synthesized from the history when the caller declared none;
/// - tool-call arguments are parsed into objects; invalid JSON is an invalid request;
/// - temperature is clamped to 0–1; with thinking on it is dropped (Anthropic rejects it).
pub fn encode_request(
    req: &ChatRequest,
    model_id: &str,
    options: &EncodeOptions,
) -> Result<Vec<u8>, ProtocolError> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(ProtocolError::Unsupported {
            feature: "n > 1".into(),
            target: TARGET,
        });
    }
    let mut body = Map::new();
    body.insert(
        "messages".into(),
        Value::Array(encode_messages(&req.messages)?),
    );
    let system = system_blocks(req);
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    let extra = additional_fields(req, model_id, options);
    let thinking = extra.contains_key("thinking");
    let inference = inference_config(req, options, thinking);
    if inference.as_object().is_some_and(|c| !c.is_empty()) {
        body.insert("inferenceConfig".into(), inference);
    }
    if let Some(tool_config) = tool_config(req) {
        body.insert("toolConfig".into(), tool_config);
    }
    if !extra.is_empty() {
        body.insert("additionalModelRequestFields".into(), Value::Object(extra));
    }
    if let Some(output) = output_config(req) {
        body.insert("outputConfig".into(), output);
    }
    if let Some((id, version)) = &options.guardrail {
        let mut g = json!({"guardrailIdentifier": id, "guardrailVersion": version});
        if options.stream {
            g["streamProcessingMode"] = "sync".into();
        }
        body.insert("guardrailConfig".into(), g);
    }
    Ok(serde_json::to_vec(&Value::Object(body)).unwrap_or_default())
}

/// Whether the model id (base id, inference profile or ARN) names an Anthropic model.
pub fn is_anthropic_model(model_id: &str) -> bool {
    model_id.contains("anthropic.")
}

fn system_blocks(req: &ChatRequest) -> Vec<Value> {
    let mut blocks: Vec<Value> = req
        .system
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| json!({"text": s}))
        .collect();
    if req.response_format == Some(ResponseFormat::JsonObject) {
        blocks.push(json!({"text": "Respond with a single valid JSON object and nothing else."}));
    }
    blocks
}

fn inference_config(req: &ChatRequest, options: &EncodeOptions, thinking: bool) -> Value {
    let mut c = Map::new();
    if let Some(max) = req.max_tokens.or(options.default_max_tokens) {
        c.insert("maxTokens".into(), max.max(1).into());
    }
    if let (Some(t), false) = (req.temperature, thinking) {
        c.insert("temperature".into(), t.clamp(0.0, 1.0).into());
    }
    if let (Some(p), false) = (req.top_p, thinking) {
        c.insert("topP".into(), p.into());
    }
    if !req.stop.is_empty() {
        c.insert("stopSequences".into(), json!(req.stop));
    }
    Value::Object(c)
}

/// Model-specific fields Converse has no top-level member for.
fn additional_fields(
    req: &ChatRequest,
    model_id: &str,
    options: &EncodeOptions,
) -> Map<String, Value> {
    let mut extra = Map::new();
    if !is_anthropic_model(model_id) {
        return extra;
    }
    let max_tokens = req.max_tokens.or(options.default_max_tokens).unwrap_or(0);
    let budget = match req.reasoning {
        Some(Reasoning::Budget(b)) => Some(b),
        Some(Reasoning::Effort(e)) => Some(e.budget_tokens()),
        Some(Reasoning::Adaptive) => Some(MIN_THINKING_BUDGET.max(max_tokens / 2)),
        Some(Reasoning::Disabled) | None => None,
    };
    if let Some(b) = budget.filter(|_| max_tokens > MIN_THINKING_BUDGET) {
        let b = b.clamp(MIN_THINKING_BUDGET, max_tokens - 1);
        extra.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": b}),
        );
    } else if let Some(k) = req.top_k {
        extra.insert("top_k".into(), k.into());
    }
    extra
}

fn output_config(req: &ChatRequest) -> Option<Value> {
    let Some(ResponseFormat::JsonSchema {
        name,
        description,
        schema,
        ..
    }) = &req.response_format
    else {
        return None;
    };
    let mut definition = json!({"schema": schema.to_string(), "name": name});
    if let Some(d) = description {
        definition["description"] = d.as_str().into();
    }
    Some(json!({"textFormat": {"type": "json_schema", "structure": {"jsonSchema": definition}}}))
}

fn tool_config(req: &ChatRequest) -> Option<Value> {
    let history = history_tools(&req.messages);
    let none = req.tool_choice == Some(ToolChoice::None);
    if (req.tools.is_empty() || none) && history.is_empty() {
        return None;
    }
    let mut specs: Vec<Value> = req.tools.iter().map(tool_spec).collect();
    for name in history {
        if !req.tools.iter().any(|t| t.name == name) {
            specs.push(json!({"toolSpec": {"name": name,
                "inputSchema": {"json": {"type": "object", "properties": {}}}}}));
        }
    }
    let mut config = json!({"tools": specs});
    let choice = match &req.tool_choice {
        // Converse has no "none": the tools stay (the history needs them), unforced.
        None | Some(ToolChoice::None) => None,
        Some(ToolChoice::Auto) => Some(json!({"auto": {}})),
        Some(ToolChoice::Required) => Some(json!({"any": {}})),
        Some(ToolChoice::Named(name)) => Some(json!({"tool": {"name": name}})),
    };
    if let Some(c) = choice {
        config["toolChoice"] = c;
    }
    Some(config)
}

/// Names of the tools called in the history (in first-seen order), and a marker entry for
/// results whose call is not in the history.
fn history_tools(messages: &[Message]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut has_result = false;
    for part in messages.iter().flat_map(|m| &m.content) {
        match part {
            Part::ToolCall { name, .. } if !names.contains(name) => names.push(name.clone()),
            Part::ToolResult { .. } => has_result = true,
            _ => {}
        }
    }
    if has_result && names.is_empty() {
        names.push("tool".into());
    }
    names
}

fn tool_spec(t: &Tool) -> Value {
    let schema = if t.parameters.is_object() {
        t.parameters.clone()
    } else {
        json!({"type": "object", "properties": {}})
    };
    let mut spec = json!({"name": t.name, "inputSchema": {"json": schema}});
    if let Some(d) = t.description.as_deref().filter(|d| !d.is_empty()) {
        spec["description"] = d.into();
    }
    json!({"toolSpec": spec})
}

fn encode_messages(messages: &[Message]) -> Result<Vec<Value>, ProtocolError> {
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::with_capacity(messages.len());
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
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    if turns.first().is_some_and(|(role, _)| *role == "assistant") {
        turns.insert(0, ("user", vec![json!({"text": OPENING_USER_TEXT})]));
    }
    Ok(turns
        .into_iter()
        .map(|(role, mut blocks)| {
            // Tool results lead their turn: Claude wants them right after the tool use.
            blocks.sort_by_key(|b| b.get("toolResult").is_none());
            json!({"role": role, "content": blocks})
        })
        .collect())
}

fn encode_part(p: &Part) -> Result<Option<Value>, ProtocolError> {
    Ok(Some(match p {
        Part::Text(t) | Part::Refusal(t) if t.trim().is_empty() => return Ok(None),
        Part::Text(t) | Part::Refusal(t) => json!({"text": t}),
        Part::Image(img) => encode_image(img)?,
        Part::ToolCall {
            id,
            name,
            arguments,
        } => json!({"toolUse": {"toolUseId": sanitize_id(id), "name": name,
            "input": tool_arguments(arguments, id)?}}),
        Part::ToolResult {
            call_id,
            content,
            is_error,
        } => encode_tool_result(call_id, content, *is_error)?,
        Part::Thinking {
            text,
            signature: Some(sig),
        } => json!({"reasoningContent": {"reasoningText": {"text": text, "signature": sig}}}),
        Part::Thinking { .. } => return Ok(None),
        Part::RedactedThinking { data } => {
            json!({"reasoningContent": {"redactedContent": data}})
        }
    }))
}

fn encode_tool_result(
    call_id: &str,
    content: &[Part],
    is_error: bool,
) -> Result<Value, ProtocolError> {
    let mut blocks = Vec::new();
    for p in content {
        match p {
            Part::Text(t) if !t.is_empty() => blocks.push(json!({"text": t})),
            Part::Image(img) => blocks.push(encode_image(img)?),
            _ => {}
        }
    }
    if blocks.is_empty() {
        // Bedrock rejects an empty result; an empty string says "no output".
        blocks.push(json!({"text": ""}));
    }
    let status = if is_error { "error" } else { "success" };
    Ok(
        json!({"toolResult": {"toolUseId": sanitize_id(call_id), "content": blocks,
        "status": status}}),
    )
}

fn encode_image(img: &Image) -> Result<Value, ProtocolError> {
    match &img.source {
        ImageSource::Base64 { media_type, data } => {
            let format = match media_type.as_str() {
                "image/png" => "png",
                "image/jpeg" | "image/jpg" => "jpeg",
                "image/gif" => "gif",
                "image/webp" => "webp",
                _ => {
                    return Err(ProtocolError::Unsupported {
                        feature: "this image type".into(),
                        target: TARGET,
                    });
                }
            };
            Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
        }
        ImageSource::Url(_) => Err(ProtocolError::Unsupported {
            feature: "image URLs (send the image inline as base64)".into(),
            target: TARGET,
        }),
    }
}

/// Bedrock tool-use ids match `[a-zA-Z0-9_.:-]+` and are at most 64 characters; other
/// characters become `_` (the same way in calls and results, so they still pair up).
fn sanitize_id(id: &str) -> String {
    let clean: String = id
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '.' | ':' | '-' => c,
            _ => '_',
        })
        .take(64)
        .collect();
    if clean.is_empty() { "_".into() } else { clean }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::ReasoningEffort;

    fn encode(req: &ChatRequest, model: &str) -> Value {
        serde_json::from_slice(&encode_request(req, model, &EncodeOptions::default()).unwrap())
            .unwrap()
    }

    fn user(text: &str) -> Message {
        Message {
            role: Role::User,
            content: vec![Part::Text(text.into())],
        }
    }

    #[test]
    fn turns_alternate_start_with_user_and_put_tool_results_first() {
        let req = ChatRequest {
            messages: vec![
                Message {
                    role: Role::Assistant,
                    content: vec![Part::ToolCall {
                        id: "call|1".into(),
                        name: "f".into(),
                        arguments: String::new(),
                    }],
                },
                Message {
                    role: Role::Tool,
                    content: vec![Part::ToolResult {
                        call_id: "call|1".into(),
                        content: vec![Part::Text("42".into())],
                        is_error: false,
                    }],
                },
                user("and?"),
                user(""),
            ],
            tool_choice: Some(ToolChoice::None),
            ..ChatRequest::default()
        };
        let v = encode(&req, "amazon.nova-micro-v1:0");
        let m = v["messages"].as_array().unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0]["role"], "user");
        assert_eq!(m[1]["content"][0]["toolUse"]["toolUseId"], "call_1");
        assert_eq!(m[1]["content"][0]["toolUse"]["input"], json!({}));
        assert_eq!(m[2]["content"][0]["toolResult"]["toolUseId"], "call_1");
        assert_eq!(m[2]["content"][1]["text"], "and?");
        // The history has tool blocks, so toolConfig is sent even for "none".
        assert_eq!(v["toolConfig"]["tools"][0]["toolSpec"]["name"], "f");
        assert!(v["toolConfig"].get("toolChoice").is_none());
    }

    #[test]
    fn claude_thinking_goes_into_additional_fields_and_drops_temperature() {
        let req = ChatRequest {
            messages: vec![user("hi")],
            max_tokens: Some(4000),
            temperature: Some(1.5),
            reasoning: Some(Reasoning::Effort(ReasoningEffort::High)),
            ..ChatRequest::default()
        };
        let v = encode(&req, "eu.anthropic.claude-sonnet-4-20250514-v1:0");
        assert_eq!(
            v["additionalModelRequestFields"]["thinking"]["budget_tokens"],
            3999
        );
        assert!(v["inferenceConfig"].get("temperature").is_none());
        let v = encode(
            &ChatRequest {
                temperature: Some(1.5),
                ..req
            },
            "amazon.nova-micro-v1:0",
        );
        assert!(v.get("additionalModelRequestFields").is_none());
        assert_eq!(v["inferenceConfig"]["temperature"], 1.0);
    }

    #[test]
    fn guardrail_and_minimal_request() {
        let opts = EncodeOptions {
            default_max_tokens: Some(1),
            guardrail: Some(("gr-1".into(), "DRAFT".into())),
            stream: true,
        };
        let req = ChatRequest {
            messages: vec![user("ping")],
            ..ChatRequest::default()
        };
        let v: Value = serde_json::from_slice(&encode_request(&req, "m", &opts).unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"messages":[{"role":"user","content":[{"text":"ping"}]}],
                "inferenceConfig":{"maxTokens":1},
                "guardrailConfig":{"guardrailIdentifier":"gr-1","guardrailVersion":"DRAFT",
                    "streamProcessingMode":"sync"}})
        );
    }

    #[test]
    fn image_urls_and_bad_arguments_are_rejected() {
        let req = ChatRequest {
            messages: vec![Message {
                role: Role::User,
                content: vec![Part::Image(Image {
                    source: ImageSource::Url("https://x/y.png".into()),
                    detail: None,
                })],
            }],
            ..ChatRequest::default()
        };
        assert!(matches!(
            encode_request(&req, "m", &EncodeOptions::default()),
            Err(ProtocolError::Unsupported { .. })
        ));
        assert!(tool_arguments("[1]", "c").is_err());
    }
}
