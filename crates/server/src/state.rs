//! Shared state handed to every handler.

use std::sync::Arc;
use std::time::Instant;
use switchboard_store::Store;

use switchboard_providers::{CredentialCache, EgressClient};

use crate::dataplane::Snapshots;
use crate::interactions::Interactions;
use crate::metrics::Metrics;
use crate::settings::Settings;

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
    /// Shared by every inference request body being read.
    pub body_budget: crate::inference::BodyBudget,
    pub started: Instant,
}

impl AppState {
    /// Starts the interaction recorder's writer: call inside the runtime.
    pub fn new(
        store: Arc<dyn Store>,
        snapshots: Arc<Snapshots>,
        egress: EgressClient,
        settings: Settings,
    ) -> Self {
        let interactions = Interactions::new(store.clone(), &settings.interactions);
        let body_budget = crate::inference::BodyBudget::new(settings.body_budget_bytes);
        Self(Arc::new(Inner {
            store,
            snapshots,
            egress,
            credentials: CredentialCache::default(),
            settings,
            metrics: Metrics::default(),
            interactions,
            body_budget,
            started: Instant::now(),
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
