//! Providers, the organization's defaults and its AI settings, written once for both back
//! ends (see `ops_audit` for what the expansion site provides).

macro_rules! ops_config {
    ($store:ty) => {
        impl $store {
            async fn op_list_providers(&self, org: OrgId) -> StoreResult<Vec<ProviderRecord>> {
                Self::providers_in(&mut *self.read_pool().acquire().await?, org).await
            }

            /// In the contract's type order.
            async fn providers_in(conn: &mut Conn, org: OrgId) -> StoreResult<Vec<ProviderRecord>> {
                let found = sqlx::query(sql::LIST_PROVIDERS)
                    .bind(org.to_string())
                    .fetch_all(&mut *conn)
                    .await?;
                let mut records = found
                    .iter()
                    .map(rows::provider)
                    .collect::<StoreResult<Vec<_>>>()?;
                support::sort_providers(&mut records);
                Ok(records)
            }

            async fn op_get_provider(
                &self,
                org: OrgId,
                provider: ProviderType,
            ) -> StoreResult<Option<ProviderRecord>> {
                Self::provider_in(&mut *self.read_pool().acquire().await?, org, provider).await
            }

            async fn provider_in(
                conn: &mut Conn,
                org: OrgId,
                provider: ProviderType,
            ) -> StoreResult<Option<ProviderRecord>> {
                sqlx::query(sql::GET_PROVIDER)
                    .bind(org.to_string())
                    .bind(provider.as_str())
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|row| rows::provider(&row))
                    .transpose()
            }

            /// Creates or replaces; a replacement keeps the original creation stamp.
            async fn op_put_provider(
                &self,
                org: OrgId,
                actor: &Actor,
                write: ProviderWrite,
            ) -> StoreResult<(ProviderRecord, bool)> {
                let mut tx = self.write_tx().await?;
                Self::lock_org(&mut tx, org).await?;
                let before = Self::provider_in(&mut tx, org, write.provider).await?;
                support::check_revision(before.as_ref(), write.expected_revision)?;
                let now = Timestamp::now();
                let record = ProviderRecord {
                    provider: write.provider,
                    enabled: write.enabled,
                    config: write.config,
                    overrides: write.overrides,
                    created_at: before.as_ref().map_or(now, |b| b.created_at),
                    created_by: before
                        .as_ref()
                        .map_or_else(|| actor.label.clone(), |b| b.created_by.clone()),
                    updated_at: now,
                    updated_by: actor.label.clone(),
                    revision: before.as_ref().map_or(1, |b| b.revision + 1),
                };
                let statement = if before.is_some() {
                    sql::UPDATE_PROVIDER
                } else {
                    sql::INSERT_PROVIDER
                };
                sqlx::query(statement)
                    .bind(org.to_string())
                    .bind(record.provider.as_str())
                    .bind(support::db_bool(record.enabled))
                    .bind(support::to_json_text(&record.config)?)
                    .bind(support::to_json_text(&record.overrides)?)
                    .bind(now.to_string())
                    .bind(&actor.label)
                    .execute(&mut *tx)
                    .await?;
                let created = before.is_none();
                let action = if created {
                    "provider.create"
                } else {
                    "provider.update"
                };
                let details = audit::change(
                    before.as_ref().map(support::provider_json),
                    Some(support::provider_json(&record)),
                );
                let resource = format!("llm-provider:{}", record.provider);
                Self::finish_write(tx, org, actor, audit::success(action, resource, details))
                    .await?;
                Ok((record, created))
            }

            async fn op_delete_provider(
                &self,
                org: OrgId,
                actor: &Actor,
                provider: ProviderType,
            ) -> StoreResult<bool> {
                if provider == ProviderType::Managed {
                    return Err(StoreError::Invalid(
                        "the managed provider cannot be deleted; disable it instead".into(),
                    ));
                }
                let mut tx = self.write_tx().await?;
                Self::lock_org(&mut tx, org).await?;
                let Some(before) = Self::provider_in(&mut tx, org, provider).await? else {
                    return Ok(false);
                };
                sqlx::query(sql::DELETE_PROVIDER)
                    .bind(org.to_string())
                    .bind(provider.as_str())
                    .execute(&mut *tx)
                    .await?;
                // A reconnected provider starts unvalidated, not with its predecessor's result.
                sqlx::query(sql::DELETE_VALIDATION)
                    .bind(org.to_string())
                    .bind(provider.as_str())
                    .execute(&mut *tx)
                    .await?;
                let details = audit::change(Some(support::provider_json(&before)), None);
                let resource = format!("llm-provider:{provider}");
                let event = audit::success("provider.delete", resource, details);
                Self::finish_write(tx, org, actor, event).await?;
                Ok(true)
            }

            async fn op_get_defaults(&self, org: OrgId) -> StoreResult<Option<DefaultsRecord>> {
                Self::defaults_in(&mut *self.read_pool().acquire().await?, org).await
            }

            async fn defaults_in(
                conn: &mut Conn,
                org: OrgId,
            ) -> StoreResult<Option<DefaultsRecord>> {
                sqlx::query(sql::GET_DEFAULTS)
                    .bind(org.to_string())
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|row| rows::defaults(&row))
                    .transpose()
            }

            async fn op_put_defaults(
                &self,
                org: OrgId,
                actor: &Actor,
                provider: ProviderType,
                model: &str,
            ) -> StoreResult<DefaultsRecord> {
                let model = support::non_empty(model, "the default model")?;
                let mut tx = self.write_tx().await?;
                Self::lock_org(&mut tx, org).await?;
                let before = Self::defaults_in(&mut tx, org).await?;
                let now = Timestamp::now();
                let record = DefaultsRecord {
                    provider,
                    model: model.to_owned(),
                    created_at: before.as_ref().map_or(now, |b| b.created_at),
                    created_by: before
                        .as_ref()
                        .map_or_else(|| actor.label.clone(), |b| b.created_by.clone()),
                    updated_at: now,
                    updated_by: actor.label.clone(),
                };
                let statement = if before.is_some() {
                    sql::UPDATE_DEFAULTS
                } else {
                    sql::INSERT_DEFAULTS
                };
                sqlx::query(statement)
                    .bind(org.to_string())
                    .bind(provider.as_str())
                    .bind(model)
                    .bind(now.to_string())
                    .bind(&actor.label)
                    .execute(&mut *tx)
                    .await?;
                let details = audit::change(
                    before.as_ref().map(support::defaults_json),
                    Some(support::defaults_json(&record)),
                );
                let event =
                    audit::success("defaults.update", "llm-provider-defaults".into(), details);
                Self::finish_write(tx, org, actor, event).await?;
                Ok(record)
            }

            async fn op_get_ai_settings(&self, org: OrgId) -> StoreResult<AiSettings> {
                let stored =
                    Self::ai_settings_in(&mut *self.read_pool().acquire().await?, org).await?;
                Ok(stored.unwrap_or_default())
            }

            async fn ai_settings_in(
                conn: &mut Conn,
                org: OrgId,
            ) -> StoreResult<Option<AiSettings>> {
                sqlx::query(sql::GET_AI_SETTINGS)
                    .bind(org.to_string())
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|row| rows::ai_settings(&row))
                    .transpose()
            }

            async fn op_put_ai_settings(
                &self,
                org: OrgId,
                actor: &Actor,
                change: AiSettingsChange,
            ) -> StoreResult<AiSettings> {
                let mut tx = self.write_tx().await?;
                Self::lock_org(&mut tx, org).await?;
                let before = Self::ai_settings_in(&mut tx, org).await?;
                let settings = change.apply_to(before.unwrap_or_default());
                let statement = if before.is_some() {
                    sql::UPDATE_AI_SETTINGS
                } else {
                    sql::INSERT_AI_SETTINGS
                };
                sqlx::query(statement)
                    .bind(org.to_string())
                    .bind(i64::from(settings.retention_days))
                    .bind(support::db_bool(settings.store_interaction_data))
                    .bind(Timestamp::now().to_string())
                    .bind(&actor.label)
                    .execute(&mut *tx)
                    .await?;
                let details = audit::change(
                    Some(json!(before.unwrap_or_default())),
                    Some(json!(settings)),
                );
                let event = audit::success("ai_settings.update", "ai-settings".into(), details);
                Self::finish_write(tx, org, actor, event).await?;
                Ok(settings)
            }
        }
    };
}
