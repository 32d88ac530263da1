//! `/settings/data`: how long interaction content is kept, and whether it is stored.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use switchboard_core::records::AiSettings;

use crate::routes::settings::update_settings;
use crate::state::AppState;
use crate::ui::auth::Session;
use crate::ui::forms::SessionForm;
use crate::ui::pages::Done;
use crate::ui::render::{FormError, Layout, done, failure, html, status_of};

#[derive(Template)]
#[template(path = "data.html")]
struct DataPage {
    layout: Layout,
    retention_days: String,
    store_content: bool,
    max_days: u32,
    error: Option<FormError>,
}

/// `GET /settings/data`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<Done>,
) -> Response {
    let settings = match state.store.get_ai_settings(session.principal.org_id).await {
        Ok(settings) => settings,
        Err(error) => return failure(&session, error.into()),
    };
    let layout = Layout::new(&session, "data", "Data controls").with_notice(query.done.as_deref());
    let page = view(&state, layout, &settings, None);
    html(StatusCode::OK, &page)
}

/// `POST /settings/data`.
pub async fn save(State(state): State<AppState>, form: SessionForm) -> Response {
    let caller = match form
        .admin(&state, "ai_settings.update", "ai-settings")
        .await
    {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let raw_days = form.fields.text("retentionDays");
    let store = form.fields.checked("storeInteractionData");
    let result = match raw_days.parse::<u32>() {
        Ok(days) => update_settings(&state, &caller, Some(days), Some(store))
            .await
            .map_err(|e| (status_of(&e.0), FormError::from_port(&e.0))),
        Err(_) => Err((
            StatusCode::BAD_REQUEST,
            FormError::new(
                "Retention must be a whole number of days.",
                Some("retentionDays"),
            ),
        )),
    };
    match result {
        Ok(_) => done("/settings/data", "data"),
        Err((status, error)) => {
            let layout = Layout::new(&form.session, "data", "Data controls");
            let posted = AiSettings {
                retention_days: 0,
                store_interaction_data: store,
            };
            let mut page = view(&state, layout, &posted, Some(error));
            page.retention_days = raw_days.to_owned();
            html(status, &page)
        }
    }
}

fn view(
    state: &AppState,
    layout: Layout,
    settings: &AiSettings,
    error: Option<FormError>,
) -> DataPage {
    DataPage {
        layout,
        retention_days: settings.retention_days.to_string(),
        store_content: settings.store_interaction_data,
        max_days: state.settings.max_retention_days,
        error,
    }
}
