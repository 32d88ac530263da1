//! Web UI sessions, written once for both back ends (see `ops_audit` for what the expansion
//! site provides). Sessions are not management writes: no audit entry (the server audits
//! logins if it wants to) and no config version bump.

macro_rules! ops_sessions {
    ($store:ty) => {
        impl $store {
            /// Stores the session's keyed hash only; the cookie value is returned once.
            async fn op_create_session(
                &self,
                principal: &Principal,
                ttl_seconds: u64,
            ) -> StoreResult<IssuedSession> {
                let generated = tokens::generate_session_token()?;
                let csrf_token = tokens::generate_csrf_token()?;
                let now = Timestamp::now();
                let (expires_at, _) = support::expiry(now, ttl_seconds);
                let mut tx = self.write_tx().await?;
                // The user must still exist in the principal's organization.
                sqlx::query(sql::USER_IN_ORG)
                    .bind(principal.user_id.to_string())
                    .bind(principal.org_id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                // Housekeeping: expired sessions are useless rows (indexed on expiry).
                sqlx::query(sql::PURGE_EXPIRED_SESSIONS)
                    .bind(now.to_string())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::INSERT_SESSION)
                    .bind(&generated.public_id)
                    .bind(principal.org_id.to_string())
                    .bind(principal.user_id.to_string())
                    .bind(self.vault.token_hash(generated.secret.expose()))
                    .bind(&csrf_token)
                    .bind(now.to_string())
                    .bind(expires_at.to_string())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(IssuedSession {
                    token: generated.full,
                    csrf_token,
                    expires_at,
                })
            }

            /// The principal comes from the users table, so a role or email change applies
            /// to live sessions at once.
            async fn op_session(&self, token: &str) -> StoreResult<Option<SessionInfo>> {
                let Some((public_id, secret)) = tokens::parse_session_token(token) else {
                    return Ok(None);
                };
                let Some(row) = sqlx::query(sql::SESSION_PRINCIPAL)
                    .bind(public_id)
                    .fetch_optional(self.read_pool())
                    .await?
                else {
                    return Ok(None);
                };
                let presented = self.vault.token_hash(secret);
                if !tokens::hashes_match(&row.text("secret_hash")?, &presented) {
                    return Ok(None);
                }
                let session = rows::session(&row)?;
                Ok((session.expires_at > Timestamp::now()).then_some(session))
            }

            /// Only the holder of the whole token can end a session: knowing the public id
            /// (which may show up in logs) is not enough.
            async fn op_delete_session(&self, token: &str) -> StoreResult<()> {
                let Some((public_id, secret)) = tokens::parse_session_token(token) else {
                    return Ok(());
                };
                let presented = self.vault.token_hash(secret);
                let mut tx = self.write_tx().await?;
                let stored = sqlx::query(sql::SESSION_SECRET_HASH)
                    .bind(public_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(stored) = stored else {
                    return Ok(());
                };
                if tokens::hashes_match(&stored.text("secret_hash")?, &presented) {
                    sqlx::query(sql::DELETE_SESSION)
                        .bind(public_id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    };
}
