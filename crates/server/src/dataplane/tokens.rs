//! Verified bearer tokens, kept in memory so the request path checks a token with one HMAC
//! and a constant-time comparison instead of a database read.
//!
//! A token is verified against the store once; its keyed digest and principal are then
//! cached for [`CACHE_TTL`]. The bound keeps expired access tokens from living on for
//! long, and means a user's changes reach the cache within a minute.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use switchboard_core::Principal;
use switchboard_store::{Store, StoreError};

use super::snapshot::{read_lock, write_lock};

pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// Beyond this many cached tokens, expired ones are dropped (and, if all are live, the
/// cache starts over) rather than growing without bound.
const MAX_ENTRIES: usize = 100_000;

struct Entry {
    digest: [u8; 32],
    principal: Principal,
    verified_at: Instant,
}

pub struct TokenCache {
    store: Arc<dyn Store>,
    entries: RwLock<HashMap<String, Entry>>,
}

impl TokenCache {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The principal behind `token`, or `None` when it is not valid.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        let Some(fingerprint) = self.store.token_fingerprint(token) else {
            return Ok(None);
        };
        if let Some(principal) = self.cached(&fingerprint.public_id, &fingerprint.digest) {
            return Ok(Some(principal));
        }
        let Some(principal) = self.store.authenticate_token(token).await? else {
            return Ok(None);
        };
        let mut entries = write_lock(&self.entries);
        if entries.len() >= MAX_ENTRIES {
            // Expired entries go first; only a cache full of live tokens starts over.
            entries.retain(|_, e| e.verified_at.elapsed() < CACHE_TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            fingerprint.public_id,
            Entry {
                digest: fingerprint.digest,
                principal: principal.clone(),
                verified_at: Instant::now(),
            },
        );
        Ok(Some(principal))
    }

    fn cached(&self, public_id: &str, digest: &[u8; 32]) -> Option<Principal> {
        let entries = read_lock(&self.entries);
        let entry = entries.get(public_id)?;
        let fresh = entry.verified_at.elapsed() < CACHE_TTL;
        (fresh && bool::from(entry.digest.ct_eq(digest))).then(|| entry.principal.clone())
    }
}
