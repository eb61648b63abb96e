//! Writing labels: every label goes to `label_history`; the current label
//! per (model, pair, request) is replaced unless the new one is older (by
//! `labelled_at_ms`); then each touched pair's outcomes are re-joined and
//! every outcome whose label changed moves one count in the counters.

use std::collections::{HashMap, HashSet};

use sqlx::Any;
use sqlx::any::AnyRow;

use super::counters::{self, CounterKey, Counts};
use super::score_bins::{self, BinDeltas, BinnedOutcome};
use super::scored::counts_as_scored;
use super::{StorageError, Store, Writer, sql};

/// A (model, budget, line item) pair: what a label is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PairKey {
    pub model: String,
    pub budget_id: String,
    pub itemization_id: String,
}

impl PairKey {
    /// The pair of `model`, `budget_id` and `itemization_id`.
    pub(crate) fn of(model: &str, budget_id: &str, itemization_id: &str) -> Self {
        Self {
            model: model.to_owned(),
            budget_id: budget_id.to_owned(),
            itemization_id: itemization_id.to_owned(),
        }
    }
}

/// One current label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Current {
    pub label: bool,
    pub labelled_at_ms: i64,
}

/// The current labels of one pair.
#[derive(Debug, Clone, Default)]
pub(crate) struct PairLabels {
    /// The pair-wide label (request_id '').
    pub pair: Option<Current>,
    /// Labels of single requests' outcomes.
    pub by_request: HashMap<String, Current>,
}

impl PairLabels {
    /// The label of the pair's outcome from `request_id`: the request's own
    /// label if any, else the pair's.
    pub(crate) fn effective(&self, request_id: &str) -> Option<bool> {
        self.by_request
            .get(request_id)
            .or(self.pair.as_ref())
            .map(|c| c.label)
    }
}

/// Whether any label is stored: most outcome batches arrive before any
/// label, and then skip the join.
pub(crate) async fn has_labels(w: &mut Writer<'_>) -> Result<bool, StorageError> {
    Ok(sqlx::query::<Any>("SELECT 1 FROM labels LIMIT 1")
        .fetch_optional(&mut *w.tx)
        .await?
        .is_some())
}

/// The current labels of `pairs`.
pub(crate) async fn fetch_labels(
    w: &mut Writer<'_>,
    pairs: &[PairKey],
) -> Result<HashMap<PairKey, PairLabels>, StorageError> {
    let mut out: HashMap<PairKey, PairLabels> = HashMap::new();
    if pairs.is_empty() {
        return Ok(out);
    }
    for (key, row) in rows_of_pairs(
        w,
        "labels",
        "t.request_id, t.label, t.labelled_at_ms",
        pairs,
    )
    .await?
    {
        let request_id = sql::text(&row, 3)?;
        let current = Current {
            label: sql::int(&row, 4)? != 0,
            labelled_at_ms: sql::int(&row, 5)?,
        };
        let labels = out.entry(key).or_default();
        if request_id.is_empty() {
            labels.pair = Some(current);
        } else {
            labels.by_request.insert(request_id, current);
        }
    }
    Ok(out)
}

/// The rows of `table` whose pair is one of `pairs`: the pair's three key
/// columns (read back as the [`PairKey`]) and then `columns`, written with
/// the table alias `t`. `table` and `columns` are literals, never input.
async fn rows_of_pairs(
    w: &mut Writer<'_>,
    table: &str,
    columns: &str,
    pairs: &[PairKey],
) -> Result<Vec<(PairKey, AnyRow)>, StorageError> {
    let mut rows = Vec::new();
    for chunk in pairs.chunks(w.per * 3) {
        let statement = w.backend.sql(format!(
            "SELECT t.model, t.budget_id, t.itemization_id, {columns} \
             FROM {table} t JOIN (VALUES {}) AS k \
             ON t.model = k.column1 AND t.budget_id = k.column2 AND t.itemization_id = k.column3",
            sql::values(w.backend, chunk.len(), 3, 1)
        ));
        let mut query = sqlx::query::<Any>(&statement);
        for key in chunk {
            query = query
                .bind(key.model.as_str())
                .bind(key.budget_id.as_str())
                .bind(key.itemization_id.as_str());
        }
        for row in query.fetch_all(&mut *w.tx).await? {
            let pair = PairKey {
                model: sql::text(&row, 0)?,
                budget_id: sql::text(&row, 1)?,
                itemization_id: sql::text(&row, 2)?,
            };
            rows.push((pair, row));
        }
    }
    Ok(rows)
}

/// A stored outcome as the label join needs it.
struct Joined {
    outcome_id: String,
    request_id: String,
    key: CounterKey,
    matched: bool,
    label: Option<bool>,
    /// Whether it counts as scored ([`super::scored`]): labels of the
    /// others move nothing.
    scored: bool,
    score: f32,
}

/// The outcomes of `pairs`.
async fn fetch_outcomes(
    w: &mut Writer<'_>,
    pairs: &[PairKey],
) -> Result<HashMap<PairKey, Vec<Joined>>, StorageError> {
    let mut out: HashMap<PairKey, Vec<Joined>> = HashMap::new();
    let columns = "t.outcome_id, t.request_id, t.version, t.shadow, t.threshold, \
                   t.scored_hour_ms, t.matched, t.label, t.scored, t.score";
    for (pair, row) in rows_of_pairs(w, "outcomes", columns, pairs).await? {
        let joined = Joined {
            outcome_id: sql::text(&row, 3)?,
            request_id: sql::text(&row, 4)?,
            key: CounterKey {
                model: pair.model.clone(),
                version: sql::text(&row, 5)?,
                shadow: sql::int(&row, 6)? != 0,
                threshold_bits: sql::float(&row, 7)?.to_bits(),
                hour_ms: sql::int(&row, 8)?,
            },
            matched: sql::int(&row, 9)? != 0,
            label: sql::opt_int(&row, 10)?.map(|l| l != 0),
            scored: counts_as_scored(sql::int(&row, 11)? != 0),
            // Stored from an f32: narrowing gives it back exactly.
            score: sql::float(&row, 12)? as f32,
        };
        out.entry(pair).or_default().push(joined);
    }
    Ok(out)
}

/// One label to store, as the caller checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewLabel<'a> {
    /// The pair it is about.
    pub pair: PairKey,
    /// The one request whose outcome it labels; empty: every outcome of the
    /// pair without a label of its own.
    pub request_id: &'a str,
    pub label: bool,
    /// When its truth became known; the newest one wins.
    pub labelled_at_ms: i64,
    pub source: &'a str,
}

impl Store {
    /// Stores `labels`, received at `now`, and re-joins the outcomes of
    /// their pairs in one transaction; returns how many of the labels found
    /// an outcome to join (every outcome of the pair for a pair-wide label,
    /// the request's for the others).
    pub(crate) async fn insert_labels(
        &self,
        labels: &[NewLabel<'_>],
        now: i64,
    ) -> Result<u64, StorageError> {
        let mut writer = self.writer().await?;
        let per = writer.per;
        insert_history(&mut writer, labels, now).await?;

        // Fold the batch into the current labels, in arrival order.
        let pairs: Vec<PairKey> = labels
            .iter()
            .map(|l| l.pair.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut current = fetch_labels(&mut writer, &pairs).await?;
        let mut replaced: HashMap<(PairKey, &str), &NewLabel<'_>> = HashMap::new();
        for label in labels {
            let slots = current.entry(label.pair.clone()).or_default();
            let existing = if label.request_id.is_empty() {
                slots.pair.as_ref()
            } else {
                slots.by_request.get(label.request_id)
            };
            // An older truth arriving late does not roll back a newer one;
            // on equal times the later arrival wins.
            if existing.is_some_and(|c| c.labelled_at_ms > label.labelled_at_ms) {
                continue;
            }
            let new = Current {
                label: label.label,
                labelled_at_ms: label.labelled_at_ms,
            };
            if label.request_id.is_empty() {
                slots.pair = Some(new);
            } else {
                slots.by_request.insert(label.request_id.to_owned(), new);
            }
            replaced.insert((label.pair.clone(), label.request_id), label);
        }
        let replaced: Vec<&NewLabel<'_>> = replaced.into_values().collect();
        upsert_current(&mut writer, &replaced, now).await?;

        // Re-join every outcome of the touched pairs.
        let outcomes = fetch_outcomes(&mut writer, &pairs).await?;
        let mut joined = 0;
        for label in labels {
            let found = outcomes.get(&label.pair).is_some_and(|list| {
                label.request_id.is_empty() || list.iter().any(|o| o.request_id == label.request_id)
            });
            joined += u64::from(found);
        }

        let mut deltas: HashMap<CounterKey, Counts> = HashMap::new();
        let mut bins = BinDeltas::new();
        let mut set_true: Vec<&str> = Vec::new();
        let mut set_false: Vec<&str> = Vec::new();
        for (pair, list) in &outcomes {
            let Some(pair_labels) = current.get(pair) else {
                continue;
            };
            for outcome in list.iter().filter(|o| o.scored) {
                let new = pair_labels.effective(&outcome.request_id);
                if new == outcome.label {
                    continue;
                }
                score_bins::move_label(
                    &mut bins,
                    BinnedOutcome {
                        model: &outcome.key.model,
                        version: &outcome.key.version,
                        shadow: outcome.key.shadow,
                        hour_ms: outcome.key.hour_ms,
                        score: outcome.score,
                        scored: outcome.scored,
                    },
                    outcome.label,
                    new,
                );
                let delta = deltas.entry(outcome.key.clone()).or_default();
                if let Some(old) = outcome.label {
                    delta.cell(outcome.matched, old, -1);
                }
                match new {
                    Some(label) => {
                        delta.cell(outcome.matched, label, 1);
                        if label {
                            set_true.push(&outcome.outcome_id);
                        } else {
                            set_false.push(&outcome.outcome_id);
                        }
                    }
                    // Labels are never deleted, so a labelled outcome stays
                    // labelled.
                    None => unreachable!("a stored label disappeared"),
                }
            }
        }
        for (value, ids) in [(1_i64, &set_true), (0, &set_false)] {
            for chunk in ids.chunks(per * 3) {
                let statement = writer.backend.sql(format!(
                    "UPDATE outcomes SET label = $1 WHERE outcome_id IN ({})",
                    sql::list(writer.backend, chunk.len(), 2)
                ));
                let mut query = sqlx::query::<Any>(&statement).bind(value);
                for id in chunk {
                    query = query.bind(*id);
                }
                query.execute(&mut *writer.tx).await?;
            }
        }
        counters::apply(&mut writer, deltas).await?;
        score_bins::apply(&mut writer, bins).await?;
        writer.tx.commit().await?;
        Ok(joined)
    }
}

async fn insert_history(
    w: &mut Writer<'_>,
    labels: &[NewLabel<'_>],
    now: i64,
) -> Result<(), StorageError> {
    let labels: Vec<&NewLabel<'_>> = labels.iter().collect();
    insert_label_rows(w, "label_history", "", &labels, now).await
}

async fn upsert_current(
    w: &mut Writer<'_>,
    labels: &[&NewLabel<'_>],
    now: i64,
) -> Result<(), StorageError> {
    insert_label_rows(
        w,
        "labels",
        " ON CONFLICT (model, budget_id, itemization_id, request_id) DO UPDATE SET \
         label = excluded.label, labelled_at_ms = excluded.labelled_at_ms, \
         source = excluded.source, received_at_ms = excluded.received_at_ms",
        labels,
        now,
    )
    .await
}

/// Inserts label rows into `table` (`labels` or `label_history`, which
/// share these eight columns), with `tail` after the VALUES list.
async fn insert_label_rows(
    w: &mut Writer<'_>,
    table: &str,
    tail: &str,
    labels: &[&NewLabel<'_>],
    now: i64,
) -> Result<(), StorageError> {
    for chunk in labels.chunks(w.per * 3) {
        let statement = w.backend.sql(format!(
            "INSERT INTO {table} (model, budget_id, itemization_id, request_id, label, \
             labelled_at_ms, source, received_at_ms) VALUES {}{tail}",
            sql::values(w.backend, chunk.len(), 8, 1)
        ));
        let mut query = sqlx::query::<Any>(&statement);
        for l in chunk {
            query = query
                .bind(l.pair.model.as_str())
                .bind(l.pair.budget_id.as_str())
                .bind(l.pair.itemization_id.as_str())
                .bind(l.request_id)
                .bind(i64::from(l.label))
                .bind(l.labelled_at_ms)
                .bind(l.source)
                .bind(now);
        }
        query.execute(&mut *w.tx).await?;
    }
    Ok(())
}
