//! Per-organization configuration snapshots.
//!
//! Each organization's snapshot is immutable (`Arc<OrgSnapshot>`); a change replaces it
//! whole. The first request of an organization loads it (one database read); afterwards the
//! request path only takes a read lock and clones an `Arc`. A background task polls the
//! store's change log and drops the snapshots of changed organizations; management writes
//! in this process sync immediately, so a write is visible to the next request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use switchboard_core::config::enabled_models;
use switchboard_core::records::ProviderRecord;
use switchboard_core::resolve::{OrgView, ProviderState};
use switchboard_core::{OrgId, ProviderType, SecretValue};
use switchboard_providers::PreparedTarget;
use switchboard_store::{ConfigChanges, OrgConfig, SealedSecret, Store, StoreError};

use super::tokens::TokenCache;

/// One organization's configuration as the request path sees it.
pub struct OrgSnapshot {
    pub config: OrgConfig,
    /// Resolution input, in the contract's type order.
    pub states: Vec<ProviderState>,
    secrets: HashMap<String, SealedSecret>,
    /// Upstream targets by provider and model, built on first use (secret decrypted, URL
    /// checked) and reused for the snapshot's life: a configuration or secret change
    /// replaces the whole snapshot, so a cached target is never stale.
    targets: RwLock<HashMap<ProviderType, HashMap<String, Arc<PreparedTarget>>>>,
}

/// Targets cached per provider at most. Models are checked before a target is built, but a
/// provider that accepts any model name must not grow the cache without bound.
const MAX_TARGETS_PER_PROVIDER: usize = 256;

impl OrgSnapshot {
    pub fn new(config: OrgConfig) -> Self {
        let states = config.providers.iter().map(provider_state).collect();
        let secrets = config
            .secrets
            .iter()
            .map(|s| (s.name.clone(), s.clone()))
            .collect();
        Self {
            config,
            states,
            secrets,
            targets: RwLock::default(),
        }
    }

    pub fn org_id(&self) -> OrgId {
        self.config.org.id
    }

    pub fn provider(&self, provider: ProviderType) -> Option<&ProviderRecord> {
        self.config
            .providers
            .iter()
            .find(|p| p.provider == provider)
    }

    /// The resolution view, with the operator's system default.
    pub fn view<'a>(&'a self, system_default: (ProviderType, &'a str)) -> OrgView<'a> {
        OrgView {
            org_id: self.org_id(),
            providers: &self.states,
            org_default: self
                .config
                .defaults
                .as_ref()
                .map(|d| (d.provider, d.model.as_str())),
            system_default,
        }
    }

    /// The prepared target for `provider` and `model`, from the cache or from `prepare`
    /// (failures are not cached: a fixed configuration arrives as a new snapshot anyway).
    pub fn target<E>(
        &self,
        provider: ProviderType,
        model: &str,
        prepare: impl FnOnce() -> Result<PreparedTarget, E>,
    ) -> Result<Arc<PreparedTarget>, E> {
        if let Some(found) = read(&self.targets)
            .get(&provider)
            .and_then(|by_model| by_model.get(model))
        {
            return Ok(found.clone());
        }
        let prepared = Arc::new(prepare()?);
        let mut targets = write(&self.targets);
        let by_model = targets.entry(provider).or_default();
        if by_model.len() < MAX_TARGETS_PER_PROVIDER {
            by_model.insert(model.to_owned(), prepared.clone());
        }
        Ok(prepared)
    }

    /// Every secret value of the organization, decrypted: what upstream error messages are
    /// scrubbed of (see `inference::scrub`). One that cannot be decrypted is left out.
    pub fn secret_values(&self, store: &dyn Store) -> Vec<SecretValue> {
        self.secrets
            .keys()
            .filter_map(|name| self.secret(store, name))
            .collect()
    }

    /// Decrypts one secret (when a target is first prepared, and for validation).
    pub fn secret(&self, store: &dyn Store, name: &str) -> Option<SecretValue> {
        let sealed = self.secrets.get(name)?;
        match store.unseal(self.org_id(), sealed) {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::error!(%error, secret = name, "cannot decrypt a secret");
                None
            }
        }
    }
}

fn provider_state(record: &ProviderRecord) -> ProviderState {
    ProviderState {
        provider: record.provider,
        enabled: record.enabled,
        enabled_models: enabled_models(record.provider, &record.config, &record.overrides),
    }
}

/// All loaded snapshots, the token cache, and the change version they reflect.
pub struct Snapshots {
    store: Arc<dyn Store>,
    orgs: RwLock<HashMap<OrgId, Arc<OrgSnapshot>>>,
    /// The newest change version applied.
    version: AtomicI64,
    /// Per organization, the version of its latest change: a load that read older data
    /// (it raced with the change) is not cached.
    changed_at: RwLock<HashMap<OrgId, i64>>,
    pub tokens: TokenCache,
}

impl Snapshots {
    pub async fn new(store: Arc<dyn Store>) -> Result<Arc<Self>, StoreError> {
        let version = store.config_version().await?;
        Ok(Arc::new(Self {
            tokens: TokenCache::new(store.clone()),
            store,
            orgs: RwLock::new(HashMap::new()),
            version: AtomicI64::new(version),
            changed_at: RwLock::new(HashMap::new()),
        }))
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The organization's snapshot; loads it on first use.
    pub async fn org(&self, org: OrgId) -> Result<Arc<OrgSnapshot>, StoreError> {
        if let Some(found) = read(&self.orgs).get(&org) {
            return Ok(found.clone());
        }
        let config = self
            .store
            .load_org_config(org)
            .await?
            .ok_or(StoreError::NotFound)?;
        let loaded_version = config.version;
        let snapshot = Arc::new(OrgSnapshot::new(config));
        let stale = read(&self.changed_at)
            .get(&org)
            .is_some_and(|changed| *changed > loaded_version);
        if !stale {
            write(&self.orgs).insert(org, snapshot.clone());
        }
        Ok(snapshot)
    }

    /// Applies the store's changes since the last sync (see [`Snapshots::apply_changes`]).
    pub async fn sync(&self) -> Result<(), StoreError> {
        let since = self.version.load(Ordering::Acquire);
        let changes = self.store.changes_since(since).await?;
        if changes.orgs.is_empty() && changes.version <= since {
            return Ok(());
        }
        self.apply_changes(&changes);
        Ok(())
    }

    /// The one invalidation every change notification ends in: the changed organizations'
    /// snapshots and cached tokens are dropped (they reload on their next request), so a
    /// revoked token, a disabled or deleted user or a lowered role fails the very next
    /// request. Callers: [`Snapshots::sync`] (the poll, and every management write in
    /// this process), and any push channel that learns of a change version and its
    /// organizations.
    pub fn apply_changes(&self, changes: &ConfigChanges) {
        if let Some(oldest) = changes.oldest_at {
            let lag = time::OffsetDateTime::now_utc() - oldest.datetime();
            metrics::histogram!(switchboard_telemetry::names::FANOUT_LAG)
                .record(lag.as_seconds_f64().max(0.0));
        }
        {
            let mut changed_at = write(&self.changed_at);
            let mut orgs = write(&self.orgs);
            for org in &changes.orgs {
                changed_at.insert(*org, changes.version);
                orgs.remove(org);
            }
        }
        self.tokens.invalidate_orgs(&changes.orgs);
        self.version.fetch_max(changes.version, Ordering::AcqRel);
    }

    /// Applies every change notification from the database at once (PostgreSQL): another
    /// replica's write is served here within milliseconds. The poll stays as the backstop;
    /// a lost connection is re-established and followed by a full sync.
    pub fn spawn_listener(self: &Arc<Self>) {
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(store) = this.upgrade().map(|s| s.store.clone()) else {
                    return;
                };
                let mut listener = match store.listen_for_changes().await {
                    Ok(Some(listener)) => listener,
                    Ok(None) => return,
                    Err(error) => {
                        tracing::warn!(%error, "cannot listen for configuration changes; retrying");
                        tokio::time::sleep(LISTEN_RETRY).await;
                        continue;
                    }
                };
                drop(store);
                loop {
                    let changed = listener.changed().await;
                    let Some(this) = this.upgrade() else { return };
                    if let Err(error) = changed {
                        tracing::warn!(%error, "configuration notifications lost; reconnecting");
                        tokio::time::sleep(LISTEN_RETRY).await;
                        break;
                    }
                    if let Err(error) = this.sync().await {
                        tracing::warn!(%error, "configuration refresh failed; retrying");
                    }
                }
            }
        });
    }

    /// Polls the store for changes every `period` until the process ends.
    pub fn spawn_refresher(self: &Arc<Self>, period: Duration) {
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(this) = this.upgrade() else { return };
                if let Err(error) = this.sync().await {
                    tracing::warn!(%error, "configuration refresh failed; retrying");
                }
            }
        });
    }
}

/// Pause before listening again after the notification connection failed.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// Lock helpers that survive a poisoned lock: the maps stay consistent under panics
/// because every update is a single insert or remove.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

/// Re-exported for the token cache.
pub(crate) fn read_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    read(lock)
}

pub(crate) fn write_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    write(lock)
}
