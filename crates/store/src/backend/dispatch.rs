//! `impl Store` for a back-end type: each method boxes the matching `op_*` body.

macro_rules! impl_store {
    ($store:ty, $backend:literal) => {
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            fn ping(&self) -> StoreFuture<'_, ()> {
                Box::pin(async move {
                    sqlx::query("SELECT 1").execute(self.read_pool()).await?;
                    Ok(())
                })
            }

            fn config_version(&self) -> StoreFuture<'_, i64> {
                Box::pin(self.op_config_version())
            }

            fn create_org<'a>(
                &'a self,
                name: &'a str,
                admin_email: &'a str,
                admin_password: Option<&'a SecretValue>,
            ) -> StoreFuture<'a, NewOrganization> {
                Box::pin(self.op_create_org(name, admin_email, admin_password))
            }

            fn org_by_name<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Organization>> {
                Box::pin(self.op_org_by_name(name))
            }

            fn list_orgs(&self) -> StoreFuture<'_, Vec<Organization>> {
                Box::pin(self.op_list_orgs())
            }

            fn has_organizations(&self) -> StoreFuture<'_, bool> {
                Box::pin(self.op_has_organizations())
            }

            fn create_user<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                email: &'a str,
                role: Role,
                password: Option<&'a SecretValue>,
            ) -> StoreFuture<'a, NewUser> {
                Box::pin(self.op_create_user(org, actor, email, role, password))
            }

            fn user_by_email<'a>(&'a self, email: &'a str) -> StoreFuture<'a, Option<User>> {
                Box::pin(self.op_user_by_email(email))
            }

            fn create_api_token<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                user: UserId,
            ) -> StoreFuture<'a, IssuedToken> {
                Box::pin(self.op_create_api_token(org, actor, user))
            }

            fn authenticate_token<'a>(
                &'a self,
                token: &'a str,
            ) -> StoreFuture<'a, Option<Principal>> {
                Box::pin(self.op_authenticate_token(token))
            }

            fn verify_token<'a>(&'a self, token: &'a str) -> StoreFuture<'a, Option<TokenGrant>> {
                Box::pin(self.op_verify_token(token))
            }

            fn touch_token<'a>(&'a self, token_id: &'a str, at: Timestamp) -> StoreFuture<'a, ()> {
                Box::pin(self.op_touch_token(token_id, at))
            }

            fn get_user(&self, org: OrgId, user: UserId) -> StoreFuture<'_, Option<User>> {
                Box::pin(self.op_get_user(org, user))
            }

            fn update_user<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                user: UserId,
                change: UserChange,
            ) -> StoreFuture<'a, User> {
                Box::pin(self.op_update_user(org, actor, user, change))
            }

            fn delete_user<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                user: UserId,
            ) -> StoreFuture<'a, User> {
                Box::pin(self.op_delete_user(org, actor, user))
            }

            fn create_token<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                user: UserId,
                spec: &'a TokenSpec,
            ) -> StoreFuture<'a, (TokenMeta, IssuedToken)> {
                Box::pin(self.op_create_token(org, actor, user, spec))
            }

            fn list_tokens(&self, org: OrgId, user: UserId) -> StoreFuture<'_, Vec<TokenMeta>> {
                Box::pin(self.op_list_tokens(org, user))
            }

            fn get_token<'a>(
                &'a self,
                org: OrgId,
                id: &'a str,
            ) -> StoreFuture<'a, Option<TokenMeta>> {
                Box::pin(self.op_get_token(org, id))
            }

            fn revoke_token<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                id: &'a str,
            ) -> StoreFuture<'a, TokenMeta> {
                Box::pin(self.op_revoke_token(org, actor, id))
            }

            fn exchange_client_credentials<'a>(
                &'a self,
                client_id: &'a str,
                client_secret: &'a str,
                ttl_seconds: u64,
            ) -> StoreFuture<'a, Option<IssuedToken>> {
                Box::pin(self.op_exchange_client_credentials(client_id, client_secret, ttl_seconds))
            }

            fn verify_password<'a>(
                &'a self,
                email: &'a str,
                password: &'a str,
            ) -> StoreFuture<'a, Option<Principal>> {
                Box::pin(self.op_verify_password(email, password))
            }

            fn list_providers(&self, org: OrgId) -> StoreFuture<'_, Vec<ProviderRecord>> {
                Box::pin(self.op_list_providers(org))
            }

            fn get_provider(
                &self,
                org: OrgId,
                provider: ProviderType,
            ) -> StoreFuture<'_, Option<ProviderRecord>> {
                Box::pin(self.op_get_provider(org, provider))
            }

            fn put_provider<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                write: ProviderWrite,
            ) -> StoreFuture<'a, (ProviderRecord, bool)> {
                Box::pin(self.op_put_provider(org, actor, write))
            }

            fn delete_provider<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                provider: ProviderType,
            ) -> StoreFuture<'a, bool> {
                Box::pin(self.op_delete_provider(org, actor, provider))
            }

            fn get_defaults(&self, org: OrgId) -> StoreFuture<'_, Option<DefaultsRecord>> {
                Box::pin(self.op_get_defaults(org))
            }

            fn put_defaults<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                provider: ProviderType,
                model: &'a str,
            ) -> StoreFuture<'a, DefaultsRecord> {
                Box::pin(self.op_put_defaults(org, actor, provider, model))
            }

            fn list_secrets(&self, org: OrgId) -> StoreFuture<'_, Vec<SecretMeta>> {
                Box::pin(self.op_list_secrets(org))
            }

            fn get_secret_meta<'a>(
                &'a self,
                org: OrgId,
                name: &'a str,
            ) -> StoreFuture<'a, Option<SecretMeta>> {
                Box::pin(self.op_get_secret_meta(org, name))
            }

            fn create_secret<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                name: &'a str,
                value: SecretValue,
                description: Option<&'a str>,
            ) -> StoreFuture<'a, SecretMeta> {
                Box::pin(self.op_create_secret(org, actor, name, value, description))
            }

            fn update_secret<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                name: &'a str,
                update: SecretUpdate,
            ) -> StoreFuture<'a, Option<SecretMeta>> {
                Box::pin(self.op_update_secret(org, actor, name, update))
            }

            fn delete_secret<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                name: &'a str,
            ) -> StoreFuture<'a, bool> {
                Box::pin(self.op_delete_secret(org, actor, name))
            }

            fn reveal_secret<'a>(
                &'a self,
                org: OrgId,
                name: &'a str,
            ) -> StoreFuture<'a, Option<SecretValue>> {
                Box::pin(self.op_reveal_secret(org, name))
            }

            fn get_ai_settings(&self, org: OrgId) -> StoreFuture<'_, AiSettings> {
                Box::pin(self.op_get_ai_settings(org))
            }

            fn put_ai_settings<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                settings: AiSettings,
            ) -> StoreFuture<'a, AiSettings> {
                Box::pin(self.op_put_ai_settings(org, actor, settings))
            }

            fn list_audit(
                &self,
                org: OrgId,
                limit: u32,
                before_seq: Option<i64>,
            ) -> StoreFuture<'_, Vec<AuditEntry>> {
                Box::pin(self.op_list_audit(org, limit, before_seq))
            }

            fn append_audit<'a>(
                &'a self,
                org: OrgId,
                actor: &'a Actor,
                event: AuditEvent,
            ) -> StoreFuture<'a, AuditEntry> {
                Box::pin(self.op_append_audit(org, actor, event))
            }

            fn verify_audit(&self, org: OrgId) -> StoreFuture<'_, Option<BrokenLink>> {
                Box::pin(self.op_verify_audit(org))
            }

            fn rotate_keys(&self, batch: u32) -> StoreFuture<'_, RotationReport> {
                Box::pin(self.op_rotate_keys(batch))
            }

            fn load_org_config(&self, org: OrgId) -> StoreFuture<'_, Option<OrgConfig>> {
                Box::pin(self.op_load_org_config(org))
            }

            fn unseal(&self, org: OrgId, secret: &SealedSecret) -> StoreResult<SecretValue> {
                self.op_unseal(org, secret)
            }

            fn token_fingerprint(&self, token: &str) -> Option<TokenFingerprint> {
                self.op_token_fingerprint(token)
            }

            fn changes_since(&self, version: i64) -> StoreFuture<'_, ConfigChanges> {
                Box::pin(self.op_changes_since(version))
            }

            fn insert_invocations(
                &self,
                records: Vec<InvocationRecord>,
            ) -> StoreFuture<'_, InsertReport> {
                Box::pin(self.op_insert_invocations(records))
            }

            fn get_invocation<'a>(
                &'a self,
                org: OrgId,
                id: &'a str,
            ) -> StoreFuture<'a, Option<InvocationRecord>> {
                Box::pin(self.op_get_invocation(org, id))
            }

            fn list_invocations(
                &self,
                org: OrgId,
                filter: InvocationFilter,
                limit: u32,
                cursor: Option<InvocationCursor>,
            ) -> StoreFuture<'_, Vec<InvocationRecord>> {
                Box::pin(self.op_list_invocations(org, filter, limit, cursor))
            }

            fn usage(
                &self,
                org: OrgId,
                since: Timestamp,
                user: Option<UserId>,
            ) -> StoreFuture<'_, Vec<UsageRow>> {
                Box::pin(self.op_usage(org, since, user))
            }

            fn record_validation<'a>(
                &'a self,
                org: OrgId,
                record: &'a ValidationRecord,
            ) -> StoreFuture<'a, ()> {
                Box::pin(self.op_record_validation(org, record))
            }

            fn list_validations(&self, org: OrgId) -> StoreFuture<'_, Vec<ValidationRecord>> {
                Box::pin(self.op_list_validations(org))
            }

            fn list_users(&self, org: OrgId) -> StoreFuture<'_, Vec<User>> {
                Box::pin(self.op_list_users(org))
            }

            fn managed_usage(&self, since: Timestamp) -> StoreFuture<'_, Vec<ManagedUsage>> {
                Box::pin(self.op_managed_usage(since))
            }

            fn purge_interactions(&self, policy: PurgePolicy) -> StoreFuture<'_, PurgeReport> {
                Box::pin(self.op_purge_interactions(policy))
            }

            fn create_session<'a>(
                &'a self,
                principal: &'a Principal,
                ttl_seconds: u64,
            ) -> StoreFuture<'a, IssuedSession> {
                Box::pin(self.op_create_session(principal, ttl_seconds))
            }

            fn session<'a>(&'a self, token: &'a str) -> StoreFuture<'a, Option<SessionInfo>> {
                Box::pin(self.op_session(token))
            }

            fn delete_session<'a>(&'a self, token: &'a str) -> StoreFuture<'a, ()> {
                Box::pin(self.op_delete_session(token))
            }
        }
    };
}
