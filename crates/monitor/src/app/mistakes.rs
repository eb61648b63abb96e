//! `ListMistakes`: false positives and negatives with their inputs,
//! features and scores, newest first or most confident first, paged by an
//! opaque keyset token that only continues the order it was issued for.

use triad_proto::v1::list_mistakes_request::{Kind, Order};
use triad_proto::v1::{ListMistakesRequest, ListMistakesResponse, Mistake, Outcome};

use super::Monitor;
use super::error::{AppError, RequestError};
use super::validate;
use crate::fields::sides;
use crate::store::{MistakeFilter, MistakeKey, MistakeOrder, MistakeRow};

/// Page size when the request gives none.
pub(crate) const DEFAULT_PAGE_SIZE: u32 = 100;
/// Largest page size a request may ask for.
pub(crate) const MAX_PAGE_SIZE: u32 = 1_000;

/// Token prefix of the newest-first order: hex of `<scored_at_ms>:<id>`.
const NEWEST_PREFIX: &str = "m1:";
/// Token prefix of the most-confident order: hex of `<margin's f64 bits as
/// 16 hex digits>:<id>`, so the margin comes back bit for bit.
const CONFIDENT_PREFIX: &str = "m2:";

fn hex(raw: &str) -> String {
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The page token of the page after `key`.
fn encode(key: &MistakeKey) -> String {
    match key {
        MistakeKey::Newest {
            scored_at_ms,
            outcome_id,
        } => format!(
            "{NEWEST_PREFIX}{}",
            hex(&format!("{scored_at_ms}:{outcome_id}"))
        ),
        MistakeKey::MostConfident { margin, outcome_id } => format!(
            "{CONFIDENT_PREFIX}{}",
            hex(&format!("{:016x}:{outcome_id}", margin.to_bits()))
        ),
    }
}

/// Where the page of `token` starts, if this server issued it for `order`.
fn decode(token: &str, order: MistakeOrder) -> Result<MistakeKey, RequestError> {
    let bad = || RequestError::page_token(token);
    let prefix = match order {
        MistakeOrder::Newest => NEWEST_PREFIX,
        MistakeOrder::MostConfident => CONFIDENT_PREFIX,
    };
    let hex = token.strip_prefix(prefix).ok_or_else(bad)?;
    if hex.len() % 2 != 0 || !hex.is_ascii() {
        return Err(bad());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad())?;
    let raw = String::from_utf8(bytes).map_err(|_| bad())?;
    let (position, id) = raw.split_once(':').ok_or_else(bad)?;
    if id.contains('\0') {
        return Err(bad());
    }
    let outcome_id = id.to_owned();
    Ok(match order {
        MistakeOrder::Newest => MistakeKey::Newest {
            scored_at_ms: position.parse().map_err(|_| bad())?,
            outcome_id,
        },
        MistakeOrder::MostConfident => {
            if position.len() != 16 {
                return Err(bad());
            }
            let margin = f64::from_bits(u64::from_str_radix(position, 16).map_err(|_| bad())?);
            if !margin.is_finite() || margin < 0.0 {
                return Err(bad());
            }
            MistakeKey::MostConfident { margin, outcome_id }
        }
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
    /// False positives and negatives, newest or most confident first
    /// (`ListMistakes`).
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
        let order = match Order::try_from(request.order) {
            Ok(Order::Unspecified) => MistakeOrder::Newest,
            Ok(Order::MostConfident) => MistakeOrder::MostConfident,
            Err(_) => return Err(RequestError::UnknownOrder(request.order).into()),
        };
        let after = if request.page_token.is_empty() {
            None
        } else {
            Some(decode(&request.page_token, order)?)
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
            order,
            after,
            limit: page_size as usize,
        };
        let page = self.store().mistakes(&filter).await?;
        let next_page_token = match page.mistakes.last() {
            Some(last) if page.more => encode(&match order {
                MistakeOrder::Newest => MistakeKey::Newest {
                    scored_at_ms: last.scored_at_ms,
                    outcome_id: last.outcome_id.clone(),
                },
                MistakeOrder::MostConfident => MistakeKey::MostConfident {
                    margin: last.margin,
                    outcome_id: last.outcome_id.clone(),
                },
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
        let key = MistakeKey::Newest {
            scored_at_ms: 1_795_614_300_000,
            outcome_id: "req-1:model:1:b:i".into(),
        };
        assert_eq!(decode(&encode(&key), MistakeOrder::Newest).unwrap(), key);
        let confident = MistakeKey::MostConfident {
            margin: 0.1 + 0.2,
            outcome_id: "req-1:model:1:b:i".into(),
        };
        assert_eq!(
            decode(&encode(&confident), MistakeOrder::MostConfident).unwrap(),
            confident
        );
        // A token continues only the order it was issued for.
        for (token, order) in [
            (encode(&key), MistakeOrder::MostConfident),
            (encode(&confident), MistakeOrder::Newest),
        ] {
            assert!(matches!(
                decode(&token, order),
                Err(RequestError::PageToken(_))
            ));
        }
        let nan = format!(
            "{CONFIDENT_PREFIX}{}",
            hex(&format!("{:016x}:x", f64::NAN.to_bits()))
        );
        let short = format!("{CONFIDENT_PREFIX}{}", hex("3ff:x"));
        for bad in ["", "m1:zz", "m1:616", "x1:6162", "m1:6162", &nan, &short] {
            for order in [MistakeOrder::Newest, MistakeOrder::MostConfident] {
                assert!(
                    matches!(decode(bad, order), Err(RequestError::PageToken(_))),
                    "{bad}"
                );
            }
        }
    }
}
