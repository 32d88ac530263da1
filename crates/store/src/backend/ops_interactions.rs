//! Invocation records, their ledger and the content purge, written once for both back ends
//! (see `ops_audit` for what the expansion site provides; this one also needs
//! `LOCK_CHAIN_SQL` and `try_purge_lock`).
//!
//! Writes come from the server's recorder in batches: one transaction per organization
//! appends the batch to that organization's ledger, holding its ledger head row, so seq and
//! prev_hash never race and the per-organization cost is one lock per batch rather than
//! one per invocation. Whether content is kept is decided inside that transaction from the
//! organization's settings, so `storeInteractionData=false` applies to every record written
//! after the setting committed.

macro_rules! ops_interactions {
    ($store:ty) => {
        impl $store {
            async fn op_insert_invocations(
                &self,
                records: Vec<InvocationRecord>,
            ) -> StoreResult<InsertReport> {
                let batch = InvocationBatch {
                    begun: Vec::new(),
                    ended: records,
                };
                self.op_write_invocations(&batch).await
            }

            async fn op_write_invocations(
                &self,
                batch: &InvocationBatch,
            ) -> StoreResult<InsertReport> {
                type PerOrg<'b> = (Vec<&'b RunningInvocation>, Vec<&'b InvocationRecord>);
                let mut by_org: std::collections::BTreeMap<OrgId, PerOrg<'_>> =
                    std::collections::BTreeMap::new();
                for running in &batch.begun {
                    by_org.entry(running.org_id).or_default().0.push(running);
                }
                for record in &batch.ended {
                    by_org.entry(record.org_id).or_default().1.push(record);
                }
                let mut report = InsertReport::default();
                for (org, (begun, ended)) in by_org {
                    let mut tx = self.write_tx().await?;
                    for running in begun {
                        Self::insert_running_row(&mut tx, running).await?;
                    }
                    if !ended.is_empty() {
                        self.append_to_ledger(&mut tx, org, &ended, &mut report)
                            .await?;
                    }
                    tx.commit().await?;
                }
                Ok(report)
            }

            /// Appends `records` to the organization's ledger (holding its head) and removes
            /// their running rows.
            async fn append_to_ledger(
                &self,
                tx: &mut Conn,
                org: OrgId,
                records: &[&InvocationRecord],
                report: &mut InsertReport,
            ) -> StoreResult<()> {
                let (mut seq, mut hash) = Self::lock_invocation_chain(&mut *tx, org).await?;
                let settings = Self::ai_settings_in(&mut *tx, org)
                    .await?
                    .unwrap_or_default();
                let mut keys = std::collections::HashMap::new();
                for &record in records {
                    sqlx::query(sql::DELETE_RUNNING_INVOCATION)
                        .bind(org.to_string())
                        .bind(&record.id)
                        .execute(&mut *tx)
                        .await?;
                    seq += 1;
                    let mut id = record.id.clone();
                    // The id is almost always free; a clash (another replica stored the
                    // same caller-chosen id) is detected by the insert itself.
                    let row = loop {
                        let row = StoredInvocation::new(record, &id, seq, &hash)?;
                        let content = match (&record.content, settings.store_interaction_data) {
                            (Some(content), true) => Some(
                                self.seal_content(&mut *tx, org, record, &id, content, &mut keys)
                                    .await?,
                            ),
                            _ => None,
                        };
                        if Self::insert_invocation_row(&mut *tx, &row, content).await? {
                            break row;
                        }
                        id = super::support::renamed_invocation_id(&record.id);
                    };
                    if id != record.id {
                        report.renamed.push((record.id.clone(), id));
                    }
                    hash = row.hash;
                    report.inserted += 1;
                }
                let org_text = org.to_string();
                sqlx::query(sql::UPDATE_INVOCATION_CHAIN)
                    .bind(&org_text)
                    .bind(seq)
                    .bind(&hash)
                    .bind(self.vault.ledger_seal(&org_text, seq, &hash))
                    .execute(&mut *tx)
                    .await?;
                Ok(())
            }

            async fn insert_running_row(
                conn: &mut Conn,
                running: &RunningInvocation,
            ) -> StoreResult<()> {
                sqlx::query(sql::INSERT_RUNNING_INVOCATION)
                    .bind(running.org_id.to_string())
                    .bind(&running.id)
                    .bind(running.user_id.to_string())
                    .bind(&running.surface)
                    .bind(&running.request_id)
                    .bind(super::support::to_json_text(&running.labels)?)
                    .bind(running.created_at.to_string())
                    .bind(&running.instance_id)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::not_found_on_foreign_key)?;
                Ok(())
            }

            async fn op_running_invocation(
                &self,
                org: OrgId,
                id: &str,
            ) -> StoreResult<Option<RunningInvocation>> {
                sqlx::query(sql::GET_RUNNING_INVOCATION)
                    .bind(org.to_string())
                    .bind(id)
                    .fetch_optional(self.read_pool())
                    .await?
                    .map(|row| rows::running_invocation(&row))
                    .transpose()
            }

            async fn op_heartbeat(&self, instance: &str, started_at: Timestamp) -> StoreResult<()> {
                sqlx::query(sql::UPSERT_INSTANCE)
                    .bind(instance)
                    .bind(started_at.to_string())
                    .bind(Timestamp::now().to_string())
                    .execute(self.write_pool())
                    .await?;
                Ok(())
            }

            /// Each orphaned row is claimed by deleting it inside the transaction that
            /// appends its `interrupted` record, so two replicas recovering at once never
            /// record one invocation twice.
            async fn op_recover_interrupted(
                &self,
                instance: &str,
                stale_before: Timestamp,
                batch: u32,
            ) -> StoreResult<u64> {
                let found = sqlx::query(sql::ORPHANED_RUNNING_INVOCATIONS)
                    .bind(instance)
                    .bind(stale_before.to_string())
                    .bind(i64::from(batch.max(1)))
                    .fetch_all(self.read_pool())
                    .await?;
                let orphans = found
                    .iter()
                    .map(rows::running_invocation)
                    .collect::<StoreResult<Vec<_>>>()?;
                let mut recovered = 0;
                for running in orphans {
                    let mut tx = self.write_tx().await?;
                    let claimed = sqlx::query(sql::DELETE_RUNNING_INVOCATION)
                        .bind(running.org_id.to_string())
                        .bind(&running.id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if claimed == 1 {
                        let record = running.interrupted(Timestamp::now());
                        let mut report = InsertReport::default();
                        self.append_to_ledger(&mut tx, running.org_id, &[&record], &mut report)
                            .await?;
                        recovered += 1;
                    }
                    tx.commit().await?;
                }
                sqlx::query(sql::DELETE_DEAD_INSTANCES)
                    .bind(stale_before.to_string())
                    .execute(self.write_pool())
                    .await?;
                Ok(recovered)
            }

            /// Seals ledger heads written before seals existed (once, when the store opens).
            async fn seal_legacy_heads(&self) -> StoreResult<()> {
                let found = sqlx::query(sql::UNSEALED_INVOCATION_CHAINS)
                    .fetch_all(self.write_pool())
                    .await?;
                for row in &found {
                    let org = row.text("org_id")?;
                    let seal = self
                        .vault
                        .ledger_seal(&org, row.int("seq")?, &row.text("hash")?);
                    sqlx::query(sql::SEAL_INVOCATION_CHAIN)
                        .bind(&org)
                        .bind(seal)
                        .execute(self.write_pool())
                        .await?;
                }
                Ok(())
            }

            /// Locks the organization's ledger head, creating it on the first write;
            /// returns the last seq and hash. An unknown organization is `NotFound`.
            async fn lock_invocation_chain(
                conn: &mut Conn,
                org: OrgId,
            ) -> StoreResult<(i64, String)> {
                let head = sqlx::query(LOCK_CHAIN_SQL)
                    .bind(org.to_string())
                    .fetch_optional(&mut *conn)
                    .await?;
                if let Some(row) = head {
                    return Ok((row.int("seq")?, row.text("hash")?));
                }
                sqlx::query(sql::ENSURE_INVOCATION_CHAIN)
                    .bind(org.to_string())
                    .bind(audit::GENESIS_HASH)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::not_found_on_foreign_key)?;
                let row = sqlx::query(LOCK_CHAIN_SQL)
                    .bind(org.to_string())
                    .fetch_one(&mut *conn)
                    .await?;
                Ok((row.int("seq")?, row.text("hash")?))
            }

            /// Inserts the row unless its id is taken in its organization (`false`).
            async fn insert_invocation_row(
                conn: &mut Conn,
                row: &StoredInvocation,
                content: Option<(String, Vec<u8>)>,
            ) -> StoreResult<bool> {
                let (period, blob) = content.unzip();
                let done = sqlx::query(sql::INSERT_INVOCATION)
                    .bind(&row.id)
                    .bind(&row.org_id)
                    .bind(row.seq)
                    .bind(&row.user_id)
                    .bind(&row.surface)
                    .bind(&row.provider)
                    .bind(&row.model)
                    .bind(&row.status)
                    .bind(&row.error_name)
                    .bind(&row.request_id)
                    .bind(&row.labels)
                    .bind(&row.tools)
                    .bind(row.metered)
                    .bind(row.input_tokens)
                    .bind(row.output_tokens)
                    .bind(row.first_token_ms)
                    .bind(row.total_ms)
                    .bind(&row.created_at)
                    .bind(&row.finished_at)
                    .bind(&row.prev_hash)
                    .bind(&row.hash)
                    .bind(period)
                    .bind(blob)
                    .execute(&mut *conn)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            /// Encrypts one record's content under its period's key (created on first use).
            async fn seal_content(
                &self,
                conn: &mut Conn,
                org: OrgId,
                record: &InvocationRecord,
                id: &str,
                content: &InvocationContent,
                keys: &mut std::collections::HashMap<String, ContentKey>,
            ) -> StoreResult<(String, Vec<u8>)> {
                let period = interactions::period_of(record.created_at);
                if !keys.contains_key(&period) {
                    let key = self.content_key_for_write(conn, org, &period).await?;
                    keys.insert(period.clone(), key);
                }
                let key = keys.get(&period).ok_or(StoreError::Crypto)?;
                let plain = zeroize::Zeroizing::new(
                    serde_json::to_vec(content).map_err(StoreError::corrupt)?,
                );
                let blob = key.seal(id, &plain)?;
                Ok((period, blob))
            }

            async fn content_key_for_write(
                &self,
                conn: &mut Conn,
                org: OrgId,
                period: &str,
            ) -> StoreResult<ContentKey> {
                if let Some(wrapped) = Self::content_key_in(conn, org, period).await? {
                    return self.vault.content_key(org, period, &wrapped);
                }
                let fresh = self
                    .vault
                    .new_wrapped_key(KeyOwner::Content(org, period))?;
                sqlx::query(sql::INSERT_CONTENT_KEY)
                    .bind(org.to_string())
                    .bind(period)
                    .bind(&fresh.bytes)
                    .bind(i64::from(fresh.kek_version))
                    .bind(Timestamp::now().to_string())
                    .execute(&mut *conn)
                    .await?;
                let stored = Self::content_key_in(conn, org, period)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                self.vault.content_key(org, period, &stored)
            }

            async fn content_key_in(
                conn: &mut Conn,
                org: OrgId,
                period: &str,
            ) -> StoreResult<Option<WrappedKey>> {
                sqlx::query(sql::GET_CONTENT_KEY)
                    .bind(org.to_string())
                    .bind(period)
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|row| rows::wrapped_key(&row))
                    .transpose()
            }

            async fn op_get_invocation(
                &self,
                org: OrgId,
                id: &str,
            ) -> StoreResult<Option<InvocationRecord>> {
                let mut conn = self.read_pool().acquire().await?;
                let Some(row) = sqlx::query(sql::GET_INVOCATION)
                    .bind(org.to_string())
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?
                else {
                    return Ok(None);
                };
                let mut keys = std::collections::HashMap::new();
                self.invocation_from_row(&mut conn, org, &row, &mut keys)
                    .await
                    .map(Some)
            }

            async fn op_list_invocations(
                &self,
                org: OrgId,
                filter: InvocationFilter,
                limit: u32,
                cursor: Option<InvocationCursor>,
            ) -> StoreResult<Vec<InvocationRecord>> {
                let (created_at, id) = match cursor {
                    Some(c) => (c.created_at, c.id),
                    // Sorts after every stored timestamp: the first page.
                    None => ("9999".to_owned(), String::new()),
                };
                let statement = match (filter.narrows_beyond_user(), filter.user) {
                    (true, _) => sql::LIST_FILTERED_INVOCATIONS,
                    (false, Some(_)) => sql::LIST_USER_INVOCATIONS,
                    (false, None) => sql::LIST_INVOCATIONS,
                };
                let mut conn = self.read_pool().acquire().await?;
                let mut query = sqlx::query(statement)
                    .bind(org.to_string())
                    .bind(created_at)
                    .bind(id)
                    .bind(i64::from(limit.clamp(1, 1000)));
                if filter.narrows_beyond_user() {
                    query = query
                        .bind(filter.user.map(|u| u.to_string()))
                        .bind(filter.provider.map(|p| p.as_str().to_owned()))
                        .bind(filter.model)
                        .bind(filter.status.map(|s| s.as_str().to_owned()));
                } else if let Some(user) = filter.user {
                    query = query.bind(user.to_string());
                }
                let found = query.fetch_all(&mut *conn).await?;
                let mut keys = std::collections::HashMap::new();
                let mut records = Vec::with_capacity(found.len());
                for row in &found {
                    records.push(
                        self.invocation_from_row(&mut conn, org, row, &mut keys)
                            .await?,
                    );
                }
                Ok(records)
            }

            /// Maps a row, decrypting its content when its period key still exists. Content
            /// that does not open (erased key, tampering) reads as absent; tampering with the
            /// metadata is what `verify_audit` reports.
            async fn invocation_from_row(
                &self,
                conn: &mut Conn,
                org: OrgId,
                row: &<Db as sqlx::Database>::Row,
                keys: &mut std::collections::HashMap<String, Option<ContentKey>>,
            ) -> StoreResult<InvocationRecord> {
                let (stored, sealed) = rows::invocation(row)?;
                let content = match sealed {
                    Some((period, blob)) => {
                        if !keys.contains_key(&period) {
                            let key = match Self::content_key_in(conn, org, &period).await? {
                                Some(wrapped) => {
                                    Some(self.vault.content_key(org, &period, &wrapped)?)
                                }
                                None => None,
                            };
                            keys.insert(period.clone(), key);
                        }
                        keys.get(&period)
                            .and_then(Option::as_ref)
                            .and_then(|key| open_content(key, &stored.id, &blob))
                    }
                    None => None,
                };
                stored.to_record(content)
            }

            async fn op_managed_usage(&self, since: Timestamp) -> StoreResult<Vec<ManagedUsage>> {
                let found = sqlx::query(sql::MANAGED_USAGE)
                    .bind(since.to_string())
                    .fetch_all(self.read_pool())
                    .await?;
                found
                    .iter()
                    .map(|row| {
                        Ok(ManagedUsage {
                            org_id: support::parse_org_id(&row.text("org_id")?)?,
                            invocations: u64::try_from(row.int("n")?).unwrap_or(0),
                            tokens: u64::try_from(row.int("tokens")?).unwrap_or(0),
                        })
                    })
                    .collect()
            }

            /// One bounded batch: delete the keys of periods whose retention ended (which
            /// makes their content unreadable everywhere at once), then clear up to `batch`
            /// ciphertexts left without a key. Every step is idempotent, so an interrupted
            /// purge simply continues on the next call.
            async fn op_purge_interactions(&self, policy: PurgePolicy) -> StoreResult<PurgeReport> {
                let mut tx = self.write_tx().await?;
                if !try_purge_lock(&mut tx).await? {
                    return Ok(PurgeReport {
                        locked_elsewhere: true,
                        ..PurgeReport::default()
                    });
                }
                let expired = Self::expired_content_keys(&mut tx, &policy).await?;
                let batch = usize::try_from(policy.batch.max(1)).unwrap_or(usize::MAX);
                let mut report = PurgeReport::default();
                for (org, period) in expired.iter().take(batch) {
                    report.keys_deleted += sqlx::query(sql::DELETE_CONTENT_KEY)
                        .bind(org)
                        .bind(period)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                report.contents_erased = sqlx::query(sql::ERASE_ORPHANED_CONTENT)
                    .bind(i64::from(policy.batch.max(1)))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                report.more = expired.len() > batch
                    || report.contents_erased >= u64::from(policy.batch.max(1));
                Ok(report)
            }

            /// `(org_id, period)` of every content key whose retention ended. Only periods
            /// before today can have (retention is at least one day); at most one key per
            /// organization and day is kept, so the scan stays small.
            async fn expired_content_keys(
                conn: &mut Conn,
                policy: &PurgePolicy,
            ) -> StoreResult<Vec<(String, String)>> {
                let found = sqlx::query(sql::OLD_CONTENT_KEYS)
                    .bind(interactions::period_of(policy.now))
                    .fetch_all(&mut *conn)
                    .await?;
                let default_days = AiSettings::default().retention_days;
                let mut expired = Vec::new();
                for row in &found {
                    let org_days = row
                        .opt_int("retention_days")?
                        .and_then(|d| u32::try_from(d).ok())
                        .unwrap_or(default_days);
                    let days = org_days.min(policy.max_retention_days).max(1);
                    let period = row.text("period")?;
                    if interactions::period_expired(&period, days, policy.now) {
                        expired.push((row.text("org_id")?, period));
                    }
                }
                Ok(expired)
            }

            /// The organization's invocation ledger, verified in pages, then checked to end
            /// at its head row.
            async fn verify_invocation_ledger(&self, org: OrgId) -> StoreResult<Option<BrokenLink>> {
                const PAGE: i64 = 500;
                let mut verifier = LedgerVerifier::new(org);
                loop {
                    let found = sqlx::query(sql::INVOCATION_LEDGER_PAGE)
                        .bind(org.to_string())
                        .bind(verifier.last_seq())
                        .bind(PAGE)
                        .fetch_all(self.read_pool())
                        .await?;
                    for row in &found {
                        let (stored, _) = rows::invocation(row)?;
                        if let Some(broken) = verifier.check(&stored) {
                            return Ok(Some(broken));
                        }
                    }
                    if (found.len() as i64) < PAGE {
                        break;
                    }
                }
                let Some(row) = sqlx::query(sql::INVOCATION_CHAIN_HEAD)
                    .bind(org.to_string())
                    .fetch_optional(self.read_pool())
                    .await?
                else {
                    return Ok(verifier.finish(None));
                };
                let (seq, hash) = (row.int("seq")?, row.text("hash")?);
                let sealed = row.opt_text("seal")?.is_some_and(|seal| {
                    seal == self.vault.ledger_seal(&org.to_string(), seq, &hash)
                });
                if !sealed {
                    return Ok(Some(verifier.unsealed_head(seq)));
                }
                Ok(verifier.finish(Some((seq, hash))))
            }
        }

        /// Opens one ciphertext; a failure is logged (without content) and reads as absent.
        fn open_content(key: &ContentKey, id: &str, blob: &[u8]) -> Option<InvocationContent> {
            let plain = match key.open(id, blob) {
                Ok(plain) => plain,
                Err(error) => {
                    tracing::warn!(invocation = %id, %error, "stored content does not open");
                    return None;
                }
            };
            serde_json::from_slice(&plain).ok()
        }
    };
}
