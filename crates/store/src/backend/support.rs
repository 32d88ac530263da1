//! Back-end independent helpers for the `ops_*` macros: input normalization, the JSON
//! shapes written to audit details, and small conversions.

use serde::Serialize;
use serde_json::{Value, json};
use switchboard_core::OrgId;
use switchboard_core::records::{DefaultsRecord, ProviderRecord, SecretMeta, Timestamp, User};
use time::Duration;

use crate::{StoreError, StoreFuture, StoreResult};

/// Everything the `ops_*` macro expansions refer to by short name.
pub(crate) mod prelude {
    pub(crate) use super::super::rows::{self, RowExt};
    pub(crate) use super::super::sql;
    pub(crate) use super::super::{Migration, support};
    pub(crate) use crate::audit::{self, ChainVerifier, StoredAudit};
    pub(crate) use crate::interactions::{
        self, InsertReport, InvocationBatch, InvocationContent, InvocationCursor, InvocationFilter,
        InvocationRecord, LedgerVerifier, ManagedUsage, PurgePolicy, PurgeReport,
        RunningInvocation, StoredInvocation,
    };
    pub(crate) use crate::reports::{UsageFold, UsageRow, ValidationRecord};
    pub(crate) use crate::tokens::{self, TokenKind};
    pub(crate) use crate::vault::{ContentKey, KeyOwner, PEPPER_KEY, Vault, WrappedKey};
    pub(crate) use crate::{
        Actor, AuditEvent, BrokenLink, ClientCredentials, ConfigChanges, IssuedSession,
        IssuedToken, MasterKeyRing, NewOrganization, NewUser, OrgConfig, ProviderWrite,
        RotationReport, SealedSecret, SecretUpdate, SessionInfo, Store, StoreError, StoreFuture,
        StoreOptions, StoreResult, TokenFingerprint, TokenGrant, TokenMeta, TokenSpec, UserChange,
    };
    pub(crate) use serde_json::json;
    pub(crate) use sqlx::{Pool, Transaction};
    pub(crate) use switchboard_core::records::{
        AiSettings, AiSettingsChange, AuditEntry, DefaultsRecord, Organization, Overrides,
        ProviderRecord, SecretMeta, Timestamp, User,
    };
    pub(crate) use switchboard_core::{OrgId, Principal, ProviderType, Role, SecretValue, UserId};
}

/// The longest access-token lifetime honoured (one year); longer requests are capped.
const MAX_TTL_SECONDS: u64 = 365 * 24 * 3600;

/// How many of the newest `config_changes` rows every write keeps. A count rather than an
/// age: the table stays small however busy the instance is, and a replica that fell more
/// than this many writes behind (or was down for long) just reloads every organization.
pub(crate) const CONFIG_CHANGES_KEPT: i64 = 10_000;

/// Emails are unique instance-wide regardless of case, so they are stored lower-case.
pub(crate) fn normalize_email(email: &str) -> StoreResult<String> {
    let email = switchboard_core::names::normalize(email)
        .map_err(|e| StoreError::Invalid(format!("an email {e}")))?
        .to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if valid {
        Ok(email)
    } else {
        Err(StoreError::Invalid("not a valid email address".into()))
    }
}

pub(crate) fn org_name(name: &str) -> StoreResult<String> {
    let name = switchboard_core::names::normalize(name)
        .map_err(|e| StoreError::Invalid(format!("an organization name {e}")))?;
    if name.len() > 128 {
        return Err(StoreError::Invalid(
            "an organization name must be 1 to 128 printable characters".into(),
        ));
    }
    Ok(name)
}

/// The longest token label accepted.
const MAX_TOKEN_NAME_CHARS: usize = 100;
/// The longest lifetime a token can be given (a year); without one it lives until revoked.
pub(crate) const MAX_TOKEN_DAYS: u32 = 365;

/// A token's label: trimmed, blank means none, at most 100 printable characters.
pub(crate) fn token_name(name: Option<&str>) -> StoreResult<Option<String>> {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    let name = switchboard_core::names::normalize(name)
        .map_err(|e| StoreError::Invalid(format!("a token name {e}")))?;
    if name.chars().count() > MAX_TOKEN_NAME_CHARS {
        return Err(StoreError::Invalid(
            "a token name must be at most 100 printable characters".into(),
        ));
    }
    Ok(Some(name))
}

/// A token's lifetime in seconds from a number of days (1 to 365), or none.
pub(crate) fn token_ttl(days: Option<u32>) -> StoreResult<Option<u64>> {
    match days {
        None => Ok(None),
        Some(days) if (1..=MAX_TOKEN_DAYS).contains(&days) => Ok(Some(u64::from(days) * 86_400)),
        Some(_) => Err(StoreError::Invalid(format!(
            "expiresInDays must be between 1 and {MAX_TOKEN_DAYS}"
        ))),
    }
}

/// Whether a change to one user (`after`: `None` when deleted) takes away an active admin.
/// If it does, the write must prove another active admin remains (the last-admin rule).
pub(crate) fn loses_active_admin(before: &User, after: Option<&User>) -> bool {
    before.is_active_admin() && !after.is_some_and(User::is_active_admin)
}

/// What audit entries record of a user: who, and the two things an admin can change.
pub(crate) fn user_state(user: &User) -> Value {
    json!({
        "id": user.id, "email": user.email, "role": user.role.as_str(), "disabled": user.disabled,
    })
}

pub(crate) fn non_empty<'a>(value: &'a str, what: &str) -> StoreResult<&'a str> {
    if value.trim().is_empty() {
        return Err(StoreError::Invalid(format!("{what} must not be empty")));
    }
    Ok(value)
}

pub(crate) fn to_json_text<T: Serialize + ?Sized>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(format!("unserializable: {e}")))
}

pub(crate) fn db_bool(value: bool) -> i64 {
    i64::from(value)
}

pub(crate) fn parse_org_id(text: &str) -> StoreResult<OrgId> {
    text.parse()
        .map_err(|_| StoreError::corrupt("unreadable organization id"))
}

/// When an access token or session issued now with `ttl_seconds` expires, and the ttl
/// actually used.
pub(crate) fn expiry(now: Timestamp, ttl_seconds: u64) -> (Timestamp, u64) {
    let ttl = ttl_seconds.min(MAX_TTL_SECONDS);
    let seconds = i64::try_from(ttl).unwrap_or(0);
    let at = Timestamp::from_datetime(now.datetime() + Duration::seconds(seconds));
    (at, ttl)
}

/// The organizations changed after version `since`, from the change log's rows after it
/// (organization, number of versions), or `None` when the log cannot account for every
/// version in `(since, current]` and the caller must treat every organization as changed.
///
/// Each bump logs exactly one row, so the log is complete for that range exactly when it
/// holds `current - since` rows in it. That one check covers a pruned log, versions written
/// before the log existed, and a `since` from the future (another database, a restore).
pub(crate) fn changed_orgs(
    since: i64,
    current: i64,
    logged: Vec<(OrgId, i64)>,
) -> Option<Vec<OrgId>> {
    let covered: i64 = logged.iter().map(|(_, n)| n).sum();
    (since <= current && covered == current - since)
        .then(|| logged.into_iter().map(|(org, _)| org).collect())
}

/// Sorts providers in the contract's type order.
pub(crate) fn sort_providers(records: &mut [ProviderRecord]) {
    records.sort_by_key(|r| {
        switchboard_core::ProviderType::ALL
            .iter()
            .position(|p| *p == r.provider)
    });
}

/// A provider's state as recorded in audit details: configuration holds secret names only.
/// A conditional provider write goes ahead only if the stored provider is still the one it
/// was merged into: same revision, and not deleted meanwhile.
pub(crate) fn check_revision(
    stored: Option<&ProviderRecord>,
    expected: Option<u64>,
) -> StoreResult<()> {
    match expected {
        Some(expected) if stored.map(|s| s.revision) != Some(expected) => Err(StoreError::Stale),
        _ => Ok(()),
    }
}

pub(crate) fn provider_json(record: &ProviderRecord) -> Value {
    json!({
        "provider": record.provider.as_str(),
        "enabled": record.enabled,
        "config": record.config,
        "overrides": { "models": record.overrides.models },
    })
}

pub(crate) fn defaults_json(record: &DefaultsRecord) -> Value {
    json!({ "provider": record.provider.as_str(), "model": record.model })
}

/// A secret's audit state: its metadata, never its value nor anything derived from it.
pub(crate) fn secret_json(meta: &SecretMeta) -> Value {
    json!({ "name": meta.name, "description": meta.description })
}

pub(crate) fn sha256_hex(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    crate::vault::hex(digest.as_ref())
}

/// Refuses to run against a schema this binary does not know, or whose applied migrations
/// were edited after the fact: migrations are forward-only and immutable.
pub(crate) fn check_applied(
    applied: &[(i64, String)],
    known: &[super::Migration],
) -> StoreResult<()> {
    for (version, checksum) in applied {
        match known.iter().find(|m| m.version == *version) {
            None => {
                return Err(StoreError::corrupt(format!(
                    "the database has schema version {version}, newer than this binary knows"
                )));
            }
            Some(m) if sha256_hex(m.sql) != *checksum => {
                return Err(StoreError::corrupt(format!(
                    "migration {version} ({}) changed after it was applied",
                    m.name
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// A variant of a caller-chosen invocation id that clashed with a stored one (never drop
/// a record over a clash).
pub(crate) fn renamed_invocation_id(id: &str) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{id}.dup-{}", &suffix[..8])
}

/// A store call under the deadline of [`crate::StoreOptions::call_timeout`]: past it the
/// call is abandoned (its connection dropped) and answers [`StoreError::Timeout`], so a
/// frozen or locked database never holds a request longer than the deadline. Every call's
/// latency is recorded by operation (`switchboard_store_call_seconds`).
pub(crate) fn bounded<'a, T: 'a, F>(
    limit: Option<std::time::Duration>,
    call: F,
) -> StoreFuture<'a, T>
where
    F: std::future::Future<Output = StoreResult<T>> + Send + 'a,
{
    let operation = operation_name(std::any::type_name::<F>());
    Box::pin(async move {
        let started = std::time::Instant::now();
        let result = match limit {
            None => call.await,
            Some(limit) => tokio::time::timeout(limit, call)
                .await
                .unwrap_or(Err(StoreError::Timeout(limit))),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(StoreError::Timeout(_)) => "timeout",
            Err(_) => "error",
        };
        metrics::histogram!(
            switchboard_telemetry::names::STORE_CALL,
            "operation" => operation,
            "result" => outcome,
        )
        .record(started.elapsed().as_secs_f64());
        result
    })
}

/// The store operation a call's future belongs to, from its type name
/// (`…::op_config_version::{{closure}}` → `config_version`): a label without a name
/// written at each of the trait's call sites.
fn operation_name(future_type: &'static str) -> &'static str {
    let mut name = future_type;
    while let Some(outer) = name.strip_suffix("::{{closure}}") {
        name = outer;
    }
    let name = name.rsplit("::").next().unwrap_or(name);
    name.strip_prefix("op_").unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_named_from_their_future_types() {
        assert_eq!(
            operation_name(
                "switchboard_store::backend::sqlite::<impl switchboard_store::backend::sqlite::SqliteStore>::op_config_version::{{closure}}"
            ),
            "config_version"
        );
        assert_eq!(
            operation_name(
                "switchboard_store::backend::pg::<impl switchboard_store::Store for switchboard_store::backend::pg::PgStore>::ping::{{closure}}"
            ),
            "ping"
        );
        async fn op_example() -> StoreResult<()> {
            Ok(())
        }
        fn name_of<F: std::future::Future>(_: &F) -> &'static str {
            operation_name(std::any::type_name::<F>())
        }
        assert_eq!(name_of(&op_example()), "example");
    }

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            normalize_email(" Admin@Example.COM ").unwrap(),
            "admin@example.com"
        );
        for bad in ["", "no-at", "@x", "x@", "a b@c"] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    fn user(role: switchboard_core::Role, disabled: bool) -> User {
        User {
            id: switchboard_core::UserId::new(),
            org_id: OrgId::new(),
            email: "u@x.test".into(),
            role,
            client_id: "c".into(),
            created_at: Timestamp::now(),
            disabled,
        }
    }

    #[test]
    fn only_changes_that_take_an_active_admin_away_need_another_one() {
        use switchboard_core::Role::{Admin, Member};
        let admin = user(Admin, false);
        assert!(loses_active_admin(&admin, None));
        assert!(loses_active_admin(&admin, Some(&user(Member, false))));
        assert!(loses_active_admin(&admin, Some(&user(Admin, true))));
        assert!(!loses_active_admin(&admin, Some(&user(Admin, false))));
        // A member or a disabled admin was not counted as an active admin to begin with.
        assert!(!loses_active_admin(&user(Member, false), None));
        assert!(!loses_active_admin(&user(Admin, true), None));
    }

    #[test]
    fn token_names_and_lifetimes_are_checked() {
        assert_eq!(token_name(None).unwrap(), None);
        assert_eq!(token_name(Some("  ")).unwrap(), None);
        assert_eq!(token_name(Some(" ci ")).unwrap().as_deref(), Some("ci"));
        assert!(token_name(Some(&"x".repeat(101))).is_err());
        assert!(token_name(Some("a\nb")).is_err());
        assert_eq!(token_ttl(None).unwrap(), None);
        assert_eq!(token_ttl(Some(1)).unwrap(), Some(86_400));
        assert!(token_ttl(Some(365)).is_ok());
        for bad in [0, 366, u32::MAX] {
            assert!(token_ttl(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn changes_are_trusted_only_when_the_log_is_complete() {
        let (a, b) = (OrgId::new(), OrgId::new());
        assert_eq!(changed_orgs(5, 5, vec![]), Some(vec![]));
        assert_eq!(changed_orgs(2, 5, vec![(a, 2), (b, 1)]), Some(vec![a, b]));
        // Version 3 was pruned (or never logged): reload everything.
        assert_eq!(changed_orgs(2, 5, vec![(a, 1), (b, 1)]), None);
        assert_eq!(changed_orgs(0, 5, vec![]), None);
        assert_eq!(changed_orgs(9, 5, vec![]), None);
    }

    #[test]
    fn expiry_is_capped() {
        let now = Timestamp::now();
        let (at, ttl) = expiry(now, u64::MAX);
        assert_eq!(ttl, MAX_TTL_SECONDS);
        assert!(at > now);
    }
}
