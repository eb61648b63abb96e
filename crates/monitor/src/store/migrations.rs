//! The schema's migrations (`crates/monitor/migrations/*.sql`), embedded in
//! the binary and handed to sqlx's migrator at open.
//!
//! Embedded with `include_str!` rather than `sqlx::migrate!`: the macro
//! compiles a second copy of sqlx (SQLite's C code included) for the build
//! host, a sizeable share of a first build (docs/performance.md, "Build
//! time"). sqlx derives each migration's checksum from its SQL text, so a
//! database migrated by either way is accepted by the other; a test checks
//! this list against the directory as sqlx itself reads it.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};

/// Every migration, in order: its version and description (the file name's
/// `<VERSION>_<DESCRIPTION>.sql`, underscores read as spaces, as sqlx reads
/// them) and its SQL.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "monitor",
        include_str!("../../migrations/0001_monitor.sql"),
    ),
    (
        2,
        "estimates and drift",
        include_str!("../../migrations/0002_estimates_and_drift.sql"),
    ),
    (
        3,
        "correlation id",
        include_str!("../../migrations/0003_correlation_id.sql"),
    ),
    (
        4,
        "explanations and gates",
        include_str!("../../migrations/0004_explanations_and_gates.sql"),
    ),
    (
        5,
        "score bins",
        include_str!("../../migrations/0005_score_bins.sql"),
    ),
    (
        6,
        "alerts",
        include_str!("../../migrations/0006_alerts.sql"),
    ),
    (
        7,
        "mistake margin",
        include_str!("../../migrations/0007_mistake_margin.sql"),
    ),
];

/// [`MIGRATIONS`] as a source for sqlx's [`Migrator`].
#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// The migrator that brings a database to the current schema.
pub(crate) async fn migrator() -> Result<Migrator, MigrateError> {
    Migrator::new(Embedded).await
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The embedded list is the directory, as `sqlx::migrate!` and
    /// `sqlx migrate run` read it: same versions, descriptions, SQL and
    /// checksums, same order, nothing missing.
    #[tokio::test]
    async fn the_embedded_migrations_are_the_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let from_dir = Migrator::new(dir.as_path()).await.unwrap();
        let embedded = migrator().await.unwrap();
        let summary = |migrator: &Migrator| {
            migrator
                .iter()
                .map(|m| {
                    (
                        m.version,
                        m.description.to_string(),
                        m.sql.to_string(),
                        m.checksum.to_vec(),
                        m.no_tx,
                        m.migration_type,
                    )
                })
                .collect::<Vec<_>>()
        };
        assert!(!summary(&from_dir).is_empty());
        assert_eq!(summary(&embedded), summary(&from_dir));
    }
}
