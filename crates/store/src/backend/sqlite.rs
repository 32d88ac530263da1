//! SQLite: one file, WAL, one writer connection plus a small read pool.
//!
//! Every write transaction starts with `BEGIN IMMEDIATE` on the single writer connection,
//! so the write lock is taken up front: writers in this process queue on the pool, writers
//! in another process (the CLI) wait on `busy_timeout`, and no transaction ever has to
//! upgrade a read lock (the classic SQLite deadlock).

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::support::prelude::*;

type Db = sqlx::Sqlite;
type Conn = sqlx::SqliteConnection;

/// `BEGIN IMMEDIATE` already serializes all writers; this only proves the org exists.
const LOCK_ORG_SQL: &str = sql::ORG_EXISTS;
const READERS: u32 = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "data_plane",
        sql: include_str!("../../migrations/sqlite/0002_data_plane.sql"),
    },
    Migration {
        version: 3,
        name: "interactions",
        sql: include_str!("../../migrations/sqlite/0003_interactions.sql"),
    },
    Migration {
        version: 4,
        name: "validation",
        sql: include_str!("../../migrations/sqlite/0004_validation.sql"),
    },
    Migration {
        version: 5,
        name: "durable_records",
        sql: include_str!("../../migrations/sqlite/0005_durable_records.sql"),
    },
    Migration {
        version: 6,
        name: "provider_revision",
        sql: include_str!("../../migrations/sqlite/0006_provider_revision.sql"),
    },
    Migration {
        version: 7,
        name: "identity_lifecycle",
        sql: include_str!("../../migrations/sqlite/0007_identity_lifecycle.sql"),
    },
    Migration {
        version: 8,
        name: "shared_limits",
        sql: include_str!("../../migrations/sqlite/0008_shared_limits.sql"),
    },
    Migration {
        version: 9,
        name: "append_only_audit",
        sql: include_str!("../../migrations/sqlite/0009_append_only_audit.sql"),
    },
];

/// `BEGIN IMMEDIATE` already makes every purge batch the only writer.
const LOCK_CHAIN_SQL: &str = sql::INVOCATION_CHAIN_HEAD;

/// SQLite is one node: `BEGIN IMMEDIATE` already serializes purges with every other writer.
async fn try_purge_lock(_conn: &mut Conn) -> StoreResult<bool> {
    Ok(true)
}

pub(crate) struct SqliteStore {
    writer: Pool<Db>,
    reader: Pool<Db>,
    vault: Vault,
    call_timeout: Option<Duration>,
}

impl SqliteStore {
    pub(crate) async fn open(
        path: &Path,
        keys: MasterKeyRing,
        options: StoreOptions,
    ) -> StoreResult<Self> {
        // A write waits for another process's lock no longer than a call may take.
        let busy = options.call_timeout.unwrap_or(BUSY_TIMEOUT);
        let writer = connect(path, 1, busy).await?;
        run_migrations(&writer, MIGRATIONS).await?;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
        let vault = Self::unlock_vault(&mut tx, keys).await?;
        tx.commit().await?;
        let reader = connect(path, READERS, busy).await?;
        let store = Self {
            writer,
            reader,
            vault,
            call_timeout: options.call_timeout,
        };
        store.seal_legacy_heads().await?;
        Ok(store)
    }

    fn write_pool(&self) -> &Pool<Db> {
        &self.writer
    }

    /// One node: the server keeps the limits in process.
    fn op_shares_limits(&self) -> bool {
        false
    }

    async fn op_limit_reserve(&self, _: &crate::LimitAsk) -> StoreResult<crate::LimitDecision> {
        Err(no_shared_limits())
    }

    async fn op_limit_settle(&self, _: &crate::LimitHeld, _: u64, _: i64) -> StoreResult<()> {
        Err(no_shared_limits())
    }

    async fn op_limit_refund(&self, _: &crate::LimitHeld) -> StoreResult<()> {
        Err(no_shared_limits())
    }

    async fn op_limit_counts(&self, _: OrgId, _: i64, _: &str) -> StoreResult<crate::LimitCounts> {
        Err(no_shared_limits())
    }

    async fn op_limit_seed_monthly(&self, _: &[ManagedUsage], _: &str) -> StoreResult<()> {
        Err(no_shared_limits())
    }

    /// One node: nothing to listen to (the server polls).
    async fn op_listen_for_changes(&self) -> StoreResult<Option<crate::ChangeListener>> {
        Ok(None)
    }

    async fn write_tx(&self) -> StoreResult<Transaction<'static, Db>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    fn read_pool(&self) -> &Pool<Db> {
        &self.reader
    }

    /// A deferred transaction on a reader: in WAL mode its first read pins a snapshot that
    /// every later read in it shares, while writers carry on.
    async fn read_tx(&self) -> StoreResult<Transaction<'static, Db>> {
        Ok(self.reader.begin().await?)
    }

    /// Single-node SQLite needs no cross-process notification: the server polls
    /// `config_version`, and in-process watchers are the server's business.
    async fn notify_config(_conn: &mut Conn, _version: i64) -> StoreResult<()> {
        Ok(())
    }
}

fn no_shared_limits() -> StoreError {
    StoreError::Invalid("SQLite keeps the managed-provider limits in the server process".into())
}

async fn begin_migration(pool: &Pool<Db>) -> StoreResult<Transaction<'static, Db>> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

/// Opens a pool on the file, creating the file and its parent directory when missing.
async fn connect(path: &Path, max_connections: u32, busy: Duration) -> StoreResult<Pool<Db>> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(busy)
        .foreign_keys(true);
    Ok(SqlitePoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(busy.max(Duration::from_secs(1)))
        .connect_with(options)
        .await?)
}

pub(crate) async fn migrate_only(path: &Path) -> StoreResult<u64> {
    let pool = connect(path, 1, BUSY_TIMEOUT).await?;
    let applied = run_migrations(&pool, MIGRATIONS).await;
    pool.close().await;
    applied
}

ops_migrate!();
ops_audit!(SqliteStore);
ops_identity!(SqliteStore);
ops_lifecycle!(SqliteStore);
ops_config!(SqliteStore);
ops_secrets!(SqliteStore);
ops_keys!(SqliteStore);
ops_dataplane!(SqliteStore);
ops_sessions!(SqliteStore);
ops_interactions!(SqliteStore);
ops_reports!(SqliteStore);
impl_store!(SqliteStore, "sqlite");
