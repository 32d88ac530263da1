//! The store's one error type.
//!
//! Messages name what went wrong in terms an operator can act on, and never carry secret
//! values, key material, tokens or password hashes: errors end up in logs and responses.

/// Everything a [`crate::Store`] call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The addressed row does not exist (or belongs to another organization).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was violated (organization name, email, secret name).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The change would leave an organization without an active admin (demoting,
    /// disabling or deleting the last one).
    #[error("the organization's last active admin cannot be demoted, disabled or deleted")]
    LastAdmin,
    /// The input was rejected before reaching the database.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Encryption or decryption failed: wrong key, tampered or misplaced ciphertext.
    /// Deliberately without details, which could help an attacker.
    #[error("cryptographic operation failed")]
    Crypto,
    /// The master key ring could not be loaded or does not fit the database.
    #[error("master key: {0}")]
    Key(String),
    /// The database URL is malformed or names an unsupported back end.
    #[error("database url: {0}")]
    Url(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A schema migration failed; the database is left at the last applied version.
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: String,
        #[source]
        source: sqlx::Error,
    },
    /// Stored data could not be interpreted (a bug or manual tampering).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// Maps a unique-constraint violation to [`StoreError::Conflict`] with `what`,
    /// passing every other error through.
    pub(crate) fn conflict_on_unique(err: sqlx::Error, what: &str) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(what.to_owned())
            }
            _ => StoreError::Database(err),
        }
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(what.to_string())
    }
}
