//! `/invocations`: AI interactions newest first, filtered by provider, model, user and
//! status, a page at a time; `/invocations/{id}`: one record with its content while it is
//! kept. Visibility is the JSON API's rule (`routes::interactions::may_see`): admins see
//! the organization's records, members only their own — a member's user filter is always
//! themselves, and another user's record answers 404 like a missing one.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use switchboard_core::records::Timestamp;
use switchboard_core::{ProviderType, UserId};
use switchboard_store::{InvocationCursor, InvocationFilter, InvocationRecord, InvocationStatus};

use crate::error::ApiError;
use crate::interactions::view::record_json;
use crate::routes::interactions::{may_see, retention_days};
use crate::state::AppState;
use crate::ui::auth::Session;
use crate::ui::render::{Layout, error_page, failure, html, shown_time};

const PAGE_SIZE: u32 = 50;

#[derive(Template)]
#[template(path = "invocations.html")]
struct ListPage {
    layout: Layout,
    filters: Filters,
    providers: Vec<Choice>,
    /// Admins only: the organization's users for the user filter.
    users: Vec<UserOption>,
    rows: Vec<Row>,
    /// The next (older) page's link, when there may be one.
    older: Option<String>,
    first_page: bool,
}

/// The filters as given, echoed back into the form.
#[derive(Deserialize, Default)]
pub struct Filters {
    #[serde(default)]
    provider: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    cursor: String,
}

/// An `<option>` with a fixed value.
struct Choice {
    value: &'static str,
    selected: bool,
}

struct UserOption {
    id: String,
    email: String,
    selected: bool,
}

/// One table row.
struct Row {
    href: String,
    at: String,
    at_shown: String,
    user: String,
    surface: String,
    provider: String,
    model: String,
    failed: bool,
    status: &'static str,
    error: String,
    input_tokens: u64,
    output_tokens: u64,
    total_ms: u64,
}

/// `GET /invocations?provider=&model=&user=&status=&cursor=`.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(filters): Query<Filters>,
) -> Response {
    let filter = match store_filter(&session, &filters) {
        Ok(filter) => filter,
        Err(message) => return bad_filter(&session, message),
    };
    let cursor = match filters.cursor.as_str() {
        "" => None,
        text => match InvocationCursor::decode(text) {
            Some(cursor) => Some(cursor),
            None => return bad_filter(&session, "That page link is not valid."),
        },
    };
    match load_list(&state, &session, filters, filter, cursor).await {
        Ok(page) => html(StatusCode::OK, &page),
        Err(error) => failure(&session, error),
    }
}

async fn load_list(
    state: &AppState,
    session: &Session,
    filters: Filters,
    filter: InvocationFilter,
    cursor: Option<InvocationCursor>,
) -> Result<ListPage, ApiError> {
    let org = session.principal.org_id;
    let first_page = cursor.is_none();
    let records = state
        .store
        .list_invocations(org, filter, PAGE_SIZE, cursor)
        .await?;
    let emails = emails(state, session).await?;
    let older = (records.len() == PAGE_SIZE as usize)
        .then(|| records.last().map(|r| page_link(&filters, r)))
        .flatten();
    let users = match session.principal.is_admin() {
        true => user_options(&emails, &filters.user),
        false => Vec::new(),
    };
    Ok(ListPage {
        layout: Layout::new(session, "invocations", "Invocations"),
        providers: ProviderType::ALL
            .iter()
            .map(|p| Choice {
                value: p.as_str(),
                selected: p.as_str() == filters.provider,
            })
            .collect(),
        users,
        rows: records.iter().map(|r| row(r, &emails)).collect(),
        older,
        first_page,
        filters,
    })
}

/// The store filter from the query; members are always limited to themselves.
fn store_filter(session: &Session, filters: &Filters) -> Result<InvocationFilter, &'static str> {
    let provider = match filters.provider.as_str() {
        "" => None,
        text => Some(
            text.parse::<ProviderType>()
                .map_err(|_| "There is no such provider type.")?,
        ),
    };
    let status = match filters.status.as_str() {
        "" => None,
        "Completed" => Some(InvocationStatus::Completed),
        "Failed" => Some(InvocationStatus::Failed),
        _ => return Err("The status filter must be Completed or Failed."),
    };
    let user = match (session.principal.is_admin(), filters.user.as_str()) {
        (false, _) => Some(session.principal.user_id),
        (true, "") => None,
        (true, text) => Some(
            text.parse::<UserId>()
                .map_err(|_| "The user filter is not a user id.")?,
        ),
    };
    let model = Some(filters.model.trim().to_owned()).filter(|m| !m.is_empty());
    Ok(InvocationFilter {
        user,
        provider,
        model,
        status,
    })
}

/// User id → email for the "User" column: the organization's users for admins, just the
/// member themselves otherwise (they see nobody else's records).
async fn emails(state: &AppState, session: &Session) -> Result<HashMap<UserId, String>, ApiError> {
    let principal = &session.principal;
    if !principal.is_admin() {
        return Ok(HashMap::from([(
            principal.user_id,
            principal.email.clone(),
        )]));
    }
    let users = state.store.list_users(principal.org_id).await?;
    Ok(users.into_iter().map(|u| (u.id, u.email)).collect())
}

fn user_options(emails: &HashMap<UserId, String>, chosen: &str) -> Vec<UserOption> {
    let mut options: Vec<UserOption> = emails
        .iter()
        .map(|(id, email)| UserOption {
            id: id.to_string(),
            email: email.clone(),
            selected: id.to_string() == chosen,
        })
        .collect();
    options.sort_by(|a, b| a.email.cmp(&b.email));
    options
}

fn row(record: &InvocationRecord, emails: &HashMap<UserId, String>) -> Row {
    Row {
        href: detail_href(&record.id),
        at: record.created_at.to_string(),
        at_shown: shown_time(&record.created_at.to_string()),
        user: user_label(emails, record.user_id),
        surface: record.surface.clone(),
        provider: record
            .provider
            .map(|p| p.as_str())
            .unwrap_or("—")
            .to_owned(),
        model: record.model.clone().unwrap_or_else(|| "—".to_owned()),
        failed: record.status == InvocationStatus::Failed,
        status: record.status.as_str(),
        error: record.error_name.clone().unwrap_or_default(),
        input_tokens: record.input_tokens,
        output_tokens: record.output_tokens,
        total_ms: record.total_ms,
    }
}

/// Who made a record: their email, or "deleted user" once the user is gone (records keep
/// the user id they were made under; the user's row does not outlive them).
fn user_label(emails: &HashMap<UserId, String>, user: UserId) -> String {
    emails
        .get(&user)
        .cloned()
        .unwrap_or_else(|| DELETED_USER.to_owned())
}

/// What the invocation pages call the author of a deleted user's records.
const DELETED_USER: &str = "deleted user";

/// The next page's URL: the same filters, continuing after `last`.
fn page_link(filters: &Filters, last: &InvocationRecord) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in [
        ("provider", &filters.provider),
        ("model", &filters.model),
        ("user", &filters.user),
        ("status", &filters.status),
    ] {
        if !value.is_empty() {
            query.append_pair(key, value);
        }
    }
    query.append_pair("cursor", &InvocationCursor::after(last).encode());
    format!("/invocations?{}", query.finish())
}

/// `/invocations/{id}` with the id percent-encoded: ids are chosen by callers of the
/// invoke API and may hold `/`, `?` or `#`.
fn detail_href(id: &str) -> String {
    let mut href = String::from("/invocations/");
    for byte in id.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                href.push(char::from(byte))
            }
            _ => href.push_str(&format!("%{byte:02X}")),
        }
    }
    href
}

fn bad_filter(session: &Session, message: &str) -> Response {
    error_page(
        Layout::new(session, "invocations", "Invocations"),
        StatusCode::BAD_REQUEST,
        message,
    )
}

#[derive(Template)]
#[template(path = "invocation.html")]
struct DetailPage {
    layout: Layout,
    id: String,
    row: Row,
    first_token_ms: String,
    finished_at: String,
    request_id: String,
    labels: String,
    tools: String,
    /// `(prompt, response)` while the content is kept and within retention.
    content: Option<(String, String)>,
}

/// `GET /invocations/{id}`.
pub async fn detail(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let principal = &session.principal;
    let record = match state.store.get_invocation(principal.org_id, &id).await {
        Ok(record) => record.filter(|r| may_see(principal, r.user_id)),
        Err(error) => return failure(&session, error.into()),
    };
    let Some(record) = record else {
        return error_page(
            Layout::new(&session, "invocations", "Not found"),
            StatusCode::NOT_FOUND,
            "There is no such invocation, or it is not yours to see.",
        );
    };
    let emails = match emails(&state, &session).await {
        Ok(emails) => emails,
        Err(error) => return failure(&session, error),
    };
    // The API's own view decides whether content is still shown (kept and in retention).
    let retention = retention_days(&state, principal.org_id).await;
    let view = record_json(&record, retention, Timestamp::now());
    let content = view["content"]["prompt"].as_str().map(|prompt| {
        let response = view["content"]["response"].as_str().unwrap_or("");
        (readable(prompt), response.to_owned())
    });
    let page = DetailPage {
        layout: Layout::new(&session, "invocations", "Invocation"),
        id: record.id.clone(),
        row: row(&record, &emails),
        first_token_ms: record
            .first_token_ms
            .map(|ms| format!("{ms} ms"))
            .unwrap_or_else(|| "—".to_owned()),
        finished_at: shown_time(&record.finished_at.to_string()),
        request_id: record.request_id.clone().unwrap_or_default(),
        labels: serde_json::Value::Object(record.labels.clone()).to_string(),
        tools: record.tools.join(", "),
        content,
    };
    html(StatusCode::OK, &page)
}

/// Prompts are often recorded as the request's JSON; indented, they read far better.
fn readable(prompt: &str) -> String {
    serde_json::from_str::<serde_json::Value>(prompt)
        .ok()
        .filter(|v| v.is_object() || v.is_array())
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| prompt.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_links_encode_the_id() {
        assert_eq!(detail_href("inv-1.a_b~"), "/invocations/inv-1.a_b~");
        assert_eq!(detail_href("a/b?c#d e"), "/invocations/a%2Fb%3Fc%23d%20e");
    }

    #[test]
    fn json_prompts_are_indented_and_text_stays() {
        assert_eq!(readable("plain text"), "plain text");
        assert_eq!(readable("42"), "42");
        assert_eq!(readable(r#"{"a":1}"#), "{\n  \"a\": 1\n}");
    }
}
