//! `/v1/llm-providers` and `/v1/llm-providers/{provider}`.

use axum::extract::{Path, State};

use crate::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard_core::config::{
    effective_models, merge_config, merge_overrides, prune_overrides, validate_config,
    validate_overrides,
};
use switchboard_core::records::{Overrides, ProviderRecord};
use switchboard_core::{ErrorName, PortError, ProviderType};
use switchboard_store::{ProviderWrite, StoreError};

use crate::auth::Caller;
use crate::egress_check::check_resolved_urls;
use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::routes::{list_envelope, object_envelope};
use crate::state::AppState;

/// The Port create-or-connect body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    provider: String,
    config: Option<Map<String, Value>>,
    overrides: Option<Overrides>,
    enabled: Option<bool>,
}

/// The Port update body: every field optional, merged into the stored provider.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    config: Option<Map<String, Value>>,
    overrides: Option<Overrides>,
    enabled: Option<bool>,
}

#[derive(Deserialize)]
pub struct SaveQuery {
    validate_connection: Option<bool>,
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let records = state.store.list_providers(caller.0.org_id).await?;
    let views = records.iter().map(provider_view).collect();
    Ok(list_envelope(views, None))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(provider): Path<String>,
) -> ApiResult<Response> {
    let provider = parse_path_type(&provider)?;
    let record = state
        .store
        .get_provider(caller.0.org_id, provider)
        .await?
        .ok_or_else(|| PortError::provider_not_found(provider.as_str()))?;
    Ok(object_envelope(provider_view(&record)))
}

pub async fn create(
    State(state): State<AppState>,
    Query(query): Query<SaveQuery>,
    caller: Caller,
    body: JsonBody,
) -> ApiResult<Response> {
    caller
        .require_admin(&state, "provider.create", "llm-provider")
        .await?;
    let body: CreateBody = body.parse()?;
    let provider: ProviderType =
        body.provider
            .parse()
            .map_err(|e: switchboard_core::provider::UnknownProviderType| {
                PortError::invalid_config(e.to_string()).with_detail("field", "provider")
            })?;
    let validate = query.validate_connection.unwrap_or(false);
    let (record, created) = create_provider(
        &state,
        &caller,
        provider,
        body.config,
        body.overrides,
        body.enabled,
        validate,
    )
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, object_envelope(provider_view(&record))).into_response())
}

pub async fn update(
    State(state): State<AppState>,
    Query(query): Query<SaveQuery>,
    caller: Caller,
    Path(provider): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    let resource = format!("llm-provider:{provider}");
    caller
        .require_admin(&state, "provider.update", &resource)
        .await?;
    let body: UpdateBody = body.parse()?;
    let provider = parse_path_type(&provider)?;
    let patch = ProviderPatch {
        config: body.config,
        overrides: body.overrides,
        enabled: body.enabled,
    };
    let validate = query.validate_connection.unwrap_or(false);
    let record = update_provider(&state, &caller, provider, patch, validate).await?;
    Ok(object_envelope(provider_view(&record)))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(provider): Path<String>,
) -> ApiResult<Response> {
    let resource = format!("llm-provider:{provider}");
    caller
        .require_admin(&state, "provider.delete", &resource)
        .await?;
    let provider = parse_path_type(&provider)?;
    delete_provider(&state, &caller, provider).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A change to a stored provider, with the JSON API's PUT semantics: absent parts keep
/// their value, `config` and `overrides.models` merge key by key (`null` removes).
#[derive(Default)]
pub struct ProviderPatch {
    pub config: Option<Map<String, Value>>,
    pub overrides: Option<Overrides>,
    pub enabled: Option<bool>,
}

/// Connects (or replaces) a provider; the flag says whether it was created. Shared by the
/// JSON API and the web UI so both apply the same rules. The caller must be an admin.
pub async fn create_provider(
    state: &AppState,
    caller: &Caller,
    provider: ProviderType,
    config: Option<Map<String, Value>>,
    overrides: Option<Overrides>,
    enabled: Option<bool>,
    validate: bool,
) -> ApiResult<(ProviderRecord, bool)> {
    let config = match (provider, config) {
        (_, Some(config)) => config,
        (ProviderType::Managed, None) => Map::new(),
        (_, None) => {
            return Err(PortError::invalid_config("config is required")
                .with_detail("field", "config")
                .into());
        }
    };
    let write = ProviderWrite {
        provider,
        enabled: enabled.unwrap_or(true),
        config,
        overrides: overrides.unwrap_or_default(),
        expected_revision: None,
    };
    save(state, caller, write, validate).await
}

/// How often a PUT merges again after losing a race with another write of the same
/// provider. Each loss means another write went through, so this is only reached under a
/// sustained stream of writes to one provider.
const MERGE_ATTEMPTS: usize = 64;

/// Applies `patch` to the stored provider and saves the result. Shared by the JSON API and
/// the web UI. The caller must be an admin.
///
/// Validation (host-name resolution, optionally a call to every model) must not run under
/// the store's write lock, so the write is conditional on the revision that was merged
/// into; when another write came first, the patch is merged into that and checked again.
pub async fn update_provider(
    state: &AppState,
    caller: &Caller,
    provider: ProviderType,
    patch: ProviderPatch,
    validate: bool,
) -> ApiResult<ProviderRecord> {
    for _ in 0..MERGE_ATTEMPTS {
        let current = state
            .store
            .get_provider(caller.0.org_id, provider)
            .await?
            .ok_or_else(|| PortError::provider_not_found(provider.as_str()))?;
        let write = patch.merged_into(current);
        check(state, caller, &write, validate).await?;
        match state
            .store
            .put_provider(caller.0.org_id, &caller.actor(), write)
            .await
        {
            Err(StoreError::Stale) => continue,
            saved => return Ok(saved?.0),
        }
    }
    Err(PortError::new(
        ErrorName::Conflict,
        "The provider kept changing while this update was applied; try again",
    )
    .into())
}

impl ProviderPatch {
    /// The provider `current` would become with this patch, to be stored only if `current`
    /// is still what is stored.
    fn merged_into(&self, current: ProviderRecord) -> ProviderWrite {
        let provider = current.provider;
        let mut write = ProviderWrite {
            provider,
            enabled: self.enabled.unwrap_or(current.enabled),
            config: current.config,
            overrides: current.overrides,
            expected_revision: Some(current.revision),
        };
        if let Some(config) = &self.config {
            merge_config(&mut write.config, config);
            // Overrides of models the new catalog no longer lists would make the stored
            // provider invalid; they go with their models. Overrides in this request are
            // merged afterwards and still validated.
            prune_overrides(provider, &write.config, &mut write.overrides);
        }
        if let Some(overrides) = &self.overrides {
            merge_overrides(&mut write.overrides, overrides);
        }
        write
    }
}

/// Deletes a provider; `managed` is built in and can only be disabled. The caller must be
/// an admin.
pub async fn delete_provider(
    state: &AppState,
    caller: &Caller,
    provider: ProviderType,
) -> ApiResult<()> {
    if provider == ProviderType::Managed {
        return Err(PortError::invalid_request(
            "The managed provider is built in and cannot be deleted; disable it instead",
        )
        .into());
    }
    let deleted = state
        .store
        .delete_provider(caller.0.org_id, &caller.actor(), provider)
        .await?;
    if !deleted {
        return Err(PortError::provider_not_found(provider.as_str()).into());
    }
    Ok(())
}

/// Validates the whole provider as it would be stored (and, when asked, tests every enabled
/// model against the provider), then stores it with its audit entry. Any failure saves
/// nothing.
async fn save(
    state: &AppState,
    caller: &Caller,
    write: ProviderWrite,
    validate: bool,
) -> ApiResult<(ProviderRecord, bool)> {
    check(state, caller, &write, validate).await?;
    let saved = state
        .store
        .put_provider(caller.0.org_id, &caller.actor(), write)
        .await?;
    Ok(saved)
}

/// Every rule the provider must pass before it is stored: its type's schema, its overrides,
/// the egress policy for the addresses its URLs resolve to, and (when asked) a real call to
/// every enabled model.
async fn check(
    state: &AppState,
    caller: &Caller,
    write: &ProviderWrite,
    validate: bool,
) -> ApiResult<()> {
    let egress = &state.settings.egress;
    validate_config(write.provider, &write.config, egress)?;
    validate_overrides(write.provider, &write.config, &write.overrides)?;
    check_resolved_urls(egress, &write.config).await?;
    if validate {
        crate::validation::test_connection(state, caller.0.org_id, write).await?;
    }
    Ok(())
}

/// A provider type from the path; anything else is a provider this organization cannot have.
fn parse_path_type(raw: &str) -> ApiResult<ProviderType> {
    raw.parse()
        .map_err(|_| PortError::provider_not_found(raw).into())
}

/// The Port `ProviderRecord` wire shape, with the computed `effectiveModels`.
pub fn provider_view(record: &ProviderRecord) -> Value {
    json!({
        "provider": record.provider,
        "enabled": record.enabled,
        "config": record.config,
        "overrides": { "models": record.overrides.models },
        "effectiveModels": effective_models(record.provider, &record.config, &record.overrides),
        "createdAt": record.created_at,
        "createdBy": record.created_by,
        "updatedAt": record.updated_at,
        "updatedBy": record.updated_by,
    })
}
