//! `/v1/organization/ai-settings`: how long interaction content is kept, and whether it is
//! stored at all.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use switchboard_core::PortError;
use switchboard_core::records::{AiSettings, AiSettingsChange};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::routes::object_envelope;
use crate::state::AppState;

/// Absent fields keep their current value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    #[serde(rename = "retentionDays")]
    retention_days: Option<u32>,
    #[serde(rename = "storeInteractionData")]
    store_interaction_data: Option<bool>,
}

pub async fn get(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let settings = state.store.get_ai_settings(caller.0.org_id).await?;
    Ok(object_envelope(json!(settings)))
}

pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> ApiResult<Response> {
    caller
        .require_admin(&state, "ai_settings.update", "ai-settings")
        .await?;
    let body: SettingsBody = body.parse()?;
    let saved = update_settings(
        &state,
        &caller,
        body.retention_days,
        body.store_interaction_data,
    )
    .await?;
    Ok(object_envelope(json!(saved)))
}

/// Checks and applies a change to the data controls; absent values keep theirs. Shared by
/// the JSON API and the web UI. The caller must be an admin.
pub async fn update_settings(
    state: &AppState,
    caller: &Caller,
    retention_days: Option<u32>,
    store_interaction_data: Option<bool>,
) -> ApiResult<AiSettings> {
    let org = caller.0.org_id;
    if let Some(days) = retention_days {
        let max = state.settings.max_retention_days;
        if !(1..=max).contains(&days) {
            return Err(PortError::invalid_request(format!(
                "retentionDays must be between 1 and {max}"
            ))
            .with_detail("field", "retentionDays")
            .into());
        }
    }
    // Merged with the stored values inside the store's write transaction: a merge here,
    // after a separate read, would let two concurrent partial PUTs lose one of them.
    let change = AiSettingsChange {
        retention_days,
        store_interaction_data,
    };
    let saved = state
        .store
        .put_ai_settings(org, &caller.actor(), change)
        .await?;
    Ok(saved)
}
