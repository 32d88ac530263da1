//! Connection validation (`?validate_connection=true`): every enabled model of the provider
//! as it is about to be saved gets one minimal real call through the same adapter and
//! egress client as live traffic. Any failure saves nothing and answers
//! `400 LLMProviderModelTestError` with `details.testedModels.{model}: {isValid, message}`.
//!
//! Messages say what the user can fix (key, access, model, quota, reachability); upstream
//! bodies and secret values are never echoed.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Map, Value, json};
use switchboard_core::config::{enabled_models, referenced_secrets};
use switchboard_core::records::Timestamp;
use switchboard_core::{ErrorName, OrgId, PortError, SecretValue};
use switchboard_protocols::error::ErrorKind;
use switchboard_protocols::ir::{ChatRequest, Message, Part, Role};
use switchboard_providers::{
    EgressFailure, SecretSource, TargetError, UpstreamTarget, authorize, build_target,
};
use switchboard_store::{ProviderWrite, ValidationRecord};

use crate::error::{ApiError, ApiResult};
use crate::inference::codec::{classify_error, encode_request};
use crate::state::AppState;

/// How long one model's test may take.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Output cap of a test call: enough for reasoning models to answer at all.
const PROBE_MAX_TOKENS: u32 = 16;

/// One model's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTest {
    pub valid: bool,
    pub message: String,
}

/// Tests every enabled model; `Err` (with every model's result) when any failed.
pub async fn test_connection(state: &AppState, org: OrgId, write: &ProviderWrite) -> ApiResult<()> {
    let secrets = load_secrets(state, org, write).await?;
    let models = enabled_models(write.provider, &write.config, &write.overrides);
    let tests = models
        .iter()
        .map(|model| test_model(state, write, model, &secrets));
    let results = join_all(tests).await;
    let mut tested = Map::new();
    for (model, result) in models.iter().zip(&results) {
        tested.insert(
            model.clone(),
            json!({ "isValid": result.valid, "message": result.message }),
        );
    }
    let valid = results.iter().all(|r| r.valid);
    record(state, org, write, valid, &tested).await;
    if valid {
        return Ok(());
    }
    Err(ApiError(
        PortError::new(
            ErrorName::ModelTest,
            format!("Connection test failed for provider '{}'", write.provider),
        )
        .with_detail("testedModels", Value::Object(tested)),
    ))
}

/// Keeps the outcome as the provider's last validation (shown in the UI), pass or fail:
/// an admin fixing a refused key wants to see why the last try failed even though nothing
/// was saved. It holds only verdicts and our own messages. Bookkeeping, not part of the
/// save: a failure to record is logged and does not change the answer.
async fn record(
    state: &AppState,
    org: OrgId,
    write: &ProviderWrite,
    valid: bool,
    tested: &Map<String, Value>,
) {
    let record = ValidationRecord {
        provider: write.provider,
        valid,
        result: json!({ "models": tested }),
        at: Timestamp::now(),
    };
    if let Err(error) = state.store.record_validation(org, &record).await {
        tracing::warn!(%error, provider = %write.provider, "could not record the validation");
    }
}

struct Secrets(HashMap<String, SecretValue>);

impl SecretSource for Secrets {
    fn secret(&self, name: &str) -> Option<SecretValue> {
        self.0.get(name).cloned()
    }
}

async fn load_secrets(state: &AppState, org: OrgId, write: &ProviderWrite) -> ApiResult<Secrets> {
    let mut secrets = HashMap::new();
    for name in referenced_secrets(write.provider, &write.config) {
        if let Some(value) = state.store.reveal_secret(org, &name).await? {
            secrets.insert(name, value);
        }
    }
    Ok(Secrets(secrets))
}

async fn test_model(
    state: &AppState,
    write: &ProviderWrite,
    model: &str,
    secrets: &Secrets,
) -> ModelTest {
    let target = match build_target(
        write.provider,
        &write.config,
        model,
        &state.settings.upstream,
        secrets,
    ) {
        Ok(target) => target,
        Err(error) => return failed(target_message(&error)),
    };
    match tokio::time::timeout(TEST_TIMEOUT, call(state, &target)).await {
        Ok(result) => result,
        Err(_) => failed("The provider did not answer in time".into()),
    }
}

/// The smallest real request, encoded for the target by the same codec live traffic uses.
fn probe_body(target: &UpstreamTarget) -> Result<Vec<u8>, String> {
    let request = ChatRequest {
        model: target.upstream_model.clone(),
        messages: vec![Message {
            role: Role::User,
            content: vec![Part::Text("ping".into())],
        }],
        max_tokens: Some(PROBE_MAX_TOKENS),
        ..ChatRequest::default()
    };
    encode_request(target, &request, false).map_err(|e| e.to_string())
}

async fn call(state: &AppState, target: &UpstreamTarget) -> ModelTest {
    let request = match state.egress.request(reqwest::Method::POST, &target.url) {
        Ok(request) => request,
        Err(failure) => return failed(egress_message(&failure)),
    };
    let body = match probe_body(target) {
        Ok(body) => body,
        Err(message) => return failed(message),
    };
    let mut headers = target.headers.clone();
    headers.insert(
        reqwest::header::CONTENT_TYPE,
        reqwest::header::HeaderValue::from_static("application/json"),
    );
    let method = reqwest::Method::POST;
    if let Err(error) = authorize(
        target,
        &state.egress,
        &state.credentials,
        &method,
        &target.url,
        &mut headers,
        &body,
    )
    .await
    {
        return failed(format!("Could not obtain credentials: {error}"));
    }
    let request = request.headers(headers).body(body);
    let response = match state.egress.send(request).await {
        Ok(response) => response,
        Err(failure) => return failed(egress_message(&failure)),
    };
    let status = response.status().as_u16();
    if response.status().is_success() {
        return ModelTest {
            valid: true,
            message: "OK".into(),
        };
    }
    let response_headers = response.headers().clone();
    let body = response.bytes().await.unwrap_or_default();
    let kind = classify_error(target, status, &response_headers, &body).kind;
    failed(kind_message(kind, status))
}

fn failed(message: String) -> ModelTest {
    ModelTest {
        valid: false,
        message,
    }
}

fn kind_message(kind: ErrorKind, status: u16) -> String {
    match kind {
        ErrorKind::Authentication => "Invalid API key".into(),
        ErrorKind::Permission => "The credentials have no access to this model".into(),
        ErrorKind::NotFound => "Model or deployment not found".into(),
        ErrorKind::RateLimit => "Rate limited by the provider; try again later".into(),
        ErrorKind::Billing => "Quota exhausted or billing problem at the provider".into(),
        ErrorKind::ContentFilter => "The provider's content filter refused the test".into(),
        ErrorKind::InvalidRequest | ErrorKind::RequestTooLarge => {
            format!("The provider rejected the test request (HTTP {status})")
        }
        ErrorKind::Server | ErrorKind::BadGateway | ErrorKind::Overloaded => {
            format!("The provider failed (HTTP {status}); try again later")
        }
        ErrorKind::Timeout => "The provider did not answer in time".into(),
    }
}

fn egress_message(failure: &EgressFailure) -> String {
    match failure {
        EgressFailure::Blocked(_) => "The address is not allowed by the egress policy".into(),
        EgressFailure::Timeout => "The provider did not answer in time".into(),
        EgressFailure::Unreachable => "The provider could not be reached".into(),
    }
}

fn target_message(error: &TargetError) -> String {
    error.to_string()
}
