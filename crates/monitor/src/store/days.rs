//! `confusion_days` (migration `0006`): the hourly counters of
//! `confusion_counts` summed per (model, version, shadow, UTC day) over
//! thresholds, moved by the same deltas in the same transaction
//! ([`apply`], called by `counters::apply`), so a day's row always equals
//! summing its hourly rows (integers exactly; the float sums up to
//! rounding, as they are added in another order). It also keeps the first
//! and last hour of the day holding an outcome, so the model list it gives
//! equals `list_models`'.
//!
//! Why a table and not a grouped read of the hourly rows: alert
//! evaluation reads 90 days of every model, and SQLite takes about a
//! second to sum 216 000 hourly rows (100 models × 90 days) over their 27
//! counters however the query is grouped (docs/performance.md, "Alert
//! evaluation"); 9 000 daily rows read in a few tens of milliseconds.

use std::collections::HashMap;

use sqlx::Any;
use sqlx::any::AnyRow;
use triad_features::MISSING_FLAG_FIELDS;

use super::counters::{COUNT_COLUMNS, CounterKey, Counts};
use super::models::summaries;
use super::{ModelSummary, StorageError, Store, Writer, sql};
use crate::buckets::Width;

/// Key columns of a day row, in insert order.
const KEY_COLUMNS: [&str; 6] = [
    "model",
    "version",
    "shadow",
    "day_ms",
    "first_hour_ms",
    "last_hour_ms",
];

/// One day of one version: its counters, and the first and last hour
/// holding one.
struct Day {
    counts: Counts,
    first_hour_ms: i64,
    last_hour_ms: i64,
}

/// Adds the hourly `deltas` (zero ones already left out) to their days.
pub(crate) async fn apply(
    w: &mut Writer<'_>,
    deltas: &[(CounterKey, Counts)],
) -> Result<(), StorageError> {
    let mut days: HashMap<(&str, &str, bool, i64), Day> = HashMap::new();
    for (key, c) in deltas {
        let day = Width::Day.start(key.hour_ms);
        let entry = days
            .entry((&key.model, &key.version, key.shadow, day))
            .or_insert(Day {
                counts: Counts::default(),
                first_hour_ms: key.hour_ms,
                last_hour_ms: key.hour_ms,
            });
        entry.counts.add(c);
        entry.first_hour_ms = entry.first_hour_ms.min(key.hour_ms);
        entry.last_hour_ms = entry.last_hour_ms.max(key.hour_ms);
    }
    let days: Vec<_> = days.into_iter().collect();
    let cols = KEY_COLUMNS.len() + COUNT_COLUMNS.len();
    let mut updates: Vec<String> = COUNT_COLUMNS
        .iter()
        .map(|c| format!("{c} = confusion_days.{c} + excluded.{c}"))
        .collect();
    // Portable (no MIN/LEAST of two values on both databases).
    updates.push(
        "first_hour_ms = CASE WHEN excluded.first_hour_ms < confusion_days.first_hour_ms \
         THEN excluded.first_hour_ms ELSE confusion_days.first_hour_ms END"
            .to_owned(),
    );
    updates.push(
        "last_hour_ms = CASE WHEN excluded.last_hour_ms > confusion_days.last_hour_ms \
         THEN excluded.last_hour_ms ELSE confusion_days.last_hour_ms END"
            .to_owned(),
    );
    let head = format!(
        "INSERT INTO confusion_days ({}, {}) VALUES ",
        KEY_COLUMNS.join(", "),
        COUNT_COLUMNS.join(", ")
    );
    let tail = format!(
        " ON CONFLICT (model, version, shadow, day_ms) DO UPDATE SET {}",
        updates.join(", ")
    );
    let per = (w.per * 34 / cols).max(1);
    for chunk in days.chunks(per) {
        let statement = w.backend.sql(format!(
            "{head}{}{tail}",
            sql::values(w.backend, chunk.len(), cols, 1)
        ));
        let mut query = sqlx::query::<Any>(&statement);
        for ((model, version, shadow, day_ms), day) in chunk {
            let c = &day.counts;
            query = query
                .bind(*model)
                .bind(*version)
                .bind(i64::from(*shadow))
                .bind(*day_ms)
                .bind(day.first_hour_ms)
                .bind(day.last_hour_ms)
                .bind(c.outcomes)
                .bind(c.predicted_positive)
                .bind(c.labelled)
                .bind(c.tp)
                .bind(c.fp)
                .bind(c.fn_)
                .bind(c.tn)
                .bind(c.score_sum);
            for n in c.nulls {
                query = query.bind(n);
            }
            query = query
                .bind(c.expected_tp)
                .bind(c.expected_fp)
                .bind(c.expected_fn)
                .bind(c.expected_tn)
                .bind(c.not_scored);
        }
        query.execute(&mut *w.tx).await?;
    }
    Ok(())
}

/// The day of one version, as [`Store::primary_days`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VersionDay {
    pub model: String,
    pub version: String,
    /// Start of the UTC day.
    pub day_ms: i64,
    pub counts: Counts,
}

/// [`COUNT_COLUMNS`] decoded from `row`, starting at column `first`.
fn counts_at(row: &AnyRow, first: usize) -> Result<Counts, StorageError> {
    const NULLS: usize = 8;
    let expected = NULLS + MISSING_FLAG_FIELDS.len();
    let mut c = Counts {
        outcomes: sql::int(row, first)?,
        predicted_positive: sql::int(row, first + 1)?,
        labelled: sql::int(row, first + 2)?,
        tp: sql::int(row, first + 3)?,
        fp: sql::int(row, first + 4)?,
        fn_: sql::int(row, first + 5)?,
        tn: sql::int(row, first + 6)?,
        score_sum: sql::float(row, first + 7)?,
        nulls: [0; MISSING_FLAG_FIELDS.len()],
        expected_tp: sql::float(row, first + expected)?,
        expected_fp: sql::float(row, first + expected + 1)?,
        expected_fn: sql::float(row, first + expected + 2)?,
        expected_tn: sql::float(row, first + expected + 3)?,
        not_scored: sql::int(row, first + expected + 4)?,
    };
    for (i, n) in c.nulls.iter_mut().enumerate() {
        *n = sql::int(row, first + NULLS + i)?;
    }
    Ok(c)
}

impl Store {
    /// Every model with outcomes, by name, read from the daily rows: the
    /// same answer as [`Store::list_models`] from a table 24 times
    /// smaller.
    pub(crate) async fn model_days_summaries(&self) -> Result<Vec<ModelSummary>, StorageError> {
        let rows = sqlx::query::<Any>(
            "SELECT model, version, shadow, CAST(SUM(outcomes) AS BIGINT), \
             CAST(SUM(labelled) AS BIGINT), MIN(first_hour_ms), MAX(last_hour_ms) \
             FROM confusion_days GROUP BY model, version, shadow \
             ORDER BY model, shadow, version",
        )
        .fetch_all(self.pool())
        .await?;
        summaries(&rows)
    }

    /// The days of the primary (non-shadow) versions of the models up to
    /// `last_model` by name that hold counters, from the day starting at
    /// `first_day_ms` to the one starting at `last_day_ms`, ordered by
    /// model, version and day: one query for every model.
    pub(crate) async fn primary_days(
        &self,
        last_model: &str,
        first_day_ms: i64,
        last_day_ms: i64,
    ) -> Result<Vec<VersionDay>, StorageError> {
        let statement = self.backend().sql(format!(
            "SELECT model, version, day_ms, {} FROM confusion_days \
             WHERE model <= $1 AND shadow = 0 AND day_ms >= $2 AND day_ms <= $3 \
             ORDER BY model, version, day_ms",
            COUNT_COLUMNS.join(", ")
        ));
        let rows = sqlx::query::<Any>(&statement)
            .bind(last_model)
            .bind(first_day_ms)
            .bind(last_day_ms)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(VersionDay {
                    model: sql::text(row, 0)?,
                    version: sql::text(row, 1)?,
                    day_ms: sql::int(row, 2)?,
                    counts: counts_at(row, 3)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_table_has_every_count_column() {
        let migration = include_str!("../../migrations/0006_alerts.sql");
        let (_, table) = migration
            .split_once("CREATE TABLE confusion_days (")
            .unwrap();
        let (table, _) = table.split_once(");").unwrap();
        let added = include_str!("../../migrations/0007_mistake_margin_and_days_not_scored.sql");
        for column in COUNT_COLUMNS.iter().map(String::as_str).chain(KEY_COLUMNS) {
            assert!(
                table.contains(&format!("    {column} "))
                    || added.contains(&format!("ALTER TABLE confusion_days ADD COLUMN {column} ")),
                "{column}"
            );
        }
    }
}
