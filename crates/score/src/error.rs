//! Whole-request failures of the scorer, and their one mapping to gRPC
//! status codes (HTTP maps from the status code, in [`crate::http`]).

use triad_server::quote;

use crate::model::ModelError;
use crate::outcomes::Refused;
use crate::repository::LookupError;

/// Why a scoring request failed as a whole. Per-item problems are never
/// this: they travel in the response beside the good rows. Messages quote
/// at most 64 characters of any value a caller sent
/// ([`triad_server::quote()`]) and never name another service's address
/// (that goes to the log).
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// The repository holds no model that loads (`FAILED_PRECONDITION`).
    #[error("this scorer serves no models")]
    NoModels,
    /// A model or version the request names is not served (`NOT_FOUND`).
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// The request's estimated cost ([`crate::engine::estimated_bytes`])
    /// passes the per-request bound (`INVALID_ARGUMENT`, before any work).
    #[error(
        "a request of {budgets} budgets x {items} line items would take about {estimated_mib} MiB in the scorer, more than its limit of {limit_mib} MiB per request; send fewer pairs per request"
    )]
    TooLarge {
        /// Budgets in the request.
        budgets: usize,
        /// Line items in the request.
        items: usize,
        /// The estimate, in MiB (rounded down).
        estimated_mib: u64,
        /// The bound, in MiB (rounded down).
        limit_mib: u64,
    },
    /// The request lists more model names or version pins than
    /// [`crate::engine::MAX_MODELS_PER_REQUEST`] (`INVALID_ARGUMENT`).
    #[error("expected at most {limit} model names or version pins in a request, got {count}")]
    TooManyModels {
        /// Names or pins listed.
        count: usize,
        /// The most accepted.
        limit: usize,
    },
    /// The request's own event time is outside the accepted range
    /// (`INVALID_ARGUMENT`).
    #[error(transparent)]
    Time(#[from] triad_proto::time::TimeError),
    /// The request's outcomes cannot be recorded, so it is refused rather
    /// than answered (`UNAVAILABLE`, or `INVALID_ARGUMENT` when the request
    /// alone is too large for the spool).
    #[error("{0}")]
    Outcomes(crate::outcomes::Refused),
    /// A model was trained on another feature schema than the matrix's
    /// (`FAILED_PRECONDITION`).
    #[error(
        "model {} version {version} was trained on feature schema {model_hash}, but the matrix has schema {}",
        quote(model),
        quote(matrix_hash)
    )]
    SchemaMismatch {
        /// The model's name.
        model: String,
        /// The model's version.
        version: String,
        /// The schema hash the model was trained on.
        model_hash: String,
        /// The schema hash the matrix claims.
        matrix_hash: String,
    },
    /// A caller's matrix is inconsistent: its shape, schema or keys
    /// (`INVALID_ARGUMENT`); the text says what was expected and what came.
    #[error("invalid feature matrix: {0}")]
    BadMatrix(String),
    /// The preprocess call failed: the caller's own mistakes pass through
    /// with its code and message, anything else is `UNAVAILABLE`.
    #[error("preprocess service at {endpoint} failed: {status}")]
    Preprocess {
        /// The preprocess URL, for the log only.
        endpoint: String,
        /// What preprocess (or the channel to it) answered.
        status: Box<tonic::Status>,
    },
    /// A model failed on the matrix (`INTERNAL`).
    #[error("model {} version {version} failed: {source}", quote(model))]
    Model {
        /// The model's name.
        model: String,
        /// The model's version.
        version: String,
        /// What the model reported.
        source: Box<ModelError>,
    },
    /// The blocking task scoring a large matrix panicked or was cancelled
    /// (`INTERNAL`).
    #[error("scoring task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<ScoreError> for tonic::Status {
    fn from(error: ScoreError) -> Self {
        use tonic::Code;
        let code = match &error {
            ScoreError::NoModels | ScoreError::SchemaMismatch { .. } => Code::FailedPrecondition,
            ScoreError::Lookup(_) => Code::NotFound,
            ScoreError::BadMatrix(_)
            | ScoreError::TooManyModels { .. }
            | ScoreError::TooLarge { .. }
            | ScoreError::Time(_) => Code::InvalidArgument,
            ScoreError::Outcomes(Refused::TooLarge { .. }) => Code::InvalidArgument,
            ScoreError::Outcomes(_) => Code::Unavailable,
            // The caller's own mistakes pass through with preprocess's
            // message; anything else means preprocess could not do its job
            // right now: the log names the endpoint, the caller never does.
            ScoreError::Preprocess { endpoint, status } => match status.code() {
                Code::InvalidArgument | Code::ResourceExhausted | Code::DeadlineExceeded => {
                    return tonic::Status::new(status.code(), status.message());
                }
                _ => {
                    tracing::warn!(%endpoint, %status, "the preprocess service failed");
                    return tonic::Status::unavailable(format!(
                        "the feature service is unavailable ({}); retry later",
                        status.code().description()
                    ));
                }
            },
            ScoreError::Model { .. } | ScoreError::Task(_) => Code::Internal,
        };
        tonic::Status::new(code, error.to_string())
    }
}
