//! The live side of the `Drift` RPC: the feature vectors and scores of one
//! model version's outcomes in a time range, newest first, and which
//! version to look at when the caller names none. Reads the `outcomes`
//! table through the `(model, version, scored_at_ms)` index.

use sqlx::Any;

use super::{Store, sql};
use crate::buckets::Range;
use crate::error::MonitorError;
use crate::fields::features_from_json;

/// One stored outcome as drift sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRow {
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
    pub async fn busiest_version(
        &self,
        model: &str,
        range: &Range,
    ) -> Result<Option<String>, MonitorError> {
        let mut n = 1;
        let statement = self.backend().sql(format!(
            "SELECT version, MIN(shadow), COUNT(*) FROM outcomes WHERE model = $1{} \
             GROUP BY version ORDER BY 2, 3 DESC, 1 LIMIT 1",
            range_clause(range, &mut n)
        ));
        let mut query = sqlx::query::<Any>(&statement).bind(model);
        for bound in [range.from_ms, range.to_ms].into_iter().flatten() {
            query = query.bind(bound);
        }
        let row = query.fetch_optional(self.pool()).await?;
        row.map(|row| sql::text(&row, 0)).transpose()
    }

    /// The feature vectors, scores and schema hashes of the outcomes of
    /// `model` `version` scored in `range`, newest first (by `scored_at_ms`,
    /// then `outcome_id`), at most `max_rows`.
    pub async fn live_rows(
        &self,
        model: &str,
        version: &str,
        range: &Range,
        max_rows: usize,
    ) -> Result<Vec<LiveRow>, MonitorError> {
        let mut n = 2;
        let clause = range_clause(range, &mut n);
        let statement = self.backend().sql(format!(
            "SELECT features, score, schema_hash FROM outcomes \
             WHERE model = $1 AND version = $2{clause} \
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
                        .map_err(MonitorError::Corrupt)?,
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
    fn range_clauses_number_their_placeholders() {
        let mut n = 2;
        let both = Range::from_wire(5, 9).unwrap();
        assert_eq!(
            range_clause(&both, &mut n),
            " AND scored_at_ms >= $3 AND scored_at_ms < $4"
        );
        assert_eq!(n, 4);
        let mut n = 1;
        let to = Range::from_wire(0, 9).unwrap();
        assert_eq!(range_clause(&to, &mut n), " AND scored_at_ms < $2");
        let mut n = 1;
        assert_eq!(range_clause(&Range::default(), &mut n), "");
        assert_eq!(n, 1);
    }
}
