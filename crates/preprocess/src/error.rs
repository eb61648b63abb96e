//! Whole-request failures of the preprocess service and their gRPC status.

/// Why a whole request was refused (per-item problems are never this).
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error(
        "request has {budgets} budgets x {items} line items = {pairs} pairs, more than the limit of {limit} pairs per call{hint}"
    )]
    TooManyPairs {
        budgets: usize,
        items: usize,
        pairs: usize,
        limit: usize,
        hint: &'static str,
    },
    #[error("featurization task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<PreprocessError> for tonic::Status {
    fn from(error: PreprocessError) -> Self {
        match &error {
            PreprocessError::TooManyPairs { .. } => {
                tonic::Status::invalid_argument(error.to_string())
            }
            PreprocessError::Task(_) => tonic::Status::internal(error.to_string()),
        }
    }
}
