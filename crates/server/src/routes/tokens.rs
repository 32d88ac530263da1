//! `/v1/tokens`: everyone's own API tokens — listed (never with their values), created with
//! an optional name and lifetime (the value shown once), revoked. Admins may list and
//! revoke the tokens of any user of their organization.
//!
//! Who may touch which token is decided here, in [`owner_for_listing`] and
//! [`revoke_token`]; the web UI calls the same functions. A member naming someone else's
//! token gets 404 like a missing one (as with invocations), and the attempt is audited.

use axum::Json;
use axum::extract::{Path, State};

use crate::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{ErrorName, PortError, UserId};
use switchboard_store::{IssuedToken, StoreError, TokenMeta, TokenSpec};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::routes::list_envelope;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(rename = "userId")]
    user_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: Option<String>,
    #[serde(rename = "expiresInDays")]
    expires_in_days: Option<u32>,
}

/// `GET /v1/tokens` (`?userId=` for admins).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> ApiResult<Response> {
    let owner = owner_for_listing(&state, &caller, query.user_id.as_deref()).await?;
    let tokens = state.store.list_tokens(caller.0.org_id, owner).await?;
    Ok(list_envelope(tokens.iter().map(token_view).collect(), None))
}

/// `POST /v1/tokens` with `{"name"?, "expiresInDays"?}`: a token for the caller.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> ApiResult<Response> {
    let body: CreateBody = body.parse_or_default()?;
    let spec = TokenSpec {
        name: body.name,
        expires_in_days: body.expires_in_days,
    };
    let (meta, issued) = create_token(&state, &caller, &spec).await?;
    Ok((StatusCode::CREATED, Json(created_json(&meta, &issued))).into_response())
}

/// `DELETE /v1/tokens/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    revoke_token(&state, &caller, &id).await?;
    Ok(Json(json!({ "ok": true })).into_response())
}

/// Whose tokens a listing shows: the caller's own, or (admins only) those of the user
/// named by `userId`. A member asking for someone else is refused and audited; an unknown
/// or foreign user is 404.
pub async fn owner_for_listing(
    state: &AppState,
    caller: &Caller,
    user_id: Option<&str>,
) -> ApiResult<UserId> {
    let own = caller.0.user_id;
    let Some(requested) = user_id.filter(|u| *u != own.to_string()) else {
        return Ok(own);
    };
    caller
        .require_admin(state, "token.list", &format!("user:{requested}"))
        .await?;
    let user = crate::routes::users::find_user(state, caller, requested).await?;
    Ok(user.id)
}

/// Issues a token for the caller. Shared by the JSON API and the web UI.
pub async fn create_token(
    state: &AppState,
    caller: &Caller,
    spec: &TokenSpec,
) -> ApiResult<(TokenMeta, IssuedToken)> {
    let created = state
        .store
        .create_token(caller.0.org_id, &caller.actor(), caller.0.user_id, spec)
        .await?;
    Ok(created)
}

/// Revokes a token of the caller, or (admins) of anyone in the organization. A member
/// naming another user's token is audited as denied and answered like a missing token.
/// Shared by the JSON API and the web UI.
pub async fn revoke_token(state: &AppState, caller: &Caller, id: &str) -> ApiResult<TokenMeta> {
    let org = caller.0.org_id;
    let meta = state
        .store
        .get_token(org, id)
        .await?
        .ok_or_else(|| token_not_found(id))?;
    if meta.user_id != caller.0.user_id && !caller.0.is_admin() {
        let resource = format!("token:{}", meta.id);
        caller
            .audit_denied(state, "token.revoke", &resource, "not the token's owner")
            .await?;
        return Err(token_not_found(id).into());
    }
    state
        .store
        .revoke_token(org, &caller.actor(), id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => token_not_found(id).into(),
            other => ApiError::from(other),
        })
}

fn token_not_found(id: &str) -> PortError {
    PortError::new(ErrorName::NotFound, format!("Token '{id}' was not found"))
}

/// A token as listings show it: never its value.
pub fn token_view(meta: &TokenMeta) -> Value {
    json!({
        "id": meta.id,
        "name": meta.name,
        "prefix": meta.prefix,
        "kind": meta.kind,
        "userId": meta.user_id,
        "createdAt": meta.created_at,
        "expiresAt": meta.expires_at,
        "lastUsedAt": meta.last_used_at,
    })
}

/// The one response that carries a new token's value: shown once, never again.
pub fn created_json(meta: &TokenMeta, issued: &IssuedToken) -> Value {
    json!({ "ok": true, "result": token_view(meta), "token": issued.token.expose() })
}
