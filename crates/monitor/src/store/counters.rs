//! `confusion_counts`: per (model, version, shadow, threshold, hour)
//! counters, moved by deltas inside the transaction that stores the
//! outcome or label causing them, so they always equal what a rescan of
//! the raw rows would give.
//!
//! They move on exactly two events:
//! - a newly stored outcome adds 1 to `outcomes`, its prediction to
//!   `predicted_positive`, its score to `score_sum`, 1 to each missing
//!   input's `null_*`, its calibrated probability to the expected confusion
//!   cells (`expected_tp` and `expected_fp` when predicted positive,
//!   `expected_fn` and `expected_tn` otherwise), and — when a label is
//!   already known for it — 1 to `labelled` and to its confusion cell;
//! - a label that changes an outcome's current label moves that outcome
//!   from its old cell (or from unlabelled) to the new one: exactly one
//!   count out, one count in.
//!
//! A re-sent outcome or a label that changes nothing moves nothing.

use std::collections::HashMap;
use std::sync::LazyLock;

use sqlx::Any;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use triad_features::MISSING_FLAG_FIELDS;

use super::{StorageError, Writer, sql};

/// Key of one counters row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CounterKey {
    pub model: String,
    pub version: String,
    pub shadow: bool,
    /// `f64::to_bits` of the threshold.
    pub threshold_bits: u64,
    pub hour_ms: i64,
}

/// The counters of one row, or a delta to add to them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Counts {
    pub outcomes: i64,
    pub predicted_positive: i64,
    pub labelled: i64,
    pub tp: i64,
    pub fp: i64,
    pub fn_: i64,
    pub tn: i64,
    pub score_sum: f64,
    /// Missing values per [`MISSING_FLAG_FIELDS`] entry.
    pub nulls: [i64; MISSING_FLAG_FIELDS.len()],
    /// Confidence-based performance estimation: Σ p over predicted
    /// positives, p the outcome's calibrated probability of being positive
    /// ([`crate::profiles::probability`]).
    pub expected_tp: f64,
    /// Σ (1 − p) over predicted positives.
    pub expected_fp: f64,
    /// Σ p over predicted negatives.
    pub expected_fn: f64,
    /// Σ (1 − p) over predicted negatives.
    pub expected_tn: f64,
    /// Outcomes not scored (a gated model's gate did not match the pair):
    /// in no other count ([`super::scored`]).
    pub not_scored: i64,
}

impl Counts {
    /// Adds (`by = 1`) or removes (`by = -1`) one labelled outcome from its
    /// confusion cell.
    pub(crate) fn cell(&mut self, matched: bool, label: bool, by: i64) {
        self.labelled += by;
        match (matched, label) {
            (true, true) => self.tp += by,
            (true, false) => self.fp += by,
            (false, true) => self.fn_ += by,
            (false, false) => self.tn += by,
        }
    }

    /// Adds one outcome's expected confusion cells: its calibrated
    /// probability `p` of being positive splits it between the two cells of
    /// its prediction.
    pub(crate) fn expect(&mut self, matched: bool, p: f64) {
        if matched {
            self.expected_tp += p;
            self.expected_fp += 1.0 - p;
        } else {
            self.expected_fn += p;
            self.expected_tn += 1.0 - p;
        }
    }

    /// Adds `other` to `self`.
    pub(crate) fn add(&mut self, other: &Counts) {
        self.outcomes += other.outcomes;
        self.predicted_positive += other.predicted_positive;
        self.labelled += other.labelled;
        self.tp += other.tp;
        self.fp += other.fp;
        self.fn_ += other.fn_;
        self.tn += other.tn;
        self.score_sum += other.score_sum;
        for (a, b) in self.nulls.iter_mut().zip(other.nulls) {
            *a += b;
        }
        self.expected_tp += other.expected_tp;
        self.expected_fp += other.expected_fp;
        self.expected_fn += other.expected_fn;
        self.expected_tn += other.expected_tn;
        self.not_scored += other.not_scored;
    }

    fn is_zero(&self) -> bool {
        *self == Counts::default()
    }
}

/// Count columns after the key, in insert order.
pub(crate) static COUNT_COLUMNS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut columns: Vec<String> = [
        "outcomes",
        "predicted_positive",
        "labelled",
        "tp",
        "fp",
        "fn",
        "tn",
        "score_sum",
    ]
    .iter()
    .map(|c| (*c).to_owned())
    .collect();
    columns.extend(MISSING_FLAG_FIELDS.iter().map(|f| format!("null_{f}")));
    columns.extend(EXPECTED_COLUMNS.iter().map(|c| (*c).to_owned()));
    columns.push(NOT_SCORED_COLUMN.to_owned());
    columns
});

/// The count of outcomes not scored (migration `0004`), last of
/// [`COUNT_COLUMNS`].
pub(crate) const NOT_SCORED_COLUMN: &str = "not_scored";

/// The expected confusion cells (migration `0002`), last of
/// [`COUNT_COLUMNS`]; `DOUBLE PRECISION` like `score_sum`.
pub(crate) const EXPECTED_COLUMNS: [&str; 4] =
    ["expected_tp", "expected_fp", "expected_fn", "expected_tn"];

/// Binds `c` in [`COUNT_COLUMNS`] order: the one place that knows it,
/// for every table that keeps these counters.
pub(super) fn bind_counts<'q>(
    query: Query<'q, Any, AnyArguments<'q>>,
    c: &Counts,
) -> Query<'q, Any, AnyArguments<'q>> {
    let mut query = query
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
    query
        .bind(c.expected_tp)
        .bind(c.expected_fp)
        .bind(c.expected_fn)
        .bind(c.expected_tn)
        .bind(c.not_scored)
}

/// Whether a count column holds a float sum rather than a count.
pub(crate) fn is_float_column(column: &str) -> bool {
    column == "score_sum" || EXPECTED_COLUMNS.contains(&column)
}

const KEY_COLUMNS: [&str; 5] = ["model", "version", "shadow", "threshold", "hour_ms"];

/// Adds `deltas` to their rows, creating missing rows, in multi-row
/// upserts.
pub(crate) async fn apply(
    w: &mut Writer<'_>,
    deltas: HashMap<CounterKey, Counts>,
) -> Result<(), StorageError> {
    let deltas: Vec<(CounterKey, Counts)> =
        deltas.into_iter().filter(|(_, c)| !c.is_zero()).collect();
    if deltas.is_empty() {
        return Ok(());
    }
    let cols = KEY_COLUMNS.len() + COUNT_COLUMNS.len();
    let updates: Vec<String> = COUNT_COLUMNS
        .iter()
        .map(|c| format!("{c} = confusion_counts.{c} + excluded.{c}"))
        .collect();
    let head = format!(
        "INSERT INTO confusion_counts ({}, {}) VALUES ",
        KEY_COLUMNS.join(", "),
        COUNT_COLUMNS.join(", ")
    );
    let tail = format!(
        " ON CONFLICT ({}) DO UPDATE SET {}",
        KEY_COLUMNS.join(", "),
        updates.join(", ")
    );
    let per = (w.per * 34 / cols).max(1);
    for chunk in deltas.chunks(per) {
        let statement = w.backend.sql(format!(
            "{head}{}{tail}",
            sql::values(w.backend, chunk.len(), cols, 1)
        ));
        let mut query = sqlx::query::<Any>(&statement);
        for (key, c) in chunk {
            query = query
                .bind(key.model.as_str())
                .bind(key.version.as_str())
                .bind(i64::from(key.shadow))
                .bind(f64::from_bits(key.threshold_bits))
                .bind(key.hour_ms);
            query = bind_counts(query, c);
        }
        query.execute(&mut *w.tx).await?;
    }
    super::days::apply(w, &deltas).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_flip_moves_one_count_between_cells() {
        let mut delta = Counts::default();
        delta.cell(true, false, -1);
        delta.cell(true, true, 1);
        assert_eq!(
            (delta.labelled, delta.tp, delta.fp, delta.fn_, delta.tn),
            (0, 1, -1, 0, 0)
        );
    }

    #[test]
    fn count_columns_match_the_migration() {
        let migration = include_str!("../../migrations/0001_monitor.sql");
        let estimates = include_str!("../../migrations/0002_estimates_and_drift.sql");
        let gates = include_str!("../../migrations/0004_explanations_and_gates.sql");
        assert!(gates.contains(&format!(
            "ALTER TABLE confusion_counts ADD COLUMN {NOT_SCORED_COLUMN} BIGINT NOT NULL DEFAULT 0;"
        )));
        for column in COUNT_COLUMNS.iter().filter(|c| *c != NOT_SCORED_COLUMN) {
            let float = is_float_column(column);
            assert!(
                (!float && migration.contains(&format!("    {column} BIGINT NOT NULL")))
                    || (float
                        && (migration
                            .contains(&format!("    {column} DOUBLE PRECISION NOT NULL"))
                            || estimates.contains(&format!(
                                "ADD COLUMN {column} DOUBLE PRECISION NOT NULL DEFAULT 0;"
                            )))),
                "{column}"
            );
        }
    }
}
