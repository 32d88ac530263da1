//! OpenAI Chat Completions request bodies ⇄ [`ChatRequest`].

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::ProtocolError;
use crate::ir::{
    ChatRequest, Image, ImageSource, Message, Part, Reasoning, ReasoningEffort, ResponseFormat,
    Role, Tool, ToolChoice,
};

#[derive(Deserialize)]
struct WireRequest {
    model: String,
    messages: Vec<WireMessage>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stop: Option<StringOrList>,
    tools: Option<Vec<WireTool>>,
    tool_choice: Option<WireToolChoice>,
    parallel_tool_calls: Option<bool>,
    response_format: Option<WireResponseFormat>,
    reasoning_effort: Option<String>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    n: Option<u32>,
    user: Option<String>,
    safety_identifier: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum WireMessage {
    System {
        content: Content,
    },
    Developer {
        content: Content,
    },
    User {
        content: Content,
    },
    Assistant {
        content: Option<Content>,
        refusal: Option<String>,
        tool_calls: Option<Vec<WireToolCall>>,
    },
    Tool {
        tool_call_id: String,
        content: Content,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<WirePart>),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WirePart {
    Text {
        text: String,
    },
    ImageUrl {
        image_url: WireImageUrl,
    },
    Refusal {
        refusal: String,
    },
    #[serde(other)]
    Unsupported,
}

#[derive(Deserialize)]
struct WireImageUrl {
    url: String,
    detail: Option<String>,
}

#[derive(Deserialize)]
struct WireToolCall {
    id: String,
    function: WireFunctionCall,
}

#[derive(Deserialize)]
struct WireFunctionCall {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize)]
struct WireTool {
    #[serde(rename = "type")]
    kind: String,
    function: Option<WireFunction>,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    description: Option<String>,
    parameters: Option<Value>,
    strict: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireToolChoice {
    Mode(String),
    Object(WireToolChoiceObject),
}

#[derive(Deserialize)]
struct WireToolChoiceObject {
    #[serde(rename = "type")]
    kind: String,
    function: Option<NameOnly>,
    allowed_tools: Option<AllowedTools>,
}

#[derive(Deserialize)]
struct NameOnly {
    name: String,
}

#[derive(Deserialize)]
struct AllowedTools {
    mode: String,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: WireJsonSchema },
}

#[derive(Deserialize)]
struct WireJsonSchema {
    name: String,
    description: Option<String>,
    schema: Option<Value>,
    strict: Option<bool>,
}

/// Decodes an OpenAI Chat Completions request body.
///
/// `system` and `developer` messages are hoisted into [`ChatRequest::system`] wherever they
/// appear, in order. `data:` image URLs become inline base64 images. Content part types
/// other than text and images (audio, files) are rejected, since no other protocol here can
/// carry them.
pub fn decode_request(body: &[u8]) -> Result<ChatRequest, ProtocolError> {
    let wire: WireRequest =
        serde_json::from_slice(body).map_err(|e| ProtocolError::request_json(&e))?;
    let mut req = ChatRequest {
        max_tokens: wire.max_completion_tokens.or(wire.max_tokens),
        temperature: wire.temperature,
        top_p: wire.top_p,
        stop: match wire.stop {
            None => Vec::new(),
            Some(StringOrList::One(s)) => vec![s],
            Some(StringOrList::Many(v)) => v,
        },
        tool_choice: wire.tool_choice.map(decode_tool_choice).transpose()?,
        parallel_tool_calls: wire.parallel_tool_calls,
        response_format: wire.response_format.map(decode_response_format),
        reasoning: wire
            .reasoning_effort
            .as_deref()
            .map(decode_effort)
            .transpose()?,
        stream: wire.stream.unwrap_or(false),
        include_usage: wire
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        n: wire.n,
        user: wire.user.or(wire.safety_identifier),
        model: wire.model,
        ..ChatRequest::default()
    };
    req.tools = decode_tools(wire.tools.unwrap_or_default())?;
    for (i, m) in wire.messages.into_iter().enumerate() {
        decode_message(&mut req, i, m)?;
    }
    Ok(req)
}

fn decode_message(req: &mut ChatRequest, i: usize, m: WireMessage) -> Result<(), ProtocolError> {
    let param = || format!("messages[{i}].content");
    match m {
        WireMessage::System { content } | WireMessage::Developer { content } => {
            let text = text_only(content, &param)?;
            if !text.is_empty() {
                req.system.push(text);
            }
        }
        WireMessage::User { content } => req.messages.push(Message {
            role: Role::User,
            content: decode_content(content, &param)?,
        }),
        WireMessage::Assistant {
            content,
            refusal,
            tool_calls,
        } => req
            .messages
            .push(decode_assistant(content, refusal, tool_calls, &param)?),
        WireMessage::Tool {
            tool_call_id,
            content,
        } => req.messages.push(Message {
            role: Role::Tool,
            content: vec![Part::ToolResult {
                call_id: tool_call_id,
                content: vec![Part::Text(text_only(content, &param)?)],
                is_error: false,
            }],
        }),
    }
    Ok(())
}

fn decode_assistant(
    content: Option<Content>,
    refusal: Option<String>,
    tool_calls: Option<Vec<WireToolCall>>,
    param: &dyn Fn() -> String,
) -> Result<Message, ProtocolError> {
    let mut parts = match content {
        Some(c) => decode_content(c, param)?,
        None => Vec::new(),
    };
    if let Some(r) = refusal.filter(|r| !r.is_empty()) {
        parts.push(Part::Refusal(r));
    }
    for call in tool_calls.unwrap_or_default() {
        parts.push(Part::ToolCall {
            id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
        });
    }
    Ok(Message {
        role: Role::Assistant,
        content: parts,
    })
}

fn decode_content(
    content: Content,
    param: &dyn Fn() -> String,
) -> Result<Vec<Part>, ProtocolError> {
    match content {
        Content::Text(t) => Ok(vec![Part::Text(t)]),
        Content::Parts(parts) => parts.into_iter().map(|p| decode_part(p, param)).collect(),
    }
}

fn decode_part(part: WirePart, param: &dyn Fn() -> String) -> Result<Part, ProtocolError> {
    Ok(match part {
        WirePart::Text { text } => Part::Text(text),
        WirePart::Refusal { refusal } => Part::Refusal(refusal),
        WirePart::ImageUrl { image_url } => Part::Image(Image {
            source: decode_image_url(image_url.url, param)?,
            detail: image_url.detail,
        }),
        WirePart::Unsupported => {
            return Err(ProtocolError::invalid(
                param(),
                "only text and image_url content parts are supported",
            ));
        }
    })
}

/// `data:<media type>;base64,<data>` becomes inline bytes; anything else stays a URL.
fn decode_image_url(url: String, param: &dyn Fn() -> String) -> Result<ImageSource, ProtocolError> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Ok(ImageSource::Url(url));
    };
    let Some((meta, data)) = rest.split_once(',') else {
        return Err(ProtocolError::invalid(param(), "malformed data URL"));
    };
    let Some(media_type) = meta.strip_suffix(";base64") else {
        return Err(ProtocolError::invalid(param(), "data URLs must be base64"));
    };
    Ok(ImageSource::Base64 {
        media_type: media_type.to_owned(),
        data: data.to_owned(),
    })
}

/// System, developer and tool messages take text only; parts are joined with newlines.
fn text_only(content: Content, param: &dyn Fn() -> String) -> Result<String, ProtocolError> {
    match content {
        Content::Text(t) => Ok(t),
        Content::Parts(parts) => {
            let mut texts = Vec::with_capacity(parts.len());
            for p in parts {
                match p {
                    WirePart::Text { text } => texts.push(text),
                    _ => {
                        return Err(ProtocolError::invalid(
                            param(),
                            "this role accepts text parts only",
                        ));
                    }
                }
            }
            Ok(texts.join("\n"))
        }
    }
}

fn decode_tools(tools: Vec<WireTool>) -> Result<Vec<Tool>, ProtocolError> {
    tools
        .into_iter()
        .enumerate()
        .map(|(i, t)| match (t.kind.as_str(), t.function) {
            ("function", Some(f)) => Ok(Tool {
                name: f.name,
                description: f.description,
                parameters: f
                    .parameters
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                strict: f.strict,
            }),
            _ => Err(ProtocolError::invalid(
                format!("tools[{i}]"),
                "only function tools are supported",
            )),
        })
        .collect()
}

fn decode_tool_choice(choice: WireToolChoice) -> Result<ToolChoice, ProtocolError> {
    let mode = |m: &str| match m {
        "auto" => Ok(ToolChoice::Auto),
        "none" => Ok(ToolChoice::None),
        "required" => Ok(ToolChoice::Required),
        _ => Err(ProtocolError::invalid("tool_choice", "unknown tool_choice")),
    };
    match choice {
        WireToolChoice::Mode(m) => mode(&m),
        WireToolChoice::Object(o) => match (o.kind.as_str(), o.function, o.allowed_tools) {
            ("function", Some(f), _) => Ok(ToolChoice::Named(f.name)),
            // The allowed subset cannot be expressed elsewhere; its mode can.
            ("allowed_tools", _, Some(a)) => mode(&a.mode),
            _ => Err(ProtocolError::invalid("tool_choice", "unknown tool_choice")),
        },
    }
}

fn decode_response_format(f: WireResponseFormat) -> ResponseFormat {
    match f {
        WireResponseFormat::Text => ResponseFormat::Text,
        WireResponseFormat::JsonObject => ResponseFormat::JsonObject,
        WireResponseFormat::JsonSchema { json_schema: s } => ResponseFormat::JsonSchema {
            name: s.name,
            description: s.description,
            schema: s.schema.unwrap_or_else(|| json!({})),
            strict: s.strict,
        },
    }
}

fn decode_effort(effort: &str) -> Result<Reasoning, ProtocolError> {
    if effort == "none" {
        return Ok(Reasoning::Disabled);
    }
    ReasoningEffort::parse(effort)
        .map(Reasoning::Effort)
        .ok_or_else(|| ProtocolError::invalid("reasoning_effort", "unknown reasoning effort"))
}

/// Encodes a request for an OpenAI-compatible upstream, naming `upstream_model`.
///
/// Choices made here: the cap is sent as `max_completion_tokens` (reasoning models reject
/// `max_tokens`); streams always ask for `stream_options.include_usage` so usage can be
/// metered, whatever the caller wanted; tool results carried in user messages (Anthropic
/// style) become `tool` messages placed before the rest of that message; thinking parts are
/// dropped (Chat Completions cannot replay them); a thinking budget becomes the nearest
/// `reasoning_effort`.
pub fn encode_request(req: &ChatRequest, upstream_model: &str) -> Vec<u8> {
    let mut body = Map::new();
    body.insert("model".into(), upstream_model.into());
    body.insert("messages".into(), Value::Array(encode_messages(req)));
    insert_opt(&mut body, "max_completion_tokens", req.max_tokens);
    insert_opt(&mut body, "temperature", req.temperature);
    insert_opt(&mut body, "top_p", req.top_p);
    if !req.stop.is_empty() {
        body.insert("stop".into(), json!(req.stop));
    }
    if !req.tools.is_empty() {
        body.insert("tools".into(), req.tools.iter().map(encode_tool).collect());
        insert_opt(&mut body, "parallel_tool_calls", req.parallel_tool_calls);
    }
    if let Some(c) = &req.tool_choice {
        body.insert("tool_choice".into(), encode_tool_choice(c));
    }
    if let Some(f) = &req.response_format {
        body.insert("response_format".into(), encode_response_format(f));
    }
    if let Some(effort) = req.reasoning.and_then(effort_for) {
        body.insert("reasoning_effort".into(), effort.into());
    }
    insert_opt(&mut body, "n", req.n);
    insert_opt(&mut body, "user", req.user.as_deref());
    if req.stream {
        body.insert("stream".into(), true.into());
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

fn insert_opt<T: Into<Value>>(body: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value {
        body.insert(key.into(), v.into());
    }
}

fn effort_for(r: Reasoning) -> Option<&'static str> {
    match r {
        Reasoning::Effort(e) => Some(e.as_str()),
        Reasoning::Budget(tokens) => Some(ReasoningEffort::from_budget(tokens).as_str()),
        Reasoning::Disabled | Reasoning::Adaptive => None,
    }
}

fn encode_messages(req: &ChatRequest) -> Vec<Value> {
    let mut out = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        out.push(json!({"role": "system", "content": req.system.join("\n\n")}));
    }
    for m in &req.messages {
        match m.role {
            Role::Assistant => out.push(encode_assistant(&m.content)),
            Role::User | Role::Tool => encode_user(&m.content, &mut out),
        }
    }
    out
}

fn encode_assistant(parts: &[Part]) -> Value {
    let text: String = parts.iter().filter_map(Part::as_text).collect();
    let refusal: String = parts
        .iter()
        .filter_map(|p| match p {
            Part::Refusal(r) => Some(r.as_str()),
            _ => None,
        })
        .collect();
    let calls: Vec<Value> = parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall {
                id,
                name,
                arguments,
            } => Some(json!({"id": id, "type": "function",
                "function": {"name": name, "arguments": arguments}})),
            _ => None,
        })
        .collect();
    let mut msg = Map::new();
    msg.insert("role".into(), "assistant".into());
    let content = if text.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        text.into()
    };
    msg.insert("content".into(), content);
    if !refusal.is_empty() {
        msg.insert("refusal".into(), refusal.into());
    }
    if !calls.is_empty() {
        msg.insert("tool_calls".into(), calls.into());
    }
    Value::Object(msg)
}

/// Tool results become `tool` messages first; the remaining parts form one user message.
fn encode_user(parts: &[Part], out: &mut Vec<Value>) {
    let mut rest = Vec::new();
    for p in parts {
        match p {
            Part::ToolResult {
                call_id, content, ..
            } => out.push(json!({"role": "tool", "tool_call_id": call_id,
                "content": joined_text(content)})),
            Part::Text(t) => rest.push(json!({"type": "text", "text": t})),
            Part::Image(img) => rest.push(encode_image(img)),
            Part::Refusal(t) => rest.push(json!({"type": "text", "text": t})),
            _ => {}
        }
    }
    if rest.is_empty() {
        return;
    }
    let content = match rest.as_slice() {
        [single] if single["type"] == "text" => single["text"].clone(),
        _ => Value::Array(rest),
    };
    out.push(json!({"role": "user", "content": content}));
}

/// The text of tool-result content; images cannot be carried by OpenAI tool messages.
pub(crate) fn joined_text(parts: &[Part]) -> String {
    parts
        .iter()
        .filter_map(Part::as_text)
        .collect::<Vec<_>>()
        .join("\n")
}

fn encode_image(img: &Image) -> Value {
    let url = match &img.source {
        ImageSource::Url(u) => u.clone(),
        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
    };
    let mut image_url = json!({"url": url});
    if let Some(d) = &img.detail {
        image_url["detail"] = d.as_str().into();
    }
    json!({"type": "image_url", "image_url": image_url})
}

fn encode_tool(t: &Tool) -> Value {
    let mut f = json!({"name": t.name});
    if let Some(d) = &t.description {
        f["description"] = d.as_str().into();
    }
    f["parameters"] = t.parameters.clone();
    if let Some(s) = t.strict {
        f["strict"] = s.into();
    }
    json!({"type": "function", "function": f})
}

fn encode_tool_choice(c: &ToolChoice) -> Value {
    match c {
        ToolChoice::Auto => "auto".into(),
        ToolChoice::None => "none".into(),
        ToolChoice::Required => "required".into(),
        ToolChoice::Named(name) => json!({"type": "function", "function": {"name": name}}),
    }
}

fn encode_response_format(f: &ResponseFormat) -> Value {
    match f {
        ResponseFormat::Text => json!({"type": "text"}),
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema {
            name,
            description,
            schema,
            strict,
        } => {
            let mut s = json!({"name": name, "schema": schema});
            if let Some(d) = description {
                s["description"] = d.as_str().into();
            }
            if let Some(st) = strict {
                s["strict"] = (*st).into();
            }
            json!({"type": "json_schema", "json_schema": s})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn developer_and_late_system_messages_are_hoisted() {
        let req = decode_request(
            br#"{"model":"m","messages":[{"role":"developer","content":"A"},{"role":"user","content":"hi"},
            {"role":"system","content":[{"type":"text","text":"B"}]}]}"#,
        )
        .unwrap();
        assert_eq!(req.system, vec!["A", "B"]);
        assert_eq!(req.messages.len(), 1);
    }

    #[test]
    fn stop_string_or_list_and_both_token_caps() {
        let r =
            decode_request(br#"{"model":"m","messages":[],"stop":"x","max_tokens":5}"#).unwrap();
        assert_eq!((r.stop, r.max_tokens), (vec!["x".to_owned()], Some(5)));
        let r = decode_request(
            br#"{"model":"m","messages":[],"stop":["x","y"],"max_tokens":5,"max_completion_tokens":7}"#,
        )
        .unwrap();
        assert_eq!((r.stop.len(), r.max_tokens), (2, Some(7)));
    }

    #[test]
    fn data_urls_become_inline_images() {
        let r = decode_request(
            br#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA","detail":"low"}}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            r.messages[0].content[0],
            Part::Image(Image {
                source: ImageSource::Base64 {
                    media_type: "image/png".into(),
                    data: "AAAA".into()
                },
                detail: Some("low".into())
            })
        );
    }

    #[test]
    fn audio_parts_are_rejected_with_the_param() {
        let e = decode_request(
            br#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"wav"}}]}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("messages[0].content"), "{e}");
    }

    #[test]
    fn streams_always_request_usage_upstream() {
        let mut r = decode_request(br#"{"model":"m","messages":[],"stream":true}"#).unwrap();
        assert!(!r.include_usage);
        r.reasoning = Some(Reasoning::Budget(3000));
        let v: Value = serde_json::from_slice(&encode_request(&r, "up")).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["model"], "up");
        assert_eq!(v["reasoning_effort"], "medium");
    }
}
