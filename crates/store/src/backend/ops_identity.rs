//! Organizations, users, tokens, client credentials and passwords, written once for both
//! back ends (see `ops_audit` for what the expansion site provides).

macro_rules! ops_identity {
    ($store:ty) => {
        impl $store {
            /// The organization, its data key, the built-in `managed` provider and the
            /// admin user with credentials, all in one transaction.
            async fn op_create_org(
                &self,
                name: &str,
                admin_email: &str,
                admin_password: Option<&SecretValue>,
            ) -> StoreResult<NewOrganization> {
                let name = support::org_name(name)?;
                let email = support::normalize_email(admin_email)?;
                // Hashing is slow: do it before taking the write lock.
                let password_hash = match admin_password {
                    Some(password) => Some(tokens::hash_password(password).await?),
                    None => None,
                };
                let actor = Actor::system();
                let org = Organization {
                    id: OrgId::new(),
                    name,
                    created_at: Timestamp::now(),
                };
                let mut tx = self.write_tx().await?;
                sqlx::query(sql::INSERT_ORG)
                    .bind(org.id.to_string())
                    .bind(&org.name)
                    .bind(org.created_at.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        StoreError::conflict_on_unique(e, "an organization with this name exists")
                    })?;
                let event = audit::success(
                    "org.create",
                    format!("organization:{}", org.name),
                    audit::change(None, Some(json!({ "id": org.id, "name": org.name }))),
                );
                Self::append_audit_in(&mut tx, org.id, &actor, &event).await?;
                self.insert_data_key(&mut tx, org.id, org.created_at).await?;
                Self::insert_managed_provider(&mut tx, org.id, &actor, org.created_at).await?;
                let admin = self
                    .insert_user(&mut tx, org.id, &actor, &email, Role::Admin, password_hash)
                    .await?;
                Self::bump_config(&mut tx, org.id).await?;
                tx.commit().await?;
                Ok(NewOrganization { org, admin })
            }

            async fn insert_data_key(
                &self,
                conn: &mut Conn,
                org: OrgId,
                now: Timestamp,
            ) -> StoreResult<()> {
                let dek = self.vault.new_wrapped_key(KeyOwner::Org(org))?;
                sqlx::query(sql::INSERT_DATA_KEY)
                    .bind(org.to_string())
                    .bind(dek.bytes)
                    .bind(i64::from(dek.kek_version))
                    .bind(now.to_string())
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }

            async fn insert_managed_provider(
                conn: &mut Conn,
                org: OrgId,
                actor: &Actor,
                now: Timestamp,
            ) -> StoreResult<()> {
                sqlx::query(sql::INSERT_PROVIDER)
                    .bind(org.to_string())
                    .bind(ProviderType::Managed.as_str())
                    .bind(support::db_bool(true))
                    .bind("{}")
                    .bind(support::to_json_text(&Overrides::default())?)
                    .bind(now.to_string())
                    .bind(&actor.label)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }

            /// Inserts a user with client credentials and an API token, and audits both.
            async fn insert_user(
                &self,
                conn: &mut Conn,
                org: OrgId,
                actor: &Actor,
                email: &str,
                role: Role,
                password_hash: Option<String>,
            ) -> StoreResult<NewUser> {
                let (client_id, client_secret) = tokens::generate_client_credentials()?;
                let user = User {
                    id: UserId::new(),
                    org_id: org,
                    email: email.to_owned(),
                    role,
                    client_id,
                    created_at: Timestamp::now(),
                    disabled: false,
                };
                sqlx::query(sql::INSERT_USER)
                    .bind(user.id.to_string())
                    .bind(org.to_string())
                    .bind(&user.email)
                    .bind(role.as_str())
                    .bind(password_hash)
                    .bind(&user.client_id)
                    .bind(self.vault.token_hash(client_secret.expose()))
                    .bind(user.created_at.to_string())
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        StoreError::conflict_on_unique(e, "a user with this email already exists")
                    })?;
                let after = json!({ "id": user.id, "email": user.email, "role": role.as_str() });
                let event = audit::success(
                    "user.create",
                    format!("user:{}", user.email),
                    audit::change(None, Some(after)),
                );
                Self::append_audit_in(conn, org, actor, &event).await?;
                let (_, token) = self
                    .insert_api_token(conn, org, actor, &user, None, None)
                    .await?;
                let credentials = ClientCredentials {
                    client_id: user.client_id.clone(),
                    client_secret,
                };
                Ok(NewUser {
                    user,
                    token,
                    credentials,
                })
            }

            /// Issues an API token (named and expiring when asked) and audits it, never
            /// the token itself.
            async fn insert_api_token(
                &self,
                conn: &mut Conn,
                org: OrgId,
                actor: &Actor,
                user: &User,
                name: Option<String>,
                ttl_seconds: Option<u64>,
            ) -> StoreResult<(TokenMeta, IssuedToken)> {
                let (meta, token) = self
                    .insert_token(conn, org, user.id, TokenKind::Api, name, ttl_seconds)
                    .await?;
                let after = json!({
                    "tokenId": meta.id, "user": user.email, "kind": "api",
                    "name": meta.name, "expiresAt": meta.expires_at,
                });
                let event = audit::success(
                    "token.create",
                    format!("user:{}", user.email),
                    audit::change(None, Some(after)),
                );
                Self::append_audit_in(conn, org, actor, &event).await?;
                Ok((meta, token))
            }

            /// Stores a new token's keyed hash; returns its listing and the token (shown
            /// once).
            async fn insert_token(
                &self,
                conn: &mut Conn,
                org: OrgId,
                user: UserId,
                kind: TokenKind,
                name: Option<String>,
                ttl_seconds: Option<u64>,
            ) -> StoreResult<(TokenMeta, IssuedToken)> {
                let generated = tokens::generate_token()?;
                let now = Timestamp::now();
                let expiry = ttl_seconds.map(|ttl| support::expiry(now, ttl));
                sqlx::query(sql::INSERT_TOKEN)
                    .bind(&generated.public_id)
                    .bind(org.to_string())
                    .bind(user.to_string())
                    .bind(self.vault.token_hash(generated.secret.expose()))
                    .bind(kind.as_str())
                    .bind(expiry.map(|(at, _)| at.to_string()))
                    .bind(now.to_string())
                    .bind(name.as_deref())
                    .execute(&mut *conn)
                    .await?;
                let meta = TokenMeta {
                    prefix: tokens::display_prefix(&generated.public_id),
                    id: generated.public_id.clone(),
                    user_id: user,
                    kind: kind.as_str().to_owned(),
                    name,
                    created_at: now,
                    expires_at: expiry.map(|(at, _)| at),
                    last_used_at: None,
                };
                let token = IssuedToken {
                    id: generated.public_id,
                    token: generated.full,
                    expires_in: expiry.map(|(_, ttl)| ttl),
                };
                Ok((meta, token))
            }

            async fn op_org_by_name(&self, name: &str) -> StoreResult<Option<Organization>> {
                sqlx::query(sql::ORG_BY_NAME)
                    .bind(name.trim())
                    .fetch_optional(self.read_pool())
                    .await?
                    .map(|row| rows::organization(&row))
                    .transpose()
            }

            async fn op_has_organizations(&self) -> StoreResult<bool> {
                let count: i64 = sqlx::query_scalar(sql::ANY_ORG)
                    .fetch_one(self.read_pool())
                    .await?;
                Ok(count > 0)
            }

            async fn op_list_orgs(&self) -> StoreResult<Vec<Organization>> {
                let rows = sqlx::query(sql::LIST_ORGS)
                    .fetch_all(self.read_pool())
                    .await?;
                rows.iter().map(rows::organization).collect()
            }

            async fn op_create_user(
                &self,
                org: OrgId,
                actor: &Actor,
                email: &str,
                role: Role,
                password: Option<&SecretValue>,
            ) -> StoreResult<NewUser> {
                let email = support::normalize_email(email)?;
                let password_hash = match password {
                    Some(password) => Some(tokens::hash_password(password).await?),
                    None => None,
                };
                let mut tx = self.write_tx().await?;
                Self::lock_org(&mut tx, org).await?;
                let new_user = self
                    .insert_user(&mut tx, org, actor, &email, role, password_hash)
                    .await?;
                Self::bump_config(&mut tx, org).await?;
                tx.commit().await?;
                Ok(new_user)
            }

            async fn op_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
                let Ok(email) = support::normalize_email(email) else {
                    return Ok(None);
                };
                sqlx::query(sql::USER_BY_EMAIL)
                    .bind(email)
                    .fetch_optional(self.read_pool())
                    .await?
                    .map(|row| rows::user(&row))
                    .transpose()
            }

            async fn op_create_api_token(
                &self,
                org: OrgId,
                actor: &Actor,
                user: UserId,
            ) -> StoreResult<IssuedToken> {
                let (_, token) = self
                    .op_create_token(org, actor, user, &TokenSpec::default())
                    .await?;
                Ok(token)
            }

            async fn op_authenticate_token(&self, token: &str) -> StoreResult<Option<Principal>> {
                Ok(self.op_verify_token(token).await?.map(|grant| grant.principal))
            }

            /// One indexed read: the token's row joined with its (enabled) user, the
            /// secret compared with the stored keyed hash in constant time.
            async fn op_verify_token(&self, token: &str) -> StoreResult<Option<TokenGrant>> {
                let Some((public_id, secret)) = tokens::parse_token(token) else {
                    return Ok(None);
                };
                let Some(row) = sqlx::query(sql::TOKEN_PRINCIPAL)
                    .bind(public_id)
                    .fetch_optional(self.read_pool())
                    .await?
                else {
                    return Ok(None);
                };
                let presented = self.vault.token_hash(secret);
                if !tokens::hashes_match(&row.text("token_hash")?, &presented) {
                    return Ok(None);
                }
                let expires_at = match row.opt_text("expires_at")? {
                    Some(at) => Some(
                        Timestamp::parse(&at).map_err(|_| StoreError::corrupt("bad expires_at"))?,
                    ),
                    None => None,
                };
                if expires_at.as_ref().is_some_and(|at| *at <= Timestamp::now()) {
                    return Ok(None);
                }
                Ok(Some(TokenGrant {
                    principal: rows::principal(&row)?,
                    token_id: public_id.to_owned(),
                    expires_at,
                }))
            }

            async fn op_exchange_client_credentials(
                &self,
                client_id: &str,
                client_secret: &str,
                ttl_seconds: u64,
            ) -> StoreResult<Option<IssuedToken>> {
                let Some(row) = sqlx::query(sql::USER_BY_CLIENT_ID)
                    .bind(client_id)
                    .fetch_optional(self.read_pool())
                    .await?
                else {
                    return Ok(None);
                };
                let presented = self.vault.token_hash(client_secret);
                if !tokens::hashes_match(&row.text("client_secret_hash")?, &presented) {
                    return Ok(None);
                }
                let user = rows::user(&row)?;
                if user.disabled {
                    return Ok(None);
                }
                let mut tx = self.write_tx().await?;
                // Housekeeping: the user's expired access tokens are useless rows.
                sqlx::query(sql::PURGE_EXPIRED_TOKENS)
                    .bind(user.id.to_string())
                    .bind(Timestamp::now().to_string())
                    .execute(&mut *tx)
                    .await?;
                let ttl = Some(ttl_seconds);
                let (_, token) = self
                    .insert_token(&mut tx, user.org_id, user.id, TokenKind::Access, None, ttl)
                    .await?;
                tx.commit().await?;
                Ok(Some(token))
            }

            async fn op_verify_password(
                &self,
                email: &str,
                password: &str,
            ) -> StoreResult<Option<Principal>> {
                let row = match support::normalize_email(email) {
                    Ok(email) => {
                        sqlx::query(sql::USER_BY_EMAIL)
                            .bind(email)
                            .fetch_optional(self.read_pool())
                            .await?
                    }
                    Err(_) => None,
                };
                // A disabled user is checked against the dummy hash like an unknown one:
                // the answer and its timing are the same.
                let stored = match &row {
                    Some(row) if row.int("disabled")? == 0 => row.opt_text("password_hash")?,
                    _ => None,
                };
                if !tokens::verify_password(password, stored).await {
                    return Ok(None);
                }
                row.as_ref().map(rows::principal).transpose()
            }
        }
    };
}
