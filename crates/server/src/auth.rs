//! Authentication (bearer tokens) and the role check for management writes.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde_json::json;
use switchboard_core::{ErrorName, PortError, Principal};
use switchboard_store::{Actor, AuditEvent};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The authenticated caller of a request.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers).ok_or_else(unauthorized)?;
        match state.snapshots.tokens.authenticate(token).await? {
            Some(principal) => Ok(Caller(principal)),
            None => Err(unauthorized()),
        }
    }
}

/// The token from `Authorization: Bearer …`, or from `x-api-key` (which Anthropic's SDKs
/// send instead).
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let from_authorization = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    from_authorization
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn unauthorized() -> ApiError {
    ApiError(PortError::new(
        ErrorName::Unauthorized,
        "A valid API token is required (Authorization: Bearer <token>)",
    ))
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor::user(&self.0)
    }

    /// Lets admins through; records a member's attempt in the audit log and answers
    /// `403 llm_provider_manage_forbidden`.
    pub async fn require_admin(
        &self,
        state: &AppState,
        action: &str,
        resource: &str,
    ) -> ApiResult<()> {
        if self.0.is_admin() {
            return Ok(());
        }
        self.audit_denied(state, action, resource, "role member may not manage")
            .await?;
        Err(PortError::manage_forbidden().into())
    }

    /// Records a refused attempt in the audit log (the caller then answers 403 or 404).
    pub async fn audit_denied(
        &self,
        state: &AppState,
        action: &str,
        resource: &str,
        reason: &str,
    ) -> ApiResult<()> {
        let event = AuditEvent {
            action: action.to_owned(),
            resource: resource.to_owned(),
            status: "denied".to_owned(),
            details: json!({ "reason": reason, "role": self.0.role.as_str() }),
        };
        state
            .store
            .append_audit(self.0.org_id, &self.actor(), event)
            .await?;
        Ok(())
    }
}
