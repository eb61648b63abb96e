//! `ListMistakes`: false positives and negatives with their inputs,
//! features and scores, newest first, paged by an opaque keyset token.

use sqlx::Any;
use sqlx::any::AnyRow;
use triad_features::MISSING_FLAG_FIELDS;
use triad_proto::v1::list_mistakes_request::Kind;
use triad_proto::v1::{ListMistakesRequest, ListMistakesResponse, Mistake, Outcome};

use super::{Store, sql, validate};
use crate::buckets::Range;
use crate::error::MonitorError;
use crate::fields::{features_from_json, sides};

/// Page size when the request gives none.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Largest page size a request may ask for.
pub const MAX_PAGE_SIZE: u32 = 1_000;

const TOKEN_PREFIX: &str = "m1:";

/// Where the next page starts: after this (time, id), going back in time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    scored_at_ms: i64,
    outcome_id: String,
}

impl Cursor {
    fn encode(&self) -> String {
        let raw = format!("{}:{}", self.scored_at_ms, self.outcome_id);
        let hex: String = raw.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{TOKEN_PREFIX}{hex}")
    }

    fn decode(token: &str) -> Result<Self, MonitorError> {
        let bad = || MonitorError::page_token(token);
        let hex = token.strip_prefix(TOKEN_PREFIX).ok_or_else(bad)?;
        if hex.len() % 2 != 0 || !hex.is_ascii() {
            return Err(bad());
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| bad())?;
        let raw = String::from_utf8(bytes).map_err(|_| bad())?;
        let (time, id) = raw.split_once(':').ok_or_else(bad)?;
        if id.contains('\0') {
            return Err(bad());
        }
        Ok(Self {
            scored_at_ms: time.parse().map_err(|_| bad())?,
            outcome_id: id.to_owned(),
        })
    }
}

const COLUMNS: &str = "outcome_id, request_id, scored_at_ms, model, version, schema_hash, \
    budget_id, itemization_id, score, threshold, matched, latency_ms, shadow, label, features, \
    correlation_id";

/// Index of the first input field after [`COLUMNS`].
const FIRST_INPUT: usize = 16;

fn mistake(row: &AnyRow) -> Result<Mistake, MonitorError> {
    let budget_id = sql::text(row, 6)?;
    let itemization_id = sql::text(row, 7)?;
    let mut inputs: [Option<String>; MISSING_FLAG_FIELDS.len()] = Default::default();
    for (i, value) in inputs.iter_mut().enumerate() {
        *value = sql::opt_text(row, FIRST_INPUT + i)?;
    }
    let (budget, line_item) = sides(&budget_id, &itemization_id, inputs);
    let matched = sql::int(row, 10)? != 0;
    let label = sql::int(row, 13)? != 0;
    let outcome = Outcome {
        outcome_id: sql::text(row, 0)?,
        request_id: sql::text(row, 1)?,
        scored_at_ms: sql::int(row, 2)?,
        model: sql::text(row, 3)?,
        version: sql::text(row, 4)?,
        schema_hash: sql::text(row, 5)?,
        budget_id,
        itemization_id,
        score: sql::float(row, 8)? as f32,
        threshold: sql::float(row, 9)? as f32,
        matched,
        latency_ms: sql::float(row, 11)? as f32,
        shadow: sql::int(row, 12)? != 0,
        budget: Some(budget),
        line_item: Some(line_item),
        features: features_from_json(&sql::text(row, 14)?).map_err(MonitorError::Corrupt)?,
        correlation_id: sql::text(row, 15)?,
    };
    Ok(Mistake {
        outcome: Some(outcome),
        label,
        kind: if matched {
            "false_positive"
        } else {
            "false_negative"
        }
        .to_owned(),
    })
}

impl Store {
    /// False positives and negatives, newest first (`ListMistakes`).
    pub async fn list_mistakes(
        &self,
        request: &ListMistakesRequest,
    ) -> Result<ListMistakesResponse, MonitorError> {
        validate::query_id("model", &request.model, true)?;
        validate::query_id("version", &request.version, false)?;
        let range = Range::from_wire(request.from_ms, request.to_ms)?;
        let kind =
            Kind::try_from(request.kind).map_err(|_| MonitorError::UnknownKind(request.kind))?;
        let page_size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n > MAX_PAGE_SIZE => {
                return Err(MonitorError::PageSize {
                    got: n,
                    max: MAX_PAGE_SIZE,
                });
            }
            n => n,
        };
        let cursor = if request.page_token.is_empty() {
            None
        } else {
            Some(Cursor::decode(&request.page_token)?)
        };

        // The partial index outcomes_mistakes holds exactly these rows.
        let mut statement = format!(
            "SELECT {COLUMNS}, {} FROM outcomes \
             WHERE model = $1 AND label IS NOT NULL AND label <> matched",
            MISSING_FLAG_FIELDS.join(", ")
        );
        let mut n = 1;
        let mut next = || {
            n += 1;
            n
        };
        match kind {
            Kind::FalsePositive => statement += " AND matched = 1",
            Kind::FalseNegative => statement += " AND matched = 0",
            Kind::Unspecified => {}
        }
        if !request.version.is_empty() {
            statement += &format!(" AND version = ${}", next());
        }
        if !request.include_shadow {
            statement += " AND shadow = 0";
        }
        if range.from_ms.is_some() {
            statement += &format!(" AND scored_at_ms >= ${}", next());
        }
        if range.to_ms.is_some() {
            statement += &format!(" AND scored_at_ms < ${}", next());
        }
        if cursor.is_some() {
            let (a, b, c) = (next(), next(), next());
            statement += &format!(
                " AND (scored_at_ms < ${a} OR (scored_at_ms = ${b} AND outcome_id < ${c}))"
            );
        }
        statement += &format!(
            " ORDER BY scored_at_ms DESC, outcome_id DESC LIMIT ${}",
            next()
        );

        let statement = self.backend().sql(statement);
        let mut query = sqlx::query::<Any>(&statement).bind(request.model.as_str());
        if !request.version.is_empty() {
            query = query.bind(request.version.as_str());
        }
        if let Some(from) = range.from_ms {
            query = query.bind(from);
        }
        if let Some(to) = range.to_ms {
            query = query.bind(to);
        }
        if let Some(cursor) = &cursor {
            query = query
                .bind(cursor.scored_at_ms)
                .bind(cursor.scored_at_ms)
                .bind(cursor.outcome_id.as_str());
        }
        query = query.bind(i64::from(page_size) + 1);
        let rows = query.fetch_all(self.pool()).await?;

        let more = rows.len() > page_size as usize;
        let mistakes = rows
            .iter()
            .take(page_size as usize)
            .map(mistake)
            .collect::<Result<Vec<_>, _>>()?;
        let next_page_token = match mistakes.last().and_then(|m| m.outcome.as_ref()) {
            Some(last) if more => Cursor {
                scored_at_ms: last.scored_at_ms,
                outcome_id: last.outcome_id.clone(),
            }
            .encode(),
            _ => String::new(),
        };
        Ok(ListMistakesResponse {
            mistakes,
            next_page_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_garbage() {
        let cursor = Cursor {
            scored_at_ms: 1_795_614_300_000,
            outcome_id: "req-1:model:1:b:i".into(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        for bad in ["", "m1:zz", "m1:616", "x1:6162", "m1:6162"] {
            assert!(
                matches!(Cursor::decode(bad), Err(MonitorError::PageToken(_))),
                "{bad}"
            );
        }
    }
}
