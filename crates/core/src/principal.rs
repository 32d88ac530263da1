//! The authenticated caller and what it may do.

use crate::ids::{OrgId, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A user's role inside its organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages providers, defaults, secrets, settings, users and tokens.
    Admin,
    /// Reads providers and defaults and uses the gateway.
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            other => Err(format!("unknown role '{other}' (expected admin or member)")),
        }
    }
}

/// Who is calling. Built only by authentication; the organization id every tenant query
/// uses comes from here, never from the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub email: String,
    pub role: Role,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The actor string written to audit entries and `createdBy`/`updatedBy`.
    pub fn actor(&self) -> &str {
        &self.email
    }
}
