//! AWS Bedrock Runtime: `POST /model/{modelId}/converse` and `/converse-stream`.
//!
//! Requests must carry a valid SigV4 signature (service `bedrock`, see [`crate::aws_sig`])
//! or a Bedrock API key as `Authorization: Bearer` (`bedrock_api_key`).
//! The body is validated the way Bedrock does where clients most often go wrong: the
//! conversation must start with a user turn and alternate, text blocks must not be blank,
//! and tool blocks in the history need a `toolConfig`. Streams are AWS event-stream frames
//! with correct prelude and message CRCs (`aws-smithy-eventstream`'s encoder), the `"p"`
//! padding field real Bedrock adds, and `metadata` (usage) after `messageStop`.
//! `[[sim:error_event]]` sends a `modelStreamErrorException` exception frame mid-stream;
//! `[[sim:status=429]]` answers `ThrottlingException` with `x-amzn-ErrorType`.

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};

use crate::answer::{self, Answer, Body, Finish, Prompt, ToolChoice, ToolSpec};
use crate::faults::{self, Knobs};
use crate::sse::{self, Frame, Kind};
use crate::{Sim, auth, aws_sig, ids, openai, reply};

/// The padding alphabet Bedrock uses for `"p"`.
const PAD: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A Bedrock error: status, exception name (for `x-amzn-ErrorType`) and message.
pub(crate) struct ApiError {
    status: StatusCode,
    name: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: u16, name: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: reply::status(status),
            name,
            message: message.into(),
        }
    }

    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self::new(400, "ValidationException", message)
    }

    pub(crate) fn into_response(self) -> Response {
        let error_type = format!(
            "{}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            self.name
        );
        let headers = reply::headers([
            ("x-amzn-errortype", error_type),
            ("x-amzn-requestid", ids::uuid()),
        ]);
        reply::json(self.status, headers, &json!({"message": self.message}))
    }
}

/// The exception Bedrock answers for each simulated status.
pub(crate) fn fault(status: u16) -> ApiError {
    match status {
        429 => ApiError::new(429, "ThrottlingException", "Rate exceeded"),
        503 => ApiError::new(
            503,
            "ServiceUnavailableException",
            "Bedrock is unable to process your request.",
        ),
        424 => ApiError::new(
            424,
            "ModelErrorException",
            "The model failed to process the request.",
        ),
        408 => ApiError::new(
            408,
            "ModelTimeoutException",
            "Model has timed out in processing the request.",
        ),
        403 => ApiError::new(
            403,
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        ),
        404 => ApiError::new(
            404,
            "ResourceNotFoundException",
            "Could not resolve the foundation model from the provided model identifier.",
        ),
        400..=499 => ApiError::validation("Simulated validation error."),
        _ => ApiError::new(
            status,
            "InternalServerException",
            "The server encountered an internal error.",
        ),
    }
}

/// `POST /model/{modelId}/converse`.
pub(crate) async fn converse(
    State(sim): State<Sim>,
    Path(model): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&sim, &model, false, (&method, &uri, &headers), &body).await
}

/// `POST /model/{modelId}/converse-stream`.
pub(crate) async fn converse_stream(
    State(sim): State<Sim>,
    Path(model): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&sim, &model, true, (&method, &uri, &headers), &body).await
}

/// Checks a Bedrock Runtime request's credentials, answering AWS's refusal: a Bedrock API
/// key (`Authorization: Bearer`, checked against `bedrock_api_key`) or else a SigV4
/// signature (service `bedrock`).
pub(crate) fn check_signature(
    sim: &Sim,
    request: (&Method, &Uri, &HeaderMap),
    body: &[u8],
) -> Option<Response> {
    let (method, uri, headers) = request;
    if let Some(key) = auth::bearer(headers) {
        return check_api_key(sim, key);
    }
    let e = aws_sig::verify(sim, "bedrock", method.as_str(), uri, headers, body).err()?;
    let status = if e.name == "IncompleteSignatureException" {
        400
    } else {
        403
    };
    Some(ApiError::new(status, e.name, e.message).into_response())
}

/// A Bedrock API key: any non-empty one unless the simulator was given its key.
fn check_api_key(sim: &Sim, key: &str) -> Option<Response> {
    if auth::key_ok(sim.config.bedrock_api_key.as_deref(), key) {
        return None;
    }
    let message = "Authentication failed: Please make sure your API Key is valid.";
    Some(ApiError::new(403, "AccessDeniedException", message).into_response())
}

async fn serve(
    sim: &Sim,
    model: &str,
    stream: bool,
    request: (&Method, &Uri, &HeaderMap),
    body: &[u8],
) -> Response {
    if let Some(denied) = check_signature(sim, request, body) {
        return denied;
    }
    if openai::unknown_model(model) {
        return ApiError::validation("The provided model identifier is invalid.").into_response();
    }
    let prompt = match parse(body) {
        Ok(prompt) => prompt,
        Err(e) => return e.into_response(),
    };
    let (directives, clean) = faults::extract(prompt.directive_text());
    let knobs = Knobs::resolve(&directives, &sim.config);
    knobs.before_head().await;
    if let Some(status) = knobs.status {
        return fault(status).into_response();
    }
    let answer = answer::plan(&prompt, &clean, knobs.chunks);
    if stream {
        stream_response(answer, &knobs)
    } else {
        reply::json(StatusCode::OK, response_headers(), &complete(&answer))
    }
}

fn response_headers() -> HeaderMap {
    reply::headers([("x-amzn-requestid", ids::uuid())])
}

/// Validates a Converse body and summarizes it.
fn parse(body: &[u8]) -> Result<Prompt, ApiError> {
    let request: Value = serde_json::from_slice(body).map_err(|_| {
        ApiError::new(
            400,
            "SerializationException",
            "Unable to parse request body",
        )
    })?;
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::validation("A conversation must start with a user message."))?;
    let mut prompt = Prompt::default();
    for text in blocks(request.get("system")).filter_map(|b| b.get("text").and_then(Value::as_str))
    {
        prompt.texts.push(text.to_owned());
    }
    let mut uses_tools = false;
    for (i, message) in messages.iter().enumerate() {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let want = if i % 2 == 0 { "user" } else { "assistant" };
        if role != want {
            return Err(ApiError::validation(if i == 0 {
                "A conversation must start with a user message. Try again with a conversation that starts with a user message."
            } else {
                "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again."
            }));
        }
        uses_tools |= read_message(&mut prompt, i, role, message.get("content"))?;
    }
    let tool_config = request.get("toolConfig");
    if uses_tools && tool_config.is_none() {
        return Err(ApiError::validation(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
        ));
    }
    prompt.tools = tools(tool_config);
    prompt.tool_choice = tool_choice(tool_config);
    prompt.max_tokens = request
        .pointer("/inferenceConfig/maxTokens")
        .and_then(Value::as_u64);
    Ok(prompt)
}

fn blocks(content: Option<&Value>) -> impl Iterator<Item = &Value> {
    content.and_then(Value::as_array).into_iter().flatten()
}

/// Folds one message into the prompt; returns whether it holds tool blocks.
fn read_message(
    prompt: &mut Prompt,
    index: usize,
    role: &str,
    content: Option<&Value>,
) -> Result<bool, ApiError> {
    let mut texts = Vec::new();
    let mut results = Vec::new();
    let mut tools = false;
    for (j, block) in blocks(content).enumerate() {
        if let Some(text) = block.get("text").and_then(Value::as_str) {
            if text.trim().is_empty() {
                return Err(ApiError::validation(format!(
                    "The text field in the ContentBlock object at messages.{index}.content.{j} is blank. Add text to the text field, and try again."
                )));
            }
            texts.push(text.to_owned());
        }
        if let Some(result) = block.get("toolResult") {
            tools = true;
            results.push(answer::content_text(result.get("content")));
        }
        tools |= block.get("toolUse").is_some();
    }
    let text = texts.join(" ");
    let result_text = results.join(" ");
    prompt.texts.push(
        [text.as_str(), result_text.as_str()]
            .join(" ")
            .trim()
            .to_owned(),
    );
    if role == "user" {
        prompt.last_user = text;
        prompt.tool_result = (!results.is_empty()).then_some(result_text);
    } else {
        prompt.tool_result = None;
    }
    Ok(tools)
}

fn tools(config: Option<&Value>) -> Vec<ToolSpec> {
    blocks(config.and_then(|c| c.get("tools")))
        .filter_map(|t| {
            let spec = t.get("toolSpec")?;
            Some(ToolSpec::new(
                spec.get("name")?.as_str()?,
                spec.pointer("/inputSchema/json"),
            ))
        })
        .collect()
}

fn tool_choice(config: Option<&Value>) -> ToolChoice {
    let choice = config.and_then(|c| c.get("toolChoice"));
    match choice {
        Some(c) if c.get("any").is_some() => ToolChoice::Required,
        Some(c) => c
            .pointer("/tool/name")
            .and_then(Value::as_str)
            .map_or(ToolChoice::Auto, |n| ToolChoice::Named(n.to_owned())),
        None => ToolChoice::Auto,
    }
}

fn stop_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ToolUse => "tool_use",
    }
}

fn usage(answer: &Answer) -> Value {
    json!({"inputTokens": answer.input_tokens, "outputTokens": answer.output_tokens,
        "totalTokens": answer.input_tokens + answer.output_tokens})
}

/// The Converse response.
fn complete(answer: &Answer) -> Value {
    let block = match &answer.body {
        Body::Text(_) => json!({"text": answer.text()}),
        Body::Tool(call) => {
            let input: Value = serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
            json!({"toolUse": {"toolUseId": tool_use_id(), "name": call.name, "input": input}})
        }
    };
    json!({
        "output": {"message": {"role": "assistant", "content": [block]}},
        "stopReason": stop_reason(answer.finish),
        "usage": usage(answer),
        "metrics": {"latencyMs": 42},
    })
}

fn tool_use_id() -> String {
    format!("tooluse_{}", ids::alnum(22))
}

/// A random-length slice of the padding alphabet, like Bedrock's.
fn padding() -> String {
    let len = 1 + (uuid::Uuid::new_v4().as_u128() % PAD.len() as u128) as usize;
    PAD[..len].to_owned()
}

pub(crate) fn string_header(name: &'static str, value: &str) -> Header {
    Header::new(name, HeaderValue::String(value.to_owned().into()))
}

/// One frame, headers in the recorded order.
pub(crate) fn encode(headers: Vec<Header>, payload: &Value) -> Bytes {
    let mut message = Message::new(serde_json::to_vec(payload).unwrap_or_default());
    for h in headers {
        message = message.add_header(h);
    }
    let mut out = Vec::new();
    // Only oversized headers or payloads fail to encode; the simulator's are small.
    let _ = write_message_to(&message, &mut out);
    Bytes::from(out)
}

fn event(kind: Kind, event_type: &str, mut payload: Value) -> Frame {
    payload["p"] = padding().into();
    let headers = vec![
        string_header(":event-type", event_type),
        string_header(":content-type", "application/json"),
        string_header(":message-type", "event"),
    ];
    Frame::new(kind, encode(headers, &payload))
}

/// An exception frame, as Bedrock sends for in-stream failures.
pub(crate) fn exception(name: &str, message: &str) -> Bytes {
    let headers = vec![
        string_header(":exception-type", name),
        string_header(":content-type", "application/json"),
        string_header(":message-type", "exception"),
    ];
    encode(headers, &json!({"message": message}))
}

fn stream_response(answer: Answer, knobs: &Knobs) -> Response {
    let mut lead = vec![event(
        Kind::Lead,
        "messageStart",
        json!({"role": "assistant"}),
    )];
    let content: Vec<Frame> = match &answer.body {
        Body::Text(pieces) => pieces
            .iter()
            .map(|text| {
                event(
                    Kind::Content,
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"text": text}}),
                )
            })
            .collect(),
        Body::Tool(call) => {
            let start = json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": tool_use_id(), "name": call.name, "type": "tool_use"}}});
            lead.push(event(Kind::Lead, "contentBlockStart", start));
            call.fragments
                .iter()
                .map(|f| {
                    event(
                        Kind::Content,
                        "contentBlockDelta",
                        json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": f}}}),
                    )
                })
                .collect()
        }
    };
    let tail = vec![
        event(
            Kind::Tail,
            "contentBlockStop",
            json!({"contentBlockIndex": 0}),
        ),
        event(
            Kind::Tail,
            "messageStop",
            json!({"stopReason": stop_reason(answer.finish)}),
        ),
        event(
            Kind::Tail,
            "metadata",
            json!({"usage": usage(&answer), "metrics": {"latencyMs": 42}}),
        ),
    ];
    let error_frame = knobs
        .error_event
        .then(|| exception("modelStreamErrorException", "The model stream failed."));
    let plan = sse::Plan {
        frames: Box::new(lead.into_iter().chain(content).chain(tail)),
        delay: knobs.chunk_delay,
        cut_after: knobs.cut_after,
        faults: knobs.faults,
        error_frame,
    };
    let mut headers = response_headers();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    (StatusCode::OK, headers, sse::body(plan)).into_response()
}
