//! Whole-request failures of the scorer, and their one mapping to gRPC
//! status codes (HTTP maps from the status code, in [`crate::http`]).

use triad_server::quote;

use crate::model::ModelError;
use crate::outcomes::Refused;
use crate::repository::LookupError;

/// Why a scoring request failed as a whole. Per-item problems are never
/// this: they travel in the response beside the good rows. Messages quote
/// at most 64 characters of any value a caller sent
/// ([`triad_server::quote`]) and never name another service's address
/// (that goes to the log).
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("this scorer serves no models")]
    NoModels,
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error(
        "a request of {budgets} budgets x {items} line items would take about {estimated_mib} MiB in the scorer, more than its limit of {limit_mib} MiB per request; send fewer pairs per request"
    )]
    TooLarge {
        budgets: usize,
        items: usize,
        estimated_mib: u64,
        limit_mib: u64,
    },
    #[error("expected at most {limit} model names or version pins in a request, got {count}")]
    TooManyModels { count: usize, limit: usize },
    #[error(transparent)]
    Time(#[from] triad_proto::time::TimeError),
    #[error("{0}")]
    Outcomes(crate::outcomes::Refused),
    #[error(
        "model {} version {version} was trained on feature schema {model_hash}, but the matrix has schema {}",
        quote(model),
        quote(matrix_hash)
    )]
    SchemaMismatch {
        model: String,
        version: String,
        model_hash: String,
        matrix_hash: String,
    },
    #[error("invalid feature matrix: {0}")]
    BadMatrix(String),
    #[error("preprocess service at {endpoint} failed: {status}")]
    Preprocess {
        endpoint: String,
        status: Box<tonic::Status>,
    },
    #[error("model {} version {version} failed: {source}", quote(model))]
    Model {
        model: String,
        version: String,
        source: Box<ModelError>,
    },
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
