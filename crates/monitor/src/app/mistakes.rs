//! `ListMistakes`: false positives and negatives with their inputs,
//! features and scores, newest first, paged by an opaque keyset token.

use triad_proto::v1::list_mistakes_request::Kind;
use triad_proto::v1::{ListMistakesRequest, ListMistakesResponse, Mistake, Outcome};

use super::Monitor;
use super::error::{AppError, RequestError};
use super::validate;
use crate::fields::sides;
use crate::store::{MistakeFilter, MistakeKey, MistakeRow};

/// Page size when the request gives none.
pub(crate) const DEFAULT_PAGE_SIZE: u32 = 100;
/// Largest page size a request may ask for.
pub(crate) const MAX_PAGE_SIZE: u32 = 1_000;

const TOKEN_PREFIX: &str = "m1:";

/// The page token of the page after `key`.
fn encode(key: &MistakeKey) -> String {
    let raw = format!("{}:{}", key.scored_at_ms, key.outcome_id);
    let hex: String = raw.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{TOKEN_PREFIX}{hex}")
}

/// Where the page of `token` starts, if this server issued it.
fn decode(token: &str) -> Result<MistakeKey, RequestError> {
    let bad = || RequestError::page_token(token);
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
    Ok(MistakeKey {
        scored_at_ms: time.parse().map_err(|_| bad())?,
        outcome_id: id.to_owned(),
    })
}

/// A stored mistake as the wire shows it.
fn mistake(row: MistakeRow) -> Mistake {
    let (budget, line_item) = sides(&row.budget_id, &row.itemization_id, row.inputs);
    let kind = if row.matched {
        "false_positive"
    } else {
        "false_negative"
    };
    let outcome = Outcome {
        outcome_id: row.outcome_id,
        request_id: row.request_id,
        scored_at_ms: row.scored_at_ms,
        model: row.model,
        version: row.version,
        schema_hash: row.schema_hash,
        budget_id: row.budget_id,
        itemization_id: row.itemization_id,
        score: row.score as f32,
        threshold: row.threshold as f32,
        matched: row.matched,
        latency_ms: row.latency_ms as f32,
        shadow: row.shadow,
        budget: Some(budget),
        line_item: Some(line_item),
        features: row.features,
        correlation_id: row.correlation_id,
        // Mistakes are scored outcomes only.
        not_scored: false,
        explanation: row
            .explanation
            .as_deref()
            .and_then(crate::app::explanations::from_json),
    };
    Mistake {
        outcome: Some(outcome),
        label: row.label,
        kind: kind.to_owned(),
    }
}

impl Monitor {
    /// False positives and negatives, newest first (`ListMistakes`).
    pub async fn list_mistakes(
        &self,
        request: &ListMistakesRequest,
    ) -> Result<ListMistakesResponse, AppError> {
        validate::query_id("model", &request.model, true)?;
        validate::query_id("version", &request.version, false)?;
        let range = validate::range(request.from_ms, request.to_ms)?;
        let kind =
            Kind::try_from(request.kind).map_err(|_| RequestError::UnknownKind(request.kind))?;
        let page_size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n > MAX_PAGE_SIZE => {
                return Err(RequestError::PageSize {
                    got: n,
                    max: MAX_PAGE_SIZE,
                }
                .into());
            }
            n => n,
        };
        let after = if request.page_token.is_empty() {
            None
        } else {
            Some(decode(&request.page_token)?)
        };
        let filter = MistakeFilter {
            model: request.model.clone(),
            version: (!request.version.is_empty()).then(|| request.version.clone()),
            matched: match kind {
                Kind::FalsePositive => Some(true),
                Kind::FalseNegative => Some(false),
                Kind::Unspecified => None,
            },
            include_shadow: request.include_shadow,
            range,
            after,
            limit: page_size as usize,
        };
        let page = self.store().mistakes(&filter).await?;
        let next_page_token = match page.mistakes.last() {
            Some(last) if page.more => encode(&MistakeKey {
                scored_at_ms: last.scored_at_ms,
                outcome_id: last.outcome_id.clone(),
            }),
            _ => String::new(),
        };
        Ok(ListMistakesResponse {
            mistakes: page.mistakes.into_iter().map(mistake).collect(),
            next_page_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_garbage() {
        let key = MistakeKey {
            scored_at_ms: 1_795_614_300_000,
            outcome_id: "req-1:model:1:b:i".into(),
        };
        assert_eq!(decode(&encode(&key)).unwrap(), key);
        for bad in ["", "m1:zz", "m1:616", "x1:6162", "m1:6162"] {
            assert!(
                matches!(decode(bad), Err(RequestError::PageToken(_))),
                "{bad}"
            );
        }
    }
}
