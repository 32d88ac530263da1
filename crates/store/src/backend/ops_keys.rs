//! Unlocking the vault at startup and re-wrapping keys under a new master key version,
//! written once for both back ends (see `ops_audit` for what the expansion site provides).

macro_rules! ops_keys {
    ($store:ty) => {
        impl $store {
            /// Loads the token pepper (creating it on the first start) and unlocks the
            /// vault; fails early when the ring lacks a version some stored key needs.
            async fn unlock_vault(conn: &mut Conn, ring: MasterKeyRing) -> StoreResult<Vault> {
                let in_use = sqlx::query(sql::KEK_VERSIONS_IN_USE)
                    .fetch_all(&mut *conn)
                    .await?;
                for row in &in_use {
                    let version = row.int("kek_version")?;
                    if !ring.versions().iter().any(|v| i64::from(*v) == version) {
                        return Err(StoreError::Key(format!(
                            "stored keys need master key version {version}, which is not configured"
                        )));
                    }
                }
                let wrapped = match Self::instance_key_in(conn).await? {
                    Some(wrapped) => wrapped,
                    None => {
                        let fresh =
                            crate::vault::new_wrapped_key(&ring, KeyOwner::Instance(PEPPER_KEY))?;
                        sqlx::query(sql::INSERT_INSTANCE_KEY)
                            .bind(PEPPER_KEY)
                            .bind(fresh.bytes)
                            .bind(i64::from(fresh.kek_version))
                            .bind(Timestamp::now().to_string())
                            .execute(&mut *conn)
                            .await?;
                        // Another process may have won the race: use whatever is stored.
                        Self::instance_key_in(conn)
                            .await?
                            .ok_or(StoreError::NotFound)?
                    }
                };
                Vault::unlock(ring, &wrapped)
            }

            async fn instance_key_in(conn: &mut Conn) -> StoreResult<Option<WrappedKey>> {
                sqlx::query(sql::GET_INSTANCE_KEY)
                    .bind(PEPPER_KEY)
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|row| rows::wrapped_key(&row))
                    .transpose()
            }

            /// One batch of at most `batch` keys, in its own transaction, so a rotation can
            /// be interrupted at any point and resumed by calling again. The conditional
            /// UPDATE makes concurrent rotations harmless.
            async fn op_rotate_keys(&self, batch: u32) -> StoreResult<RotationReport> {
                let current = i64::from(self.vault.ring().current_version());
                let limit = i64::from(batch.max(1));
                let now = Timestamp::now().to_string();
                let mut tx = self.write_tx().await?;
                let stale = sqlx::query(sql::STALE_DATA_KEYS)
                    .bind(current)
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
                let mut rewrapped = 0u64;
                for row in &stale {
                    let org = support::parse_org_id(&row.text("org_id")?)?;
                    let old = rows::wrapped_key(row)?;
                    let new = self.vault.rewrap(KeyOwner::Org(org), &old)?;
                    rewrapped += sqlx::query(sql::REWRAP_DATA_KEY)
                        .bind(new.bytes)
                        .bind(i64::from(new.kek_version))
                        .bind(&now)
                        .bind(org.to_string())
                        .bind(i64::from(old.kek_version))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                let left = limit - stale.len() as i64;
                if left > 0 {
                    rewrapped += self
                        .rewrap_instance_keys(&mut tx, current, left, &now)
                        .await?;
                    rewrapped += self
                        .rewrap_content_keys(&mut tx, current, left, &now)
                        .await?;
                }
                tx.commit().await?;
                Ok(RotationReport {
                    current_version: self.vault.ring().current_version(),
                    rewrapped,
                    remaining: self.count_stale(current).await?,
                })
            }

            async fn rewrap_instance_keys(
                &self,
                conn: &mut Conn,
                current: i64,
                limit: i64,
                now: &str,
            ) -> StoreResult<u64> {
                let stale = sqlx::query(sql::STALE_INSTANCE_KEYS)
                    .bind(current)
                    .bind(limit)
                    .fetch_all(&mut *conn)
                    .await?;
                let mut rewrapped = 0u64;
                for row in &stale {
                    let name = row.text("name")?;
                    let old = rows::wrapped_key(row)?;
                    let new = self.vault.rewrap(KeyOwner::Instance(&name), &old)?;
                    rewrapped += sqlx::query(sql::REWRAP_INSTANCE_KEY)
                        .bind(new.bytes)
                        .bind(i64::from(new.kek_version))
                        .bind(now)
                        .bind(&name)
                        .bind(i64::from(old.kek_version))
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                }
                Ok(rewrapped)
            }

            /// Content keys of interaction periods, like data keys but per (org, day).
            async fn rewrap_content_keys(
                &self,
                conn: &mut Conn,
                current: i64,
                limit: i64,
                now: &str,
            ) -> StoreResult<u64> {
                let stale = sqlx::query(sql::STALE_CONTENT_KEYS)
                    .bind(current)
                    .bind(limit)
                    .fetch_all(&mut *conn)
                    .await?;
                let mut rewrapped = 0u64;
                for row in &stale {
                    let org = support::parse_org_id(&row.text("org_id")?)?;
                    let period = row.text("period")?;
                    let old = rows::wrapped_key(row)?;
                    let new = self.vault.rewrap(KeyOwner::Content(org, &period), &old)?;
                    rewrapped += sqlx::query(sql::REWRAP_CONTENT_KEY)
                        .bind(new.bytes)
                        .bind(i64::from(new.kek_version))
                        .bind(now)
                        .bind(org.to_string())
                        .bind(&period)
                        .bind(i64::from(old.kek_version))
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                }
                Ok(rewrapped)
            }

            async fn count_stale(&self, current: i64) -> StoreResult<u64> {
                let mut total = 0i64;
                for statement in [
                    sql::COUNT_STALE_DATA_KEYS,
                    sql::COUNT_STALE_INSTANCE_KEYS,
                    sql::COUNT_STALE_CONTENT_KEYS,
                ] {
                    let row = sqlx::query(statement)
                        .bind(current)
                        .fetch_one(self.read_pool())
                        .await?;
                    total += row.int("n")?;
                }
                Ok(u64::try_from(total).unwrap_or(0))
            }
        }
    };
}
