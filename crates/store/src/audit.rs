//! The per-organization audit hash chain, independent of the database.
//!
//! Canonical form: the entry's hash is the lower-case hex SHA-256 of the UTF-8 bytes of the
//! JSON array
//!
//! ```text
//! [prev_hash, seq, id, org_id, at, actor, action, resource, status, details]
//! ```
//!
//! serialized compactly by `serde_json`, where `seq` is a JSON integer and every other
//! element a JSON string — `details` included: it is the exact stored text of the details
//! JSON, not a re-serialized value, so the hash never depends on how a JSON library orders
//! keys or formats numbers after a round trip through the database. `at` is the stored
//! timestamp text. The first entry of an organization has seq 1 and a prev_hash of 64 zeros.

use aws_lc_rs::digest;
use serde_json::{Value, json};
use switchboard_core::OrgId;
use switchboard_core::records::{AuditEntry, Timestamp};

use crate::vault::hex;
use crate::{Actor, BrokenLink, StoreError, StoreResult};

/// The prev_hash of every organization's first entry.
pub(crate) const GENESIS_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// An audit row exactly as stored.
#[derive(Clone, Debug)]
pub(crate) struct StoredAudit {
    pub id: String,
    pub org_id: String,
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub resource: String,
    pub status: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl StoredAudit {
    /// Builds the next entry of a chain whose last entry is `last` (`None`: empty chain).
    pub fn next(
        org: OrgId,
        last: Option<(i64, String)>,
        actor: &Actor,
        event: &crate::AuditEvent,
    ) -> StoreResult<Self> {
        let (seq, prev_hash) = match last {
            Some((seq, hash)) => (seq + 1, hash),
            None => (1, GENESIS_HASH.to_owned()),
        };
        let mut row = Self {
            id: uuid::Uuid::now_v7().to_string(),
            org_id: org.to_string(),
            seq,
            at: Timestamp::now().to_string(),
            actor: actor.label.clone(),
            action: event.action.clone(),
            resource: event.resource.clone(),
            status: event.status.clone(),
            details: serde_json::to_string(&event.details).map_err(StoreError::corrupt)?,
            prev_hash,
            hash: String::new(),
        };
        row.hash = row.compute_hash()?;
        Ok(row)
    }

    /// The hash this row should carry, from its other fields (see the module docs).
    pub fn compute_hash(&self) -> StoreResult<String> {
        let canonical = serde_json::to_string(&json!([
            self.prev_hash,
            self.seq,
            self.id,
            self.org_id,
            self.at,
            self.actor,
            self.action,
            self.resource,
            self.status,
            self.details,
        ]))
        .map_err(StoreError::corrupt)?;
        Ok(hex(
            digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref()
        ))
    }

    pub fn to_entry(&self) -> StoreResult<AuditEntry> {
        Ok(AuditEntry {
            id: self.id.clone(),
            seq: self.seq,
            at: Timestamp::parse(&self.at).map_err(StoreError::corrupt)?,
            actor: self.actor.clone(),
            action: self.action.clone(),
            resource: self.resource.clone(),
            status: self.status.clone(),
            details: serde_json::from_str(&self.details).map_err(StoreError::corrupt)?,
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        })
    }
}

/// Walks one organization's rows in seq order and reports the first that breaks the chain.
pub(crate) struct ChainVerifier {
    org: OrgId,
    expected_seq: i64,
    prev_hash: String,
}

impl ChainVerifier {
    pub fn new(org: OrgId) -> Self {
        Self {
            org,
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
        }
    }

    /// The seq of the last verified entry (0 before the first).
    pub fn last_seq(&self) -> i64 {
        self.expected_seq - 1
    }

    pub fn check(&mut self, row: &StoredAudit) -> Option<BrokenLink> {
        let reason = if row.seq != self.expected_seq {
            Some(format!(
                "seq gap: expected {}, found {}",
                self.expected_seq, row.seq
            ))
        } else if row.org_id != self.org.to_string() {
            Some("entry belongs to another organization".to_owned())
        } else if row.prev_hash != self.prev_hash {
            Some("prev_hash does not match the previous entry's hash".to_owned())
        } else if row.compute_hash().ok().as_deref() != Some(row.hash.as_str()) {
            Some("hash does not match the entry's contents".to_owned())
        } else {
            None
        };
        match reason {
            Some(reason) => Some(BrokenLink {
                org_id: self.org,
                entry_id: row.id.clone(),
                seq: row.seq,
                reason,
            }),
            None => {
                self.expected_seq += 1;
                self.prev_hash = row.hash.clone();
                None
            }
        }
    }
}

/// `{"before": …, "after": …}`, the details of every management write.
pub(crate) fn change(before: Option<Value>, after: Option<Value>) -> Value {
    json!({ "before": before, "after": after })
}

/// A successful management write's audit event.
pub(crate) fn success(action: &str, resource: String, details: Value) -> crate::AuditEvent {
    crate::AuditEvent {
        action: action.to_owned(),
        resource,
        status: "success".to_owned(),
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: i64) -> crate::AuditEvent {
        success(
            "x.update",
            format!("thing:{n}"),
            json!({"n": n, "z": 1, "a": [1.5, "é"]}),
        )
    }

    #[test]
    fn a_chain_verifies_and_a_change_is_pinpointed() {
        let org = OrgId::new();
        let actor = Actor::system();
        let mut rows: Vec<StoredAudit> = Vec::new();
        for n in 0..4 {
            let last = rows.last().map(|r| (r.seq, r.hash.clone()));
            rows.push(StoredAudit::next(org, last, &actor, &event(n)).unwrap());
        }
        assert_eq!(rows[0].prev_hash, GENESIS_HASH);
        let mut v = ChainVerifier::new(org);
        assert!(rows.iter().all(|r| v.check(r).is_none()));

        rows[2].details = r#"{"n":99}"#.into();
        let mut v = ChainVerifier::new(org);
        let broken = rows.iter().find_map(|r| v.check(r)).unwrap();
        assert_eq!(broken.entry_id, rows[2].id);
        assert_eq!(broken.seq, 3);
    }

    #[test]
    fn a_removed_entry_is_a_gap() {
        let org = OrgId::new();
        let actor = Actor::system();
        let a = StoredAudit::next(org, None, &actor, &event(1)).unwrap();
        let b = StoredAudit::next(org, Some((a.seq, a.hash.clone())), &actor, &event(2)).unwrap();
        let c = StoredAudit::next(org, Some((b.seq, b.hash.clone())), &actor, &event(3)).unwrap();
        let mut v = ChainVerifier::new(org);
        assert!(v.check(&a).is_none());
        assert_eq!(v.check(&c).unwrap().entry_id, c.id);
    }

    #[test]
    fn entries_round_trip_to_records() {
        let org = OrgId::new();
        let row = StoredAudit::next(org, None, &Actor::cli(), &event(1)).unwrap();
        let entry = row.to_entry().unwrap();
        assert_eq!(entry.details["n"], 1);
        assert_eq!(entry.at.to_string(), row.at);
    }
}
