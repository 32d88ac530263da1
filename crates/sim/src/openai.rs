//! OpenAI Chat Completions (`/v1/chat/completions`, `/v1/models`). Azure OpenAI reuses the
//! body handling here through [`Flavor::Azure`], which only changes shapes and headers.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::answer::{self, Answer, Finish, Prompt, ToolChoice, ToolSpec};
use crate::faults::{self, Knobs};
use crate::sse::{self, Frame, Kind};
use crate::{Sim, auth, azure, ids, reply};

/// Same fingerprint shape as the recordings (`fp_` + 10 hex).
const FINGERPRINT: &str = "fp_51b0c0ffee";
const SERVER_ERROR: &str =
    "The server had an error while processing your request. Sorry about that!";

/// Which dialect of the Chat Completions protocol to speak.
#[derive(Clone, Debug)]
pub(crate) enum Flavor {
    OpenAi,
    /// Azure OpenAI: filter annotations, alphabetical keys, Azure errors and headers.
    Azure,
}

impl Flavor {
    fn headers(&self) -> HeaderMap {
        match self {
            Self::OpenAi => openai_headers(),
            Self::Azure => azure::headers(),
        }
    }

    fn fault(&self, status: u16, retry_after: Option<u64>) -> Response {
        match self {
            Self::OpenAi => fault(status, retry_after),
            Self::Azure => azure::fault(status, retry_after),
        }
    }

    /// Final touch on every completion/chunk object (Azure adds filters and sorts keys).
    fn shape(&self, value: Value) -> Value {
        match self {
            Self::OpenAi => value,
            Self::Azure => azure::shape(value),
        }
    }
}

/// An OpenAI-shaped error: `{"error":{"message","type","param","code"}}`.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<&'static str>,
    pub code: Option<&'static str>,
}

impl ApiError {
    pub(crate) fn invalid(
        message: impl Into<String>,
        param: &'static str,
        code: &'static str,
    ) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: Some(param),
            code: Some(code),
        }
    }

    pub(crate) fn body(&self) -> Value {
        json!({"error": {
            "message": self.message, "type": self.kind, "param": self.param, "code": self.code,
        }})
    }

    pub(crate) fn into_response(self, headers: HeaderMap) -> Response {
        reply::json(self.status, headers, &self.body())
    }
}

/// Response headers as recorded from api.openai.com.
fn openai_headers() -> HeaderMap {
    reply::headers([
        ("x-request-id", ids::openai_request()),
        ("openai-processing-ms", "12".to_owned()),
        ("openai-version", "2020-10-01".to_owned()),
        ("openai-organization", "switchboard-sim".to_owned()),
        ("x-ratelimit-limit-requests", "10000".to_owned()),
        ("x-ratelimit-limit-tokens", "30000000".to_owned()),
        ("x-ratelimit-remaining-requests", "9999".to_owned()),
        ("x-ratelimit-remaining-tokens", "29999000".to_owned()),
        ("x-ratelimit-reset-requests", "6ms".to_owned()),
        ("x-ratelimit-reset-tokens", "2ms".to_owned()),
    ])
}

/// Whether the simulator pretends not to know `model`.
pub(crate) fn unknown_model(model: &str) -> bool {
    model == "does-not-exist" || model.starts_with("missing-")
}

/// Checks `Authorization: Bearer`, answering OpenAI's 401 bodies.
/// `None` when the credentials pass, else the 401 to send.
fn check_auth(sim: &Sim, headers: &HeaderMap) -> Option<Response> {
    let Some(key) = auth::bearer(headers).filter(|k| !k.is_empty()) else {
        let message = "You didn't provide an API key. You need to provide your API key in an \
            Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as \
            the password field (with blank username) if you're accessing the API from your \
            browser and are prompted for a username and password. You can obtain an API key \
            from https://platform.openai.com/account/api-keys.";
        return Some(auth_error(message, None));
    };
    if auth::key_ok(sim.config.openai_key.as_deref(), key) {
        return None;
    }
    let message = format!(
        "Incorrect API key provided: {}. You can find your API key at \
         https://platform.openai.com/account/api-keys.",
        auth::mask(key)
    );
    Some(auth_error(&message, Some("invalid_api_key")))
}

fn auth_error(message: &str, code: Option<&'static str>) -> Response {
    let error = ApiError {
        status: StatusCode::UNAUTHORIZED,
        message: message.to_owned(),
        kind: "invalid_request_error",
        param: None,
        code,
    };
    error.into_response(openai_headers())
}

/// `POST /v1/chat/completions`.
pub(crate) async fn chat(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(denied) = check_auth(&sim, &headers) {
        return denied;
    }
    let request = match parse_json(&body) {
        Ok(request) => request,
        Err(error) => return error.into_response(openai_headers()),
    };
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        let error = ApiError::invalid(
            "you must provide a model parameter",
            "model",
            "missing_required_parameter",
        );
        return error.into_response(openai_headers());
    };
    if unknown_model(model) {
        return model_not_found(model);
    }
    let model = model.to_owned();
    serve_chat(&sim, Flavor::OpenAi, &request, model).await
}

fn model_not_found(model: &str) -> Response {
    let error = ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("The model `{model}` does not exist or you do not have access to it."),
        kind: "invalid_request_error",
        param: None,
        code: Some("model_not_found"),
    };
    error.into_response(openai_headers())
}

/// Parses a JSON object body, answering OpenAI's 400 for anything else.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            message: "We could not parse the JSON body of your request. (HINT: This likely means \
                you aren't using your HTTP library correctly. The OpenAI API expects a JSON \
                payload, but what was sent was not valid JSON.)"
                .to_owned(),
            kind: "invalid_request_error",
            param: None,
            code: None,
        }),
    }
}

/// `GET /v1/models` (Anthropic's list when the caller sends `anthropic-version`).
pub(crate) async fn models(State(sim): State<Sim>, headers: HeaderMap) -> Response {
    if headers.contains_key("anthropic-version") {
        return crate::anthropic::models(&sim, &headers);
    }
    if let Some(denied) = check_auth(&sim, &headers) {
        return denied;
    }
    reply::json(
        StatusCode::OK,
        openai_headers(),
        &model_list(&sim.config.models),
    )
}

/// `{"object":"list","data":[…]}` for `models`.
pub(crate) fn model_list(models: &[String]) -> Value {
    let data: Vec<Value> = models
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 1_686_935_002, "owned_by": "system"}))
        .collect();
    json!({"object": "list", "data": data})
}

/// Everything after auth and model resolution; shared with Azure.
pub(crate) async fn serve_chat(
    sim: &Sim,
    flavor: Flavor,
    request: &Value,
    model: String,
) -> Response {
    let prompt = match parse_prompt(request) {
        Ok(prompt) => prompt,
        Err(error) => return error.into_response(flavor.headers()),
    };
    let (directives, clean) = faults::extract(prompt.directive_text());
    let knobs = Knobs::resolve(&directives, &sim.config);
    knobs.before_head().await;
    if let Some(status) = knobs.status {
        return flavor.fault(status, knobs.retry_after);
    }
    let answer = answer::plan(&prompt, &clean, knobs.chunks);
    let ctx = Arc::new(Ctx {
        id: ids::chat_completion(),
        created: ids::unix_now(),
        model,
        flavor,
    });
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        let include_usage = request
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true);
        stream(ctx, answer, &knobs, include_usage)
    } else {
        let body = ctx.flavor.shape(completion(&ctx, &answer));
        reply::json(StatusCode::OK, ctx.flavor.headers(), &body)
    }
}

/// OpenAI's error for a `[[sim:status=…]]` directive.
fn fault(status: u16, retry_after: Option<u64>) -> Response {
    let (kind, code, message) = match status {
        429 => (
            "requests",
            Some("rate_limit_exceeded"),
            "Rate limit reached for requests. Please try again later.".to_owned(),
        ),
        400 => (
            "invalid_request_error",
            None,
            "Bad request (simulated).".to_owned(),
        ),
        401 => (
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided.".to_owned(),
        ),
        403 => (
            "invalid_request_error",
            Some("unsupported_country_region_territory"),
            "Country, region, or territory not supported".to_owned(),
        ),
        404 => (
            "invalid_request_error",
            Some("model_not_found"),
            "The model does not exist or you do not have access to it.".to_owned(),
        ),
        503 => (
            "server_error",
            None,
            "The engine is currently overloaded, please try again later".to_owned(),
        ),
        s if s >= 500 => ("server_error", None, SERVER_ERROR.to_owned()),
        _ => (
            "invalid_request_error",
            None,
            format!("Simulated error {status}."),
        ),
    };
    let error = ApiError {
        status: reply::status(status),
        message,
        kind,
        param: None,
        code,
    };
    let mut headers = openai_headers();
    reply::add_retry_after(&mut headers, retry_after);
    error.into_response(headers)
}

/// Reads the parts of a Chat Completions body the simulator acts on.
pub(crate) fn parse_prompt(request: &Value) -> Result<Prompt, ApiError> {
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return Err(ApiError::invalid(
            "Missing required parameter: 'messages'.",
            "messages",
            "missing_required_parameter",
        ));
    };
    let mut prompt = Prompt::default();
    for message in messages {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let text = answer::content_text(message.get("content"));
        if role == "user" {
            prompt.last_user.clone_from(&text);
        }
        prompt.texts.push(text);
    }
    let last_role = messages
        .last()
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str);
    if last_role == Some("tool") {
        prompt.tool_result = prompt.texts.last().cloned();
    }
    prompt.tools = tools(request);
    prompt.tool_choice = tool_choice(request.get("tool_choice"));
    prompt.max_tokens = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| request.get(*k).and_then(Value::as_u64));
    Ok(prompt)
}

fn tools(request: &Value) -> Vec<ToolSpec> {
    let Some(tools) = request.get("tools").and_then(Value::as_array) else {
        return Vec::new();
    };
    tools
        .iter()
        .filter_map(|tool| {
            let function = tool.get("function")?;
            let name = function.get("name")?.as_str()?;
            Some(ToolSpec::new(name, function.get("parameters")))
        })
        .collect()
}

fn tool_choice(choice: Option<&Value>) -> ToolChoice {
    match choice {
        Some(Value::String(s)) if s == "none" => ToolChoice::None,
        Some(Value::String(s)) if s == "required" => ToolChoice::Required,
        Some(Value::Object(o)) => o
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .map_or(ToolChoice::Auto, |name| ToolChoice::Named(name.to_owned())),
        _ => ToolChoice::Auto,
    }
}

/// Per-response constants repeated in every chunk.
struct Ctx {
    id: String,
    created: u64,
    model: String,
    flavor: Flavor,
}

fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ToolUse => "tool_calls",
    }
}

fn usage(answer: &Answer) -> Value {
    json!({
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
        },
    })
}

/// The non-stream `chat.completion` object.
fn completion(ctx: &Ctx, answer: &Answer) -> Value {
    let mut message =
        json!({"role": "assistant", "content": null, "refusal": null, "annotations": []});
    match &answer.body {
        answer::Body::Text(_) => message["content"] = Value::String(answer.text()),
        answer::Body::Tool(call) => {
            message["tool_calls"] = json!([{
                "id": ids::tool_call(), "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }]);
        }
    }
    json!({
        "id": ctx.id, "object": "chat.completion", "created": ctx.created, "model": ctx.model,
        "choices": [{
            "index": 0, "message": message, "logprobs": null,
            "finish_reason": finish_reason(answer.finish),
        }],
        "usage": usage(answer),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    })
}

/// One `chat.completion.chunk` with the key order of the recordings.
fn chunk(ctx: &Ctx, choices: Value) -> Value {
    json!({
        "id": ctx.id, "object": "chat.completion.chunk", "created": ctx.created,
        "model": ctx.model, "service_tier": "default", "system_fingerprint": FINGERPRINT,
        "choices": choices,
    })
}

fn choice(delta: Value, finish: Option<&str>) -> Value {
    json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}])
}

/// `data: <compact json>\n\n`.
pub(crate) fn data_frame(kind: Kind, value: &Value) -> Frame {
    Frame::new(kind, format!("data: {value}\n\n"))
}

fn delta_frame(ctx: &Ctx, kind: Kind, delta: Value) -> Frame {
    data_frame(kind, &ctx.flavor.shape(chunk(ctx, choice(delta, None))))
}

fn stream(ctx: Arc<Ctx>, answer: Answer, knobs: &Knobs, include_usage: bool) -> Response {
    let mut lead: Vec<Frame> = azure_preamble(&ctx.flavor).into_iter().collect();
    let tail = tail_frames(&ctx, &answer, include_usage);
    let content: Box<dyn Iterator<Item = Frame> + Send> = match answer.body {
        answer::Body::Text(pieces) => {
            let delta = json!({"role": "assistant", "content": "", "refusal": null});
            lead.push(delta_frame(&ctx, Kind::Lead, delta));
            let ctx = Arc::clone(&ctx);
            Box::new(
                pieces
                    .into_iter()
                    .map(move |piece| delta_frame(&ctx, Kind::Content, json!({"content": piece}))),
            )
        }
        answer::Body::Tool(call) => {
            let delta = json!({"role": "assistant", "content": null, "tool_calls": [{
                "index": 0, "id": ids::tool_call(), "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }], "refusal": null});
            lead.push(delta_frame(&ctx, Kind::Lead, delta));
            let ctx = Arc::clone(&ctx);
            Box::new(call.fragments.into_iter().map(move |fragment| {
                let delta =
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]});
                delta_frame(&ctx, Kind::Content, delta)
            }))
        }
    };
    let error_frame = knobs.error_event.then(|| {
        let error = json!({"error": {"message": SERVER_ERROR, "type": "server_error", "param": null, "code": null}});
        data_frame(Kind::Tail, &error).bytes
    });
    let plan = sse::Plan {
        frames: Box::new(lead.into_iter().chain(content).chain(tail)),
        delay: knobs.chunk_delay,
        cut_after: knobs.cut_after,
        faults: knobs.faults,
        error_frame,
    };
    reply::sse(ctx.flavor.headers(), sse::body(plan))
}

fn azure_preamble(flavor: &Flavor) -> Option<Frame> {
    matches!(flavor, Flavor::Azure).then(|| data_frame(Kind::Lead, &azure::preamble()))
}

/// Finish chunk, optional usage chunk, `[DONE]`.
fn tail_frames(ctx: &Ctx, answer: &Answer, include_usage: bool) -> Vec<Frame> {
    let finish = choice(json!({}), Some(finish_reason(answer.finish)));
    let mut frames = vec![data_frame(
        Kind::Tail,
        &ctx.flavor.shape(chunk(ctx, finish)),
    )];
    if include_usage {
        let mut last = chunk(ctx, json!([]));
        last["usage"] = usage(answer);
        frames.push(data_frame(Kind::Tail, &ctx.flavor.shape(last)));
    }
    frames.push(Frame::new(Kind::Tail, "data: [DONE]\n\n"));
    frames
}
