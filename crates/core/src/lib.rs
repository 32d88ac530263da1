//! Switchboard's domain: identifiers, principals and roles, provider types and their
//! configuration rules, the built-in model catalog, and the named errors of the Port API.
//!
//! Nothing in this crate does I/O, so every rule here is unit-testable in isolation and
//! shared unchanged by the store, the server and the CLI.

pub mod catalog;
pub mod config;
pub mod defaults;
pub mod egress;
pub mod error;
pub mod ids;
pub mod names;
pub mod principal;
pub mod provider;
pub mod records;
pub mod resolve;
pub mod secret;

pub use error::{ErrorName, PortError};
pub use ids::{OrgId, UserId};
pub use principal::{Principal, Role};
pub use provider::ProviderType;
pub use secret::{SecretValue, redact_serde_message};
