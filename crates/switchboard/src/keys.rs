//! Where the master key comes from: `SWITCHBOARD_MASTER_KEY`, else the key file, which the
//! first SQLite start generates. PostgreSQL deployments must provide a key: several replicas
//! have to share it, so generating one on a single machine would be a trap.

use anyhow::{Context, Result, bail};
use switchboard_store::MasterKeyRing;

use crate::config::Resolved;

pub fn load(settings: &Resolved) -> Result<MasterKeyRing> {
    if let Some(value) = &settings.master_key {
        return MasterKeyRing::from_env_value(value).context("SWITCHBOARD_MASTER_KEY is invalid");
    }
    let may_create = settings.database_url.starts_with("sqlite:");
    let path = &settings.master_key_file;
    if !may_create && !path.exists() {
        bail!(
            "a master key is required with PostgreSQL: set SWITCHBOARD_MASTER_KEY or \
             SWITCHBOARD_MASTER_KEY_FILE"
        );
    }
    MasterKeyRing::load_or_create_file(path, may_create)
        .with_context(|| format!("cannot load the master key file {}", path.display()))
}
