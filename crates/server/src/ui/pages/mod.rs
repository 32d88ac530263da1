//! One module per page (or group of pages).

pub mod ai;
pub mod audit;
pub mod data;
pub mod invocations;
pub mod provider_fields;
pub mod providers;
pub mod secrets;
pub mod tokens;
pub mod usage;
pub mod users;

use serde::Deserialize;

/// `?done=<notice>`: which success message to show after a redirect.
#[derive(Deserialize, Default)]
pub struct Done {
    pub done: Option<String>,
}
