//! The storage layer: one [`Store`] over SQLite or PostgreSQL, with the
//! same embedded migrations and the same parameterized SQL on both (through
//! `sqlx::Any`). SQL only: rows and counts in, rows and counts out. The
//! application layer ([`crate::app`]) checks what callers send, builds the
//! rows and turns what comes back into answers; no wire type, validation or
//! telemetry lives here.
//!
//! Writes (outcomes, labels, events) are serialized: one writer at a time
//! inside the process (a `tokio::sync::Mutex`), and on PostgreSQL also
//! across processes (a transaction-scoped advisory lock), so the
//! read-then-write steps that keep `confusion_counts` in step with
//! `outcomes` and `labels` never race. Reads run concurrently.

mod alerts;
mod bucket_counts;
mod counters;
mod days;
mod error;
mod events;
mod features;
mod histogram;
mod labels;
mod migrations;
mod mistakes;
mod models;
mod outcomes;
mod score_bins;
mod scored;
mod sql;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use sqlx::ConnectOptions;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use crate::config::StoreConfig;

pub(crate) use alerts::{AlertChanges, AlertKey, AlertRow};
pub(crate) use bucket_counts::CountsFilter;
pub(crate) use counters::Counts;
pub use error::StorageError;
pub(crate) use events::NewEvent;
pub(crate) use features::{LiveRow, features_from_json, features_to_json};
pub(crate) use histogram::{HistogramFilter, ScoreHistogram};
pub(crate) use labels::{NewLabel, PairKey};
pub(crate) use mistakes::{MistakeFilter, MistakeKey, MistakeOrder, MistakeRow};
pub(crate) use models::Confusion;
pub use models::{ModelSummary, VersionSummary};
pub(crate) use outcomes::{NewItemError, NewOutcome};
pub(crate) use score_bins::{
    RESOLUTION as SCORE_BIN_RESOLUTION, ScoreCounts, bin_of as score_bin_of,
    lower_edge as score_bin_edge,
};

/// How often the SQLite WAL is checkpointed in the background.
pub(crate) const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// Key of the PostgreSQL advisory lock that serializes writers across
/// monitor processes sharing one database ("triad" in ASCII).
const PG_WRITE_LOCK: i64 = 0x0074_7269_6164;

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

impl Backend {
    /// `statement`, written with `$1, $2, …` in binding order, as this
    /// backend should receive it. PostgreSQL gets it unchanged. SQLite
    /// accepts `$N` too, but sqlx resolves each named parameter with
    /// `sqlite3_bind_parameter_name`, a linear scan: quadratic in the number
    /// of parameters (seconds for a 30 000-parameter insert). Plain `?`
    /// binds positionally, which is the same thing when the numbers run in
    /// order, as they do in every statement of this crate (`sql::values`
    /// and `sql::list` already write `?` on SQLite).
    pub(crate) fn sql(self, statement: String) -> String {
        match self {
            Self::Postgres => statement,
            Self::Sqlite if !statement.contains('$') => statement,
            Self::Sqlite => {
                let mut out = String::with_capacity(statement.len());
                let mut chars = statement.chars().peekable();
                let mut expected = 1_usize;
                while let Some(c) = chars.next() {
                    if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                        let mut n = 0_usize;
                        while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                            n = n * 10 + d as usize;
                            chars.next();
                        }
                        debug_assert_eq!(n, expected, "placeholders out of order in {statement}");
                        expected += 1;
                        out.push('?');
                    } else {
                        if c == '?' {
                            expected += 1;
                        }
                        out.push(c);
                    }
                }
                out
            }
        }
    }
}

/// The monitor's storage: outcomes, labels, counters, events. Cheap to
/// clone (one shared pool).
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: AnyPool,
    backend: Backend,
    write: Mutex<()>,
    config: StoreConfig,
}

/// A write transaction holding the process-wide writer lock.
pub(crate) struct Writer<'a> {
    pub tx: Transaction<'static, Any>,
    pub backend: Backend,
    /// Rows per multi-row statement.
    pub per: usize,
    _guard: MutexGuard<'a, ()>,
}

/// Where a database URL points, once resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Sqlite { path: PathBuf, url: String },
    Postgres { url: String },
}

fn resolve(url: &str) -> Result<Target, StorageError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres {
            url: url.to_owned(),
        });
    }
    let rest = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if !url.contains("://") && !url.is_empty() {
        url
    } else {
        return Err(StorageError::DatabaseUrl {
            url: url.to_owned(),
        });
    };
    let (path, params) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        // Each pooled connection would get its own empty in-memory
        // database.
        return Err(StorageError::DatabaseUrl {
            url: url.to_owned(),
        });
    }
    let mut params: Vec<&str> = params.split('&').filter(|p| !p.is_empty()).collect();
    if !params.iter().any(|p| p.starts_with("mode=")) {
        params.push("mode=rwc");
    }
    Ok(Target::Sqlite {
        path: PathBuf::from(path),
        url: format!("sqlite://{path}?{}", params.join("&")),
    })
}

fn create_parent(path: &Path) -> Result<(), StorageError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir {
                path: dir.to_owned(),
                source,
            })
        }
        _ => Ok(()),
    }
}

impl Store {
    /// Opens (creating when needed) the database of `config`, switches a
    /// SQLite file to WAL mode and runs the migrations.
    pub async fn open(config: &StoreConfig) -> Result<Self, StorageError> {
        install_default_drivers();
        let target = resolve(&config.database_url)?;
        let (url, backend, max_connections) = match &target {
            Target::Sqlite { path, url } => {
                create_parent(path)?;
                (url.clone(), Backend::Sqlite, config.max_connections.min(4))
            }
            Target::Postgres { url } => (url.clone(), Backend::Postgres, config.max_connections),
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(config.acquire_timeout)
            // A connection still inside a transaction when it comes back
            // (its COMMIT failed, e.g. on an I/O error) is closed, not
            // reused: sqlx would refuse every later BEGIN on it.
            .after_release(|conn, _meta| {
                use sqlx::Connection;
                let reusable = !conn.is_in_transaction();
                if !reusable {
                    tracing::warn!("closing a database connection left inside a transaction");
                }
                Box::pin(async move { Ok(reusable) })
            });
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // Durable at every checkpoint, never corrupt; the last
                    // commits may be lost on power failure (not on a crash
                    // of the process).
                    sqlx::query("PRAGMA synchronous = NORMAL")
                        .execute(&mut *conn)
                        .await?;
                    // 64 MiB of page cache (default 2 MiB): index pages of
                    // a growing outcomes table stay in memory.
                    sqlx::query("PRAGMA cache_size = -65536")
                        .execute(&mut *conn)
                        .await?;
                    // Checkpoints run in the background (see
                    // `checkpoint_in_background`), not in the writer's
                    // commit; this is only a backstop at 64 MiB of WAL.
                    sqlx::query("PRAGMA wal_autocheckpoint = 16384")
                        .execute(&mut *conn)
                        .await?;
                    // Sorts and temporary tables in memory: no temporary
                    // files, so no dependence on a writable temp directory
                    // (a FROM scratch image, a read-only root file system).
                    sqlx::query("PRAGMA temp_store = MEMORY")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        }
        // Multi-row statements run to hundreds of kilobytes: keep them out
        // of debug logs (slow ones are still logged, as warnings).
        let connect = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let pool = options.connect_with(connect).await?;
        if backend == Backend::Sqlite {
            // Persistent in the file: readers never block the writer.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        migrations::migrator().await?.run(&pool).await?;
        let target_name = match &target {
            Target::Sqlite { path, .. } => path.display().to_string(),
            Target::Postgres { .. } => "postgres".to_owned(),
        };
        tracing::info!(database = %target_name, ?backend, "monitor store open");
        let store = Self {
            inner: Arc::new(Inner {
                pool,
                backend,
                write: Mutex::new(()),
                config: config.clone(),
            }),
        };
        if backend == Backend::Sqlite {
            store.checkpoint_in_background();
        }
        Ok(store)
    }

    /// Copies the SQLite WAL into the database file every
    /// [`CHECKPOINT_INTERVAL`] on a reader connection (`PASSIVE`: never
    /// blocks the writer), so commits never wait for a checkpoint's fsync.
    /// Stops when the store is dropped or closed.
    fn checkpoint_in_background(&self) {
        let store = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = store.upgrade() else {
                    return;
                };
                if inner.pool.is_closed() {
                    return;
                }
                let done = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&inner.pool)
                    .await;
                if let Err(error) = done {
                    if inner.pool.is_closed() {
                        return;
                    }
                    tracing::warn!(%error, "background WAL checkpoint failed");
                }
            }
        });
    }

    /// The database the store runs on.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The connection pool, for plain SQL over the tables and views
    /// (`docs/monitoring.md`, "Plain SQL").
    pub fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// The store's settings.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// Closes every connection (waits for those in use).
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    /// Starts the one write transaction allowed at a time.
    pub(crate) async fn writer(&self) -> Result<Writer<'_>, StorageError> {
        let guard = self.inner.write.lock().await;
        let tx = match self.inner.backend {
            // Take SQLite's write lock up front: a deferred transaction that
            // reads first could fail to upgrade if another process wrote.
            Backend::Sqlite => self.inner.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = self.inner.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(PG_WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                tx
            }
        };
        Ok(Writer {
            tx,
            backend: self.inner.backend,
            per: self.rows_per_statement(),
            _guard: guard,
        })
    }

    pub(crate) fn rows_per_statement(&self) -> usize {
        self.inner
            .config
            .rows_per_statement
            .clamp(1, crate::config::MAX_ROWS_PER_STATEMENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_gets_positional_placeholders() {
        let sql = "INSERT INTO t VALUES ($1,$2),($3,$4) ON CONFLICT DO NOTHING".to_owned();
        assert_eq!(
            Backend::Sqlite.sql(sql.clone()),
            "INSERT INTO t VALUES (?,?),(?,?) ON CONFLICT DO NOTHING"
        );
        assert_eq!(Backend::Postgres.sql(sql.clone()), sql);
    }

    #[test]
    fn urls_resolve_to_sqlite_files_or_postgres() {
        assert_eq!(
            resolve("sqlite://./triad-data/monitor.db").unwrap(),
            Target::Sqlite {
                path: PathBuf::from("./triad-data/monitor.db"),
                url: "sqlite://./triad-data/monitor.db?mode=rwc".into(),
            }
        );
        assert_eq!(
            resolve("/var/lib/m.db").unwrap(),
            Target::Sqlite {
                path: PathBuf::from("/var/lib/m.db"),
                url: "sqlite:///var/lib/m.db?mode=rwc".into(),
            }
        );
        assert_eq!(
            resolve("sqlite:m.db?mode=rw").unwrap(),
            Target::Sqlite {
                path: PathBuf::from("m.db"),
                url: "sqlite://m.db?mode=rw".into(),
            }
        );
        assert_eq!(
            resolve("postgres://u@h/db").unwrap(),
            Target::Postgres {
                url: "postgres://u@h/db".into()
            }
        );
        for bad in ["mysql://h/db", "", "sqlite::memory:"] {
            assert!(
                matches!(resolve(bad), Err(StorageError::DatabaseUrl { .. })),
                "{bad}"
            );
        }
    }
}
