//! The seed's HTTP contract, so existing clients keep working unchanged:
//! `POST /budget_expense_matcher/` takes the seed's request body and answers
//! a JSON list of `{"score", "budget_id", "itemization_id"}`.
//!
//! `score` is the model's decision, 1 or 0, as in the seed's response;
//! `?verbose=true` adds the probability, threshold, model and version, and
//! the pair's explanation (`explanation`: the contributions of each input
//! to the logit, by feature name, with the intercept and the logit), or,
//! for a model that has none (ONNX), `explanation_unavailable` saying so.
//! When the contract's model is gated (`gate` in its `serving.toml`), a
//! pair its gate model did not match is answered
//! `{"score": null, "scored": false, "gate": "<gate model>", ...}`: no
//! score at all, never a 0. (`budget_expense_matcher`, the default model,
//! is not gated, so its answer is the seed's, unchanged.) A bad
//! item is an entry with an `error` object inside the 200 response, never a
//! failed batch; malformed JSON is a 400 with a message saying what was
//! expected.

use std::borrow::Cow;

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use triad_features::{JsonLimits, RequestError, parse_request};
use triad_proto::v1;
use triad_telemetry::RequestIds;

use crate::engine::{Engine, Selection};
use crate::error::ScoreError;
use crate::payload::PayloadLog;

/// State of the HTTP front door.
#[derive(Debug, Clone)]
pub struct HttpState {
    /// What scores each request (the same engine as `Score`'s).
    pub engine: Engine,
    /// The model whose decisions the seed contract returns.
    pub model: String,
    /// Bounds on the body and on the JSON reader.
    pub limits: JsonLimits,
    /// Logging of each request's input and output, redacted.
    pub payload: PayloadLog,
}

/// The router: the seed endpoint (with and without the trailing slash) and
/// a liveness probe. A body over `limits.max_body_bytes` is a 413: at once
/// when its `Content-Length` says so, else as soon as reading passes the
/// limit; it is read no further.
pub fn router(state: HttpState) -> Router {
    let max_body_bytes = state.limits.max_body_bytes;
    Router::new()
        .route("/budget_expense_matcher/", post(score))
        .route("/budget_expense_matcher", post(score))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            max_body_bytes,
            refuse_announced_oversize,
        ))
        .with_state(state)
}

/// A body whose `Content-Length` is over `max_body_bytes` is answered 413
/// before any of it is read, so a caller cannot hold a request slot for
/// the request timeout by announcing a large body and sending none.
async fn refuse_announced_oversize(
    State(max_body_bytes): State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let announced = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    match announced {
        Some(length) if length > max_body_bytes as u64 => error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body is {length} bytes; at most {max_body_bytes} are accepted"),
        ),
        _ => next.run(request).await,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Options {
    verbose: bool,
}

/// One entry of the response list; a score entry borrows its ids from the
/// scorer's response, so answering a large request copies no id.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Entry<'a> {
    /// A scored pair.
    Score {
        /// The model's decision: 1 when the score reaches its threshold,
        /// else 0.
        score: u8,
        /// The pair's budget.
        #[serde(borrow)]
        budget_id: Cow<'a, str>,
        /// The pair's line item.
        #[serde(borrow)]
        itemization_id: Cow<'a, str>,
        /// With `?verbose=true`: the probability and the model behind the
        /// decision.
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        detail: Option<Detail<'a>>,
    },
    /// A pair the model did not score: it is gated and its gate model did
    /// not match the pair.
    NotScored {
        /// Always null: there is no score, not even 0.
        score: Option<u8>,
        /// Always false.
        scored: bool,
        /// The model whose decision left the pair unscored.
        #[serde(borrow)]
        gate: Cow<'a, str>,
        /// The pair's budget.
        #[serde(borrow)]
        budget_id: Cow<'a, str>,
        /// The pair's line item.
        #[serde(borrow)]
        itemization_id: Cow<'a, str>,
    },
    /// An item the request could not use whole.
    Error {
        /// The budget's id, when the error is about a budget that has one.
        budget_id: Option<String>,
        /// The line item's id, when the error is about a line item that
        /// has one.
        itemization_id: Option<String>,
        /// What was wrong.
        error: EntryError,
    },
}

/// What `?verbose=true` adds to a score entry.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Detail<'a> {
    /// The model's probability that the pair matches, in 0..=1.
    pub probability: f32,
    /// The model version's threshold: `score` is 1 at or above it.
    pub threshold: f32,
    /// The model's name.
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    /// The model version that scored.
    #[serde(borrow)]
    pub version: Cow<'a, str>,
    /// Why the pair scored as it did: `{"intercept", "logit",
    /// "contributions": {feature: contribution}}`, `logit = intercept +
    /// Σ contributions`. The contributions object's keys come out sorted by
    /// feature name (a JSON object has no order, and `serde_json` keeps
    /// its maps sorted), not in the model's input order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<serde_json::Value>,
    /// Why there is no `explanation`: the model cannot explain itself, or
    /// this pair's explanation is not finite (an input of ±inf or beyond
    /// the range of a 32-bit float).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation_unavailable: Option<String>,
}

/// What `explanation_unavailable` says for a row whose explanation is
/// empty: its contributions were not finite (see `ModelScores.explanations`).
const NOT_FINITE: &str = "no explanation is available for this pair: an input is infinite or too large for a finite explanation";

/// Whether `explanation` holds the contributions of every explained
/// feature (the scorer leaves it empty when they were not finite).
fn explained(result: &v1::ModelScores, explanation: &v1::Explanation) -> bool {
    explanation.contributions.len() == result.explained_features.len()
}

/// An explanation as the JSON of [`Detail::explanation`].
fn explanation_json(features: &[String], explanation: &v1::Explanation) -> serde_json::Value {
    let contributions: serde_json::Map<String, serde_json::Value> = features
        .iter()
        .zip(&explanation.contributions)
        .map(|(name, value)| (name.clone(), serde_json::json!(value)))
        .collect();
    serde_json::json!({
        "intercept": explanation.intercept,
        "logit": explanation.logit,
        "contributions": contributions,
    })
}

/// A per-item error inside the response list.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct EntryError {
    /// `budget` or `expense_line_item`.
    pub item_kind: String,
    /// Zero-based position of the item in its input list.
    pub index: u32,
    /// The input field at fault; `None` for the whole item.
    pub field: Option<String>,
    /// The error code without its prefix, e.g. `INVALID_VALUE`.
    pub code: String,
    /// What was expected and what came.
    pub message: String,
    /// True when the item formed no pair at all.
    pub dropped: bool,
}

/// The seed contract's response list for a scored request: one entry per
/// scored pair of the first model's results, then one per item error
/// (`json_errors` are those the JSON reader found before scoring).
/// Serializes straight from `response`: no entry is built per pair.
pub struct SeedResponse<'a> {
    response: &'a v1::ScoreResponse,
    errors: Vec<Entry<'static>>,
    verbose: bool,
}

impl<'a> SeedResponse<'a> {
    /// The list for `response`, taking its item errors (after
    /// `json_errors`); `verbose` adds each score's [`Detail`].
    pub fn new(
        json_errors: Vec<v1::ItemError>,
        response: &'a mut v1::ScoreResponse,
        verbose: bool,
    ) -> Self {
        let errors = error_entries(json_errors, std::mem::take(&mut response.errors));
        Self {
            response,
            errors,
            verbose,
        }
    }

    /// The score entries, in row order.
    fn scores(&self) -> impl Iterator<Item = Entry<'_>> {
        let result = self.response.results.first();
        let verbose = self.verbose;
        result.into_iter().flat_map(move |result| {
            self.response
                .keys
                .iter()
                .zip(&result.scores)
                .zip(&result.matched)
                .enumerate()
                .map(move |(row, ((key, probability), matched))| {
                    if !crate::outcomes::row_scored(result, row) {
                        return Entry::NotScored {
                            score: None,
                            scored: false,
                            gate: Cow::Borrowed(&result.gate),
                            budget_id: Cow::Borrowed(&key.budget_id),
                            itemization_id: Cow::Borrowed(&key.itemization_id),
                        };
                    }
                    Entry::Score {
                        score: u8::from(*matched),
                        budget_id: Cow::Borrowed(&key.budget_id),
                        itemization_id: Cow::Borrowed(&key.itemization_id),
                        detail: verbose.then(|| Detail {
                            probability: *probability,
                            threshold: result.threshold,
                            model: Cow::Borrowed(&result.model),
                            version: Cow::Borrowed(&result.version),
                            explanation: result
                                .explanations
                                .get(row)
                                .filter(|e| explained(result, e))
                                .map(|e| explanation_json(&result.explained_features, e)),
                            explanation_unavailable: if !result.explanation_unavailable.is_empty() {
                                Some(result.explanation_unavailable.clone())
                            } else {
                                result
                                    .explanations
                                    .get(row)
                                    .filter(|e| !explained(result, e))
                                    .map(|_| NOT_FINITE.to_owned())
                            },
                        }),
                    }
                })
        })
    }
}

impl Serialize for SeedResponse<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq as _;
        let rows = self
            .response
            .results
            .first()
            .map_or(0, |_| self.response.keys.len());
        let mut seq = serializer.serialize_seq(Some(rows + self.errors.len()))?;
        for entry in self.scores() {
            seq.serialize_element(&entry)?;
        }
        for entry in &self.errors {
            seq.serialize_element(entry)?;
        }
        seq.end()
    }
}

async fn health(State(state): State<HttpState>) -> impl IntoResponse {
    if state.engine.repository().snapshot().models.is_empty() {
        (StatusCode::SERVICE_UNAVAILABLE, "no models loaded\n")
    } else {
        (StatusCode::OK, "ok\n")
    }
}

async fn score(
    State(state): State<HttpState>,
    Query(options): Query<Options>,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    let parsed = match parse_request(&body, &state.limits) {
        Ok(parsed) => parsed,
        Err(error @ RequestError::TooLarge { .. }) => {
            return error_response(StatusCode::PAYLOAD_TOO_LARGE, &error.to_string());
        }
        Err(error) => return error_response(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    let ids = RequestIds::with_caller(
        headers
            .get(triad_telemetry::REQUEST_ID_HEADER)
            .and_then(|id| id.to_str().ok()),
    );
    let request_id = ids.request_id.as_str();
    state.payload.log("http", "input", request_id, || {
        serde_json::to_value(&parsed.request).ok()
    });
    let selection = Selection {
        models: vec![state.model.clone()],
        explain: options.verbose,
        ..Selection::default()
    };
    let response = match state
        .engine
        .score(parsed.request.into(), &selection, &ids)
        .await
    {
        Ok(response) => response,
        Err(error) => return score_error_response(error),
    };
    let json_errors = parsed.errors.into_iter().map(Into::into).collect();
    let mut response = response;
    let seed = SeedResponse::new(json_errors, &mut response, options.verbose);
    state.payload.log("http", "output", request_id, || {
        serde_json::to_value(&seed).ok()
    });
    match serde_json::to_vec(&seed) {
        Ok(body) => (
            StatusCode::OK,
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot encode the seed response");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot encode the response",
            )
        }
    }
}

/// The seed response list as entries (for `triad score`): see
/// [`SeedResponse`].
pub fn seed_entries(
    json_errors: Vec<v1::ItemError>,
    mut response: v1::ScoreResponse,
    verbose: bool,
) -> serde_json::Value {
    let seed = SeedResponse::new(json_errors, &mut response, verbose);
    serde_json::to_value(&seed).unwrap_or_default()
}

/// Errors of the JSON reader first; then the featurizer's, except those
/// about items the JSON reader already dropped (their placeholders have no
/// id, so the featurizer would report them again).
fn error_entries(json: Vec<v1::ItemError>, featurizer: Vec<v1::ItemError>) -> Vec<Entry<'static>> {
    // A set: a request may hold 100 000 dropped items and as many
    // featurizer errors, and a scan per error would be quadratic.
    let dropped: std::collections::HashSet<(String, u32)> = json
        .iter()
        .filter(|e| e.dropped)
        .map(|e| (e.item_kind.clone(), e.index))
        .collect();
    json.into_iter()
        .chain(
            featurizer
                .into_iter()
                .filter(|e| !dropped.contains(&(e.item_kind.clone(), e.index))),
        )
        .map(|e| {
            let id = |id: String| (!id.is_empty()).then_some(id);
            let code = v1::ItemErrorCode::try_from(e.code)
                .map(|code| {
                    code.as_str_name()
                        .trim_start_matches("ITEM_ERROR_CODE_")
                        .to_owned()
                })
                .unwrap_or_default();
            Entry::Error {
                budget_id: id(e.budget_id),
                itemization_id: id(e.itemization_id),
                error: EntryError {
                    item_kind: e.item_kind,
                    index: e.index,
                    field: (!e.field.is_empty()).then_some(e.field),
                    code,
                    message: e.message,
                    dropped: e.dropped,
                },
            }
        })
        .collect()
}

fn score_error_response(error: ScoreError) -> Response {
    let status = tonic::Status::from(error);
    let code = match status.code() {
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        tonic::Code::Unavailable | tonic::Code::FailedPrecondition => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error_response(code, status.message())
}

fn error_response(code: StatusCode, message: &str) -> Response {
    (code, Json(serde_json::json!({ "error": message }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verbose_pair_without_a_finite_explanation_says_so_and_keys_come_sorted() {
        let key = |i: &str| v1::PairKey {
            budget_id: format!("b{i}"),
            itemization_id: format!("i{i}"),
        };
        let mut response = v1::ScoreResponse {
            keys: vec![key("0"), key("1")],
            results: vec![v1::ModelScores {
                model: "m".into(),
                version: "1".into(),
                threshold: 0.5,
                scores: vec![0.6, 1.0],
                matched: vec![true, true],
                explained_features: vec!["zeta".into(), "alpha".into()],
                // Row 1's explanation was not finite: the engine left it empty.
                explanations: vec![
                    v1::Explanation {
                        intercept: 0.25,
                        contributions: vec![0.5, -0.5],
                        logit: 0.25,
                    },
                    v1::Explanation::default(),
                ],
                ..v1::ModelScores::default()
            }],
            ..v1::ScoreResponse::default()
        };
        let json =
            serde_json::to_value(SeedResponse::new(Vec::new(), &mut response, true)).unwrap();
        let explained = &json[0];
        assert!(explained.get("explanation_unavailable").is_none(), "{json}");
        let contributions = explained["explanation"]["contributions"]
            .as_object()
            .unwrap();
        // Sorted by name, not in the model's input order (zeta, alpha).
        let names: Vec<&str> = contributions.keys().map(String::as_str).collect();
        assert_eq!(names, ["alpha", "zeta"]);
        let unexplained = &json[1];
        assert!(unexplained.get("explanation").is_none(), "{json}");
        assert_eq!(unexplained["explanation_unavailable"], NOT_FINITE, "{json}");
    }
}
