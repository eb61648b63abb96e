//! The dashboard's score histogram: stored outcomes' scores in a time
//! range, counted per bin and per label (positive, negative, unlabelled)
//! in two parameterized, portable statements (SQLite and PostgreSQL).

use sqlx::Any;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::scored::SCORED_SQL;
use super::{StorageError, Store, sql};
use crate::buckets::Range;

/// Which outcomes a histogram counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HistogramFilter {
    pub model: String,
    /// `None`: every version.
    pub version: Option<String>,
    pub include_shadow: bool,
    /// On `scored_at_ms`, exact to the millisecond.
    pub range: Range,
}

/// Scores counted in equal-width bins.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ScoreHistogram {
    /// `bins + 1` increasing edges; bin `i` is `[edges[i], edges[i + 1])`,
    /// the last one closed. `[0, 1]` when every score lies in it,
    /// otherwise the scores' own range. Empty when no outcome matched.
    pub edges: Vec<f64>,
    /// Per bin: outcomes labelled positive.
    pub positive: Vec<u64>,
    /// Per bin: outcomes labelled negative.
    pub negative: Vec<u64>,
    /// Per bin: outcomes with no label yet.
    pub unlabelled: Vec<u64>,
    /// Smallest and largest threshold of the counted outcomes.
    pub thresholds: Option<(f64, f64)>,
}

impl ScoreHistogram {
    /// Outcomes counted.
    pub(crate) fn total(&self) -> u64 {
        self.positive.iter().sum::<u64>()
            + self.negative.iter().sum::<u64>()
            + self.unlabelled.iter().sum::<u64>()
    }
}

/// A nullable float column (an aggregate over no row is NULL).
fn opt_float(row: &AnyRow, index: usize) -> Result<Option<f64>, StorageError> {
    match row.try_get::<Option<f64>, _>(index) {
        Ok(value) => Ok(value),
        Err(_) => Ok(sql::opt_int(row, index)?.map(|n| n as f64)),
    }
}

/// The bins' edges for scores in `[min, max]`.
fn edges(min: f64, max: f64, bins: usize) -> Vec<f64> {
    let (lo, hi) = if min >= 0.0 && max <= 1.0 {
        (0.0, 1.0)
    } else if min < max {
        (min, max)
    } else {
        (min - 0.5, min + 0.5)
    };
    let width = (hi - lo) / bins as f64;
    (0..=bins)
        .map(|i| if i == bins { hi } else { lo + width * i as f64 })
        .collect()
}

impl HistogramFilter {
    /// `WHERE …` over `outcomes`, numbering its placeholders after
    /// `before` others.
    fn clause(&self, before: usize) -> String {
        let mut n = before + 1;
        let mut clause = format!("WHERE model = ${n} AND {SCORED_SQL}");
        let mut next = || {
            n += 1;
            n
        };
        if self.version.is_some() {
            clause += &format!(" AND version = ${}", next());
        }
        if !self.include_shadow {
            clause += " AND shadow = 0";
        }
        if self.range.from_ms.is_some() {
            clause += &format!(" AND scored_at_ms >= ${}", next());
        }
        if self.range.to_ms.is_some() {
            clause += &format!(" AND scored_at_ms < ${}", next());
        }
        clause
    }

    fn bind<'q>(
        &'q self,
        mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
        query = query.bind(self.model.as_str());
        if let Some(version) = &self.version {
            query = query.bind(version.as_str());
        }
        if let Some(from) = self.range.from_ms {
            query = query.bind(from);
        }
        if let Some(to) = self.range.to_ms {
            query = query.bind(to);
        }
        query
    }
}

impl Store {
    /// The scores of the outcomes `filter` selects in `bins` equal bins
    /// (at least one), split by label.
    /// Scans the model's outcomes in the range (the counters hold no
    /// scores).
    pub(crate) async fn score_histogram(
        &self,
        filter: &HistogramFilter,
        bins: usize,
    ) -> Result<ScoreHistogram, StorageError> {
        let bins = bins.max(1);
        let statement = self.backend().sql(format!(
            "SELECT CAST(COUNT(*) AS BIGINT), MIN(score), MAX(score), MIN(threshold), \
             MAX(threshold) FROM outcomes {}",
            filter.clause(0)
        ));
        let row = filter
            .bind(sqlx::query::<Any>(&statement))
            .fetch_one(self.pool())
            .await?;
        let count = sql::int(&row, 0)?;
        let (Some(min), Some(max)) = (opt_float(&row, 1)?, opt_float(&row, 2)?) else {
            return Ok(ScoreHistogram::default());
        };
        if count == 0 {
            return Ok(ScoreHistogram::default());
        }
        let thresholds = opt_float(&row, 3)?.zip(opt_float(&row, 4)?);
        let edges = edges(min, max, bins);

        // The bin of a score: the number of inner edges at or below it,
        // as one CASE (no FLOOR, which SQLite may lack, and no float to
        // integer cast, which rounds on PostgreSQL and truncates on
        // SQLite).
        let case = if bins == 1 {
            "0".to_owned()
        } else {
            let mut case = String::from("CASE");
            for i in 0..bins - 1 {
                case += &format!(" WHEN score < ${} THEN {i}", i + 1);
            }
            case + &format!(" ELSE {} END", bins - 1)
        };
        let statement = self.backend().sql(format!(
            "SELECT CAST({case} AS BIGINT), label, CAST(COUNT(*) AS BIGINT) FROM outcomes {} \
             GROUP BY 1, 2",
            filter.clause(bins - 1)
        ));
        let mut query = sqlx::query::<Any>(&statement);
        for edge in &edges[1..bins] {
            query = query.bind(*edge);
        }
        let rows = filter.bind(query).fetch_all(self.pool()).await?;

        let mut histogram = ScoreHistogram {
            positive: vec![0; bins],
            negative: vec![0; bins],
            unlabelled: vec![0; bins],
            edges,
            thresholds,
        };
        for row in &rows {
            let bin = usize::try_from(sql::int(row, 0)?)
                .ok()
                .filter(|&b| b < bins)
                .ok_or_else(|| StorageError::Corrupt("histogram bin out of range".into()))?;
            let n = u64::try_from(sql::int(row, 2)?).unwrap_or(0);
            match sql::opt_int(row, 1)? {
                Some(0) => histogram.negative[bin] += n,
                Some(_) => histogram.positive[bin] += n,
                None => histogram.unlabelled[bin] += n,
            }
        }
        Ok(histogram)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_get_the_unit_interval_and_others_their_range() {
        let e = edges(0.2, 0.8, 4);
        assert_eq!(e, [0.0, 0.25, 0.5, 0.75, 1.0]);
        let e = edges(-2.0, 6.0, 4);
        assert_eq!(e, [-2.0, 0.0, 2.0, 4.0, 6.0]);
        let e = edges(3.0, 3.0, 2);
        assert_eq!(e, [2.5, 3.0, 3.5]);
    }

    #[test]
    fn the_filter_numbers_its_placeholders_after_the_bins() {
        let filter = HistogramFilter {
            model: "m".into(),
            version: Some("1".into()),
            include_shadow: false,
            range: Range {
                from_ms: Some(5),
                to_ms: None,
            },
        };
        assert_eq!(
            filter.clause(19),
            "WHERE model = $20 AND scored = 1 AND version = $21 AND shadow = 0 AND scored_at_ms >= $22"
        );
    }
}
