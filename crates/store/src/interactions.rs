//! Invocation records: what the store keeps about every AI interaction, the hash-chained
//! ledger that makes their metadata tamper-evident, and the day-sized content periods whose
//! keys the purge deletes (crypto-erasure).
//!
//! Ledger canonical form: an entry's hash is the lower-case hex SHA-256 of the compact
//! `serde_json` serialization of the JSON array
//!
//! ```text
//! ["switchboard.invocation.v1", prev_hash, seq, id, org_id, user_id, surface, provider,
//!  model, status, error_name, request_id, labels, tools, metered, input_tokens,
//!  output_tokens, first_token_ms, total_ms, created_at, finished_at]
//! ```
//!
//! where `labels` and `tools` are the exact stored JSON text, absent optional values are
//! `null`, and numbers are JSON integers. Content is deliberately outside the hash: it is
//! erased when it expires, and the chain must keep verifying after that.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Map, Value};
use switchboard_core::records::Timestamp;
use switchboard_core::{OrgId, ProviderType, UserId};

use crate::audit::GENESIS_HASH;
use crate::vault::hex;
use crate::{BrokenLink, StoreError, StoreResult};

/// How an invocation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvocationStatus {
    Completed,
    Failed,
}

impl InvocationStatus {
    /// The Port spelling, also used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            InvocationStatus::Completed => "Completed",
            InvocationStatus::Failed => "Failed",
        }
    }

    pub(crate) fn parse(text: &str) -> StoreResult<Self> {
        match text {
            "Completed" => Ok(InvocationStatus::Completed),
            "Failed" => Ok(InvocationStatus::Failed),
            _ => Err(StoreError::corrupt("unknown invocation status")),
        }
    }
}

/// The interaction's content: kept only while the organization stores interaction data, and
/// only until its retention ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct InvocationContent {
    pub prompt: String,
    pub response: Option<String>,
}

/// One AI interaction, as written by the recorder and read back by the API.
#[derive(Clone, Debug, PartialEq)]
pub struct InvocationRecord {
    /// Unique within the organization (caller-chosen on the invoke API).
    pub id: String,
    pub org_id: OrgId,
    pub user_id: UserId,
    /// `openai`, `anthropic` or `invoke`.
    pub surface: String,
    /// Who served it; `None` when the request failed before resolution.
    pub provider: Option<ProviderType>,
    pub model: Option<String>,
    pub status: InvocationStatus,
    pub error_name: Option<String>,
    pub request_id: Option<String>,
    pub labels: Map<String, Value>,
    /// The invoke API's tool selectors, recorded as given (no tool catalog exists).
    pub tools: Vec<String>,
    /// Whether it counted against the managed provider's limits.
    pub metered: bool,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub first_token_ms: Option<u64>,
    pub total_ms: u64,
    pub created_at: Timestamp,
    pub finished_at: Timestamp,
    /// On insert: the content to keep if the organization stores interaction data. On read:
    /// the decrypted content, `None` when not stored, expired or erased.
    pub content: Option<InvocationContent>,
}

/// The error name of an invocation that was in flight when its process died.
pub const INTERRUPTED: &str = "interrupted";

/// An invocation that has begun and is not recorded yet: its row tells every replica it is
/// running, and tells the recovery it was interrupted if its process dies.
#[derive(Clone, Debug, PartialEq)]
pub struct RunningInvocation {
    pub id: String,
    pub org_id: OrgId,
    pub user_id: UserId,
    pub surface: String,
    pub request_id: Option<String>,
    pub labels: Map<String, Value>,
    pub created_at: Timestamp,
    /// The serving process (see [`crate::Store::heartbeat`]).
    pub instance_id: String,
}

impl RunningInvocation {
    /// The record it becomes when its process died before it ended.
    pub fn interrupted(&self, now: Timestamp) -> InvocationRecord {
        let elapsed = now.datetime() - self.created_at.datetime();
        InvocationRecord {
            id: self.id.clone(),
            org_id: self.org_id,
            user_id: self.user_id,
            surface: self.surface.clone(),
            provider: None,
            model: None,
            status: InvocationStatus::Failed,
            error_name: Some(INTERRUPTED.to_owned()),
            request_id: self.request_id.clone(),
            labels: self.labels.clone(),
            tools: Vec::new(),
            metered: false,
            input_tokens: 0,
            output_tokens: 0,
            first_token_ms: None,
            total_ms: u64::try_from(elapsed.whole_milliseconds()).unwrap_or(0),
            created_at: self.created_at,
            finished_at: now,
            content: None,
        }
    }
}

/// One recorder batch: invocations that began (their running rows) and invocations that
/// ended (their final records; their running rows are removed in the same transaction).
#[derive(Clone, Debug, Default)]
pub struct InvocationBatch {
    pub begun: Vec<RunningInvocation>,
    pub ended: Vec<InvocationRecord>,
}

/// Which invocations a listing returns; `None` fields match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InvocationFilter {
    /// Members are limited to their own records by the caller, through this field.
    pub user: Option<UserId>,
    pub provider: Option<ProviderType>,
    pub model: Option<String>,
    pub status: Option<InvocationStatus>,
}

impl InvocationFilter {
    /// Only `user`'s records (or everyone's for `None`), nothing else narrowed.
    pub fn user(user: Option<UserId>) -> Self {
        Self {
            user,
            ..Self::default()
        }
    }

    /// Whether anything beyond the user is filtered (which needs the general statement).
    pub(crate) fn narrows_beyond_user(&self) -> bool {
        self.provider.is_some() || self.model.is_some() || self.status.is_some()
    }
}

/// Where a newest-first listing continues: the last record of the previous page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvocationCursor {
    pub created_at: String,
    pub id: String,
}

impl InvocationCursor {
    pub fn after(record: &InvocationRecord) -> Self {
        Self {
            created_at: record.created_at.to_string(),
            id: record.id.clone(),
        }
    }

    /// An opaque token for `nextCursor`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}\n{}", self.created_at, self.id))
    }

    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (created_at, id) = text.split_once('\n')?;
        Timestamp::parse(created_at).ok()?;
        Some(Self {
            created_at: created_at.to_owned(),
            id: id.to_owned(),
        })
    }
}

/// What a recorder batch insert did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InsertReport {
    pub inserted: u64,
    /// `(asked, stored)` ids of records whose id was already taken in their organization
    /// (possible only when two replicas raced on one caller-chosen id); they are stored
    /// under a suffixed id rather than dropped.
    pub renamed: Vec<(String, String)>,
}

/// How one purge batch decides what expired.
#[derive(Clone, Copy, Debug)]
pub struct PurgePolicy {
    pub now: Timestamp,
    /// The operator's ceiling (`SWITCHBOARD_RETENTION_DAYS`); an organization's own
    /// `retentionDays` applies when shorter.
    pub max_retention_days: u32,
    /// The most keys deleted and the most ciphertexts cleared in one call.
    pub batch: u32,
}

/// What one purge batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub keys_deleted: u64,
    pub contents_erased: u64,
    /// Call again: the batch was full.
    pub more: bool,
    /// Another replica holds the purge lock (PostgreSQL); nothing was done.
    pub locked_elsewhere: bool,
}

/// Managed-provider usage of one organization since some instant, from stored records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManagedUsage {
    pub org_id: OrgId,
    pub invocations: u64,
    pub tokens: u64,
}

/// The UTC day an instant belongs to: the content period whose key encrypts it.
pub(crate) fn period_of(at: Timestamp) -> String {
    let date = at.datetime().date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Whether every content of `period` is older than `retention_days` at `now`: the period
/// starts at midnight UTC, so its last content expires `retention_days` after that at the
/// latest — never later than the retention promises.
pub(crate) fn period_expired(period: &str, retention_days: u32, now: Timestamp) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let Ok(date) = time::Date::parse(period, &format) else {
        // Unreadable periods cannot be decrypted against either; erase them.
        return true;
    };
    let start = date.midnight().assume_utc();
    start + time::Duration::days(i64::from(retention_days)) <= now.datetime()
}

/// An invocation row exactly as stored (content aside).
#[derive(Clone, Debug)]
pub(crate) struct StoredInvocation {
    pub id: String,
    pub org_id: String,
    pub seq: i64,
    pub user_id: String,
    pub surface: String,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub status: String,
    pub error_name: Option<String>,
    pub request_id: Option<String>,
    pub labels: String,
    pub tools: String,
    pub metered: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub first_token_ms: Option<i64>,
    pub total_ms: i64,
    pub created_at: String,
    pub finished_at: String,
    pub prev_hash: String,
    pub hash: String,
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_u64(value: i64, what: &str) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| StoreError::corrupt(format!("negative {what}")))
}

impl StoredInvocation {
    /// The row for `record` as entry `seq` of a ledger whose last hash is `prev_hash`.
    pub fn new(
        record: &InvocationRecord,
        id: &str,
        seq: i64,
        prev_hash: &str,
    ) -> StoreResult<Self> {
        let mut row = Self {
            id: id.to_owned(),
            org_id: record.org_id.to_string(),
            seq,
            user_id: record.user_id.to_string(),
            surface: record.surface.clone(),
            provider: record.provider.map(|p| p.as_str().to_owned()),
            model: record.model.clone(),
            status: record.status.as_str().to_owned(),
            error_name: record.error_name.clone(),
            request_id: record.request_id.clone(),
            labels: crate::backend::support::to_json_text(&record.labels)?,
            tools: crate::backend::support::to_json_text(&record.tools)?,
            metered: i64::from(record.metered),
            input_tokens: to_i64(record.input_tokens),
            output_tokens: to_i64(record.output_tokens),
            first_token_ms: record.first_token_ms.map(to_i64),
            total_ms: to_i64(record.total_ms),
            created_at: record.created_at.to_string(),
            finished_at: record.finished_at.to_string(),
            prev_hash: prev_hash.to_owned(),
            hash: String::new(),
        };
        row.hash = row.compute_hash()?;
        Ok(row)
    }

    /// See the module docs for the canonical form. The array is serialized field by field
    /// into one buffer and hashed in one call: no intermediate JSON value, and no digest
    /// update per token (this runs once per invocation).
    pub fn compute_hash(&self) -> StoreResult<String> {
        let mut canonical = Vec::with_capacity(768);
        serde_json::to_writer(&mut canonical, &Canonical(self)).map_err(StoreError::corrupt)?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &canonical);
        Ok(hex(digest.as_ref()))
    }

    /// The record, with `content` as decrypted by the caller.
    pub fn to_record(&self, content: Option<InvocationContent>) -> StoreResult<InvocationRecord> {
        let corrupt = |what: &str| StoreError::corrupt(format!("unreadable invocation {what}"));
        Ok(InvocationRecord {
            id: self.id.clone(),
            org_id: self.org_id.parse().map_err(|_| corrupt("org id"))?,
            user_id: self.user_id.parse().map_err(|_| corrupt("user id"))?,
            surface: self.surface.clone(),
            provider: self
                .provider
                .as_deref()
                .map(|p| p.parse().map_err(|_| corrupt("provider")))
                .transpose()?,
            model: self.model.clone(),
            status: InvocationStatus::parse(&self.status)?,
            error_name: self.error_name.clone(),
            request_id: self.request_id.clone(),
            labels: serde_json::from_str(&self.labels).map_err(|_| corrupt("labels"))?,
            tools: serde_json::from_str(&self.tools).map_err(|_| corrupt("tools"))?,
            metered: self.metered != 0,
            input_tokens: to_u64(self.input_tokens, "input tokens")?,
            output_tokens: to_u64(self.output_tokens, "output tokens")?,
            first_token_ms: self
                .first_token_ms
                .map(|ms| to_u64(ms, "first token time"))
                .transpose()?,
            total_ms: to_u64(self.total_ms, "total time")?,
            created_at: Timestamp::parse(&self.created_at).map_err(|_| corrupt("created_at"))?,
            finished_at: Timestamp::parse(&self.finished_at).map_err(|_| corrupt("finished_at"))?,
            content,
        })
    }
}

/// The ledger's canonical array of one row (module docs), serialized element by element.
struct Canonical<'a>(&'a StoredInvocation);

impl Serialize for Canonical<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let row = self.0;
        let mut seq = serializer.serialize_seq(Some(21))?;
        seq.serialize_element(LEDGER_TAG)?;
        seq.serialize_element(&row.prev_hash)?;
        seq.serialize_element(&row.seq)?;
        seq.serialize_element(&row.id)?;
        seq.serialize_element(&row.org_id)?;
        seq.serialize_element(&row.user_id)?;
        seq.serialize_element(&row.surface)?;
        seq.serialize_element(&row.provider)?;
        seq.serialize_element(&row.model)?;
        seq.serialize_element(&row.status)?;
        seq.serialize_element(&row.error_name)?;
        seq.serialize_element(&row.request_id)?;
        seq.serialize_element(&row.labels)?;
        seq.serialize_element(&row.tools)?;
        seq.serialize_element(&row.metered)?;
        seq.serialize_element(&row.input_tokens)?;
        seq.serialize_element(&row.output_tokens)?;
        seq.serialize_element(&row.first_token_ms)?;
        seq.serialize_element(&row.total_ms)?;
        seq.serialize_element(&row.created_at)?;
        seq.serialize_element(&row.finished_at)?;
        seq.end()
    }
}

/// The first element of every canonical array: the ledger format's name and version.
const LEDGER_TAG: &str = "switchboard.invocation.v1";

/// Walks one organization's invocation ledger in seq order; reports the first broken row,
/// then checks that the chain ends at the recorded head.
pub(crate) struct LedgerVerifier {
    org: OrgId,
    expected_seq: i64,
    prev_hash: String,
    last_id: String,
}

impl LedgerVerifier {
    pub fn new(org: OrgId) -> Self {
        Self {
            org,
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            last_id: String::new(),
        }
    }

    pub fn last_seq(&self) -> i64 {
        self.expected_seq - 1
    }

    pub fn check(&mut self, row: &StoredInvocation) -> Option<BrokenLink> {
        let reason = if row.seq != self.expected_seq {
            Some(format!(
                "invocation ledger seq gap: expected {}, found {}",
                self.expected_seq, row.seq
            ))
        } else if row.org_id != self.org.to_string() {
            Some("invocation belongs to another organization".to_owned())
        } else if row.prev_hash != self.prev_hash {
            Some("invocation prev_hash does not match the previous entry's hash".to_owned())
        } else if row.compute_hash().ok().as_deref() != Some(row.hash.as_str()) {
            Some("invocation hash does not match the record's contents".to_owned())
        } else {
            None
        };
        if let Some(reason) = reason {
            return Some(self.broken(&row.id, row.seq, reason));
        }
        self.expected_seq += 1;
        self.prev_hash = row.hash.clone();
        self.last_id = row.id.clone();
        None
    }

    /// The chain must end exactly at the head row (`None`: no invocation was ever written).
    pub fn finish(&self, head: Option<(i64, String)>) -> Option<BrokenLink> {
        let (seq, hash) = head.unwrap_or((0, GENESIS_HASH.to_owned()));
        (seq != self.last_seq() || hash != self.prev_hash).then(|| {
            self.broken(
                &self.last_id,
                self.last_seq(),
                format!(
                    "the invocation ledger ends at seq {} but its head says {seq}",
                    self.last_seq()
                ),
            )
        })
    }

    /// The head's seal does not match its seq and hash: the head was rewritten without the
    /// master key (for instance rewound to hide deleted records).
    pub fn unsealed_head(&self, seq: i64) -> BrokenLink {
        self.broken(
            &self.last_id,
            seq,
            format!("the invocation ledger head (seq {seq}) is not sealed by this master key"),
        )
    }

    fn broken(&self, id: &str, seq: i64, reason: String) -> BrokenLink {
        BrokenLink {
            org_id: self.org,
            entry_id: id.to_owned(),
            seq,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn periods_expire_no_later_than_the_retention() {
        let at = Timestamp::parse("2026-03-10T23:59:00.000Z").unwrap();
        assert_eq!(period_of(at), "2026-03-10");
        let later = |s: &str| Timestamp::parse(s).unwrap();
        assert!(!period_expired(
            "2026-03-10",
            1,
            later("2026-03-10T23:59:59.000Z")
        ));
        assert!(period_expired(
            "2026-03-10",
            1,
            later("2026-03-11T00:00:00.000Z")
        ));
        assert!(!period_expired(
            "2026-03-10",
            30,
            later("2026-04-08T00:00:00.000Z")
        ));
        assert!(period_expired(
            "2026-03-10",
            30,
            later("2026-04-09T00:00:00.000Z")
        ));
    }

    /// The streamed canonical form is byte for byte the documented `json!` array, so
    /// ledgers written before it keep verifying.
    #[test]
    fn ledger_hash_is_the_documented_canonical_array() {
        let record = InvocationRecord {
            id: "inv-\"1\"\u{2028}é".into(),
            org_id: OrgId::new(),
            user_id: UserId::new(),
            surface: "openai".into(),
            provider: Some(ProviderType::OpenAi),
            model: None,
            status: InvocationStatus::Failed,
            error_name: Some("upstream_timeout".into()),
            request_id: None,
            labels: serde_json::from_str(r#"{"team":"a\\b","n":1}"#).unwrap(),
            tools: vec!["search".into()],
            metered: true,
            input_tokens: 12,
            output_tokens: u64::MAX,
            first_token_ms: Some(7),
            total_ms: 30,
            created_at: Timestamp::parse("2026-03-10T23:59:00.000Z").unwrap(),
            finished_at: Timestamp::parse("2026-03-10T23:59:01.500Z").unwrap(),
            content: None,
        };
        let row = StoredInvocation::new(&record, &record.id, 42, GENESIS_HASH).unwrap();
        let documented = json!([
            "switchboard.invocation.v1",
            row.prev_hash,
            row.seq,
            row.id,
            row.org_id,
            row.user_id,
            row.surface,
            row.provider,
            row.model,
            row.status,
            row.error_name,
            row.request_id,
            row.labels,
            row.tools,
            row.metered,
            row.input_tokens,
            row.output_tokens,
            row.first_token_ms,
            row.total_ms,
            row.created_at,
            row.finished_at,
        ])
        .to_string();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, documented.as_bytes());
        assert_eq!(row.hash, hex(digest.as_ref()));
    }

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let cursor = InvocationCursor {
            created_at: "2026-03-10T23:59:00.000Z".into(),
            id: "my|id".into(),
        };
        assert_eq!(InvocationCursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(InvocationCursor::decode("junk"), None);
        assert_eq!(InvocationCursor::decode(""), None);
    }
}
