//! Writing outcomes and item errors: one transaction of multi-row inserts
//! in which the outcomes already stored are skipped, each new outcome is
//! joined to any label that arrived before it, and counted.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use sqlx::Any;
use triad_features::MISSING_FLAG_FIELDS;

use super::counters::{self, CounterKey, Counts};
use super::labels::{PairKey, fetch_labels, has_labels};
use super::score_bins::{self, BinDeltas, BinnedOutcome};
use super::scored::counts_as_scored;
use super::{StorageError, Store, Writer, features_to_json, sql};
use crate::buckets::{Width, day_string};
use crate::fields::is_missing;

/// Columns of `outcomes`, in insert order.
const OUTCOME_COLUMNS: [&str; 21] = [
    "outcome_id",
    "request_id",
    "correlation_id",
    "scored_at_ms",
    "scored_hour_ms",
    "scored_day",
    "received_at_ms",
    "model",
    "version",
    "shadow",
    "schema_hash",
    "budget_id",
    "itemization_id",
    "score",
    "threshold",
    "matched",
    "latency_ms",
    "label",
    "features",
    "scored",
    "explanation",
];

/// One outcome to store, as the caller checked it: its ids and texts
/// storable, its time and numbers valid.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewOutcome<'a> {
    pub outcome_id: &'a str,
    pub request_id: &'a str,
    pub correlation_id: &'a str,
    /// When it was scored, in milliseconds since the epoch.
    pub scored_at_ms: i64,
    pub model: &'a str,
    pub version: &'a str,
    pub shadow: bool,
    pub schema_hash: &'a str,
    pub budget_id: &'a str,
    pub itemization_id: &'a str,
    pub score: f32,
    pub threshold: f32,
    pub matched: bool,
    pub latency_ms: f32,
    /// The raw input values in [`MISSING_FLAG_FIELDS`] order.
    pub inputs: [Option<Cow<'a, str>>; MISSING_FLAG_FIELDS.len()],
    /// The feature vector the model scored.
    pub features: &'a [f32],
    /// Its calibrated probability of being positive, which it adds to the
    /// expected confusion cells ([`Counts::expect`]).
    pub probability: f64,
    /// False when the model is gated and its gate did not match the pair
    /// ([`super::scored`]).
    pub scored: bool,
    /// Why the model scored the pair as it did, as stored (JSON, see
    /// migration `0004`); `None` when there is none.
    pub explanation: Option<String>,
}

/// One item error of a request to store, its texts already cut to a
/// bounded length and storable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewItemError {
    pub item_kind: String,
    pub index: u32,
    pub field: String,
    pub code: String,
    pub budget_id: String,
    pub itemization_id: String,
    pub message: String,
    pub dropped: bool,
}

/// What [`Store::insert_outcomes`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct OutcomesWritten {
    /// Indices of the outcomes newly stored, in the order given; the
    /// others were stored already.
    pub stored: Vec<usize>,
    /// Item errors newly stored.
    pub errors_stored: u64,
}

/// One outcome, ready to insert.
struct Row<'a> {
    /// Its index among the outcomes given.
    index: usize,
    outcome: &'a NewOutcome<'a>,
    hour_ms: i64,
    day: String,
    features: String,
    label: Option<bool>,
}

impl Store {
    /// Stores `outcomes` (distinct ids, none stored twice) and the item
    /// errors of request `request_id` in one transaction, received at
    /// `now`: outcomes already stored are skipped and never counted again;
    /// each new one is joined to its current label and moves the counters.
    pub(crate) async fn insert_outcomes(
        &self,
        outcomes: &[NewOutcome<'_>],
        request_id: &str,
        errors: &[NewItemError],
        now: i64,
    ) -> Result<OutcomesWritten, StorageError> {
        // Batches span few days: format each day once.
        let mut days: HashMap<i64, String> = HashMap::new();
        let mut rows: Vec<Row<'_>> = outcomes
            .iter()
            .enumerate()
            .map(|(index, outcome)| Row {
                index,
                outcome,
                hour_ms: Width::Hour.start(outcome.scored_at_ms),
                day: days
                    .entry(Width::Day.start(outcome.scored_at_ms))
                    .or_insert_with(|| day_string(outcome.scored_at_ms))
                    .clone(),
                features: features_to_json(outcome.features),
                label: None,
            })
            .collect();

        let mut writer = self.writer().await?;

        // Labels that arrived before their outcomes.
        if has_labels(&mut writer).await? {
            let pairs: Vec<PairKey> = rows
                .iter()
                .map(|r| {
                    PairKey::of(
                        r.outcome.model,
                        r.outcome.budget_id,
                        r.outcome.itemization_id,
                    )
                })
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let labels = fetch_labels(&mut writer, &pairs).await?;
            for row in rows
                .iter_mut()
                .filter(|r| counts_as_scored(r.outcome.scored))
            {
                let o = row.outcome;
                row.label = labels
                    .get(&PairKey::of(o.model, o.budget_id, o.itemization_id))
                    .and_then(|l| l.effective(o.request_id));
            }
        }

        // Optimistically insert everything (re-sent outcomes are rare); if
        // some id was already stored, undo and insert only the new ones.
        // Already stored outcomes are duplicates and never counted again.
        savepoint(&mut writer, "SAVEPOINT new_outcomes").await?;
        let mut inserted = insert_rows(&mut writer, &rows, now).await?;
        if inserted != rows.len() as u64 {
            savepoint(&mut writer, "ROLLBACK TO SAVEPOINT new_outcomes").await?;
            let existing = existing_ids(&mut writer, &rows).await?;
            rows.retain(|r| !existing.contains(r.outcome.outcome_id));
            inserted = insert_rows(&mut writer, &rows, now).await?;
        }
        if inserted != rows.len() as u64 {
            // Rolled back with the transaction: nothing was stored.
            return Err(StorageError::ConcurrentWrite {
                expected: rows.len() as u64,
                inserted,
            });
        }

        let mut deltas: HashMap<CounterKey, Counts> = HashMap::new();
        let mut bins = BinDeltas::new();
        for row in &rows {
            let o = row.outcome;
            score_bins::count_new_outcome(
                &mut bins,
                BinnedOutcome {
                    model: o.model,
                    version: o.version,
                    shadow: o.shadow,
                    hour_ms: row.hour_ms,
                    score: o.score,
                    scored: counts_as_scored(o.scored),
                },
                row.label,
            );
            let counts = deltas
                .entry(CounterKey {
                    model: o.model.to_owned(),
                    version: o.version.to_owned(),
                    shadow: o.shadow,
                    threshold_bits: f64::from(o.threshold).to_bits(),
                    hour_ms: row.hour_ms,
                })
                .or_default();
            if !counts_as_scored(o.scored) {
                counts.not_scored += 1;
                continue;
            }
            counts.outcomes += 1;
            counts.predicted_positive += i64::from(o.matched);
            counts.score_sum += f64::from(o.score);
            for (n, value) in counts.nulls.iter_mut().zip(&o.inputs) {
                *n += i64::from(is_missing(value.as_deref()));
            }
            if let Some(label) = row.label {
                counts.cell(o.matched, label, 1);
            }
            counts.expect(o.matched, o.probability);
        }
        counters::apply(&mut writer, deltas).await?;
        score_bins::apply(&mut writer, bins).await?;

        let errors_stored = insert_errors(&mut writer, request_id, errors, now).await?;
        writer.tx.commit().await?;
        Ok(OutcomesWritten {
            stored: rows.iter().map(|r| r.index).collect(),
            errors_stored,
        })
    }
}

/// Runs a savepoint statement (the same words on SQLite and PostgreSQL).
async fn savepoint(w: &mut Writer<'_>, statement: &'static str) -> Result<(), StorageError> {
    sqlx::query::<Any>(statement).execute(&mut *w.tx).await?;
    Ok(())
}

/// The ids among `rows` that are already stored.
async fn existing_ids(
    w: &mut Writer<'_>,
    rows: &[Row<'_>],
) -> Result<HashSet<String>, StorageError> {
    let mut existing = HashSet::new();
    for chunk in rows.chunks(w.per * 2) {
        let statement = w.backend.sql(format!(
            "SELECT outcome_id FROM outcomes WHERE outcome_id IN ({})",
            sql::list(w.backend, chunk.len(), 1)
        ));
        let mut query = sqlx::query::<Any>(&statement);
        for row in chunk {
            query = query.bind(row.outcome.outcome_id);
        }
        for row in query.fetch_all(&mut *w.tx).await? {
            existing.insert(sql::text(&row, 0)?);
        }
    }
    Ok(existing)
}

/// Inserts `rows`, none of which is stored yet (the writer lock keeps it
/// so between the check and the insert); returns how many were inserted.
async fn insert_rows(w: &mut Writer<'_>, rows: &[Row<'_>], now: i64) -> Result<u64, StorageError> {
    let cols = OUTCOME_COLUMNS.len() + MISSING_FLAG_FIELDS.len();
    let head = format!(
        "INSERT INTO outcomes ({}, {}) VALUES ",
        OUTCOME_COLUMNS.join(", "),
        MISSING_FLAG_FIELDS.join(", ")
    );
    let mut inserted = 0;
    for chunk in rows.chunks(w.per) {
        // DO NOTHING guards against a writer outside the monitor; the
        // caller then sees fewer rows inserted than asked.
        let statement = w.backend.sql(format!(
            "{head}{} ON CONFLICT (outcome_id) DO NOTHING",
            sql::values(w.backend, chunk.len(), cols, 1)
        ));
        let mut query = sqlx::query::<Any>(&statement);
        for row in chunk {
            let o = row.outcome;
            query = query
                .bind(o.outcome_id)
                .bind(o.request_id)
                .bind(o.correlation_id)
                .bind(o.scored_at_ms)
                .bind(row.hour_ms)
                .bind(row.day.as_str())
                .bind(now)
                .bind(o.model)
                .bind(o.version)
                .bind(i64::from(o.shadow))
                .bind(o.schema_hash)
                .bind(o.budget_id)
                .bind(o.itemization_id)
                .bind(f64::from(o.score))
                .bind(f64::from(o.threshold))
                .bind(i64::from(o.matched))
                .bind(f64::from(o.latency_ms))
                .bind(row.label.map(i64::from))
                .bind(row.features.as_str())
                .bind(i64::from(o.scored))
                .bind(o.explanation.as_deref());
            for value in &o.inputs {
                query = query.bind(value.as_deref());
            }
        }
        inserted += query.execute(&mut *w.tx).await?.rows_affected();
    }
    Ok(inserted)
}

/// Inserts the item errors of request `request_id`, once per (request,
/// item, field, code); returns how many were new.
async fn insert_errors(
    w: &mut Writer<'_>,
    request_id: &str,
    errors: &[NewItemError],
    now: i64,
) -> Result<u64, StorageError> {
    const COLS: usize = 10;
    let mut stored = 0;
    let per = w.per * 3;
    for chunk in errors.chunks(per) {
        let statement = w.backend.sql(format!(
            "INSERT INTO item_errors (request_id, item_kind, item_index, field, code, \
             budget_id, itemization_id, message, dropped, received_at_ms) VALUES {} \
             ON CONFLICT (request_id, item_kind, item_index, field, code) DO NOTHING",
            sql::values(w.backend, chunk.len(), COLS, 1)
        ));
        let mut query = sqlx::query::<Any>(&statement);
        for error in chunk {
            query = query
                .bind(request_id)
                .bind(error.item_kind.as_str())
                .bind(i64::from(error.index))
                .bind(error.field.as_str())
                .bind(error.code.as_str())
                .bind(error.budget_id.as_str())
                .bind(error.itemization_id.as_str())
                .bind(error.message.as_str())
                .bind(i64::from(error.dropped))
                .bind(now);
        }
        stored += query.execute(&mut *w.tx).await?.rows_affected();
    }
    Ok(stored)
}
