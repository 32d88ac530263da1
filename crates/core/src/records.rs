//! The records the control plane stores and the API returns.

use crate::ids::{OrgId, UserId};
use crate::principal::Role;
use crate::provider::ProviderType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A UTC instant rendered as RFC 3339 with exactly three fractional digits
/// (`2025-01-01T00:00:00.000Z`). The fixed width makes the stored text sort in time order
/// on both back ends.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    /// Truncates to milliseconds so that a value survives a round trip through its text.
    pub fn from_datetime(at: OffsetDateTime) -> Self {
        let at = at.to_offset(time::UtcOffset::UTC);
        let millis = at.millisecond();
        Self(
            at.replace_nanosecond(u32::from(millis) * 1_000_000)
                .expect("valid nanosecond"),
        )
    }

    pub fn datetime(&self) -> OffsetDateTime {
        self.0
    }

    pub fn parse(text: &str) -> Result<Self, time::error::Parse> {
        OffsetDateTime::parse(text, &Rfc3339).map(Self::from_datetime)
    }

    pub fn unix_seconds(&self) -> i64 {
        self.0.unix_timestamp()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second(),
            d.millisecond()
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    #[serde(rename = "createdAt")]
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    #[serde(rename = "orgId")]
    pub org_id: OrgId,
    pub email: String,
    pub role: Role,
    #[serde(rename = "clientId")]
    pub client_id: String,
    #[serde(rename = "createdAt")]
    pub created_at: Timestamp,
    /// A disabled user's tokens, sessions, password and client credentials are refused;
    /// the row stays so an admin can enable them again.
    #[serde(default)]
    pub disabled: bool,
}

impl User {
    /// An admin who is not disabled: the kind an organization must always keep one of.
    pub fn is_active_admin(&self) -> bool {
        self.role == Role::Admin && !self.disabled
    }
}

/// `{"enabled": bool}`; no other keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelToggle {
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// Per-model switches an organization layers over a provider's catalog.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    #[serde(default)]
    pub models: Map<String, Value>,
}

/// A provider connected to an organization, as stored. `config` holds secret *names* only.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderRecord {
    pub provider: ProviderType,
    pub enabled: bool,
    pub config: Map<String, Value>,
    pub overrides: Overrides,
    pub created_at: Timestamp,
    pub created_by: String,
    pub updated_at: Timestamp,
    pub updated_by: String,
    /// Starts at 1 and grows by one with every write, so a read-merge-write can ask to be
    /// stored only if nothing was written since its read (`ProviderWrite::expected_revision`).
    pub revision: u64,
}

/// The organization's chosen default provider and model.
#[derive(Clone, Debug, PartialEq)]
pub struct DefaultsRecord {
    pub provider: ProviderType,
    pub model: String,
    pub created_at: Timestamp,
    pub created_by: String,
    pub updated_at: Timestamp,
    pub updated_by: String,
}

/// A secret's metadata. The value is never part of any record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SecretMeta {
    #[serde(rename = "secretName")]
    pub name: String,
    pub description: Option<String>,
    #[serde(rename = "createdAt")]
    pub created_at: Timestamp,
    #[serde(rename = "updatedAt")]
    pub updated_at: Timestamp,
}

/// The organization's data controls for AI interaction content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiSettings {
    #[serde(rename = "retentionDays")]
    pub retention_days: u32,
    #[serde(rename = "storeInteractionData")]
    pub store_interaction_data: bool,
}

impl Default for AiSettings {
    fn default() -> Self {
        Self {
            retention_days: 30,
            store_interaction_data: true,
        }
    }
}

/// A change to the data controls: absent values keep the stored ones. Applied by the store
/// inside its write transaction, so two concurrent partial changes both survive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AiSettingsChange {
    pub retention_days: Option<u32>,
    pub store_interaction_data: Option<bool>,
}

impl AiSettingsChange {
    /// `stored` with this change applied.
    pub fn apply_to(self, stored: AiSettings) -> AiSettings {
        AiSettings {
            retention_days: self.retention_days.unwrap_or(stored.retention_days),
            store_interaction_data: self
                .store_interaction_data
                .unwrap_or(stored.store_interaction_data),
        }
    }
}

/// Replaces both values.
impl From<AiSettings> for AiSettingsChange {
    fn from(settings: AiSettings) -> Self {
        Self {
            retention_days: Some(settings.retention_days),
            store_interaction_data: Some(settings.store_interaction_data),
        }
    }
}

/// One entry of an organization's hash-chained audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    pub seq: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub resource: String,
    pub status: String,
    pub details: Value,
    #[serde(rename = "prevHash")]
    pub prev_hash: String,
    pub hash: String,
}
