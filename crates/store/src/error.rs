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
    /// A conditional write found the row changed (or gone) since the read it was computed
    /// from; nothing was written. The caller reads again and recomputes.
    #[error("the record changed since it was read")]
    Stale,
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
    /// The database did not answer within the call deadline (frozen, unreachable or
    /// locked); the call was abandoned.
    #[error("the database did not answer within {0:?}")]
    Timeout(std::time::Duration),
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

    /// Whether waiting can help: the database (or its disk) is unavailable for a while, as
    /// opposed to a request it will never accept.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Timeout(_) | StoreError::Io(_) => true,
            StoreError::Database(error) => {
                !matches!(
                    error,
                    sqlx::Error::Database(_)
                        | sqlx::Error::RowNotFound
                        | sqlx::Error::ColumnNotFound(_)
                        | sqlx::Error::ColumnDecode { .. }
                        | sqlx::Error::Decode(_)
                        | sqlx::Error::TypeNotFound { .. }
                ) || is_busy(error)
            }
            _ => false,
        }
    }

    /// A row that names a missing parent (an unknown organization) is `NotFound`.
    pub(crate) fn not_found_on_foreign_key(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
            _ => StoreError::Database(err),
        }
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(what.to_string())
    }
}

/// SQLite's "database is locked" / "busy": another writer holds the lock.
fn is_busy(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            matches!(db.code().as_deref(), Some("5" | "6" | "517" | "262"))
                || db.message().contains("database is locked")
        }
        _ => false,
    }
}
