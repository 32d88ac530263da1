//! The two back ends and what they share.
//!
//! `SqliteStore` and `PgStore` differ only in how they connect, begin a write transaction
//! and serialize writers; every `Store` method body is written once, in the `ops_*` macros,
//! and expanded for both types. A macro (rather than generics over `sqlx::Database`) keeps
//! the bodies plain, readable sqlx calls without a wall of trait bounds.

use std::path::PathBuf;
use std::sync::Arc;

use crate::{MasterKeyRing, Store, StoreError, StoreOptions, StoreResult};

pub(crate) mod sql;
#[macro_use]
mod ops_audit;
#[macro_use]
mod ops_config;
#[macro_use]
mod ops_dataplane;
#[macro_use]
mod ops_identity;
#[macro_use]
mod ops_interactions;
#[macro_use]
mod ops_keys;
#[macro_use]
mod ops_lifecycle;
#[macro_use]
mod ops_migrate;
#[macro_use]
mod ops_reports;
#[macro_use]
mod ops_secrets;
#[macro_use]
mod ops_sessions;
#[macro_use]
mod dispatch;
mod pg_limits;
mod postgres;
pub(crate) mod rows;
mod sqlite;
pub(crate) mod support;

/// Where the database lives, parsed from the configured URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DbUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DbUrl {
    /// `sqlite://rel/path.db` (relative to the working directory), `sqlite:///abs/path.db`,
    /// `sqlite:path.db`, or `postgres://…` / `postgresql://…`.
    pub fn parse(url: &str) -> StoreResult<Self> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbUrl::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| {
                StoreError::Url("expected a sqlite://… or postgres://… database url".into())
            })?;
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() {
            return Err(StoreError::Url("the sqlite url names no file".into()));
        }
        Ok(DbUrl::Sqlite(PathBuf::from(path)))
    }
}

pub(crate) async fn open(
    url: &str,
    keys: MasterKeyRing,
    options: StoreOptions,
) -> StoreResult<Arc<dyn Store>> {
    Ok(match DbUrl::parse(url)? {
        DbUrl::Sqlite(path) => Arc::new(sqlite::SqliteStore::open(&path, keys, options).await?),
        DbUrl::Postgres(url) => Arc::new(postgres::PgStore::open(&url, keys, options).await?),
    })
}

pub(crate) async fn migrate(url: &str) -> StoreResult<u64> {
    match DbUrl::parse(url)? {
        DbUrl::Sqlite(path) => sqlite::migrate_only(&path).await,
        DbUrl::Postgres(url) => postgres::migrate_only(&url).await,
    }
}

/// One embedded, forward-only schema migration.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        assert_eq!(
            DbUrl::parse("sqlite://switchboard-data/switchboard.db").unwrap(),
            DbUrl::Sqlite("switchboard-data/switchboard.db".into())
        );
        assert_eq!(
            DbUrl::parse("sqlite:///abs/path.db").unwrap(),
            DbUrl::Sqlite("/abs/path.db".into())
        );
        assert_eq!(
            DbUrl::parse("sqlite:x.db?mode=rwc").unwrap(),
            DbUrl::Sqlite("x.db".into())
        );
        assert!(matches!(
            DbUrl::parse("postgresql://u@h/db").unwrap(),
            DbUrl::Postgres(_)
        ));
        assert!(DbUrl::parse("mysql://x").is_err());
        assert!(DbUrl::parse("sqlite://").is_err());
    }
}
