//! `/users` (admins): the organization's users — change a role, disable or enable, delete —
//! through the same functions as `PATCH` / `DELETE /v1/users/{id}`, so the last-admin rule,
//! the audit entries and the immediate end of tokens and sessions are the API's.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use switchboard_core::records::User;
use switchboard_core::{PortError, Role};
use switchboard_store::UserChange;

use crate::auth::Caller;
use crate::routes::users::{delete_user, update_user};
use crate::state::AppState;
use crate::ui::auth::Session;
use crate::ui::forms::SessionForm;
use crate::ui::pages::Done;
use crate::ui::render::{FormError, Layout, done, failure, forbidden, html, shown_time, status_of};

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<UserRow>,
    error: Option<FormError>,
}

struct UserRow {
    id: String,
    email: String,
    is_admin: bool,
    disabled: bool,
    created: String,
    created_shown: String,
    /// The signed-in admin's own row (labelled "you").
    is_self: bool,
}

/// `GET /users`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<Done>,
) -> Response {
    let caller = Caller(session.principal.clone());
    if caller
        .require_admin(&state, "user.list", "users")
        .await
        .is_err()
    {
        return forbidden(&session, "Only administrators can manage users.");
    }
    let layout = Layout::new(&session, "users", "Users").with_notice(query.done.as_deref());
    render(&state, &session, layout, None, StatusCode::OK).await
}

/// `POST /users/{id}/role` with `role`.
pub async fn set_role(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: SessionForm,
) -> Response {
    let role = match form.fields.text("role").parse::<Role>() {
        Ok(role) => role,
        Err(_) => {
            let error = PortError::invalid_request("Choose admin or member");
            return row_error(&state, &form.session, &id, &error).await;
        }
    };
    let change = UserChange {
        role: Some(role),
        disabled: None,
    };
    change_user(&state, &form, &id, change, "user-role").await
}

/// `POST /users/{id}/disabled` with `disabled` = `true` | `false`.
pub async fn set_disabled(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: SessionForm,
) -> Response {
    let disabled = form.fields.text("disabled") == "true";
    let change = UserChange {
        role: None,
        disabled: Some(disabled),
    };
    let notice = if disabled {
        "user-disabled"
    } else {
        "user-enabled"
    };
    change_user(&state, &form, &id, change, notice).await
}

/// `POST /users/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: SessionForm,
) -> Response {
    let caller = match form
        .admin(&state, "user.delete", &format!("user:{id}"))
        .await
    {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    match delete_user(&state, &caller, &id).await {
        Ok(_) => done("/users", "user-deleted"),
        Err(error) => row_error(&state, &form.session, &id, &error.0).await,
    }
}

async fn change_user(
    state: &AppState,
    form: &SessionForm,
    id: &str,
    change: UserChange,
    notice: &str,
) -> Response {
    let caller = match form
        .admin(state, "user.update", &format!("user:{id}"))
        .await
    {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    match update_user(state, &caller, id, change).await {
        Ok(_) => done("/users", notice),
        Err(error) => row_error(state, &form.session, id, &error.0).await,
    }
}

/// The page again with the refusal (409 for the last admin, 404 for a missing user).
async fn row_error(state: &AppState, session: &Session, id: &str, error: &PortError) -> Response {
    let mut shown = FormError::from_port(error);
    shown.field = Some(id.to_owned());
    let layout = Layout::new(session, "users", "Users");
    render(state, session, layout, Some(shown), status_of(error)).await
}

async fn render(
    state: &AppState,
    session: &Session,
    layout: Layout,
    error: Option<FormError>,
    status: StatusCode,
) -> Response {
    let users = match state.store.list_users(session.principal.org_id).await {
        Ok(users) => users,
        Err(error) => return failure(session, error.into()),
    };
    let users = users.iter().map(|u| row(u, session)).collect();
    html(
        status,
        &UsersPage {
            layout,
            users,
            error,
        },
    )
}

fn row(user: &User, session: &Session) -> UserRow {
    let created = user.created_at.to_string();
    UserRow {
        id: user.id.to_string(),
        email: user.email.clone(),
        is_admin: user.role == Role::Admin,
        disabled: user.disabled,
        created_shown: shown_time(&created),
        created,
        is_self: user.id == session.principal.user_id,
    }
}
