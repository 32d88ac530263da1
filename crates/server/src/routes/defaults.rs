//! `/v1/llm-providers/defaults`: the organization's default provider and model, and which
//! default is actually in force.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::config::enabled_models;
use switchboard_core::defaults::{DefaultSource, Fallback, ProviderView, check_stored_default};
use switchboard_core::records::{DefaultsRecord, ProviderRecord};
use switchboard_core::{PortError, ProviderType};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::routes::object_envelope;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultsBody {
    provider: String,
    model: String,
}

struct Enabled<'a>(&'a ProviderRecord);

impl ProviderView for Enabled<'_> {
    fn enabled(&self) -> bool {
        self.0.enabled
    }
    fn offers(&self, model: &str) -> bool {
        enabled_models(self.0.provider, &self.0.config, &self.0.overrides)
            .iter()
            .any(|m| m == model)
    }
}

pub async fn get(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let org = caller.0.org_id;
    let stored = state.store.get_defaults(org).await?;
    let providers = state.store.list_providers(org).await?;
    Ok(object_envelope(defaults_view(
        &state,
        stored.as_ref(),
        &providers,
    )))
}

pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> ApiResult<Response> {
    caller
        .require_admin(&state, "defaults.update", "llm-defaults")
        .await?;
    let body: DefaultsBody = body.parse()?;
    let org = caller.0.org_id;
    let provider: ProviderType = body
        .provider
        .parse()
        .map_err(|_| PortError::provider_not_found(&body.provider))?;
    let record = state
        .store
        .get_provider(org, provider)
        .await?
        .ok_or_else(|| PortError::provider_not_found(provider.as_str()))?;
    if !record.enabled {
        return Err(PortError::provider_disabled(provider.as_str()).into());
    }
    if !Enabled(&record).offers(&body.model) {
        return Err(PortError::model_not_enabled(&body.model, provider.as_str()).into());
    }
    let stored = state
        .store
        .put_defaults(org, &caller.actor(), provider, &body.model)
        .await?;
    let providers = state.store.list_providers(org).await?;
    Ok(object_envelope(defaults_view(
        &state,
        Some(&stored),
        &providers,
    )))
}

/// The default in force, where it comes from, and (when it differs) the organization's
/// stored choice with the reason it is not in force.
fn defaults_view(
    state: &AppState,
    stored: Option<&DefaultsRecord>,
    providers: &[ProviderRecord],
) -> Value {
    let lookup = |p: ProviderType| providers.iter().find(|r| r.provider == p).map(Enabled);
    let check = check_stored_default(stored.map(|d| (d.provider, d.model.as_str())), lookup);
    if let (Ok(()), Some(d)) = (check, stored) {
        return json!({
            "provider": d.provider,
            "model": d.model,
            "source": DefaultSource::Organization.as_str(),
            "createdAt": d.created_at,
            "createdBy": d.created_by,
            "updatedAt": d.updated_at,
            "updatedBy": d.updated_by,
        });
    }
    let reason = check.err().unwrap_or(Fallback::NotSet);
    json!({
        "provider": state.settings.system_default_provider,
        "model": state.settings.system_default_model,
        "source": DefaultSource::System.as_str(),
        "organizationDefault": stored.map(|d| json!({
            "provider": d.provider,
            "model": d.model,
            "notInForceBecause": reason.as_str(),
            "updatedAt": d.updated_at,
            "updatedBy": d.updated_by,
        })),
    })
}
