//! Browser sign-in: email + password (argon2id, checked by the store), a session cookie,
//! and sign-out.
//!
//! The cookie `sb_session` holds only the session token: HttpOnly (no script can read it),
//! SameSite=Lax (not sent on cross-site POSTs), Path=/, `Secure` when the request reached
//! us over TLS (directly or through a proxy that says so). The session carries its own
//! CSRF token, which every form embeds and every POST must return (see `forms`).
//!
//! The sign-in form itself is protected with a double-submit token (cookie `sb_login` and a
//! hidden field that must match), so another site cannot sign a browser into an account of
//! its choosing.

use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use switchboard_core::Principal;

use crate::state::AppState;
use crate::ui::forms::{self, Fields};
use crate::ui::render::{Layout, error_page, html};

pub const SESSION_COOKIE: &str = "sb_session";
const LOGIN_COOKIE: &str = "sb_login";
/// Sessions end 12 hours after sign-in.
pub const SESSION_TTL_SECONDS: u64 = 12 * 60 * 60;
/// Where a sign-in lands when no page was asked for.
const HOME: &str = "/settings/ai";

/// A signed-in browser: the principal and the session's CSRF token.
pub struct Session {
    pub principal: Principal,
    pub csrf: String,
    token: String,
}

impl FromRequestParts<AppState> for Session {
    /// Not signed in (or the session expired): off to the sign-in page, coming back here
    /// afterwards when this was a page view.
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login(parts));
        };
        match state.store.session(token).await {
            Ok(Some(info)) => Ok(Session {
                principal: info.principal,
                csrf: info.csrf_token,
                token: token.to_owned(),
            }),
            Ok(None) => Err(to_login(parts)),
            Err(error) => {
                tracing::error!(%error, "session lookup failed");
                Err(StatusCode::INTERNAL_SERVER_ERROR.into_response())
            }
        }
    }
}

fn to_login(parts: &Parts) -> Response {
    let target = match parts.method {
        Method::GET => parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| safe_next(p))
            .map(|p| {
                format!(
                    "/login?next={}",
                    url::form_urlencoded::byte_serialize(p.as_bytes()).collect::<String>()
                )
            }),
        _ => None,
    };
    Redirect::to(target.as_deref().unwrap_or("/login")).into_response()
}

/// Only paths on this site may be a sign-in's destination (no `//host` or `/\host`).
fn safe_next(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\")
}

/// The value of one cookie from the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// Whether the browser reached us over TLS: a proxy in front says so with
/// `X-Forwarded-Proto: https` or `Forwarded: proto=https`.
fn over_tls(headers: &HeaderMap) -> bool {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let forwarded_proto = header("x-forwarded-proto");
    forwarded_proto.split(',').next().map(str::trim) == Some("https")
        || header("forwarded").contains("proto=https")
}

/// A `Set-Cookie` value with the attributes every UI cookie shares.
fn set_cookie(
    headers: &HeaderMap,
    name: &str,
    value: &str,
    path: &str,
    max_age: u64,
    same_site: &str,
) -> HeaderValue {
    let secure = if over_tls(headers) { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; HttpOnly; SameSite={same_site}; Path={path}; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&text).expect("cookie values are token characters")
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    csrf: String,
    next: String,
    email: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /login`: the sign-in form (or straight on, when already signed in).
pub async fn login_page(
    State(state): State<AppState>,
    Query(query): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    let next = query.next.filter(|n| safe_next(n)).unwrap_or_default();
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Ok(Some(_)) = state.store.session(token).await
    {
        return Redirect::to(if next.is_empty() { HOME } else { &next }).into_response();
    }
    login_form(&headers, next, String::new(), None, StatusCode::OK)
}

/// Renders the sign-in form with a fresh double-submit token.
fn login_form(
    headers: &HeaderMap,
    next: String,
    email: String,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let csrf = forms::random_token();
    let page = LoginPage {
        layout: Layout::anonymous("Sign in"),
        csrf: csrf.clone(),
        next,
        email,
        error,
    };
    let mut response = html(status, &page);
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(headers, LOGIN_COOKIE, &csrf, "/login", 3600, "Strict"),
    );
    response
}

/// `POST /login`: checks the double-submit token, then the password; on success starts a
/// session and sets its cookie.
pub async fn login(State(state): State<AppState>, headers: HeaderMap, fields: Fields) -> Response {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !forms::same_token(fields.get("csrf").unwrap_or(""), expected) {
        return error_page(
            Layout::anonymous("Sign in"),
            StatusCode::FORBIDDEN,
            "The sign-in form expired or did not come from this site. Reload the page and try again.",
        );
    }
    let email = fields.text("email").to_owned();
    let next = fields
        .get("next")
        .filter(|n| safe_next(n))
        .unwrap_or("")
        .to_owned();
    let password = fields.get("password").unwrap_or("");
    let principal = match state.store.verify_password(&email, password).await {
        Ok(Some(principal)) => principal,
        Ok(None) => {
            let error = Some("The email or password is incorrect.".to_owned());
            return login_form(&headers, next, email, error, StatusCode::UNAUTHORIZED);
        }
        Err(error) => {
            tracing::error!(%error, "password check failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    start_session(&state, &headers, &principal, &next).await
}

async fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    principal: &Principal,
    next: &str,
) -> Response {
    let issued = match state
        .store
        .create_session(principal, SESSION_TTL_SECONDS)
        .await
    {
        Ok(issued) => issued,
        Err(error) => {
            tracing::error!(%error, "could not start a session");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let target = if next.is_empty() { HOME } else { next };
    let mut response = Redirect::to(target).into_response();
    let cookies = response.headers_mut();
    cookies.append(
        SET_COOKIE,
        set_cookie(
            headers,
            SESSION_COOKIE,
            issued.token.expose(),
            "/",
            SESSION_TTL_SECONDS,
            "Lax",
        ),
    );
    cookies.append(
        SET_COOKIE,
        set_cookie(headers, LOGIN_COOKIE, "", "/login", 0, "Strict"),
    );
    response
}

/// `POST /logout`: ends the session (CSRF-checked like every form) and clears the cookie.
pub async fn logout(State(state): State<AppState>, form: forms::SessionForm) -> Response {
    if let Err(error) = state.store.delete_session(&form.session.token).await {
        tracing::error!(%error, "could not end a session");
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(&form.headers, SESSION_COOKIE, "", "/", 0, "Lax"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_destinations() {
        assert!(safe_next("/settings/ai"));
        assert!(!safe_next("//evil.example/"));
        assert!(!safe_next("/\\evil.example/"));
        assert!(!safe_next("https://evil.example/"));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("a=1; sb_session=tok; b=2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn secure_only_over_tls() {
        let mut headers = HeaderMap::new();
        let plain = set_cookie(&headers, "n", "v", "/", 1, "Lax");
        assert!(!plain.to_str().unwrap().contains("Secure"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let tls = set_cookie(&headers, "n", "v", "/", 1, "Lax");
        assert!(tls.to_str().unwrap().ends_with("; Secure"));
        assert!(
            tls.to_str()
                .unwrap()
                .contains("HttpOnly; SameSite=Lax; Path=/")
        );
    }
}
