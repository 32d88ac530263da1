//! Encrypted organization secrets, written once for both back ends (see `ops_audit` for
//! what the expansion site provides). Audit details carry metadata only: never the value,
//! nor its length.

macro_rules! ops_secrets {
    ($store:ty) => {
        impl $store {
            async fn data_key_in(conn: &mut Conn, org: OrgId) -> StoreResult<WrappedKey> {
                let row = sqlx::query(sql::GET_DATA_KEY)
                    .bind(org.to_string())
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                rows::wrapped_key(&row)
            }

            async fn secret_meta_in(
                conn: &mut Conn,
                org: OrgId,
                name: &str,
            ) -> StoreResult<Option<SecretMeta>> {
                sqlx::query(sql::GET_SECRET_META)
                    .bind(org.to_string())
                    .bind(name)
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|row| rows::secret_meta(&row))
                    .transpose()
            }

            async fn op_list_secrets(&self, org: OrgId) -> StoreResult<Vec<SecretMeta>> {
                let found = sqlx::query(sql::LIST_SECRETS)
                    .bind(org.to_string())
                    .fetch_all(self.read_pool())
                    .await?;
                found.iter().map(rows::secret_meta).collect()
            }

            async fn op_get_secret_meta(
                &self,
                org: OrgId,
                name: &str,
            ) -> StoreResult<Option<SecretMeta>> {
                Self::secret_meta_in(&mut *self.read_pool().acquire().await?, org, name).await
            }

            async fn op_create_secret(
                &self,
                org: OrgId,
                actor: &Actor,
                name: &str,
                value: SecretValue,
                description: Option<&str>,
            ) -> StoreResult<SecretMeta> {
                let name = support::non_empty(name, "the secret name")?;
                let mut tx = self.write_tx().await?;
                Self::lock_org(&mut tx, org).await?;
                let dek = Self::data_key_in(&mut tx, org).await?;
                let ciphertext = self.vault.encrypt_secret(org, &dek, name, &value)?;
                let now = Timestamp::now();
                sqlx::query(sql::INSERT_SECRET)
                    .bind(org.to_string())
                    .bind(name)
                    .bind(description)
                    .bind(ciphertext)
                    .bind(now.to_string())
                    .bind(&actor.label)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        StoreError::conflict_on_unique(e, "a secret with this name already exists")
                    })?;
                let meta = SecretMeta {
                    name: name.to_owned(),
                    description: description.map(str::to_owned),
                    created_at: now,
                    updated_at: now,
                };
                let details = audit::change(None, Some(support::secret_json(&meta)));
                let event = audit::success("secret.create", format!("secret:{name}"), details);
                Self::finish_write(tx, org, actor, event).await?;
                Ok(meta)
            }

            async fn op_update_secret(
                &self,
                org: OrgId,
                actor: &Actor,
                name: &str,
                update: SecretUpdate,
            ) -> StoreResult<Option<SecretMeta>> {
                let mut tx = self.write_tx().await?;
                Self::lock_org(&mut tx, org).await?;
                let Some(before) = Self::secret_meta_in(&mut tx, org, name).await? else {
                    return Ok(None);
                };
                let value_changed = update.value.is_some();
                if let Some(value) = &update.value {
                    let dek = Self::data_key_in(&mut tx, org).await?;
                    let ciphertext = self.vault.encrypt_secret(org, &dek, name, value)?;
                    sqlx::query(sql::UPDATE_SECRET_VALUE)
                        .bind(org.to_string())
                        .bind(name)
                        .bind(ciphertext)
                        .execute(&mut *tx)
                        .await?;
                }
                let after = SecretMeta {
                    description: update
                        .description
                        .unwrap_or_else(|| before.description.clone()),
                    updated_at: Timestamp::now(),
                    ..before.clone()
                };
                sqlx::query(sql::UPDATE_SECRET_META)
                    .bind(org.to_string())
                    .bind(name)
                    .bind(after.description.as_deref())
                    .bind(after.updated_at.to_string())
                    .bind(&actor.label)
                    .execute(&mut *tx)
                    .await?;
                let mut details = audit::change(
                    Some(support::secret_json(&before)),
                    Some(support::secret_json(&after)),
                );
                details["valueChanged"] = json!(value_changed);
                let event = audit::success("secret.update", format!("secret:{name}"), details);
                Self::finish_write(tx, org, actor, event).await?;
                Ok(Some(after))
            }

            async fn op_delete_secret(
                &self,
                org: OrgId,
                actor: &Actor,
                name: &str,
            ) -> StoreResult<bool> {
                let mut tx = self.write_tx().await?;
                Self::lock_org(&mut tx, org).await?;
                let Some(before) = Self::secret_meta_in(&mut tx, org, name).await? else {
                    return Ok(false);
                };
                sqlx::query(sql::DELETE_SECRET)
                    .bind(org.to_string())
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                let details = audit::change(Some(support::secret_json(&before)), None);
                let event = audit::success("secret.delete", format!("secret:{name}"), details);
                Self::finish_write(tx, org, actor, event).await?;
                Ok(true)
            }

            async fn op_reveal_secret(
                &self,
                org: OrgId,
                name: &str,
            ) -> StoreResult<Option<SecretValue>> {
                let mut conn = self.read_pool().acquire().await?;
                let Some(row) = sqlx::query(sql::SECRET_CIPHERTEXT)
                    .bind(org.to_string())
                    .bind(name)
                    .fetch_optional(&mut *conn)
                    .await?
                else {
                    return Ok(None);
                };
                let ciphertext = row.bytes("ciphertext")?;
                let dek = Self::data_key_in(&mut conn, org).await?;
                self.vault
                    .decrypt_secret(org, &dek, name, &ciphertext)
                    .map(Some)
            }
        }
    };
}
