//! The store's behaviour, run unchanged against SQLite (always) and PostgreSQL (when
//! `SWITCHBOARD_TEST_POSTGRES_URL` names a server; required when
//! `SWITCHBOARD_REQUIRE_POSTGRES=1`). Every test gets a fresh database.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use sqlx::Row;
use switchboard_core::records::{AiSettings, AiSettingsChange, Overrides, Timestamp};
use switchboard_core::{OrgId, Principal, ProviderType, Role, SecretValue, UserId};
use switchboard_store::{
    Actor, AuditEvent, ConfigChanges, InvocationContent, InvocationCursor, InvocationFilter,
    InvocationRecord, InvocationStatus, MasterKeyRing, NewOrganization, ProviderWrite, PurgePolicy,
    SealedSecret, SecretUpdate, Store, StoreError, TokenSpec, UserChange, ValidationRecord,
};
use switchboard_store::{InvocationBatch, RunningInvocation};

const CANARY: &str = "sk-canary-4f1e9d";

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Raw access to the database under test, for checks and tampering the API forbids.
enum Raw {
    Sqlite(sqlx::SqlitePool),
    Pg(sqlx::PgPool),
}

impl Raw {
    async fn connect(backend: Backend, url: &str) -> Raw {
        match backend {
            Backend::Sqlite => Raw::Sqlite(sqlx::SqlitePool::connect(url).await.unwrap()),
            Backend::Postgres => Raw::Pg(sqlx::PgPool::connect(url).await.unwrap()),
        }
    }

    async fn exec(&self, sql: &'static str, binds: &[&str]) -> u64 {
        macro_rules! run {
            ($pool:expr) => {{
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                q.execute($pool).await.unwrap().rows_affected()
            }};
        }
        match self {
            Raw::Sqlite(pool) => run!(pool),
            Raw::Pg(pool) => run!(pool),
        }
    }

    /// The database's refusal of `sql`, if it refused.
    async fn refused(&self, sql: &'static str, binds: &[&str]) -> Option<String> {
        macro_rules! run {
            ($pool:expr) => {{
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                q.execute($pool).await.err().map(|e| e.to_string())
            }};
        }
        match self {
            Raw::Sqlite(pool) => run!(pool),
            Raw::Pg(pool) => run!(pool),
        }
    }

    /// What only the schema's owner can do: lift the audit log's append-only triggers.
    async fn lift_audit_guard(&self) {
        match self {
            Raw::Sqlite(pool) => {
                for sql in [
                    "DROP TRIGGER audit_log_no_update",
                    "DROP TRIGGER audit_log_no_delete",
                ] {
                    sqlx::query(sql).execute(pool).await.unwrap();
                }
            }
            Raw::Pg(pool) => {
                sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER USER")
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
    }

    async fn bytes(&self, sql: &'static str, binds: &[&str]) -> Vec<u8> {
        macro_rules! run {
            ($pool:expr) => {{
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                q.fetch_one($pool).await.unwrap().get::<Vec<u8>, _>(0)
            }};
        }
        match self {
            Raw::Sqlite(pool) => run!(pool),
            Raw::Pg(pool) => run!(pool),
        }
    }

    async fn text(&self, sql: &'static str, binds: &[&str]) -> String {
        macro_rules! run {
            ($pool:expr) => {{
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                q.fetch_one($pool).await.unwrap().get::<String, _>(0)
            }};
        }
        match self {
            Raw::Sqlite(pool) => run!(pool),
            Raw::Pg(pool) => run!(pool),
        }
    }

    /// Puts a ciphertext back into an invocation row (as a restored backup would).
    async fn restore_content(&self, org: &str, id: &str, period: &str, blob: Vec<u8>) {
        let sql = "UPDATE invocations SET content = $1, content_period = $2 \
            WHERE org_id = $3 AND id = $4";
        macro_rules! run {
            ($pool:expr) => {{
                sqlx::query(sql)
                    .bind(blob)
                    .bind(period)
                    .bind(org)
                    .bind(id)
                    .execute($pool)
                    .await
                    .unwrap()
            }};
        }
        match self {
            Raw::Sqlite(pool) => assert_eq!(run!(pool).rows_affected(), 1),
            Raw::Pg(pool) => assert_eq!(run!(pool).rows_affected(), 1),
        }
    }

    async fn close(&self) {
        match self {
            Raw::Sqlite(pool) => pool.close().await,
            Raw::Pg(pool) => pool.close().await,
        }
    }
}

struct Harness {
    backend: Backend,
    url: String,
    key_file: PathBuf,
    store: Arc<dyn Store>,
    raw: Raw,
}

impl Harness {
    async fn new(backend: Backend) -> Option<Harness> {
        let dir = scratch_dir();
        let url = fresh_url(backend, &dir).await?;
        let key_file = dir.join("master.key");
        let keys = MasterKeyRing::load_or_create_file(&key_file, true).unwrap();
        let store = switchboard_store::open(&url, keys).await.unwrap();
        let raw = Raw::connect(backend, &url).await;
        Some(Harness {
            backend,
            url,
            key_file,
            store,
            raw,
        })
    }

    async fn reopen(&self, keys: MasterKeyRing) -> Result<Arc<dyn Store>, StoreError> {
        switchboard_store::open(&self.url, keys).await
    }

    async fn org(&self, name: &str) -> NewOrganization {
        let email = format!("admin@{name}.test");
        self.store.create_org(name, &email, None).await.unwrap()
    }
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sbt-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A URL naming a brand-new, empty database, or `None` when the back end is not configured.
async fn fresh_url(backend: Backend, dir: &Path) -> Option<String> {
    match backend {
        Backend::Sqlite => Some(format!("sqlite://{}", dir.join("store.db").display())),
        Backend::Postgres => {
            let Ok(admin_url) = std::env::var("SWITCHBOARD_TEST_POSTGRES_URL") else {
                assert!(
                    std::env::var("SWITCHBOARD_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                    "SWITCHBOARD_REQUIRE_POSTGRES=1 but SWITCHBOARD_TEST_POSTGRES_URL is unset"
                );
                eprintln!("skipping PostgreSQL: SWITCHBOARD_TEST_POSTGRES_URL is unset");
                return None;
            };
            let name = format!("sbt_{}", uuid::Uuid::now_v7().simple());
            let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
            let create = format!("CREATE DATABASE {name}");
            sqlx::raw_sql(sqlx::AssertSqlSafe(create))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
            Some(with_database(&admin_url, &name))
        }
    }
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    format!("{base}/{name}{query}")
}

async fn run<F, Fut>(backend: Backend, case: F)
where
    F: FnOnce(Harness) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(h) = Harness::new(backend).await else {
        return;
    };
    let url = h.url.clone();
    let dir = h.key_file.parent().map(Path::to_path_buf);
    case(h).await;
    drop_database(backend, &url).await;
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Removes a PostgreSQL test database (a failed test leaves its database for inspection).
async fn drop_database(backend: Backend, url: &str) {
    let (Backend::Postgres, Ok(admin_url)) =
        (backend, std::env::var("SWITCHBOARD_TEST_POSTGRES_URL"))
    else {
        return;
    };
    let Some(name) = url.rsplit('/').next().and_then(|t| t.split('?').next()) else {
        return;
    };
    let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
    let statement = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
}

macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::run(super::Backend::Sqlite, super::$case).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::run(super::Backend::Postgres, super::$case).await;
                }
            }
        )*
    };
}

on_both_backends!(
    migrations_are_idempotent,
    org_creation_and_unique_names,
    emails_are_unique_instance_wide,
    token_authentication,
    client_credentials,
    passwords,
    provider_upsert_list_and_delete,
    tenants_are_isolated,
    secrets_round_trip_and_stay_encrypted,
    misplaced_ciphertext_fails_to_decrypt,
    every_write_is_audited_without_secret_values,
    audit_chain_detects_tampering,
    audit_listing_pages_newest_first,
    key_rotation_is_resumable,
    config_version_grows_with_writes,
    ai_settings_default_and_update,
    concurrent_writers_keep_the_chain_intact,
    org_config_is_complete_and_scoped,
    org_config_is_one_snapshot,
    unseal_refuses_misplaced_secrets,
    unseal_survives_key_rotation,
    token_fingerprints_match_stored_hashes,
    changes_since_names_the_changed_orgs,
    sessions_live_and_die,
    invocations_round_trip_page_and_stay_scoped,
    invocation_content_follows_the_opt_out,
    purge_erases_expired_content_and_its_key,
    invocation_ledger_detects_tampering,
    a_rewound_ledger_head_is_detected,
    running_invocations_end_in_their_final_record,
    interrupted_invocations_are_recovered_once,
    content_keys_survive_key_rotation,
    managed_usage_counts_metered_records,
    purge_runs_on_one_replica_at_a_time,
    invocations_filter_by_provider_model_and_status,
    usage_sums_and_percentiles_per_model,
    validations_replace_stay_scoped_and_go_with_the_provider,
    users_list_per_organization,
    provider_writes_conditional_on_a_revision,
    concurrent_partial_ai_settings_changes_all_survive,
    users_change_and_an_active_admin_always_remains,
    disabled_users_are_refused_everywhere,
    deleted_users_take_their_credentials_but_not_their_records,
    tokens_are_named_listed_expired_and_revoked,
    shared_limit_counters,
);

fn admin(new: &NewOrganization) -> Actor {
    Actor {
        user_id: Some(new.admin.user.id),
        label: new.admin.user.email.clone(),
    }
}

fn provider_write(provider: ProviderType, config: Value) -> ProviderWrite {
    let Value::Object(config) = config else {
        panic!("config must be an object")
    };
    ProviderWrite {
        provider,
        enabled: true,
        config,
        overrides: Overrides::default(),
        expected_revision: None,
    }
}

fn secret(value: &str) -> SecretValue {
    SecretValue::new(value.to_owned())
}

// ------------------------------------------------------------------------------------------

/// How many migration files the back end ships: a fresh database applies them all.
fn shipped_migrations(backend: Backend) -> u64 {
    let dir = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dir);
    let files = std::fs::read_dir(path).unwrap();
    let sql = files.filter(|f| f.as_ref().unwrap().path().extension() == Some("sql".as_ref()));
    sql.count() as u64
}

async fn migrations_are_idempotent(h: Harness) {
    assert_eq!(switchboard_store::migrate(&h.url).await.unwrap(), 0);
    assert_eq!(switchboard_store::migrate(&h.url).await.unwrap(), 0);
    // Reopening an up-to-date database is fine too.
    let keys = MasterKeyRing::load_or_create_file(&h.key_file, false).unwrap();
    h.reopen(keys).await.unwrap();

    let dir = scratch_dir();
    let url = fresh_url(h.backend, &dir).await.unwrap();
    let shipped = shipped_migrations(h.backend);
    assert_eq!(switchboard_store::migrate(&url).await.unwrap(), shipped);
    assert_eq!(switchboard_store::migrate(&url).await.unwrap(), 0);
    drop_database(h.backend, &url).await;
    let _ = std::fs::remove_dir_all(dir);
}

async fn org_creation_and_unique_names(h: Harness) {
    assert!(!h.store.has_organizations().await.unwrap());
    let new = h
        .store
        .create_org("acme", "Admin@Acme.TEST", None)
        .await
        .unwrap();
    assert_eq!(new.org.name, "acme");
    assert!(h.store.has_organizations().await.unwrap());
    assert_eq!(new.admin.user.email, "admin@acme.test");
    assert_eq!(new.admin.user.role, Role::Admin);
    assert_eq!(new.admin.user.org_id, new.org.id);
    assert!(new.admin.token.token.expose().starts_with("sb_"));
    assert!(new.admin.token.expires_in.is_none());

    let found = h.store.org_by_name("acme").await.unwrap().unwrap();
    assert_eq!(found, new.org);
    assert_eq!(h.store.list_orgs().await.unwrap(), vec![new.org.clone()]);

    let providers = h.store.list_providers(new.org.id).await.unwrap();
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0].provider, ProviderType::Managed);
    assert!(providers[0].enabled);
    assert!(providers[0].config.is_empty());
    assert!(providers[0].overrides.models.is_empty());

    let dup = h.store.create_org("acme", "other@acme.test", None).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert!(
        h.store
            .user_by_email("other@acme.test")
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        h.store.create_org("  ", "x@y.test", None).await,
        Err(StoreError::Invalid(_))
    ));

    let audit = h.store.list_audit(new.org.id, 10, None).await.unwrap();
    let actions: Vec<_> = audit.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["org.create", "user.create", "token.create"]);
    let seqs: Vec<_> = audit.iter().rev().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(audit[2].prev_hash, "0".repeat(64));
    let text = serde_json::to_string(&audit).unwrap();
    assert!(!text.contains(new.admin.token.token.expose()));
    assert!(!text.contains(new.admin.credentials.client_secret.expose()));
}

async fn emails_are_unique_instance_wide(h: Harness) {
    let a = h.org("a").await;
    let b = h.org("b").await;
    let taken = h
        .store
        .create_user(b.org.id, &admin(&b), "ADMIN@a.test", Role::Member, None)
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");

    let org_with_taken_email = h.store.create_org("c", "admin@A.test", None).await;
    assert!(matches!(org_with_taken_email, Err(StoreError::Conflict(_))));
    assert!(
        h.store.org_by_name("c").await.unwrap().is_none(),
        "rolled back"
    );

    let member = h
        .store
        .create_user(a.org.id, &admin(&a), "Member@a.test", Role::Member, None)
        .await
        .unwrap();
    assert_eq!(member.user.email, "member@a.test");
    assert_eq!(member.user.role, Role::Member);
    let found = h
        .store
        .user_by_email("MEMBER@a.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, member.user);

    let ghost_org = h
        .store
        .create_user(OrgId::new(), &admin(&a), "ghost@x.test", Role::Member, None)
        .await;
    assert!(matches!(ghost_org, Err(StoreError::NotFound)));
    assert!(matches!(
        h.store
            .create_user(a.org.id, &admin(&a), "not-an-email", Role::Member, None)
            .await,
        Err(StoreError::Invalid(_))
    ));
}

async fn token_authentication(h: Harness) {
    let a = h.org("a").await;
    let b = h.org("b").await;
    let token = a.admin.token.token.expose();
    let principal = h.store.authenticate_token(token).await.unwrap().unwrap();
    assert_eq!(principal.org_id, a.org.id);
    assert_eq!(principal.user_id, a.admin.user.id);
    assert_eq!(principal.email, "admin@a.test");
    assert_eq!(principal.role, Role::Admin);

    // Same public id, wrong secret.
    let (prefix, _) = token.rsplit_once('_').unwrap();
    let wrong = format!("{prefix}_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert!(h.store.authenticate_token(&wrong).await.unwrap().is_none());
    let unknown = format!(
        "sb_{}_{}",
        "0".repeat(32),
        token.rsplit_once('_').unwrap().1
    );
    assert!(
        h.store
            .authenticate_token(&unknown)
            .await
            .unwrap()
            .is_none()
    );
    for junk in ["", "Bearer x", "sb_", "sb_zz_zz"] {
        assert!(h.store.authenticate_token(junk).await.unwrap().is_none());
    }

    let member = h
        .store
        .create_user(a.org.id, &admin(&a), "m@a.test", Role::Member, None)
        .await
        .unwrap();
    let extra = h
        .store
        .create_api_token(a.org.id, &admin(&a), member.user.id)
        .await
        .unwrap();
    let p = h
        .store
        .authenticate_token(extra.token.expose())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((p.user_id, p.role), (member.user.id, Role::Member));
    assert!(
        h.store
            .authenticate_token(member.token.token.expose())
            .await
            .unwrap()
            .is_some()
    );

    // A user of another organization is not found through org B.
    let foreign = h
        .store
        .create_api_token(b.org.id, &admin(&b), member.user.id)
        .await;
    assert!(matches!(foreign, Err(StoreError::NotFound)));
}

async fn client_credentials(h: Harness) {
    let a = h.org("a").await;
    let creds = &a.admin.credentials;
    assert_eq!(creds.client_id, a.admin.user.client_id);
    let issued = h
        .store
        .exchange_client_credentials(&creds.client_id, creds.client_secret.expose(), 3600)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(issued.expires_in, Some(3600));
    let p = h
        .store
        .authenticate_token(issued.token.expose())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.user_id, a.admin.user.id);

    let wrong = h
        .store
        .exchange_client_credentials(&creds.client_id, "not-the-secret", 3600)
        .await
        .unwrap();
    assert!(wrong.is_none());
    let unknown = h
        .store
        .exchange_client_credentials("sbc_nope", creds.client_secret.expose(), 3600)
        .await
        .unwrap();
    assert!(unknown.is_none());

    let expired = h
        .store
        .exchange_client_credentials(&creds.client_id, creds.client_secret.expose(), 0)
        .await
        .unwrap()
        .unwrap();
    assert!(
        h.store
            .authenticate_token(expired.token.expose())
            .await
            .unwrap()
            .is_none()
    );
}

async fn passwords(h: Harness) {
    let pw = secret("correct horse battery staple");
    let a = h
        .store
        .create_org("a", "admin@a.test", Some(&pw))
        .await
        .unwrap();
    let p = h
        .store
        .verify_password("Admin@A.test", pw.expose())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.user_id, a.admin.user.id);
    assert!(
        h.store
            .verify_password("admin@a.test", "wrong")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.store
            .verify_password("nobody@a.test", pw.expose())
            .await
            .unwrap()
            .is_none()
    );

    let b = h.org("b").await; // no password
    assert!(
        h.store
            .verify_password(&b.admin.user.email, "")
            .await
            .unwrap()
            .is_none()
    );
    let hash: String = match &h.raw {
        Raw::Sqlite(pool) => sqlx::query("SELECT password_hash FROM users WHERE email = $1")
            .bind("admin@a.test")
            .fetch_one(pool)
            .await
            .unwrap()
            .get(0),
        Raw::Pg(pool) => sqlx::query("SELECT password_hash FROM users WHERE email = $1")
            .bind("admin@a.test")
            .fetch_one(pool)
            .await
            .unwrap()
            .get(0),
    };
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

async fn provider_upsert_list_and_delete(h: Harness) {
    let a = h.org("a").await;
    let org = a.org.id;
    let actor = admin(&a);
    let (first, created) = h
        .store
        .put_provider(
            org,
            &actor,
            provider_write(ProviderType::Bedrock, json!({"region": "us-east-1"})),
        )
        .await
        .unwrap();
    assert!(created);
    assert_eq!(first.created_by, "admin@a.test");

    let mut replacement = provider_write(ProviderType::Bedrock, json!({"region": "eu-west-1"}));
    replacement.enabled = false;
    replacement.overrides.models = Map::from_iter([("m".to_owned(), json!({"enabled": false}))]);
    let later = Actor::cli();
    let (second, created) = h
        .store
        .put_provider(org, &later, replacement)
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(second.created_at, first.created_at);
    assert_eq!(second.created_by, "admin@a.test");
    assert_eq!(second.updated_by, "cli");
    assert!(!second.enabled);
    let stored = h
        .store
        .get_provider(org, ProviderType::Bedrock)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, second);

    for p in [
        ProviderType::OpenAiCompatible,
        ProviderType::OpenAi,
        ProviderType::Anthropic,
    ] {
        h.store
            .put_provider(org, &actor, provider_write(p, json!({})))
            .await
            .unwrap();
    }
    let order: Vec<_> = h
        .store
        .list_providers(org)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.provider)
        .collect();
    assert_eq!(
        order,
        [
            ProviderType::OpenAi,
            ProviderType::Anthropic,
            ProviderType::Bedrock,
            ProviderType::OpenAiCompatible,
            ProviderType::Managed
        ]
    );

    assert!(
        h.store
            .delete_provider(org, &actor, ProviderType::Bedrock)
            .await
            .unwrap()
    );
    assert!(
        !h.store
            .delete_provider(org, &actor, ProviderType::Bedrock)
            .await
            .unwrap()
    );
    assert!(
        h.store
            .get_provider(org, ProviderType::Bedrock)
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        h.store
            .delete_provider(org, &actor, ProviderType::Managed)
            .await,
        Err(StoreError::Invalid(_))
    ));

    let actions: Vec<_> = h
        .store
        .list_audit(org, 100, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.resource == "llm-provider:bedrock")
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        ["provider.delete", "provider.update", "provider.create"]
    );
}

async fn tenants_are_isolated(h: Harness) {
    let a = h.org("a").await;
    let b = h.org("b").await;
    let (aid, bid) = (a.org.id, b.org.id);
    h.store
        .put_provider(
            aid,
            &admin(&a),
            provider_write(ProviderType::OpenAi, json!({})),
        )
        .await
        .unwrap();
    h.store
        .create_secret(aid, &admin(&a), "key", secret(CANARY), None)
        .await
        .unwrap();
    h.store
        .put_defaults(aid, &admin(&a), ProviderType::OpenAi, "gpt-5")
        .await
        .unwrap();

    let bb = admin(&b);
    assert!(
        h.store
            .get_provider(bid, ProviderType::OpenAi)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(h.store.list_providers(bid).await.unwrap().len(), 1);
    assert!(
        !h.store
            .delete_provider(bid, &bb, ProviderType::OpenAi)
            .await
            .unwrap()
    );
    assert!(h.store.get_secret_meta(bid, "key").await.unwrap().is_none());
    assert!(h.store.list_secrets(bid).await.unwrap().is_empty());
    assert!(h.store.reveal_secret(bid, "key").await.unwrap().is_none());
    assert!(!h.store.delete_secret(bid, &bb, "key").await.unwrap());
    let update = SecretUpdate {
        value: Some(secret("x")),
        description: None,
    };
    assert!(
        h.store
            .update_secret(bid, &bb, "key", update)
            .await
            .unwrap()
            .is_none()
    );
    assert!(h.store.get_defaults(bid).await.unwrap().is_none());

    // A's data is untouched.
    assert!(
        h.store
            .get_provider(aid, ProviderType::OpenAi)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        h.store
            .reveal_secret(aid, "key")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        CANARY
    );
    assert_eq!(
        h.store.get_defaults(aid).await.unwrap().unwrap().model,
        "gpt-5"
    );

    // An organization that does not exist behaves like a foreign one.
    let ghost = OrgId::new();
    let write = provider_write(ProviderType::OpenAi, json!({}));
    assert!(matches!(
        h.store.put_provider(ghost, &bb, write).await,
        Err(StoreError::NotFound)
    ));
}

async fn secrets_round_trip_and_stay_encrypted(h: Harness) {
    let a = h.org("a").await;
    let (org, actor) = (a.org.id, admin(&a));
    let meta = h
        .store
        .create_secret(org, &actor, "openai-key", secret(CANARY), Some("prod key"))
        .await
        .unwrap();
    assert_eq!(meta.name, "openai-key");
    assert_eq!(meta.description.as_deref(), Some("prod key"));
    assert_eq!(
        h.store
            .reveal_secret(org, "openai-key")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        CANARY
    );
    assert_eq!(h.store.list_secrets(org).await.unwrap(), vec![meta.clone()]);
    let dup = h
        .store
        .create_secret(org, &actor, "openai-key", secret("other"), None)
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))));

    let stored = h
        .raw
        .bytes(
            "SELECT ciphertext FROM secrets WHERE org_id = $1 AND name = $2",
            &[&org.to_string(), "openai-key"],
        )
        .await;
    assert!(!stored.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()));
    assert!(stored.len() > CANARY.len());

    let updated = h
        .store
        .update_secret(
            org,
            &actor,
            "openai-key",
            SecretUpdate {
                value: Some(secret("sk-rotated")),
                description: Some(None),
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.description, None);
    assert_eq!(updated.created_at, meta.created_at);
    assert_eq!(
        h.store
            .reveal_secret(org, "openai-key")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "sk-rotated"
    );
    let described = h
        .store
        .update_secret(
            org,
            &actor,
            "openai-key",
            SecretUpdate {
                value: None,
                description: Some(Some("new".into())),
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(described.description.as_deref(), Some("new"));
    assert_eq!(
        h.store
            .reveal_secret(org, "openai-key")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "sk-rotated"
    );

    assert!(
        h.store
            .delete_secret(org, &actor, "openai-key")
            .await
            .unwrap()
    );
    assert!(
        !h.store
            .delete_secret(org, &actor, "openai-key")
            .await
            .unwrap()
    );
    assert!(
        h.store
            .reveal_secret(org, "openai-key")
            .await
            .unwrap()
            .is_none()
    );
}

async fn misplaced_ciphertext_fails_to_decrypt(h: Harness) {
    let a = h.org("a").await;
    let b = h.org("b").await;
    let (aid, bid) = (a.org.id.to_string(), b.org.id.to_string());
    h.store
        .create_secret(a.org.id, &admin(&a), "key", secret(CANARY), None)
        .await
        .unwrap();
    h.store
        .create_secret(b.org.id, &admin(&b), "key", secret("b-value"), None)
        .await
        .unwrap();
    h.store
        .create_secret(a.org.id, &admin(&a), "other", secret("a-other"), None)
        .await
        .unwrap();

    // A's ciphertext copied into B's row.
    let copied = h
        .raw
        .exec(
            "UPDATE secrets SET ciphertext = \
             (SELECT ciphertext FROM secrets WHERE org_id = $1 AND name = $2) \
             WHERE org_id = $3 AND name = $2",
            &[&aid, "key", &bid],
        )
        .await;
    assert_eq!(copied, 1);
    let err = h.store.reveal_secret(b.org.id, "key").await;
    assert!(matches!(err, Err(StoreError::Crypto)), "{err:?}");
    assert!(!format!("{err:?}").contains(CANARY));

    // A's ciphertext moved under another name in the same organization.
    h.raw
        .exec(
            "UPDATE secrets SET ciphertext = \
             (SELECT ciphertext FROM secrets WHERE org_id = $1 AND name = $2) \
             WHERE org_id = $1 AND name = $3",
            &[&aid, "key", "other"],
        )
        .await;
    assert!(matches!(
        h.store.reveal_secret(a.org.id, "other").await,
        Err(StoreError::Crypto)
    ));
    assert_eq!(
        h.store
            .reveal_secret(a.org.id, "key")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        CANARY
    );
}

async fn every_write_is_audited_without_secret_values(h: Harness) {
    let a = h.org("a").await;
    let (org, actor) = (a.org.id, admin(&a));
    h.store
        .put_provider(
            org,
            &actor,
            provider_write(ProviderType::OpenAi, json!({"apiKeySecret": "k"})),
        )
        .await
        .unwrap();
    h.store
        .put_defaults(org, &actor, ProviderType::OpenAi, "gpt-5")
        .await
        .unwrap();
    h.store
        .create_secret(org, &actor, "k", secret(CANARY), Some("d"))
        .await
        .unwrap();
    let rotated = SecretUpdate {
        value: Some(secret(&format!("{CANARY}-2"))),
        description: None,
    };
    h.store
        .update_secret(org, &actor, "k", rotated)
        .await
        .unwrap();
    h.store.delete_secret(org, &actor, "k").await.unwrap();
    let settings = AiSettings {
        retention_days: 7,
        store_interaction_data: false,
    };
    h.store
        .put_ai_settings(org, &actor, settings.into())
        .await
        .unwrap();
    let user = h
        .store
        .create_user(org, &actor, "m@a.test", Role::Member, None)
        .await
        .unwrap();
    let token = h
        .store
        .create_api_token(org, &actor, user.user.id)
        .await
        .unwrap();
    h.store
        .delete_provider(org, &actor, ProviderType::OpenAi)
        .await
        .unwrap();
    let denied = AuditEvent {
        action: "provider.update".into(),
        resource: "llm-provider:anthropic".into(),
        status: "denied".into(),
        details: json!({"reason": "llm_provider_manage_forbidden"}),
    };
    let appended = h
        .store
        .append_audit(org, &Actor::cli(), denied)
        .await
        .unwrap();
    assert_eq!(appended.status, "denied");

    let entries = h.store.list_audit(org, 100, None).await.unwrap();
    let got: Vec<_> = entries
        .iter()
        .rev()
        .skip(3) // org.create, user.create, token.create
        .map(|e| (e.action.as_str(), e.resource.as_str(), e.status.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("provider.create", "llm-provider:openai", "success"),
            ("defaults.update", "llm-provider-defaults", "success"),
            ("secret.create", "secret:k", "success"),
            ("secret.update", "secret:k", "success"),
            ("secret.delete", "secret:k", "success"),
            ("ai_settings.update", "ai-settings", "success"),
            ("user.create", "user:m@a.test", "success"),
            ("token.create", "user:m@a.test", "success"),
            ("token.create", "user:m@a.test", "success"),
            ("provider.delete", "llm-provider:openai", "success"),
            ("provider.update", "llm-provider:anthropic", "denied"),
        ]
    );
    assert!(
        entries
            .iter()
            .skip(1)
            .take(10)
            .all(|e| e.actor == "admin@a.test")
    );
    assert!(entries.iter().rev().take(3).all(|e| e.actor == "system"));
    assert_eq!(entries[0].actor, "cli");

    let by_action = |action: &str| {
        entries
            .iter()
            .find(|e| e.action == action)
            .map(|e| e.details.clone())
            .unwrap()
    };
    let provider = by_action("provider.create");
    assert_eq!(provider["before"], Value::Null);
    assert_eq!(provider["after"]["config"]["apiKeySecret"], "k");
    assert_eq!(by_action("defaults.update")["after"]["model"], "gpt-5");
    assert_eq!(
        by_action("ai_settings.update")["before"]["retentionDays"],
        30
    );
    assert_eq!(by_action("ai_settings.update")["after"]["retentionDays"], 7);
    assert_eq!(by_action("secret.update")["after"]["description"], "d");

    let text = serde_json::to_string(&entries).unwrap();
    assert!(
        !text.contains(CANARY),
        "a secret value leaked into the audit log"
    );
    assert!(!text.to_lowercase().contains("length"));
    assert!(!text.contains(token.token.expose()));
    assert!(!text.contains(user.token.token.expose()));
    assert!(h.store.verify_audit(org).await.unwrap().is_none());
}

async fn audit_chain_detects_tampering(h: Harness) {
    let a = h.org("a").await;
    let b = h.org("b").await;
    for n in 0..4 {
        let model = format!("model-{n}");
        h.store
            .put_defaults(a.org.id, &admin(&a), ProviderType::Managed, &model)
            .await
            .unwrap();
    }
    assert!(h.store.verify_audit(a.org.id).await.unwrap().is_none());
    let entries = h.store.list_audit(a.org.id, 100, None).await.unwrap();
    let victim = entries.iter().find(|e| e.seq == 5).unwrap();

    // The database itself refuses to change or remove an entry, whoever sends the SQL.
    let org = a.org.id.to_string();
    for sql in [
        "UPDATE audit_log SET details = '{}' WHERE org_id = $1",
        "DELETE FROM audit_log WHERE org_id = $1",
    ] {
        let refusal = h.raw.refused(sql, &[&org]).await.expect("refused");
        assert!(refusal.contains("append-only"), "{refusal}");
    }
    assert!(h.store.verify_audit(a.org.id).await.unwrap().is_none());

    // Someone with the schema owner's rights lifts the guard and edits: verification
    // names the first broken link.
    h.raw.lift_audit_guard().await;
    let changed = h
        .raw
        .exec(
            "UPDATE audit_log SET details = $1 WHERE org_id = $2 AND seq = 5",
            &[
                r#"{"before":null,"after":{"model":"forged"}}"#,
                &a.org.id.to_string(),
            ],
        )
        .await;
    assert_eq!(changed, 1);
    let broken = h.store.verify_audit(a.org.id).await.unwrap().unwrap();
    assert_eq!(broken.entry_id, victim.id);
    assert_eq!(broken.seq, 5);
    assert_eq!(broken.org_id, a.org.id);
    // Other organizations' chains are independent.
    assert!(h.store.verify_audit(b.org.id).await.unwrap().is_none());

    // Deleting an entry is a gap at the next one.
    h.raw
        .exec(
            "DELETE FROM audit_log WHERE org_id = $1 AND seq = 2",
            &[&b.org.id.to_string()],
        )
        .await;
    let gap = h.store.verify_audit(b.org.id).await.unwrap().unwrap();
    assert_eq!(gap.seq, 3);
}

async fn audit_listing_pages_newest_first(h: Harness) {
    let a = h.org("a").await;
    for n in 0..5 {
        let event = AuditEvent {
            action: "test.event".into(),
            resource: format!("thing:{n}"),
            status: "success".into(),
            details: json!({"n": n}),
        };
        h.store
            .append_audit(a.org.id, &Actor::system(), event)
            .await
            .unwrap();
    }
    let page1 = h.store.list_audit(a.org.id, 3, None).await.unwrap();
    assert_eq!(page1.iter().map(|e| e.seq).collect::<Vec<_>>(), [8, 7, 6]);
    let page2 = h
        .store
        .list_audit(a.org.id, 3, Some(page1[2].seq))
        .await
        .unwrap();
    assert_eq!(page2.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 4, 3]);
    assert_eq!(page1[0].details, json!({"n": 4}));
    assert_eq!(page1[0].prev_hash, page1[1].hash);
    assert!(
        h.store
            .list_audit(OrgId::new(), 10, None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn key_rotation_is_resumable(h: Harness) {
    let mut orgs = Vec::new();
    for name in ["r1", "r2", "r3"] {
        let new = h.org(name).await;
        h.store
            .create_secret(
                new.org.id,
                &admin(&new),
                "key",
                secret(&format!("{CANARY}-{name}")),
                None,
            )
            .await
            .unwrap();
        orgs.push(new);
    }
    let v2 = MasterKeyRing::add_generated_version(&h.key_file).unwrap();
    assert_eq!(v2.versions(), [1, 2]);

    // Three data keys and the token pepper are stale; rotate one per batch, stop midway.
    let store = h.reopen(v2.clone()).await.unwrap();
    let first = store.rotate_keys(1).await.unwrap();
    assert_eq!(
        (first.current_version, first.rewrapped, first.remaining),
        (2, 1, 3)
    );
    let second = store.rotate_keys(1).await.unwrap();
    assert_eq!((second.rewrapped, second.remaining), (1, 2));
    drop(store);

    // Resume in a new process; old and new versions coexist meanwhile.
    let store = h.reopen(v2).await.unwrap();
    for new in &orgs {
        assert!(
            store
                .reveal_secret(new.org.id, "key")
                .await
                .unwrap()
                .is_some()
        );
    }
    let mut total = first.rewrapped + second.rewrapped;
    loop {
        let report = store.rotate_keys(1).await.unwrap();
        total += report.rewrapped;
        if report.remaining == 0 {
            break;
        }
    }
    assert_eq!(total, 4);
    assert_eq!(store.rotate_keys(10).await.unwrap().rewrapped, 0);
    drop(store);

    // Version 1 is no longer needed.
    let text = std::fs::read_to_string(&h.key_file).unwrap();
    let only_v2: String = text.lines().filter(|l| l.starts_with("2:")).collect();
    let ring = MasterKeyRing::from_file_text(&only_v2).unwrap();
    assert_eq!(ring.versions(), [2]);
    let store = h.reopen(ring).await.unwrap();
    for (new, name) in orgs.iter().zip(["r1", "r2", "r3"]) {
        let value = store
            .reveal_secret(new.org.id, "key")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(value.expose(), format!("{CANARY}-{name}"));
        let token = new.admin.token.token.expose();
        assert!(store.authenticate_token(token).await.unwrap().is_some());
    }

    // ...and a ring without the version the keys now need is refused at open.
    let only_v1: String = text.lines().filter(|l| l.starts_with("1:")).collect();
    let stale = MasterKeyRing::from_file_text(&only_v1).unwrap();
    assert!(matches!(h.reopen(stale).await, Err(StoreError::Key(_))));
    let unrelated = MasterKeyRing::generate()
        .unwrap()
        .with_generated_version()
        .unwrap();
    assert!(matches!(h.reopen(unrelated).await, Err(StoreError::Key(_))));
}

async fn config_version_grows_with_writes(h: Harness) {
    let v0 = h.store.config_version().await.unwrap();
    let a = h.org("a").await;
    let v1 = h.store.config_version().await.unwrap();
    assert!(v1 > v0);
    let actor = admin(&a);
    h.store
        .put_provider(
            a.org.id,
            &actor,
            provider_write(ProviderType::OpenAi, json!({})),
        )
        .await
        .unwrap();
    let v2 = h.store.config_version().await.unwrap();
    assert!(v2 > v1);
    h.store
        .create_secret(a.org.id, &actor, "s", secret("v"), None)
        .await
        .unwrap();
    let v3 = h.store.config_version().await.unwrap();
    assert!(v3 > v2);
    // Failed and no-op writes leave it alone.
    let _ = h
        .store
        .create_secret(a.org.id, &actor, "s", secret("v"), None)
        .await;
    assert!(
        !h.store
            .delete_secret(a.org.id, &actor, "missing")
            .await
            .unwrap()
    );
    assert_eq!(h.store.config_version().await.unwrap(), v3);
    h.store.ping().await.unwrap();
    let expected = match h.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(h.store.backend(), expected);
}

async fn ai_settings_default_and_update(h: Harness) {
    let a = h.org("a").await;
    assert_eq!(
        h.store.get_ai_settings(a.org.id).await.unwrap(),
        AiSettings::default()
    );
    let wanted = AiSettings {
        retention_days: 1,
        store_interaction_data: false,
    };
    let saved = h
        .store
        .put_ai_settings(a.org.id, &admin(&a), wanted.into())
        .await
        .unwrap();
    assert_eq!(saved, wanted);
    assert_eq!(h.store.get_ai_settings(a.org.id).await.unwrap(), wanted);
    let again = AiSettings {
        retention_days: 14,
        store_interaction_data: true,
    };
    h.store
        .put_ai_settings(a.org.id, &admin(&a), again.into())
        .await
        .unwrap();
    assert_eq!(h.store.get_ai_settings(a.org.id).await.unwrap(), again);
    let b = h.org("b").await;
    assert_eq!(
        h.store.get_ai_settings(b.org.id).await.unwrap(),
        AiSettings::default()
    );
}

async fn concurrent_writers_keep_the_chain_intact(h: Harness) {
    let a = h.org("a").await;
    let actor = admin(&a);
    let mut tasks = Vec::new();
    for n in 0..16 {
        let store = h.store.clone();
        let actor = actor.clone();
        let org = a.org.id;
        tasks.push(tokio::spawn(async move {
            if n % 2 == 0 {
                let model = format!("m{n}");
                store
                    .put_defaults(org, &actor, ProviderType::Managed, &model)
                    .await
                    .map(|_| ())
            } else {
                let event = AuditEvent {
                    action: "test.concurrent".into(),
                    resource: format!("n:{n}"),
                    status: "success".into(),
                    details: json!({}),
                };
                store.append_audit(org, &actor, event).await.map(|_| ())
            }
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let entries = h.store.list_audit(a.org.id, 100, None).await.unwrap();
    assert_eq!(entries.len(), 3 + 16);
    assert!(h.store.verify_audit(a.org.id).await.unwrap().is_none());
    h.raw.close().await;
}

/// A write that names the revision it was merged into goes through only while that
/// revision is stored; a replacement, any other write or a delete in between refuses it.
async fn provider_writes_conditional_on_a_revision(h: Harness) {
    let a = h.org("a").await;
    let actor = admin(&a);
    let org = a.org.id;
    let config = json!({ "region": "eu-west-1" });
    let (first, _) = h
        .store
        .put_provider(
            org,
            &actor,
            provider_write(ProviderType::Bedrock, config.clone()),
        )
        .await
        .unwrap();
    assert_eq!(first.revision, 1);
    let mut conditional = provider_write(ProviderType::Bedrock, config.clone());
    conditional.expected_revision = Some(1);
    let (second, created) = h
        .store
        .put_provider(org, &actor, conditional.clone())
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(second.revision, 2);
    let stored = h.store.get_provider(org, ProviderType::Bedrock).await;
    assert_eq!(stored.unwrap().unwrap().revision, 2);
    // The same write again was merged into revision 1, which is gone.
    let audit_before = h.store.list_audit(org, 100, None).await.unwrap().len();
    assert!(matches!(
        h.store.put_provider(org, &actor, conditional.clone()).await,
        Err(StoreError::Stale)
    ));
    let audit_after = h.store.list_audit(org, 100, None).await.unwrap().len();
    assert_eq!(audit_before, audit_after, "a refused write is not audited");
    // Deleted meanwhile: stale too, and nothing is recreated.
    h.store
        .delete_provider(org, &actor, ProviderType::Bedrock)
        .await
        .unwrap();
    conditional.expected_revision = Some(2);
    assert!(matches!(
        h.store.put_provider(org, &actor, conditional).await,
        Err(StoreError::Stale)
    ));
    assert!(
        h.store
            .get_provider(org, ProviderType::Bedrock)
            .await
            .unwrap()
            .is_none()
    );
    h.raw.close().await;
}

/// Partial changes of the data controls are merged inside the write transaction: each of
/// many concurrent ones changes one value and none is lost.
async fn concurrent_partial_ai_settings_changes_all_survive(h: Harness) {
    let a = h.org("a").await;
    let actor = admin(&a);
    let org = a.org.id;
    let mut tasks = Vec::new();
    for n in 0..16u32 {
        let (store, actor) = (h.store.clone(), actor.clone());
        // The last writer of each field decides it; the order is the test's choice only
        // through `store_interaction_data` staying false once the one `false` lands.
        let change = if n == 7 {
            AiSettingsChange {
                store_interaction_data: Some(false),
                ..Default::default()
            }
        } else {
            AiSettingsChange {
                retention_days: Some(3),
                ..Default::default()
            }
        };
        tasks.push(tokio::spawn(async move {
            store.put_ai_settings(org, &actor, change).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let wanted = AiSettings {
        retention_days: 3,
        store_interaction_data: false,
    };
    assert_eq!(h.store.get_ai_settings(org).await.unwrap(), wanted);
    h.raw.close().await;
}

// Data plane -------------------------------------------------------------------------------

fn sealed<'a>(secrets: &'a [SealedSecret], name: &str) -> &'a SealedSecret {
    secrets.iter().find(|s| s.name == name).unwrap()
}

/// `(public id, secret)` of a `<prefix><id>_<secret>` token; the secret is base64url and
/// may itself contain `_`, so split at the first one.
fn token_parts<'a>(token: &'a str, prefix: &str) -> (&'a str, &'a str) {
    token.strip_prefix(prefix).unwrap().split_once('_').unwrap()
}

fn sorted(mut orgs: Vec<OrgId>) -> Vec<OrgId> {
    orgs.sort();
    orgs
}

async fn org_config_is_complete_and_scoped(h: Harness) {
    let a = h.org("a").await;
    let b = h.org("b").await;
    let (org, actor) = (a.org.id, admin(&a));
    h.store
        .put_provider(
            org,
            &actor,
            provider_write(ProviderType::Anthropic, json!({"apiKeySecret": "k2"})),
        )
        .await
        .unwrap();
    h.store
        .put_provider(
            org,
            &actor,
            provider_write(ProviderType::OpenAi, json!({"apiKeySecret": "k1"})),
        )
        .await
        .unwrap();
    h.store
        .put_defaults(org, &actor, ProviderType::OpenAi, "gpt-5")
        .await
        .unwrap();
    let settings = AiSettings {
        retention_days: 3,
        store_interaction_data: false,
    };
    h.store
        .put_ai_settings(org, &actor, settings.into())
        .await
        .unwrap();
    for (name, value) in [("k2", format!("{CANARY}-2")), ("k1", format!("{CANARY}-1"))] {
        h.store
            .create_secret(org, &actor, name, secret(&value), None)
            .await
            .unwrap();
    }
    h.store
        .create_secret(b.org.id, &admin(&b), "k1", secret("b-value"), None)
        .await
        .unwrap();

    let config = h.store.load_org_config(org).await.unwrap().unwrap();
    assert_eq!(config.org, a.org);
    assert_eq!(config.providers, h.store.list_providers(org).await.unwrap());
    let types: Vec<_> = config.providers.iter().map(|p| p.provider).collect();
    assert_eq!(
        types,
        [
            ProviderType::OpenAi,
            ProviderType::Anthropic,
            ProviderType::Managed
        ]
    );
    assert_eq!(config.defaults, h.store.get_defaults(org).await.unwrap());
    assert_eq!(config.settings, settings);
    assert_eq!(config.version, h.store.config_version().await.unwrap());
    let names: Vec<_> = config.secrets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["k1", "k2"]);
    for sealed in &config.secrets {
        let revealed = h.store.reveal_secret(org, &sealed.name).await.unwrap();
        let unsealed = h.store.unseal(org, sealed).unwrap();
        assert_eq!(Some(unsealed), revealed);
        let text = String::from_utf8_lossy(&sealed.ciphertext).into_owned();
        assert!(!text.contains("canary"));
    }
    assert!(!format!("{config:?}").contains(CANARY));

    // The other organization sees only its own secret, and nothing of A's configuration.
    let other = h.store.load_org_config(b.org.id).await.unwrap().unwrap();
    assert_eq!(other.org, b.org);
    assert_eq!(other.secrets.len(), 1);
    let value = h.store.unseal(b.org.id, &other.secrets[0]).unwrap();
    assert_eq!(value.expose(), "b-value");
    assert!(other.defaults.is_none());
    assert_eq!(other.settings, AiSettings::default());
    let types: Vec<_> = other.providers.iter().map(|p| p.provider).collect();
    assert_eq!(types, [ProviderType::Managed]);

    assert!(
        h.store
            .load_org_config(OrgId::new())
            .await
            .unwrap()
            .is_none()
    );
}

/// Loads race with a stream of writes: every view must be one state, with the version it
/// belongs to (write `n` sets model `m<n>` and makes the version `base + n`).
async fn org_config_is_one_snapshot(h: Harness) {
    let a = h.org("a").await;
    let org = a.org.id;
    let base = h.store.config_version().await.unwrap();
    const WRITES: i64 = 30;
    // The writes start once the first load is done, so loads and writes always overlap
    // (a fast back end could otherwise finish all writes before the first load).
    let (first_load_done, first_load) = tokio::sync::oneshot::channel::<()>();
    let mut first_load_done = Some(first_load_done);
    let writer = {
        let store = h.store.clone();
        let actor = admin(&a);
        tokio::spawn(async move {
            first_load.await.unwrap();
            for n in 1..=WRITES {
                let model = format!("m{n}");
                store
                    .put_defaults(org, &actor, ProviderType::Managed, &model)
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen = 0;
    loop {
        let config = h.store.load_org_config(org).await.unwrap().unwrap();
        let n = config.version - base;
        match &config.defaults {
            None => assert_eq!(n, 0),
            Some(defaults) => assert_eq!(defaults.model, format!("m{n}")),
        }
        seen += 1;
        if let Some(done) = first_load_done.take() {
            done.send(()).unwrap();
        }
        if n == WRITES {
            break;
        }
    }
    writer.await.unwrap();
    assert!(seen > 1);
}

async fn unseal_refuses_misplaced_secrets(h: Harness) {
    let a = h.org("a").await;
    let b = h.org("b").await;
    h.store
        .create_secret(a.org.id, &admin(&a), "key", secret(CANARY), None)
        .await
        .unwrap();
    h.store
        .create_secret(a.org.id, &admin(&a), "other", secret("a-other"), None)
        .await
        .unwrap();
    h.store
        .create_secret(b.org.id, &admin(&b), "key", secret("b-value"), None)
        .await
        .unwrap();
    let ca = h.store.load_org_config(a.org.id).await.unwrap().unwrap();
    let cb = h.store.load_org_config(b.org.id).await.unwrap().unwrap();
    let a_key = sealed(&ca.secrets, "key");
    let b_key = sealed(&cb.secrets, "key");
    // Warm whatever the store remembers about both organizations' keys first.
    assert_eq!(h.store.unseal(a.org.id, a_key).unwrap().expose(), CANARY);
    assert_eq!(h.store.unseal(b.org.id, b_key).unwrap().expose(), "b-value");

    let crypto = |r: Result<SecretValue, StoreError>| {
        assert!(matches!(r, Err(StoreError::Crypto)), "{:?}", r.map(|_| ()));
    };
    // A's sealed secret, as is, presented for B.
    crypto(h.store.unseal(b.org.id, a_key));
    // A's ciphertext carried with B's wrapped data key, for either organization.
    let mut moved = a_key.clone();
    moved.wrapped_data_key = b_key.wrapped_data_key.clone();
    moved.kek_version = b_key.kek_version;
    crypto(h.store.unseal(b.org.id, &moved));
    crypto(h.store.unseal(a.org.id, &moved));
    // Renamed within A, relabelled key version, tampered bytes.
    let mut renamed = a_key.clone();
    renamed.name = "other".into();
    crypto(h.store.unseal(a.org.id, &renamed));
    let mut relabelled = a_key.clone();
    relabelled.kek_version += 1;
    assert!(h.store.unseal(a.org.id, &relabelled).is_err());
    let mut tampered = a_key.clone();
    if let Some(last) = tampered.wrapped_data_key.last_mut() {
        *last ^= 1;
    }
    crypto(h.store.unseal(a.org.id, &tampered));
    let mut tampered = a_key.clone();
    if let Some(last) = tampered.ciphertext.last_mut() {
        *last ^= 1;
    }
    crypto(h.store.unseal(a.org.id, &tampered));

    // None of that disturbed the genuine articles.
    assert_eq!(h.store.unseal(a.org.id, a_key).unwrap().expose(), CANARY);
    assert_eq!(h.store.unseal(b.org.id, b_key).unwrap().expose(), "b-value");
    let other = h.store.unseal(a.org.id, sealed(&ca.secrets, "other"));
    assert_eq!(other.unwrap().expose(), "a-other");
}

async fn unseal_survives_key_rotation(h: Harness) {
    let a = h.org("a").await;
    h.store
        .create_secret(a.org.id, &admin(&a), "key", secret(CANARY), None)
        .await
        .unwrap();
    let before = h.store.load_org_config(a.org.id).await.unwrap().unwrap();
    let old = sealed(&before.secrets, "key").clone();
    assert_eq!(old.kek_version, 1);

    let both = MasterKeyRing::add_generated_version(&h.key_file).unwrap();
    let store = h.reopen(both).await.unwrap();
    assert_eq!(store.unseal(a.org.id, &old).unwrap().expose(), CANARY);
    while store.rotate_keys(10).await.unwrap().remaining > 0 {}

    let after = store.load_org_config(a.org.id).await.unwrap().unwrap();
    let new = sealed(&after.secrets, "key");
    assert_eq!(new.kek_version, 2);
    assert_ne!(new.wrapped_data_key, old.wrapped_data_key);
    assert_eq!(store.unseal(a.org.id, new).unwrap().expose(), CANARY);
    // Until the old version leaves the ring, a view loaded before rotation still works.
    assert_eq!(store.unseal(a.org.id, &old).unwrap().expose(), CANARY);
    assert_eq!(
        store.reveal_secret(a.org.id, "key").await.unwrap().unwrap(),
        store.unseal(a.org.id, new).unwrap()
    );
    drop(store);

    // With only the new version, the reloaded view works and the stale one cannot.
    let text = std::fs::read_to_string(&h.key_file).unwrap();
    let only_v2: String = text.lines().filter(|l| l.starts_with("2:")).collect();
    let store = h
        .reopen(MasterKeyRing::from_file_text(&only_v2).unwrap())
        .await
        .unwrap();
    let reloaded = store.load_org_config(a.org.id).await.unwrap().unwrap();
    let value = store.unseal(a.org.id, sealed(&reloaded.secrets, "key"));
    assert_eq!(value.unwrap().expose(), CANARY);
    assert!(matches!(
        store.unseal(a.org.id, &old),
        Err(StoreError::Key(_))
    ));
}

async fn token_fingerprints_match_stored_hashes(h: Harness) {
    let a = h.org("a").await;
    let token = a.admin.token.token.expose();
    let fingerprint = h.store.token_fingerprint(token).unwrap();
    let (public_id, secret_part) = token_parts(token, "sb_");
    assert_eq!(fingerprint.public_id, public_id);
    let stored = h
        .raw
        .text(
            "SELECT token_hash FROM api_tokens WHERE id = $1",
            &[&fingerprint.public_id],
        )
        .await;
    let hex: String = fingerprint
        .digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hex, stored);
    assert_eq!(h.store.token_fingerprint(token), Some(fingerprint.clone()));
    assert!(!format!("{fingerprint:?}").contains(secret_part));

    let wrong = format!("sb_{public_id}_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let other = h.store.token_fingerprint(&wrong).unwrap();
    assert_eq!(other.public_id, fingerprint.public_id);
    assert_ne!(other.digest, fingerprint.digest);

    let principal = h.store.authenticate_token(token).await.unwrap().unwrap();
    let session = h.store.create_session(&principal, 60).await.unwrap();
    for junk in ["", "Bearer x", "sb_", "sb_zz_zz", session.token.expose()] {
        assert!(h.store.token_fingerprint(junk).is_none(), "{junk}");
    }
}

async fn changes_since_names_the_changed_orgs(h: Harness) {
    let v0 = h.store.config_version().await.unwrap();
    let a = h.org("a").await;
    let changes = h.store.changes_since(v0).await.unwrap();
    let v1 = h.store.config_version().await.unwrap();
    assert_eq!(
        changes,
        ConfigChanges {
            version: v1,
            orgs: vec![a.org.id],
            oldest_at: changes.oldest_at,
        }
    );

    let b = h.org("b").await;
    h.store
        .put_provider(
            a.org.id,
            &admin(&a),
            provider_write(ProviderType::OpenAi, json!({})),
        )
        .await
        .unwrap();
    let changes = h.store.changes_since(v1).await.unwrap();
    let v2 = h.store.config_version().await.unwrap();
    assert_eq!(changes.version, v2);
    assert_eq!(sorted(changes.orgs), sorted(vec![a.org.id, b.org.id]));

    let member = h
        .store
        .create_user(b.org.id, &admin(&b), "m@b.test", Role::Member, None)
        .await
        .unwrap();
    let v3 = h.store.config_version().await.unwrap();
    assert_eq!(h.store.changes_since(v2).await.unwrap().orgs, [b.org.id]);
    h.store
        .create_api_token(b.org.id, &admin(&b), member.user.id)
        .await
        .unwrap();
    h.store
        .create_secret(a.org.id, &admin(&a), "s", secret("v"), None)
        .await
        .unwrap();
    let changes = h.store.changes_since(v3).await.unwrap();
    assert_eq!(sorted(changes.orgs), sorted(vec![a.org.id, b.org.id]));
    let v4 = changes.version;
    assert_eq!(v4, v3 + 2);

    // Neither failed, no-op nor non-management writes count.
    let _ = h
        .store
        .create_secret(a.org.id, &admin(&a), "s", secret("v"), None)
        .await;
    assert!(
        !h.store
            .delete_secret(a.org.id, &admin(&a), "missing")
            .await
            .unwrap()
    );
    let creds = &a.admin.credentials;
    h.store
        .exchange_client_credentials(&creds.client_id, creds.client_secret.expose(), 60)
        .await
        .unwrap()
        .unwrap();
    let event = AuditEvent {
        action: "test.event".into(),
        resource: "thing".into(),
        status: "denied".into(),
        details: json!({}),
    };
    h.store
        .append_audit(a.org.id, &Actor::system(), event)
        .await
        .unwrap();
    let principal = h
        .store
        .authenticate_token(a.admin.token.token.expose())
        .await
        .unwrap()
        .unwrap();
    h.store.create_session(&principal, 60).await.unwrap();
    assert_eq!(
        h.store.changes_since(v4).await.unwrap(),
        ConfigChanges {
            version: v4,
            orgs: vec![],
            oldest_at: None,
        }
    );

    // When the log no longer covers the range (pruned), or the version is not one this
    // database has reached, the answer is every organization.
    let all = sorted(vec![a.org.id, b.org.id]);
    let v2_text = v2.to_string();
    let pruned = h
        .raw
        .exec(
            "DELETE FROM config_changes WHERE version <= CAST($1 AS BIGINT)",
            &[&v2_text],
        )
        .await;
    assert!(pruned > 0);
    let changes = h.store.changes_since(v1).await.unwrap();
    assert_eq!((changes.version, sorted(changes.orgs)), (v4, all.clone()));
    assert_eq!(sorted(h.store.changes_since(0).await.unwrap().orgs), all);
    let exact = h.store.changes_since(v3).await.unwrap();
    assert_eq!(sorted(exact.orgs), all);
    assert_eq!(
        h.store.changes_since(v4 - 1).await.unwrap().orgs,
        [a.org.id]
    );
    let ahead = h.store.changes_since(v4 + 5).await.unwrap();
    assert_eq!((ahead.version, sorted(ahead.orgs)), (v4, all));
}

async fn sessions_live_and_die(h: Harness) {
    let pw = secret("correct horse battery staple");
    let a = h
        .store
        .create_org("a", "admin@a.test", Some(&pw))
        .await
        .unwrap();
    let b = h.org("b").await;
    let principal = h
        .store
        .verify_password("admin@a.test", pw.expose())
        .await
        .unwrap()
        .unwrap();
    let version = h.store.config_version().await.unwrap();
    let audit_len = h.store.list_audit(a.org.id, 100, None).await.unwrap().len();

    let before = Timestamp::now();
    let issued = h.store.create_session(&principal, 3600).await.unwrap();
    let token = issued.token.expose();
    assert!(token.starts_with("sbs_"), "{token}");
    assert!(issued.csrf_token.len() >= 32);
    let lifetime = issued.expires_at.unix_seconds() - before.unix_seconds();
    assert!((3599..=3601).contains(&lifetime), "{lifetime}");

    let live = h.store.session(token).await.unwrap().unwrap();
    assert_eq!(live.principal, principal);
    assert_eq!(live.csrf_token, issued.csrf_token);
    assert_eq!(live.expires_at, issued.expires_at);

    // Stored as a keyed hash only; sessions are neither audited nor config changes.
    let (public_id, secret_part) = token_parts(token, "sbs_");
    let stored = h
        .raw
        .text(
            "SELECT secret_hash FROM sessions WHERE id = $1",
            &[public_id],
        )
        .await;
    assert!(!stored.contains(secret_part));
    assert_eq!(stored.len(), 64);
    assert_eq!(h.store.config_version().await.unwrap(), version);
    let audit = h.store.list_audit(a.org.id, 100, None).await.unwrap();
    assert_eq!(audit.len(), audit_len);

    // Each session is its own; a second one for the same user has other tokens.
    let second = h.store.create_session(&principal, 3600).await.unwrap();
    assert_ne!(second.token.expose(), token);
    assert_ne!(second.csrf_token, issued.csrf_token);

    // The role comes from the users table as it is now.
    h.raw
        .exec(
            "UPDATE users SET role = 'member' WHERE id = $1",
            &[&principal.user_id.to_string()],
        )
        .await;
    let demoted = h.store.session(token).await.unwrap().unwrap();
    assert_eq!(demoted.principal.role, Role::Member);

    // Wrong secret, unknown id, bearer tokens and junk are not sessions (nor the reverse).
    let wrong = format!("sbs_{public_id}_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert!(h.store.session(&wrong).await.unwrap().is_none());
    let unknown = format!("sbs_{}_{secret_part}", "0".repeat(32));
    assert!(h.store.session(&unknown).await.unwrap().is_none());
    let api_token = a.admin.token.token.expose();
    for junk in ["", "sbs_", "sbs_zz_zz", api_token] {
        assert!(h.store.session(junk).await.unwrap().is_none(), "{junk}");
    }
    assert!(h.store.authenticate_token(token).await.unwrap().is_none());

    // Logging out needs the whole token; unknown or malformed ones are no error.
    h.store.delete_session(&wrong).await.unwrap();
    assert!(h.store.session(token).await.unwrap().is_some());
    h.store.delete_session(token).await.unwrap();
    assert!(h.store.session(token).await.unwrap().is_none());
    h.store.delete_session(token).await.unwrap();
    h.store.delete_session("junk").await.unwrap();
    assert!(
        h.store
            .session(second.token.expose())
            .await
            .unwrap()
            .is_some()
    );

    // Expiry.
    let instant = h.store.create_session(&principal, 0).await.unwrap();
    assert!(
        h.store
            .session(instant.token.expose())
            .await
            .unwrap()
            .is_none()
    );
    let brief = h.store.create_session(&principal, 1).await.unwrap();
    assert!(
        h.store
            .session(brief.token.expose())
            .await
            .unwrap()
            .is_some()
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(
        h.store
            .session(brief.token.expose())
            .await
            .unwrap()
            .is_none()
    );

    // A principal whose user is not in its organization gets no session.
    let forged = Principal {
        org_id: b.org.id,
        ..principal.clone()
    };
    assert!(matches!(
        h.store.create_session(&forged, 60).await,
        Err(StoreError::NotFound)
    ));
}

// AI interactions ---------------------------------------------------------------------------

const PROMPT: &str = "the-secret-plan-prompt-8c1e";

fn days_ago(days: i64) -> Timestamp {
    let at = Timestamp::now().datetime() - time::Duration::days(days);
    Timestamp::from_datetime(at)
}

fn invocation(org: &NewOrganization, id: &str, created_at: Timestamp) -> InvocationRecord {
    let mut labels = Map::new();
    labels.insert("team".into(), json!("ml"));
    InvocationRecord {
        id: id.to_owned(),
        org_id: org.org.id,
        user_id: org.admin.user.id,
        surface: "invoke".into(),
        provider: Some(ProviderType::Managed),
        model: Some("gpt-5".into()),
        status: InvocationStatus::Completed,
        error_name: None,
        request_id: Some(format!("req-{id}")),
        labels,
        tools: vec!["^list_.*".into()],
        metered: true,
        input_tokens: 7,
        output_tokens: 11,
        first_token_ms: Some(5),
        total_ms: 9,
        created_at,
        finished_at: created_at,
        content: Some(InvocationContent {
            prompt: format!("{PROMPT} {id}"),
            response: Some("an answer".into()),
        }),
    }
}

async fn count(h: &Harness, sql: &'static str, binds: &[&str]) -> i64 {
    let text = h
        .raw
        .text(
            match sql {
                "content" => {
                    "SELECT CAST(COUNT(*) AS TEXT) FROM invocations \
                    WHERE org_id = $1 AND content IS NOT NULL"
                }
                "keys" => "SELECT CAST(COUNT(*) AS TEXT) FROM content_keys WHERE org_id = $1",
                other => other,
            },
            binds,
        )
        .await;
    text.parse().unwrap()
}

async fn invocations_round_trip_page_and_stay_scoped(h: Harness) {
    let a = h.org("a").await;
    let b = h.org("b").await;
    let member = h
        .store
        .create_user(a.org.id, &admin(&a), "m@a.test", Role::Member, None)
        .await
        .unwrap();
    let mut batch = Vec::new();
    for n in 0..5 {
        let mut record = invocation(&a, &format!("a-{n}"), days_ago(5 - n));
        if n % 2 == 1 {
            record.user_id = member.user.id;
        }
        batch.push(record);
    }
    batch.push(invocation(&b, "b-0", Timestamp::now()));
    let report = h.store.insert_invocations(batch.clone()).await.unwrap();
    assert_eq!(report.inserted, 6);

    let got = h
        .store
        .get_invocation(a.org.id, "a-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got, batch[1],
        "the record reads back exactly, content decrypted"
    );
    assert!(
        h.store
            .get_invocation(b.org.id, "a-1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.store
            .get_invocation(a.org.id, "b-0")
            .await
            .unwrap()
            .is_none()
    );

    // Newest first, in pages, the cursor continuing exactly where the last page ended.
    let first = h
        .store
        .list_invocations(a.org.id, InvocationFilter::default(), 2, None)
        .await
        .unwrap();
    let ids =
        |records: &[InvocationRecord]| records.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&first), ["a-4", "a-3"]);
    let cursor = InvocationCursor::decode(&InvocationCursor::after(&first[1]).encode());
    let second = h
        .store
        .list_invocations(a.org.id, InvocationFilter::default(), 2, cursor)
        .await
        .unwrap();
    assert_eq!(ids(&second), ["a-2", "a-1"]);
    let own = h
        .store
        .list_invocations(
            a.org.id,
            InvocationFilter::user(Some(member.user.id)),
            10,
            None,
        )
        .await
        .unwrap();
    assert_eq!(ids(&own), ["a-3", "a-1"]);
    let other = h
        .store
        .list_invocations(b.org.id, InvocationFilter::default(), 10, None)
        .await
        .unwrap();
    assert_eq!(ids(&other), ["b-0"]);

    // The prompt is only ever stored encrypted.
    let found = h
        .raw
        .text(
            "SELECT CAST(COUNT(*) AS TEXT) FROM invocations WHERE labels LIKE $1 \
             OR tools LIKE $1 OR CAST(content AS TEXT) LIKE $1",
            &[&format!("%{PROMPT}%")],
        )
        .await;
    assert_eq!(found, "0");

    // A clash on an id (two replicas) keeps both records.
    let report = h
        .store
        .insert_invocations(vec![invocation(&a, "a-0", Timestamp::now())])
        .await
        .unwrap();
    assert_eq!(report.renamed.len(), 1);
    assert!(report.renamed[0].1.starts_with("a-0.dup-"));
    assert!(h.store.verify_audit(a.org.id).await.unwrap().is_none());
}

async fn invocation_content_follows_the_opt_out(h: Harness) {
    let a = h.org("a").await;
    h.store
        .insert_invocations(vec![invocation(&a, "kept", Timestamp::now())])
        .await
        .unwrap();
    let off = AiSettings {
        retention_days: 30,
        store_interaction_data: false,
    };
    h.store
        .put_ai_settings(a.org.id, &admin(&a), off.into())
        .await
        .unwrap();
    h.store
        .insert_invocations(vec![invocation(&a, "dropped", Timestamp::now())])
        .await
        .unwrap();
    let dropped = h
        .store
        .get_invocation(a.org.id, "dropped")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dropped.content, None);
    assert_eq!(dropped.model.as_deref(), Some("gpt-5"), "metadata stays");
    let kept = h
        .store
        .get_invocation(a.org.id, "kept")
        .await
        .unwrap()
        .unwrap();
    assert!(
        kept.content.is_some(),
        "content written before the opt-out stays until expiry"
    );
    let org = a.org.id.to_string();
    assert_eq!(count(&h, "content", &[&org]).await, 1);
}

async fn purge_erases_expired_content_and_its_key(h: Harness) {
    let a = h.org("a").await;
    let b = h.org("b").await;
    let short = AiSettings {
        retention_days: 3,
        store_interaction_data: true,
    };
    h.store
        .put_ai_settings(b.org.id, &admin(&b), short.into())
        .await
        .unwrap();
    h.store
        .insert_invocations(vec![
            invocation(&a, "a-old", days_ago(40)),
            invocation(&a, "a-older", days_ago(41)),
            invocation(&a, "a-new", days_ago(1)),
            invocation(&b, "b-5", days_ago(5)),
            invocation(&b, "b-0", Timestamp::now()),
        ])
        .await
        .unwrap();
    let (org_a, org_b) = (a.org.id.to_string(), b.org.id.to_string());
    assert_eq!(count(&h, "keys", &[&org_a]).await, 3);
    assert_eq!(count(&h, "keys", &[&org_b]).await, 2);

    // A copy of old ciphertext taken before the purge (a backup) ...
    let backup = h
        .raw
        .bytes(
            "SELECT content FROM invocations WHERE org_id = $1 AND id = 'a-old'",
            &[&org_a],
        )
        .await;
    assert!(!backup.is_empty());

    // One key per batch: three expired periods (two of a's, one of b's 3-day retention).
    let policy = PurgePolicy {
        now: Timestamp::now(),
        max_retention_days: 30,
        batch: 1,
    };
    let mut rounds = 0;
    let mut deleted = 0;
    loop {
        let report = h.store.purge_interactions(policy).await.unwrap();
        assert!(!report.locked_elsewhere);
        deleted += report.keys_deleted;
        rounds += 1;
        if !report.more {
            break;
        }
    }
    assert_eq!(deleted, 3);
    assert!(rounds >= 3);
    assert_eq!(count(&h, "keys", &[&org_a]).await, 1);
    assert_eq!(count(&h, "keys", &[&org_b]).await, 1);
    assert_eq!(count(&h, "content", &[&org_a]).await, 1);
    assert_eq!(count(&h, "content", &[&org_b]).await, 1);
    for (org, id, kept) in [
        (a.org.id, "a-old", false),
        (a.org.id, "a-older", false),
        (a.org.id, "a-new", true),
        (b.org.id, "b-5", false),
        (b.org.id, "b-0", true),
    ] {
        let record = h.store.get_invocation(org, id).await.unwrap().unwrap();
        assert_eq!(record.content.is_some(), kept, "{id}");
        assert_eq!(record.input_tokens, 7, "metadata stays: {id}");
    }
    // ... cannot be read back: its period key is gone.
    let period = (Timestamp::now().datetime() - time::Duration::days(40)).date();
    let period = format!(
        "{:04}-{:02}-{:02}",
        period.year(),
        u8::from(period.month()),
        period.day()
    );
    h.raw
        .restore_content(&org_a, "a-old", &period, backup)
        .await;
    let restored = h
        .store
        .get_invocation(a.org.id, "a-old")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(restored.content, None, "erased by deleting the key");
    h.store.purge_interactions(policy).await.unwrap();
    assert!(h.store.verify_audit(a.org.id).await.unwrap().is_none());
    let again = h.store.purge_interactions(policy).await.unwrap();
    assert_eq!((again.keys_deleted, again.contents_erased), (0, 0));

    // The operator's ceiling applies even when an organization asked for longer.
    let ceiling = PurgePolicy {
        max_retention_days: 1,
        batch: 100,
        ..policy
    };
    let report = h.store.purge_interactions(ceiling).await.unwrap();
    assert_eq!(report.keys_deleted, 1, "a's day-old period");
}

async fn invocation_ledger_detects_tampering(h: Harness) {
    let a = h.org("a").await;
    let batch = (0..4)
        .map(|n| invocation(&a, &format!("i-{n}"), Timestamp::now()))
        .collect::<Vec<_>>();
    h.store
        .insert_invocations(batch[..2].to_vec())
        .await
        .unwrap();
    h.store
        .insert_invocations(batch[2..].to_vec())
        .await
        .unwrap();
    assert!(h.store.verify_audit(a.org.id).await.unwrap().is_none());
    let org = a.org.id.to_string();
    h.raw
        .exec(
            "UPDATE invocations SET model = 'forged' WHERE org_id = $1 AND id = 'i-2'",
            &[&org],
        )
        .await;
    let broken = h.store.verify_audit(a.org.id).await.unwrap().unwrap();
    assert_eq!((broken.entry_id.as_str(), broken.seq), ("i-2", 3));
    h.raw
        .exec(
            "UPDATE invocations SET model = 'gpt-5' WHERE org_id = $1 AND id = 'i-2'",
            &[&org],
        )
        .await;
    assert!(h.store.verify_audit(a.org.id).await.unwrap().is_none());
    // Dropping the newest record is caught by the ledger head.
    h.raw
        .exec(
            "DELETE FROM invocations WHERE org_id = $1 AND id = 'i-3'",
            &[&org],
        )
        .await;
    assert!(h.store.verify_audit(a.org.id).await.unwrap().is_some());
}

/// Deleting the newest records and rewinding the head to match them is caught by the
/// head's seal (the attacker has the database, not the master key).
async fn a_rewound_ledger_head_is_detected(h: Harness) {
    let a = h.org("a").await;
    let batch = (0..3)
        .map(|n| invocation(&a, &format!("i-{n}"), Timestamp::now()))
        .collect::<Vec<_>>();
    h.store.insert_invocations(batch).await.unwrap();
    assert!(h.store.verify_audit(a.org.id).await.unwrap().is_none());
    let org = a.org.id.to_string();
    // A middle row: a seq gap named at the row after it.
    h.raw
        .exec(
            "DELETE FROM invocations WHERE org_id = $1 AND id = 'i-1'",
            &[&org],
        )
        .await;
    let broken = h.store.verify_audit(a.org.id).await.unwrap().unwrap();
    assert_eq!((broken.entry_id.as_str(), broken.seq), ("i-2", 3));
    assert!(broken.reason.contains("gap"), "{}", broken.reason);
    // The newest row too, with the head rewound to the first row's seq and hash.
    h.raw
        .exec(
            "DELETE FROM invocations WHERE org_id = $1 AND id = 'i-2'",
            &[&org],
        )
        .await;
    h.raw
        .exec(
            "UPDATE invocation_chain SET seq = 1, hash = (SELECT hash FROM invocations \
             WHERE org_id = $1 AND id = 'i-0') WHERE org_id = $1",
            &[&org],
        )
        .await;
    let broken = h.store.verify_audit(a.org.id).await.unwrap().unwrap();
    assert!(broken.reason.contains("not sealed"), "{}", broken.reason);
    assert_eq!(broken.seq, 1);
}

fn running(org: &NewOrganization, id: &str, instance: &str) -> RunningInvocation {
    RunningInvocation {
        id: id.to_owned(),
        org_id: org.org.id,
        user_id: org.admin.user.id,
        surface: "openai".into(),
        request_id: None,
        labels: Map::new(),
        created_at: Timestamp::now(),
        instance_id: instance.to_owned(),
    }
}

async fn running_invocations_end_in_their_final_record(h: Harness) {
    let a = h.org("a").await;
    let b = h.org("b").await;
    let begun = InvocationBatch {
        begun: vec![running(&a, "r-1", "me"), running(&b, "r-2", "me")],
        ended: Vec::new(),
    };
    h.store.write_invocations(&begun).await.unwrap();
    let found = h.store.running_invocation(a.org.id, "r-1").await.unwrap();
    assert_eq!(found.unwrap().user_id, a.admin.user.id);
    // Scoped to its organization.
    assert!(
        h.store
            .running_invocation(b.org.id, "r-1")
            .await
            .unwrap()
            .is_none()
    );
    let ended = InvocationBatch {
        begun: Vec::new(),
        ended: vec![invocation(&a, "r-1", Timestamp::now())],
    };
    h.store.write_invocations(&ended).await.unwrap();
    assert!(
        h.store
            .running_invocation(a.org.id, "r-1")
            .await
            .unwrap()
            .is_none()
    );
    let record = h
        .store
        .get_invocation(a.org.id, "r-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, InvocationStatus::Completed);
    assert!(
        h.store
            .running_invocation(b.org.id, "r-2")
            .await
            .unwrap()
            .is_some()
    );
}

async fn interrupted_invocations_are_recovered_once(h: Harness) {
    let a = h.org("a").await;
    h.store.heartbeat("alive", Timestamp::now()).await.unwrap();
    let begun = InvocationBatch {
        begun: vec![
            running(&a, "dead-1", "dead"),
            running(&a, "dead-2", "dead"),
            running(&a, "alive-1", "alive"),
            running(&a, "mine-1", "me"),
        ],
        ended: Vec::new(),
    };
    h.store.write_invocations(&begun).await.unwrap();
    let stale_before =
        Timestamp::from_datetime(time::OffsetDateTime::now_utc() - time::Duration::seconds(60));
    // Two replicas recovering at once record each invocation once.
    let (one, two) = tokio::join!(
        h.store.recover_interrupted("me", stale_before, 100),
        h.store.recover_interrupted("other", stale_before, 100),
    );
    let recovered = one.unwrap() + two.unwrap();
    // "dead" never wrote a heartbeat; "mine-1" is the caller's own (wherever it runs,
    // "other" recovers it: its instance "me" has no heartbeat either).
    assert_eq!(recovered, 3);
    for id in ["dead-1", "dead-2"] {
        let record = h.store.get_invocation(a.org.id, id).await.unwrap().unwrap();
        assert_eq!(record.status, InvocationStatus::Failed);
        assert_eq!(
            record.error_name.as_deref(),
            Some(switchboard_store::INTERRUPTED)
        );
        assert!(
            h.store
                .running_invocation(a.org.id, id)
                .await
                .unwrap()
                .is_none()
        );
    }
    // A live process's invocation is left alone.
    assert!(
        h.store
            .running_invocation(a.org.id, "alive-1")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        h.store
            .recover_interrupted("me", stale_before, 100)
            .await
            .unwrap(),
        0
    );
    let all = h
        .store
        .list_invocations(a.org.id, InvocationFilter::default(), 100, None)
        .await
        .unwrap();
    let mut ids: Vec<_> = all.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "no invocation recorded twice");
    assert!(h.store.verify_audit(a.org.id).await.unwrap().is_none());
}

async fn content_keys_survive_key_rotation(h: Harness) {
    let a = h.org("a").await;
    h.store
        .insert_invocations(vec![
            invocation(&a, "x", days_ago(2)),
            invocation(&a, "y", Timestamp::now()),
        ])
        .await
        .unwrap();
    let v2 = MasterKeyRing::add_generated_version(&h.key_file).unwrap();
    let store = h.reopen(v2).await.unwrap();
    loop {
        if store.rotate_keys(10).await.unwrap().remaining == 0 {
            break;
        }
    }
    drop(store);
    let text = std::fs::read_to_string(&h.key_file).unwrap();
    let only_v2: String = text.lines().filter(|l| l.starts_with("2:")).collect();
    let store = h
        .reopen(MasterKeyRing::from_file_text(&only_v2).unwrap())
        .await
        .unwrap();
    for id in ["x", "y"] {
        let record = store.get_invocation(a.org.id, id).await.unwrap().unwrap();
        assert!(record.content.unwrap().prompt.contains(PROMPT));
    }
}

async fn managed_usage_counts_metered_records(h: Harness) {
    let a = h.org("a").await;
    let mut unmetered = invocation(&a, "byo", Timestamp::now());
    unmetered.metered = false;
    h.store
        .insert_invocations(vec![
            invocation(&a, "old", days_ago(40)),
            invocation(&a, "m1", Timestamp::now()),
            invocation(&a, "m2", Timestamp::now()),
            unmetered,
        ])
        .await
        .unwrap();
    let usage = h.store.managed_usage(days_ago(1)).await.unwrap();
    assert_eq!(usage.len(), 1);
    assert_eq!(
        (usage[0].org_id, usage[0].invocations, usage[0].tokens),
        (a.org.id, 2, 36)
    );
}

async fn purge_runs_on_one_replica_at_a_time(h: Harness) {
    let a = h.org("a").await;
    h.store
        .insert_invocations(vec![invocation(&a, "old", days_ago(40))])
        .await
        .unwrap();
    let policy = PurgePolicy {
        now: Timestamp::now(),
        max_retention_days: 30,
        batch: 10,
    };
    if let Raw::Pg(pool) = &h.raw {
        // Another replica's purge holds the lock: this one skips the round, touching nothing.
        let mut other = pool.begin().await.unwrap();
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(0x7362_2d70_7572_6765_i64)
            .execute(&mut *other)
            .await
            .unwrap();
        let skipped = h.store.purge_interactions(policy).await.unwrap();
        assert!(skipped.locked_elsewhere);
        assert_eq!(skipped.keys_deleted, 0);
        other.commit().await.unwrap();
    }
    let report = h.store.purge_interactions(policy).await.unwrap();
    assert!(!report.locked_elsewhere);
    assert_eq!((report.keys_deleted, report.contents_erased), (1, 1));
}

async fn invocations_filter_by_provider_model_and_status(h: Harness) {
    let a = h.org("a").await;
    let mut failed = invocation(&a, "failed", days_ago(1));
    failed.status = InvocationStatus::Failed;
    failed.error_name = Some("UpstreamError".into());
    let mut other_model = invocation(&a, "mini", days_ago(2));
    other_model.model = Some("gpt-5-mini".into());
    let mut other_provider = invocation(&a, "claude", days_ago(3));
    other_provider.provider = Some(ProviderType::Anthropic);
    other_provider.model = Some("claude-opus-4-6".into());
    h.store
        .insert_invocations(vec![
            failed,
            other_model,
            other_provider,
            invocation(&a, "ok", days_ago(4)),
        ])
        .await
        .unwrap();
    let ids = |filter: InvocationFilter| {
        let store = h.store.clone();
        async move {
            let found = store.list_invocations(a.org.id, filter, 10, None).await;
            found.unwrap().into_iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };
    let by_provider = InvocationFilter {
        provider: Some(ProviderType::Anthropic),
        ..InvocationFilter::default()
    };
    assert_eq!(ids(by_provider).await, ["claude"]);
    let by_model = InvocationFilter {
        model: Some("gpt-5".into()),
        ..InvocationFilter::default()
    };
    assert_eq!(ids(by_model).await, ["failed", "ok"]);
    let by_status = InvocationFilter {
        status: Some(InvocationStatus::Failed),
        ..InvocationFilter::default()
    };
    assert_eq!(ids(by_status).await, ["failed"]);
    let nobody = InvocationFilter {
        user: Some(UserId::new()),
        status: Some(InvocationStatus::Completed),
        ..InvocationFilter::default()
    };
    assert!(ids(nobody).await.is_empty());
    // Filtered listings page like plain ones.
    let completed = InvocationFilter {
        status: Some(InvocationStatus::Completed),
        ..InvocationFilter::default()
    };
    let first = h
        .store
        .list_invocations(a.org.id, completed.clone(), 2, None)
        .await
        .unwrap();
    let cursor = Some(InvocationCursor::after(&first[1]));
    let rest = h
        .store
        .list_invocations(a.org.id, completed, 2, cursor)
        .await
        .unwrap();
    assert_eq!(
        (
            first[0].id.as_str(),
            first[1].id.as_str(),
            rest[0].id.as_str()
        ),
        ("mini", "claude", "ok")
    );
}

async fn usage_sums_and_percentiles_per_model(h: Harness) {
    let a = h.org("a").await;
    let b = h.org("b").await;
    let member = h
        .store
        .create_user(a.org.id, &admin(&a), "m@a.test", Role::Member, None)
        .await
        .unwrap();
    let mut batch = Vec::new();
    for n in 0..4u64 {
        let mut record = invocation(&a, &format!("r{n}"), Timestamp::now());
        record.total_ms = 100 * (n + 1);
        if n == 3 {
            record.status = InvocationStatus::Failed;
            record.user_id = member.user.id;
        }
        batch.push(record);
    }
    let mut other = invocation(&a, "other", Timestamp::now());
    other.model = Some("gpt-5-mini".into());
    batch.push(other);
    batch.push(invocation(&a, "old", days_ago(10)));
    batch.push(invocation(&b, "b", Timestamp::now()));
    h.store.insert_invocations(batch).await.unwrap();

    let rows = h.store.usage(a.org.id, days_ago(7), None).await.unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let top = &rows[0];
    assert_eq!(top.provider.as_deref(), Some("managed"));
    assert_eq!(top.model.as_deref(), Some("gpt-5"));
    assert_eq!((top.requests, top.errors), (4, 1));
    assert_eq!((top.input_tokens, top.output_tokens), (28, 44));
    assert_eq!((top.p50_ms, top.p95_ms), (200, 400));
    assert_eq!(rows[1].model.as_deref(), Some("gpt-5-mini"));

    let own = h
        .store
        .usage(a.org.id, days_ago(7), Some(member.user.id))
        .await
        .unwrap();
    assert_eq!(own.len(), 1);
    assert_eq!((own[0].requests, own[0].errors), (1, 1));
    let wider = h.store.usage(a.org.id, days_ago(30), None).await.unwrap();
    assert_eq!(wider[0].requests, 5);
    let b_rows = h.store.usage(b.org.id, days_ago(7), None).await.unwrap();
    assert_eq!(b_rows.len(), 1);
    assert_eq!(b_rows[0].requests, 1);
}

async fn validations_replace_stay_scoped_and_go_with_the_provider(h: Harness) {
    let a = h.org("a").await;
    let b = h.org("b").await;
    let failed = ValidationRecord {
        provider: ProviderType::OpenAi,
        valid: false,
        result: json!({ "models": { "gpt-5": { "isValid": false, "message": "Invalid API key" } } }),
        at: days_ago(1),
    };
    // Recorded although no provider was saved (a refused first connection).
    h.store.record_validation(a.org.id, &failed).await.unwrap();
    assert_eq!(h.store.list_validations(a.org.id).await.unwrap(), [failed]);
    assert!(h.store.list_validations(b.org.id).await.unwrap().is_empty());

    let version = h.store.config_version().await.unwrap();
    let audit = h.store.list_audit(a.org.id, 100, None).await.unwrap().len();
    h.store
        .put_provider(
            a.org.id,
            &admin(&a),
            provider_write(ProviderType::OpenAi, json!({ "apiKeySecretName": "k" })),
        )
        .await
        .unwrap();
    let passed = ValidationRecord {
        provider: ProviderType::OpenAi,
        valid: true,
        result: json!({ "models": { "gpt-5": { "isValid": true, "message": "OK" } } }),
        at: Timestamp::now(),
    };
    h.store.record_validation(a.org.id, &passed).await.unwrap();
    assert_eq!(
        h.store.list_validations(a.org.id).await.unwrap(),
        std::slice::from_ref(&passed),
        "the newest result replaces the previous one"
    );
    assert_eq!(
        h.store.config_version().await.unwrap(),
        version + 1,
        "only the provider write counts as config"
    );
    assert_eq!(
        h.store.list_audit(a.org.id, 100, None).await.unwrap().len(),
        audit + 1,
        "validations are not audited"
    );

    h.store
        .delete_provider(a.org.id, &admin(&a), ProviderType::OpenAi)
        .await
        .unwrap();
    assert!(h.store.list_validations(a.org.id).await.unwrap().is_empty());
    let unknown = h.store.record_validation(OrgId::new(), &passed).await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
}

async fn users_list_per_organization(h: Harness) {
    let a = h.org("a").await;
    let b = h.org("b").await;
    h.store
        .create_user(a.org.id, &admin(&a), "zed@a.test", Role::Member, None)
        .await
        .unwrap();
    let emails = |users: Vec<switchboard_core::records::User>| {
        users.into_iter().map(|u| u.email).collect::<Vec<_>>()
    };
    assert_eq!(
        emails(h.store.list_users(a.org.id).await.unwrap()),
        ["admin@a.test", "zed@a.test"]
    );
    assert_eq!(
        emails(h.store.list_users(b.org.id).await.unwrap()),
        ["admin@b.test"]
    );
}

// The identity lifecycle --------------------------------------------------------------------

fn role(role: Role) -> UserChange {
    UserChange {
        role: Some(role),
        disabled: None,
    }
}

fn disabled(disabled: bool) -> UserChange {
    UserChange {
        role: None,
        disabled: Some(disabled),
    }
}

async fn actions(h: &Harness, org: OrgId) -> Vec<switchboard_core::records::AuditEntry> {
    h.store.list_audit(org, 200, None).await.unwrap()
}

async fn users_change_and_an_active_admin_always_remains(h: Harness) {
    let a = h.org("a").await;
    let b = h.org("b").await;
    let actor = admin(&a);
    let second = h
        .store
        .create_user(a.org.id, &actor, "second@a.test", Role::Member, None)
        .await
        .unwrap()
        .user;
    let version = h.store.config_version().await.unwrap();

    let promoted = h
        .store
        .update_user(a.org.id, &actor, second.id, role(Role::Admin))
        .await
        .unwrap();
    assert_eq!((promoted.role, promoted.disabled), (Role::Admin, false));
    let read = h
        .store
        .get_user(a.org.id, second.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, promoted);
    assert!(h.store.config_version().await.unwrap() > version);
    let changes = h.store.changes_since(version).await.unwrap();
    assert_eq!(
        changes.orgs,
        vec![a.org.id],
        "replicas learn which organization changed"
    );

    // The first admin may step down while the second is active...
    h.store
        .update_user(a.org.id, &actor, a.admin.user.id, role(Role::Member))
        .await
        .unwrap();
    // ...and then the second is the last one: not demoted, disabled or deleted.
    for attempt in [role(Role::Member), disabled(true)] {
        let refused = h
            .store
            .update_user(a.org.id, &actor, second.id, attempt)
            .await;
        assert!(matches!(refused, Err(StoreError::LastAdmin)), "{refused:?}");
    }
    let refused = h.store.delete_user(a.org.id, &actor, second.id).await;
    assert!(matches!(refused, Err(StoreError::LastAdmin)), "{refused:?}");
    assert!(
        h.store
            .get_user(a.org.id, second.id)
            .await
            .unwrap()
            .unwrap()
            .is_active_admin()
    );
    // A disabled admin does not count as one that remains.
    h.store
        .update_user(a.org.id, &actor, a.admin.user.id, role(Role::Admin))
        .await
        .unwrap();
    h.store
        .update_user(a.org.id, &actor, a.admin.user.id, disabled(true))
        .await
        .unwrap();
    let refused = h
        .store
        .update_user(a.org.id, &actor, second.id, disabled(true))
        .await;
    assert!(matches!(refused, Err(StoreError::LastAdmin)), "{refused:?}");
    // Changing a user who is no active admin never needs another admin.
    h.store
        .update_user(a.org.id, &actor, a.admin.user.id, role(Role::Member))
        .await
        .unwrap();

    // Another organization's user is not found, and nothing there changes.
    let foreign = h
        .store
        .update_user(b.org.id, &admin(&b), second.id, role(Role::Member))
        .await;
    assert!(matches!(foreign, Err(StoreError::NotFound)), "{foreign:?}");
    assert!(
        h.store
            .get_user(b.org.id, second.id)
            .await
            .unwrap()
            .is_none()
    );
    let foreign = h.store.delete_user(b.org.id, &admin(&b), second.id).await;
    assert!(matches!(foreign, Err(StoreError::NotFound)), "{foreign:?}");

    // Who changed whom and how is audited; refused changes wrote nothing.
    let entries = actions(&h, a.org.id).await;
    let updates: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "user.update")
        .collect();
    assert_eq!(updates.len(), 5);
    let first = updates.last().unwrap();
    assert_eq!(first.actor, "admin@a.test");
    assert_eq!(first.resource, "user:second@a.test");
    assert_eq!(first.details["before"]["role"], "member");
    assert_eq!(first.details["after"]["role"], "admin");
    assert_eq!(first.details["after"]["disabled"], false);
    assert!(h.store.verify_audit(a.org.id).await.unwrap().is_none());
}

async fn disabled_users_are_refused_everywhere(h: Harness) {
    let a = h.org("a").await;
    let actor = admin(&a);
    let pw = secret("member-password-1");
    let member = h
        .store
        .create_user(a.org.id, &actor, "m@a.test", Role::Member, Some(&pw))
        .await
        .unwrap();
    let token = member.token.token.expose();
    let principal = h
        .store
        .verify_password("m@a.test", pw.expose())
        .await
        .unwrap()
        .unwrap();
    let session = h.store.create_session(&principal, 3600).await.unwrap();
    let creds = &member.credentials;
    let access = h
        .store
        .exchange_client_credentials(&creds.client_id, creds.client_secret.expose(), 3600)
        .await
        .unwrap()
        .unwrap();

    h.store
        .update_user(a.org.id, &actor, member.user.id, disabled(true))
        .await
        .unwrap();
    assert!(h.store.authenticate_token(token).await.unwrap().is_none());
    assert!(
        h.store
            .verify_token(access.token.expose())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.store
            .session(session.token.expose())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.store
            .verify_password("m@a.test", pw.expose())
            .await
            .unwrap()
            .is_none()
    );
    let exchanged = h
        .store
        .exchange_client_credentials(&creds.client_id, creds.client_secret.expose(), 3600)
        .await
        .unwrap();
    assert!(exchanged.is_none());

    // Enabled again: tokens work again, but the ended session stays ended.
    h.store
        .update_user(a.org.id, &actor, member.user.id, disabled(false))
        .await
        .unwrap();
    assert!(h.store.authenticate_token(token).await.unwrap().is_some());
    assert!(
        h.store
            .session(session.token.expose())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.store
            .verify_password("m@a.test", pw.expose())
            .await
            .unwrap()
            .is_some()
    );
}

async fn deleted_users_take_their_credentials_but_not_their_records(h: Harness) {
    let a = h.org("a").await;
    let actor = admin(&a);
    let pw = secret("member-password-1");
    let member = h
        .store
        .create_user(a.org.id, &actor, "m@a.test", Role::Member, Some(&pw))
        .await
        .unwrap();
    let principal = h
        .store
        .verify_password("m@a.test", pw.expose())
        .await
        .unwrap()
        .unwrap();
    let session = h.store.create_session(&principal, 3600).await.unwrap();
    let mut record = invocation(&a, "by-member", Timestamp::now());
    record.user_id = member.user.id;
    h.store.insert_invocations(vec![record]).await.unwrap();

    let gone = h
        .store
        .delete_user(a.org.id, &actor, member.user.id)
        .await
        .unwrap();
    assert_eq!(gone.email, "m@a.test");
    assert!(
        h.store
            .get_user(a.org.id, member.user.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.store
            .authenticate_token(member.token.token.expose())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.store
            .session(session.token.expose())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.store
            .list_tokens(a.org.id, member.user.id)
            .await
            .unwrap()
            .is_empty()
    );
    let kept = h
        .store
        .get_invocation(a.org.id, "by-member")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.user_id, member.user.id, "records keep the user id");
    assert!(h.store.verify_audit(a.org.id).await.unwrap().is_none());
    let entry = actions(&h, a.org.id).await.into_iter().next().unwrap();
    assert_eq!(
        (entry.action.as_str(), entry.resource.as_str()),
        ("user.delete", "user:m@a.test")
    );
    assert_eq!(entry.details["before"]["role"], "member");
    let again = h.store.delete_user(a.org.id, &actor, member.user.id).await;
    assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");
    // The email is free again.
    h.store
        .create_user(a.org.id, &actor, "m@a.test", Role::Member, None)
        .await
        .unwrap();
}

async fn tokens_are_named_listed_expired_and_revoked(h: Harness) {
    let a = h.org("a").await;
    let b = h.org("b").await;
    let actor = admin(&a);
    let owner = a.admin.user.id;
    let spec = TokenSpec {
        name: Some(" ci deploy ".into()),
        expires_in_days: Some(30),
    };
    let (meta, issued) = h
        .store
        .create_token(a.org.id, &actor, owner, &spec)
        .await
        .unwrap();
    let value = issued.token.expose().to_owned();
    assert_eq!(meta.id, issued.id);
    assert_eq!(meta.name.as_deref(), Some("ci deploy"));
    assert_eq!(meta.kind, "api");
    assert!(
        value.starts_with(&meta.prefix) && meta.prefix.len() < 20,
        "{}",
        meta.prefix
    );
    let lifetime = meta.expires_at.unwrap().unix_seconds() - meta.created_at.unix_seconds();
    assert_eq!(lifetime, 30 * 86_400);
    let grant = h.store.verify_token(&value).await.unwrap().unwrap();
    assert_eq!(
        (grant.token_id.as_str(), grant.expires_at),
        (meta.id.as_str(), meta.expires_at)
    );
    assert_eq!(grant.principal.user_id, owner);

    // Listed (newest first, with the first-start token), never with the value.
    let listed = h.store.list_tokens(a.org.id, owner).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0], meta);
    assert_eq!(listed[1].id, a.admin.token.id);
    assert_eq!((listed[1].name.clone(), listed[1].expires_at), (None, None));
    assert!(
        h.store
            .list_tokens(b.org.id, owner)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        h.store
            .get_token(b.org.id, &meta.id)
            .await
            .unwrap()
            .is_none()
    );

    // Last use is recorded without a config change.
    let version = h.store.config_version().await.unwrap();
    let used = Timestamp::now();
    h.store.touch_token(&meta.id, used).await.unwrap();
    let touched = h
        .store
        .get_token(a.org.id, &meta.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(touched.last_used_at, Some(used));
    assert_eq!(h.store.config_version().await.unwrap(), version);

    // Bad names and lifetimes are refused before anything is written.
    for bad in [
        TokenSpec {
            name: Some("x".repeat(101)),
            expires_in_days: None,
        },
        TokenSpec {
            name: None,
            expires_in_days: Some(0),
        },
        TokenSpec {
            name: None,
            expires_in_days: Some(366),
        },
    ] {
        let refused = h.store.create_token(a.org.id, &actor, owner, &bad).await;
        assert!(
            matches!(refused, Err(StoreError::Invalid(_))),
            "{refused:?}"
        );
    }
    let foreign = h
        .store
        .create_token(b.org.id, &admin(&b), owner, &TokenSpec::default())
        .await;
    assert!(matches!(foreign, Err(StoreError::NotFound)), "{foreign:?}");

    // An expired token is refused and still listed, so its owner sees it ended.
    let (short, short_issued) = h
        .store
        .create_token(a.org.id, &actor, owner, &TokenSpec::default())
        .await
        .unwrap();
    h.raw
        .exec(
            "UPDATE api_tokens SET expires_at = '2020-01-01T00:00:00.000Z' WHERE id = $1",
            &[&short.id],
        )
        .await;
    assert!(
        h.store
            .verify_token(short_issued.token.expose())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.store
            .list_tokens(a.org.id, owner)
            .await
            .unwrap()
            .iter()
            .any(|t| t.id == short.id)
    );

    // Revoked: refused at once, gone from the list, announced in the change log.
    let foreign = h.store.revoke_token(b.org.id, &admin(&b), &meta.id).await;
    assert!(matches!(foreign, Err(StoreError::NotFound)), "{foreign:?}");
    let version = h.store.config_version().await.unwrap();
    let revoked = h
        .store
        .revoke_token(a.org.id, &actor, &meta.id)
        .await
        .unwrap();
    assert_eq!(revoked.id, meta.id);
    assert!(h.store.verify_token(&value).await.unwrap().is_none());
    assert!(
        h.store
            .get_token(a.org.id, &meta.id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        h.store.changes_since(version).await.unwrap().orgs,
        vec![a.org.id]
    );
    let again = h.store.revoke_token(a.org.id, &actor, &meta.id).await;
    assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");

    // Audited with ids and names, never the value.
    let entries = actions(&h, a.org.id).await;
    let revoke = entries.iter().find(|e| e.action == "token.revoke").unwrap();
    assert_eq!(revoke.details["before"]["tokenId"], meta.id.as_str());
    assert_eq!(revoke.details["before"]["name"], "ci deploy");
    let create = entries
        .iter()
        .find(|e| e.action == "token.create" && e.details["after"]["tokenId"] == meta.id.as_str())
        .unwrap();
    assert_eq!(create.details["after"]["name"], "ci deploy");
    assert!(create.details["after"]["expiresAt"].is_string());
    let text = serde_json::to_string(&entries).unwrap();
    assert!(!text.contains(&value) && !text.contains(short_issued.token.expose()));
    assert!(h.store.verify_audit(a.org.id).await.unwrap().is_none());
}

fn limit_ask(org: OrgId, at_ms: i64, tokens: u64) -> switchboard_store::LimitAsk {
    switchboard_store::LimitAsk {
        held: switchboard_store::LimitHeld {
            org,
            id: uuid::Uuid::now_v7().to_string(),
            at_ms,
            month: "2026-03".into(),
        },
        tokens,
        lease_ms: 60_000,
        max: switchboard_store::LimitMax {
            requests_per_hour: 20,
            tokens_per_hour: 10_000,
            monthly_invocations: 30,
        },
    }
}

fn granted(decision: switchboard_store::LimitDecision) -> bool {
    matches!(decision, switchboard_store::LimitDecision::Granted(_))
}

/// PostgreSQL's counters: concurrent admissions never pass a limit together, a settle
/// replaces the estimate, a refund and an expired lease release everything, the hour rolls
/// and the month is seeded without ever being lowered. SQLite has none (in-process).
async fn shared_limit_counters(h: Harness) {
    use switchboard_store::{LimitDecision, LimitKind};
    if matches!(h.backend, Backend::Sqlite) {
        assert!(!h.store.shares_limits());
        let ask = limit_ask(OrgId::new(), 0, 1);
        assert!(matches!(
            h.store.limit_reserve(&ask).await,
            Err(StoreError::Invalid(_))
        ));
        return;
    }
    assert!(h.store.shares_limits());
    let org = h.org("limits").await.org.id;
    let t0: i64 = 1_773_000_000_000;
    let asks: Vec<_> = (0..64).map(|_| limit_ask(org, t0, 100)).collect();
    let mut racing = tokio::task::JoinSet::new();
    for ask in asks {
        let store = h.store.clone();
        racing.spawn(async move { (store.limit_reserve(&ask).await.unwrap(), ask.held) });
    }
    let mut admitted = Vec::new();
    while let Some(joined) = racing.join_next().await {
        let (decision, held) = joined.unwrap();
        if granted(decision) {
            admitted.push(held);
        }
    }
    assert_eq!(
        admitted.len(),
        20,
        "exactly the hourly request limit is admitted"
    );
    let counts = h.store.limit_counts(org, t0, "2026-03").await.unwrap();
    assert_eq!(
        (counts.requests, counts.tokens, counts.monthly),
        (20, 2_000, 20)
    );

    // Settle replaces the estimate; a refund takes a running reservation back entirely.
    h.store.limit_settle(&admitted[0], 7, t0).await.unwrap();
    h.store.limit_refund(&admitted[1]).await.unwrap();
    h.store.limit_refund(&admitted[0]).await.unwrap(); // settled: no longer refundable
    let counts = h.store.limit_counts(org, t0, "2026-03").await.unwrap();
    assert_eq!(
        (counts.requests, counts.tokens, counts.monthly),
        (19, 1_807, 19)
    );

    // Leases pass: the 18 still unsettled are released at the next admission.
    let later = t0 + 61_000;
    let next = h
        .store
        .limit_reserve(&limit_ask(org, later, 5))
        .await
        .unwrap();
    let LimitDecision::Granted(counts) = next else {
        panic!("{next:?}")
    };
    assert_eq!((counts.requests, counts.tokens, counts.monthly), (2, 12, 2));
    // One released while its request still ran is charged again when it settles.
    h.store.limit_settle(&admitted[2], 50, later).await.unwrap();
    let counts = h.store.limit_counts(org, later, "2026-03").await.unwrap();
    assert_eq!((counts.requests, counts.tokens, counts.monthly), (3, 62, 3));
    assert_eq!(counts.oldest_ms, Some(t0));

    // The hour rolls; the month does not.
    let next_hour = t0 + 3_600_001;
    let counts = h
        .store
        .limit_counts(org, next_hour, "2026-03")
        .await
        .unwrap();
    assert_eq!((counts.requests, counts.monthly), (1, 3));

    // Seeding raises a month to the records' count, never lowers it; the monthly limit holds.
    let seed = |n| switchboard_store::ManagedUsage {
        org_id: org,
        invocations: n,
        tokens: 0,
    };
    h.store
        .limit_seed_monthly(&[seed(29)], "2026-03")
        .await
        .unwrap();
    h.store
        .limit_seed_monthly(&[seed(2)], "2026-03")
        .await
        .unwrap();
    // (The reservation admitted at `later` never settled: its lease has passed, so it is
    // released first, and two more fit.)
    for _ in 0..2 {
        let decision = h.store.limit_reserve(&limit_ask(org, next_hour, 1)).await;
        assert!(granted(decision.unwrap()));
    }
    let refused = h
        .store
        .limit_reserve(&limit_ask(org, next_hour, 1))
        .await
        .unwrap();
    assert!(
        matches!(refused, LimitDecision::Refused(LimitKind::Monthly, c) if c.monthly == 30),
        "{refused:?}"
    );
    // Tokens: an estimate that would pass the hourly tokens is refused as hourly.
    let other = h.org("tokens").await.org.id;
    let big = h
        .store
        .limit_reserve(&limit_ask(other, t0, 10_001))
        .await
        .unwrap();
    assert!(matches!(big, LimitDecision::Refused(LimitKind::Hourly, _)));
}
