//! Turning templates into responses: the shared page frame, error pages, redirects.

use askama::Template;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Redirect, Response};
use switchboard_core::PortError;

use crate::error::ApiError;
use crate::ui::auth::Session;
use crate::ui::validation::ValidationView;

/// What the page frame (header, navigation, sign-out) needs.
pub struct Layout {
    pub title: String,
    /// The navigation entry to mark as current.
    pub nav: &'static str,
    /// False on the sign-in page: no navigation, no sign-out.
    pub signed_in: bool,
    pub email: String,
    pub is_admin: bool,
    /// The session's CSRF token, for the forms on the page (sign-out included).
    pub csrf: String,
    /// A success message after a redirect (fixed texts chosen by key, never request text).
    pub notice: Option<&'static str>,
}

impl Layout {
    pub fn new(session: &Session, nav: &'static str, title: &str) -> Self {
        Self {
            title: title.to_owned(),
            nav,
            signed_in: true,
            email: session.principal.email.clone(),
            is_admin: session.principal.is_admin(),
            csrf: session.csrf.clone(),
            notice: None,
        }
    }

    /// The frame of a page shown to someone not signed in.
    pub fn anonymous(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            nav: "",
            signed_in: false,
            email: String::new(),
            is_admin: false,
            csrf: String::new(),
            notice: None,
        }
    }

    /// Shows the notice named by a `?done=` key after a redirect.
    pub fn with_notice(mut self, key: Option<&str>) -> Self {
        self.notice = key.and_then(notice_text);
        self
    }

    pub fn role(&self) -> &'static str {
        if self.is_admin { "admin" } else { "member" }
    }
}

/// The fixed success messages a redirect can ask for.
fn notice_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "defaults" => "Default provider and model saved.",
        "provider-saved" => "Provider saved.",
        "provider-validated" => "Every enabled model answered; provider saved.",
        "provider-enabled" => "Provider enabled.",
        "provider-disabled" => "Provider disabled.",
        "provider-deleted" => "Provider deleted.",
        "secret-created" => "Secret created.",
        "secret-replaced" => "Secret value replaced.",
        "secret-deleted" => "Secret deleted.",
        "data" => "Data controls saved.",
        "user-role" => "Role changed.",
        "user-disabled" => "User disabled; their tokens and sessions no longer work.",
        "user-enabled" => "User enabled.",
        "user-deleted" => "User deleted.",
        "token-revoked" => "Token revoked.",
        _ => return None,
    })
}

/// A stored RFC 3339 instant as people read it (`2026-03-10 23:59:00 UTC`); templates keep
/// the exact value in the `<time datetime>` attribute.
pub fn shown_time(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..19)) {
        (Some(date), Some(time)) if rfc3339.ends_with('Z') => format!("{date} {time} UTC"),
        _ => rfc3339.to_owned(),
    }
}

/// Renders a template as an HTML response with `status`.
pub fn html<T: Template>(status: StatusCode, template: &T) -> Response {
    match template.render() {
        Ok(body) => (status, [(CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(error) => {
            tracing::error!(%error, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// A full error page: the frame plus a heading and one message.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub layout: Layout,
    pub heading: String,
    pub message: String,
}

pub fn error_page(layout: Layout, status: StatusCode, message: &str) -> Response {
    let heading = status.canonical_reason().unwrap_or("Error").to_owned();
    html(
        status,
        &ErrorPage {
            layout,
            heading,
            message: message.to_owned(),
        },
    )
}

/// 403 for a signed-in user who may not do what they asked.
pub fn forbidden(session: &Session, message: &str) -> Response {
    error_page(
        Layout::new(session, "", "Not allowed"),
        StatusCode::FORBIDDEN,
        message,
    )
}

/// An unexpected failure (a store error, say) as a page; the cause was already logged.
pub fn failure(session: &Session, error: ApiError) -> Response {
    let status =
        StatusCode::from_u16(error.0.name.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error_page(Layout::new(session, "", "Error"), status, &error.0.message)
}

/// After a successful POST: back to a page, with a notice (post/redirect/get).
pub fn done(path: &str, notice: &str) -> Response {
    Redirect::to(&format!("{path}?done={notice}")).into_response()
}

/// A form error as shown inline: the message, and the form field it is about.
#[derive(Clone, Debug, Default)]
pub struct FormError {
    pub message: String,
    /// The config key (or form field) the error names, when it names one.
    pub field: Option<String>,
    /// A refused connection test's per-model results, shown next to the form (boxed: rare,
    /// and it would triple the size of every form-error `Result`).
    pub tested: Option<Box<ValidationView>>,
}

impl FormError {
    pub fn new(message: impl Into<String>, field: Option<&str>) -> Self {
        Self {
            message: message.into(),
            field: field.map(str::to_owned),
            tested: None,
        }
    }

    /// The top-level key of the `details.field` path (`models[2].name` → `models`).
    pub fn from_port(error: &PortError) -> Self {
        let field = error
            .details
            .get("field")
            .and_then(|f| f.as_str())
            .map(|f| f.split(['[', '.']).next().unwrap_or(f).to_owned());
        Self {
            message: error.message.clone(),
            field,
            tested: ValidationView::from_error(error).map(Box::new),
        }
    }

    /// True when the error is about `field` (templates mark that control invalid).
    pub fn is_about(&self, field: &str) -> bool {
        self.field.as_deref() == Some(field)
    }
}

/// The HTTP status an inline form error answers with.
pub fn status_of(error: &PortError) -> StatusCode {
    StatusCode::from_u16(error.name.status()).unwrap_or(StatusCode::BAD_REQUEST)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_read_as_utc() {
        assert_eq!(
            super::shown_time("2026-03-10T23:59:00.123Z"),
            "2026-03-10 23:59:00 UTC"
        );
        assert_eq!(super::shown_time("junk"), "junk");
    }
}
