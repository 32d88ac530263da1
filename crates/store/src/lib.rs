//! Persistence for the control plane: one [`Store`] trait with SQLite and PostgreSQL back
//! ends that share their SQL, the secret vault (envelope encryption under a versioned master
//! key), and the per-organization hash-chained audit log.
//!
//! Every method that reads or writes tenant data takes an [`OrgId`] that the caller obtained
//! from an authenticated principal; every query filters on it, so a foreign id behaves
//! exactly like a missing one. Every management write commits together with its audit entry.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Map, Value};
use switchboard_core::records::{
    AiSettings, AiSettingsChange, AuditEntry, DefaultsRecord, Organization, Overrides,
    ProviderRecord, SecretMeta, Timestamp, User,
};
use switchboard_core::{OrgId, Principal, ProviderType, Role, SecretValue, UserId};

mod audit;
pub mod error;
pub mod interactions;
pub mod limits;
pub mod reports;
mod tokens;
pub mod vault;

pub use error::StoreError;
pub use interactions::{
    INTERRUPTED, InsertReport, InvocationBatch, InvocationContent, InvocationCursor,
    InvocationFilter, InvocationRecord, InvocationStatus, ManagedUsage, PurgePolicy, PurgeReport,
    RunningInvocation,
};
pub use limits::{LimitAsk, LimitCounts, LimitDecision, LimitHeld, LimitKind, LimitMax};
pub use reports::{UsageRow, ValidationRecord};
pub use vault::MasterKeyRing;

/// The PostgreSQL `LISTEN` channel on which every committed management write announces
/// the new [`Store::config_version`] (the payload, as decimal text).
pub const PG_CONFIG_CHANNEL: &str = "switchboard_config";

pub type StoreResult<T> = Result<T, StoreError>;
/// The future every [`Store`] method returns; boxed so that `dyn Store` works.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

/// Who performed a write, as recorded in audit entries and `createdBy`/`updatedBy`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<UserId>,
    /// The user's email, or `cli` / `system` for writes made outside the HTTP API.
    pub label: String,
}

impl Actor {
    pub fn user(principal: &Principal) -> Self {
        Self {
            user_id: Some(principal.user_id),
            label: principal.email.clone(),
        }
    }

    pub fn cli() -> Self {
        Self {
            user_id: None,
            label: "cli".into(),
        }
    }

    pub fn system() -> Self {
        Self {
            user_id: None,
            label: "system".into(),
        }
    }
}

/// A bearer token as issued: shown once to its owner, stored only as a keyed hash.
#[derive(Debug)]
pub struct IssuedToken {
    /// The token's public id (what lists show and revocation names; not a credential).
    pub id: String,
    pub token: SecretValue,
    /// Seconds until it expires; `None` for API tokens, which live until revoked.
    pub expires_in: Option<u64>,
}

/// A user's client credentials for `POST /v1/auth/access_token`; the secret is shown once.
#[derive(Debug)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: SecretValue,
}

/// A change to a user: absent fields keep their value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserChange {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

/// What a new API token should be: an optional label and lifetime (checked by the store,
/// so the API and the CLI share one rule).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenSpec {
    pub name: Option<String>,
    pub expires_in_days: Option<u32>,
}

/// A token as listed: everything but its value, which is never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenMeta {
    /// The public id: `DELETE /v1/tokens/{id}` names it.
    pub id: String,
    pub user_id: UserId,
    /// `api` (made by a person, lives until revoked or its expiry) or `access` (from
    /// client credentials, short-lived).
    pub kind: String,
    pub name: Option<String>,
    /// The first characters of the token, enough for its owner to recognise it.
    pub prefix: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

/// What a valid presented token grants: who, and until when the grant may be cached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenGrant {
    pub principal: Principal,
    pub token_id: String,
    pub expires_at: Option<Timestamp>,
}

/// Everything created with a new user.
#[derive(Debug)]
pub struct NewUser {
    pub user: User,
    pub token: IssuedToken,
    pub credentials: ClientCredentials,
}

/// Everything created with a new organization.
#[derive(Debug)]
pub struct NewOrganization {
    pub org: Organization,
    pub admin: NewUser,
}

/// A provider as it is to be saved (already validated by the caller).
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderWrite {
    pub provider: ProviderType,
    pub enabled: bool,
    pub config: Map<String, Value>,
    pub overrides: Overrides,
    /// `Some(r)`: store only if the provider is stored at revision `r`, else fail with
    /// [`StoreError::Stale`] and write nothing: a merge computed from an older read must be
    /// computed again. `None`: create or replace whatever is stored.
    pub expected_revision: Option<u64>,
}

/// A change to a secret: absent fields keep their value.
#[derive(Debug, Default)]
pub struct SecretUpdate {
    pub value: Option<SecretValue>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
}

/// An audit entry to append outside a management write, such as a denied attempt.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    pub action: String,
    pub resource: String,
    pub status: String,
    pub details: Value,
}

/// The first entry at which an organization's audit chain stops verifying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenLink {
    pub org_id: OrgId,
    pub entry_id: String,
    pub seq: i64,
    pub reason: String,
}

/// Progress of `keys rotate`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RotationReport {
    pub current_version: u32,
    pub rewrapped: u64,
    pub remaining: u64,
}

/// The control plane's persistence. Object safe; the server holds an `Arc<dyn Store>`.
pub trait Store: Send + Sync + 'static {
    /// Which back end this is: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Succeeds when the database answers.
    fn ping(&self) -> StoreFuture<'_, ()>;
    /// Whether the database takes writes now: a write transaction is begun and rolled back
    /// (SQLite: the write lock is taken; PostgreSQL: a connection answers inside a
    /// transaction).
    fn ping_write(&self) -> StoreFuture<'_, ()>;
    /// A number that grows with every committed management write; the server polls it to
    /// know when to rebuild its in-memory snapshot (writes may come from the CLI).
    fn config_version(&self) -> StoreFuture<'_, i64>;

    // Organizations and identity -------------------------------------------------------
    fn create_org<'a>(
        &'a self,
        name: &'a str,
        admin_email: &'a str,
        admin_password: Option<&'a SecretValue>,
    ) -> StoreFuture<'a, NewOrganization>;
    fn org_by_name<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Organization>>;
    fn list_orgs(&self) -> StoreFuture<'_, Vec<Organization>>;
    /// Whether any organization exists (without reading them all: the first-start check
    /// must not load 100,000 rows).
    fn has_organizations(&self) -> StoreFuture<'_, bool>;
    fn create_user<'a>(
        &'a self,
        org: OrgId,
        actor: &'a Actor,
        email: &'a str,
        role: Role,
        password: Option<&'a SecretValue>,
    ) -> StoreFuture<'a, NewUser>;
    fn user_by_email<'a>(&'a self, email: &'a str) -> StoreFuture<'a, Option<User>>;
    fn create_api_token<'a>(
        &'a self,
        org: OrgId,
        actor: &'a Actor,
        user: UserId,
    ) -> StoreFuture<'a, IssuedToken>;
    /// The principal a bearer token belongs to, if it is valid and unexpired.
    fn authenticate_token<'a>(&'a self, token: &'a str) -> StoreFuture<'a, Option<Principal>>;
    /// Like [`Store::authenticate_token`], with the token's id and expiry (which bound how
    /// long the data plane may trust the answer).
    fn verify_token<'a>(&'a self, token: &'a str) -> StoreFuture<'a, Option<TokenGrant>>;
    /// Records that a token was used at `at`. Not a management write (no audit entry, no
    /// config version: it must never invalidate caches); unknown ids are ignored.
    fn touch_token<'a>(&'a self, token_id: &'a str, at: Timestamp) -> StoreFuture<'a, ()>;

    // The identity lifecycle: every write below is audited and bumps the config version,
    // so every replica drops what it cached about the organization's tokens. -------------
    /// One user of the organization.
    fn get_user(&self, org: OrgId, user: UserId) -> StoreFuture<'_, Option<User>>;
    /// Changes role and/or disabled; disabling ends the user's sessions.
    /// `StoreError::LastAdmin` when it would leave the organization without an active admin.
    fn update_user<'a>(
        &'a self,
        org: OrgId,
        actor: &'a Actor,
        user: UserId,
        change: UserChange,
    ) -> StoreFuture<'a, User>;
    /// Deletes a user with their tokens, sessions and client credentials; their invocation
    /// records and audit entries stay. Returns the user as they were.
    /// `StoreError::LastAdmin` for the organization's last active admin.
    fn delete_user<'a>(
        &'a self,
        org: OrgId,
        actor: &'a Actor,
        user: UserId,
    ) -> StoreFuture<'a, User>;
    /// Issues an API token for `user`; `StoreError::Invalid` for a bad name or lifetime.
    fn create_token<'a>(
        &'a self,
        org: OrgId,
        actor: &'a Actor,
        user: UserId,
        spec: &'a TokenSpec,
    ) -> StoreFuture<'a, (TokenMeta, IssuedToken)>;
    /// A user's tokens, newest first (see `sql::LIST_TOKENS` for which).
    fn list_tokens(&self, org: OrgId, user: UserId) -> StoreFuture<'_, Vec<TokenMeta>>;
    fn get_token<'a>(&'a self, org: OrgId, id: &'a str) -> StoreFuture<'a, Option<TokenMeta>>;
    /// Deletes a token for good; `StoreError::NotFound` when the organization has no such
    /// token. Returns it as it was.
    fn revoke_token<'a>(
        &'a self,
        org: OrgId,
        actor: &'a Actor,
        id: &'a str,
    ) -> StoreFuture<'a, TokenMeta>;
    /// Exchanges client credentials for a short-lived access token.
    fn exchange_client_credentials<'a>(
        &'a self,
        client_id: &'a str,
        client_secret: &'a str,
        ttl_seconds: u64,
    ) -> StoreFuture<'a, Option<IssuedToken>>;
    /// The principal with this email and password, for the web UI's login.
    fn verify_password<'a>(
        &'a self,
        email: &'a str,
        password: &'a str,
    ) -> StoreFuture<'a, Option<Principal>>;

    // Providers and defaults ------------------------------------------------------------
    fn list_providers(&self, org: OrgId) -> StoreFuture<'_, Vec<ProviderRecord>>;
    fn get_provider(
        &self,
        org: OrgId,
        provider: ProviderType,
    ) -> StoreFuture<'_, Option<ProviderRecord>>;
    /// Creates or replaces; the flag says whether it created.
    fn put_provider<'a>(
        &'a self,
        org: OrgId,
        actor: &'a Actor,
        write: ProviderWrite,
    ) -> StoreFuture<'a, (ProviderRecord, bool)>;
    /// False when there was nothing to delete.
    fn delete_provider<'a>(
        &'a self,
        org: OrgId,
        actor: &'a Actor,
        provider: ProviderType,
    ) -> StoreFuture<'a, bool>;
    fn get_defaults(&self, org: OrgId) -> StoreFuture<'_, Option<DefaultsRecord>>;
    fn put_defaults<'a>(
        &'a self,
        org: OrgId,
        actor: &'a Actor,
        provider: ProviderType,
        model: &'a str,
    ) -> StoreFuture<'a, DefaultsRecord>;

    // Secrets ----------------------------------------------------------------------------
    fn list_secrets(&self, org: OrgId) -> StoreFuture<'_, Vec<SecretMeta>>;
    fn get_secret_meta<'a>(
        &'a self,
        org: OrgId,
        name: &'a str,
    ) -> StoreFuture<'a, Option<SecretMeta>>;
    /// `StoreError::Conflict` when the name is taken.
    fn create_secret<'a>(
        &'a self,
        org: OrgId,
        actor: &'a Actor,
        name: &'a str,
        value: SecretValue,
        description: Option<&'a str>,
    ) -> StoreFuture<'a, SecretMeta>;
    fn update_secret<'a>(
        &'a self,
        org: OrgId,
        actor: &'a Actor,
        name: &'a str,
        update: SecretUpdate,
    ) -> StoreFuture<'a, Option<SecretMeta>>;
    fn delete_secret<'a>(
        &'a self,
        org: OrgId,
        actor: &'a Actor,
        name: &'a str,
    ) -> StoreFuture<'a, bool>;
    /// Decrypts a secret; only to build an upstream request.
    fn reveal_secret<'a>(
        &'a self,
        org: OrgId,
        name: &'a str,
    ) -> StoreFuture<'a, Option<SecretValue>>;

    // Settings ---------------------------------------------------------------------------
    fn get_ai_settings(&self, org: OrgId) -> StoreFuture<'_, AiSettings>;
    /// Applies `change` to the stored settings in the write transaction; returns the result.
    fn put_ai_settings<'a>(
        &'a self,
        org: OrgId,
        actor: &'a Actor,
        change: AiSettingsChange,
    ) -> StoreFuture<'a, AiSettings>;

    // Audit ------------------------------------------------------------------------------
    /// Newest first; `before_seq` continues a previous page.
    fn list_audit(
        &self,
        org: OrgId,
        limit: u32,
        before_seq: Option<i64>,
    ) -> StoreFuture<'_, Vec<AuditEntry>>;
    fn append_audit<'a>(
        &'a self,
        org: OrgId,
        actor: &'a Actor,
        event: AuditEvent,
    ) -> StoreFuture<'a, AuditEntry>;
    /// Recomputes the organization's audit chain, then its invocation ledger; `Some` names
    /// the first broken entry (an audit entry id or an invocation id).
    fn verify_audit(&self, org: OrgId) -> StoreFuture<'_, Option<BrokenLink>>;

    // Keys -------------------------------------------------------------------------------
    /// Re-wraps up to `batch` data keys under the newest master key version.
    ///
    /// One call is one batch in its own transaction (the token pepper counts as a key too);
    /// call again until `remaining` is 0. Safe to interrupt, resume, or run concurrently.
    fn rotate_keys(&self, batch: u32) -> StoreFuture<'_, RotationReport>;

    // Data plane: everything the request path needs, loaded ahead of time --------------
    /// Everything the data plane needs to serve one organization, read in one consistent
    /// pass; `None` for an unknown organization.
    fn load_org_config(&self, org: OrgId) -> StoreFuture<'_, Option<OrgConfig>>;
    /// Decrypts a secret carried in an [`OrgConfig`], in memory (no database access): the
    /// request path calls it to build one upstream request.
    ///
    /// `StoreError::Crypto` when the secret was not sealed for this organization and name,
    /// or was altered; `StoreError::Key` when the master key version that wrapped it is no
    /// longer configured (a view loaded before a rotation: reload it).
    fn unseal(&self, org: OrgId, secret: &SealedSecret) -> StoreResult<SecretValue>;
    /// The public id and keyed digest of a presented bearer token, computed in memory;
    /// `None` when the token is not of our format. Lets the data plane check tokens it has
    /// seen before without the database.
    fn token_fingerprint(&self, token: &str) -> Option<TokenFingerprint>;
    /// The organizations whose configuration changed after `version` (from this process,
    /// another replica or the CLI), and the newest version.
    ///
    /// The change log keeps the newest 10 000 versions. When it cannot account for every
    /// version after `version` (too far behind, written before the log existed, or a
    /// version this database never reached), the answer lists every organization: reload
    /// everything.
    fn changes_since(&self, version: i64) -> StoreFuture<'_, ConfigChanges>;
    /// A live feed of change notifications from every process sharing the database
    /// (PostgreSQL `LISTEN`); `None` where there is none (SQLite: one node, polled).
    fn listen_for_changes(&self) -> StoreFuture<'_, Option<ChangeListener>>;

    // AI interactions ---------------------------------------------------------------------
    /// Appends invocation records to their organizations' ledgers (one transaction per
    /// organization). Content is kept, encrypted under the organization's key for the
    /// record's UTC day, only when the organization stores interaction data at the moment
    /// of the write. `StoreError::NotFound` when an organization does not exist.
    fn insert_invocations(&self, records: Vec<InvocationRecord>) -> StoreFuture<'_, InsertReport>;
    /// Writes one recorder batch, one transaction per organization: the running rows of
    /// invocations that began, and the final records of those that ended (appended like
    /// [`Store::insert_invocations`], their running rows deleted in the same transaction).
    /// The batch is borrowed: the recorder retries the same batch while the database is
    /// unavailable, and content is never copied for an attempt.
    fn write_invocations<'a>(&'a self, batch: &'a InvocationBatch)
    -> StoreFuture<'a, InsertReport>;
    /// An invocation that has begun and is not recorded yet (on any replica).
    fn running_invocation<'a>(
        &'a self,
        org: OrgId,
        id: &'a str,
    ) -> StoreFuture<'a, Option<RunningInvocation>>;
    /// Records that the serving process `instance` is alive (its running invocations are
    /// not to be recovered).
    fn heartbeat<'a>(&'a self, instance: &'a str, started_at: Timestamp) -> StoreFuture<'a, ()>;
    /// Turns the running invocations of every other process whose heartbeat is older than
    /// `stale_before` (or missing) into `Failed` records named [`INTERRUPTED`], at most
    /// `batch` of them; returns how many. Safe to run on every replica at once: each running
    /// row is claimed by the transaction that deletes it.
    fn recover_interrupted<'a>(
        &'a self,
        instance: &'a str,
        stale_before: Timestamp,
        batch: u32,
    ) -> StoreFuture<'a, u64>;
    /// One record of the organization, content decrypted when it is still kept.
    fn get_invocation<'a>(
        &'a self,
        org: OrgId,
        id: &'a str,
    ) -> StoreFuture<'a, Option<InvocationRecord>>;
    /// Newest first (`created_at`, then id), only those `filter` matches (members: their
    /// own), continuing after `cursor`.
    fn list_invocations(
        &self,
        org: OrgId,
        filter: InvocationFilter,
        limit: u32,
        cursor: Option<InvocationCursor>,
    ) -> StoreFuture<'_, Vec<InvocationRecord>>;
    /// Managed-provider invocations and tokens per organization since `since` (restores the
    /// limit counters after a restart).
    fn managed_usage(&self, since: Timestamp) -> StoreFuture<'_, Vec<ManagedUsage>>;
    // Shared managed-provider limits (see [`limits`]) ---------------------------------------
    /// Whether this back end keeps the limit counters for every replica (PostgreSQL). On
    /// SQLite the server keeps them in process and the `limit_*` calls answer `Invalid`.
    fn shares_limits(&self) -> bool;
    /// Admits (reserving one request, the estimate and a monthly unit) or refuses, atomically
    /// across replicas.
    fn limit_reserve<'a>(&'a self, ask: &'a LimitAsk) -> StoreFuture<'a, LimitDecision>;
    /// Replaces a reservation's estimate with the tokens used and ends its lease.
    fn limit_settle<'a>(
        &'a self,
        held: &'a LimitHeld,
        tokens: u64,
        now_ms: i64,
    ) -> StoreFuture<'a, ()>;
    /// Takes back a reservation still running, as if it had never been admitted.
    fn limit_refund<'a>(&'a self, held: &'a LimitHeld) -> StoreFuture<'a, ()>;
    /// An organization's counts at `now_ms` in `month`.
    fn limit_counts<'a>(
        &'a self,
        org: OrgId,
        now_ms: i64,
        month: &'a str,
    ) -> StoreFuture<'a, LimitCounts>;
    /// Raises monthly counts to at least the stored records' (never lowers one).
    fn limit_seed_monthly<'a>(
        &'a self,
        usage: &'a [ManagedUsage],
        month: &'a str,
    ) -> StoreFuture<'a, ()>;
    /// One bounded purge batch (see [`PurgePolicy`]); call again while `more`.
    fn purge_interactions(&self, policy: PurgePolicy) -> StoreFuture<'_, PurgeReport>;

    /// Requests, tokens, errors and latency percentiles per provider and model of the
    /// invocations created since `since` (only `user`'s when given), busiest first.
    fn usage(
        &self,
        org: OrgId,
        since: Timestamp,
        user: Option<UserId>,
    ) -> StoreFuture<'_, Vec<UsageRow>>;

    // Connection validations and people ---------------------------------------------------
    /// Keeps `record` as its provider's last validation, replacing the previous one. Not a
    /// management write: no audit entry, no config version (the result describes the
    /// upstream, not the configuration). `StoreError::NotFound` for an unknown organization.
    fn record_validation<'a>(
        &'a self,
        org: OrgId,
        record: &'a ValidationRecord,
    ) -> StoreFuture<'a, ()>;
    /// Every provider's last validation in the organization (deleting a provider forgets it).
    fn list_validations(&self, org: OrgId) -> StoreFuture<'_, Vec<ValidationRecord>>;
    /// The organization's users, by email (to name them in invocation listings).
    fn list_users(&self, org: OrgId) -> StoreFuture<'_, Vec<User>>;

    // Web UI sessions -------------------------------------------------------------------
    /// Starts a browser session for a principal (after a password login).
    fn create_session<'a>(
        &'a self,
        principal: &'a Principal,
        ttl_seconds: u64,
    ) -> StoreFuture<'a, IssuedSession>;
    /// The live session behind a session token, if it exists and has not expired.
    fn session<'a>(&'a self, token: &'a str) -> StoreFuture<'a, Option<SessionInfo>>;
    /// Ends a session (logout); ending an unknown session is not an error.
    fn delete_session<'a>(&'a self, token: &'a str) -> StoreFuture<'a, ()>;
}

/// Change notifications (`LISTEN switchboard_config`), sent by every committed write.
pub struct ChangeListener {
    inner: sqlx::postgres::PgListener,
}

impl ChangeListener {
    pub(crate) fn new(inner: sqlx::postgres::PgListener) -> Self {
        Self { inner }
    }

    /// Waits for the next notification. Also returns when the connection was lost and
    /// re-established (notifications may have been missed meanwhile), so the caller resyncs
    /// in both cases; an error means the database cannot be reached right now.
    pub async fn changed(&mut self) -> StoreResult<()> {
        self.inner.try_recv().await?;
        Ok(())
    }
}

/// One organization's configuration as the data plane holds it.
#[derive(Clone, Debug)]
pub struct OrgConfig {
    pub org: Organization,
    /// In the contract's type order; includes `managed`.
    pub providers: Vec<ProviderRecord>,
    pub defaults: Option<DefaultsRecord>,
    pub settings: AiSettings,
    /// Every secret of the organization, still encrypted.
    pub secrets: Vec<SealedSecret>,
    /// The config version this view reflects.
    pub version: i64,
}

/// A secret still encrypted, with what [`Store::unseal`] needs to decrypt it in memory
/// (the wrapped data key travels along; the master key never leaves the store).
#[derive(Clone)]
pub struct SealedSecret {
    pub name: String,
    pub ciphertext: Vec<u8>,
    pub wrapped_data_key: Vec<u8>,
    pub kek_version: u32,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A presented token's public id and keyed digest (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenFingerprint {
    pub public_id: String,
    pub digest: [u8; 32],
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigChanges {
    pub version: i64,
    pub orgs: Vec<OrgId>,
    /// When the oldest of these changes was committed (`None` when none was logged): how
    /// far behind the reader was, for the fan-out lag metric.
    pub oldest_at: Option<switchboard_core::records::Timestamp>,
}

/// A new browser session: the cookie value is shown once; the CSRF token is embedded in
/// forms and checked on every state-changing request.
#[derive(Debug)]
pub struct IssuedSession {
    pub token: SecretValue,
    pub csrf_token: String,
    pub expires_at: switchboard_core::records::Timestamp,
}

#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub principal: Principal,
    pub csrf_token: String,
    pub expires_at: switchboard_core::records::Timestamp,
}

/// Opens the database named by `url` (`sqlite://…` or `postgres://…`), applies pending
/// migrations, and unlocks the vault with `keys`. Calls have no deadline (the CLI's use).
pub async fn open(url: &str, keys: MasterKeyRing) -> StoreResult<Arc<dyn Store>> {
    backend::open(url, keys, StoreOptions::default()).await
}

/// [`open`] with options (the server's use).
pub async fn open_with(
    url: &str,
    keys: MasterKeyRing,
    options: StoreOptions,
) -> StoreResult<Arc<dyn Store>> {
    backend::open(url, keys, options).await
}

/// How a store is opened.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreOptions {
    /// The deadline of every call made while serving a request (and of SQLite's wait for
    /// its write lock); past it the call answers [`StoreError::Timeout`]. `None`: no
    /// deadline. Bulk jobs (`verify_audit`, `rotate_keys`, purge and recovery batches) are
    /// exempt: they are bounded per batch by their callers.
    pub call_timeout: Option<std::time::Duration>,
}

/// Applies pending migrations and returns the number applied.
pub async fn migrate(url: &str) -> StoreResult<u64> {
    backend::migrate(url).await
}

mod backend;
