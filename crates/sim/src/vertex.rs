//! Vertex AI: Gemini `…/publishers/google/models/{m}:generateContent` and
//! `:streamGenerateContent?alt=sse` (also the Express Mode path
//! `/v1/publishers/google/models/{m}:…` with `x-goog-api-key`), and Claude
//! `…/publishers/anthropic/models/{m}:rawPredict` / `:streamRawPredict`.
//!
//! Credentials: a bearer token issued by the simulated Google token endpoint (any non-empty
//! bearer when no service-account key is configured); Express Mode checks
//! `x-goog-api-key` against `google_api_key` (any non-empty key when none is configured).
//! Gemini streams use `\r\n\r\n` separators, whole `functionCall` parts, cumulative
//! `usageMetadata` in every chunk and `finishReason` on the last; errors use Google's
//! `{"error":{code,message,status}}` shape. rawPredict requires
//! `anthropic_version: "vertex-2023-10-16"` and no `model` in the body.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri};
use serde_json::{Value, json};

use crate::answer::{self, Answer, Body, Finish, Prompt, ToolChoice, ToolSpec};
use crate::auth::{bearer, header};
use crate::faults::{self, Knobs};
use crate::sse::{self, Frame, Kind};
use crate::{Sim, anthropic, ids, openai, reply};

const VERTEX_ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// A Google API error.
fn google_error(status: u16, message: &str) -> Response {
    let rpc = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    };
    let body = json!({"error": {"code": status, "message": message, "status": rpc}});
    reply::json(reply::status(status), HeaderMap::new(), &body)
}

/// Which credential a route takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    ServiceAccount,
    Express,
}

/// `None` when the credential is accepted, else the refusal to send.
fn check_auth(sim: &Sim, auth: Auth, headers: &HeaderMap) -> Option<Response> {
    let unauthenticated = || {
        google_error(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, \
             login cookie or other valid authentication credential.",
        )
    };
    match auth {
        Auth::Express => {
            let key = header(headers, "x-goog-api-key").unwrap_or_default();
            let ok = !key.is_empty()
                && sim
                    .config
                    .google_api_key
                    .as_deref()
                    .is_none_or(|k| k == key);
            (!ok).then(|| google_error(400, "API key not valid. Please pass a valid API key."))
        }
        Auth::ServiceAccount => {
            let token = bearer(headers).unwrap_or_default();
            let known = sim.cloud.google_token_live(token);
            match (
                token.is_empty(),
                known,
                &sim.config.google_service_account_public_key_pem,
            ) {
                (true, _, _) | (_, Some(false), _) | (_, None, Some(_)) => Some(unauthenticated()),
                (_, Some(true), _) | (_, None, None) => None,
            }
        }
    }
}

/// Splits `model:action`.
fn model_action(tail: &str) -> Option<(&str, &str)> {
    tail.rsplit_once(':')
}

/// `POST /v1/projects/{p}/locations/{l}/publishers/{publisher}/models/{model}:{action}`.
pub(crate) async fn project_model(
    State(sim): State<Sim>,
    Path((_project, _location, publisher, tail)): Path<(String, String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(denied) = check_auth(&sim, Auth::ServiceAccount, &headers) {
        return denied;
    }
    let Some((model, action)) = model_action(&tail) else {
        return google_error(404, "The requested URL was not found on this server.");
    };
    match (publisher.as_str(), action) {
        ("google", "generateContent") => gemini(&sim, model, false, &body).await,
        ("google", "streamGenerateContent") => stream_gemini(&sim, model, &uri, &body).await,
        ("anthropic", "rawPredict" | "streamRawPredict") => raw_predict(&sim, model, &body).await,
        _ => google_error(404, "The requested URL was not found on this server."),
    }
}

/// `POST /v1/publishers/google/models/{model}:{action}` (Express Mode).
pub(crate) async fn express_model(
    State(sim): State<Sim>,
    Path(tail): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(denied) = check_auth(&sim, Auth::Express, &headers) {
        return denied;
    }
    match model_action(&tail) {
        Some((model, "generateContent")) => gemini(&sim, model, false, &body).await,
        Some((model, "streamGenerateContent")) => stream_gemini(&sim, model, &uri, &body).await,
        _ => google_error(404, "The requested URL was not found on this server."),
    }
}

/// Only `alt=sse` streams SSE; without it Google streams a JSON array, which this
/// simulator does not: it answers 400 so a client that forgot the parameter notices.
fn alt_sse(uri: &Uri) -> bool {
    uri.query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"))
}

async fn stream_gemini(sim: &Sim, model: &str, uri: &Uri, body: &[u8]) -> Response {
    if !alt_sse(uri) {
        return google_error(
            400,
            "The simulator streams only with alt=sse (without it Google streams a JSON array).",
        );
    }
    gemini(sim, model, true, body).await
}

async fn raw_predict(sim: &Sim, model: &str, body: &[u8]) -> Response {
    let Ok(Value::Object(mut request)) = serde_json::from_slice::<Value>(body) else {
        return anthropic::invalid_request(
            "There was an issue with your request body. Please check the JSON is valid.",
        );
    };
    if request.contains_key("model") {
        return anthropic::invalid_request("model: Extra inputs are not permitted");
    }
    if request.get("anthropic_version").and_then(Value::as_str) != Some(VERTEX_ANTHROPIC_VERSION) {
        return anthropic::invalid_request(
            "anthropic_version: Input should be 'vertex-2023-10-16'",
        );
    }
    request.remove("anthropic_version");
    request.insert("model".into(), model.into());
    let body = serde_json::to_vec(&Value::Object(request)).unwrap_or_default();
    anthropic::serve_body(sim, &body).await
}

async fn gemini(sim: &Sim, model: &str, stream_sse: bool, body: &[u8]) -> Response {
    if openai::unknown_model(model) {
        return google_error(
            404,
            &format!(
                "Publisher Model `{model}` was not found or your project does not have access to it."
            ),
        );
    }
    let prompt = match parse(body) {
        Ok(p) => p,
        Err(message) => return google_error(400, &message),
    };
    let (directives, clean) = faults::extract(prompt.directive_text());
    let knobs = Knobs::resolve(&directives, &sim.config);
    knobs.before_head().await;
    if let Some(status) = knobs.status {
        return google_error(status, "Resource exhausted. Please try again later.");
    }
    let answer = answer::plan(&prompt, &clean, knobs.chunks);
    let meta = Meta {
        model: model.to_owned(),
        id: ids::alnum(22),
    };
    if stream_sse {
        stream(&meta, &answer, &knobs)
    } else {
        let parts = match &answer.body {
            Body::Text(_) => vec![json!({"text": answer.text()})],
            Body::Tool(call) => vec![function_call(&call.name, &call.arguments)],
        };
        reply::json(
            StatusCode::OK,
            HeaderMap::new(),
            &chunk(&meta, parts, Some(&answer), true),
        )
    }
}

/// Validates a generateContent body and summarizes it.
fn parse(body: &[u8]) -> Result<Prompt, String> {
    let request: Value =
        serde_json::from_slice(body).map_err(|_| "Invalid JSON payload received.".to_owned())?;
    let contents = request
        .get("contents")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or("contents is not specified")?;
    let mut prompt = Prompt::default();
    for part in parts_of(request.get("systemInstruction")) {
        prompt.texts.push(
            part.get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        );
    }
    for (i, content) in contents.iter().enumerate() {
        let role = content
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("user");
        if !matches!(role, "user" | "model") {
            return Err(format!(
                "Please use a valid role: user, model. (contents[{i}])"
            ));
        }
        read_content(&mut prompt, role, content)?;
    }
    let declarations: Vec<&Value> = request
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("functionDeclarations").and_then(Value::as_array))
        .flatten()
        .collect();
    prompt.tools = declarations
        .iter()
        .filter_map(|d| {
            let schema = d
                .get("parametersJsonSchema")
                .or_else(|| d.get("parameters"));
            Some(ToolSpec::new(d.get("name")?.as_str()?, schema))
        })
        .collect();
    prompt.tool_choice = match request
        .pointer("/toolConfig/functionCallingConfig/mode")
        .and_then(Value::as_str)
    {
        Some("NONE") => ToolChoice::None,
        Some("ANY") => request
            .pointer("/toolConfig/functionCallingConfig/allowedFunctionNames/0")
            .and_then(Value::as_str)
            .map_or(ToolChoice::Required, |n| ToolChoice::Named(n.to_owned())),
        _ => ToolChoice::Auto,
    };
    prompt.max_tokens = request
        .pointer("/generationConfig/maxOutputTokens")
        .and_then(Value::as_u64);
    Ok(prompt)
}

fn parts_of(content: Option<&Value>) -> impl Iterator<Item = &Value> {
    content
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn read_content(prompt: &mut Prompt, role: &str, content: &Value) -> Result<(), String> {
    let mut texts = Vec::new();
    let mut results = Vec::new();
    for part in parts_of(Some(content)) {
        if let Some(text) = part.get("text").and_then(Value::as_str) {
            texts.push(text.to_owned());
        }
        if let Some(response) = part.get("functionResponse") {
            let value = response
                .get("response")
                .filter(|r| r.is_object())
                .ok_or("functionResponse.response must be an object")?;
            results.push(match value.get("result").and_then(Value::as_str) {
                Some(s) => s.to_owned(),
                None => value.to_string(),
            });
        }
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
    Ok(())
}

struct Meta {
    model: String,
    id: String,
}

fn function_call(name: &str, arguments: &str) -> Value {
    let args: Value = serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
    json!({"functionCall": {"name": name, "args": args}})
}

fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Length => "MAX_TOKENS",
        Finish::Stop | Finish::ToolUse => "STOP",
    }
}

/// One response object; `last` adds the finish reason and final usage.
fn chunk(meta: &Meta, parts: Vec<Value>, answer: Option<&Answer>, last: bool) -> Value {
    let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
    if let (true, Some(a)) = (last, answer) {
        candidate["finishReason"] = finish_reason(a.finish).into();
    }
    let (input, output) = answer.map_or((0, 0), |a| (a.input_tokens, a.output_tokens));
    json!({
        "candidates": [candidate],
        "usageMetadata": {"promptTokenCount": input, "candidatesTokenCount": output,
            "totalTokenCount": input + output, "trafficType": "ON_DEMAND"},
        "modelVersion": meta.model,
        "createTime": "2026-01-01T00:00:00.000000Z",
        "responseId": meta.id,
    })
}

fn data(kind: Kind, value: &Value) -> Frame {
    Frame::new(kind, format!("data: {value}\r\n\r\n"))
}

fn stream(meta: &Meta, answer: &Answer, knobs: &Knobs) -> Response {
    let content: Vec<Frame> = match &answer.body {
        Body::Text(pieces) => pieces
            .iter()
            .map(|p| {
                data(
                    Kind::Content,
                    &chunk(meta, vec![json!({"text": p})], Some(answer), false),
                )
            })
            .collect(),
        // Function calls arrive whole, in one chunk.
        Body::Tool(call) => vec![data(
            Kind::Content,
            &chunk(
                meta,
                vec![function_call(&call.name, &call.arguments)],
                Some(answer),
                false,
            ),
        )],
    };
    let tail = vec![data(
        Kind::Tail,
        &chunk(meta, vec![json!({"text": ""})], Some(answer), true),
    )];
    let error_frame = knobs.error_event.then(|| {
        let e = json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}});
        Bytes::from(format!("data: {e}\r\n\r\n"))
    });
    let plan = sse::Plan {
        frames: Box::new(content.into_iter().chain(tail)),
        delay: knobs.chunk_delay,
        cut_after: knobs.cut_after,
        faults: knobs.faults,
        error_frame,
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    (StatusCode::OK, headers, sse::body(plan)).into_response()
}
