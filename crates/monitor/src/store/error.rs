//! Why the store failed: the database could not be opened, migrated or
//! reached, a write raced another writer, or a stored row cannot be read.
//! A failure of the storage layer, never of the caller's request.

use std::path::PathBuf;

/// Why a [`Store`](super::Store) operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The SQLite file's directory could not be created.
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why it could not be created.
        source: std::io::Error,
    },
    /// The database URL names neither a SQLite file nor PostgreSQL.
    #[error(
        "database url {url:?} is not supported: expected sqlite://PATH, a file path or postgres://…"
    )]
    DatabaseUrl {
        /// The URL as configured.
        url: String,
    },
    /// A statement, a connection or the pool failed.
    #[error("database failed: {0}")]
    Database(#[from] sqlx::Error),
    /// The embedded migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Another writer inserted some of the outcomes between the check and
    /// the insert; the transaction was rolled back.
    #[error(
        "{inserted} of {expected} new outcomes were inserted: another writer changed the outcomes table meanwhile; nothing was stored, retry"
    )]
    ConcurrentWrite {
        /// Outcomes that should have been inserted.
        expected: u64,
        /// Outcomes the database reported inserted.
        inserted: u64,
    },
    /// A stored value cannot be read back as what it should hold.
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
}
