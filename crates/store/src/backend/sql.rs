//! Every statement, shared by both back ends: `$n` placeholders (sqlx-sqlite maps `$n` to
//! the n-th argument), text ids and timestamps, JSON as text, booleans as 0/1 integers.
//! Keeping them in one place makes the dialect subset easy to review.

// Organizations ---------------------------------------------------------------------------
pub const INSERT_ORG: &str = "INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)";
pub const ORG_BY_NAME: &str = "SELECT id, name, created_at FROM organizations WHERE name = $1";
pub const LIST_ORGS: &str = "SELECT id, name, created_at FROM organizations ORDER BY name";
pub const ANY_ORG: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM organizations LIMIT 1) AS one";
pub const ORG_EXISTS: &str = "SELECT id FROM organizations WHERE id = $1";
pub const ORG_BY_ID: &str = "SELECT id, name, created_at FROM organizations WHERE id = $1";
pub const ALL_ORG_IDS: &str = "SELECT id FROM organizations ORDER BY id";

// Users and tokens --------------------------------------------------------------------------
pub const INSERT_USER: &str = "INSERT INTO users \
    (id, org_id, email, role, password_hash, client_id, client_secret_hash, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub const USER_BY_EMAIL: &str = "SELECT id, org_id, email, role, client_id, created_at, \
    disabled, password_hash FROM users WHERE email = $1";
pub const USER_IN_ORG: &str = "SELECT id, org_id, email, role, client_id, created_at, \
    disabled, password_hash FROM users WHERE id = $1 AND org_id = $2";
pub const USER_BY_CLIENT_ID: &str = "SELECT id, org_id, email, role, client_id, created_at, \
    disabled, client_secret_hash FROM users WHERE client_id = $1";
pub const UPDATE_USER: &str =
    "UPDATE users SET role = $3, disabled = $4 WHERE id = $1 AND org_id = $2";
pub const DELETE_USER: &str = "DELETE FROM users WHERE id = $1 AND org_id = $2";
/// The organization's active admins other than user `$2` (the last-admin rule).
pub const OTHER_ACTIVE_ADMINS: &str = "SELECT COUNT(*) AS n FROM users \
    WHERE org_id = $1 AND id <> $2 AND role = 'admin' AND disabled = 0";
pub const INSERT_TOKEN: &str = "INSERT INTO api_tokens \
    (id, org_id, user_id, token_hash, kind, expires_at, created_at, name) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
/// A disabled user's tokens match no row, exactly like unknown ones.
pub const TOKEN_PRINCIPAL: &str = "SELECT t.token_hash, t.expires_at, u.id, u.org_id, u.email, \
    u.role FROM api_tokens t JOIN users u ON u.id = t.user_id AND u.org_id = t.org_id \
    WHERE t.id = $1 AND u.disabled = 0";
pub const PURGE_EXPIRED_TOKENS: &str = "DELETE FROM api_tokens \
    WHERE user_id = $1 AND kind = 'access' AND expires_at < $2";
/// A user's tokens, newest first: every API token (expired ones too, so their owner sees
/// what ended) and the access tokens still valid at `$3`.
pub const LIST_TOKENS: &str = "SELECT id, user_id, kind, name, created_at, expires_at, \
    last_used_at FROM api_tokens WHERE org_id = $1 AND user_id = $2 \
    AND (kind = 'api' OR expires_at > $3) ORDER BY created_at DESC, id";
pub const GET_TOKEN: &str = "SELECT id, user_id, kind, name, created_at, expires_at, \
    last_used_at FROM api_tokens WHERE org_id = $1 AND id = $2";
pub const DELETE_TOKEN: &str = "DELETE FROM api_tokens WHERE org_id = $1 AND id = $2";
pub const DELETE_USER_TOKENS: &str = "DELETE FROM api_tokens WHERE org_id = $1 AND user_id = $2";
pub const TOUCH_TOKEN: &str = "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1";

// Providers, defaults, settings ---------------------------------------------------------------
pub const LIST_PROVIDERS: &str = "SELECT provider_type, enabled, config, overrides, created_at, \
    created_by, updated_at, updated_by, revision FROM providers WHERE org_id = $1";
pub const GET_PROVIDER: &str = "SELECT provider_type, enabled, config, overrides, created_at, \
    created_by, updated_at, updated_by, revision FROM providers \
    WHERE org_id = $1 AND provider_type = $2";
pub const INSERT_PROVIDER: &str = "INSERT INTO providers (org_id, provider_type, enabled, \
    config, overrides, created_at, created_by, updated_at, updated_by) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $7)";
pub const UPDATE_PROVIDER: &str = "UPDATE providers SET enabled = $3, config = $4, \
    overrides = $5, updated_at = $6, updated_by = $7, revision = revision + 1 \
    WHERE org_id = $1 AND provider_type = $2";
pub const DELETE_PROVIDER: &str = "DELETE FROM providers WHERE org_id = $1 AND provider_type = $2";

pub const GET_DEFAULTS: &str = "SELECT provider_type, model, created_at, created_by, \
    updated_at, updated_by FROM org_defaults WHERE org_id = $1";
pub const INSERT_DEFAULTS: &str = "INSERT INTO org_defaults (org_id, provider_type, model, \
    created_at, created_by, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $4, $5)";
pub const UPDATE_DEFAULTS: &str = "UPDATE org_defaults SET provider_type = $2, model = $3, \
    updated_at = $4, updated_by = $5 WHERE org_id = $1";

pub const GET_AI_SETTINGS: &str =
    "SELECT retention_days, store_interaction_data FROM ai_settings WHERE org_id = $1";
pub const INSERT_AI_SETTINGS: &str = "INSERT INTO ai_settings (org_id, retention_days, \
    store_interaction_data, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5)";
pub const UPDATE_AI_SETTINGS: &str = "UPDATE ai_settings SET retention_days = $2, \
    store_interaction_data = $3, updated_at = $4, updated_by = $5 WHERE org_id = $1";

// Secrets and keys ------------------------------------------------------------------------------
pub const LIST_SECRETS: &str = "SELECT name, description, created_at, updated_at FROM secrets \
    WHERE org_id = $1 ORDER BY name";
pub const GET_SECRET_META: &str = "SELECT name, description, created_at, updated_at \
    FROM secrets WHERE org_id = $1 AND name = $2";
pub const INSERT_SECRET: &str = "INSERT INTO secrets (org_id, name, description, ciphertext, \
    created_at, created_by, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $5, $6)";
pub const UPDATE_SECRET_VALUE: &str =
    "UPDATE secrets SET ciphertext = $3 WHERE org_id = $1 AND name = $2";
pub const UPDATE_SECRET_META: &str = "UPDATE secrets SET description = $3, updated_at = $4, \
    updated_by = $5 WHERE org_id = $1 AND name = $2";
pub const DELETE_SECRET: &str = "DELETE FROM secrets WHERE org_id = $1 AND name = $2";
pub const SECRET_CIPHERTEXT: &str = "SELECT ciphertext FROM secrets \
    WHERE org_id = $1 AND name = $2";
pub const SEALED_SECRETS: &str = "SELECT name, ciphertext FROM secrets WHERE org_id = $1 \
    ORDER BY name";

pub const INSERT_DATA_KEY: &str = "INSERT INTO data_keys (org_id, wrapped_key, kek_version, \
    created_at) VALUES ($1, $2, $3, $4)";
pub const GET_DATA_KEY: &str = "SELECT wrapped_key, kek_version FROM data_keys WHERE org_id = $1";
pub const STALE_DATA_KEYS: &str = "SELECT org_id, wrapped_key, kek_version FROM data_keys \
    WHERE kek_version < $1 ORDER BY org_id LIMIT $2";
pub const REWRAP_DATA_KEY: &str = "UPDATE data_keys SET wrapped_key = $1, kek_version = $2, \
    rotated_at = $3 WHERE org_id = $4 AND kek_version = $5";
pub const COUNT_STALE_DATA_KEYS: &str =
    "SELECT COUNT(*) AS n FROM data_keys WHERE kek_version < $1";

pub const GET_INSTANCE_KEY: &str =
    "SELECT wrapped_key, kek_version FROM instance_keys WHERE name = $1";
pub const INSERT_INSTANCE_KEY: &str = "INSERT INTO instance_keys (name, wrapped_key, \
    kek_version, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING";
pub const STALE_INSTANCE_KEYS: &str = "SELECT name, wrapped_key, kek_version FROM instance_keys \
    WHERE kek_version < $1 ORDER BY name LIMIT $2";
pub const REWRAP_INSTANCE_KEY: &str = "UPDATE instance_keys SET wrapped_key = $1, \
    kek_version = $2, rotated_at = $3 WHERE name = $4 AND kek_version = $5";
pub const COUNT_STALE_INSTANCE_KEYS: &str =
    "SELECT COUNT(*) AS n FROM instance_keys WHERE kek_version < $1";
pub const STALE_CONTENT_KEYS: &str = "SELECT org_id, period, wrapped_key, kek_version \
    FROM content_keys WHERE kek_version < $1 ORDER BY org_id, period LIMIT $2";
pub const REWRAP_CONTENT_KEY: &str = "UPDATE content_keys SET wrapped_key = $1, \
    kek_version = $2, rotated_at = $3 WHERE org_id = $4 AND period = $5 AND kek_version = $6";
pub const COUNT_STALE_CONTENT_KEYS: &str =
    "SELECT COUNT(*) AS n FROM content_keys WHERE kek_version < $1";
/// Every master key version some stored key still needs.
pub const KEK_VERSIONS_IN_USE: &str = "SELECT DISTINCT kek_version FROM data_keys \
    UNION SELECT DISTINCT kek_version FROM instance_keys \
    UNION SELECT DISTINCT kek_version FROM content_keys";

// Audit and change tracking ------------------------------------------------------------------
pub const LAST_AUDIT: &str = "SELECT seq, hash FROM audit_log WHERE org_id = $1 \
    ORDER BY seq DESC LIMIT 1";
pub const INSERT_AUDIT: &str = "INSERT INTO audit_log (id, org_id, seq, at, actor, action, \
    resource, status, details, prev_hash, hash) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
pub const LIST_AUDIT: &str = "SELECT id, org_id, seq, at, actor, action, resource, status, \
    details, prev_hash, hash FROM audit_log WHERE org_id = $1 AND seq < $2 \
    ORDER BY seq DESC LIMIT $3";
pub const AUDIT_PAGE: &str = "SELECT id, org_id, seq, at, actor, action, resource, status, \
    details, prev_hash, hash FROM audit_log WHERE org_id = $1 AND seq > $2 \
    ORDER BY seq LIMIT $3";

pub const CONFIG_VERSION: &str = "SELECT version FROM config_version WHERE id = 1";
pub const BUMP_CONFIG_VERSION: &str =
    "UPDATE config_version SET version = version + 1 WHERE id = 1 RETURNING version";
/// One row per config version: which organization that write changed.
pub const INSERT_CONFIG_CHANGE: &str =
    "INSERT INTO config_changes (version, org_id, at) VALUES ($1, $2, $3)";
pub const PRUNE_CONFIG_CHANGES: &str = "DELETE FROM config_changes WHERE version <= $1";
/// `n` per organization lets the caller check that no version after `$1` is missing.
pub const CHANGED_ORGS: &str = "SELECT org_id, COUNT(*) AS n, MIN(at) AS first_at FROM config_changes \
    WHERE version > $1 GROUP BY org_id ORDER BY org_id";

// Invocation records, their ledger and content keys -----------------------------------------
/// The columns every invocation read selects (a macro so `concat!` can build constants).
macro_rules! invocation_columns {
    () => {
        "id, org_id, seq, user_id, surface, provider, model, status, error_name, request_id, \
         labels, tools, metered, input_tokens, output_tokens, first_token_ms, total_ms, \
         created_at, finished_at, prev_hash, hash, content_period, content"
    };
}
/// Creates an organization's ledger head on its first invocation.
pub const ENSURE_INVOCATION_CHAIN: &str = "INSERT INTO invocation_chain (org_id, seq, hash) \
    VALUES ($1, 0, $2) ON CONFLICT (org_id) DO NOTHING";
pub const INVOCATION_CHAIN_HEAD: &str =
    "SELECT seq, hash, seal FROM invocation_chain WHERE org_id = $1";
pub const UPDATE_INVOCATION_CHAIN: &str =
    "UPDATE invocation_chain SET seq = $2, hash = $3, seal = $4 WHERE org_id = $1";
/// Heads written before seals existed (sealed once when the store opens).
pub const UNSEALED_INVOCATION_CHAINS: &str =
    "SELECT org_id, seq, hash FROM invocation_chain WHERE seal IS NULL";
pub const SEAL_INVOCATION_CHAIN: &str =
    "UPDATE invocation_chain SET seal = $2 WHERE org_id = $1 AND seal IS NULL";
pub const INSERT_RUNNING_INVOCATION: &str = "INSERT INTO invocations_running (org_id, id, \
    user_id, surface, request_id, labels, created_at, instance_id) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (org_id, id) DO NOTHING";
pub const DELETE_RUNNING_INVOCATION: &str =
    "DELETE FROM invocations_running WHERE org_id = $1 AND id = $2";
pub const GET_RUNNING_INVOCATION: &str = "SELECT org_id, id, user_id, surface, request_id, \
    labels, created_at, instance_id FROM invocations_running WHERE org_id = $1 AND id = $2";
/// Running invocations of processes other than `$1` whose heartbeat is older than `$2` or
/// missing, oldest first.
pub const ORPHANED_RUNNING_INVOCATIONS: &str = "SELECT r.org_id, r.id, r.user_id, r.surface, \
    r.request_id, r.labels, r.created_at, r.instance_id FROM invocations_running r \
    LEFT JOIN instances i ON i.id = r.instance_id \
    WHERE r.instance_id <> $1 AND (i.heartbeat_at IS NULL OR i.heartbeat_at < $2) \
    ORDER BY r.created_at LIMIT $3";
pub const UPSERT_INSTANCE: &str = "INSERT INTO instances (id, started_at, heartbeat_at) \
    VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at";
/// Dead processes with nothing left to recover.
pub const DELETE_DEAD_INSTANCES: &str = "DELETE FROM instances WHERE heartbeat_at < $1 \
    AND NOT EXISTS (SELECT 1 FROM invocations_running r WHERE r.instance_id = instances.id)";
pub const INSERT_INVOCATION: &str = "INSERT INTO invocations (id, org_id, seq, user_id, surface, \
    provider, model, status, error_name, request_id, labels, tools, metered, input_tokens, \
    output_tokens, first_token_ms, total_ms, created_at, finished_at, prev_hash, hash, \
    content_period, content) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
    $14, $15, $16, $17, $18, $19, $20, $21, $22, $23) ON CONFLICT (org_id, id) DO NOTHING";
pub const GET_INVOCATION: &str = concat!(
    "SELECT ",
    invocation_columns!(),
    " FROM invocations WHERE org_id = $1 AND id = $2"
);
/// Newest first, after the cursor `($2, $3)` (pass the largest values for the first page).
pub const LIST_INVOCATIONS: &str = concat!(
    "SELECT ",
    invocation_columns!(),
    " FROM invocations WHERE org_id = $1 \
     AND (created_at < $2 OR (created_at = $2 AND id < $3)) \
     ORDER BY created_at DESC, id DESC LIMIT $4"
);
/// The same, only the records of user `$5`.
pub const LIST_USER_INVOCATIONS: &str = concat!(
    "SELECT ",
    invocation_columns!(),
    " FROM invocations WHERE org_id = $1 AND user_id = $5 \
     AND (created_at < $2 OR (created_at = $2 AND id < $3)) \
     ORDER BY created_at DESC, id DESC LIMIT $4"
);
/// The same with optional filters: `$5` user, `$6` provider, `$7` model, `$8` status
/// (`NULL` matches everything). Used only when a filter beyond the user is set, so the
/// common listings keep their plain, index-friendly statements.
pub const LIST_FILTERED_INVOCATIONS: &str = concat!(
    "SELECT ",
    invocation_columns!(),
    " FROM invocations WHERE org_id = $1 \
     AND (created_at < $2 OR (created_at = $2 AND id < $3)) \
     AND ($5 IS NULL OR user_id = $5) AND ($6 IS NULL OR provider = $6) \
     AND ($7 IS NULL OR model = $7) AND ($8 IS NULL OR status = $8) \
     ORDER BY created_at DESC, id DESC LIMIT $4"
);
/// The ledger in seq order, one page after seq `$2`.
pub const INVOCATION_LEDGER_PAGE: &str = concat!(
    "SELECT ",
    invocation_columns!(),
    " FROM invocations WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
);
pub const MANAGED_USAGE: &str = "SELECT org_id, COUNT(*) AS n, \
    CAST(COALESCE(SUM(input_tokens + output_tokens), 0) AS BIGINT) AS tokens \
    FROM invocations WHERE metered = 1 AND created_at >= $1 GROUP BY org_id ORDER BY org_id";
pub const GET_CONTENT_KEY: &str = "SELECT wrapped_key, kek_version FROM content_keys \
    WHERE org_id = $1 AND period = $2";
pub const INSERT_CONTENT_KEY: &str = "INSERT INTO content_keys (org_id, period, wrapped_key, \
    kek_version, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_id, period) DO NOTHING";
/// Content keys old enough that some organization's retention may have ended for them.
pub const OLD_CONTENT_KEYS: &str = "SELECT k.org_id, k.period, s.retention_days \
    FROM content_keys k LEFT JOIN ai_settings s ON s.org_id = k.org_id \
    WHERE k.period < $1 ORDER BY k.period, k.org_id";
pub const DELETE_CONTENT_KEY: &str = "DELETE FROM content_keys WHERE org_id = $1 AND period = $2";
/// Clears up to `$1` ciphertexts whose key is gone (already unreadable: this reclaims space).
pub const ERASE_ORPHANED_CONTENT: &str = "UPDATE invocations SET content = NULL, \
    content_period = NULL WHERE (org_id, id) IN (SELECT i.org_id, i.id FROM invocations i \
    WHERE i.content IS NOT NULL AND NOT EXISTS (SELECT 1 FROM content_keys k \
    WHERE k.org_id = i.org_id AND k.period = i.content_period) LIMIT $1)";

// Connection validations, usage, people ------------------------------------------------------
pub const UPSERT_VALIDATION: &str = "INSERT INTO provider_validations (org_id, provider_type, \
    valid, result, validated_at) VALUES ($1, $2, $3, $4, $5) \
    ON CONFLICT (org_id, provider_type) DO UPDATE SET valid = excluded.valid, \
    result = excluded.result, validated_at = excluded.validated_at";
pub const LIST_VALIDATIONS: &str = "SELECT provider_type, valid, result, validated_at \
    FROM provider_validations WHERE org_id = $1";
pub const DELETE_VALIDATION: &str =
    "DELETE FROM provider_validations WHERE org_id = $1 AND provider_type = $2";
/// The few columns the usage view folds, since `$2`, optionally only user `$3`'s.
pub const USAGE_SOURCE: &str = "SELECT provider, model, status, input_tokens, output_tokens, \
    total_ms FROM invocations WHERE org_id = $1 AND created_at >= $2 \
    AND ($3 IS NULL OR user_id = $3)";
pub const LIST_USERS: &str = "SELECT id, org_id, email, role, client_id, created_at, disabled \
    FROM users WHERE org_id = $1 ORDER BY email";

// Browser sessions ----------------------------------------------------------------------------
pub const INSERT_SESSION: &str = "INSERT INTO sessions (id, org_id, user_id, secret_hash, \
    csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub const SESSION_PRINCIPAL: &str = "SELECT s.secret_hash, s.csrf_token, s.expires_at, u.id, \
    u.org_id, u.email, u.role FROM sessions s \
    JOIN users u ON u.id = s.user_id AND u.org_id = s.org_id WHERE s.id = $1 AND u.disabled = 0";
pub const SESSION_SECRET_HASH: &str = "SELECT secret_hash FROM sessions WHERE id = $1";
pub const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id = $1";
pub const DELETE_USER_SESSIONS: &str = "DELETE FROM sessions WHERE org_id = $1 AND user_id = $2";
pub const PURGE_EXPIRED_SESSIONS: &str = "DELETE FROM sessions WHERE expires_at <= $1";

// Migrations --------------------------------------------------------------------------------
pub const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, \
    applied_at TEXT NOT NULL)";
pub const APPLIED_MIGRATIONS: &str =
    "SELECT version, checksum FROM schema_migrations ORDER BY version";
pub const RECORD_MIGRATION: &str = "INSERT INTO schema_migrations (version, name, checksum, \
    applied_at) VALUES ($1, $2, $3, $4)";
