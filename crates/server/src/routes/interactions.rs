//! Reading AI interactions: `GET /v1/ai/invocations` (members see their own, admins the
//! organization's), `GET /v1/ai/invocations/{id}`, polling `GET /v1/ai/invoke/{id}`, and
//! `GET /v1/quota/ai-invocations`. (`POST /v1/ai/invoke` is an inference surface: see
//! `inference::invoke`.) Another member's record answers 404, exactly like a missing one.

use axum::Json;
use axum::extract::{Path, State};

use crate::extract::Query;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchboard_core::records::Timestamp;
use switchboard_core::{OrgId, PortError, Principal, UserId};
use switchboard_store::{InvocationCursor, InvocationFilter, InvocationRecord, InvocationStatus};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::interactions::inflight::Progress;
use crate::interactions::view::record_json;
use crate::routes::{PageQuery, list_envelope, object_envelope};
use crate::state::AppState;

/// `GET /v1/ai/invocations`, newest first.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> ApiResult<Response> {
    let org = caller.0.org_id;
    let only_user = (!caller.0.is_admin()).then_some(caller.0.user_id);
    let cursor = page.cursor(InvocationCursor::decode)?;
    let records = state
        .store
        .list_invocations(org, InvocationFilter::user(only_user), page.limit(), cursor)
        .await?;
    let next = page.next(&records, |r| InvocationCursor::after(r).encode());
    let retention = retention_days(&state, org).await;
    let now = Timestamp::now();
    let items = records
        .iter()
        .map(|r| record_json(r, retention, now))
        .collect();
    Ok(list_envelope(items, next))
}

/// `GET /v1/ai/invocations/{id}`
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let record = visible_record(&state, &caller.0, &id).await?;
    let retention = retention_days(&state, caller.0.org_id).await;
    Ok(object_envelope(record_json(
        &record,
        retention,
        Timestamp::now(),
    )))
}

/// `GET /v1/ai/invoke/{id}`: `In Progress` until the invocation ends, then its outcome.
pub async fn poll(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let principal = &caller.0;
    if let Some(pending) = state.interactions.pending(principal.org_id, &id) {
        if !may_see(principal, pending.user_id) {
            return Err(not_found());
        }
        let result = match pending.progress {
            Progress::Running => json!({ "status": "In Progress", "invocationIdentifier": id }),
            Progress::Finished {
                status,
                error_name,
                message,
            } => poll_result(&id, status, error_name.as_deref(), message.as_deref()),
        };
        return Ok(object_envelope(result));
    }
    let Some(record) = state.store.get_invocation(principal.org_id, &id).await? else {
        return running_elsewhere(&state, principal, &id).await;
    };
    if !may_see(principal, record.user_id) {
        return Err(not_found());
    }
    let retention = retention_days(&state, principal.org_id).await;
    let view = record_json(&record, retention, Timestamp::now());
    let message = view["content"]["response"].as_str();
    Ok(object_envelope(poll_result(
        &id,
        record.status,
        record.error_name.as_deref(),
        message,
    )))
}

/// An invocation running on another replica (its running row is in the database).
async fn running_elsewhere(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> ApiResult<Response> {
    match state.store.running_invocation(principal.org_id, id).await? {
        Some(running) if may_see(principal, running.user_id) => Ok(object_envelope(
            json!({ "status": "In Progress", "invocationIdentifier": id }),
        )),
        _ => Err(not_found()),
    }
}

fn poll_result(
    id: &str,
    status: InvocationStatus,
    error: Option<&str>,
    message: Option<&str>,
) -> Value {
    let mut result = json!({ "status": status.as_str(), "invocationIdentifier": id });
    if let Some(error) = error {
        result["error"] = json!(error);
    }
    if let Some(message) = message {
        result["message"] = json!(message);
    }
    result
}

/// `GET /v1/quota/ai-invocations`
pub async fn quota(State(state): State<AppState>, caller: Caller) -> Response {
    match state.interactions.monthly_usage(caller.0.org_id).await {
        Ok(usage) => Json(json!({ "ok": true, "monthlyQuotaUsage": usage })).into_response(),
        Err(error) => {
            tracing::warn!(%error, "cannot read the monthly quota");
            crate::error::ApiError(switchboard_core::PortError::new(
                switchboard_core::ErrorName::Unavailable,
                "The usage counters are unavailable; retry shortly",
            ))
            .into_response()
        }
    }
}

async fn visible_record(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> ApiResult<InvocationRecord> {
    state
        .store
        .get_invocation(principal.org_id, id)
        .await?
        .filter(|record| may_see(principal, record.user_id))
        .ok_or_else(not_found)
}

/// Admins see every record of their organization; members only their own.
pub(crate) fn may_see(principal: &Principal, owner: UserId) -> bool {
    principal.is_admin() || principal.user_id == owner
}

fn not_found() -> crate::error::ApiError {
    PortError::not_found("The invocation").into()
}

/// How long content is shown: the organization's retention under the operator's ceiling.
pub(crate) async fn retention_days(state: &AppState, org: OrgId) -> u32 {
    let max = state.settings.max_retention_days;
    match state.snapshots.org(org).await {
        Ok(snapshot) => snapshot.config.settings.retention_days.min(max),
        Err(error) => {
            tracing::warn!(%error, "cannot read the organization's retention; using the ceiling");
            max
        }
    }
}
