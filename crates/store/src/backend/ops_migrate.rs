//! The migration runner, written once for both back ends. The expansion site provides
//! `Db` and `begin_migration`, which takes whatever lock keeps two processes from migrating
//! at the same time.

macro_rules! ops_migrate {
    () => {
        /// Applies the embedded migrations not yet recorded in `schema_migrations`, all in
        /// one transaction; returns how many it applied (0 when up to date).
        async fn run_migrations(pool: &Pool<Db>, migrations: &[Migration]) -> StoreResult<u64> {
            let mut tx = begin_migration(pool).await?;
            sqlx::query(sql::CREATE_MIGRATIONS_TABLE)
                .execute(&mut *tx)
                .await?;
            let applied = sqlx::query(sql::APPLIED_MIGRATIONS)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| Ok((row.int("version")?, row.text("checksum")?)))
                .collect::<StoreResult<Vec<_>>>()?;
            support::check_applied(&applied, migrations)?;
            let mut count = 0;
            for migration in migrations {
                if applied
                    .iter()
                    .any(|(version, _)| *version == migration.version)
                {
                    continue;
                }
                sqlx::raw_sql(migration.sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(|source| StoreError::Migration {
                        version: migration.version,
                        name: migration.name.to_owned(),
                        source,
                    })?;
                sqlx::query(sql::RECORD_MIGRATION)
                    .bind(migration.version)
                    .bind(migration.name)
                    .bind(support::sha256_hex(migration.sql))
                    .bind(Timestamp::now().to_string())
                    .execute(&mut *tx)
                    .await?;
                count += 1;
            }
            tx.commit().await?;
            if count > 0 {
                tracing::info!(applied = count, "applied schema migrations");
            }
            Ok(count)
        }
    };
}
