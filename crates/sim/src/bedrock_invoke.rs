//! Bedrock InvokeModel with an Anthropic body: `POST /model/{modelId}/invoke` and
//! `/invoke-with-response-stream`.
//!
//! The body is an Anthropic Messages body without `model` or `stream` and with
//! `anthropic_version: "bedrock-2023-05-31"`; the answer is the Anthropic message JSON, or
//! event-stream `chunk` frames whose `{"bytes"}` payload is each Anthropic stream event
//! (base64), the last one carrying `amazon-bedrock-invocationMetrics`. A mid-stream Anthropic
//! `error` event becomes a `modelStreamErrorException` exception frame.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde_json::{Value, json};

use crate::bedrock::{self, ApiError};
use crate::{Sim, answer, anthropic, faults, openai};

const BEDROCK_ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// `POST /model/{modelId}/invoke`.
pub(crate) async fn invoke(
    State(sim): State<Sim>,
    Path(model): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&sim, &model, false, (&method, &uri, &headers), &body).await
}

/// `POST /model/{modelId}/invoke-with-response-stream`.
pub(crate) async fn invoke_stream(
    State(sim): State<Sim>,
    Path(model): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&sim, &model, true, (&method, &uri, &headers), &body).await
}

async fn serve(
    sim: &Sim,
    model: &str,
    stream: bool,
    request: (&Method, &Uri, &HeaderMap),
    body: &[u8],
) -> Response {
    if let Some(denied) = bedrock::check_signature(sim, request, body) {
        return denied;
    }
    if openai::unknown_model(model) {
        return ApiError::validation("The provided model identifier is invalid.").into_response();
    }
    let mut object = match validate(body) {
        Ok(object) => object,
        Err(e) => return e.into_response(),
    };
    if let Some(status) = directive_status(&object) {
        return bedrock::fault(status).into_response();
    }
    object.remove("anthropic_version");
    object.insert("model".into(), model.into());
    object.insert("stream".into(), stream.into());
    let body = serde_json::to_vec(&Value::Object(object)).unwrap_or_default();
    let answer = anthropic::serve_body(sim, &body).await;
    if !stream || answer.status() != StatusCode::OK {
        return answer;
    }
    chunked(answer)
}

fn validate(body: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
        return Err(ApiError::validation(
            "Malformed input request, please reformat your input and try again.",
        ));
    };
    for key in ["model", "stream"] {
        if object.contains_key(key) {
            return Err(ApiError::validation(format!(
                "extraneous key [{key}] is not permitted"
            )));
        }
    }
    if object.get("anthropic_version").and_then(Value::as_str) != Some(BEDROCK_ANTHROPIC_VERSION) {
        return Err(ApiError::validation(
            "Malformed input request: anthropic_version is required",
        ));
    }
    Ok(object)
}

/// A `[[sim:status=…]]` in the last message, answered Bedrock-style before the model runs.
fn directive_status(object: &serde_json::Map<String, Value>) -> Option<u16> {
    let last = object.get("messages")?.as_array()?.last()?;
    let (directives, _) = faults::extract(&answer::content_text(last.get("content")));
    directives.status
}

/// Re-frames the Anthropic SSE answer (one event per body chunk) as `chunk` frames.
fn chunked(answer: Response) -> Response {
    let frames = answer.into_body().into_data_stream().map(|item| {
        item.map(|bytes| reframe(&bytes))
            .map_err(|e| std::io::Error::other(e.to_string()))
    });
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    headers.insert(
        "x-amzn-bedrock-content-type",
        HeaderValue::from_static("application/json"),
    );
    (StatusCode::OK, headers, Body::from_stream(frames)).into_response()
}

/// One SSE event (`event: …\ndata: {…}\n\n`) as an event-stream frame.
fn reframe(sse: &[u8]) -> Bytes {
    let text = String::from_utf8_lossy(sse);
    let data: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim_start)
        .collect::<Vec<_>>()
        .join("\n");
    let Ok(mut event) = serde_json::from_str::<Value>(&data) else {
        return Bytes::new();
    };
    match event.get("type").and_then(Value::as_str) {
        Some("error") => {
            let message = event
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("Model Stream Error");
            return bedrock::exception("modelStreamErrorException", message);
        }
        Some("ping") => return Bytes::new(),
        Some("message_stop") => {
            event["amazon-bedrock-invocationMetrics"] = json!({"inputTokenCount": 0,
                "outputTokenCount": 0, "invocationLatency": 42, "firstByteLatency": 21});
        }
        _ => {}
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(event.to_string());
    let headers = vec![
        bedrock::string_header(":event-type", "chunk"),
        bedrock::string_header(":content-type", "application/json"),
        bedrock::string_header(":message-type", "event"),
    ];
    bedrock::encode(headers, &json!({"bytes": b64}))
}
