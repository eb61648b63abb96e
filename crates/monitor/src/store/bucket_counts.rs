//! The confusion counters summed per time bucket, for `QueryMetrics` and
//! `Anomalies`: never a scan of the raw outcomes.

use std::collections::BTreeMap;

use sqlx::Any;
use triad_features::MISSING_FLAG_FIELDS;

use super::counters::{COUNT_COLUMNS, Counts, is_float_column};
use super::{StorageError, Store, sql};
use crate::buckets::{HOUR_MS, Range, Width};

/// Which counters to sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CountsFilter {
    pub model: String,
    /// `None`: every version.
    pub version: Option<String>,
    pub include_shadow: bool,
    /// Applied at hour resolution: the hours overlapping the range.
    pub range: Range,
    pub width: Width,
}

impl Store {
    /// The summed counters of each bucket holding counters, in time order.
    pub(crate) async fn bucket_counts(
        &self,
        filter: &CountsFilter,
    ) -> Result<Vec<(i64, Counts)>, StorageError> {
        let sums: Vec<String> = COUNT_COLUMNS
            .iter()
            .map(|c| {
                if is_float_column(c) {
                    format!("SUM({c})")
                } else {
                    format!("CAST(SUM({c}) AS BIGINT)")
                }
            })
            .collect();
        // Buckets are summed in SQL, grouped by their number (an
        // expression that cannot overflow on any stored hour); the
        // smallest hour of each group gives its start.
        let mut statement = format!(
            "SELECT {}, MIN(hour_ms), {} FROM confusion_counts WHERE model = $1",
            filter.width.sql_number("hour_ms"),
            sums.join(", ")
        );
        let mut n = 1;
        let mut next = || {
            n += 1;
            n
        };
        if filter.version.is_some() {
            statement += &format!(" AND version = ${}", next());
        }
        if !filter.include_shadow {
            statement += " AND shadow = 0";
        }
        if filter.range.from_ms.is_some() {
            statement += &format!(" AND hour_ms > ${}", next());
        }
        if filter.range.to_ms.is_some() {
            statement += &format!(" AND hour_ms < ${}", next());
        }
        statement += " GROUP BY 1 ORDER BY 1";
        let statement = self.backend().sql(statement);
        let mut query = sqlx::query::<Any>(&statement).bind(filter.model.as_str());
        if let Some(version) = &filter.version {
            query = query.bind(version.as_str());
        }
        if let Some(from) = filter.range.from_ms {
            query = query.bind(from - HOUR_MS);
        }
        if let Some(to) = filter.range.to_ms {
            query = query.bind(to);
        }
        let rows = query.fetch_all(self.pool()).await?;

        // Columns: the bucket number, its first hour, then COUNT_COLUMNS:
        // eight counts, one null count per input field, four expected
        // cells, not_scored.
        const FIRST_NULL: usize = 10;
        const FIRST_EXPECTED: usize = FIRST_NULL + MISSING_FLAG_FIELDS.len();
        let mut buckets: BTreeMap<i64, Counts> = BTreeMap::new();
        for row in &rows {
            let start = filter.width.start(sql::int(row, 1)?);
            let mut c = Counts {
                outcomes: sql::int(row, 2)?,
                predicted_positive: sql::int(row, 3)?,
                labelled: sql::int(row, 4)?,
                tp: sql::int(row, 5)?,
                fp: sql::int(row, 6)?,
                fn_: sql::int(row, 7)?,
                tn: sql::int(row, 8)?,
                score_sum: sql::float(row, 9)?,
                nulls: [0; MISSING_FLAG_FIELDS.len()],
                expected_tp: sql::float(row, FIRST_EXPECTED)?,
                expected_fp: sql::float(row, FIRST_EXPECTED + 1)?,
                expected_fn: sql::float(row, FIRST_EXPECTED + 2)?,
                expected_tn: sql::float(row, FIRST_EXPECTED + 3)?,
                not_scored: sql::int(row, FIRST_EXPECTED + 4)?,
            };
            for (i, n) in c.nulls.iter_mut().enumerate() {
                *n = sql::int(row, FIRST_NULL + i)?;
            }
            buckets.entry(start).or_default().add(&c);
        }
        Ok(buckets.into_iter().collect())
    }
}
