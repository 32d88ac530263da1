//! `GET /v1/audit-log`: the organization's audit entries, newest first (admins only).

use axum::extract::State;

use crate::extract::Query;
use axum::response::Response;
use serde_json::json;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::routes::{PageQuery, list_envelope};
use crate::state::AppState;

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> ApiResult<Response> {
    caller
        .require_admin(&state, "audit.read", "audit-log")
        .await?;
    let before = page.cursor(|c| c.parse::<i64>().ok())?;
    let entries = state
        .store
        .list_audit(caller.0.org_id, page.limit(), before)
        .await?;
    let next = page.next(&entries, |e| e.seq.to_string());
    Ok(list_envelope(
        entries.iter().map(|e| json!(e)).collect(),
        next,
    ))
}
