//! `/tokens` ("My tokens", everyone): create a token (its value shown once, on the page the
//! form answers with, never again), list them with last use and expiry, revoke. Admins may
//! open `/tokens?user=<id>` to see and revoke another user's. The rules are the JSON API's
//! (`routes::tokens`): the same functions decide who may see and revoke what.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use switchboard_core::UserId;
use switchboard_core::records::Timestamp;
use switchboard_store::{TokenMeta, TokenSpec};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::tokens::{create_token, owner_for_listing, revoke_token};
use crate::state::AppState;
use crate::ui::auth::Session;
use crate::ui::forms::SessionForm;
use crate::ui::render::{FormError, Layout, failure, html, shown_time, status_of};

/// The lifetimes the form offers, in days (0: until revoked).
const LIFETIMES: [u32; 5] = [0, 7, 30, 90, 365];

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    layout: Layout,
    /// Whose tokens these are, when not the signed-in user's own (admins only).
    other_user: Option<OtherUser>,
    tokens: Vec<TokenRow>,
    lifetimes: Vec<u32>,
    /// The value of the token just created: on this one page, once.
    created: Option<String>,
    error: Option<FormError>,
}

struct OtherUser {
    id: String,
    email: String,
}

struct TokenRow {
    id: String,
    name: String,
    prefix: String,
    kind: String,
    created: String,
    created_shown: String,
    last_used: String,
    expires: String,
    expired: bool,
}

#[derive(Deserialize, Default)]
pub struct TokensQuery {
    #[serde(default)]
    user: String,
    done: Option<String>,
}

/// `GET /tokens` (`?user=` for admins).
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<TokensQuery>,
) -> Response {
    let layout = Layout::new(&session, "tokens", "My tokens").with_notice(query.done.as_deref());
    let view = View {
        user: query.user,
        created: None,
        error: None,
    };
    render(&state, &session, layout, view, StatusCode::OK).await
}

/// `POST /tokens` with `name` and `expiresInDays`: a token for the signed-in user.
pub async fn create(State(state): State<AppState>, form: SessionForm) -> Response {
    let caller = Caller(form.session.principal.clone());
    let days = form.fields.text("expiresInDays");
    let expires_in_days = match days {
        "" | "0" => None,
        text => match text.parse::<u32>() {
            Ok(days) => Some(days),
            Err(_) => Some(0),
        },
    };
    let spec = TokenSpec {
        name: Some(form.fields.text("name").to_owned()),
        expires_in_days,
    };
    let layout = Layout::new(&form.session, "tokens", "My tokens");
    match create_token(&state, &caller, &spec).await {
        Ok((_, issued)) => {
            let view = View {
                user: String::new(),
                created: Some(issued.token.expose().to_owned()),
                error: None,
            };
            render(&state, &form.session, layout, view, StatusCode::CREATED).await
        }
        Err(error) => {
            let view = View {
                user: String::new(),
                created: None,
                error: Some(FormError::from_port(&error.0)),
            };
            render(&state, &form.session, layout, view, status_of(&error.0)).await
        }
    }
}

/// `POST /tokens/{id}/revoke` (`user` says which listing to return to).
pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: SessionForm,
) -> Response {
    let caller = Caller(form.session.principal.clone());
    let user = form.fields.text("user").to_owned();
    match revoke_token(&state, &caller, &id).await {
        Ok(_) => Redirect::to(&listing_path(&user, "token-revoked")).into_response(),
        Err(error) => {
            let layout = Layout::new(&form.session, "tokens", "My tokens");
            let view = View {
                user,
                created: None,
                error: Some(FormError::from_port(&error.0)),
            };
            render(&state, &form.session, layout, view, status_of(&error.0)).await
        }
    }
}

/// Where a revocation returns: the same listing, with its notice.
fn listing_path(user: &str, notice: &str) -> String {
    match user.parse::<UserId>() {
        Ok(user) => format!("/tokens?user={user}&done={notice}"),
        Err(_) => format!("/tokens?done={notice}"),
    }
}

/// What the page shows beyond the listing.
struct View {
    user: String,
    created: Option<String>,
    error: Option<FormError>,
}

async fn render(
    state: &AppState,
    session: &Session,
    layout: Layout,
    view: View,
    status: StatusCode,
) -> Response {
    match load(state, session, layout, view).await {
        Ok(page) => html(status, &page),
        Err(error) => failure(session, error),
    }
}

async fn load(
    state: &AppState,
    session: &Session,
    layout: Layout,
    view: View,
) -> Result<TokensPage, ApiError> {
    let caller = Caller(session.principal.clone());
    let requested = Some(view.user.as_str()).filter(|u| !u.is_empty());
    let owner = owner_for_listing(state, &caller, requested).await?;
    let other_user = match owner == session.principal.user_id {
        true => None,
        false => state
            .store
            .get_user(session.principal.org_id, owner)
            .await?
            .map(|u| OtherUser {
                id: u.id.to_string(),
                email: u.email,
            }),
    };
    let tokens = state
        .store
        .list_tokens(session.principal.org_id, owner)
        .await?;
    let now = Timestamp::now();
    Ok(TokensPage {
        layout,
        other_user,
        tokens: tokens.iter().map(|t| row(t, now)).collect(),
        lifetimes: LIFETIMES.to_vec(),
        created: view.created,
        error: view.error,
    })
}

fn row(token: &TokenMeta, now: Timestamp) -> TokenRow {
    let shown = |at: Option<Timestamp>, none: &str| {
        at.map(|t| shown_time(&t.to_string()))
            .unwrap_or_else(|| none.to_owned())
    };
    let created = token.created_at.to_string();
    TokenRow {
        id: token.id.clone(),
        name: token.name.clone().unwrap_or_default(),
        prefix: token.prefix.clone(),
        kind: token.kind.clone(),
        created_shown: shown_time(&created),
        created,
        last_used: shown(token.last_used_at, "never"),
        expires: shown(token.expires_at, "never"),
        expired: token.expires_at.is_some_and(|at| at <= now),
    }
}
