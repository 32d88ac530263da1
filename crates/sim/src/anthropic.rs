//! Anthropic Messages (`/v1/messages`, also `?beta=true`) and the same protocol hosted on Azure
//! (`/anthropic/v1/messages`), which differs only in the accepted credentials.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::answer::{self, Answer, Finish, Prompt, ToolChoice, ToolSpec};
use crate::faults::{self, Knobs};
use crate::sse::{self, Frame, Kind};
use crate::{Sim, auth, ids, openai, reply};

/// Exactly as the service sends it (with the space).
const PING: &str = "event: ping\ndata: {\"type\": \"ping\"}\n\n";

/// Where a request came in, which decides the credentials accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Host {
    Anthropic,
    Azure,
}

/// An Anthropic error: `{"type":"error","error":{"type","message"},"request_id"}`.
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    fn into_response(self, retry_after: Option<u64>) -> Response {
        let request_id = ids::anthropic_request();
        let retry = matches!(self.status.as_u16(), 408 | 409 | 429 | 500..);
        let mut headers = reply::headers([
            ("request-id", request_id.clone()),
            ("x-should-retry", retry.to_string()),
        ]);
        reply::add_retry_after(&mut headers, retry_after);
        let body = json!({
            "type": "error",
            "error": {"type": self.kind, "message": self.message},
            "request_id": request_id,
        });
        reply::json(self.status, headers, &body)
    }
}

/// Error type Anthropic uses for each status.
fn error_kind(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

fn fault(status: u16, retry_after: Option<u64>) -> Response {
    let kind = error_kind(status);
    let message = match kind {
        "overloaded_error" => "Overloaded".to_owned(),
        "rate_limit_error" => "Number of request tokens has exceeded your per-minute rate limit \
            (https://docs.claude.com/en/api/rate-limits); see the response headers for current \
            usage. Please reduce the prompt length or the maximum tokens requested, or try again \
            later."
            .to_owned(),
        "api_error" => "Internal server error".to_owned(),
        _ => format!("Simulated error {status}."),
    };
    ApiError::new(reply::status(status), kind, message).into_response(retry_after)
}

/// Success headers: `request-id`, organization and rate-limit headers.
fn headers() -> HeaderMap {
    let reset = ids::rfc3339_in(Duration::from_secs(1));
    let mut pairs = vec![
        ("request-id".to_owned(), ids::anthropic_request()),
        ("anthropic-organization-id".to_owned(), ids::uuid()),
    ];
    for (kind, limit) in [
        ("requests", "4000"),
        ("tokens", "2000000"),
        ("input-tokens", "2000000"),
        ("output-tokens", "400000"),
    ] {
        let name = |part: &str| format!("anthropic-ratelimit-{kind}-{part}");
        pairs.push((name("limit"), limit.to_owned()));
        pairs.push((name("remaining"), limit.to_owned()));
        pairs.push((name("reset"), reset.clone()));
    }
    reply::headers(pairs)
}

fn check_auth(sim: &Sim, host: Host, headers: &HeaderMap) -> Result<(), ApiError> {
    let (names, expected): (&[&str], _) = match host {
        Host::Anthropic => (&["x-api-key", "authorization"], &sim.config.anthropic_key),
        Host::Azure => (
            &["x-api-key", "api-key", "authorization"],
            &sim.config.azure_key,
        ),
    };
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", m);
    let Some(key) = auth::first_key(headers, names) else {
        return Err(unauthorized("x-api-key header is required"));
    };
    if !auth::key_ok(expected.as_deref(), key) {
        return Err(unauthorized("invalid x-api-key"));
    }
    if !headers.contains_key("anthropic-version") {
        return Err(ApiError::invalid("anthropic-version: header is required"));
    }
    Ok(())
}

/// `POST /v1/messages`.
pub(crate) async fn messages(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&sim, Host::Anthropic, &headers, &body).await
}

/// `POST /anthropic/v1/messages` (Anthropic on Azure / Microsoft Foundry).
pub(crate) async fn azure_messages(
    State(sim): State<Sim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&sim, Host::Azure, &headers, &body).await
}

/// `GET /v1/models` when called by an Anthropic client.
pub(crate) fn models(sim: &Sim, headers: &HeaderMap) -> Response {
    if let Err(error) = check_auth(sim, Host::Anthropic, headers) {
        return error.into_response(None);
    }
    let data: Vec<Value> = sim
        .config
        .models
        .iter()
        .map(|id| json!({"type": "model", "id": id, "display_name": id, "created_at": "2025-01-01T00:00:00Z"}))
        .collect();
    let first = data.first().map(|m| m["id"].clone());
    let last = data.last().map(|m| m["id"].clone());
    let body = json!({"data": data, "has_more": false, "first_id": first, "last_id": last});
    reply::json(StatusCode::OK, self::headers(), &body)
}

async fn serve(sim: &Sim, host: Host, headers: &HeaderMap, body: &[u8]) -> Response {
    if let Err(error) = check_auth(sim, host, headers) {
        return error.into_response(None);
    }
    serve_body(sim, body).await
}

/// Answers an already-authenticated Messages body (also the body of Vertex rawPredict, once
/// the model from its URL is put back in).
pub(crate) async fn serve_body(sim: &Sim, body: &[u8]) -> Response {
    let request = match parse(body) {
        Ok(request) => request,
        Err(error) => return error.into_response(None),
    };
    let (directives, clean) = faults::extract(request.prompt.directive_text());
    let knobs = Knobs::resolve(&directives, &sim.config);
    knobs.before_head().await;
    if let Some(status) = knobs.status {
        return fault(status, knobs.retry_after);
    }
    let answer = answer::plan(&request.prompt, &clean, knobs.chunks);
    let message = Arc::new(Message {
        id: ids::message(),
        model: request.model,
    });
    if request.stream {
        stream(message, answer, &knobs)
    } else {
        reply::json(
            StatusCode::OK,
            self::headers(),
            &complete(&message, &answer),
        )
    }
}

/// The validated parts of a Messages request.
struct Request {
    model: String,
    stream: bool,
    prompt: Prompt,
}

fn parse(body: &[u8]) -> Result<Request, ApiError> {
    let request = openai::parse_json(body).map_err(|_| {
        ApiError::invalid(
            "There was an issue with your request body. Please check the JSON is valid.",
        )
    })?;
    let required = |field: &str| {
        request
            .get(field)
            .ok_or_else(|| ApiError::invalid(format!("{field}: Field required")))
    };
    let model = required("model")?.as_str().unwrap_or_default().to_owned();
    let max_tokens = required("max_tokens")?
        .as_u64()
        .ok_or_else(|| ApiError::invalid("max_tokens: Input should be a valid integer"))?;
    let messages = required("messages")?
        .as_array()
        .ok_or_else(|| ApiError::invalid("messages: Input should be a valid list"))?;
    if openai::unknown_model(&model) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            format!("model: {model}"),
        ));
    }
    let mut prompt = prompt(messages, request.get("system"));
    prompt.tools = tools(&request);
    prompt.tool_choice = tool_choice(request.get("tool_choice"));
    prompt.max_tokens = Some(max_tokens);
    let stream = request.get("stream").and_then(Value::as_bool) == Some(true);
    Ok(Request {
        model,
        stream,
        prompt,
    })
}

/// Message texts, the last user text and, when the last user turn carries `tool_result`
/// blocks, their text.
fn prompt(messages: &[Value], system: Option<&Value>) -> Prompt {
    let mut prompt = Prompt::default();
    if let Some(system) = system {
        prompt.texts.push(answer::content_text(Some(system)));
    }
    for message in messages {
        let content = message.get("content");
        let text = answer::content_text(content);
        let results = tool_results(content);
        prompt.texts.push(
            [text.as_str(), results.as_str()]
                .join(" ")
                .trim()
                .to_owned(),
        );
        if message.get("role").and_then(Value::as_str) == Some("user") {
            prompt.last_user = text;
            prompt.tool_result = has_tool_result(content).then_some(results);
        } else {
            prompt.tool_result = None;
        }
    }
    prompt
}

fn blocks(content: Option<&Value>) -> impl Iterator<Item = &Value> {
    content.and_then(Value::as_array).into_iter().flatten()
}

fn has_tool_result(content: Option<&Value>) -> bool {
    blocks(content).any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
}

/// Text of every `tool_result` block (string or text-block content), space-joined.
fn tool_results(content: Option<&Value>) -> String {
    blocks(content)
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        .map(|b| answer::content_text(b.get("content")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Client tools only: server tools (typed, e.g. `web_search_20250305`) are never "called".
fn tools(request: &Value) -> Vec<ToolSpec> {
    let Some(tools) = request.get("tools").and_then(Value::as_array) else {
        return Vec::new();
    };
    tools
        .iter()
        .filter(|t| {
            t.get("type")
                .and_then(Value::as_str)
                .is_none_or(|k| k == "custom")
        })
        .filter_map(|t| {
            Some(ToolSpec::new(
                t.get("name")?.as_str()?,
                t.get("input_schema"),
            ))
        })
        .collect()
}

fn tool_choice(choice: Option<&Value>) -> ToolChoice {
    let kind = choice.and_then(|c| c.get("type")).and_then(Value::as_str);
    match kind {
        Some("none") => ToolChoice::None,
        Some("any") => ToolChoice::Required,
        Some("tool") => choice
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .map_or(ToolChoice::Required, |n| ToolChoice::Named(n.to_owned())),
        _ => ToolChoice::Auto,
    }
}

/// Per-response constants.
struct Message {
    id: String,
    model: String,
}

fn stop_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ToolUse => "tool_use",
    }
}

fn usage(input: u64, output: u64) -> Value {
    json!({
        "input_tokens": input,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output,
        "service_tier": "standard",
    })
}

fn message_object(message: &Message, content: Value, stop: Value, usage: Value) -> Value {
    json!({
        "id": message.id, "type": "message", "role": "assistant", "model": message.model,
        "content": content, "stop_reason": stop, "stop_sequence": null, "usage": usage,
    })
}

/// The non-stream response.
fn complete(message: &Message, answer: &Answer) -> Value {
    let block = match &answer.body {
        answer::Body::Text(_) => json!({"type": "text", "text": answer.text()}),
        answer::Body::Tool(call) => {
            let input: Value = serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
            json!({"type": "tool_use", "id": ids::tool_use(), "name": call.name, "input": input})
        }
    };
    let stop = Value::from(stop_reason(answer.finish));
    message_object(
        message,
        json!([block]),
        stop,
        usage(answer.input_tokens, answer.output_tokens),
    )
}

/// `event: <type>\ndata: <json>\n\n`; the event name is the JSON `type`.
fn event(kind: Kind, value: &Value) -> Frame {
    let name = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    Frame::new(kind, format!("event: {name}\ndata: {value}\n\n"))
}

fn delta(delta: Value) -> Frame {
    event(
        Kind::Content,
        &json!({"type": "content_block_delta", "index": 0, "delta": delta}),
    )
}

fn stream(message: Arc<Message>, answer: Answer, knobs: &Knobs) -> Response {
    let start = message_object(
        &message,
        json!([]),
        Value::Null,
        usage(answer.input_tokens, 1),
    );
    let mut lead = vec![event(
        Kind::Lead,
        &json!({"type": "message_start", "message": start}),
    )];
    let tail = tail_frames(&answer);
    let content: Box<dyn Iterator<Item = Frame> + Send> = match answer.body {
        answer::Body::Text(pieces) => {
            lead.push(block_start(json!({"type": "text", "text": ""})));
            lead.push(Frame::new(Kind::Lead, PING));
            Box::new(
                pieces
                    .into_iter()
                    .map(|text| delta(json!({"type": "text_delta", "text": text}))),
            )
        }
        answer::Body::Tool(call) => {
            let block =
                json!({"type": "tool_use", "id": ids::tool_use(), "name": call.name, "input": {}});
            lead.push(block_start(block));
            lead.push(Frame::new(Kind::Lead, PING));
            let mut first = delta(json!({"type": "input_json_delta", "partial_json": ""}));
            first.kind = Kind::Lead;
            lead.push(first);
            Box::new(
                call.fragments
                    .into_iter()
                    .map(|part| delta(json!({"type": "input_json_delta", "partial_json": part}))),
            )
        }
    };
    let error_frame = knobs.error_event.then(|| {
        let error = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        event(Kind::Tail, &error).bytes
    });
    let plan = sse::Plan {
        frames: Box::new(lead.into_iter().chain(content).chain(tail)),
        delay: knobs.chunk_delay,
        cut_after: knobs.cut_after,
        faults: knobs.faults,
        error_frame,
    };
    reply::sse(headers(), sse::body(plan))
}

fn block_start(block: Value) -> Frame {
    event(
        Kind::Lead,
        &json!({"type": "content_block_start", "index": 0, "content_block": block}),
    )
}

/// `content_block_stop`, `message_delta` with cumulative usage, `message_stop`.
fn tail_frames(answer: &Answer) -> Vec<Frame> {
    let usage = json!({
        "input_tokens": answer.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": answer.output_tokens,
    });
    let delta = json!({"stop_reason": stop_reason(answer.finish), "stop_sequence": null});
    vec![
        event(
            Kind::Tail,
            &json!({"type": "content_block_stop", "index": 0}),
        ),
        event(
            Kind::Tail,
            &json!({"type": "message_delta", "delta": delta, "usage": usage}),
        ),
        event(Kind::Tail, &json!({"type": "message_stop"})),
    ]
}

/// An Anthropic `invalid_request_error` answer (used by Vertex rawPredict's own checks).
pub(crate) fn invalid_request(message: &str) -> Response {
    ApiError::invalid(message).into_response(None)
}
