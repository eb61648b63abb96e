//! The `features` column of `outcomes` (a JSON array, read back bit for
//! bit), and the live side of the `Drift` RPC: the feature vectors and
//! scores of one model version's outcomes in a time range, newest first,
//! and which version to look at when the caller names none. Reads the
//! `outcomes` table through the `(model, version, scored_at_ms)` index.

use sqlx::Any;

use super::scored::SCORED_SQL;
use super::{StorageError, Store, sql};
use crate::buckets::{HOUR_MS, Range};

/// The feature vector as a JSON array, NaN and infinities as `null`, each
/// number in the shortest form that reads back to the same `f32`.
pub(crate) fn features_to_json(features: &[f32]) -> String {
    serde_json::to_string(features).unwrap_or_else(|_| "[]".to_owned())
}

/// Reads [`features_to_json`]'s output back (`null` as NaN). Each number
/// is parsed straight to `f32`, so every value reads back bit for bit.
pub(crate) fn features_from_json(text: &str) -> Result<Vec<f32>, String> {
    let inner = text
        .trim()
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(|| format!("features is not a JSON array: {text:?}"))?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split(',')
        .map(|v| match v.trim() {
            "null" => Ok(f32::NAN),
            number => number
                .parse::<f32>()
                .map_err(|_| format!("features holds {number:?}: expected a number or null")),
        })
        .collect()
}

/// One stored outcome as drift sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveRow {
    /// The feature vector the model scored, in schema order (NaN =
    /// missing).
    pub features: Vec<f32>,
    pub score: f64,
    pub schema_hash: String,
}

/// ` AND scored_at_ms >= $n AND scored_at_ms < $n+1` for the bounds of
/// `range` that are set, numbering placeholders from `next`.
fn range_clause(range: &Range, next: &mut usize) -> String {
    let mut clause = String::new();
    if range.from_ms.is_some() {
        *next += 1;
        clause += &format!(" AND scored_at_ms >= ${next}");
    }
    if range.to_ms.is_some() {
        *next += 1;
        clause += &format!(" AND scored_at_ms < ${next}");
    }
    clause
}

impl Store {
    /// The version of `model` with the most outcomes scored in `range`:
    /// versions that served callers before shadow ones, then the most
    /// outcomes, then the smallest name. `None` when there is no outcome.
    /// Counted from the hourly counters (the hours that overlap `range`, as
    /// `QueryMetrics` counts them), so its cost is the hours in range, not
    /// the outcomes: over a week of 10 million outcomes, reading the
    /// outcomes themselves took seconds.
    pub(crate) async fn busiest_version(
        &self,
        model: &str,
        range: &Range,
    ) -> Result<Option<String>, StorageError> {
        let mut statement =
            String::from("SELECT version FROM confusion_counts WHERE model = $1 AND outcomes > 0");
        let mut n = 1;
        if range.from_ms.is_some() {
            n += 1;
            statement += &format!(" AND hour_ms > ${n}");
        }
        if range.to_ms.is_some() {
            n += 1;
            statement += &format!(" AND hour_ms < ${n}");
        }
        // The aggregates only order: PostgreSQL's SUM of BIGINT is NUMERIC,
        // which the Any driver cannot decode.
        statement += " GROUP BY version ORDER BY MIN(shadow), SUM(outcomes) DESC, version LIMIT 1";
        let statement = self.backend().sql(statement);
        let mut query = sqlx::query::<Any>(&statement).bind(model);
        if let Some(from) = range.from_ms {
            query = query.bind(from - HOUR_MS);
        }
        if let Some(to) = range.to_ms {
            query = query.bind(to);
        }
        let row = query.fetch_optional(self.pool()).await?;
        row.map(|row| sql::text(&row, 0)).transpose()
    }

    /// The feature vectors, scores and schema hashes of the outcomes of
    /// `model` `version` scored in `range`, newest first (by `scored_at_ms`,
    /// then `outcome_id`), at most `max_rows`.
    pub(crate) async fn live_rows(
        &self,
        model: &str,
        version: &str,
        range: &Range,
        max_rows: usize,
    ) -> Result<Vec<LiveRow>, StorageError> {
        let mut n = 2;
        let clause = range_clause(range, &mut n);
        let statement = self.backend().sql(format!(
            "SELECT features, score, schema_hash FROM outcomes \
             WHERE model = $1 AND version = $2 AND {SCORED_SQL}{clause} \
             ORDER BY scored_at_ms DESC, outcome_id DESC LIMIT ${}",
            n + 1
        ));
        let mut query = sqlx::query::<Any>(&statement).bind(model).bind(version);
        for bound in [range.from_ms, range.to_ms].into_iter().flatten() {
            query = query.bind(bound);
        }
        let limit = i64::try_from(max_rows).unwrap_or(i64::MAX);
        let rows = query.bind(limit).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                Ok(LiveRow {
                    features: features_from_json(&sql::text(row, 0)?)
                        .map_err(StorageError::Corrupt)?,
                    score: sql::float(row, 1)?,
                    schema_hash: sql::text(row, 2)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_round_trip_with_missing_values() {
        let features = [0.1_f32, f32::NAN, -3.5e-8, 1e30, f32::INFINITY, 0.0];
        let json = features_to_json(&features);
        assert_eq!(json, "[0.1,null,-3.5e-8,1e+30,null,0.0]");
        let back = features_from_json(&json).unwrap();
        assert_eq!(back.len(), 6);
        for (a, b) in features.iter().zip(&back) {
            if a.is_finite() {
                assert_eq!(a.to_bits(), b.to_bits());
            } else {
                assert!(b.is_nan());
            }
        }
    }

    #[test]
    fn range_clauses_number_their_placeholders() {
        let mut n = 2;
        let both = Range {
            from_ms: Some(5),
            to_ms: Some(9),
        };
        assert_eq!(
            range_clause(&both, &mut n),
            " AND scored_at_ms >= $3 AND scored_at_ms < $4"
        );
        assert_eq!(n, 4);
        let mut n = 1;
        let to = Range {
            from_ms: None,
            to_ms: Some(9),
        };
        assert_eq!(range_clause(&to, &mut n), " AND scored_at_ms < $2");
        let mut n = 1;
        assert_eq!(range_clause(&Range::default(), &mut n), "");
        assert_eq!(n, 1);
    }
}
