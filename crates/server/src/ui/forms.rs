//! Posted forms: size-capped urlencoded bodies, and the CSRF check every signed-in POST
//! passes before its handler runs.

use axum::body::to_bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::Caller;
use crate::extract::MANAGEMENT_BODY_LIMIT;
use crate::state::AppState;
use crate::ui::auth::Session;
use crate::ui::render::forbidden;

/// A urlencoded form body, field by field, in posted order.
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, as posted.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name` without surrounding whitespace; empty when absent.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).map(str::trim).unwrap_or("")
    }

    /// Every value of `name` (repeated checkboxes).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A checkbox: present means checked.
    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = Response;

    async fn from_request(req: Request, _: &S) -> Result<Self, Response> {
        let body = to_bytes(req.into_body(), MANAGEMENT_BODY_LIMIT)
            .await
            .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?;
        Ok(Fields::parse(&body))
    }
}

/// A form posted by a signed-in browser whose CSRF token matched its session. Handlers that
/// take one never run for a forged or stale form: those get a 403 page.
pub struct SessionForm {
    pub session: Session,
    pub fields: Fields,
    pub headers: HeaderMap,
}

impl FromRequest<AppState> for SessionForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let fields = Fields::from_request(Request::from_parts(parts, body), state).await?;
        if !same_token(fields.get("csrf").unwrap_or(""), &session.csrf) {
            return Err(forbidden(
                &session,
                "This form expired or did not come from this site. Reload the page and try again.",
            ));
        }
        Ok(SessionForm {
            session,
            fields,
            headers,
        })
    }
}

impl SessionForm {
    /// Lets admins through as a [`Caller`] for the shared write functions. A member's
    /// attempt is recorded in the audit log (as the JSON API records it) and answered with a
    /// 403 page.
    pub async fn admin(
        &self,
        state: &AppState,
        action: &str,
        resource: &str,
    ) -> Result<Caller, Response> {
        let caller = Caller(self.session.principal.clone());
        match caller.require_admin(state, action, resource).await {
            Ok(()) => Ok(caller),
            Err(_) => Err(forbidden(
                &self.session,
                "Only administrators can change this. Members can view these pages.",
            )),
        }
    }
}

/// Compares tokens in time independent of where they differ.
pub fn same_token(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    a.len() == b.len()
        && !expected.is_empty()
        && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 244 random bits as 64 hex characters (two v4 UUIDs, from the OS generator).
pub fn random_token() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    a + &b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_must_match_exactly() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abd", "abc"));
        assert!(!same_token("ab", "abc"));
        assert!(!same_token("", ""));
    }

    #[test]
    fn fields_decode_and_repeat() {
        let f = Fields::parse(b"a=1&b=x+y&m=one&m=two&c=%3Cb%3E");
        assert_eq!(f.get("b"), Some("x y"));
        assert_eq!(f.all("m"), vec!["one", "two"]);
        assert_eq!(f.get("c"), Some("<b>"));
        assert!(f.checked("a"));
        assert!(!f.checked("z"));
    }
}
