//! Storing outcomes and item errors: validated one by one (a bad outcome is
//! rejected, the others stored), deduplicated by `outcome_id`, inserted in
//! one transaction with multi-row inserts, joined to any label that arrived
//! before them, and counted.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlx::Any;
use triad_features::MISSING_FLAG_FIELDS;
use triad_proto::v1::{
    ItemErrorCode, Outcome, RecordOutcomesRequest, RecordOutcomesResponse, Rejection,
};
use triad_series::ReferenceProfile;

use super::counters::{self, CounterKey, Counts};
use super::labels::{PairKey, fetch_labels, has_labels};
use super::validate::{self, MAX_ID_BYTES};
use super::{Store, Writer, sql};
use crate::buckets::{Width, day_string, now_ms};
use crate::error::MonitorError;
use crate::fields::{features_to_json, input_values, is_missing};
use crate::profiles::probability;

/// Columns of `outcomes`, in insert order.
const OUTCOME_COLUMNS: [&str; 19] = [
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
];

/// One valid outcome, ready to insert.
struct Row<'a> {
    outcome: &'a Outcome,
    scored_at_ms: i64,
    hour_ms: i64,
    day: String,
    /// [`input_values`], each [`validate::storable`].
    inputs: [Option<Cow<'a, str>>; MISSING_FLAG_FIELDS.len()],
    features: String,
    label: Option<bool>,
}

fn check_finite(field: &str, value: f32) -> Result<(), String> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(format!("{field} is {value}: expected a finite number"))
    }
}

/// When `outcome` was scored (0: `now`), or why it cannot be stored.
fn check(outcome: &Outcome, now: i64) -> Result<i64, String> {
    validate::item_id("outcome_id", &outcome.outcome_id, true)?;
    validate::item_id("model", &outcome.model, true)?;
    validate::item_id("version", &outcome.version, true)?;
    validate::item_id("budget_id", &outcome.budget_id, true)?;
    validate::item_id("itemization_id", &outcome.itemization_id, true)?;
    validate::item_id("request_id", &outcome.request_id, false)?;
    validate::item_id("correlation_id", &outcome.correlation_id, false)?;
    validate::item_id("schema_hash", &outcome.schema_hash, false)?;
    let scored_at_ms = validate::event_time("scored_at_ms", outcome.scored_at_ms, now)?;
    check_finite("score", outcome.score)?;
    check_finite("threshold", outcome.threshold)?;
    check_finite("latency_ms", outcome.latency_ms)?;
    Ok(scored_at_ms)
}

impl Store {
    /// Stores a batch of outcomes and item errors (`RecordOutcomes`).
    /// `first_index` numbers the outcomes in rejections (non-zero for later
    /// messages of a stream).
    pub async fn record_outcomes(
        &self,
        request: &RecordOutcomesRequest,
        first_index: u32,
    ) -> Result<RecordOutcomesResponse, MonitorError> {
        if !request.errors.is_empty() && request.request_id.is_empty() {
            return Err(MonitorError::ErrorsWithoutRequest);
        }
        validate::query_id("request_id", &request.request_id, false)?;
        let now = now_ms();
        let mut response = RecordOutcomesResponse::default();
        let mut seen: HashSet<&str> = HashSet::with_capacity(request.outcomes.len());
        // Batches span few days: format each day once.
        let mut days: HashMap<i64, String> = HashMap::new();
        let mut rows: Vec<Row<'_>> = Vec::with_capacity(request.outcomes.len());
        for (i, outcome) in request.outcomes.iter().enumerate() {
            let scored_at_ms = match check(outcome, now) {
                Ok(scored_at_ms) => scored_at_ms,
                Err(reason) => {
                    validate::list_rejection(
                        &mut response.rejected,
                        Rejection {
                            index: first_index.saturating_add(i as u32),
                            id: validate::rejected_id(&outcome.outcome_id),
                            reason,
                        },
                    );
                    continue;
                }
            };
            if !seen.insert(outcome.outcome_id.as_str()) {
                response.duplicates += 1;
                continue;
            }
            rows.push(Row {
                outcome,
                scored_at_ms,
                hour_ms: Width::Hour.start(scored_at_ms),
                day: days
                    .entry(Width::Day.start(scored_at_ms))
                    .or_insert_with(|| day_string(scored_at_ms))
                    .clone(),
                inputs: input_values(outcome).map(|value| value.map(validate::storable)),
                features: features_to_json(&outcome.features),
                label: None,
            });
        }
        if rows.is_empty() && request.errors.is_empty() {
            return Ok(response);
        }

        // The reference profile of each model version, for the calibrated
        // probabilities of the expected confusion cells; looked up before
        // taking the writer lock (a first read parses a file).
        let mut profiles: HashMap<(&str, &str), Option<Arc<ReferenceProfile>>> = HashMap::new();
        for row in &rows {
            let (model, version) = (row.outcome.model.as_str(), row.outcome.version.as_str());
            if let Entry::Vacant(slot) = profiles.entry((model, version)) {
                let lookup = self.profiles().get(model, version).await;
                slot.insert(lookup.profile().cloned());
            }
        }

        let mut writer = self.writer().await?;

        // Labels that arrived before their outcomes.
        if has_labels(&mut writer).await? {
            let pairs: Vec<PairKey> = rows
                .iter()
                .map(|r| {
                    PairKey::of(
                        &r.outcome.model,
                        &r.outcome.budget_id,
                        &r.outcome.itemization_id,
                    )
                })
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let labels = fetch_labels(&mut writer, &pairs).await?;
            for row in &mut rows {
                let o = row.outcome;
                row.label = labels
                    .get(&PairKey::of(&o.model, &o.budget_id, &o.itemization_id))
                    .and_then(|l| l.effective(&o.request_id));
            }
        }

        // Optimistically insert everything (re-sent outcomes are rare); if
        // some id was already stored, undo and insert only the new ones.
        // Already stored outcomes are duplicates and never counted again.
        savepoint(&mut writer, "SAVEPOINT new_outcomes").await?;
        let mut inserted = insert_outcomes(&mut writer, &rows, now).await?;
        if inserted != rows.len() as u64 {
            savepoint(&mut writer, "ROLLBACK TO SAVEPOINT new_outcomes").await?;
            let existing = existing_ids(&mut writer, &rows).await?;
            rows.retain(|r| !existing.contains(&r.outcome.outcome_id));
            response.duplicates += existing.len() as u64;
            inserted = insert_outcomes(&mut writer, &rows, now).await?;
        }
        if inserted != rows.len() as u64 {
            // Rolled back with the transaction: nothing was stored.
            return Err(MonitorError::ConcurrentWrite {
                expected: rows.len() as u64,
                inserted,
            });
        }
        response.stored = inserted;

        let mut deltas: HashMap<CounterKey, Counts> = HashMap::new();
        for row in &rows {
            let o = row.outcome;
            let counts = deltas
                .entry(CounterKey {
                    model: o.model.clone(),
                    version: o.version.clone(),
                    shadow: o.shadow,
                    threshold_bits: f64::from(o.threshold).to_bits(),
                    hour_ms: row.hour_ms,
                })
                .or_default();
            counts.outcomes += 1;
            counts.predicted_positive += i64::from(o.matched);
            counts.score_sum += f64::from(o.score);
            for (n, value) in counts.nulls.iter_mut().zip(&row.inputs) {
                *n += i64::from(is_missing(value.as_deref()));
            }
            if let Some(label) = row.label {
                counts.cell(o.matched, label, 1);
            }
            let profile = profiles
                .get(&(o.model.as_str(), o.version.as_str()))
                .and_then(Option::as_deref);
            counts.expect(o.matched, probability(profile, f64::from(o.score)));
        }
        counters::apply(&mut writer, deltas).await?;

        response.errors_stored = insert_errors(&mut writer, request, now).await?;
        writer.tx.commit().await?;
        crate::telemetry::outcomes_stored(
            rows.iter().map(|r| r.outcome.model.as_str()),
            response.duplicates,
        );
        Ok(response)
    }
}

/// Runs a savepoint statement (the same words on SQLite and PostgreSQL).
async fn savepoint(w: &mut Writer<'_>, statement: &'static str) -> Result<(), MonitorError> {
    sqlx::query::<Any>(statement).execute(&mut *w.tx).await?;
    Ok(())
}

/// The ids among `rows` that are already stored.
async fn existing_ids(
    w: &mut Writer<'_>,
    rows: &[Row<'_>],
) -> Result<HashSet<String>, MonitorError> {
    let mut existing = HashSet::new();
    for chunk in rows.chunks(w.per * 2) {
        let statement = w.backend.sql(format!(
            "SELECT outcome_id FROM outcomes WHERE outcome_id IN ({})",
            sql::list(w.backend, chunk.len(), 1)
        ));
        let mut query = sqlx::query::<Any>(&statement);
        for row in chunk {
            query = query.bind(row.outcome.outcome_id.as_str());
        }
        for row in query.fetch_all(&mut *w.tx).await? {
            existing.insert(sql::text(&row, 0)?);
        }
    }
    Ok(existing)
}

/// Inserts `rows`, none of which is stored yet (the writer lock keeps it
/// so between the check and the insert); returns how many were inserted.
async fn insert_outcomes(
    w: &mut Writer<'_>,
    rows: &[Row<'_>],
    now: i64,
) -> Result<u64, MonitorError> {
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
                .bind(o.outcome_id.as_str())
                .bind(o.request_id.as_str())
                .bind(o.correlation_id.as_str())
                .bind(row.scored_at_ms)
                .bind(row.hour_ms)
                .bind(row.day.as_str())
                .bind(now)
                .bind(o.model.as_str())
                .bind(o.version.as_str())
                .bind(i64::from(o.shadow))
                .bind(o.schema_hash.as_str())
                .bind(o.budget_id.as_str())
                .bind(o.itemization_id.as_str())
                .bind(f64::from(o.score))
                .bind(f64::from(o.threshold))
                .bind(i64::from(o.matched))
                .bind(f64::from(o.latency_ms))
                .bind(row.label.map(i64::from))
                .bind(row.features.as_str());
            for value in &row.inputs {
                query = query.bind(value.as_deref());
            }
        }
        inserted += query.execute(&mut *w.tx).await?.rows_affected();
    }
    Ok(inserted)
}

/// Longest item error message stored, in bytes; a longer one is cut.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 2_048;

/// Inserts the request's item errors, once per (request, item, field,
/// code); returns how many were new. Their texts are cut to
/// [`MAX_ID_BYTES`] (ids, field, kind, code) and
/// [`MAX_ERROR_MESSAGE_BYTES`] (the message): an item error is a report,
/// never refused.
async fn insert_errors(
    w: &mut Writer<'_>,
    request: &RecordOutcomesRequest,
    now: i64,
) -> Result<u64, MonitorError> {
    const COLS: usize = 10;
    let mut stored = 0;
    let per = w.per * 3;
    for chunk in request.errors.chunks(per) {
        let statement = w.backend.sql(format!(
            "INSERT INTO item_errors (request_id, item_kind, item_index, field, code, \
             budget_id, itemization_id, message, dropped, received_at_ms) VALUES {} \
             ON CONFLICT (request_id, item_kind, item_index, field, code) DO NOTHING",
            sql::values(w.backend, chunk.len(), COLS, 1)
        ));
        let mut query = sqlx::query::<Any>(&statement);
        for error in chunk {
            let code = ItemErrorCode::try_from(error.code)
                .map(|c| c.as_str_name().to_owned())
                .unwrap_or_else(|_| error.code.to_string());
            // What the sender wrote, cut to a bounded length.
            let id = |text: &str| {
                validate::storable(&validate::truncated(text, MAX_ID_BYTES)).into_owned()
            };
            query = query
                .bind(request.request_id.as_str())
                .bind(id(&error.item_kind))
                .bind(i64::from(error.index))
                .bind(id(&error.field))
                .bind(id(&code))
                .bind(id(&error.budget_id))
                .bind(id(&error.itemization_id))
                .bind(
                    validate::storable(&validate::truncated(
                        &error.message,
                        MAX_ERROR_MESSAGE_BYTES,
                    ))
                    .into_owned(),
                )
                .bind(i64::from(error.dropped))
                .bind(now);
        }
        stored += query.execute(&mut *w.tx).await?.rows_affected();
    }
    Ok(stored)
}
