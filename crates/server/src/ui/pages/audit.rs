//! `/audit`: the organization's audit log, newest first, a page at a time (admins only,
//! as in the JSON API).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::auth::Caller;
use crate::state::AppState;
use crate::ui::auth::Session;
use crate::ui::render::{Layout, failure, forbidden, html};

const PAGE_SIZE: u32 = 50;

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    entries: Vec<EntryRow>,
    /// The `before` cursor of the next (older) page, when there may be one.
    older: Option<i64>,
    first_page: bool,
}

struct EntryRow {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    resource: String,
    status: String,
    details: String,
}

#[derive(Deserialize)]
pub struct PageQuery {
    before: Option<i64>,
}

/// `GET /audit?before=<seq>`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<PageQuery>,
) -> Response {
    let caller = Caller(session.principal.clone());
    if caller
        .require_admin(&state, "audit.read", "audit-log")
        .await
        .is_err()
    {
        return forbidden(&session, "Only administrators can read the audit log.");
    }
    let org = session.principal.org_id;
    let entries = match state.store.list_audit(org, PAGE_SIZE, query.before).await {
        Ok(entries) => entries,
        Err(error) => return failure(&session, error.into()),
    };
    let older = (entries.len() == PAGE_SIZE as usize)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    let entries = entries
        .into_iter()
        .map(|e| EntryRow {
            seq: e.seq,
            at: e.at.to_string(),
            actor: e.actor,
            action: e.action,
            resource: e.resource,
            status: e.status,
            details: match &e.details {
                serde_json::Value::Object(map) if map.is_empty() => String::new(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            },
        })
        .collect();
    let page = AuditPage {
        layout: Layout::new(&session, "audit", "Audit log"),
        entries,
        older,
        first_page: query.before.is_none(),
    };
    html(StatusCode::OK, &page)
}
