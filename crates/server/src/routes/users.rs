//! `/v1/users` (admins: create, list, read, change role or disabled, delete) and
//! `POST /v1/auth/access_token`.
//!
//! The last-admin rule lives in the store (it must hold under concurrent writes); a change
//! that would break it answers 409. Every change bumps the organization in the change log,
//! so the user's cached tokens are dropped on every replica.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::records::User;
use switchboard_core::{ErrorName, PortError, Role, SecretValue, UserId};
use switchboard_store::{NewUser, UserChange};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::routes::{list_envelope, object_envelope};
use crate::state::AppState;

/// Access tokens from client credentials live this long.
pub const ACCESS_TOKEN_TTL_SECONDS: u64 = 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUserBody {
    email: String,
    role: Role,
    password: Option<SecretValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessTokenBody {
    #[serde(rename = "clientId")]
    client_id: String,
    #[serde(rename = "clientSecret")]
    client_secret: SecretValue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchUserBody {
    role: Option<Role>,
    disabled: Option<bool>,
}

/// `GET /v1/users`: the organization's users by email.
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require_admin(&state, "user.list", "users").await?;
    let users = state.store.list_users(caller.0.org_id).await?;
    Ok(list_envelope(users.iter().map(user_view).collect(), None))
}

/// `GET /v1/users/{id}`.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller
        .require_admin(&state, "user.read", &resource(&id))
        .await?;
    let user = find_user(&state, &caller, &id).await?;
    Ok(object_envelope(user_view(&user)))
}

/// `PATCH /v1/users/{id}` with `{"role"?, "disabled"?}`.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    caller
        .require_admin(&state, "user.update", &resource(&id))
        .await?;
    let body: PatchUserBody = body.parse()?;
    let change = UserChange {
        role: body.role,
        disabled: body.disabled,
    };
    let user = update_user(&state, &caller, &id, change).await?;
    Ok(object_envelope(user_view(&user)))
}

/// `DELETE /v1/users/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller
        .require_admin(&state, "user.delete", &resource(&id))
        .await?;
    delete_user(&state, &caller, &id).await?;
    Ok(Json(json!({ "ok": true })).into_response())
}

/// Changes a user's role and/or disabled flag. Shared by the JSON API and the web UI; the
/// caller must be an admin.
pub async fn update_user(
    state: &AppState,
    caller: &Caller,
    id: &str,
    change: UserChange,
) -> ApiResult<User> {
    if change == UserChange::default() {
        return Err(PortError::invalid_request("Give role, disabled or both").into());
    }
    let user = parse_user_id(id)?;
    let updated = state
        .store
        .update_user(caller.0.org_id, &caller.actor(), user, change)
        .await
        .map_err(|e| not_found_as_user(e, id))?;
    Ok(updated)
}

/// Deletes a user (tokens, sessions and credentials with them; their invocation records
/// stay). Shared by the JSON API and the web UI; the caller must be an admin.
pub async fn delete_user(state: &AppState, caller: &Caller, id: &str) -> ApiResult<User> {
    let user = parse_user_id(id)?;
    let deleted = state
        .store
        .delete_user(caller.0.org_id, &caller.actor(), user)
        .await
        .map_err(|e| not_found_as_user(e, id))?;
    Ok(deleted)
}

/// A user of the caller's organization by id; a foreign or malformed id is 404 like a
/// missing one.
pub async fn find_user(state: &AppState, caller: &Caller, id: &str) -> ApiResult<User> {
    let user = parse_user_id(id)?;
    state
        .store
        .get_user(caller.0.org_id, user)
        .await?
        .ok_or_else(|| user_not_found(id).into())
}

fn parse_user_id(id: &str) -> Result<UserId, PortError> {
    id.parse().map_err(|_| user_not_found(id))
}

fn not_found_as_user(error: switchboard_store::StoreError, id: &str) -> crate::error::ApiError {
    match error {
        switchboard_store::StoreError::NotFound => user_not_found(id).into(),
        other => other.into(),
    }
}

fn user_not_found(id: &str) -> PortError {
    PortError::new(ErrorName::NotFound, format!("User '{id}' was not found"))
}

fn resource(id: &str) -> String {
    format!("user:{id}")
}

/// A user as the API shows them (never credentials).
pub fn user_view(user: &User) -> Value {
    json!({
        "id": user.id,
        "email": user.email,
        "role": user.role,
        "disabled": user.disabled,
        "createdAt": user.created_at,
    })
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> ApiResult<Response> {
    caller.require_admin(&state, "user.create", "users").await?;
    let body: CreateUserBody = body.parse()?;
    let email = check_email(&body.email)?;
    let created = state
        .store
        .create_user(
            caller.0.org_id,
            &caller.actor(),
            &email,
            body.role,
            body.password.as_ref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(new_user_json(&created))).into_response())
}

/// The one response that carries a token and client secret: shown once, never again.
pub fn new_user_json(created: &NewUser) -> serde_json::Value {
    json!({
        "ok": true,
        "user": {
            "id": created.user.id,
            "email": created.user.email,
            "role": created.user.role,
            "createdAt": created.user.created_at,
        },
        "token": created.token.token.expose(),
        "clientId": created.credentials.client_id,
        "clientSecret": created.credentials.client_secret.expose(),
    })
}

pub async fn access_token(State(state): State<AppState>, body: JsonBody) -> ApiResult<Response> {
    let body: AccessTokenBody = body.parse()?;
    let issued = state
        .store
        .exchange_client_credentials(
            &body.client_id,
            body.client_secret.expose(),
            ACCESS_TOKEN_TTL_SECONDS,
        )
        .await?
        .ok_or_else(|| PortError::new(ErrorName::Unauthorized, "Invalid client credentials"))?;
    Ok(Json(json!({
        "ok": true,
        "accessToken": issued.token.expose(),
        "expiresIn": issued.expires_in.unwrap_or(ACCESS_TOKEN_TTL_SECONDS),
        "tokenType": "Bearer",
    }))
    .into_response())
}

/// A pragmatic email check: one `@`, something on both sides, no spaces, at most 254
/// characters. Stored lowercased so uniqueness is case-insensitive.
pub fn check_email(raw: &str) -> Result<String, PortError> {
    let email = switchboard_core::names::normalize(raw)
        .map_err(|e| {
            PortError::invalid_request(format!("email {e}")).with_detail("field", "email")
        })?
        .to_lowercase();
    let valid = email.len() <= 254
        && !email.contains(char::is_whitespace)
        && matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if valid {
        Ok(email)
    } else {
        Err(PortError::invalid_request("email is not a valid address")
            .with_detail("field", "email"))
    }
}
