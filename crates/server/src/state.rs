//! Shared state handed to every handler.

use std::sync::Arc;
use std::time::Instant;
use switchboard_store::Store;

use switchboard_providers::{CredentialCache, EgressClient};

use crate::dataplane::Snapshots;
use crate::interactions::Interactions;
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::shutdown::Shutdown;
use switchboard_telemetry::{RequestSpan, SeriesPolicy, Tracing};

/// Cheap to clone: one reference count.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub snapshots: Arc<Snapshots>,
    pub egress: EgressClient,
    /// Assumed-role and service-account credentials, cached until shortly before expiry.
    pub credentials: CredentialCache,
    pub settings: Settings,
    pub metrics: Metrics,
    pub interactions: Interactions,
    /// OpenTelemetry traces, when the `OTEL_*` variables turn them on.
    pub tracing: Option<Tracing>,
    /// The graceful-shutdown phase (readiness, the accept loop, deadlines and streams
    /// follow it).
    pub shutdown: Shutdown,
    /// Shared by every inference request body being read.
    pub body_budget: crate::inference::BodyBudget,
    pub started: Instant,
}

impl AppState {
    /// Starts the interaction recorder's writer: call inside the runtime. Fails only on a
    /// malformed `SWITCHBOARD_REDIS_URL`.
    pub fn new(
        store: Arc<dyn Store>,
        snapshots: Arc<Snapshots>,
        egress: EgressClient,
        settings: Settings,
        tracing: Option<Tracing>,
    ) -> Result<Self, crate::interactions::limits::LimitStoreError> {
        let series = SeriesPolicy {
            org_label: settings.telemetry.org_label,
            ..SeriesPolicy::default()
        };
        let interactions = Interactions::new(store.clone(), &settings.interactions, series)?;
        let body_budget = crate::inference::BodyBudget::new(settings.body_budget_bytes);
        Ok(Self(Arc::new(Inner {
            store,
            snapshots,
            egress,
            credentials: CredentialCache::default(),
            settings,
            metrics: Metrics::default(),
            interactions,
            tracing,
            shutdown: Shutdown::default(),
            body_budget,
            started: Instant::now(),
        })))
    }
}

impl AppState {
    /// A trace span for an inference request (empty when tracing is off).
    pub fn request_span(&self, headers: &http::HeaderMap, operation: &'static str) -> RequestSpan {
        self.tracing
            .as_ref()
            .map_or_else(RequestSpan::default, |t| t.start(headers, operation))
    }

    /// Whether spans may carry content (the operator's opt-in; the organization must keep
    /// content too).
    pub fn traces_content(&self) -> bool {
        self.tracing.as_ref().is_some_and(Tracing::captures_content)
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
