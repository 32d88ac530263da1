//! Shared state handed to every handler.

use std::sync::Arc;
use std::time::Instant;
use switchboard_store::Store;

use switchboard_providers::EgressClient;

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
    pub settings: Settings,
    pub metrics: Metrics,
    pub interactions: Interactions,
    pub started: Instant,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        snapshots: Arc<Snapshots>,
        egress: EgressClient,
        settings: Settings,
    ) -> Self {
        Self(Arc::new(Inner {
            store,
            snapshots,
            egress,
            settings,
            metrics: Metrics::default(),
            interactions: Interactions::default(),
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
