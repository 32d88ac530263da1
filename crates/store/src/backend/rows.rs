//! Manual row mapping (no sqlx derive): one typed accessor trait implemented for both row
//! types, and record builders written once against it.

use std::str::FromStr;

use serde_json::{Map, Value};
use sqlx::Row;
use switchboard_core::records::{
    AiSettings, DefaultsRecord, Organization, Overrides, ProviderRecord, SecretMeta, Timestamp,
    User,
};
use switchboard_core::{OrgId, Principal, ProviderType, Role, UserId};

use crate::audit::StoredAudit;
use crate::interactions::{InvocationStatus, StoredInvocation};
use crate::reports::{UsageSample, ValidationRecord};
use crate::vault::WrappedKey;
use crate::{SessionInfo, StoreError, StoreResult, TokenMeta};

/// The column types the schema uses, readable from either back end's rows.
pub(crate) trait RowExt {
    fn text(&self, col: &str) -> StoreResult<String>;
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>>;
    fn int(&self, col: &str) -> StoreResult<i64>;
    fn bytes(&self, col: &str) -> StoreResult<Vec<u8>>;
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>>;
    fn opt_bytes(&self, col: &str) -> StoreResult<Option<Vec<u8>>>;
}

macro_rules! impl_row_ext {
    ($row:ty) => {
        impl RowExt for $row {
            fn text(&self, col: &str) -> StoreResult<String> {
                Ok(self.try_get::<String, _>(col)?)
            }
            fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
                Ok(self.try_get::<Option<String>, _>(col)?)
            }
            fn int(&self, col: &str) -> StoreResult<i64> {
                Ok(self.try_get::<i64, _>(col)?)
            }
            fn bytes(&self, col: &str) -> StoreResult<Vec<u8>> {
                Ok(self.try_get::<Vec<u8>, _>(col)?)
            }
            fn opt_int(&self, col: &str) -> StoreResult<Option<i64>> {
                Ok(self.try_get::<Option<i64>, _>(col)?)
            }
            fn opt_bytes(&self, col: &str) -> StoreResult<Option<Vec<u8>>> {
                Ok(self.try_get::<Option<Vec<u8>>, _>(col)?)
            }
        }
    };
}

impl_row_ext!(sqlx::sqlite::SqliteRow);
impl_row_ext!(sqlx::postgres::PgRow);

fn parse<T: FromStr>(text: &str, what: &str) -> StoreResult<T> {
    text.parse()
        .map_err(|_| StoreError::corrupt(format!("unreadable {what}")))
}

fn timestamp(row: &impl RowExt, col: &str) -> StoreResult<Timestamp> {
    Timestamp::parse(&row.text(col)?).map_err(|_| StoreError::corrupt(format!("bad {col}")))
}

fn json_object(row: &impl RowExt, col: &str) -> StoreResult<Map<String, Value>> {
    serde_json::from_str(&row.text(col)?).map_err(|_| StoreError::corrupt(format!("bad {col}")))
}

pub(crate) fn organization(row: &impl RowExt) -> StoreResult<Organization> {
    Ok(Organization {
        id: parse::<OrgId>(&row.text("id")?, "organization id")?,
        name: row.text("name")?,
        created_at: timestamp(row, "created_at")?,
    })
}

pub(crate) fn user(row: &impl RowExt) -> StoreResult<User> {
    Ok(User {
        id: parse::<UserId>(&row.text("id")?, "user id")?,
        org_id: parse::<OrgId>(&row.text("org_id")?, "organization id")?,
        email: row.text("email")?,
        role: parse::<Role>(&row.text("role")?, "role")?,
        client_id: row.text("client_id")?,
        created_at: timestamp(row, "created_at")?,
        disabled: row.int("disabled")? != 0,
    })
}

/// A token's listing from a row of `sql::LIST_TOKENS` / `sql::GET_TOKEN`.
pub(crate) fn token_meta(row: &impl RowExt) -> StoreResult<TokenMeta> {
    let id = row.text("id")?;
    Ok(TokenMeta {
        prefix: crate::tokens::display_prefix(&id),
        user_id: parse::<UserId>(&row.text("user_id")?, "user id")?,
        kind: row.text("kind")?,
        name: row.opt_text("name")?,
        created_at: timestamp(row, "created_at")?,
        expires_at: opt_timestamp(row, "expires_at")?,
        last_used_at: opt_timestamp(row, "last_used_at")?,
        id,
    })
}

fn opt_timestamp(row: &impl RowExt, col: &str) -> StoreResult<Option<Timestamp>> {
    row.opt_text(col)?
        .map(|text| Timestamp::parse(&text).map_err(|_| StoreError::corrupt(format!("bad {col}"))))
        .transpose()
}

/// A principal from a row with `id`, `org_id`, `email` and `role`.
pub(crate) fn principal(row: &impl RowExt) -> StoreResult<Principal> {
    Ok(Principal {
        org_id: parse::<OrgId>(&row.text("org_id")?, "organization id")?,
        user_id: parse::<UserId>(&row.text("id")?, "user id")?,
        email: row.text("email")?,
        role: parse::<Role>(&row.text("role")?, "role")?,
    })
}

pub(crate) fn provider(row: &impl RowExt) -> StoreResult<ProviderRecord> {
    let overrides: Overrides = serde_json::from_str(&row.text("overrides")?)
        .map_err(|_| StoreError::corrupt("bad overrides"))?;
    Ok(ProviderRecord {
        provider: parse::<ProviderType>(&row.text("provider_type")?, "provider type")?,
        enabled: row.int("enabled")? != 0,
        config: json_object(row, "config")?,
        overrides,
        created_at: timestamp(row, "created_at")?,
        created_by: row.text("created_by")?,
        updated_at: timestamp(row, "updated_at")?,
        updated_by: row.text("updated_by")?,
        revision: u64::try_from(row.int("revision")?)
            .map_err(|_| StoreError::corrupt("negative provider revision"))?,
    })
}

pub(crate) fn defaults(row: &impl RowExt) -> StoreResult<DefaultsRecord> {
    Ok(DefaultsRecord {
        provider: parse::<ProviderType>(&row.text("provider_type")?, "provider type")?,
        model: row.text("model")?,
        created_at: timestamp(row, "created_at")?,
        created_by: row.text("created_by")?,
        updated_at: timestamp(row, "updated_at")?,
        updated_by: row.text("updated_by")?,
    })
}

pub(crate) fn ai_settings(row: &impl RowExt) -> StoreResult<AiSettings> {
    Ok(AiSettings {
        retention_days: u32::try_from(row.int("retention_days")?)
            .map_err(|_| StoreError::corrupt("bad retention_days"))?,
        store_interaction_data: row.int("store_interaction_data")? != 0,
    })
}

pub(crate) fn secret_meta(row: &impl RowExt) -> StoreResult<SecretMeta> {
    Ok(SecretMeta {
        name: row.text("name")?,
        description: row.opt_text("description")?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

/// A session from a row with the principal's columns, `csrf_token` and `expires_at`.
pub(crate) fn session(row: &impl RowExt) -> StoreResult<SessionInfo> {
    Ok(SessionInfo {
        principal: principal(row)?,
        csrf_token: row.text("csrf_token")?,
        expires_at: timestamp(row, "expires_at")?,
    })
}

pub(crate) fn wrapped_key(row: &impl RowExt) -> StoreResult<WrappedKey> {
    Ok(WrappedKey {
        bytes: row.bytes("wrapped_key")?,
        kek_version: u32::try_from(row.int("kek_version")?)
            .map_err(|_| StoreError::corrupt("bad kek_version"))?,
    })
}

pub(crate) fn audit(row: &impl RowExt) -> StoreResult<StoredAudit> {
    Ok(StoredAudit {
        id: row.text("id")?,
        org_id: row.text("org_id")?,
        seq: row.int("seq")?,
        at: row.text("at")?,
        actor: row.text("actor")?,
        action: row.text("action")?,
        resource: row.text("resource")?,
        status: row.text("status")?,
        details: row.text("details")?,
        prev_hash: row.text("prev_hash")?,
        hash: row.text("hash")?,
    })
}

/// A content ciphertext and the period whose key sealed it.
pub(crate) type SealedContent = (String, Vec<u8>);

/// An invocation row, with its content ciphertext and period when it still has content.
pub(crate) fn invocation(
    row: &impl RowExt,
) -> StoreResult<(StoredInvocation, Option<SealedContent>)> {
    let stored = StoredInvocation {
        id: row.text("id")?,
        org_id: row.text("org_id")?,
        seq: row.int("seq")?,
        user_id: row.text("user_id")?,
        surface: row.text("surface")?,
        provider: row.opt_text("provider")?,
        model: row.opt_text("model")?,
        status: row.text("status")?,
        error_name: row.opt_text("error_name")?,
        request_id: row.opt_text("request_id")?,
        labels: row.text("labels")?,
        tools: row.text("tools")?,
        metered: row.int("metered")?,
        input_tokens: row.int("input_tokens")?,
        output_tokens: row.int("output_tokens")?,
        first_token_ms: row.opt_int("first_token_ms")?,
        total_ms: row.int("total_ms")?,
        created_at: row.text("created_at")?,
        finished_at: row.text("finished_at")?,
        prev_hash: row.text("prev_hash")?,
        hash: row.text("hash")?,
    };
    let content = match (row.opt_text("content_period")?, row.opt_bytes("content")?) {
        (Some(period), Some(blob)) => Some((period, blob)),
        _ => None,
    };
    Ok((stored, content))
}

pub(crate) fn validation(row: &impl RowExt) -> StoreResult<ValidationRecord> {
    Ok(ValidationRecord {
        provider: parse::<ProviderType>(&row.text("provider_type")?, "provider type")?,
        valid: row.int("valid")? != 0,
        result: serde_json::from_str(&row.text("result")?)
            .map_err(|_| StoreError::corrupt("bad validation result"))?,
        at: timestamp(row, "validated_at")?,
    })
}

pub(crate) fn usage_sample(row: &impl RowExt) -> StoreResult<UsageSample> {
    let count = |col: &str| -> StoreResult<u64> { Ok(u64::try_from(row.int(col)?).unwrap_or(0)) };
    Ok(UsageSample {
        provider: row.opt_text("provider")?,
        model: row.opt_text("model")?,
        failed: row.text("status")? != InvocationStatus::Completed.as_str(),
        input_tokens: count("input_tokens")?,
        output_tokens: count("output_tokens")?,
        total_ms: count("total_ms")?,
    })
}

/// A running invocation's row.
pub(crate) fn running_invocation(
    row: &impl RowExt,
) -> StoreResult<crate::interactions::RunningInvocation> {
    let corrupt = |what: &str| StoreError::corrupt(format!("unreadable running invocation {what}"));
    Ok(crate::interactions::RunningInvocation {
        id: row.text("id")?,
        org_id: row.text("org_id")?.parse().map_err(|_| corrupt("org id"))?,
        user_id: row
            .text("user_id")?
            .parse()
            .map_err(|_| corrupt("user id"))?,
        surface: row.text("surface")?,
        request_id: row.opt_text("request_id")?,
        labels: serde_json::from_str(&row.text("labels")?).map_err(|_| corrupt("labels"))?,
        created_at: Timestamp::parse(&row.text("created_at")?)
            .map_err(|_| corrupt("created_at"))?,
        instance_id: row.text("instance_id")?,
    })
}
