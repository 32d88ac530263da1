//! Azure OpenAI: classic deployment URLs (`api-version` required) and the `/openai/v1` paths.
//! The body logic is OpenAI's ([`openai::serve_chat`]); this module adds Azure's auth, error
//! shapes, content-filter annotations, alphabetical key order and headers.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use crate::openai::{self, Flavor};
use crate::{Sim, auth, ids, reply};

/// Response headers Azure OpenAI sends.
pub(crate) fn headers() -> HeaderMap {
    let request_id = ids::uuid();
    reply::headers([
        ("apim-request-id", request_id.clone()),
        ("x-request-id", request_id),
        ("x-ms-region", "East US".to_owned()),
        ("x-ratelimit-remaining-requests", "99".to_owned()),
        ("x-ratelimit-remaining-tokens", "99000".to_owned()),
    ])
}

/// `{"error":{"code","message"}}`, Azure's gateway-level error shape.
fn error(status: StatusCode, code: &str, message: &str, mut headers: HeaderMap) -> Response {
    headers.extend(self::headers());
    let body = json!({"error": {"code": code, "message": message}});
    reply::json(status, headers, &body)
}

/// Azure's answer to a `[[sim:status=…]]` directive: `"code":"<status>"`, the retry hint
/// repeated in the message as Azure does.
pub(crate) fn fault(status: u16, retry_after: Option<u64>) -> Response {
    let message = match (status, retry_after) {
        (429, Some(secs)) => format!(
            "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version \
             2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. \
             Please retry after {secs} seconds."
        ),
        (429, None) => "Requests to the ChatCompletions_Create Operation under Azure OpenAI API \
            version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing \
            tier."
            .to_owned(),
        (s, _) if s >= 500 => {
            "The service is temporarily unable to process your request. Please try again later."
                .to_owned()
        }
        (s, _) => format!("Simulated error {s}."),
    };
    let mut extra = HeaderMap::new();
    reply::add_retry_after(&mut extra, retry_after);
    error(reply::status(status), &status.to_string(), &message, extra)
}

/// Checks `api-key` or Bearer against `azure_key`, answering Azure's 401.
/// `None` when the credentials pass, else the 401 to send.
fn check_auth(sim: &Sim, headers: &HeaderMap) -> Option<Response> {
    let key = auth::first_key(headers, &["api-key", "authorization"]).unwrap_or_default();
    if auth::key_ok(sim.config.azure_key.as_deref(), key) {
        return None;
    }
    let message = "Access denied due to invalid subscription key or wrong API endpoint. Make sure \
        to provide a valid key for an active subscription and use a correct regional API endpoint \
        for your resource.";
    Some(error(
        StatusCode::UNAUTHORIZED,
        "401",
        message,
        HeaderMap::new(),
    ))
}

fn deployment_not_found() -> Response {
    let message = "The API deployment for this resource does not exist. If you created the \
        deployment within the last 5 minutes, please wait a moment and try again.";
    error(
        StatusCode::NOT_FOUND,
        "DeploymentNotFound",
        message,
        HeaderMap::new(),
    )
}

fn has_api_version(query: Option<&str>) -> bool {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .any(|(key, value)| key == "api-version" && !value.is_empty())
}

/// `POST /openai/deployments/{deployment}/chat/completions?api-version=…`.
pub(crate) async fn deployment_chat(
    State(sim): State<Sim>,
    Path(deployment): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Azure answers a missing api-version as an unknown resource.
    if !has_api_version(query.as_deref()) {
        return error(
            StatusCode::NOT_FOUND,
            "404",
            "Resource not found",
            HeaderMap::new(),
        );
    }
    serve(&sim, &headers, &body, Some(deployment)).await
}

/// `POST /openai/v1/chat/completions`: the body's `model` names the deployment.
pub(crate) async fn v1_chat(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&sim, &headers, &body, None).await
}

async fn serve(
    sim: &Sim,
    headers: &HeaderMap,
    body: &[u8],
    deployment: Option<String>,
) -> Response {
    if let Some(denied) = check_auth(sim, headers) {
        return denied;
    }
    let request = match openai::parse_json(body) {
        Ok(request) => request,
        Err(err) => return err.into_response(self::headers()),
    };
    let body_model = request
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let Some(deployment) = deployment.or(body_model) else {
        let err =
            openai::ApiError::invalid("model is required", "model", "missing_required_parameter");
        return err.into_response(self::headers());
    };
    if openai::unknown_model(&deployment) {
        return deployment_not_found();
    }
    let model = sim.config.azure_model.clone();
    openai::serve_chat(sim, Flavor::Azure, &request, model).await
}

/// `GET /openai/v1/models`.
pub(crate) async fn models(State(sim): State<Sim>, headers: HeaderMap) -> Response {
    if let Some(denied) = check_auth(&sim, &headers) {
        return denied;
    }
    let list = openai::model_list(&sim.config.models);
    reply::json(StatusCode::OK, self::headers(), &list)
}

fn severity_map() -> Value {
    let safe = json!({"filtered": false, "severity": "safe"});
    json!({"hate": safe, "self_harm": safe, "sexual": safe, "violence": safe})
}

fn prompt_filter_results() -> Value {
    let mut filters = severity_map();
    filters["jailbreak"] = json!({"filtered": false, "detected": false});
    json!([{"prompt_index": 0, "content_filter_results": sorted(filters)}])
}

/// The first event of every Azure stream.
pub(crate) fn preamble() -> Value {
    json!({
        "choices": [], "created": 0, "id": "", "model": "", "object": "",
        "prompt_filter_results": prompt_filter_results(),
    })
}

/// Turns an OpenAI completion or chunk into Azure's: no `service_tier`, per-choice
/// `content_filter_results` (full on content, `{}` on role/finish chunks), prompt filters on the
/// non-stream object, keys alphabetical as observed.
pub(crate) fn shape(value: Value) -> Value {
    let Value::Object(mut object) = value else {
        return value;
    };
    object.remove("service_tier");
    let whole = object.get("object").and_then(Value::as_str) == Some("chat.completion");
    if whole {
        object.insert("prompt_filter_results".to_owned(), prompt_filter_results());
    }
    if let Some(Value::Array(choices)) = object.get_mut("choices") {
        for choice in choices.iter_mut() {
            annotate_choice(choice, whole);
        }
    }
    sorted(Value::Object(object))
}

fn annotate_choice(choice: &mut Value, whole: bool) {
    let has_content = choice
        .pointer("/delta/content")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty());
    let filters = if whole {
        let mut map = severity_map();
        map["protected_material_code"] = json!({"filtered": false, "detected": false});
        map["protected_material_text"] = json!({"filtered": false, "detected": false});
        map
    } else if has_content {
        severity_map()
    } else {
        json!({})
    };
    if let Some(object) = choice.as_object_mut() {
        object.insert("content_filter_results".to_owned(), filters);
        for key in ["delta", "message"] {
            if let Some(inner) = object.remove(key) {
                object.insert(key.to_owned(), sorted(inner));
            }
        }
    }
    *choice = sorted(std::mem::take(choice));
}

/// The object's own keys in alphabetical order (nested values untouched).
fn sorted(value: Value) -> Value {
    let Value::Object(object) = value else {
        return value;
    };
    let mut entries: Vec<(String, Value)> = object.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(entries.into_iter().collect::<Map<_, _>>())
}
