//! The identity lifecycle: users read, changed and deleted, tokens created, listed and
//! revoked. Written once for both back ends (see `ops_audit` for what the expansion site
//! provides).
//!
//! Every write here takes the organization lock, commits with its audit entry (who, whom,
//! what; never a token value) and bumps the config version, so the change log names the
//! organization and every replica drops the tokens it cached for it.

macro_rules! ops_lifecycle {
    ($store:ty) => {
        impl $store {
            /// The user `user` of `org`, inside the caller's transaction; `NotFound` for a
            /// missing or foreign user.
            async fn user_in(conn: &mut Conn, org: OrgId, user: UserId) -> StoreResult<User> {
                let row = sqlx::query(sql::USER_IN_ORG)
                    .bind(user.to_string())
                    .bind(org.to_string())
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                rows::user(&row)
            }

            /// The one place the last-admin rule is enforced: a change that takes an active
            /// admin away (`after` is `None` for a deletion) must leave another. The caller
            /// holds the organization lock, so two such changes cannot both pass.
            async fn keep_an_admin(
                conn: &mut Conn,
                org: OrgId,
                before: &User,
                after: Option<&User>,
            ) -> StoreResult<()> {
                if !support::loses_active_admin(before, after) {
                    return Ok(());
                }
                let others = sqlx::query(sql::OTHER_ACTIVE_ADMINS)
                    .bind(org.to_string())
                    .bind(before.id.to_string())
                    .fetch_one(&mut *conn)
                    .await?
                    .int("n")?;
                if others == 0 {
                    return Err(StoreError::LastAdmin);
                }
                Ok(())
            }

            /// Ends every browser session of a user (disabled or deleted).
            async fn end_sessions_in(conn: &mut Conn, org: OrgId, user: UserId) -> StoreResult<()> {
                sqlx::query(sql::DELETE_USER_SESSIONS)
                    .bind(org.to_string())
                    .bind(user.to_string())
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }

            async fn op_get_user(&self, org: OrgId, user: UserId) -> StoreResult<Option<User>> {
                let mut conn = self.read_pool().acquire().await?;
                match Self::user_in(&mut conn, org, user).await {
                    Ok(found) => Ok(Some(found)),
                    Err(StoreError::NotFound) => Ok(None),
                    Err(other) => Err(other),
                }
            }

            async fn op_update_user(
                &self,
                org: OrgId,
                actor: &Actor,
                user: UserId,
                change: UserChange,
            ) -> StoreResult<User> {
                let mut tx = self.write_tx().await?;
                Self::lock_org(&mut tx, org).await?;
                let before = Self::user_in(&mut tx, org, user).await?;
                let after = User {
                    role: change.role.unwrap_or(before.role),
                    disabled: change.disabled.unwrap_or(before.disabled),
                    ..before.clone()
                };
                Self::keep_an_admin(&mut tx, org, &before, Some(&after)).await?;
                sqlx::query(sql::UPDATE_USER)
                    .bind(user.to_string())
                    .bind(org.to_string())
                    .bind(after.role.as_str())
                    .bind(support::db_bool(after.disabled))
                    .execute(&mut *tx)
                    .await?;
                if after.disabled {
                    Self::end_sessions_in(&mut tx, org, user).await?;
                }
                let event = audit::success(
                    "user.update",
                    format!("user:{}", before.email),
                    audit::change(
                        Some(support::user_state(&before)),
                        Some(support::user_state(&after)),
                    ),
                );
                Self::finish_write(tx, org, actor, event).await?;
                Ok(after)
            }

            /// Tokens and sessions go with the user (they reference the row); invocation
            /// records keep the user id (they have no foreign key), audit entries the email.
            async fn op_delete_user(
                &self,
                org: OrgId,
                actor: &Actor,
                user: UserId,
            ) -> StoreResult<User> {
                let mut tx = self.write_tx().await?;
                Self::lock_org(&mut tx, org).await?;
                let before = Self::user_in(&mut tx, org, user).await?;
                Self::keep_an_admin(&mut tx, org, &before, None).await?;
                Self::end_sessions_in(&mut tx, org, user).await?;
                sqlx::query(sql::DELETE_USER_TOKENS)
                    .bind(org.to_string())
                    .bind(user.to_string())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::DELETE_USER)
                    .bind(user.to_string())
                    .bind(org.to_string())
                    .execute(&mut *tx)
                    .await?;
                let event = audit::success(
                    "user.delete",
                    format!("user:{}", before.email),
                    audit::change(Some(support::user_state(&before)), None),
                );
                Self::finish_write(tx, org, actor, event).await?;
                Ok(before)
            }

            async fn op_create_token(
                &self,
                org: OrgId,
                actor: &Actor,
                user: UserId,
                spec: &TokenSpec,
            ) -> StoreResult<(TokenMeta, IssuedToken)> {
                let name = support::token_name(spec.name.as_deref())?;
                let ttl = support::token_ttl(spec.expires_in_days)?;
                let mut tx = self.write_tx().await?;
                Self::lock_org(&mut tx, org).await?;
                let owner = Self::user_in(&mut tx, org, user).await?;
                let issued = self
                    .insert_api_token(&mut tx, org, actor, &owner, name, ttl)
                    .await?;
                Self::bump_config(&mut tx, org).await?;
                tx.commit().await?;
                Ok(issued)
            }

            async fn op_list_tokens(&self, org: OrgId, user: UserId) -> StoreResult<Vec<TokenMeta>> {
                sqlx::query(sql::LIST_TOKENS)
                    .bind(org.to_string())
                    .bind(user.to_string())
                    .bind(Timestamp::now().to_string())
                    .fetch_all(self.read_pool())
                    .await?
                    .iter()
                    .map(rows::token_meta)
                    .collect()
            }

            async fn op_get_token(&self, org: OrgId, id: &str) -> StoreResult<Option<TokenMeta>> {
                sqlx::query(sql::GET_TOKEN)
                    .bind(org.to_string())
                    .bind(id)
                    .fetch_optional(self.read_pool())
                    .await?
                    .map(|row| rows::token_meta(&row))
                    .transpose()
            }

            async fn op_revoke_token(
                &self,
                org: OrgId,
                actor: &Actor,
                id: &str,
            ) -> StoreResult<TokenMeta> {
                let mut tx = self.write_tx().await?;
                Self::lock_org(&mut tx, org).await?;
                let meta = sqlx::query(sql::GET_TOKEN)
                    .bind(org.to_string())
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|row| rows::token_meta(&row))
                    .transpose()?
                    .ok_or(StoreError::NotFound)?;
                let owner = Self::user_in(&mut tx, org, meta.user_id).await?;
                sqlx::query(sql::DELETE_TOKEN)
                    .bind(org.to_string())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let before = json!({
                    "tokenId": meta.id, "user": owner.email, "kind": meta.kind, "name": meta.name,
                });
                let event = audit::success(
                    "token.revoke",
                    format!("user:{}", owner.email),
                    audit::change(Some(before), None),
                );
                Self::finish_write(tx, org, actor, event).await?;
                Ok(meta)
            }

            async fn op_touch_token(&self, id: &str, at: Timestamp) -> StoreResult<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(sql::TOUCH_TOKEN)
                    .bind(id)
                    .bind(at.to_string())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}
