//! First start: an empty database gets an organization `default` with an admin
//! `admin@localhost`, whose API token and one-time UI password are printed once.

use switchboard_core::SecretValue;
use switchboard_store::{NewOrganization, Store, StoreResult};

pub const DEFAULT_ORG: &str = "default";
pub const DEFAULT_ADMIN: &str = "admin@localhost";

/// What the first start created; `None` when the database already had organizations.
pub struct FirstStart {
    pub created: NewOrganization,
    pub password: SecretValue,
}

pub async fn ensure_default_org(store: &dyn Store) -> StoreResult<Option<FirstStart>> {
    if store.has_organizations().await? {
        return Ok(None);
    }
    let password = SecretValue::new(uuid::Uuid::new_v4().simple().to_string());
    let created = store
        .create_org(DEFAULT_ORG, DEFAULT_ADMIN, Some(&password))
        .await?;
    Ok(Some(FirstStart { created, password }))
}

impl FirstStart {
    /// The banner printed on stdout (never into the log) on first start.
    pub fn banner(&self) -> String {
        format!(
            "\nSwitchboard first start: created organization '{org}' with admin '{email}'.\n\
             Admin API token (shown once): {token}\n\
             Admin UI password (shown once): {password}\n",
            org = self.created.org.name,
            email = self.created.admin.user.email,
            token = self.created.admin.token.token.expose(),
            password = self.password.expose(),
        )
    }
}
