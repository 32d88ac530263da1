//! Invocations not yet in the database: running, or finished and waiting in the recorder
//! queue. Polling reads them from here, so `GET /v1/ai/invoke/{id}` answers `In Progress`
//! from the first moment, and never misses an invocation between its end and its write.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use switchboard_core::{OrgId, UserId};
use switchboard_store::InvocationStatus;

/// Where an invocation not yet stored stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    Running,
    Finished {
        status: InvocationStatus,
        error_name: Option<String>,
        /// The answer, while its record waits to be written (async recording of an
        /// organization that keeps content); `None` otherwise.
        message: Option<String>,
    },
}

/// What polling needs about one unstored invocation.
#[derive(Clone, Debug)]
pub struct Pending {
    pub user_id: UserId,
    pub progress: Progress,
}

#[derive(Default)]
pub struct InFlight {
    entries: Mutex<HashMap<(OrgId, String), Pending>>,
}

impl InFlight {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<(OrgId, String), Pending>> {
        // A poisoned lock only means a panic elsewhere; the map itself is consistent.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a running invocation; false when the id is already in flight.
    pub fn start(&self, org: OrgId, id: &str, user_id: UserId) -> bool {
        let mut entries = self.entries();
        let key = (org, id.to_owned());
        if entries.contains_key(&key) {
            return false;
        }
        let pending = Pending {
            user_id,
            progress: Progress::Running,
        };
        entries.insert(key, pending);
        true
    }

    pub fn finish(&self, org: OrgId, id: &str, progress: Progress) {
        if let Some(pending) = self.entries().get_mut(&(org, id.to_owned())) {
            pending.progress = progress;
        }
    }

    /// The record is in the database now.
    pub fn forget(&self, org: OrgId, id: &str) {
        self.entries().remove(&(org, id.to_owned()));
    }

    pub fn get(&self, org: OrgId, id: &str) -> Option<Pending> {
        self.entries().get(&(org, id.to_owned())).cloned()
    }
}
