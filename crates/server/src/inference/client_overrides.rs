//! Request members that ask a gateway to send the call somewhere else or with other
//! credentials (security catalogue item 8: LiteLLM's `api_base`, CVE-2024-6587). Switchboard
//! never reads them — the upstream and its credential come only from the organization's
//! provider configuration — and refuses them, so a client that believes it chose an upstream
//! learns at once that it did not (and no such member is passed on to the provider either).

use super::SurfaceError;
use super::raw_json::RawObject;

/// Top-level members refused on every inference surface.
pub const REFUSED: &[&str] = &[
    "api_base",
    "base_url",
    "api_key",
    "api_version",
    "custom_llm_provider",
    "litellm_params",
    "azure_endpoint",
    "aws_access_key_id",
    "aws_secret_access_key",
    "vertex_credentials",
];

/// `Err(400)` naming the first refused member present.
pub fn refuse(raw: &RawObject<'_>) -> Result<(), SurfaceError> {
    match REFUSED.iter().find(|name| raw.get(name).is_some()) {
        None => Ok(()),
        Some(name) => Err(SurfaceError::bad_request(format!(
            "'{name}' cannot be set by a request: the upstream and its credentials come from \
             the organization's provider configuration"
        ))),
    }
}
