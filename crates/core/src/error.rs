//! The Port API's named errors and the envelope they travel in.

use serde::Serialize;
use serde_json::{Map, Value};

/// Every error name the management API answers with. The wire string is part of the
/// contract (`error` in the Port envelope, `code`/`error.type` on the inference surfaces).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorName {
    InvalidRequest,
    Unauthorized,
    InvalidConfig,
    ModelTest,
    ProviderDisabled,
    ModelNotEnabled,
    ManageForbidden,
    Forbidden,
    ProviderNotFound,
    NotFound,
    Conflict,
    PayloadTooLarge,
    /// The request body did not arrive within the body timeout.
    RequestTimeout,
    RateLimit,
    Quota,
    Unavailable,
    Internal,
}

impl ErrorName {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorName::InvalidRequest => "invalid_request",
            ErrorName::Unauthorized => "unauthorized",
            ErrorName::InvalidConfig => "LLMProviderInvalidConfigError",
            ErrorName::ModelTest => "LLMProviderModelTestError",
            ErrorName::ProviderDisabled => "LLMProviderDisabledError",
            ErrorName::ModelNotEnabled => "LLMProviderModelNotEnabledError",
            ErrorName::ManageForbidden => "llm_provider_manage_forbidden",
            ErrorName::Forbidden => "forbidden",
            ErrorName::ProviderNotFound => "LLMProviderNotFoundError",
            ErrorName::NotFound => "not_found",
            ErrorName::Conflict => "conflict",
            ErrorName::PayloadTooLarge => "payload_too_large",
            ErrorName::RequestTimeout => "request_timeout",
            ErrorName::RateLimit => "RATE_LIMIT_ERROR",
            ErrorName::Quota => "QUOTA_ERROR",
            ErrorName::Unavailable => "service_unavailable",
            ErrorName::Internal => "internal_error",
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(self) -> u16 {
        match self {
            ErrorName::InvalidRequest
            | ErrorName::InvalidConfig
            | ErrorName::ModelTest
            | ErrorName::ProviderDisabled
            | ErrorName::ModelNotEnabled => 400,
            ErrorName::Unauthorized => 401,
            ErrorName::ManageForbidden | ErrorName::Forbidden => 403,
            ErrorName::ProviderNotFound | ErrorName::NotFound => 404,
            ErrorName::Conflict => 409,
            ErrorName::RequestTimeout => 408,
            ErrorName::PayloadTooLarge => 413,
            ErrorName::RateLimit | ErrorName::Quota => 429,
            ErrorName::Unavailable => 503,
            ErrorName::Internal => 500,
        }
    }
}

/// An error as the Port API reports it: `{"ok":false,"error","message","details"}`.
///
/// Messages are written for the caller; they never carry secret values, upstream host
/// names from credentials, or internal error text.
#[derive(Clone, Debug, PartialEq)]
pub struct PortError {
    pub name: ErrorName,
    pub message: String,
    pub details: Map<String, Value>,
}

impl PortError {
    pub fn new(name: ErrorName, message: impl Into<String>) -> Self {
        Self {
            name,
            message: message.into(),
            details: Map::new(),
        }
    }

    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorName::InvalidRequest, message)
    }

    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::new(ErrorName::InvalidConfig, message)
    }

    pub fn manage_forbidden() -> Self {
        Self::new(
            ErrorName::ManageForbidden,
            "You do not have permission to manage LLM providers",
        )
    }

    pub fn provider_not_found(provider: &str) -> Self {
        Self::new(
            ErrorName::ProviderNotFound,
            format!("LLM provider '{provider}' not found for organization"),
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorName::NotFound, format!("{what} was not found"))
    }

    pub fn model_not_enabled(model: &str, provider: &str) -> Self {
        Self::new(
            ErrorName::ModelNotEnabled,
            format!("Model '{model}' is not enabled for provider '{provider}'"),
        )
    }

    pub fn provider_disabled(provider: &str) -> Self {
        Self::new(
            ErrorName::ProviderDisabled,
            format!("LLM provider '{provider}' is disabled"),
        )
    }

    pub fn internal() -> Self {
        Self::new(ErrorName::Internal, "An internal error occurred")
    }

    /// The Port envelope.
    pub fn envelope(&self) -> Envelope<'_> {
        Envelope {
            ok: false,
            error: self.name.as_str(),
            message: &self.message,
            details: &self.details,
        }
    }
}

impl std::fmt::Display for PortError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name.as_str(), self.message)
    }
}

impl std::error::Error for PortError {}

#[derive(Serialize)]
pub struct Envelope<'a> {
    ok: bool,
    error: &'static str,
    message: &'a str,
    details: &'a Map<String, Value>,
}
