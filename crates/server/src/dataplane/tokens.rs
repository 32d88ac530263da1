//! Verified bearer tokens, kept in memory so the request path checks a token with one HMAC
//! and a constant-time comparison instead of a database read.
//!
//! A token is verified against the store once; its keyed digest and principal are then
//! cached until the first of: [`CACHE_TTL`] after verification, the token's own expiry, or
//! an invalidation of its organization. Invalidation is how revocations, disabled or
//! deleted users and role changes take effect at once instead of within a TTL: every such
//! write bumps the organization in the change log, and [`TokenCache::invalidate_orgs`]
//! (called by [`super::Snapshots::apply_changes`], on this replica right after the write and
//! on the others at their next poll) drops the organization's entries.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use switchboard_core::records::Timestamp;
use switchboard_core::{OrgId, Principal};
use switchboard_store::{Store, StoreError, TokenGrant};

use super::snapshot::{read_lock, write_lock};

/// The longest a verification is trusted without asking the store again. Invalidation
/// makes changes immediate; this bound only limits how stale `lastUsedAt` can get (it is
/// recorded at each verification) and how long an unnoticed change could live.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// Beyond this many cached tokens, expired ones are dropped (and, if all are live, the
/// cache starts over) rather than growing without bound.
const MAX_ENTRIES: usize = 100_000;

struct Entry {
    digest: [u8; 32],
    principal: Principal,
    /// The earlier of the cache bound and the token's own expiry.
    valid_until: Instant,
}

pub struct TokenCache {
    store: Arc<dyn Store>,
    entries: RwLock<HashMap<String, Entry>>,
    /// Grows with every invalidation (under the entries' write lock). A verification that
    /// started before an invalidation may have read the state before the change, so it is
    /// answered but not cached.
    generation: AtomicU64,
}

impl TokenCache {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            entries: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
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
        let generation = self.generation.load(Ordering::Acquire);
        let Some(grant) = self.store.verify_token(token).await? else {
            return Ok(None);
        };
        self.record_use(&grant.token_id);
        let principal = grant.principal.clone();
        self.insert(fingerprint.public_id, fingerprint.digest, grant, generation);
        Ok(Some(principal))
    }

    /// Drops every cached token of these organizations: the next request of each is
    /// verified against the store again. The one function every change notification
    /// (the change-log poll, a write in this process, or a future push channel) ends in.
    pub fn invalidate_orgs(&self, orgs: &[OrgId]) {
        if orgs.is_empty() {
            return;
        }
        let orgs: HashSet<OrgId> = orgs.iter().copied().collect();
        let mut entries = write_lock(&self.entries);
        entries.retain(|_, e| !orgs.contains(&e.principal.org_id));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn cached(&self, public_id: &str, digest: &[u8; 32]) -> Option<Principal> {
        let entries = read_lock(&self.entries);
        let entry = entries.get(public_id)?;
        let fresh = Instant::now() < entry.valid_until;
        (fresh && bool::from(entry.digest.ct_eq(digest))).then(|| entry.principal.clone())
    }

    fn insert(&self, public_id: String, digest: [u8; 32], grant: TokenGrant, generation: u64) {
        let valid_until = valid_until(grant.expires_at);
        let mut entries = write_lock(&self.entries);
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            // Expired entries go first; only a cache full of live tokens starts over.
            let now = Instant::now();
            entries.retain(|_, e| now < e.valid_until);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        let entry = Entry {
            digest,
            principal: grant.principal,
            valid_until,
        };
        entries.insert(public_id, entry);
    }

    /// Records the token's last use off the request path (once per verification, so at
    /// most once per [`CACHE_TTL`] per replica).
    fn record_use(&self, token_id: &str) {
        let store = self.store.clone();
        let token_id = token_id.to_owned();
        tokio::spawn(async move {
            if let Err(error) = store.touch_token(&token_id, Timestamp::now()).await {
                tracing::warn!(%error, "could not record a token's last use");
            }
        });
    }
}

/// When a verification made now stops being trusted: after [`CACHE_TTL`], or when the token
/// expires if that is sooner.
fn valid_until(expires_at: Option<Timestamp>) -> Instant {
    let now = Instant::now();
    let bound = now + CACHE_TTL;
    let Some(expires_at) = expires_at else {
        return bound;
    };
    let left_ms = (expires_at.datetime() - Timestamp::now().datetime()).whole_milliseconds();
    let left = Duration::from_millis(u64::try_from(left_ms).unwrap_or(0));
    bound.min(now + left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiring_token_is_trusted_only_until_it_expires() {
        let now = Instant::now();
        assert!(valid_until(None) >= now + CACHE_TTL);
        let soon = Timestamp::from_datetime(
            Timestamp::now().datetime() + time::Duration::milliseconds(500),
        );
        let until = valid_until(Some(soon));
        assert!(until <= now + Duration::from_millis(600));
        let past = Timestamp::from_datetime(Timestamp::now().datetime() - time::Duration::hours(1));
        assert!(valid_until(Some(past)) <= Instant::now());
    }
}
