//! How every management-route failure reaches the caller: the Port envelope
//! `{"ok":false,"error","message","details"}` with the status its name implies.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchboard_core::{ErrorName, PortError};
use switchboard_store::StoreError;

/// A failed management request.
#[derive(Debug)]
pub struct ApiError(pub PortError);

pub type ApiResult<T> = Result<T, ApiError>;

impl From<PortError> for ApiError {
    fn from(error: PortError) -> Self {
        Self(error)
    }
}

impl From<StoreError> for ApiError {
    /// Store failures other than the ones a caller can act on become a generic 500; the
    /// cause is logged (store errors never carry secret values) but not returned.
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self(PortError::not_found("The resource")),
            StoreError::Conflict(message) => Self(PortError::new(ErrorName::Conflict, message)),
            StoreError::Invalid(message) => Self(PortError::invalid_request(message)),
            other if other.is_unavailable() => {
                tracing::warn!(error = %other, "database unavailable");
                Self(PortError::new(
                    ErrorName::Unavailable,
                    "The database is unavailable; retry shortly",
                ))
            }
            StoreError::LastAdmin => Self(
                PortError::new(
                    ErrorName::Conflict,
                    "The organization's last active admin cannot be demoted, disabled or \
                     deleted; make another user an admin first",
                )
                .with_detail("reason", "last_admin"),
            ),
            other => {
                tracing::error!(error = %other, "store error");
                Self(PortError::internal())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.name.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self.0.envelope())).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"switchboard\""),
            );
        }
        response
    }
}
