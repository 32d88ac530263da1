//! `/settings/ai`, the AI tab: the default provider and model (which one is in force and
//! why), and every provider with its effective models.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use switchboard_core::config::{effective_models, enabled_models};
use switchboard_core::defaults::{DefaultSource, Fallback};
use switchboard_core::records::ProviderRecord;
use switchboard_store::ValidationRecord;

use crate::error::ApiResult;
use crate::routes::defaults::{InForce, in_force, set_defaults};
use crate::state::AppState;
use crate::ui::auth::Session;
use crate::ui::forms::SessionForm;
use crate::ui::pages::Done;
use crate::ui::render::{FormError, Layout, done, failure, html, status_of};
use crate::ui::validation::ValidationView;

#[derive(Template)]
#[template(path = "ai.html")]
struct AiPage {
    layout: Layout,
    in_force: String,
    source: &'static str,
    explanation: String,
    /// Providers that can be the default (enabled, with enabled models).
    groups: Vec<ModelGroup>,
    rows: Vec<ProviderRow>,
    error: Option<FormError>,
}

/// One provider's choosable models: an `<option>` of the provider select and an
/// `<optgroup>` of the model select (the script narrows the model list to it).
struct ModelGroup {
    provider: String,
    selected: bool,
    models: Vec<ModelOption>,
}

struct ModelOption {
    name: String,
    selected: bool,
}

/// A row of the `#providers` table.
pub struct ProviderRow {
    pub provider: String,
    pub enabled: bool,
    pub models: Vec<ModelState>,
    /// The last connection validation; `None` until one ran.
    pub validation: Option<ValidationView>,
}

pub struct ModelState {
    pub name: String,
    pub enabled: bool,
}

impl ProviderRow {
    pub fn of(record: &ProviderRecord) -> Self {
        let models = effective_models(record.provider, &record.config, &record.overrides)
            .into_iter()
            .map(|(name, toggle)| ModelState {
                enabled: toggle["enabled"].as_bool().unwrap_or(true),
                name,
            })
            .collect();
        Self {
            provider: record.provider.as_str().to_owned(),
            enabled: record.enabled,
            models,
            validation: None,
        }
    }

    /// Attaches the provider's last validation, if any of `validations` is its.
    pub fn with_validation(mut self, validations: &[ValidationRecord]) -> Self {
        self.validation = validations
            .iter()
            .find(|v| v.provider.as_str() == self.provider)
            .map(ValidationView::of);
        self
    }
}

/// `GET /settings/ai`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<Done>,
) -> Response {
    let layout = Layout::new(&session, "ai", "AI settings").with_notice(query.done.as_deref());
    render(&state, &session, layout, None, None).await
}

/// `POST /settings/ai/defaults`: admins only; errors are shown on the page.
pub async fn save_defaults(State(state): State<AppState>, form: SessionForm) -> Response {
    let caller = match form.admin(&state, "defaults.update", "llm-defaults").await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let provider = form.fields.text("provider");
    let model = form.fields.text("model");
    match set_defaults(&state, &caller, provider, model).await {
        Ok(_) => done("/settings/ai", "defaults"),
        Err(error) => {
            let status = status_of(&error.0);
            let layout = Layout::new(&form.session, "ai", "AI settings");
            let shown = FormError::from_port(&error.0);
            let choice = Some((provider.to_owned(), model.to_owned()));
            let mut response = render(&state, &form.session, layout, Some(shown), choice).await;
            *response.status_mut() = status;
            response
        }
    }
}

/// Renders the page; `choice` preselects what the admin just tried to save.
async fn render(
    state: &AppState,
    session: &Session,
    layout: Layout,
    error: Option<FormError>,
    choice: Option<(String, String)>,
) -> Response {
    match load(state, session, layout, error, choice).await {
        Ok(page) => html(StatusCode::OK, &page),
        Err(error) => failure(session, error),
    }
}

async fn load(
    state: &AppState,
    session: &Session,
    layout: Layout,
    error: Option<FormError>,
    choice: Option<(String, String)>,
) -> ApiResult<AiPage> {
    let org = session.principal.org_id;
    let current = in_force(state, org).await?;
    let providers = state.store.list_providers(org).await?;
    let validations = state.store.list_validations(org).await?;
    let (provider, model) =
        choice.unwrap_or_else(|| (current.provider.as_str().to_owned(), current.model.clone()));
    Ok(AiPage {
        layout,
        in_force: format!("{} / {}", current.provider, current.model),
        source: current.source.as_str(),
        explanation: explain(&current),
        groups: groups(&providers, &provider, &model),
        rows: providers
            .iter()
            .map(|p| ProviderRow::of(p).with_validation(&validations))
            .collect(),
        error,
    })
}

/// The choosable providers and models, with the current choice selected.
fn groups(providers: &[ProviderRecord], provider: &str, model: &str) -> Vec<ModelGroup> {
    providers
        .iter()
        .filter(|p| p.enabled)
        .filter_map(|p| {
            let names = enabled_models(p.provider, &p.config, &p.overrides);
            let selected = p.provider.as_str() == provider;
            let models: Vec<ModelOption> = names
                .into_iter()
                .map(|name| ModelOption {
                    selected: selected && name == model,
                    name,
                })
                .collect();
            (!models.is_empty()).then(|| ModelGroup {
                provider: p.provider.as_str().to_owned(),
                selected,
                models,
            })
        })
        .collect()
}

/// Says where the default in force comes from, and why the organization's own choice is
/// not in force when it is not.
fn explain(current: &InForce) -> String {
    if current.source == DefaultSource::Organization {
        let by = current
            .stored
            .as_ref()
            .map(|d| format!(" by {} at {}", d.updated_by, d.updated_at))
            .unwrap_or_default();
        return format!("Chosen by your organization{by}.");
    }
    match (&current.stored, current.fallback) {
        (Some(stored), Some(reason)) => format!(
            "The system default applies: your organization chose {} / {}, but {}.",
            stored.provider,
            stored.model,
            reason_text(reason)
        ),
        _ => "The system default applies: your organization has not chosen a default.".to_owned(),
    }
}

fn reason_text(reason: Fallback) -> &'static str {
    match reason {
        Fallback::NotSet => "no default is set",
        Fallback::ProviderMissing => "that provider was deleted",
        Fallback::ProviderDisabled => "that provider is disabled",
        Fallback::ModelNotEnabled => "that model is not enabled for the provider",
    }
}
