//! `POST /v1/ai/invoke`: the Port invoke API (port-llm-providers §6.1, §6.3).
//!
//! The request becomes an OpenAI-format streaming chat request and runs through the same
//! pipeline as `/v1/chat/completions` (resolution, limits, adapters, recording with surface
//! `invoke`); the gateway's OpenAI chunk stream is then re-encoded as Port events. Errors
//! before the stream answer in the Port envelope; errors during it are an `error` event.
//!
//! `tools` is validated and recorded on the invocation as given. There is no tool catalog
//! in this product: no tool is ever offered to the model or run.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard_core::records::Timestamp;
use switchboard_core::resolve::Resolved;
use switchboard_core::{ErrorName, OrgId, Principal};

use super::errors::{Surface, SurfaceError};
use super::port_events::PortEvents;
use super::{
    Failure, authenticate, invocation, org_snapshot, read_body, set_selection_headers, upstream,
};
use crate::extract::{MANAGEMENT_BODY_LIMIT, parse_json};
use crate::interactions::Invocation;
use crate::state::AppState;

const MAX_ID_LEN: usize = 128;
const MAX_LABELS: usize = 64;
const MAX_LABEL_LEN: usize = 1024;
const MAX_TOOLS: usize = 100;

#[derive(Deserialize)]
pub struct InvokeQuery {
    invocation_identifier: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvokeBody {
    #[serde(rename = "userPrompt")]
    user_prompt: Option<String>,
    /// The docs' examples use `prompt`; accepted as an alias.
    prompt: Option<String>,
    #[serde(rename = "systemPrompt")]
    system_prompt: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    tools: Option<Vec<String>>,
    /// Accepted for compatibility; it governs self-service actions, which do not exist here.
    #[serde(rename = "executionMode")]
    #[allow(dead_code)]
    execution_mode: Option<ExecutionMode>,
}

#[derive(Deserialize)]
enum ExecutionMode {
    Automatic,
    #[serde(rename = "Approval Required")]
    ApprovalRequired,
}

/// A checked invoke request.
struct InvokeRequest {
    prompt: String,
    system: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    labels: Map<String, Value>,
    tools: Vec<String>,
}

/// A refusal before the stream started, and what is known to label it with.
struct Refusal {
    error: SurfaceError,
    resolved: Option<Resolved>,
}

impl From<SurfaceError> for Refusal {
    fn from(error: SurfaceError) -> Self {
        Self {
            error,
            resolved: None,
        }
    }
}

impl From<Failure> for Refusal {
    fn from(failure: Failure) -> Self {
        Self {
            error: failure.error,
            resolved: failure.resolved,
        }
    }
}

pub async fn invoke(
    State(state): State<AppState>,
    Query(query): Query<InvokeQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let chosen = query.invocation_identifier.is_some();
    let id = query
        .invocation_identifier
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let mut response = match run(&state, &id, chosen, &headers, body).await {
        Ok(response) => response,
        Err(refusal) => port_error(refusal),
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert("x-switchboard-invocation-id", value);
    }
    response
}

/// `chosen`: the caller named the id, so it must be checked (generated ids are unique).
async fn run(
    state: &AppState,
    id: &str,
    chosen: bool,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let caller = authenticate(state, headers).await?;
    let (body, _budget) = read_body(state, body, MANAGEMENT_BODY_LIMIT).await?;
    let request = parse_request(&body)?;
    if chosen {
        check_identifier(state, caller.org_id, id).await?;
    }
    let snapshot = org_snapshot(state, &caller).await?;
    let chat = Bytes::from(chat_body(&request).to_string());
    let keep_content = snapshot.config.settings.store_interaction_data;
    let mut recording = state.interactions.begin(Invocation {
        labels: request.labels.clone(),
        prompt: request.prompt.clone(),
        ..invocation(id, &caller, "invoke", headers, &chat, keep_content)
    })?;
    recording.set_tools(request.tools.clone());
    recording.trace(state.request_span(headers, "chat"), state.traces_content());
    let served = upstream::call(
        state,
        Surface::OpenAi,
        &caller,
        &snapshot,
        headers,
        chat,
        recording,
    )
    .await?;
    Ok(event_stream(state, &caller, served.response))
}

fn parse_request(body: &[u8]) -> Result<InvokeRequest, SurfaceError> {
    let body: InvokeBody = parse_json(body).map_err(|e| SurfaceError::from(e.0))?;
    let prompt = match (body.user_prompt, body.prompt) {
        (Some(_), Some(_)) => {
            return Err(SurfaceError::bad_request(
                "give the prompt as 'userPrompt' or 'prompt', not both",
            ));
        }
        (Some(p), None) | (None, Some(p)) => p,
        (None, None) => return Err(SurfaceError::bad_request("'userPrompt' is required")),
    };
    if prompt.trim().is_empty() {
        return Err(SurfaceError::bad_request("'userPrompt' must not be empty"));
    }
    let labels = body.labels.unwrap_or_default();
    let labels_ok = labels.len() <= MAX_LABELS
        && labels
            .iter()
            .all(|(k, v)| !k.is_empty() && k.len() <= MAX_LABEL_LEN && v.len() <= MAX_LABEL_LEN);
    if !labels_ok {
        return Err(SurfaceError::bad_request(format!(
            "'labels' takes at most {MAX_LABELS} non-empty keys; keys and values at most \
             {MAX_LABEL_LEN} bytes"
        )));
    }
    let tools = body.tools.unwrap_or_default();
    if tools.len() > MAX_TOOLS || tools.iter().any(|t| t.len() > MAX_LABEL_LEN) {
        return Err(SurfaceError::bad_request(format!(
            "'tools' takes at most {MAX_TOOLS} patterns of at most {MAX_LABEL_LEN} bytes"
        )));
    }
    Ok(InvokeRequest {
        prompt,
        system: body.system_prompt.filter(|s| !s.is_empty()),
        provider: body.provider,
        model: body.model,
        labels: labels
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect(),
        tools,
    })
}

/// A caller-chosen id: 1 to 128 of `A-Z a-z 0-9 - _ . :`, unused in the organization
/// (in flight ids are checked when the recording begins).
async fn check_identifier(state: &AppState, org: OrgId, id: &str) -> Result<(), SurfaceError> {
    let valid = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if !valid {
        return Err(SurfaceError::bad_request(
            "invocation_identifier must be 1 to 128 characters of A-Z, a-z, 0-9, '-', '_', '.', ':'",
        ));
    }
    match state.store.get_invocation(org, id).await {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err(SurfaceError::new(
            409,
            ErrorName::Conflict.as_str(),
            format!("An invocation with the identifier '{id}' already exists"),
        )),
        Err(error) => {
            tracing::error!(%error, "cannot check the invocation identifier");
            Err(SurfaceError::internal())
        }
    }
}

/// The OpenAI-format streaming request the pipeline runs.
fn chat_body(request: &InvokeRequest) -> Value {
    let mut messages = Vec::new();
    if let Some(system) = &request.system {
        messages.push(json!({ "role": "system", "content": system }));
    }
    messages.push(json!({ "role": "user", "content": request.prompt }));
    let mut body = json!({
        "messages": messages,
        "stream": true,
        "stream_options": { "include_usage": true },
    });
    if let Some(provider) = &request.provider {
        body["provider"] = json!(provider);
    }
    if let Some(model) = &request.model {
        body["model"] = json!(model);
    }
    body
}

/// The Port event stream over the gateway's OpenAI stream; the `done` event reports the
/// organization's managed usage as it stands once the invocation was reconciled.
fn event_stream(state: &AppState, caller: &Principal, served: Response) -> Response {
    let (parts, body) = served.into_parts();
    let state = state.clone();
    let org = caller.org_id;
    let upstream = body.into_data_stream();
    let stream = futures_util::stream::unfold(
        (upstream, PortEvents::new(), false),
        move |(mut upstream, mut events, ended)| {
            let state = state.clone();
            async move {
                if ended {
                    return None;
                }
                let (out, ended) = match upstream.next().await {
                    Some(Ok(chunk)) => (events.push(&chunk), false),
                    Some(Err(error)) => {
                        let mut out = bytes::BytesMut::new();
                        events.fail(&mut out, "upstream_unreachable", &error.to_string());
                        (out.freeze(), true)
                    }
                    None => (events.finish(&usage_report(&state, org).await), true),
                };
                Some((Ok::<_, std::io::Error>(out), (upstream, events, ended)))
            }
        },
    );
    let mut response = (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(stream),
    )
        .into_response();
    for name in ["x-switchboard-provider", "x-switchboard-model"] {
        if let Some(value) = parts.headers.get(name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

/// The `done` event's usage; `{}` when the counters cannot be read (the answer itself is
/// complete, so it is not withheld for that).
async fn usage_report(state: &AppState, org: switchboard_core::OrgId) -> Value {
    match state.interactions.usage(org).await {
        Ok(report) => json!(report),
        Err(error) => {
            tracing::warn!(%error, "cannot read the managed-provider usage");
            json!({})
        }
    }
}

/// The Port envelope, plus the documented limit fields (`type`, `retryAfter` /
/// `resetDate`) at the top level and in `details`, and `Retry-After` when there is one.
fn port_error(refusal: Refusal) -> Response {
    let error = refusal.error;
    let mut details = Map::new();
    if error.name == ErrorName::RateLimit.as_str() {
        details.insert("type".into(), json!(error.name));
        details.insert("retryAfter".into(), json!(error.retry_after));
    } else if error.name == ErrorName::Quota.as_str() {
        let reset = crate::interactions::limits::next_month(time::OffsetDateTime::now_utc());
        details.insert("type".into(), json!(error.name));
        details.insert(
            "resetDate".into(),
            json!(Timestamp::from_datetime(reset).to_string()),
        );
    }
    let mut body = json!({ "ok": false, "error": error.name, "message": error.message });
    for (key, value) in &details {
        body[key] = value.clone();
    }
    body["details"] = Value::Object(details);
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(seconds) = error.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(resolved) = &refusal.resolved {
        set_selection_headers(response.headers_mut(), resolved);
    }
    response
}
