//! The web UI: server-rendered pages embedded in the binary.
//!
//! Pages are askama templates (compiled into the binary, HTML-escaped by default), styled
//! and scripted by two static files served from memory. Every UI response carries a strict
//! Content-Security-Policy (no inline script or style, nothing from other origins), so the
//! templates never contain `<script>` bodies or `style=` attributes.
//!
//! Authentication is a session cookie (see [`auth`]); every POST carries the session's CSRF
//! token (see [`forms`]). Writes go through the same functions as the JSON API
//! (`crate::routes::*`), so validation, authorization, audit and rules are never duplicated.

mod assets;
pub mod auth;
mod chart;
mod forms;
mod pages;
mod render;
mod validation;

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::middleware;
use axum::response::{Redirect, Response};
use axum::routing::{get, post};

use crate::state::AppState;

/// Nothing but this origin's own files; no inline script or style, no framing, forms only
/// to this origin.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; \
                       base-uri 'none'";

/// The UI's routes, merged into the main router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/settings/ai") }))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/settings/ai", get(pages::ai::page))
        .route("/settings/ai/defaults", post(pages::ai::save_defaults))
        .route("/providers", get(pages::providers::list))
        .route(
            "/providers/{provider}",
            get(pages::providers::page).post(pages::providers::save),
        )
        .route(
            "/providers/{provider}/enabled",
            post(pages::providers::set_enabled),
        )
        .route(
            "/providers/{provider}/delete",
            post(pages::providers::delete),
        )
        .route(
            "/secrets",
            get(pages::secrets::page).post(pages::secrets::create),
        )
        .route("/secrets/{name}", post(pages::secrets::replace))
        .route("/secrets/{name}/delete", post(pages::secrets::delete))
        .route(
            "/settings/data",
            get(pages::data::page).post(pages::data::save),
        )
        .route("/users", get(pages::users::page))
        .route("/users/{id}/role", post(pages::users::set_role))
        .route("/users/{id}/disabled", post(pages::users::set_disabled))
        .route("/users/{id}/delete", post(pages::users::delete))
        .route(
            "/tokens",
            get(pages::tokens::page).post(pages::tokens::create),
        )
        .route("/tokens/{id}/revoke", post(pages::tokens::revoke))
        .route("/audit", get(pages::audit::page))
        .route("/invocations", get(pages::invocations::list))
        .route("/invocations/{id}", get(pages::invocations::detail))
        .route("/usage", get(pages::usage::page))
        .route("/static/{file}", get(assets::serve))
        .layer(middleware::map_response(security_headers))
}

/// Adds the UI's security headers to every UI response. Pages hold CSRF tokens and tenant
/// data, so they are never cached unless a handler said otherwise (static assets do).
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
