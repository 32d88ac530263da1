//! `/secrets`: the organization's named credentials. Values go in and never come back: the
//! page lists names, descriptions and times only. Admins only, as in the JSON API.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use switchboard_core::SecretValue;
use switchboard_store::SecretUpdate;

use crate::auth::Caller;
use crate::routes::secrets::{create_secret, delete_secret, update_secret};
use crate::state::AppState;
use crate::ui::auth::Session;
use crate::ui::forms::SessionForm;
use crate::ui::pages::Done;
use crate::ui::render::{FormError, Layout, done, failure, forbidden, html, status_of};

#[derive(Template)]
#[template(path = "secrets.html")]
struct SecretsPage {
    layout: Layout,
    secrets: Vec<SecretRow>,
    /// The create form's name and description after an error (never the value).
    name: String,
    description: String,
    error: Option<FormError>,
}

struct SecretRow {
    name: String,
    description: String,
    updated: String,
}

/// `GET /secrets`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<Done>,
) -> Response {
    let caller = Caller(session.principal.clone());
    if caller
        .require_admin(&state, "secret.list", "secrets")
        .await
        .is_err()
    {
        return forbidden(
            &session,
            "Only administrators can see the organization's secrets.",
        );
    }
    let layout = Layout::new(&session, "secrets", "Secrets").with_notice(query.done.as_deref());
    render(&state, &session, layout, Blank::default()).await
}

/// What the create form shows again after an error.
#[derive(Default)]
struct Blank {
    name: String,
    description: String,
    error: Option<FormError>,
}

/// `POST /secrets`: creates a secret.
pub async fn create(State(state): State<AppState>, form: SessionForm) -> Response {
    let caller = match form.admin(&state, "secret.create", "secrets").await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let name = form.fields.text("secretName");
    let value = SecretValue::new(form.fields.get("secretValue").unwrap_or("").to_owned());
    let description = Some(form.fields.text("description")).filter(|d| !d.is_empty());
    match create_secret(&state, &caller, name, value, description).await {
        Ok(_) => done("/secrets", "secret-created"),
        Err(error) => {
            let blank = Blank {
                name: name.to_owned(),
                description: description.unwrap_or("").to_owned(),
                error: Some(FormError::from_port(&error.0)),
            };
            rerender(&state, &form.session, blank, status_of(&error.0)).await
        }
    }
}

/// `POST /secrets/{name}`: replaces a secret's value.
pub async fn replace(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SessionForm,
) -> Response {
    let resource = format!("secret:{name}");
    let caller = match form.admin(&state, "secret.update", &resource).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let value = form.fields.get("secretValue").unwrap_or("").to_owned();
    let update = SecretUpdate {
        value: Some(SecretValue::new(value)),
        description: None,
    };
    match update_secret(&state, &caller, &name, update).await {
        Ok(_) => done("/secrets", "secret-replaced"),
        Err(error) => row_error(&state, &form.session, &name, &error.0).await,
    }
}

/// `POST /secrets/{name}/delete`: refused while a provider still names the secret.
pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SessionForm,
) -> Response {
    let resource = format!("secret:{name}");
    let caller = match form.admin(&state, "secret.delete", &resource).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    match delete_secret(&state, &caller, &name).await {
        Ok(()) => done("/secrets", "secret-deleted"),
        Err(error) => row_error(&state, &form.session, &name, &error.0).await,
    }
}

async fn row_error(
    state: &AppState,
    session: &Session,
    name: &str,
    error: &switchboard_core::PortError,
) -> Response {
    let mut shown = FormError::from_port(error);
    shown.message = format!("{}: {}", name, shown.message);
    shown.field = Some("row".to_owned());
    let blank = Blank {
        error: Some(shown),
        ..Blank::default()
    };
    rerender(state, session, blank, status_of(error)).await
}

async fn rerender(
    state: &AppState,
    session: &Session,
    blank: Blank,
    status: StatusCode,
) -> Response {
    let layout = Layout::new(session, "secrets", "Secrets");
    let mut response = render(state, session, layout, blank).await;
    if response.status().is_success() {
        *response.status_mut() = status;
    }
    response
}

async fn render(state: &AppState, session: &Session, layout: Layout, blank: Blank) -> Response {
    let secrets = match state.store.list_secrets(session.principal.org_id).await {
        Ok(secrets) => secrets,
        Err(error) => return failure(session, error.into()),
    };
    let secrets = secrets
        .into_iter()
        .map(|s| SecretRow {
            name: s.name,
            description: s.description.unwrap_or_default(),
            updated: s.updated_at.to_string(),
        })
        .collect();
    let page = SecretsPage {
        layout,
        secrets,
        name: blank.name,
        description: blank.description,
        error: blank.error,
    };
    html(StatusCode::OK, &page)
}
