//! `GET /v1/audit-log`: the organization's audit entries, newest first (admins only).

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use switchboard_core::PortError;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::routes::{list_envelope, page_limit};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct PageQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> ApiResult<Response> {
    caller
        .require_admin(&state, "audit.read", "audit-log")
        .await?;
    let limit = page_limit(page.limit);
    let before = page
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| PortError::invalid_request("cursor is invalid"))
        })
        .transpose()?;
    let entries = state
        .store
        .list_audit(caller.0.org_id, limit, before)
        .await?;
    let next = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.seq.to_string()))
        .flatten();
    Ok(list_envelope(
        entries.iter().map(|e| json!(e)).collect(),
        next,
    ))
}
