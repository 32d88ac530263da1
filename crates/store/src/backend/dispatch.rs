//! `impl Store` for a back-end type: each method boxes the matching `op_*` body.

macro_rules! impl_store {
    ($store:ty, $backend:literal) => {
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            fn ping(&self) -> StoreFuture<'_, ()> {
                super::support::bounded(self.call_timeout, async move {
                    sqlx::query("SELECT 1").execute(self.read_pool()).await?;
                    Ok(())
                })
            }

            fn ping_write(&self) -> StoreFuture<'_, ()> {
                super::support::bounded(self.call_timeout, async move {
                    let mut tx = self.write_tx().await?;
                    sqlx::query("SELECT 1").execute(&mut *tx).await?;
                    tx.rollback().await?;
                    Ok(())
                })
            }

            fn config_version(&self) -> StoreFuture<'_, i64> {
                super::support::bounded(self.call_timeout, self.op_config_version())
            }

            fn create_org<'a>(
                &'a self,
                name: &'a str,
                admin_email: &'a str,
                admin_password: Option<&'a SecretValue>,
            ) -> StoreFuture<'a, NewOrganization> {
                super::support::bounded(
                    self.call_timeout,
                    self.op_create_org(name, admin_email, admin_password),
                )
            }

            fn org_by_name<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Organization>> {
                super::support::bounded(self.call_timeout, self.op_org_by_name(name))
            }

            fn list_orgs(&self) -> StoreFuture<'_, Vec<Organization>> {
                super::support::bounded(self.call_timeout, self.op_list_orgs())
            }

            fn has_organizations(&self) -> StoreFuture<'_, bool> {
                super::support::bounded(self.call_timeout, self.op_has_organizations())
            }

            fn create_user<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                email: &'a str,
                role: Role,
                password: Option<&'a SecretValue>,
            ) -> StoreFuture<'a, NewUser> {
                super::support::bounded(
                    self.call_timeout,
                    self.op_create_user(org, actor, email, role, password),
                )
            }

            fn user_by_email<'a>(&'a self, email: &'a str) -> StoreFuture<'a, Option<User>> {
                super::support::bounded(self.call_timeout, self.op_user_by_email(email))
            }

            fn create_api_token<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                user: UserId,
            ) -> StoreFuture<'a, IssuedToken> {
                super::support::bounded(
                    self.call_timeout,
                    self.op_create_api_token(org, actor, user),
                )
            }

            fn authenticate_token<'a>(
                &'a self,
                token: &'a str,
            ) -> StoreFuture<'a, Option<Principal>> {
                super::support::bounded(self.call_timeout, self.op_authenticate_token(token))
            }

            fn verify_token<'a>(&'a self, token: &'a str) -> StoreFuture<'a, Option<TokenGrant>> {
                super::support::bounded(self.call_timeout, self.op_verify_token(token))
            }

            fn touch_token<'a>(&'a self, token_id: &'a str, at: Timestamp) -> StoreFuture<'a, ()> {
                super::support::bounded(self.call_timeout, self.op_touch_token(token_id, at))
            }

            fn get_user(&self, org: OrgId, user: UserId) -> StoreFuture<'_, Option<User>> {
                super::support::bounded(self.call_timeout, self.op_get_user(org, user))
            }

            fn update_user<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                user: UserId,
                change: UserChange,
            ) -> StoreFuture<'a, User> {
                super::support::bounded(
                    self.call_timeout,
                    self.op_update_user(org, actor, user, change),
                )
            }

            fn delete_user<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                user: UserId,
            ) -> StoreFuture<'a, User> {
                super::support::bounded(self.call_timeout, self.op_delete_user(org, actor, user))
            }

            fn create_token<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                user: UserId,
                spec: &'a TokenSpec,
            ) -> StoreFuture<'a, (TokenMeta, IssuedToken)> {
                super::support::bounded(
                    self.call_timeout,
                    self.op_create_token(org, actor, user, spec),
                )
            }

            fn list_tokens(&self, org: OrgId, user: UserId) -> StoreFuture<'_, Vec<TokenMeta>> {
                super::support::bounded(self.call_timeout, self.op_list_tokens(org, user))
            }

            fn get_token<'a>(
                &'a self,
                org: OrgId,
                id: &'a str,
            ) -> StoreFuture<'a, Option<TokenMeta>> {
                super::support::bounded(self.call_timeout, self.op_get_token(org, id))
            }

            fn revoke_token<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                id: &'a str,
            ) -> StoreFuture<'a, TokenMeta> {
                super::support::bounded(self.call_timeout, self.op_revoke_token(org, actor, id))
            }

            fn exchange_client_credentials<'a>(
                &'a self,
                client_id: &'a str,
                client_secret: &'a str,
                ttl_seconds: u64,
            ) -> StoreFuture<'a, Option<IssuedToken>> {
                super::support::bounded(
                    self.call_timeout,
                    self.op_exchange_client_credentials(client_id, client_secret, ttl_seconds),
                )
            }

            fn verify_password<'a>(
                &'a self,
                email: &'a str,
                password: &'a str,
            ) -> StoreFuture<'a, Option<Principal>> {
                super::support::bounded(self.call_timeout, self.op_verify_password(email, password))
            }

            fn list_providers(&self, org: OrgId) -> StoreFuture<'_, Vec<ProviderRecord>> {
                super::support::bounded(self.call_timeout, self.op_list_providers(org))
            }

            fn get_provider(
                &self,
                org: OrgId,
                provider: ProviderType,
            ) -> StoreFuture<'_, Option<ProviderRecord>> {
                super::support::bounded(self.call_timeout, self.op_get_provider(org, provider))
            }

            fn put_provider<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                write: ProviderWrite,
            ) -> StoreFuture<'a, (ProviderRecord, bool)> {
                super::support::bounded(self.call_timeout, self.op_put_provider(org, actor, write))
            }

            fn delete_provider<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                provider: ProviderType,
            ) -> StoreFuture<'a, bool> {
                super::support::bounded(
                    self.call_timeout,
                    self.op_delete_provider(org, actor, provider),
                )
            }

            fn get_defaults(&self, org: OrgId) -> StoreFuture<'_, Option<DefaultsRecord>> {
                super::support::bounded(self.call_timeout, self.op_get_defaults(org))
            }

            fn put_defaults<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                provider: ProviderType,
                model: &'a str,
            ) -> StoreFuture<'a, DefaultsRecord> {
                super::support::bounded(
                    self.call_timeout,
                    self.op_put_defaults(org, actor, provider, model),
                )
            }

            fn list_secrets(&self, org: OrgId) -> StoreFuture<'_, Vec<SecretMeta>> {
                super::support::bounded(self.call_timeout, self.op_list_secrets(org))
            }

            fn get_secret_meta<'a>(
                &'a self,
                org: OrgId,
                name: &'a str,
            ) -> StoreFuture<'a, Option<SecretMeta>> {
                super::support::bounded(self.call_timeout, self.op_get_secret_meta(org, name))
            }

            fn create_secret<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                name: &'a str,
                value: SecretValue,
                description: Option<&'a str>,
            ) -> StoreFuture<'a, SecretMeta> {
                super::support::bounded(
                    self.call_timeout,
                    self.op_create_secret(org, actor, name, value, description),
                )
            }

            fn update_secret<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                name: &'a str,
                update: SecretUpdate,
            ) -> StoreFuture<'a, Option<SecretMeta>> {
                super::support::bounded(
                    self.call_timeout,
                    self.op_update_secret(org, actor, name, update),
                )
            }

            fn delete_secret<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                name: &'a str,
            ) -> StoreFuture<'a, bool> {
                super::support::bounded(self.call_timeout, self.op_delete_secret(org, actor, name))
            }

            fn reveal_secret<'a>(
                &'a self,
                org: OrgId,
                name: &'a str,
            ) -> StoreFuture<'a, Option<SecretValue>> {
                super::support::bounded(self.call_timeout, self.op_reveal_secret(org, name))
            }

            fn get_ai_settings(&self, org: OrgId) -> StoreFuture<'_, AiSettings> {
                super::support::bounded(self.call_timeout, self.op_get_ai_settings(org))
            }

            fn put_ai_settings<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                change: AiSettingsChange,
            ) -> StoreFuture<'a, AiSettings> {
                super::support::bounded(
                    self.call_timeout,
                    self.op_put_ai_settings(org, actor, change),
                )
            }

            fn list_audit(
                &self,
                org: OrgId,
                limit: u32,
                before_seq: Option<i64>,
            ) -> StoreFuture<'_, Vec<AuditEntry>> {
                super::support::bounded(
                    self.call_timeout,
                    self.op_list_audit(org, limit, before_seq),
                )
            }

            fn append_audit<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                event: AuditEvent,
            ) -> StoreFuture<'a, AuditEntry> {
                super::support::bounded(self.call_timeout, self.op_append_audit(org, actor, event))
            }

            fn verify_audit(&self, org: OrgId) -> StoreFuture<'_, Option<BrokenLink>> {
                Box::pin(self.op_verify_audit(org))
            }

            fn rotate_keys(&self, batch: u32) -> StoreFuture<'_, RotationReport> {
                Box::pin(self.op_rotate_keys(batch))
            }

            fn load_org_config(&self, org: OrgId) -> StoreFuture<'_, Option<OrgConfig>> {
                super::support::bounded(self.call_timeout, self.op_load_org_config(org))
            }

            fn unseal(&self, org: OrgId, secret: &SealedSecret) -> StoreResult<SecretValue> {
                self.op_unseal(org, secret)
            }

            fn token_fingerprint(&self, token: &str) -> Option<TokenFingerprint> {
                self.op_token_fingerprint(token)
            }

            fn changes_since(&self, version: i64) -> StoreFuture<'_, ConfigChanges> {
                super::support::bounded(self.call_timeout, self.op_changes_since(version))
            }

            fn insert_invocations(
                &self,
                records: Vec<InvocationRecord>,
            ) -> StoreFuture<'_, InsertReport> {
                super::support::bounded(self.call_timeout, self.op_insert_invocations(records))
            }

            fn listen_for_changes(&self) -> StoreFuture<'_, Option<crate::ChangeListener>> {
                Box::pin(self.op_listen_for_changes())
            }

            fn write_invocations<'a>(
                &'a self,
                batch: &'a InvocationBatch,
            ) -> StoreFuture<'a, InsertReport> {
                super::support::bounded(self.call_timeout, self.op_write_invocations(batch))
            }

            fn running_invocation<'a>(
                &'a self,
                org: OrgId,
                id: &'a str,
            ) -> StoreFuture<'a, Option<RunningInvocation>> {
                super::support::bounded(self.call_timeout, self.op_running_invocation(org, id))
            }

            fn heartbeat<'a>(
                &'a self,
                instance: &'a str,
                started_at: Timestamp,
            ) -> StoreFuture<'a, ()> {
                super::support::bounded(self.call_timeout, self.op_heartbeat(instance, started_at))
            }

            fn recover_interrupted<'a>(
                &'a self,
                instance: &'a str,
                stale_before: Timestamp,
                batch: u32,
            ) -> StoreFuture<'a, u64> {
                Box::pin(self.op_recover_interrupted(instance, stale_before, batch))
            }

            fn get_invocation<'a>(
                &'a self,
                org: OrgId,
                id: &'a str,
            ) -> StoreFuture<'a, Option<InvocationRecord>> {
                super::support::bounded(self.call_timeout, self.op_get_invocation(org, id))
            }

            fn list_invocations(
                &self,
                org: OrgId,
                filter: InvocationFilter,
                limit: u32,
                cursor: Option<InvocationCursor>,
            ) -> StoreFuture<'_, Vec<InvocationRecord>> {
                super::support::bounded(
                    self.call_timeout,
                    self.op_list_invocations(org, filter, limit, cursor),
                )
            }

            fn usage(
                &self,
                org: OrgId,
                since: Timestamp,
                user: Option<UserId>,
            ) -> StoreFuture<'_, Vec<UsageRow>> {
                super::support::bounded(self.call_timeout, self.op_usage(org, since, user))
            }

            fn record_validation<'a>(
                &'a self,
                org: OrgId,
                record: &'a ValidationRecord,
            ) -> StoreFuture<'a, ()> {
                super::support::bounded(self.call_timeout, self.op_record_validation(org, record))
            }

            fn list_validations(&self, org: OrgId) -> StoreFuture<'_, Vec<ValidationRecord>> {
                super::support::bounded(self.call_timeout, self.op_list_validations(org))
            }

            fn list_users(&self, org: OrgId) -> StoreFuture<'_, Vec<User>> {
                super::support::bounded(self.call_timeout, self.op_list_users(org))
            }

            fn managed_usage(&self, since: Timestamp) -> StoreFuture<'_, Vec<ManagedUsage>> {
                super::support::bounded(self.call_timeout, self.op_managed_usage(since))
            }

            fn shares_limits(&self) -> bool {
                self.op_shares_limits()
            }

            fn limit_reserve<'a>(
                &'a self,
                ask: &'a crate::LimitAsk,
            ) -> StoreFuture<'a, crate::LimitDecision> {
                super::support::bounded(self.call_timeout, self.op_limit_reserve(ask))
            }

            fn limit_settle<'a>(
                &'a self,
                held: &'a crate::LimitHeld,
                tokens: u64,
                now_ms: i64,
            ) -> StoreFuture<'a, ()> {
                super::support::bounded(
                    self.call_timeout,
                    self.op_limit_settle(held, tokens, now_ms),
                )
            }

            fn limit_refund<'a>(&'a self, held: &'a crate::LimitHeld) -> StoreFuture<'a, ()> {
                super::support::bounded(self.call_timeout, self.op_limit_refund(held))
            }

            fn limit_counts<'a>(
                &'a self,
                org: OrgId,
                now_ms: i64,
                month: &'a str,
            ) -> StoreFuture<'a, crate::LimitCounts> {
                super::support::bounded(self.call_timeout, self.op_limit_counts(org, now_ms, month))
            }

            fn limit_seed_monthly<'a>(
                &'a self,
                usage: &'a [ManagedUsage],
                month: &'a str,
            ) -> StoreFuture<'a, ()> {
                super::support::bounded(self.call_timeout, self.op_limit_seed_monthly(usage, month))
            }

            fn purge_interactions(&self, policy: PurgePolicy) -> StoreFuture<'_, PurgeReport> {
                Box::pin(self.op_purge_interactions(policy))
            }

            fn create_session<'a>(
                &'a self,
                principal: &'a Principal,
                ttl_seconds: u64,
            ) -> StoreFuture<'a, IssuedSession> {
                super::support::bounded(
                    self.call_timeout,
                    self.op_create_session(principal, ttl_seconds),
                )
            }

            fn session<'a>(&'a self, token: &'a str) -> StoreFuture<'a, Option<SessionInfo>> {
                super::support::bounded(self.call_timeout, self.op_session(token))
            }

            fn delete_session<'a>(&'a self, token: &'a str) -> StoreFuture<'a, ()> {
                super::support::bounded(self.call_timeout, self.op_delete_session(token))
            }
        }
    };
}
