//! The save-time half of the egress policy for URLs in provider configs: host names are
//! resolved and every address must pass the policy. (The static URL checks run in
//! `switchboard_core::config`; connections are checked again at connect time, because DNS
//! can change between saving and calling.)

use std::time::Duration;

use serde_json::{Map, Value};
use switchboard_core::PortError;
use switchboard_core::config::url_fields;
use switchboard_core::egress::EgressPolicy;

use crate::error::ApiResult;

/// How long a save waits for DNS before accepting the URL on its static checks alone.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Refuses a config whose URL host names resolve to addresses the policy blocks. A name that
/// does not resolve (yet) is accepted: it cannot reach anything, and the connect-time check
/// will judge whatever it later resolves to.
pub async fn check_resolved_urls(
    egress: &EgressPolicy,
    config: &Map<String, Value>,
) -> ApiResult<()> {
    for (field, raw) in url_fields(config) {
        let Ok(url) = url::Url::parse(&raw) else {
            continue;
        };
        let Some(url::Host::Domain(host)) = url.host() else {
            continue;
        };
        let port = url.port_or_known_default().unwrap_or(443);
        let lookup = tokio::net::lookup_host((host, port));
        let Ok(Ok(addrs)) = tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await else {
            tracing::debug!(
                field,
                host,
                "egress check: host did not resolve at save time"
            );
            continue;
        };
        for addr in addrs {
            egress.check_ip(host, addr.ip()).map_err(|e| {
                PortError::invalid_config(format!("{field} is not allowed: {e}"))
                    .with_detail("field", field)
            })?;
        }
    }
    Ok(())
}
