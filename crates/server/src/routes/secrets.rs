//! `/v1/organization/secrets`: named, encrypted credentials. Values are write-only.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::config::referenced_secrets;
use switchboard_core::records::SecretMeta;
use switchboard_core::{ErrorName, PortError, SecretValue};
use switchboard_store::SecretUpdate;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::routes::{list_envelope, object_envelope};
use crate::state::AppState;

/// Largest accepted secret value (a service-account private key is ~2 KB).
const MAX_SECRET_BYTES: usize = 64 * 1024;
const MAX_DESCRIPTION_CHARS: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[serde(rename = "secretName")]
    name: String,
    #[serde(rename = "secretValue")]
    value: SecretValue,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(rename = "secretValue")]
    value: Option<SecretValue>,
    #[serde(default, deserialize_with = "present_or_null")]
    description: Option<Option<String>>,
}

/// Tells an absent `description` (keep) from an explicit `null` (clear).
fn present_or_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller
        .require_admin(&state, "secret.list", "secrets")
        .await?;
    let secrets = state.store.list_secrets(caller.0.org_id).await?;
    Ok(list_envelope(
        secrets.iter().map(secret_view).collect(),
        None,
    ))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    caller
        .require_admin(&state, "secret.read", &resource(&name))
        .await?;
    let meta = state
        .store
        .get_secret_meta(caller.0.org_id, &name)
        .await?
        .ok_or_else(|| secret_not_found(&name))?;
    Ok(object_envelope(secret_view(&meta)))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> ApiResult<Response> {
    caller
        .require_admin(&state, "secret.create", "secrets")
        .await?;
    let body: CreateBody = body.parse()?;
    let meta = create_secret(
        &state,
        &caller,
        &body.name,
        body.value,
        body.description.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, object_envelope(secret_view(&meta))).into_response())
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    caller
        .require_admin(&state, "secret.update", &resource(&name))
        .await?;
    let body: PatchBody = body.parse()?;
    let update = SecretUpdate {
        value: body.value,
        description: body.description,
    };
    let meta = update_secret(&state, &caller, &name, update).await?;
    Ok(object_envelope(secret_view(&meta)))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    caller
        .require_admin(&state, "secret.delete", &resource(&name))
        .await?;
    delete_secret(&state, &caller, &name).await?;
    Ok(axum::Json(json!({ "ok": true })).into_response())
}

/// Checks and stores a new secret. Shared by the JSON API and the web UI. The caller must be
/// an admin.
pub async fn create_secret(
    state: &AppState,
    caller: &Caller,
    name: &str,
    value: SecretValue,
    description: Option<&str>,
) -> ApiResult<SecretMeta> {
    check_name(name)?;
    let value = check_value(value)?;
    check_description(description)?;
    let meta = state
        .store
        .create_secret(caller.0.org_id, &caller.actor(), name, value, description)
        .await?;
    Ok(meta)
}

/// Checks and applies a change to a secret. Shared by the JSON API and the web UI. The
/// caller must be an admin.
pub async fn update_secret(
    state: &AppState,
    caller: &Caller,
    name: &str,
    update: SecretUpdate,
) -> ApiResult<SecretMeta> {
    let update = SecretUpdate {
        value: update.value.map(check_value).transpose()?,
        description: update.description,
    };
    if let Some(Some(description)) = &update.description {
        check_description(Some(description))?;
    }
    let meta = state
        .store
        .update_secret(caller.0.org_id, &caller.actor(), name, update)
        .await?
        .ok_or_else(|| secret_not_found(name))?;
    Ok(meta)
}

/// Deletes a secret. A secret that a provider still names would break that provider
/// silently, so deleting it is refused with the providers listed. Shared by the JSON API
/// and the web UI. The caller must be an admin.
pub async fn delete_secret(state: &AppState, caller: &Caller, name: &str) -> ApiResult<()> {
    let org = caller.0.org_id;
    let users: Vec<Value> = state
        .store
        .list_providers(org)
        .await?
        .iter()
        .filter(|p| {
            referenced_secrets(p.provider, &p.config)
                .iter()
                .any(|s| s == name)
        })
        .map(|p| json!(p.provider))
        .collect();
    if !users.is_empty() {
        return Err(PortError::new(
            ErrorName::Conflict,
            format!("Secret '{name}' is used by a provider; change the provider first"),
        )
        .with_detail("providers", users)
        .into());
    }
    if !state
        .store
        .delete_secret(org, &caller.actor(), name)
        .await?
    {
        return Err(secret_not_found(name).into());
    }
    Ok(())
}

fn resource(name: &str) -> String {
    format!("secret:{name}")
}

fn secret_view(meta: &SecretMeta) -> Value {
    json!(meta)
}

fn secret_not_found(name: &str) -> PortError {
    PortError::new(
        ErrorName::NotFound,
        format!("Secret '{name}' was not found"),
    )
}

/// Port's rule: 1–100 characters of `[A-Za-z0-9_-]`.
fn check_name(name: &str) -> Result<(), PortError> {
    let valid = (1..=100).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(PortError::invalid_request(
            "secretName must be 1-100 characters of letters, digits, '-' and '_'",
        )
        .with_detail("field", "secretName"))
    }
}

fn check_value(value: SecretValue) -> Result<SecretValue, PortError> {
    if value.is_empty() || value.len() > MAX_SECRET_BYTES {
        return Err(
            PortError::invalid_request("secretValue must be between 1 byte and 64 KiB")
                .with_detail("field", "secretValue"),
        );
    }
    Ok(value)
}

fn check_description(description: Option<&str>) -> Result<(), PortError> {
    match description {
        Some(d) if d.chars().count() > MAX_DESCRIPTION_CHARS => Err(PortError::invalid_request(
            "description must be at most 200 characters",
        )
        .with_detail("field", "description")),
        _ => Ok(()),
    }
}
