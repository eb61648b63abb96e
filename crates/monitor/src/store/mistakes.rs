//! False positives and negatives with their inputs, features and scores,
//! newest first or most confident first, a page at a time after a keyset
//! position.
//!
//! Both orders read only the rows of the partial index `outcomes_mistakes`
//! (labelled outcomes whose label differs from the prediction) within the
//! model and time range. Newest first walks that index and stops after the
//! page. Most confident first (largest `|score - threshold|`) walks the
//! partial index `outcomes_mistakes_margin` (migration `0007`: the same
//! rows keyed by model, `ABS(score - threshold)` and id) from its top,
//! keeps the entries in the range until it holds `limit + 1`, and only
//! those rows are then read whole. Its cost grows with the model's
//! mistakes ranked above the page's last one that fall outside the range
//! (none when the range holds every stored mistake), never with the
//! outcomes that were right.

use sqlx::Any;
use sqlx::any::AnyRow;
use triad_features::MISSING_FLAG_FIELDS;

use super::scored::SCORED_SQL;
use super::{StorageError, Store, features_from_json, sql};
use crate::buckets::Range;

/// Where a page of mistakes starts: after this key, in the page's order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MistakeKey {
    /// After this (time, id), going back in time.
    Newest {
        scored_at_ms: i64,
        outcome_id: String,
    },
    /// After this (margin, id), going down in confidence; the margin is
    /// `|score - threshold|` exactly as the database computed it.
    MostConfident { margin: f64, outcome_id: String },
}

/// The order of a page of mistakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum MistakeOrder {
    /// By `scored_at_ms`, then `outcome_id`, both descending.
    #[default]
    Newest,
    /// By `|score - threshold|`, then `outcome_id`, both descending.
    MostConfident,
}

/// Which mistakes to read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MistakeFilter {
    pub model: String,
    /// `None`: every version.
    pub version: Option<String>,
    /// `Some(true)`: false positives only; `Some(false)`: false negatives
    /// only; `None`: both.
    pub matched: Option<bool>,
    pub include_shadow: bool,
    /// On `scored_at_ms`, exact to the millisecond.
    pub range: Range,
    /// The page's order.
    pub order: MistakeOrder,
    /// Only the mistakes after this one, in `order` (a key of the other
    /// order is ignored: the application layer refuses it first).
    pub after: Option<MistakeKey>,
    /// Most mistakes in the page.
    pub limit: usize,
}

/// A page of mistakes.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct MistakePage {
    /// At most the filter's `limit`, in the filter's order.
    pub mistakes: Vec<MistakeRow>,
    /// Whether more mistakes follow the last one.
    pub more: bool,
}

/// One stored mistake: an outcome whose label differs from its
/// prediction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MistakeRow {
    pub outcome_id: String,
    pub request_id: String,
    pub correlation_id: String,
    pub scored_at_ms: i64,
    pub model: String,
    pub version: String,
    pub schema_hash: String,
    pub budget_id: String,
    pub itemization_id: String,
    pub score: f64,
    pub threshold: f64,
    pub matched: bool,
    pub latency_ms: f64,
    pub shadow: bool,
    pub label: bool,
    /// `|score - threshold|` as the database computed it (the key of the
    /// most-confident order).
    pub margin: f64,
    /// The feature vector the model scored (NaN = missing).
    pub features: Vec<f32>,
    /// The raw input values in [`MISSING_FLAG_FIELDS`] order.
    pub inputs: [Option<String>; MISSING_FLAG_FIELDS.len()],
    /// Why the model scored it as it did, as stored (JSON, migration
    /// `0004`); `None` when there is none.
    pub explanation: Option<String>,
}

const COLUMNS: &str = "outcome_id, request_id, scored_at_ms, model, version, schema_hash, \
    budget_id, itemization_id, score, threshold, matched, latency_ms, shadow, label, features, \
    correlation_id, explanation, ABS(score - threshold)";

/// Index of the margin column, the last of [`COLUMNS`].
const MARGIN: usize = 17;
/// Index of the first input field after [`COLUMNS`].
const FIRST_INPUT: usize = MARGIN + 1;

fn mistake(row: &AnyRow) -> Result<MistakeRow, StorageError> {
    let mut inputs: [Option<String>; MISSING_FLAG_FIELDS.len()] = Default::default();
    for (i, value) in inputs.iter_mut().enumerate() {
        *value = sql::opt_text(row, FIRST_INPUT + i)?;
    }
    Ok(MistakeRow {
        outcome_id: sql::text(row, 0)?,
        request_id: sql::text(row, 1)?,
        scored_at_ms: sql::int(row, 2)?,
        model: sql::text(row, 3)?,
        version: sql::text(row, 4)?,
        schema_hash: sql::text(row, 5)?,
        budget_id: sql::text(row, 6)?,
        itemization_id: sql::text(row, 7)?,
        score: sql::float(row, 8)?,
        threshold: sql::float(row, 9)?,
        matched: sql::int(row, 10)? != 0,
        latency_ms: sql::float(row, 11)?,
        shadow: sql::int(row, 12)? != 0,
        label: sql::int(row, 13)? != 0,
        features: features_from_json(&sql::text(row, 14)?).map_err(StorageError::Corrupt)?,
        correlation_id: sql::text(row, 15)?,
        explanation: sql::opt_text(row, 16)?,
        margin: sql::float(row, MARGIN)?,
        inputs,
    })
}

impl Store {
    /// The first page of the mistakes `filter` selects, in its order:
    /// newest first (by `scored_at_ms`, then `outcome_id`) or most
    /// confident first (by `|score - threshold|`, then `outcome_id`).
    pub(crate) async fn mistakes(
        &self,
        filter: &MistakeFilter,
    ) -> Result<MistakePage, StorageError> {
        // The partial index outcomes_mistakes holds exactly these rows.
        let mut conditions =
            format!("model = $1 AND label IS NOT NULL AND label <> matched AND {SCORED_SQL}");
        let mut n = 1;
        let mut next = || {
            n += 1;
            n
        };
        match filter.matched {
            Some(true) => conditions += " AND matched = 1",
            Some(false) => conditions += " AND matched = 0",
            None => {}
        }
        if filter.version.is_some() {
            conditions += &format!(" AND version = ${}", next());
        }
        if !filter.include_shadow {
            conditions += " AND shadow = 0";
        }
        // Most confident first walks outcomes_mistakes_margin (migration
        // 0007) from its top and checks the time of each entry: the unary
        // `+` (a no-op on both databases) keeps SQLite, which has no
        // statistics to weigh the two, from choosing the time index
        // instead and sorting every mistake of the window.
        let time = match filter.order {
            MistakeOrder::Newest => "scored_at_ms",
            MistakeOrder::MostConfident => "+scored_at_ms",
        };
        if filter.range.from_ms.is_some() {
            conditions += &format!(" AND {time} >= ${}", next());
        }
        if filter.range.to_ms.is_some() {
            conditions += &format!(" AND {time} < ${}", next());
        }
        let after = match (&filter.after, filter.order) {
            (Some(key @ MistakeKey::Newest { .. }), MistakeOrder::Newest)
            | (Some(key @ MistakeKey::MostConfident { .. }), MistakeOrder::MostConfident) => {
                Some(key)
            }
            _ => None,
        };
        match after {
            Some(MistakeKey::Newest { .. }) => {
                let (a, b, c) = (next(), next(), next());
                conditions += &format!(
                    " AND (scored_at_ms < ${a} OR (scored_at_ms = ${b} AND outcome_id < ${c}))"
                );
            }
            Some(MistakeKey::MostConfident { .. }) => {
                let (a, b, c) = (next(), next(), next());
                conditions += &format!(
                    " AND (ABS(score - threshold) < ${a} \
                     OR (ABS(score - threshold) = ${b} AND outcome_id < ${c}))"
                );
            }
            None => {}
        }
        let inputs = MISSING_FLAG_FIELDS.join(", ");
        let limit = next();
        let statement = match filter.order {
            MistakeOrder::Newest => format!(
                "SELECT {COLUMNS}, {inputs} FROM outcomes WHERE {conditions} \
                 ORDER BY scored_at_ms DESC, outcome_id DESC LIMIT ${limit}"
            ),
            // The top of the page by margin from id, score and threshold
            // alone, then only those rows read whole.
            MistakeOrder::MostConfident => format!(
                "SELECT {COLUMNS}, {inputs} FROM outcomes WHERE outcome_id IN (\
                 SELECT outcome_id FROM outcomes WHERE {conditions} \
                 ORDER BY ABS(score - threshold) DESC, outcome_id DESC LIMIT ${limit}) \
                 ORDER BY ABS(score - threshold) DESC, outcome_id DESC"
            ),
        };

        let statement = self.backend().sql(statement);
        let mut query = sqlx::query::<Any>(&statement).bind(filter.model.as_str());
        if let Some(version) = &filter.version {
            query = query.bind(version.as_str());
        }
        if let Some(from) = filter.range.from_ms {
            query = query.bind(from);
        }
        if let Some(to) = filter.range.to_ms {
            query = query.bind(to);
        }
        match after {
            Some(MistakeKey::Newest {
                scored_at_ms,
                outcome_id,
            }) => {
                query = query
                    .bind(*scored_at_ms)
                    .bind(*scored_at_ms)
                    .bind(outcome_id.as_str());
            }
            Some(MistakeKey::MostConfident { margin, outcome_id }) => {
                query = query.bind(*margin).bind(*margin).bind(outcome_id.as_str());
            }
            None => {}
        }
        // One more than the page holds tells whether another page follows.
        query = query.bind(i64::try_from(filter.limit).map_or(i64::MAX, |n| n.saturating_add(1)));
        let rows = query.fetch_all(self.pool()).await?;
        Ok(MistakePage {
            more: rows.len() > filter.limit,
            mistakes: rows
                .iter()
                .take(filter.limit)
                .map(mistake)
                .collect::<Result<_, _>>()?,
        })
    }
}
