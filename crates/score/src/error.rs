//! Whole-request failures of the scorer, and their one mapping to gRPC
//! status codes (HTTP maps from the status code, in [`crate::http`]).

use crate::model::ModelError;

/// Why a scoring request failed as a whole. Per-item problems are never
/// this: they travel in the response beside the good rows.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("this scorer serves no models")]
    NoModels,
    #[error("no model named {name:?}; this scorer serves {served:?}")]
    UnknownModel { name: String, served: Vec<String> },
    #[error("model {model:?} has no loaded version {version:?}; loaded versions are {loaded:?}")]
    UnknownVersion {
        model: String,
        version: String,
        loaded: Vec<String>,
    },
    #[error(
        "model {model:?} version {version} was trained on feature schema {model_hash}, but the matrix has schema {matrix_hash}"
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
    #[error("model {model:?} version {version} failed: {source}")]
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
            ScoreError::UnknownModel { .. } | ScoreError::UnknownVersion { .. } => Code::NotFound,
            ScoreError::BadMatrix(_) => Code::InvalidArgument,
            // The caller's own mistakes pass through; anything else means
            // preprocess could not do its job right now.
            ScoreError::Preprocess { status, .. } => match status.code() {
                Code::InvalidArgument | Code::ResourceExhausted => status.code(),
                _ => Code::Unavailable,
            },
            ScoreError::Model { .. } | ScoreError::Task(_) => Code::Internal,
        };
        tonic::Status::new(code, error.to_string())
    }
}
