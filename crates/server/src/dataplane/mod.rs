//! What the request path reads instead of the database: per-organization configuration
//! snapshots and verified tokens, loaded on first use and refreshed when the store reports a
//! change (from this process, another replica or the CLI).

pub mod snapshot;
pub mod tokens;

pub use snapshot::{OrgSnapshot, Snapshots};
