//! PostgreSQL: the shared database behind several replicas.
//!
//! Writers on one organization serialize on its row (`FOR NO KEY UPDATE`, which does not
//! block foreign-key checks of concurrent inserts), so audit seq/prev_hash never race;
//! migrations serialize on a transaction-scoped advisory lock; every committed management
//! write also sends `NOTIFY switchboard_config` so replicas can reload without polling.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;

use super::support::prelude::*;

type Db = sqlx::Postgres;
type Conn = sqlx::PgConnection;

const LOCK_ORG_SQL: &str = "SELECT id FROM organizations WHERE id = $1 FOR NO KEY UPDATE";
/// Arbitrary but fixed: "sb-migr" in ASCII.
const MIGRATION_LOCK_ID: i64 = 0x0073_622d_6d69_6772;
const MAX_CONNECTIONS: u32 = 10;
/// How long a call waits for a pooled connection when no call deadline is set.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "data_plane",
        sql: include_str!("../../migrations/postgres/0002_data_plane.sql"),
    },
    Migration {
        version: 3,
        name: "interactions",
        sql: include_str!("../../migrations/postgres/0003_interactions.sql"),
    },
    Migration {
        version: 4,
        name: "validation",
        sql: include_str!("../../migrations/postgres/0004_validation.sql"),
    },
    Migration {
        version: 5,
        name: "durable_records",
        sql: include_str!("../../migrations/postgres/0005_durable_records.sql"),
    },
    Migration {
        version: 6,
        name: "provider_revision",
        sql: include_str!("../../migrations/postgres/0006_provider_revision.sql"),
    },
    Migration {
        version: 7,
        name: "identity_lifecycle",
        sql: include_str!("../../migrations/postgres/0007_identity_lifecycle.sql"),
    },
    Migration {
        version: 8,
        name: "shared_limits",
        sql: include_str!("../../migrations/postgres/0008_shared_limits.sql"),
    },
    Migration {
        version: 9,
        name: "append_only_audit",
        sql: include_str!("../../migrations/postgres/0009_append_only_audit.sql"),
    },
];

/// Locks the organization's invocation ledger head for the rest of the transaction.
const LOCK_CHAIN_SQL: &str = "SELECT seq, hash FROM invocation_chain WHERE org_id = $1 FOR UPDATE";
/// Arbitrary but fixed: "sb-purge" in ASCII.
const PURGE_LOCK_ID: i64 = 0x7362_2d70_7572_6765;

/// Only one replica purges at a time: a transaction-scoped advisory lock, released at commit.
/// A replica that does not get it skips this round rather than wait.
async fn try_purge_lock(conn: &mut Conn) -> StoreResult<bool> {
    use sqlx::Row;
    let row = sqlx::query("SELECT pg_try_advisory_xact_lock($1) AS locked")
        .bind(PURGE_LOCK_ID)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get::<bool, _>("locked")?)
}

pub(crate) struct PgStore {
    pool: Pool<Db>,
    vault: Vault,
    call_timeout: Option<Duration>,
}

impl PgStore {
    pub(crate) async fn open(
        url: &str,
        keys: MasterKeyRing,
        options: StoreOptions,
    ) -> StoreResult<Self> {
        let acquire = options.call_timeout.unwrap_or(ACQUIRE_TIMEOUT);
        let pool = connect(url, acquire).await?;
        run_migrations(&pool, MIGRATIONS).await?;
        let mut tx = pool.begin().await?;
        let vault = Self::unlock_vault(&mut tx, keys).await?;
        tx.commit().await?;
        let store = Self {
            pool,
            vault,
            call_timeout: options.call_timeout,
        };
        store.seal_legacy_heads().await?;
        Ok(store)
    }

    pub(super) fn write_pool(&self) -> &Pool<Db> {
        &self.pool
    }

    /// PostgreSQL keeps the managed-provider limits for every replica.
    fn op_shares_limits(&self) -> bool {
        true
    }

    /// A dedicated connection listening on the config channel.
    async fn op_listen_for_changes(&self) -> StoreResult<Option<crate::ChangeListener>> {
        let mut inner = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        inner.listen(crate::PG_CONFIG_CHANNEL).await?;
        Ok(Some(crate::ChangeListener::new(inner)))
    }

    async fn write_tx(&self) -> StoreResult<Transaction<'static, Db>> {
        Ok(self.pool.begin().await?)
    }

    pub(super) fn read_pool(&self) -> &Pool<Db> {
        &self.pool
    }

    /// One snapshot for every statement in it (the default, READ COMMITTED, would take a
    /// new one per statement), and read-only so it can never take a write lock.
    async fn read_tx(&self) -> StoreResult<Transaction<'static, Db>> {
        Ok(self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?)
    }

    /// Delivered to listeners only when the transaction commits.
    async fn notify_config(conn: &mut Conn, version: i64) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(crate::PG_CONFIG_CHANNEL)
            .bind(version.to_string())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

async fn begin_migration(pool: &Pool<Db>) -> StoreResult<Transaction<'static, Db>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK_ID)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

async fn connect(url: &str, acquire: Duration) -> StoreResult<Pool<Db>> {
    Ok(PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(acquire)
        .connect(url)
        .await?)
}

pub(crate) async fn migrate_only(url: &str) -> StoreResult<u64> {
    let pool = connect(url, ACQUIRE_TIMEOUT).await?;
    let applied = run_migrations(&pool, MIGRATIONS).await;
    pool.close().await;
    applied
}

ops_migrate!();
ops_audit!(PgStore);
ops_identity!(PgStore);
ops_lifecycle!(PgStore);
ops_config!(PgStore);
ops_secrets!(PgStore);
ops_keys!(PgStore);
ops_dataplane!(PgStore);
ops_sessions!(PgStore);
ops_interactions!(PgStore);
ops_reports!(PgStore);
impl_store!(PgStore, "postgres");
