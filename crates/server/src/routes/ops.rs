//! Operations endpoints: liveness, readiness, metrics and the API description.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::openapi;
use crate::state::AppState;

/// The process is up.
pub async fn healthz() -> Response {
    Json(json!({ "ok": true })).into_response()
}

/// How long readiness waits for the database: a probe answers within a second.
const READINESS_DEADLINE: std::time::Duration = std::time::Duration::from_millis(800);

/// The database takes writes (SQLite: its write lock can be had; PostgreSQL: it answers in
/// a transaction), within a second — a frozen or locked database is not ready. From the
/// moment a shutdown begins the answer is 503, at once, so load balancers move away.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.shutdown.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ok": false, "error": "shutting_down" })),
        )
            .into_response();
    }
    let probe = tokio::time::timeout(READINESS_DEADLINE, state.store.ping_write()).await;
    let probe = probe.unwrap_or(Err(switchboard_store::StoreError::Timeout(
        READINESS_DEADLINE,
    )));
    match probe {
        Ok(()) => Json(json!({ "ok": true, "database": state.store.backend() })).into_response(),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "ok": false, "error": "database_unavailable" })),
            )
                .into_response()
        }
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let body = state
        .metrics
        .render(state.started.elapsed(), state.interactions.queue_depth());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

pub async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::DOCUMENT,
    )
        .into_response()
}
