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

use super::counters::{COUNT_COLUMNS, CounterKey, Counts, bind_counts, is_float_column};
use super::models::summaries;
use super::{Backend, ModelSummary, StorageError, Store, Writer, sql};
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
                .bind(day.last_hour_ms);
            query = bind_counts(query, c);
        }
        query.execute(&mut *w.tx).await?;
    }
    Ok(())
}

/// The days of one version, as [`Store::primary_days`] reads them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VersionDays {
    pub model: String,
    pub version: String,
    /// Start of each UTC day holding counters, and its counters, in day
    /// order.
    pub days: Vec<(i64, Counts)>,
}

/// The integer counters of [`COUNT_COLUMNS`] (every one but the float
/// sums), in order.
fn int_columns() -> impl Iterator<Item = &'static String> {
    COUNT_COLUMNS.iter().filter(|c| !is_float_column(c))
}

/// The float sums of [`COUNT_COLUMNS`], in order.
fn float_columns() -> impl Iterator<Item = &'static String> {
    COUNT_COLUMNS.iter().filter(|c| is_float_column(c))
}

/// One day of a version as one text value,
/// `day_ms,outcomes,…,null_…,score_sum,expected_…`: integers print exactly
/// as text on both databases; a float is printed with 17 significant
/// digits on SQLite (whose `CAST` keeps 15) and with PostgreSQL's
/// shortest exact form (its default since version 12), so each parses
/// back to the same bits.
fn day_text(backend: Backend) -> String {
    let float = |c: &str| match backend {
        Backend::Sqlite => format!("printf('%!.17g', {c})"),
        Backend::Postgres => format!("CAST({c} AS TEXT)"),
    };
    std::iter::once("CAST(day_ms AS TEXT)".to_owned())
        .chain(int_columns().map(|c| format!("CAST({c} AS TEXT)")))
        .chain(float_columns().map(|c| float(c)))
        .collect::<Vec<_>>()
        .join(" || ',' || ")
}

/// The day of `text` (one of [`day_text`]'s values).
fn parse_day(text: &str) -> Result<(i64, Counts), StorageError> {
    let corrupt = || StorageError::Corrupt(format!("day counters {text:?}"));
    let mut values = text.split(',');
    let mut int = || {
        values
            .next()
            .and_then(|n| n.parse::<i64>().ok())
            .ok_or_else(corrupt)
    };
    let day_ms = int()?;
    let mut c = Counts {
        outcomes: int()?,
        predicted_positive: int()?,
        labelled: int()?,
        tp: int()?,
        fp: int()?,
        fn_: int()?,
        tn: int()?,
        ..Counts::default()
    };
    for n in c.nulls.iter_mut() {
        *n = int()?;
    }
    c.not_scored = int()?;
    let floats = values
        .map(|n| n.parse::<f64>().map_err(|_| corrupt()))
        .collect::<Result<Vec<f64>, _>>()?;
    [
        c.score_sum,
        c.expected_tp,
        c.expected_fp,
        c.expected_fn,
        c.expected_tn,
    ] = floats.try_into().map_err(|_| corrupt())?;
    Ok((day_ms, c))
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
    /// `first_day_ms` to the one starting at `last_day_ms`, per version
    /// (ordered by model and version), in day order: one query for every model, answering one
    /// row per version (its days joined by `string_agg`, SQLite 3.44 or
    /// later, as bundled, and PostgreSQL): each row and value crossing the
    /// `sqlx::Any` driver costs far more than parsing it (on SQLite, a
    /// hand-over between threads per row and a copy per value), and 90
    /// days of a version are 2 700 values.
    pub(crate) async fn primary_days(
        &self,
        last_model: &str,
        first_day_ms: i64,
        last_day_ms: i64,
    ) -> Result<Vec<VersionDays>, StorageError> {
        let statement = self.backend().sql(format!(
            "SELECT model, version, string_agg({}, ';') FROM confusion_days \
             WHERE model <= $1 AND shadow = 0 AND day_ms >= $2 AND day_ms <= $3 \
             GROUP BY model, version",
            day_text(self.backend())
        ));
        let rows = sqlx::query::<Any>(&statement)
            .bind(last_model)
            .bind(first_day_ms)
            .bind(last_day_ms)
            .fetch_all(self.pool())
            .await?;
        let mut versions = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut days = sql::text(row, 2)?
                .split(';')
                .map(parse_day)
                .collect::<Result<Vec<_>, _>>()?;
            days.sort_unstable_by_key(|(day_ms, _)| *day_ms);
            versions.push(VersionDays {
                model: sql::text(row, 0)?,
                version: sql::text(row, 1)?,
                days,
            });
        }
        versions.sort_unstable_by(|a, b| (&a.model, &a.version).cmp(&(&b.model, &b.version)));
        Ok(versions)
    }
}

#[cfg(test)]
mod tests {
    use triad_features::MISSING_FLAG_FIELDS;

    use super::super::counters::NOT_SCORED_COLUMN;
    use super::*;

    #[test]
    fn the_packed_counters_are_the_integer_columns_in_order() {
        let ints: Vec<&str> = int_columns().map(String::as_str).collect();
        assert_eq!(
            ints[..7],
            [
                "outcomes",
                "predicted_positive",
                "labelled",
                "tp",
                "fp",
                "fn",
                "tn"
            ]
        );
        let nulls = &ints[7..ints.len() - 1];
        assert_eq!(nulls.len(), MISSING_FLAG_FIELDS.len());
        assert!(nulls.iter().all(|c| c.starts_with("null_")));
        assert_eq!(ints.last(), Some(&NOT_SCORED_COLUMN));
        let floats: Vec<&str> = float_columns().map(String::as_str).collect();
        assert_eq!(
            floats,
            [
                "score_sum",
                "expected_tp",
                "expected_fp",
                "expected_fn",
                "expected_tn"
            ]
        );
    }

    #[test]
    fn the_day_table_has_every_count_column() {
        let migration = include_str!("../../migrations/0006_alerts.sql");
        let (_, table) = migration
            .split_once("CREATE TABLE confusion_days (")
            .unwrap();
        let (table, _) = table.split_once(");").unwrap();
        for column in COUNT_COLUMNS.iter().map(String::as_str).chain(KEY_COLUMNS) {
            assert!(table.contains(&format!("    {column} ")), "{column}");
        }
    }

    /// `primary_days` and `model_days_summaries` equal `bucket_counts` per
    /// version (daily buckets) and `list_models`, on ragged data: two
    /// models, two primary versions and a shadow one, two thresholds,
    /// empty days, missing inputs, a label changed later.
    #[tokio::test]
    async fn the_day_reads_equal_the_hourly_reads() {
        use crate::app::Monitor;
        use crate::buckets::{DAY_MS, HOUR_MS, Range};
        use crate::config::StoreConfig;
        use crate::profiles::Profiles;
        use crate::store::CountsFilter;
        use triad_proto::v1::{
            ExpenseLineItem, Label, Outcome, RecordLabelsRequest, RecordOutcomesRequest,
        };

        const START: i64 = 1_763_942_400_000 - 20 * DAY_MS;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreConfig {
            database_url: format!("sqlite://{}/m.db", dir.path().display()),
            ..StoreConfig::default()
        })
        .await
        .unwrap();
        let monitor = Monitor::new(store.clone(), Profiles::disabled());
        let mut outcomes = Vec::new();
        let mut labels = Vec::new();
        for (n, (day, hour)) in [(0, 0), (0, 23), (1, 4), (4, 2), (4, 11), (6, 23)]
            .into_iter()
            .enumerate()
        {
            for k in 0..4_usize {
                let score = 0.05 + 0.13 * ((n * 4 + k) % 7) as f32;
                let (model, version, shadow, threshold) = match (day, k) {
                    (_, 3) => ("n", "1", false, 0.5),
                    (0 | 1, 0) => ("m", "1", false, 0.5),
                    (_, 0) => ("m", "2", false, 0.5),
                    (_, 1) => ("m", "2", false, 0.3),
                    _ => ("m", "s", true, 0.5),
                };
                let id = format!("{n}-{k}");
                outcomes.push(Outcome {
                    outcome_id: id.clone(),
                    request_id: format!("r{id}"),
                    scored_at_ms: START + day * DAY_MS + hour * HOUR_MS + 1_000 * n as i64,
                    model: model.into(),
                    version: version.into(),
                    schema_hash: "h".into(),
                    budget_id: format!("b{id}"),
                    itemization_id: format!("i{id}"),
                    score,
                    threshold,
                    matched: score >= threshold,
                    latency_ms: 1.0,
                    shadow,
                    line_item: (k % 2 == 0).then(|| ExpenseLineItem {
                        vendor_name_expense: Some("v".into()),
                        ..Default::default()
                    }),
                    features: vec![score],
                    ..Default::default()
                });
                if (n + k) % 3 != 0 {
                    labels.push(Label {
                        model: model.into(),
                        budget_id: format!("b{id}"),
                        itemization_id: format!("i{id}"),
                        label: (n + k) % 2 == 0,
                        source: "t".into(),
                        ..Default::default()
                    });
                }
            }
        }
        let request = RecordOutcomesRequest {
            outcomes,
            ..Default::default()
        };
        monitor.record_outcomes(&request, 0).await.unwrap();
        monitor
            .record_labels(&RecordLabelsRequest {
                labels: labels.clone(),
            })
            .await
            .unwrap();
        let mut changed = labels[0].clone();
        changed.label = !changed.label;
        monitor
            .record_labels(&RecordLabelsRequest {
                labels: vec![changed],
            })
            .await
            .unwrap();

        assert_eq!(
            store.model_days_summaries().await.unwrap(),
            store.list_models().await.unwrap()
        );
        let (first, last) = (START - DAY_MS, START + 8 * DAY_MS);
        let days = store.primary_days("n", first, last).await.unwrap();
        let mut versions = 0;
        for (model, version) in [("m", "1"), ("m", "2"), ("n", "1")] {
            let filter = CountsFilter {
                model: model.into(),
                version: Some(version.into()),
                include_shadow: false,
                range: Range {
                    from_ms: Some(first),
                    to_ms: Some(last + DAY_MS),
                },
                width: Width::Day,
            };
            let hourly = store.bucket_counts(&filter).await.unwrap();
            let daily: Vec<(i64, Counts)> = days
                .iter()
                .filter(|d| d.model == model && d.version == version)
                .flat_map(|d| d.days.clone())
                .collect();
            assert_eq!(daily.len(), hourly.len(), "{model} {version}");
            for ((day, d), (hour_day, h)) in daily.iter().zip(&hourly) {
                assert_eq!(day, hour_day);
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
                assert!(close(d.score_sum, h.score_sum) && close(d.expected_tp, h.expected_tp));
                assert!(close(d.expected_fp, h.expected_fp) && close(d.expected_fn, h.expected_fn));
                assert!(
                    close(d.expected_tn, h.expected_tn),
                    "{model} {version} {day}"
                );
                let ints = |c: &Counts| Counts {
                    score_sum: 0.0,
                    expected_tp: 0.0,
                    expected_fp: 0.0,
                    expected_fn: 0.0,
                    expected_tn: 0.0,
                    ..*c
                };
                assert_eq!(ints(d), ints(h), "{model} {version} {day}");
            }
            versions += 1;
        }
        assert_eq!(versions, 3);
        // No shadow version, and nothing past the last model.
        assert!(days.iter().all(|d| d.version != "s"));
        assert!(
            store
                .primary_days("m", first, last)
                .await
                .unwrap()
                .iter()
                .all(|d| d.model == "m")
        );
        assert_eq!(days.len(), versions);
        let days: Vec<(&str, &str, i64, Counts)> = days
            .iter()
            .flat_map(|v| {
                v.days
                    .iter()
                    .map(|(d, c)| (v.model.as_str(), v.version.as_str(), *d, *c))
            })
            .collect();
        assert!(days.iter().any(|d| d.3.nulls.iter().any(|n| *n > 0)));
        // The float sums cross as text and come back to the same bits.
        for d in &days {
            let stored: (f64, f64) = sqlx::query_as(
                "SELECT score_sum, expected_tp FROM confusion_days \
                 WHERE model = ? AND version = ? AND shadow = 0 AND day_ms = ?",
            )
            .bind(d.0)
            .bind(d.1)
            .bind(d.2)
            .fetch_one(store.pool())
            .await
            .unwrap();
            assert_eq!(
                (d.3.score_sum.to_bits(), d.3.expected_tp.to_bits()),
                (stored.0.to_bits(), stored.1.to_bits())
            );
        }
        assert!(days.iter().any(|d| d.3.tp + d.3.fp + d.3.fn_ > 0));
        store.close().await;
    }
}
