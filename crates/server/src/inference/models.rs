//! `GET /v1/models`: the models the caller can use, in OpenAI's list shape, each with the
//! provider that serves it.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchboard_core::ProviderType;
use switchboard_providers::target::managed_available;

use super::errors::Surface;
use super::{authenticate, org_snapshot};
use crate::state::AppState;

pub async fn list_models(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let listed = async {
        let caller = authenticate(&state, &headers).await?;
        let snapshot = org_snapshot(&state, &caller).await?;
        let created = snapshot.config.org.created_at.unix_seconds();
        let data: Vec<Value> = snapshot
            .states
            .iter()
            .filter(|p| p.enabled)
            .flat_map(|p| p.enabled_models.iter().map(move |m| (p.provider, m)))
            .filter(|(provider, model)| {
                *provider != ProviderType::Managed
                    || managed_available(&state.settings.upstream, model)
            })
            .map(|(provider, model)| {
                json!({
                    "id": model,
                    "object": "model",
                    "created": created,
                    "owned_by": provider,
                    "provider": provider,
                })
            })
            .collect();
        Ok::<_, super::Failure>(json!({ "object": "list", "data": data }))
    }
    .await;
    match listed {
        Ok(list) => Json(list).into_response(),
        Err(failure) => failure.error.into_response(Surface::OpenAi),
    }
}
