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
];

pub(crate) struct PgStore {
    pool: Pool<Db>,
    vault: Vault,
}

impl PgStore {
    pub(crate) async fn open(url: &str, keys: MasterKeyRing) -> StoreResult<Self> {
        let pool = connect(url).await?;
        run_migrations(&pool, MIGRATIONS).await?;
        let mut tx = pool.begin().await?;
        let vault = Self::unlock_vault(&mut tx, keys).await?;
        tx.commit().await?;
        Ok(Self { pool, vault })
    }

    async fn write_tx(&self) -> StoreResult<Transaction<'static, Db>> {
        Ok(self.pool.begin().await?)
    }

    fn read_pool(&self) -> &Pool<Db> {
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

async fn connect(url: &str) -> StoreResult<Pool<Db>> {
    Ok(PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await?)
}

pub(crate) async fn migrate_only(url: &str) -> StoreResult<u64> {
    let pool = connect(url).await?;
    let applied = run_migrations(&pool, MIGRATIONS).await;
    pool.close().await;
    applied
}

ops_migrate!();
ops_audit!(PgStore);
ops_identity!(PgStore);
ops_config!(PgStore);
ops_secrets!(PgStore);
ops_keys!(PgStore);
ops_dataplane!(PgStore);
ops_sessions!(PgStore);
impl_store!(PgStore, "postgres");
