//! `/v1/llm-providers/defaults`: the organization's default provider and model, and which
//! default is actually in force.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::config::enabled_models;
use switchboard_core::defaults::{DefaultSource, Fallback, ProviderView, check_stored_default};
use switchboard_core::records::{DefaultsRecord, ProviderRecord};
use switchboard_core::{OrgId, PortError, ProviderType};

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
    let view = in_force(&state, caller.0.org_id).await?;
    Ok(object_envelope(view.to_json()))
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
    let view = set_defaults(&state, &caller, &body.provider, &body.model).await?;
    Ok(object_envelope(view.to_json()))
}

/// Stores the organization's default after checking that the provider exists, is enabled
/// and offers the model; returns the default now in force. Shared by the JSON API and the
/// web UI. The caller must be an admin.
pub async fn set_defaults(
    state: &AppState,
    caller: &Caller,
    provider: &str,
    model: &str,
) -> ApiResult<InForce> {
    let org = caller.0.org_id;
    let provider: ProviderType = provider
        .parse()
        .map_err(|_| PortError::provider_not_found(provider))?;
    let record = state
        .store
        .get_provider(org, provider)
        .await?
        .ok_or_else(|| PortError::provider_not_found(provider.as_str()))?;
    if !record.enabled {
        return Err(PortError::provider_disabled(provider.as_str()).into());
    }
    if !Enabled(&record).offers(model) {
        return Err(PortError::model_not_enabled(model, provider.as_str()).into());
    }
    let stored = state
        .store
        .put_defaults(org, &caller.actor(), provider, model)
        .await?;
    let providers = state.store.list_providers(org).await?;
    Ok(InForce::decide(state, Some(stored), &providers))
}

/// The default in force for an organization, read from the store.
pub async fn in_force(state: &AppState, org: OrgId) -> ApiResult<InForce> {
    let stored = state.store.get_defaults(org).await?;
    let providers = state.store.list_providers(org).await?;
    Ok(InForce::decide(state, stored, &providers))
}

/// The default in force, where it comes from, and (when it differs) the organization's
/// stored choice with the reason it is not in force.
pub struct InForce {
    pub provider: ProviderType,
    pub model: String,
    pub source: DefaultSource,
    /// The organization's stored choice, if any.
    pub stored: Option<DefaultsRecord>,
    /// Why `stored` is not in force; `None` when it is.
    pub fallback: Option<Fallback>,
}

impl InForce {
    fn decide(
        state: &AppState,
        stored: Option<DefaultsRecord>,
        providers: &[ProviderRecord],
    ) -> Self {
        let lookup = |p: ProviderType| providers.iter().find(|r| r.provider == p).map(Enabled);
        let check = check_stored_default(
            stored.as_ref().map(|d| (d.provider, d.model.as_str())),
            lookup,
        );
        match (check, stored) {
            (Ok(()), Some(d)) => Self {
                provider: d.provider,
                model: d.model.clone(),
                source: DefaultSource::Organization,
                stored: Some(d),
                fallback: None,
            },
            (check, stored) => Self {
                provider: state.settings.system_default_provider,
                model: state.settings.system_default_model.clone(),
                source: DefaultSource::System,
                stored,
                fallback: Some(check.err().unwrap_or(Fallback::NotSet)),
            },
        }
    }

    /// The JSON API's view.
    pub fn to_json(&self) -> Value {
        match (&self.fallback, &self.stored) {
            (None, Some(d)) => json!({
                "provider": d.provider,
                "model": d.model,
                "source": DefaultSource::Organization.as_str(),
                "createdAt": d.created_at,
                "createdBy": d.created_by,
                "updatedAt": d.updated_at,
                "updatedBy": d.updated_by,
            }),
            (reason, stored) => json!({
                "provider": self.provider,
                "model": self.model,
                "source": DefaultSource::System.as_str(),
                "organizationDefault": stored.as_ref().map(|d| json!({
                    "provider": d.provider,
                    "model": d.model,
                    "notInForceBecause": reason.unwrap_or(Fallback::NotSet).as_str(),
                    "updatedAt": d.updated_at,
                    "updatedBy": d.updated_by,
                })),
            }),
        }
    }
}
