//! `RecordOutcomes`: outcomes checked one by one (a bad outcome is
//! rejected, the others stored), deduplicated by `outcome_id`, each given
//! the calibrated probability its model version's reference profile
//! assigns its score, and stored with the request's item errors in one
//! transaction.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use triad_proto::v1::{
    ItemErrorCode, Outcome, RecordOutcomesRequest, RecordOutcomesResponse, Rejection,
};
use triad_series::ReferenceProfile;

use super::Monitor;
use super::error::{AppError, RequestError};
use super::validate::{self, MAX_ID_BYTES};
use crate::buckets::now_ms;
use crate::fields::input_values;
use crate::profiles::probability;
use crate::store::{NewItemError, NewOutcome};

/// Longest item error message stored, in bytes; a longer one is cut.
pub(crate) const MAX_ERROR_MESSAGE_BYTES: usize = 2_048;

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
    // An explanation that cannot be stored never refuses its outcome: the
    // outcome is stored without it (see `record_outcomes`).
    Ok(scored_at_ms)
}

/// The item errors of `request` as stored: their texts cut to
/// [`MAX_ID_BYTES`] (ids, field, kind, code) and
/// [`MAX_ERROR_MESSAGE_BYTES`] (the message), never refused: an item error
/// is a report.
fn item_errors(request: &RecordOutcomesRequest) -> Vec<NewItemError> {
    // What the sender wrote, cut to a bounded length.
    let id = |text: &str| validate::storable(&validate::truncated(text, MAX_ID_BYTES)).into_owned();
    request
        .errors
        .iter()
        .map(|error| {
            let code = ItemErrorCode::try_from(error.code)
                .map(|c| c.as_str_name().to_owned())
                .unwrap_or_else(|_| error.code.to_string());
            NewItemError {
                item_kind: id(&error.item_kind),
                index: error.index,
                field: id(&error.field),
                code: id(&code),
                budget_id: id(&error.budget_id),
                itemization_id: id(&error.itemization_id),
                message: validate::storable(&validate::truncated(
                    &error.message,
                    MAX_ERROR_MESSAGE_BYTES,
                ))
                .into_owned(),
                dropped: error.dropped,
            }
        })
        .collect()
}

impl Monitor {
    /// Stores a batch of outcomes and item errors (`RecordOutcomes`).
    /// `first_index` numbers the outcomes in rejections (non-zero for later
    /// messages of a stream).
    pub async fn record_outcomes(
        &self,
        request: &RecordOutcomesRequest,
        first_index: u32,
    ) -> Result<RecordOutcomesResponse, AppError> {
        if !request.errors.is_empty() && request.request_id.is_empty() {
            return Err(RequestError::ErrorsWithoutRequest.into());
        }
        validate::query_id("request_id", &request.request_id, false)?;
        let now = now_ms();
        let mut response = RecordOutcomesResponse::default();
        let mut seen: HashSet<&str> = HashSet::with_capacity(request.outcomes.len());
        let mut valid: Vec<(&Outcome, i64)> = Vec::with_capacity(request.outcomes.len());
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
            valid.push((outcome, scored_at_ms));
        }
        if valid.is_empty() && request.errors.is_empty() {
            return Ok(response);
        }

        // The reference profile of each model version, for the calibrated
        // probabilities of the expected confusion cells; looked up before
        // the store takes its writer lock (a first read parses a file).
        let mut profiles: HashMap<(&str, &str), Option<Arc<ReferenceProfile>>> = HashMap::new();
        for (outcome, _) in &valid {
            let (model, version) = (outcome.model.as_str(), outcome.version.as_str());
            if let Entry::Vacant(slot) = profiles.entry((model, version)) {
                let lookup = self.profiles().get(model, version).await;
                slot.insert(lookup.profile().cloned());
            }
        }
        let outcomes: Vec<NewOutcome<'_>> = valid
            .iter()
            .map(|&(o, scored_at_ms)| {
                let profile = profiles
                    .get(&(o.model.as_str(), o.version.as_str()))
                    .and_then(Option::as_deref);
                NewOutcome {
                    outcome_id: &o.outcome_id,
                    request_id: &o.request_id,
                    correlation_id: &o.correlation_id,
                    scored_at_ms,
                    model: &o.model,
                    version: &o.version,
                    shadow: o.shadow,
                    schema_hash: &o.schema_hash,
                    budget_id: &o.budget_id,
                    itemization_id: &o.itemization_id,
                    score: o.score,
                    threshold: o.threshold,
                    matched: o.matched,
                    latency_ms: o.latency_ms,
                    inputs: input_values(o).map(|value| value.map(validate::storable)),
                    features: &o.features,
                    probability: probability(profile, f64::from(o.score)),
                    scored: !o.not_scored,
                    explanation: o
                        .explanation
                        .as_ref()
                        .filter(|_| !o.not_scored)
                        .filter(|e| crate::app::explanations::check(e).is_ok())
                        .map(crate::app::explanations::to_json),
                }
            })
            .collect();

        let written = self
            .store()
            .insert_outcomes(&outcomes, &request.request_id, &item_errors(request), now)
            .await?;
        response.stored = written.stored.len() as u64;
        // The others were stored already.
        response.duplicates += (outcomes.len() - written.stored.len()) as u64;
        response.errors_stored = written.errors_stored;
        crate::telemetry::outcomes_stored(
            written.stored.iter().map(|&i| outcomes[i].model),
            response.duplicates,
        );
        // Outcomes stored without the explanation they came with (too
        // wide, or a number that is not finite).
        let dropped = written
            .stored
            .iter()
            .filter(|&&i| {
                let (o, _) = valid[i];
                outcomes[i].explanation.is_none() && o.explanation.is_some() && !o.not_scored
            })
            .count();
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "outcomes stored without their explanation: it could not be stored"
            );
            crate::telemetry::explanations_dropped(dropped as u64);
        }
        Ok(response)
    }
}
