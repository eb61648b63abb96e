//! Storing labels: every label goes to `label_history`; the current label
//! per (model, pair, request) is replaced unless the new one is older (by
//! `labelled_at_ms`); then each touched pair's outcomes are re-joined and
//! every outcome whose label changed moves one count in the counters.

use std::collections::{HashMap, HashSet};

use sqlx::Any;
use sqlx::any::AnyRow;
use triad_proto::v1::{RecordLabelsRequest, RecordLabelsResponse, Rejection};

use super::counters::{self, CounterKey, Counts};
use super::{Store, Writer, sql, validate};
use crate::buckets::now_ms;
use crate::error::MonitorError;

/// A (model, budget, line item) pair: what a label is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PairKey {
    pub model: String,
    pub budget_id: String,
    pub itemization_id: String,
}

impl PairKey {
    pub fn of(model: &str, budget_id: &str, itemization_id: &str) -> Self {
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
    pub fn effective(&self, request_id: &str) -> Option<bool> {
        self.by_request
            .get(request_id)
            .or(self.pair.as_ref())
            .map(|c| c.label)
    }
}

/// Whether any label is stored: most outcome batches arrive before any
/// label, and then skip the join.
pub(crate) async fn has_labels(w: &mut Writer<'_>) -> Result<bool, MonitorError> {
    Ok(sqlx::query::<Any>("SELECT 1 FROM labels LIMIT 1")
        .fetch_optional(&mut *w.tx)
        .await?
        .is_some())
}

/// The current labels of `pairs`.
pub(crate) async fn fetch_labels(
    w: &mut Writer<'_>,
    pairs: &[PairKey],
) -> Result<HashMap<PairKey, PairLabels>, MonitorError> {
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
) -> Result<Vec<(PairKey, AnyRow)>, MonitorError> {
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
}

/// The outcomes of `pairs`.
async fn fetch_outcomes(
    w: &mut Writer<'_>,
    pairs: &[PairKey],
) -> Result<HashMap<PairKey, Vec<Joined>>, MonitorError> {
    let mut out: HashMap<PairKey, Vec<Joined>> = HashMap::new();
    let columns = "t.outcome_id, t.request_id, t.version, t.shadow, t.threshold, \
                   t.scored_hour_ms, t.matched, t.label";
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
        };
        out.entry(pair).or_default().push(joined);
    }
    Ok(out)
}

/// A valid label, normalized.
struct NewLabel<'a> {
    pair: PairKey,
    request_id: &'a str,
    label: bool,
    labelled_at_ms: i64,
    source: &'a str,
}

/// When the truth of `label` became known (0: `now`), or why it cannot be
/// stored. A time in the future is refused like one before 2000: the
/// newest label wins, so a label dated in the future could never be
/// corrected.
fn check(label: &triad_proto::v1::Label, now: i64) -> Result<i64, String> {
    validate::item_id("model", &label.model, true)?;
    validate::item_id("budget_id", &label.budget_id, true)?;
    validate::item_id("itemization_id", &label.itemization_id, true)?;
    validate::item_id("request_id", &label.request_id, false)?;
    validate::item_id("source", &label.source, false)?;
    validate::event_time("labelled_at_ms", label.labelled_at_ms, now)
}

impl Store {
    /// Stores labels and re-joins their outcomes (`RecordLabels`).
    pub async fn record_labels(
        &self,
        request: &RecordLabelsRequest,
    ) -> Result<RecordLabelsResponse, MonitorError> {
        let now = now_ms();
        let mut response = RecordLabelsResponse::default();
        let mut labels: Vec<NewLabel<'_>> = Vec::with_capacity(request.labels.len());
        for (i, label) in request.labels.iter().enumerate() {
            let labelled_at_ms = match check(label, now) {
                Ok(at) => at,
                Err(reason) => {
                    validate::list_rejection(
                        &mut response.rejected,
                        Rejection {
                            index: i as u32,
                            id: String::new(),
                            reason,
                        },
                    );
                    continue;
                }
            };
            labels.push(NewLabel {
                pair: PairKey::of(&label.model, &label.budget_id, &label.itemization_id),
                request_id: &label.request_id,
                label: label.label,
                labelled_at_ms,
                source: &label.source,
            });
        }
        if labels.is_empty() {
            return Ok(response);
        }
        let mut writer = self.writer().await?;
        let per = writer.per;
        insert_history(&mut writer, &labels, now).await?;

        // Fold the batch into the current labels, in arrival order.
        let pairs: Vec<PairKey> = labels
            .iter()
            .map(|l| l.pair.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut current = fetch_labels(&mut writer, &pairs).await?;
        let mut replaced: HashMap<(PairKey, &str), &NewLabel<'_>> = HashMap::new();
        for label in &labels {
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
        for label in &labels {
            let joined = outcomes.get(&label.pair).is_some_and(|list| {
                label.request_id.is_empty() || list.iter().any(|o| o.request_id == label.request_id)
            });
            response.joined += u64::from(joined);
        }
        response.stored = labels.len() as u64;

        let mut deltas: HashMap<CounterKey, Counts> = HashMap::new();
        let mut set_true: Vec<&str> = Vec::new();
        let mut set_false: Vec<&str> = Vec::new();
        for (pair, list) in &outcomes {
            let Some(pair_labels) = current.get(pair) else {
                continue;
            };
            for outcome in list {
                let new = pair_labels.effective(&outcome.request_id);
                if new == outcome.label {
                    continue;
                }
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
        writer.tx.commit().await?;
        crate::telemetry::labels_stored(response.stored);
        Ok(response)
    }
}

async fn insert_history(
    w: &mut Writer<'_>,
    labels: &[NewLabel<'_>],
    now: i64,
) -> Result<(), MonitorError> {
    let labels: Vec<&NewLabel<'_>> = labels.iter().collect();
    insert_label_rows(w, "label_history", "", &labels, now).await
}

async fn upsert_current(
    w: &mut Writer<'_>,
    labels: &[&NewLabel<'_>],
    now: i64,
) -> Result<(), MonitorError> {
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
) -> Result<(), MonitorError> {
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
