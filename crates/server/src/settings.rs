//! Process settings the server needs at run time (parsed by the binary from flags,
//! environment and the optional TOML file).

use std::net::SocketAddr;
use switchboard_core::ProviderType;
use switchboard_core::egress::EgressPolicy;
use switchboard_providers::{Timeouts, UpstreamSettings};

#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    /// Used when neither the request nor the organization names a provider.
    pub system_default_provider: ProviderType,
    pub system_default_model: String,
    /// The longest an organization may keep interaction content, in days.
    pub max_retention_days: u32,
    /// Inference request body limit in bytes.
    pub max_body_bytes: usize,
    pub egress: EgressPolicy,
    /// Operator-level upstream URLs and the managed provider's keys.
    pub upstream: UpstreamSettings,
    pub timeouts: Timeouts,
    /// An upstream stream silent this long is ended with `upstream_timeout`.
    pub stream_idle_timeout: std::time::Duration,
    /// What an upstream may send at most.
    pub upstream_caps: UpstreamCaps,
    /// Inference request bodies being read at once share this many bytes; a body that
    /// would take more is answered 503 with `Retry-After` before more of it is read.
    pub body_budget_bytes: usize,
    /// Recorder queue, managed-provider limits and the content purge.
    pub interactions: crate::interactions::InteractionSettings,
    /// Per-connection timeouts and size limits, and the connection cap.
    pub connections: crate::listener::ConnectionLimits,
    /// The drain and grace periods of a graceful shutdown.
    pub shutdown: crate::shutdown::ShutdownSettings,
    /// Where the operations endpoints are also served, on connections of their own.
    pub ops_listen: Option<SocketAddr>,
    pub telemetry: TelemetrySettings,
}

/// Metrics labels and trace content.
#[derive(Clone, Copy, Debug, Default)]
pub struct TelemetrySettings {
    /// Label the data plane's series by organization (`SWITCHBOARD_METRICS_ORG_LABEL`).
    pub org_label: bool,
    /// Prompt and answer text in spans, for organizations that keep content
    /// (`SWITCHBOARD_OTEL_CAPTURE_CONTENT`).
    pub capture_content: bool,
}

/// Caps on what an upstream may send: a provider that answers without end (or a broken one)
/// costs a bounded amount of memory and time.
#[derive(Clone, Copy, Debug)]
pub struct UpstreamCaps {
    /// A whole (non-streaming) answer's body, in bytes; above it: 502 `upstream_too_large`.
    pub max_body_bytes: usize,
    /// A stream's bytes in total; above it the stream ends with an error event.
    pub stream_max_bytes: u64,
    /// A stream's duration from its response head; past it the stream ends with an error
    /// event.
    pub stream_max_duration: std::time::Duration,
}

impl Default for UpstreamCaps {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024 * 1024,
            stream_max_bytes: 256 * 1024 * 1024,
            stream_max_duration: std::time::Duration::from_secs(3600),
        }
    }
}

/// The default [`Settings::body_budget_bytes`]: eight maximal (32 MiB) bodies at once.
pub const DEFAULT_BODY_BUDGET_BYTES: usize = 256 * 1024 * 1024;
