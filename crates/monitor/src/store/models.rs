//! Which models and versions have outcomes, and their recent confusion
//! counts: for the dashboard's model list and the Prometheus gauges. Read
//! from the hourly counters only.

use sqlx::Any;

use super::{StorageError, Store, sql};

/// One version of a model (primary or shadow) with outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSummary {
    /// The version's name.
    pub version: String,
    /// Whether it is scored in the shadow of a primary version.
    pub shadow: bool,
    /// Its outcomes.
    pub outcomes: i64,
    /// Its outcomes with a label.
    pub labelled: i64,
    /// Start of the first UTC hour holding one of its outcomes.
    pub first_hour_ms: i64,
    /// Start of the last UTC hour holding one of its outcomes.
    pub last_hour_ms: i64,
}

/// A model with outcomes and its versions, primary versions first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSummary {
    /// The model's name.
    pub model: String,
    /// Its versions with outcomes: primary ones first, then by name.
    pub versions: Vec<VersionSummary>,
}

impl ModelSummary {
    /// Outcomes of the primary (non-shadow) versions.
    pub fn outcomes(&self) -> i64 {
        self.primary().map(|v| v.outcomes).sum()
    }

    /// Labelled outcomes of the primary versions.
    pub fn labelled(&self) -> i64 {
        self.primary().map(|v| v.labelled).sum()
    }

    /// The last hour holding an outcome, shadow versions included.
    pub fn last_hour_ms(&self) -> Option<i64> {
        self.versions.iter().map(|v| v.last_hour_ms).max()
    }

    fn primary(&self) -> impl Iterator<Item = &VersionSummary> {
        self.versions.iter().filter(|v| !v.shadow)
    }
}

/// Summed confusion cells of one model's primary versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Confusion {
    /// Outcomes, labelled or not.
    pub outcomes: i64,
    pub tp: i64,
    pub fp: i64,
    pub fn_: i64,
}

const SUMMARY_COLUMNS: &str = "model, version, shadow, CAST(SUM(outcomes) AS BIGINT), \
     CAST(SUM(labelled) AS BIGINT), MIN(hour_ms), MAX(hour_ms)";

impl Store {
    /// Every model with outcomes, by name.
    pub async fn list_models(&self) -> Result<Vec<ModelSummary>, StorageError> {
        let statement = format!(
            "SELECT {SUMMARY_COLUMNS} FROM confusion_counts \
             GROUP BY model, version, shadow ORDER BY model, shadow, version"
        );
        let rows = sqlx::query::<Any>(&statement)
            .fetch_all(self.pool())
            .await?;
        summaries(&rows)
    }

    /// One model's summary, `None` when it has no outcome.
    pub async fn model_summary(&self, model: &str) -> Result<Option<ModelSummary>, StorageError> {
        let statement = self.backend().sql(format!(
            "SELECT {SUMMARY_COLUMNS} FROM confusion_counts WHERE model = $1 \
             GROUP BY model, version, shadow ORDER BY shadow, version"
        ));
        let rows = sqlx::query::<Any>(&statement)
            .bind(model)
            .fetch_all(self.pool())
            .await?;
        Ok(summaries(&rows)?.into_iter().next())
    }

    /// How many outcomes of `model` (every version, shadow ones included)
    /// were scored in the hours starting at or after `from_hour_ms`, and
    /// the last of those hours; `None` when there is none. The dashboard
    /// asks for the hours after now: outcomes stored before the monitor
    /// refused times in the future.
    pub(crate) async fn outcomes_from_hour(
        &self,
        model: &str,
        from_hour_ms: i64,
    ) -> Result<Option<(i64, i64)>, StorageError> {
        let statement = self.backend().sql(
            "SELECT CAST(SUM(outcomes) AS BIGINT), MAX(hour_ms) FROM confusion_counts \
             WHERE model = $1 AND hour_ms >= $2"
                .to_owned(),
        );
        let row = sqlx::query::<Any>(&statement)
            .bind(model)
            .bind(from_hour_ms)
            .fetch_one(self.pool())
            .await?;
        Ok(sql::opt_int(&row, 0)?.zip(sql::opt_int(&row, 1)?))
    }

    /// Per model, the confusion cells of its primary versions' outcomes
    /// scored in the hours starting at or after `since_ms`.
    pub(crate) async fn recent_confusion(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(String, Confusion)>, StorageError> {
        let statement = self.backend().sql(
            "SELECT model, CAST(SUM(tp) AS BIGINT), CAST(SUM(fp) AS BIGINT), \
             CAST(SUM(fn) AS BIGINT), CAST(SUM(outcomes) AS BIGINT) FROM confusion_counts \
             WHERE shadow = 0 AND hour_ms >= $1 GROUP BY model ORDER BY model"
                .to_owned(),
        );
        let rows = sqlx::query::<Any>(&statement)
            .bind(since_ms)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    sql::text(row, 0)?,
                    Confusion {
                        outcomes: sql::int(row, 4)?,
                        tp: sql::int(row, 1)?,
                        fp: sql::int(row, 2)?,
                        fn_: sql::int(row, 3)?,
                    },
                ))
            })
            .collect()
    }
}

/// Folds rows of [`SUMMARY_COLUMNS`], ordered by model, into summaries.
pub(super) fn summaries(rows: &[sqlx::any::AnyRow]) -> Result<Vec<ModelSummary>, StorageError> {
    let mut out: Vec<ModelSummary> = Vec::new();
    for row in rows {
        let model = sql::text(row, 0)?;
        let version = VersionSummary {
            version: sql::text(row, 1)?,
            shadow: sql::int(row, 2)? != 0,
            outcomes: sql::int(row, 3)?,
            labelled: sql::int(row, 4)?,
            first_hour_ms: sql::int(row, 5)?,
            last_hour_ms: sql::int(row, 6)?,
        };
        match out.last_mut() {
            Some(last) if last.model == model => last.versions.push(version),
            _ => out.push(ModelSummary {
                model,
                versions: vec![version],
            }),
        }
    }
    Ok(out)
}
