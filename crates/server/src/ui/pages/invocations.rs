//! `GET /invocations`: a placeholder until invocation records exist.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

use crate::ui::auth::Session;
use crate::ui::render::{Layout, html};

#[derive(Template)]
#[template(path = "invocations.html")]
struct InvocationsPage {
    layout: Layout,
}

pub async fn page(session: Session) -> Response {
    let layout = Layout::new(&session, "invocations", "Invocations");
    html(StatusCode::OK, &InvocationsPage { layout })
}
