//! The inference surfaces: OpenAI Chat Completions (`/v1/chat/completions`), Anthropic
//! Messages (`/v1/messages`) and the model list (`/v1/models`).
//!
//! A request is authenticated from memory, its routing fields are read without parsing the
//! whole body, the provider and model are resolved and checked against the organization's
//! snapshot (no database I/O), and the upstream is called through the egress client. Same
//! protocol on both sides is a pass-through with minimal edits; otherwise the body and the
//! answer are translated through the IR of `switchboard-protocols`.

mod body_budget;
mod bounded;
mod client_overrides;
pub(crate) mod codec;
mod errors;
mod invoke;
mod models;
mod port_events;
/// Public for the fuzz targets (`crates/fuzz-targets`); not an API.
#[doc(hidden)]
pub mod raw_json;
mod relay;
pub mod request_bounds;
mod scrub;
mod upstream;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use switchboard_core::Principal;
use switchboard_core::resolve::{Resolved, Selection, resolve};

use crate::dataplane::OrgSnapshot;
use crate::interactions::Invocation;
use crate::state::AppState;
use switchboard_core::records::Timestamp;

pub use body_budget::BodyBudget;
pub use errors::{Surface, SurfaceError};
pub use invoke::invoke;
pub use models::list_models;

/// `POST /v1/chat/completions`
pub async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    serve(state, Surface::OpenAi, headers, body).await
}

/// `POST /v1/messages`
pub async fn messages(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    serve(state, Surface::Anthropic, headers, body).await
}

async fn serve(state: AppState, surface: Surface, headers: HeaderMap, body: Body) -> Response {
    let invocation_id = uuid::Uuid::now_v7().to_string();
    let result = async {
        let caller = authenticate(&state, &headers).await?;
        // The body's share of the budget is held until the upstream exchange is over.
        let (body, _budget) = read_body(&state, body, state.settings.max_body_bytes).await?;
        let snapshot = org_snapshot(&state, &caller).await?;
        let keep_content = snapshot.config.settings.store_interaction_data;
        let mut recording = state.interactions.begin(Invocation {
            // Built only when the organization keeps content.
            prompt: if keep_content {
                prompt_text(&body)
            } else {
                String::new()
            },
            ..invocation(
                &invocation_id,
                &caller,
                surface.name(),
                &headers,
                &body,
                keep_content,
            )
        })?;
        recording.trace(state.request_span(&headers, "chat"), state.traces_content());
        upstream::call(
            &state, surface, &caller, &snapshot, &headers, body, recording,
        )
        .await
    }
    .await;
    let mut response = match result {
        Ok(served) => served.response,
        Err(failure) => failure
            .error
            .into_response(surface)
            .with_selection(failure.resolved),
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&invocation_id) {
        headers.insert("x-switchboard-invocation-id", value);
    }
    response
}

/// A failed request and, when resolution got that far, what it resolved to.
pub struct Failure {
    pub error: SurfaceError,
    pub resolved: Option<Resolved>,
}

impl From<SurfaceError> for Failure {
    fn from(error: SurfaceError) -> Self {
        Self {
            error,
            resolved: None,
        }
    }
}

/// A successful exchange and, for whole answers, its outcome (streams record their own
/// when they end).
pub struct Served {
    pub response: Response,
    pub outcome: crate::interactions::Outcome,
    /// Who served it (kept for an error that replaces the answer).
    pub resolved: Option<Resolved>,
}

trait WithSelection {
    fn with_selection(self, resolved: Option<Resolved>) -> Response;
}

impl WithSelection for Response {
    /// Adds `x-switchboard-provider` / `x-switchboard-model` when they are known.
    fn with_selection(mut self, resolved: Option<Resolved>) -> Response {
        if let Some(resolved) = resolved {
            set_selection_headers(self.headers_mut(), &resolved);
        }
        self
    }
}

pub fn set_selection_headers(headers: &mut HeaderMap, resolved: &Resolved) {
    headers.insert(
        "x-switchboard-provider",
        HeaderValue::from_static(resolved.provider.as_str()),
    );
    if let Ok(value) = HeaderValue::from_str(&resolved.model) {
        headers.insert("x-switchboard-model", value);
    }
}

/// What every surface knows when an invocation starts (the prompt is the surface's to
/// fill in).
pub(crate) fn invocation(
    id: &str,
    caller: &Principal,
    surface: &'static str,
    headers: &HeaderMap,
    request: &[u8],
    keep_content: bool,
) -> Invocation {
    Invocation {
        id: id.to_owned(),
        org_id: caller.org_id,
        user_id: caller.user_id,
        surface,
        labels: serde_json::Map::new(),
        prompt: String::new(),
        keep_content,
        estimated_tokens: crate::interactions::estimate_tokens(request),
        request_id: headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        created_at: Timestamp::now(),
    }
}

/// The prompt as recorded: the request's `system` and `messages` members, verbatim.
fn prompt_text(body: &[u8]) -> String {
    let Ok(raw) = raw_json::RawObject::parse(body) else {
        return String::new();
    };
    let mut prompt = String::from("{");
    for key in ["system", "messages"] {
        if let Some(value) = raw.get(key) {
            if prompt.len() > 1 {
                prompt.push(',');
            }
            prompt.push('"');
            prompt.push_str(key);
            prompt.push_str("\":");
            prompt.push_str(value.get());
        }
    }
    prompt.push('}');
    prompt
}

/// The caller from `Authorization: Bearer` or `x-api-key` (what Anthropic's SDKs send).
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, Failure> {
    let token = crate::auth::bearer_token(headers).ok_or_else(SurfaceError::unauthorized)?;
    match state.snapshots.tokens.authenticate(token).await {
        Ok(Some(principal)) => Ok(principal),
        Ok(None) => Err(SurfaceError::unauthorized().into()),
        Err(error) => {
            tracing::error!(%error, "token lookup failed");
            Err(store_failure(&error).into())
        }
    }
}

/// A store failure on the request path: 503 with `Retry-After` while the database is
/// unavailable (past its deadline), else a plain 500.
pub(crate) fn store_failure(error: &switchboard_store::StoreError) -> SurfaceError {
    if !error.is_unavailable() {
        return SurfaceError::internal();
    }
    let mut surface = SurfaceError::new(
        503,
        switchboard_core::ErrorName::Unavailable.as_str(),
        "The database is unavailable; retry shortly",
    );
    surface.retry_after = Some(1);
    surface
}

/// Reads a request body under the size limit and within the shared body budget.
async fn read_body(
    state: &AppState,
    body: Body,
    limit: usize,
) -> Result<(bytes::Bytes, body_budget::BodyGuard), Failure> {
    use body_budget::BodyError;
    state.body_budget.read(body, limit).await.map_err(|error| {
        let error = match error {
            BodyError::TooLarge { limit } => SurfaceError::new(
                413,
                switchboard_core::ErrorName::PayloadTooLarge.as_str(),
                format!("The request body is larger than the limit of {limit} bytes"),
            ),
            BodyError::OverBudget => {
                let mut busy = SurfaceError::new(
                    503,
                    switchboard_core::ErrorName::Unavailable.as_str(),
                    "The gateway is reading too many request bodies at once; retry shortly",
                );
                busy.retry_after = Some(1);
                busy
            }
            BodyError::Unreadable => {
                SurfaceError::bad_request("The request body could not be read")
            }
        };
        error.into()
    })
}

async fn org_snapshot(state: &AppState, caller: &Principal) -> Result<Arc<OrgSnapshot>, Failure> {
    state.snapshots.org(caller.org_id).await.map_err(|error| {
        tracing::error!(%error, "cannot load the organization's configuration");
        store_failure(&error).into()
    })
}

/// Resolution and its four checks, against the snapshot.
pub fn resolve_selection(
    state: &AppState,
    caller: &Principal,
    snapshot: &OrgSnapshot,
    selection: Selection<'_>,
) -> Result<Resolved, SurfaceError> {
    let settings = &state.settings;
    let view = snapshot.view((
        settings.system_default_provider,
        settings.system_default_model.as_str(),
    ));
    resolve(caller, selection, &view).map_err(SurfaceError::from)
}
