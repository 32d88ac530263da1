//! Switchboard's HTTP server: the Port-compatible management API, authentication and RBAC,
//! and the operations endpoints. Every layer is composed in [`router`], in one visible place.

pub mod auth;
pub mod bootstrap;
pub mod dataplane;
pub mod deadlines;
pub mod egress_check;
pub mod error;
pub mod extract;
pub mod inference;
pub mod interactions;
pub mod listener;
pub mod metrics;
pub mod openapi;
pub mod panics;
pub mod request_id;
pub mod routes;
pub mod settings;
pub mod shutdown;
pub mod state;
pub mod ui;
pub mod validation;

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use inference::Surface;
pub use listener::{Listeners, serve};
use panics::ErrorFormat;
use request_id::HEADER as REQUEST_ID;
pub use settings::{DEFAULT_BODY_BUDGET_BYTES, Settings, TelemetrySettings, UpstreamCaps};
pub use state::AppState;

use routes::{
    audit, defaults, interactions as invocations, ops, providers, secrets, settings as ai_settings,
    tokens, users,
};

/// Every route, then the cross-cutting layers: a panic caught per group of routes and
/// answered 500 in that group's error format, the body and shutdown deadlines per group
/// (answered in the same format), request ids (a client's kept only when plain, else
/// generated; propagated to the response), and one access-log line plus metrics per matched
/// request (a caught panic included).
pub fn router(state: AppState) -> Router {
    // Management writes (API and web UI) bring the data plane's snapshots up to date before
    // answering; inference routes must not pay for that (a database read per request).
    let management = test_panics(management_routes().merge(ui::router()))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            sync_after_write,
        ))
        .layer(panics::layer(&state, ErrorFormat::Port))
        .layer(middleware::from_fn_with_state(
            deadlines::Guarded::new(&state, ErrorFormat::Port),
            deadlines::guard,
        ));
    let openai = guarded(
        &state,
        openai_routes(),
        ErrorFormat::Surface(Surface::OpenAi),
    );
    let anthropic = guarded(
        &state,
        anthropic_routes(),
        ErrorFormat::Surface(Surface::Anthropic),
    );
    let invoke = guarded(&state, invoke_routes(), ErrorFormat::Port);
    with_request_ids(
        Router::new()
            .merge(management)
            .merge(invoke)
            .merge(openai)
            .merge(anthropic)
            .route_layer(middleware::from_fn_with_state(state.clone(), access_log))
            .fallback(not_found),
    )
    .with_state(state)
}

/// The operations endpoints alone, for the optional operations listener
/// (`SWITCHBOARD_OPS_LISTEN`): probes and scrapers keep their own connections there, so
/// they get in when the main port is at its connection cap.
pub fn ops_router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), access_log))
        .fallback(not_found);
    with_request_ids(routes).with_state(state)
}

/// A client's request id kept only when plain, else one generated; sent back either way.
fn with_request_ids(routes: Router<AppState>) -> Router<AppState> {
    routes
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(middleware::map_request(request_id::sanitize))
}

/// A group of data-plane routes with its catch-panic and deadline layers.
fn guarded(state: &AppState, routes: Router<AppState>, format: ErrorFormat) -> Router<AppState> {
    test_panics(routes)
        .layer(panics::layer(state, format))
        .layer(middleware::from_fn_with_state(
            deadlines::Guarded::new(state, format),
            deadlines::guard,
        ))
}

/// In debug builds run by the tests, requests carrying the test header panic (see
/// [`panics::test_trigger`]); release builds have no such code.
fn test_panics(routes: Router<AppState>) -> Router<AppState> {
    #[cfg(debug_assertions)]
    if panics::test_trigger::enabled() {
        return routes.route_layer(middleware::from_fn(panics::test_trigger::panic_if_asked));
    }
    routes
}

/// The Port-compatible management API and the operations endpoints.
fn management_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi_json))
        .route("/v1/auth/access_token", post(users::access_token))
        .route("/v1/users", get(users::list).post(users::create))
        .route(
            "/v1/users/{id}",
            get(users::get).patch(users::update).delete(users::delete),
        )
        .route("/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/v1/tokens/{id}", axum::routing::delete(tokens::delete))
        .route(
            "/v1/llm-providers",
            get(providers::list).post(providers::create),
        )
        .route(
            "/v1/llm-providers/defaults",
            get(defaults::get).put(defaults::put),
        )
        .route(
            "/v1/llm-providers/{provider}",
            get(providers::get)
                .put(providers::update)
                .delete(providers::delete),
        )
        .route(
            "/v1/organization/secrets",
            get(secrets::list).post(secrets::create),
        )
        .route(
            "/v1/organization/secrets/{name}",
            get(secrets::get)
                .patch(secrets::update)
                .delete(secrets::delete),
        )
        .route(
            "/v1/organization/ai-settings",
            get(ai_settings::get).put(ai_settings::put),
        )
        .route("/v1/audit-log", get(audit::list))
        .route("/v1/ai/invoke/{id}", get(invocations::poll))
        .route("/v1/ai/invocations", get(invocations::list))
        .route("/v1/ai/invocations/{id}", get(invocations::get))
        .route("/v1/quota/ai-invocations", get(invocations::quota))
}

/// The data plane's OpenAI surface (errors in OpenAI's shape). `/v1/models` answers
/// Anthropic's list shape to Anthropic callers but is an OpenAI route first.
fn openai_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/chat/completions", post(inference::chat_completions))
        .route("/v1/models", get(inference::list_models))
}

/// Port invoke: a data-plane route (no snapshot sync after it) whose errors before its
/// stream are Port envelopes.
fn invoke_routes() -> Router<AppState> {
    Router::new().route("/v1/ai/invoke", post(inference::invoke))
}

/// The data plane's Anthropic surface (errors in Anthropic's shape).
fn anthropic_routes() -> Router<AppState> {
    Router::new().route("/v1/messages", post(inference::messages))
}

async fn not_found() -> error::ApiError {
    error::ApiError(switchboard_core::PortError::new(
        switchboard_core::ErrorName::NotFound,
        "No such route",
    ))
}

/// One JSON log line per request (method, route template, status, latency, request id;
/// never headers, query strings or bodies) and the route's metrics.
async fn access_log(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // Reference-counted clones: no copy of the route or the id per request.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let id_header = request.headers().get(&REQUEST_ID).cloned();
    let request_id = id_header
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state
        .metrics
        .observe(method.as_str(), route, status, elapsed);
    tracing::info!(
        target: "switchboard::access",
        method = %method,
        route = %route,
        status,
        micros = elapsed.as_micros() as u64,
        request_id = %request_id,
        "request"
    );
    response
}

/// After a successful write, brings the data plane's snapshots up to date before
/// answering, so the next request of any client sees the change.
async fn sync_after_write(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let writes = !matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    let response = next.run(request).await;
    // The web UI answers a successful form with a redirect (post/redirect/get).
    let succeeded = response.status().is_success() || response.status().is_redirection();
    if writes && succeeded {
        // A failed sync is retried by the background refresher within a second.
        let _ = state.snapshots.sync().await.inspect_err(
            |error| tracing::warn!(%error, "could not refresh snapshots after a write"),
        );
    }
    response
}
