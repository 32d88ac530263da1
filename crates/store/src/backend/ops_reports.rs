//! Read models for the web UI, written once for both back ends (see `ops_audit` for what
//! the expansion site provides): providers' last connection validations, usage per
//! provider and model, and the organization's users.

macro_rules! ops_reports {
    ($store:ty) => {
        impl $store {
            /// An upsert on the writer, outside the audited write path on purpose (see
            /// [`Store::record_validation`]).
            async fn op_record_validation(
                &self,
                org: OrgId,
                record: &ValidationRecord,
            ) -> StoreResult<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(sql::UPSERT_VALIDATION)
                    .bind(org.to_string())
                    .bind(record.provider.as_str())
                    .bind(support::db_bool(record.valid))
                    .bind(support::to_json_text(&record.result)?)
                    .bind(record.at.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::not_found_on_foreign_key)?;
                tx.commit().await?;
                Ok(())
            }

            async fn op_list_validations(&self, org: OrgId) -> StoreResult<Vec<ValidationRecord>> {
                let found = sqlx::query(sql::LIST_VALIDATIONS)
                    .bind(org.to_string())
                    .fetch_all(self.read_pool())
                    .await?;
                let mut records = found
                    .iter()
                    .map(rows::validation)
                    .collect::<StoreResult<Vec<_>>>()?;
                records.sort_by_key(|r| r.provider);
                Ok(records)
            }

            async fn op_usage(
                &self,
                org: OrgId,
                since: Timestamp,
                user: Option<UserId>,
            ) -> StoreResult<Vec<UsageRow>> {
                let found = sqlx::query(sql::USAGE_SOURCE)
                    .bind(org.to_string())
                    .bind(since.to_string())
                    .bind(user.map(|u| u.to_string()))
                    .fetch_all(self.read_pool())
                    .await?;
                let mut fold = UsageFold::default();
                for row in &found {
                    fold.add(rows::usage_sample(row)?);
                }
                Ok(fold.finish())
            }

            async fn op_list_users(&self, org: OrgId) -> StoreResult<Vec<User>> {
                let found = sqlx::query(sql::LIST_USERS)
                    .bind(org.to_string())
                    .fetch_all(self.read_pool())
                    .await?;
                found.iter().map(rows::user).collect()
            }
        }
    };
}
