//! `/providers`: every provider type, and one page per type to connect, edit,
//! enable/disable or delete it. Saves go through the JSON API's own functions, so the
//! core's validation errors come back as they would over the API and are shown inline.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};
use switchboard_core::ProviderType;
use switchboard_core::config::catalog_models;
use switchboard_core::records::{Overrides, ProviderRecord};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::routes::providers::{ProviderPatch, create_provider, delete_provider, update_provider};
use crate::state::AppState;
use crate::ui::auth::Session;
use crate::ui::forms::{Fields, SessionForm};
use crate::ui::pages::Done;
use crate::ui::pages::ai::ProviderRow;
use crate::ui::pages::provider_fields::{
    Control, Spec, config_patch, model_lines, shown_value, specs, without_nulls,
};
use crate::ui::render::{FormError, Layout, done, error_page, failure, html, status_of};
use crate::ui::validation::ValidationView;

#[derive(Template)]
#[template(path = "providers.html")]
struct ListPage {
    layout: Layout,
    types: Vec<TypeRow>,
}

struct TypeRow {
    provider: &'static str,
    /// `enabled`, `disabled` or `not connected`.
    status: &'static str,
    connected: bool,
}

/// `GET /providers`.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<Done>,
) -> Response {
    let providers = match state.store.list_providers(session.principal.org_id).await {
        Ok(providers) => providers,
        Err(error) => return failure(&session, error.into()),
    };
    let types = ProviderType::ALL
        .into_iter()
        .map(|p| {
            let record = providers.iter().find(|r| r.provider == p);
            TypeRow {
                provider: p.as_str(),
                status: match record {
                    Some(r) if r.enabled => "enabled",
                    Some(_) => "disabled",
                    None => "not connected",
                },
                connected: record.is_some(),
            }
        })
        .collect();
    let layout = Layout::new(&session, "providers", "Providers").with_notice(query.done.as_deref());
    html(StatusCode::OK, &ListPage { layout, types })
}

#[derive(Template)]
#[template(path = "provider.html")]
struct ProviderPage {
    layout: Layout,
    provider: &'static str,
    connected: bool,
    enabled: bool,
    managed: bool,
    custom_catalog: bool,
    fields: Vec<FieldView>,
    models: Vec<ModelToggle>,
    changed: String,
    /// The last stored connection validation, pass or fail.
    validation: Option<ValidationView>,
    error: Option<FormError>,
}

/// One control of the provider form.
struct FieldView {
    key: &'static str,
    label: &'static str,
    /// `secret`, `text`, `url`, `lines` or `flag`.
    control: &'static str,
    help: &'static str,
    value: String,
    checked: bool,
    options: Vec<SecretOption>,
    error: Option<String>,
}

struct SecretOption {
    name: String,
    selected: bool,
    /// Named by the config but not (or no longer) among the organization's secrets.
    missing: bool,
}

struct ModelToggle {
    name: String,
    enabled: bool,
}

/// What the form shows: the stored provider, or what was just posted (after an error).
enum Source<'a> {
    Stored(Option<&'a ProviderRecord>),
    Posted(&'a Fields),
}

/// `GET /providers/{provider}`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    Query(query): Query<Done>,
) -> Response {
    let Ok(provider) = raw.parse::<ProviderType>() else {
        return unknown_type(&session);
    };
    let layout = layout(&session, provider).with_notice(query.done.as_deref());
    render(&state, &session, layout, provider, None, None).await
}

/// `POST /providers/{provider}`: connects the provider, or saves the whole form over it.
pub async fn save(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: SessionForm,
) -> Response {
    let Ok(provider) = raw.parse::<ProviderType>() else {
        return unknown_type(&form.session);
    };
    let org = form.session.principal.org_id;
    let stored = match state.store.get_provider(org, provider).await {
        Ok(stored) => stored,
        Err(error) => return failure(&form.session, error.into()),
    };
    let resource = format!("llm-provider:{provider}");
    let (action, resource) = match stored {
        Some(_) => ("provider.update", resource.as_str()),
        None => ("provider.create", "llm-provider"),
    };
    let caller = match form.admin(&state, action, resource).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    // "Validate and save" tests every enabled model first (`?validate_connection=true`).
    let validate = form.fields.get("validate") == Some("true");
    let notice = match validate {
        true => "provider-validated",
        false => "provider-saved",
    };
    match apply(
        &state,
        &caller,
        provider,
        stored.as_ref(),
        &form.fields,
        validate,
    )
    .await
    {
        Ok(()) => done(&format!("/providers/{provider}"), notice),
        Err(error) => {
            let status = match &error.field {
                Some(_) => StatusCode::BAD_REQUEST,
                None => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let layout = layout(&form.session, provider);
            let mut response = render(
                &state,
                &form.session,
                layout,
                provider,
                Some(error),
                Some(&form.fields),
            )
            .await;
            if response.status().is_success() {
                *response.status_mut() = status;
            }
            response
        }
    }
}

/// Turns the form into a create or an update through the JSON API's functions.
async fn apply(
    state: &AppState,
    caller: &Caller,
    provider: ProviderType,
    stored: Option<&ProviderRecord>,
    fields: &Fields,
    validate: bool,
) -> Result<(), FormError> {
    let empty = Map::new();
    let stored_config = stored.map(|r| &r.config).unwrap_or(&empty);
    let patch = config_patch(provider, fields, stored_config)?;
    let enabled = Some(fields.checked("enabled"));
    let overrides = model_overrides(provider, fields, stored.is_some());
    let saved = match stored {
        Some(_) => {
            let patch = ProviderPatch {
                config: Some(patch),
                overrides: Some(overrides),
                enabled,
            };
            update_provider(state, caller, provider, patch, validate)
                .await
                .map(drop)
        }
        None => {
            let config = Some(without_nulls(patch));
            create_provider(
                state,
                caller,
                provider,
                config,
                Some(overrides),
                enabled,
                validate,
            )
            .await
            .map(drop)
        }
    };
    saved.map_err(|e| FormError::from_port(&e.0))
}

/// The model checkboxes as overrides: unchecked models are switched off; checked ones lose
/// any override (enabled is the default). Only models of the new catalog are named, so
/// removing a custom model never trips the unknown-model rule.
fn model_overrides(provider: ProviderType, fields: &Fields, update: bool) -> Overrides {
    let catalog: Vec<String> = match provider.has_custom_catalog() {
        true => model_lines(fields.text("models"))
            .into_iter()
            .map(str::to_owned)
            .collect(),
        false => catalog_models(provider, &Map::new()),
    };
    let checked = fields.all("model_enabled");
    let mut models = Map::new();
    for name in fields.all("model_listed") {
        if !catalog.iter().any(|m| m == name) {
            continue;
        }
        match (checked.contains(&name), update) {
            (false, _) => models.insert(name.to_owned(), json!({ "enabled": false })),
            (true, true) => models.insert(name.to_owned(), Value::Null),
            (true, false) => None,
        };
    }
    Overrides { models }
}

/// `POST /providers/{provider}/enabled` with `enabled=true|false`.
pub async fn set_enabled(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: SessionForm,
) -> Response {
    let Ok(provider) = raw.parse::<ProviderType>() else {
        return unknown_type(&form.session);
    };
    let resource = format!("llm-provider:{provider}");
    let caller = match form.admin(&state, "provider.update", &resource).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let enabled = form.fields.get("enabled") == Some("true");
    let patch = ProviderPatch {
        enabled: Some(enabled),
        ..ProviderPatch::default()
    };
    let notice = if enabled {
        "provider-enabled"
    } else {
        "provider-disabled"
    };
    let result = update_provider(&state, &caller, provider, patch, false).await;
    finish(&state, &form.session, provider, result.map(drop), notice).await
}

/// `POST /providers/{provider}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: SessionForm,
) -> Response {
    let Ok(provider) = raw.parse::<ProviderType>() else {
        return unknown_type(&form.session);
    };
    let resource = format!("llm-provider:{provider}");
    let caller = match form.admin(&state, "provider.delete", &resource).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    match delete_provider(&state, &caller, provider).await {
        Ok(()) => done("/providers", "provider-deleted"),
        Err(error) => finish(&state, &form.session, provider, Err(error), "").await,
    }
}

/// After a small action: back to the provider page with a notice, or the page with the
/// error shown.
async fn finish(
    state: &AppState,
    session: &Session,
    provider: ProviderType,
    result: ApiResult<()>,
    notice: &str,
) -> Response {
    match result {
        Ok(()) => done(&format!("/providers/{provider}"), notice),
        Err(error) => {
            let status = status_of(&error.0);
            let shown = FormError::from_port(&error.0);
            let layout = layout(session, provider);
            let mut response = render(state, session, layout, provider, Some(shown), None).await;
            if response.status().is_success() {
                *response.status_mut() = status;
            }
            response
        }
    }
}

fn layout(session: &Session, provider: ProviderType) -> Layout {
    Layout::new(session, "providers", provider.as_str())
}

fn unknown_type(session: &Session) -> Response {
    error_page(
        Layout::new(session, "providers", "Not found"),
        StatusCode::NOT_FOUND,
        "There is no such provider type.",
    )
}

async fn render(
    state: &AppState,
    session: &Session,
    layout: Layout,
    provider: ProviderType,
    error: Option<FormError>,
    posted: Option<&Fields>,
) -> Response {
    match load(state, session, layout, provider, error, posted).await {
        Ok(page) => html(StatusCode::OK, &page),
        Err(error) => failure(session, error),
    }
}

async fn load(
    state: &AppState,
    session: &Session,
    layout: Layout,
    provider: ProviderType,
    error: Option<FormError>,
    posted: Option<&Fields>,
) -> Result<ProviderPage, ApiError> {
    let org = session.principal.org_id;
    let record = state.store.get_provider(org, provider).await?;
    let validation = state
        .store
        .list_validations(org)
        .await?
        .iter()
        .find(|v| v.provider == provider)
        .map(ValidationView::of);
    // Members may not list secrets (the API refuses them too); their form is read-only and
    // shows only the names the config holds.
    let secrets: Vec<String> = match session.principal.is_admin() {
        true => state
            .store
            .list_secrets(org)
            .await?
            .into_iter()
            .map(|s| s.name)
            .collect(),
        false => Vec::new(),
    };
    let source = match posted {
        Some(fields) => Source::Posted(fields),
        None => Source::Stored(record.as_ref()),
    };
    let fields = specs(provider)
        .iter()
        .map(|spec| field_view(spec, &source, &secrets, error.as_ref()))
        .collect();
    Ok(ProviderPage {
        layout,
        provider: provider.as_str(),
        connected: record.is_some(),
        enabled: match &source {
            Source::Posted(fields) => fields.checked("enabled"),
            Source::Stored(record) => record.is_none_or(|r| r.enabled),
        },
        managed: provider == ProviderType::Managed,
        custom_catalog: provider.has_custom_catalog(),
        fields,
        models: model_toggles(provider, record.as_ref()),
        changed: record
            .as_ref()
            .map(|r| format!("Last changed by {} at {}.", r.updated_by, r.updated_at))
            .unwrap_or_default(),
        validation,
        error,
    })
}

fn field_view(
    spec: &Spec,
    source: &Source<'_>,
    secrets: &[String],
    error: Option<&FormError>,
) -> FieldView {
    let (value, checked) = match source {
        Source::Posted(fields) => (
            fields.get(spec.key).unwrap_or("").to_owned(),
            fields.checked(spec.key),
        ),
        Source::Stored(record) => {
            let config = record.map(|r| &r.config);
            let value = config.map(|c| shown_value(spec, c)).unwrap_or_default();
            let checked = config
                .and_then(|c| c.get(spec.key))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            (value, checked)
        }
    };
    let options = match spec.control {
        Control::Secret => secret_options(secrets, &value),
        _ => Vec::new(),
    };
    FieldView {
        key: spec.key,
        label: spec.label,
        control: match spec.control {
            Control::Secret => "secret",
            Control::Text => "text",
            Control::Url => "url",
            Control::Models | Control::Headers => "lines",
            Control::Flag => "flag",
        },
        help: spec.help,
        value,
        checked,
        options,
        error: error
            .filter(|e| e.is_about(spec.key))
            .map(|e| e.message.clone()),
    }
}

/// The organization's secrets, plus the current name when it is not among them (so that
/// saving never silently drops it).
fn secret_options(secrets: &[String], current: &str) -> Vec<SecretOption> {
    let mut options: Vec<SecretOption> = secrets
        .iter()
        .map(|name| SecretOption {
            selected: name == current,
            name: name.clone(),
            missing: false,
        })
        .collect();
    if !current.is_empty() && !secrets.iter().any(|s| s == current) {
        options.push(SecretOption {
            name: current.to_owned(),
            selected: true,
            missing: true,
        });
    }
    options
}

/// The stored provider's models with their switches; a new provider's built-in catalog,
/// all on.
fn model_toggles(provider: ProviderType, record: Option<&ProviderRecord>) -> Vec<ModelToggle> {
    match record {
        Some(r) => ProviderRow::of(r)
            .models
            .into_iter()
            .map(|m| ModelToggle {
                name: m.name,
                enabled: m.enabled,
            })
            .collect(),
        None => catalog_models(provider, &Map::new())
            .into_iter()
            .map(|name| ModelToggle {
                name,
                enabled: true,
            })
            .collect(),
    }
}
