//! Audit chain appends and reads, the config version counter, and the shared tail of every
//! management write. Expanded once per back end by `ops_audit!(StoreType)`; the expansion
//! site provides `Db`, `Conn`, `LOCK_ORG_SQL`, `write_tx`, `read_tx`, `read_pool` and
//! `notify_config`.

macro_rules! ops_audit {
    ($store:ty) => {
        impl $store {
            /// Serializes writers on one organization and proves it exists: a missing or
            /// foreign organization is `NotFound` before anything is written.
            async fn lock_org(conn: &mut Conn, org: OrgId) -> StoreResult<()> {
                sqlx::query(LOCK_ORG_SQL)
                    .bind(org.to_string())
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|_| ())
                    .ok_or(StoreError::NotFound)
            }

            /// Appends `event` to the organization's chain inside the caller's transaction,
            /// which must hold the organization lock (`lock_org`) so seq and prev_hash
            /// cannot race.
            async fn append_audit_in(
                conn: &mut Conn,
                org: OrgId,
                actor: &Actor,
                event: &AuditEvent,
            ) -> StoreResult<StoredAudit> {
                let last = sqlx::query(sql::LAST_AUDIT)
                    .bind(org.to_string())
                    .fetch_optional(&mut *conn)
                    .await?;
                let last = match last {
                    Some(row) => Some((row.int("seq")?, row.text("hash")?)),
                    None => None,
                };
                let entry = StoredAudit::next(org, last, actor, event)?;
                sqlx::query(sql::INSERT_AUDIT)
                    .bind(&entry.id)
                    .bind(&entry.org_id)
                    .bind(entry.seq)
                    .bind(&entry.at)
                    .bind(&entry.actor)
                    .bind(&entry.action)
                    .bind(&entry.resource)
                    .bind(&entry.status)
                    .bind(&entry.details)
                    .bind(&entry.prev_hash)
                    .bind(&entry.hash)
                    .execute(&mut *conn)
                    .await?;
                Ok(entry)
            }

            /// Bumps the config version and logs which organization the write changed
            /// (for `changes_since`), in the caller's transaction. The version row's lock
            /// serializes bumps, so logged versions are consecutive and commit in order.
            async fn bump_config(conn: &mut Conn, org: OrgId) -> StoreResult<i64> {
                let row = sqlx::query(sql::BUMP_CONFIG_VERSION)
                    .fetch_one(&mut *conn)
                    .await?;
                let version = row.int("version")?;
                sqlx::query(sql::INSERT_CONFIG_CHANGE)
                    .bind(version)
                    .bind(org.to_string())
                    .bind(Timestamp::now().to_string())
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(sql::PRUNE_CONFIG_CHANGES)
                    .bind(version - support::CONFIG_CHANGES_KEPT)
                    .execute(&mut *conn)
                    .await?;
                Self::notify_config(conn, version).await?;
                Ok(version)
            }

            /// The common tail of a management write: its audit entry and the config
            /// version bump commit together with the change itself.
            async fn finish_write(
                mut tx: Transaction<'static, Db>,
                org: OrgId,
                actor: &Actor,
                event: AuditEvent,
            ) -> StoreResult<()> {
                Self::append_audit_in(&mut tx, org, actor, &event).await?;
                Self::bump_config(&mut tx, org).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn op_config_version(&self) -> StoreResult<i64> {
                Self::config_version_in(&mut *self.read_pool().acquire().await?).await
            }

            async fn config_version_in(conn: &mut Conn) -> StoreResult<i64> {
                let row = sqlx::query(sql::CONFIG_VERSION)
                    .fetch_one(&mut *conn)
                    .await?;
                row.int("version")
            }

            async fn op_append_audit(
                &self,
                org: OrgId,
                actor: &Actor,
                event: AuditEvent,
            ) -> StoreResult<AuditEntry> {
                let mut tx = self.write_tx().await?;
                Self::lock_org(&mut tx, org).await?;
                let entry = Self::append_audit_in(&mut tx, org, actor, &event).await?;
                tx.commit().await?;
                entry.to_entry()
            }

            async fn op_list_audit(
                &self,
                org: OrgId,
                limit: u32,
                before_seq: Option<i64>,
            ) -> StoreResult<Vec<AuditEntry>> {
                let rows = sqlx::query(sql::LIST_AUDIT)
                    .bind(org.to_string())
                    .bind(before_seq.unwrap_or(i64::MAX))
                    .bind(i64::from(limit.clamp(1, 1000)))
                    .fetch_all(self.read_pool())
                    .await?;
                rows.iter()
                    .map(|row| rows::audit(row)?.to_entry())
                    .collect()
            }

            /// Walks the chain in pages so a long log never sits in memory at once.
            async fn op_verify_audit(&self, org: OrgId) -> StoreResult<Option<BrokenLink>> {
                const PAGE: i64 = 500;
                let mut verifier = ChainVerifier::new(org);
                loop {
                    let rows = sqlx::query(sql::AUDIT_PAGE)
                        .bind(org.to_string())
                        .bind(verifier.last_seq())
                        .bind(PAGE)
                        .fetch_all(self.read_pool())
                        .await?;
                    for row in &rows {
                        if let Some(broken) = verifier.check(&rows::audit(row)?) {
                            return Ok(Some(broken));
                        }
                    }
                    if (rows.len() as i64) < PAGE {
                        return self.verify_invocation_ledger(org).await;
                    }
                }
            }
        }
    };
}
