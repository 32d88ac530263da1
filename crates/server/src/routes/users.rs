//! `POST /v1/users` and `POST /v1/auth/access_token`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use switchboard_core::{ErrorName, PortError, Role, SecretValue};
use switchboard_store::NewUser;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::JsonBody;
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
    let email = raw.trim().to_ascii_lowercase();
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
