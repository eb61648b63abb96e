//! The scoring engine behind the front doors that take requests (gRPC
//! `Scorer`, the seed's HTTP contract, `triad score --local`): featurize
//! once, then score the one matrix with every model asked for, and record
//! the outcomes. The Open Inference Protocol ([`crate::oip`]) takes feature
//! rows instead: it shares the model lookup
//! ([`ModelSet::resolve`]) and the offload rule (`crate::offload`), not
//! this engine.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message as _;
use tracing::Instrument as _;
use triad_features::Featurizer;
use triad_proto::convert::matrix_to_proto;
use triad_proto::shared::Shared;
use triad_proto::v1::{self, FeaturizeRequest};
use triad_server::client::{self, ClientConfig, GrpcChannel, Retry};

use triad_telemetry::RequestIds;

use crate::config::DEFAULT_MAX_REQUEST_BYTES;
use crate::error::ScoreError;
use crate::model::LoadedModel;
use crate::model::explain::NO_EXPLANATION;
use crate::offload;
use crate::outcomes::{OutcomePublisher, ScoredRequest};
use crate::repository::{LookupError, ModelSet, Repository};

/// The preprocess service's `Featurize` method.
const FEATURIZE_PATH: &str = "/triad.v1.Preprocess/Featurize";

/// Most model names one request may list (before duplicates are dropped).
pub const MAX_MODELS_PER_REQUEST: usize = 64;

// What one request costs the scorer, calibrated on release binaries with
// `triad soak --heavy` (requests of up to 4 MiB built to allocate: one huge
// field, 60 000 items, 400 x 400 small pairs, 200 x 200 pairs with every
// field at its bound), each constant rounded up so the estimate stays above
// every peak measured.

/// Bytes a pair costs per matrix column: the row's floats, encoded in the
/// preprocess answer and decoded.
const PAIR_BYTES_PER_COLUMN: u128 = 8;
/// Bytes a scored pair costs besides its row and its id bytes: two id
/// strings' headers and allocation rounding, its framing in the preprocess
/// answer, the scorer's answer and the seed's JSON.
const PAIR_OVERHEAD_BYTES: u128 = 64;
/// Bytes a scored pair costs per model: the score and the decision, held
/// and encoded in the answer.
const PAIR_BYTES_PER_MODEL: u128 = 10;
/// Bytes a pair costs per contribution of an explanation the caller asked
/// for (`explain`, `?verbose=true`): the float held and encoded in the
/// answer, and on the HTTP contract written as JSON beside the feature's
/// name (at most 64 bytes a name in the schema, the number in at most 16).
/// Outcomes' explanations are built one row at a time as they are written
/// and hold no more than one row.
pub const PAIR_BYTES_PER_CONTRIBUTION: u128 = 96;
/// Feature values one contribution of an explanation counts for in the
/// offload rule (`crate::offload`): its multiply and subtract, and its
/// share of the row's own allocation and message.
const EXPLAIN_VALUE_WEIGHT: usize = 4;
/// Bytes a pair costs per matrix column per gated model: the copy of the
/// rows its gate matched that the gated model scores (at most every row),
/// and the row's index.
const PAIR_BYTES_PER_GATED_COLUMN: u128 = 4;
/// How many times a pair's id bytes are held at once: encoded in the
/// preprocess answer and decoded, encoded in the answer, written as JSON
/// on the HTTP contract (whose buffer grows by doubling), and the
/// outcomes' copies in flight.
const ID_COPIES: u128 = 7;
/// Bytes each budget or line item costs besides its fields' bytes: the
/// decoded record (nine optional strings) in the request and while it is
/// converted, each string's allocation, the outcome writer's index, and,
/// when the item is refused, its error in the preprocess answer and in the
/// seed's JSON (80 000 items without ids measured 1.0 kB each).
const ITEM_BYTES: u128 = 1_200;
/// How many times the request's own bytes are held at once: the body or
/// message, the decoded strings, the preprocess call's encoding and its
/// transport buffers.
const INPUT_COPIES: u128 = 8;

/// What a request of `request`'s budgets and items, scored by `models`
/// models (`gated` of them gated) over `n_cols` columns, with `explained`
/// contributions asked for per pair (the explaining models' inputs,
/// summed), holds in the scorer at most: its inputs, and every pair's matrix row, ids, scores and
/// explanations, decoded and encoded. An upper bound (every budget and item
/// counted, as if each formed pairs), computed from the request before any
/// work, in the same units the per-request limit is given in.
pub fn estimated_bytes(
    request: &FeaturizeRequest,
    n_cols: usize,
    models: usize,
    gated: usize,
    explained: usize,
) -> u128 {
    let id_bound = triad_features::FeaturizerConfig::default().max_id_bytes;
    let id_len = |id: &Option<String>| id.as_deref().map_or(0, |id| id.len().min(id_bound)) as u128;
    let (n_budgets, n_items) = (
        request.budgets.len() as u128,
        request.all_user_expense_lineitems.len() as u128,
    );
    let budget_ids: u128 = request.budgets.iter().map(|b| id_len(&b.budget_id)).sum();
    let item_ids: u128 = request
        .all_user_expense_lineitems
        .iter()
        .map(|i| id_len(&i.itemization_id))
        .sum();
    let per_pair = PAIR_BYTES_PER_COLUMN * n_cols as u128
        + PAIR_OVERHEAD_BYTES
        + PAIR_BYTES_PER_MODEL * models as u128
        + PAIR_BYTES_PER_GATED_COLUMN * (gated * n_cols) as u128
        + PAIR_BYTES_PER_CONTRIBUTION * explained as u128;
    let pairs =
        n_budgets * n_items * per_pair + ID_COPIES * (n_items * budget_ids + n_budgets * item_ids);
    let inputs = (n_budgets + n_items) * ITEM_BYTES + INPUT_COPIES * request.encoded_len() as u128;
    pairs + inputs
}

/// Where feature matrices come from.
#[derive(Debug, Clone)]
pub enum FeatureSource {
    /// The preprocess service, over gRPC, with a deadline on every call.
    Remote {
        /// The service's URL, for the log and error messages (never for
        /// callers).
        endpoint: String,
        /// A client over a lazily-connecting channel to `endpoint`.
        client: tonic::client::Grpc<GrpcChannel>,
        /// How a refused `Featurize` call (idempotent) is retried.
        retry: Retry,
    },
    /// The feature library, in this process (`triad score --local`).
    Local(Arc<Featurizer>),
}

impl FeatureSource {
    /// A lazily-connecting client of the preprocess service at `endpoint`
    /// (e.g. `http://127.0.0.1:50051`); every call is bounded by `timeout`.
    pub fn remote(
        endpoint: &str,
        timeout: Duration,
        max_message_bytes: usize,
    ) -> Result<Self, client::ClientError> {
        Self::remote_with(
            endpoint,
            timeout,
            max_message_bytes,
            ClientConfig::default(),
        )
    }

    /// [`FeatureSource::remote`] with `base`'s TLS and token settings.
    pub fn remote_with(
        endpoint: &str,
        timeout: Duration,
        max_message_bytes: usize,
        base: ClientConfig,
    ) -> Result<Self, client::ClientError> {
        let channel = client::connect(
            endpoint,
            &ClientConfig {
                connect_timeout: timeout,
                timeout,
                ..base
            },
        )?;
        let client = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes);
        Ok(Self::Remote {
            endpoint: endpoint.to_owned(),
            client,
            retry: Retry::default(),
        })
    }

    /// The matrix of `request`. It is shared, not copied: the scorer
    /// keeps it for the outcomes' inputs while it is sent, maybe twice.
    async fn featurize(
        &self,
        request: Arc<FeaturizeRequest>,
        request_id: &str,
    ) -> Result<v1::FeatureMatrix, ScoreError> {
        match self {
            FeatureSource::Remote {
                endpoint,
                client,
                retry,
            } => {
                let id: Option<tonic::metadata::MetadataValue<_>> = request_id.parse().ok();
                // A client span: the preprocess call's own span is its child.
                let span = tracing::info_span!(
                    "featurize",
                    endpoint = %endpoint,
                    otel.name = tracing::field::Empty,
                    otel.kind = tracing::field::Empty,
                );
                triad_telemetry::trace::name_span(&span, "triad.v1.Preprocess/Featurize", "client");
                // Featurize is idempotent: a call a draining or vanished
                // replica refused is retried (within the budget).
                retry
                    .run(|| {
                        let mut call = tonic::Request::new(Shared(Arc::clone(&request)));
                        if let Some(id) = &id {
                            call.metadata_mut()
                                .insert(triad_telemetry::REQUEST_ID_HEADER, id.clone());
                        }
                        let mut client = client.clone();
                        async move {
                            client
                                .ready()
                                .await
                                .map_err(|error| tonic::Status::from_error(Box::new(error)))?;
                            let codec = tonic_prost::ProstCodec::<
                                Shared<FeaturizeRequest>,
                                v1::FeatureMatrix,
                            >::default();
                            let path = tonic::codegen::http::uri::PathAndQuery::from_static(
                                FEATURIZE_PATH,
                            );
                            client.unary(call, path, codec).await
                        }
                    })
                    .instrument(span)
                    .await
                    .map(tonic::Response::into_inner)
                    .map_err(|status| ScoreError::Preprocess {
                        endpoint: endpoint.clone(),
                        status: Box::new(status),
                    })
            }
            FeatureSource::Local(featurizer) => {
                let matrix = featurizer.featurize(&Arc::unwrap_or_clone(request).into());
                Ok(matrix_to_proto(matrix, request_id))
            }
        }
    }
}

/// Which models a request wants.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Model names; empty means every served model. A name listed twice
    /// runs once.
    pub models: Vec<String>,
    /// Version pins for this request, by model name.
    pub versions: HashMap<String, String>,
    /// When the request happened, for backfills (milliseconds since the
    /// epoch); outcomes are recorded at this time. `None` means now.
    pub occurred_at_ms: Option<i64>,
    /// Return each row's explanation from every model that has one
    /// (`ModelScores.explanations`).
    pub explain: bool,
}

impl Selection {
    /// Checks what a caller may not ask for: more than
    /// [`MAX_MODELS_PER_REQUEST`] model names, a time outside
    /// [`triad_proto::time::check_event_time`]'s range.
    fn check(&self) -> Result<(), ScoreError> {
        if self.models.len() > MAX_MODELS_PER_REQUEST {
            return Err(ScoreError::TooManyModels {
                count: self.models.len(),
                limit: MAX_MODELS_PER_REQUEST,
            });
        }
        if self.versions.len() > MAX_MODELS_PER_REQUEST {
            return Err(ScoreError::TooManyModels {
                count: self.versions.len(),
                limit: MAX_MODELS_PER_REQUEST,
            });
        }
        if let Some(at) = self.occurred_at_ms {
            triad_proto::time::check_event_time("occurred_at_ms", at, triad_proto::time::now_ms())?;
        }
        Ok(())
    }
}

/// Featurizes and scores.
#[derive(Debug, Clone)]
pub struct Engine {
    repository: Arc<Repository>,
    features: FeatureSource,
    outcomes: Option<OutcomePublisher>,
    max_request_bytes: usize,
}

/// The model versions one request runs: (answering, shadow) per model.
/// One model a request runs.
#[derive(Debug, Clone)]
struct Run {
    /// The version that answers.
    model: Arc<LoadedModel>,
    /// The model's name.
    name: String,
    /// Its shadow version, scored off the request path.
    shadow: Option<Arc<LoadedModel>>,
    /// For a gated model, the index in the plan of its gate model (which is
    /// never gated itself).
    gate: Option<usize>,
}

/// The models a request runs, in answer order.
type Plan = Vec<Run>;

impl Engine {
    /// Scores the models of `repository` on matrices from `features`,
    /// with the default per-request bound
    /// ([`DEFAULT_MAX_REQUEST_BYTES`]) and no outcomes recorded.
    pub fn new(repository: Arc<Repository>, features: FeatureSource) -> Self {
        Self {
            repository,
            features,
            outcomes: None,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        }
    }

    /// Refuses (`INVALID_ARGUMENT`, before any work) a request whose
    /// [`estimated_bytes`] pass `max`: what bounds the memory one caller
    /// can take from the others.
    pub fn with_max_request_bytes(mut self, max: usize) -> Self {
        self.max_request_bytes = max;
        self
    }

    /// Sends every outcome (shadow ones included) through `publisher`.
    pub fn with_outcomes(mut self, publisher: OutcomePublisher) -> Self {
        self.outcomes = Some(publisher);
        self
    }

    /// The model repository.
    pub fn repository(&self) -> &Arc<Repository> {
        &self.repository
    }

    /// Featurizes `request` with one preprocess call and scores the matrix
    /// with every selected model. `ids.request_id` names the request's
    /// outcomes: the server's own id, never the caller's.
    pub async fn score(
        &self,
        request: FeaturizeRequest,
        selection: &Selection,
        ids: &RequestIds,
    ) -> Result<v1::ScoreResponse, ScoreError> {
        let started = Instant::now();
        // Check the selection and resolve models first: a bad request fails
        // before any work.
        selection.check()?;
        let models = self.repository.snapshot();
        let plan = plan(&models, selection)?;
        let runs = plan.len() + plan.iter().filter(|run| run.shadow.is_some()).count();
        let n_cols = self.repository.schema().feature_names.len();
        // A gated model and its shadow each copy the rows they score.
        let gated = plan
            .iter()
            .filter(|run| run.gate.is_some())
            .map(|run| 1 + usize::from(run.shadow.is_some()))
            .sum();
        let estimated = estimated_bytes(&request, n_cols, runs, gated, explained(&plan, selection));
        if estimated > self.max_request_bytes as u128 {
            return Err(ScoreError::TooLarge {
                budgets: request.budgets.len(),
                items: request.all_user_expense_lineitems.len(),
                estimated_mib: (estimated >> 20).min(u64::MAX as u128) as u64,
                limit_mib: (self.max_request_bytes >> 20) as u64,
            });
        }
        drop(plan);
        let request = Arc::new(request);
        let inputs = self.outcomes.is_some().then(|| Arc::clone(&request));
        let matrix = self.features.featurize(request, &ids.request_id).await?;
        self.score_inner(matrix, selection, ids, inputs, started)
            .await
    }

    /// Scores a matrix the caller already has.
    pub async fn score_matrix(
        &self,
        matrix: v1::FeatureMatrix,
        selection: &Selection,
        ids: &RequestIds,
    ) -> Result<v1::ScoreResponse, ScoreError> {
        selection.check()?;
        check_keys(&matrix.keys)?;
        // The matrix is here already; what the explanations add is bounded
        // like any request's.
        let plan = plan(&self.repository.snapshot(), selection)?;
        let explained_bytes = matrix.keys.len() as u128
            * PAIR_BYTES_PER_CONTRIBUTION
            * explained(&plan, selection) as u128;
        if explained_bytes > self.max_request_bytes as u128 {
            return Err(ScoreError::TooLarge {
                budgets: 0,
                items: matrix.keys.len(),
                estimated_mib: (explained_bytes >> 20).min(u64::MAX as u128) as u64,
                limit_mib: (self.max_request_bytes >> 20) as u64,
            });
        }
        self.score_inner(matrix, selection, ids, None, Instant::now())
            .await
    }

    async fn score_inner(
        &self,
        matrix: v1::FeatureMatrix,
        selection: &Selection,
        ids: &RequestIds,
        inputs: Option<Arc<FeaturizeRequest>>,
        started: Instant,
    ) -> Result<v1::ScoreResponse, ScoreError> {
        let models = self.repository.snapshot();
        let plan = plan(&models, selection)?;
        let schema = check_matrix(&matrix, self.repository.schema())?;
        for Run { model, name, .. } in &plan {
            if model.meta.schema.hash != schema.hash {
                return Err(ScoreError::SchemaMismatch {
                    model: name.clone(),
                    version: model.version.clone(),
                    model_hash: model.meta.schema.hash.clone(),
                    matrix_hash: schema.hash.clone(),
                });
            }
        }
        let schema_hash = schema.hash.clone();
        let n_rows = matrix.n_rows as usize;
        let n_cols = matrix.n_cols as usize;
        let keys = Arc::new(matrix.keys);
        let errors = Arc::new(matrix.errors);
        let values = Arc::new(matrix.values);
        // Explanations are model arithmetic too, and allocate one vector per
        // row: each contribution weighs EXPLAIN_VALUE_WEIGHT feature values
        // in the offload rule.
        let work = values.len().saturating_add(
            n_rows
                .saturating_mul(explained(&plan, selection))
                .saturating_mul(EXPLAIN_VALUE_WEIGHT),
        );
        let results = offload::run(work, {
            let (plan, values) = (plan.clone(), Arc::clone(&values));
            let explain = selection.explain;
            move || run_plan(&plan, &values, n_rows, n_cols, explain)
        })
        .await??;
        let scored = self.outcomes.as_ref().map(|_| ScoredRequest {
            request_id: ids.request_id.clone(),
            correlation_id: ids.correlation_id.clone(),
            scored_at_ms: selection
                .occurred_at_ms
                .unwrap_or_else(triad_proto::time::now_ms),
            latency_ms: started.elapsed().as_secs_f32() * 1e3,
            schema_hash: schema_hash.clone(),
            keys: Arc::clone(&keys),
            values: Arc::clone(&values),
            n_cols,
            results: Vec::new(),
            models: Vec::new(),
            shadow: false,
            inputs,
            errors: Arc::clone(&errors),
        });
        if let (Some(publisher), Some(scored)) = (&self.outcomes, &scored) {
            // Answer only once the outcomes are in the spool: an answered
            // request's outcomes survive a crash of this process. Outcomes
            // that cannot be recorded refuse the request.
            publisher
                .publish(ScoredRequest {
                    results: results.iter().map(without_explanations).collect(),
                    models: plan.iter().map(|run| Arc::clone(&run.model)).collect(),
                    ..scored.clone()
                })
                .await
                .map_err(ScoreError::Outcomes)?;
        }
        spawn_shadows(
            &plan,
            &results,
            n_rows,
            self.outcomes.clone().zip(scored),
            &ids.request_id,
        );
        // The writer has let go of the keys and item errors by now (no
        // copy); a shadow still scoring shares them (one copy).
        let keys = Arc::try_unwrap(keys).unwrap_or_else(|keys| keys.as_ref().clone());
        let errors = Arc::try_unwrap(errors).unwrap_or_else(|errors| errors.as_ref().clone());
        Ok(v1::ScoreResponse {
            keys,
            results,
            errors,
            schema_hash,
            request_id: ids.request_id.clone(),
            correlation_id: ids.correlation_id.clone(),
        })
    }

    /// What this scorer serves.
    pub fn list_models(&self) -> v1::ListModelsResponse {
        let models = self.repository.snapshot();
        v1::ListModelsResponse {
            models: models
                .models
                .values()
                .map(|served| {
                    let meta = &served.serving.meta;
                    v1::ModelInfo {
                        name: served.name.clone(),
                        serving_version: served.serving.version.clone(),
                        versions: served.versions.keys().map(u64::to_string).collect(),
                        shadow_version: served
                            .shadow
                            .as_ref()
                            .map(|s| s.version.clone())
                            .unwrap_or_default(),
                        kind: meta.kind.as_str().to_owned(),
                        feature_names: meta.features.clone(),
                        threshold: meta.threshold,
                        trained_at: meta.trained_at.clone(),
                        metrics: meta.metrics.clone().into_iter().collect(),
                        schema_hash: meta.schema.hash.clone(),
                        description: meta.description.clone(),
                        gate: served.gate.clone().unwrap_or_default(),
                    }
                })
                .collect(),
        }
    }
}

/// Resolves the selection against the served models, each name with
/// [`ModelSet::resolve`]: each model named once, in the order first named;
/// then the gate model of every gated one the selection did not name (in
/// its serving version), which runs, is answered and recorded like a named
/// one.
fn plan(models: &ModelSet, selection: &Selection) -> Result<Plan, ScoreError> {
    if models.models.is_empty() {
        return Err(ScoreError::NoModels);
    }
    let names: Vec<&String> = if selection.models.is_empty() {
        models.models.keys().collect()
    } else {
        let mut seen = std::collections::HashSet::new();
        selection
            .models
            .iter()
            .filter(|name| seen.insert(name.as_str()))
            .collect()
    };
    for pinned in selection.versions.keys() {
        if !names.contains(&pinned) {
            return Err(LookupError::UnknownModel {
                name: pinned.clone(),
                served: names.iter().map(|n| (*n).clone()).collect(),
            }
            .into());
        }
    }
    let mut plan: Plan = Vec::with_capacity(names.len());
    let mut gates: Vec<(usize, String)> = Vec::new();
    for name in names {
        let pinned = selection.versions.get(name).map(String::as_str);
        let (served, model) = models.resolve(name, pinned)?;
        if let Some(gate) = &served.gate {
            gates.push((plan.len(), gate.clone()));
        }
        plan.push(Run {
            model: Arc::clone(model),
            name: name.clone(),
            shadow: served.shadow.clone(),
            gate: None,
        });
    }
    for (index, gate) in gates {
        let position = match plan.iter().position(|run| run.name == gate) {
            Some(position) => position,
            None => {
                let (served, model) = models.resolve(&gate, None)?;
                plan.push(Run {
                    model: Arc::clone(model),
                    name: gate.clone(),
                    shadow: served.shadow.clone(),
                    gate: None,
                });
                plan.len() - 1
            }
        };
        plan[index].gate = Some(position);
    }
    Ok(plan)
}

/// Contributions per pair the caller asked for: the inputs of every model
/// of `plan` that explains itself, when the selection asks to explain.
fn explained(plan: &Plan, selection: &Selection) -> usize {
    if !selection.explain {
        return 0;
    }
    plan.iter()
        .map(|run| crate::model::explain::explained_inputs(&run.model))
        .sum()
}

/// `scores` without the explanations only the caller asked for (outcomes
/// build their own, a row at a time).
fn without_explanations(scores: &v1::ModelScores) -> v1::ModelScores {
    v1::ModelScores {
        model: scores.model.clone(),
        version: scores.version.clone(),
        threshold: scores.threshold,
        scores: scores.scores.clone(),
        matched: scores.matched.clone(),
        scored: scores.scored.clone(),
        gate: scores.gate.clone(),
        ..v1::ModelScores::default()
    }
}

/// Checks that a matrix is internally consistent and, when it claims the
/// running schema's hash, that it has the running schema's columns (a
/// caller may send any hash with any names); returns its schema.
fn check_matrix<'m>(
    matrix: &'m v1::FeatureMatrix,
    running: &triad_features::FeatureSchema,
) -> Result<&'m v1::FeatureSchema, ScoreError> {
    let schema = matrix
        .schema
        .as_ref()
        .ok_or_else(|| ScoreError::BadMatrix("expected a schema, got none".to_owned()))?;
    let (n_rows, n_cols) = (matrix.n_rows as usize, matrix.n_cols as usize);
    if schema.hash == running.hash
        && (schema.name != running.name
            || schema.version != running.version
            || schema.feature_names != running.feature_names)
    {
        return Err(ScoreError::BadMatrix(format!(
            "the schema claims hash {} but its name, version or {} feature names are not that schema's ({} v{}, {} features)",
            running.hash,
            schema.feature_names.len(),
            running.name,
            running.version,
            running.feature_names.len()
        )));
    }
    if n_cols != schema.feature_names.len() {
        return Err(ScoreError::BadMatrix(format!(
            "expected n_cols to equal the schema's {} features, got {n_cols}",
            schema.feature_names.len()
        )));
    }
    if matrix.values.len() != n_rows.saturating_mul(n_cols) {
        return Err(ScoreError::BadMatrix(format!(
            "expected {n_rows} rows x {n_cols} columns = {} values, got {}",
            n_rows.saturating_mul(n_cols),
            matrix.values.len()
        )));
    }
    if matrix.keys.len() != n_rows {
        return Err(ScoreError::BadMatrix(format!(
            "expected one key per row ({n_rows}), got {}",
            matrix.keys.len()
        )));
    }
    Ok(schema)
}

/// Checks a caller's row keys by the featurizer's rule for ids
/// ([`triad_features::check_id`]: what it accepts, the monitor stores) and
/// every pair once (the featurizer guarantees both for matrices it
/// builds).
fn check_keys(keys: &[v1::PairKey]) -> Result<(), ScoreError> {
    let max = triad_features::FeaturizerConfig::default().max_id_bytes;
    let mut seen = std::collections::HashSet::with_capacity(keys.len());
    for (row, key) in keys.iter().enumerate() {
        for (field, id) in [
            ("budget_id", &key.budget_id),
            ("itemization_id", &key.itemization_id),
        ] {
            if let Err(problem) = triad_features::check_id(id, max) {
                let expected = match problem {
                    triad_features::IdProblem::Control => "without control characters".to_owned(),
                    triad_features::IdProblem::Blank
                    | triad_features::IdProblem::TooLong { .. } => {
                        format!("of 1 to {max} bytes, not blank")
                    }
                };
                return Err(ScoreError::BadMatrix(format!(
                    "key {row}: expected a {field} {expected}, got {}",
                    triad_server::quote(id)
                )));
            }
        }
        if !seen.insert((key.budget_id.as_str(), key.itemization_id.as_str())) {
            return Err(ScoreError::BadMatrix(format!(
                "key {row}: the pair ({}, {}) appears in an earlier row; expected each pair once",
                triad_server::quote(&key.budget_id),
                triad_server::quote(&key.itemization_id)
            )));
        }
    }
    Ok(())
}

/// The row indices a gate's decisions let through.
fn gated_rows(gate: &[bool]) -> Vec<usize> {
    gate.iter()
        .enumerate()
        .filter_map(|(row, matched)| matched.then_some(row))
        .collect()
}

/// Scores every row of the matrix with `model`, or, under a `gate` (its
/// gate model's name and decisions), only the rows the gate matched: the
/// others get score NaN, matched false and `scored` false. With `explain`,
/// adds each scored row's explanation, or says why there is none.
fn run_model(
    model: &LoadedModel,
    name: &str,
    values: &[f32],
    n_rows: usize,
    n_cols: usize,
    gate: Option<(&str, &[bool])>,
    explain: bool,
) -> Result<v1::ModelScores, ScoreError> {
    let _span =
        tracing::info_span!("model.score", model = name, version = %model.version, rows = n_rows)
            .entered();
    let failed = |source| ScoreError::Model {
        model: name.to_owned(),
        version: model.version.clone(),
        source: Box::new(source),
    };
    let threshold = model.meta.threshold;
    let mut scores = Vec::new();
    let (rows, scored) = match gate {
        None => {
            model
                .predict_matrix(values, n_rows, n_cols, &mut scores)
                .map_err(failed)?;
            (None, Vec::new())
        }
        Some((_, decisions)) => {
            let rows = gated_rows(decisions);
            let mut some = Vec::new();
            model
                .predict_rows(values, n_rows, n_cols, &rows, &mut some)
                .map_err(failed)?;
            scores = vec![f32::NAN; n_rows];
            let mut scored = vec![false; n_rows];
            for (&row, score) in rows.iter().zip(some) {
                scores[row] = score;
                scored[row] = true;
            }
            (Some(rows), scored)
        }
    };
    let mut result = v1::ModelScores {
        model: name.to_owned(),
        version: model.version.clone(),
        threshold,
        matched: scores.iter().map(|s| *s >= threshold).collect(),
        scores,
        scored,
        gate: gate.map(|(gate, _)| gate.to_owned()).unwrap_or_default(),
        ..v1::ModelScores::default()
    };
    if explain {
        let explained = match &rows {
            None => model.explain_rows(values, n_cols, 0..n_rows),
            Some(rows) => model
                .explain_rows(values, n_cols, rows.iter().copied())
                .map(|some| {
                    let mut all = vec![v1::Explanation::default(); n_rows];
                    for (&row, explanation) in rows.iter().zip(some) {
                        all[row] = explanation;
                    }
                    all
                }),
        };
        match explained {
            Some(explanations) => {
                result.explained_features.clone_from(&model.meta.features);
                result.explanations = explanations;
            }
            None => result.explanation_unavailable = NO_EXPLANATION.to_owned(),
        }
    }
    Ok(result)
}

/// Runs every model of `plan`: ungated ones first, then each gated one on
/// the rows its gate matched; answers in plan order.
fn run_plan(
    plan: &Plan,
    values: &[f32],
    n_rows: usize,
    n_cols: usize,
    explain: bool,
) -> Result<Vec<v1::ModelScores>, ScoreError> {
    let mut results: Vec<Option<v1::ModelScores>> = vec![None; plan.len()];
    for (slot, run) in results.iter_mut().zip(plan) {
        if run.gate.is_none() {
            *slot = Some(run_model(
                &run.model, &run.name, values, n_rows, n_cols, None, explain,
            )?);
        }
    }
    for (index, run) in plan.iter().enumerate() {
        let Some(gate) = run.gate else { continue };
        let decisions = results
            .get(gate)
            .and_then(Option::as_ref)
            .map(|r| (r.model.clone(), r.matched.clone()))
            .ok_or_else(|| {
                ScoreError::BadMatrix(format!("the gate of model {} did not run", run.name))
            })?;
        results[index] = Some(run_model(
            &run.model,
            &run.name,
            values,
            n_rows,
            n_cols,
            Some((&decisions.0, &decisions.1)),
            explain,
        )?);
    }
    Ok(results.into_iter().flatten().collect())
}

/// Scores shadow versions off the request path; the caller never sees
/// them, the monitor does (tagged `shadow`).
fn spawn_shadows(
    plan: &Plan,
    answered: &[v1::ModelScores],
    n_rows: usize,
    outcomes: Option<(OutcomePublisher, ScoredRequest)>,
    request_id: &str,
) {
    // A gated model's shadow scores the rows the answered gate matched.
    let shadows: Vec<_> = plan
        .iter()
        .filter_map(|run| {
            let gate = run
                .gate
                .and_then(|gate| answered.get(gate))
                .map(|gate| (gate.model.clone(), gate.matched.clone()));
            run.shadow.clone().map(|s| (run.name.clone(), s, gate))
        })
        .collect();
    let Some((publisher, template)) = outcomes else {
        return;
    };
    if shadows.is_empty() || n_rows == 0 {
        return;
    }
    let request_id = request_id.to_owned();
    // Shadow spans (and their outcomes' trace) stay in the request's trace.
    let parent = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = parent.enter();
        let mut results = Vec::new();
        let mut models = Vec::new();
        for (name, shadow, gate) in shadows {
            let gate = gate
                .as_ref()
                .map(|(name, matched)| (name.as_str(), matched.as_slice()));
            match run_model(
                &shadow,
                &name,
                &template.values,
                n_rows,
                template.n_cols,
                gate,
                false,
            ) {
                Ok(scores) => {
                    models.push(Arc::clone(&shadow));
                    tracing::debug!(
                        request_id,
                        model = name,
                        version = scores.version,
                        rows = n_rows,
                        "shadow scored"
                    );
                    results.push(scores);
                }
                Err(error) => tracing::warn!(request_id, %error, "shadow model failed"),
            }
        }
        // Nobody waits for a shadow's outcomes; item errors went with the
        // answered ones.
        publisher.publish_shadow(ScoredRequest {
            results,
            models,
            shadow: true,
            errors: Arc::new(Vec::new()),
            ..template
        });
    });
}
