//! [`ChatRequest`] → Gemini `generateContent` / `streamGenerateContent` request bodies.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::error::ProtocolError;
use crate::ir::{
    ChatRequest, Image, ImageSource, Message, Part, Reasoning, ResponseFormat, Role, ToolChoice,
    tool_arguments,
};

const TARGET: &str = "Gemini";

/// Encodes a Gemini request. The model is in the URL, not the body.
///
/// Translation rules (provider reference, sections 5.2 and 7):
/// - roles are `user` and `model`; tool results travel in `user` turns as
///   `functionResponse{name, response}`, the name found from the id of the matching call in
///   the history (Gemini matches by name; ids are optional and not sent), the result text
///   parsed as a JSON object when it is one, else wrapped as `{"result": text}` (or
///   `{"error": text}` for a failed tool);
/// - same-role runs merge; a signature-only thinking part (how a Gemini `thoughtSignature`
///   is carried in the IR) is put back on the part that follows it; other thinking is dropped
///   (thought summaries are not replayed);
/// - tools become `functionDeclarations` with plain JSON Schema (`parametersJsonSchema`);
///   tool choice maps to `AUTO`/`ANY`/`NONE`, a named tool to `ANY` + `allowedFunctionNames`;
/// - `n > 1` is rejected (one candidate is translated); reasoning becomes `thinkingConfig`.
pub fn encode_request(req: &ChatRequest) -> Result<Vec<u8>, ProtocolError> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(ProtocolError::Unsupported {
            feature: "n > 1".into(),
            target: TARGET,
        });
    }
    let mut body = Map::new();
    body.insert(
        "contents".into(),
        Value::Array(encode_contents(&req.messages)?),
    );
    let system: Vec<Value> = req
        .system
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| json!({"text": s}))
        .collect();
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }
    if !req.tools.is_empty() {
        body.insert(
            "tools".into(),
            json!([{"functionDeclarations": declarations(req)}]),
        );
        if let Some(config) = tool_config(req.tool_choice.as_ref()) {
            body.insert("toolConfig".into(), config);
        }
    }
    let generation = generation_config(req);
    if !generation.is_empty() {
        body.insert("generationConfig".into(), Value::Object(generation));
    }
    Ok(serde_json::to_vec(&Value::Object(body)).unwrap_or_default())
}

fn declarations(req: &ChatRequest) -> Vec<Value> {
    req.tools
        .iter()
        .map(|t| {
            let mut d = json!({"name": t.name});
            if let Some(desc) = &t.description {
                d["description"] = desc.as_str().into();
            }
            if t.parameters.is_object() {
                d["parametersJsonSchema"] = t.parameters.clone();
            }
            d
        })
        .collect()
}

fn tool_config(choice: Option<&ToolChoice>) -> Option<Value> {
    let config = match choice? {
        ToolChoice::Auto => json!({"mode": "AUTO"}),
        ToolChoice::Required => json!({"mode": "ANY"}),
        ToolChoice::None => json!({"mode": "NONE"}),
        ToolChoice::Named(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
    };
    Some(json!({"functionCallingConfig": config}))
}

fn generation_config(req: &ChatRequest) -> Map<String, Value> {
    let mut g = Map::new();
    if let Some(t) = req.temperature {
        g.insert("temperature".into(), t.clamp(0.0, 2.0).into());
    }
    if let Some(p) = req.top_p {
        g.insert("topP".into(), p.into());
    }
    if let Some(k) = req.top_k {
        g.insert("topK".into(), k.into());
    }
    if let Some(m) = req.max_tokens {
        g.insert("maxOutputTokens".into(), m.into());
    }
    if !req.stop.is_empty() {
        g.insert("stopSequences".into(), json!(req.stop));
    }
    match &req.response_format {
        Some(ResponseFormat::JsonObject) => {
            g.insert("responseMimeType".into(), "application/json".into());
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            g.insert("responseMimeType".into(), "application/json".into());
            g.insert("responseJsonSchema".into(), schema.clone());
        }
        None | Some(ResponseFormat::Text) => {}
    }
    if let Some(thinking) = req.reasoning.map(thinking_config) {
        g.insert("thinkingConfig".into(), thinking);
    }
    g
}

fn thinking_config(r: Reasoning) -> Value {
    match r {
        Reasoning::Disabled => json!({"thinkingBudget": 0}),
        Reasoning::Adaptive => json!({"thinkingBudget": -1, "includeThoughts": true}),
        Reasoning::Budget(b) => json!({"thinkingBudget": b, "includeThoughts": true}),
        Reasoning::Effort(e) => {
            json!({"thinkingBudget": e.budget_tokens(), "includeThoughts": true})
        }
    }
}

fn encode_contents(messages: &[Message]) -> Result<Vec<Value>, ProtocolError> {
    let names = call_names(messages);
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in messages {
        let role = match m.role {
            Role::Assistant => "model",
            Role::User | Role::Tool => "user",
        };
        let parts = encode_parts(&m.content, &names)?;
        if parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(parts),
            _ => turns.push((role, parts)),
        }
    }
    Ok(turns
        .into_iter()
        .map(|(role, parts)| json!({"role": role, "parts": parts}))
        .collect())
}

/// Tool-call id → function name, over the whole history.
fn call_names(messages: &[Message]) -> HashMap<&str, &str> {
    messages
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|p| match p {
            Part::ToolCall { id, name, .. } => Some((id.as_str(), name.as_str())),
            _ => None,
        })
        .collect()
}

fn encode_parts(
    content: &[Part],
    names: &HashMap<&str, &str>,
) -> Result<Vec<Value>, ProtocolError> {
    let mut parts = Vec::with_capacity(content.len());
    let mut signature: Option<&str> = None;
    for p in content {
        if let Part::Thinking {
            text,
            signature: Some(sig),
        } = p
            && text.is_empty()
        {
            signature = Some(sig);
            continue;
        }
        let Some(mut part) = encode_part(p, names)? else {
            continue;
        };
        if let Some(sig) = signature.take() {
            part["thoughtSignature"] = sig.into();
        }
        parts.push(part);
    }
    Ok(parts)
}

fn encode_part(p: &Part, names: &HashMap<&str, &str>) -> Result<Option<Value>, ProtocolError> {
    Ok(Some(match p {
        Part::Text(t) | Part::Refusal(t) if t.is_empty() => return Ok(None),
        Part::Text(t) | Part::Refusal(t) => json!({"text": t}),
        Part::Image(img) => encode_image(img),
        Part::ToolCall {
            name,
            arguments,
            id,
        } => {
            json!({"functionCall": {"name": name, "args": tool_arguments(arguments, id)?}})
        }
        Part::ToolResult {
            call_id,
            content,
            is_error,
        } => {
            let name = names.get(call_id.as_str()).ok_or_else(|| {
                ProtocolError::invalid(
                    "messages",
                    format!("tool result {call_id} answers no tool call in the conversation"),
                )
            })?;
            json!({"functionResponse": {"name": name,
                "response": tool_response(content, *is_error)}})
        }
        Part::Thinking { .. } | Part::RedactedThinking { .. } => return Ok(None),
    }))
}

/// Gemini wants an object: a JSON object result goes as is, anything else is wrapped.
fn tool_response(content: &[Part], is_error: bool) -> Value {
    let text = crate::openai::joined_text(content);
    if !is_error && let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(&text) {
        return v;
    }
    let key = if is_error { "error" } else { "result" };
    json!({ key: text })
}

fn encode_image(img: &Image) -> Value {
    match &img.source {
        ImageSource::Base64 { media_type, data } => {
            json!({"inlineData": {"mimeType": media_type, "data": data}})
        }
        ImageSource::Url(url) => {
            json!({"fileData": {"mimeType": mime_from_url(url), "fileUri": url}})
        }
    }
}

/// `fileData` requires a MIME type; guess it from the extension.
fn mime_from_url(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        _ => "image/jpeg",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Tool;

    #[test]
    fn function_round_trip_maps_ids_to_names_and_wraps_strings() {
        let req = ChatRequest {
            system: vec!["be brief".into()],
            messages: vec![
                Message {
                    role: Role::User,
                    content: vec![Part::Text("capital?".into())],
                },
                Message {
                    role: Role::Assistant,
                    content: vec![
                        Part::Thinking {
                            text: String::new(),
                            signature: Some("sig".into()),
                        },
                        Part::ToolCall {
                            id: "call_1".into(),
                            name: "get_capital".into(),
                            arguments: r#"{"country":"France"}"#.into(),
                        },
                    ],
                },
                Message {
                    role: Role::Tool,
                    content: vec![Part::ToolResult {
                        call_id: "call_1".into(),
                        content: vec![Part::Text("Paris".into())],
                        is_error: false,
                    }],
                },
            ],
            tools: vec![Tool {
                name: "get_capital".into(),
                description: None,
                parameters: json!({"type":"object"}),
                strict: None,
            }],
            tool_choice: Some(ToolChoice::Named("get_capital".into())),
            max_tokens: Some(1),
            ..ChatRequest::default()
        };
        let v: Value = serde_json::from_slice(&encode_request(&req).unwrap()).unwrap();
        assert_eq!(v["systemInstruction"]["parts"][0]["text"], "be brief");
        assert_eq!(v["contents"][1]["role"], "model");
        assert_eq!(v["contents"][1]["parts"][0]["thoughtSignature"], "sig");
        assert_eq!(
            v["contents"][1]["parts"][0]["functionCall"]["args"]["country"],
            "France"
        );
        assert_eq!(
            v["contents"][2]["parts"][0]["functionResponse"],
            json!({"name":"get_capital","response":{"result":"Paris"}})
        );
        assert_eq!(
            v["toolConfig"]["functionCallingConfig"],
            json!({"mode":"ANY","allowedFunctionNames":["get_capital"]})
        );
        assert_eq!(v["generationConfig"]["maxOutputTokens"], 1);
    }

    #[test]
    fn orphan_tool_results_are_rejected() {
        let req = ChatRequest {
            messages: vec![Message {
                role: Role::Tool,
                content: vec![Part::ToolResult {
                    call_id: "x".into(),
                    content: vec![],
                    is_error: false,
                }],
            }],
            ..ChatRequest::default()
        };
        assert!(encode_request(&req).is_err());
    }
}
