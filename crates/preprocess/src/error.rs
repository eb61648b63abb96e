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
    #[error("request has {count} {list}, more than the limit of {limit} per call")]
    TooManyItems {
        list: &'static str,
        count: usize,
        limit: usize,
    },
    #[error(
        "stream has sent {bytes} bytes, more than the limit of {limit} bytes per stream; split it into several calls"
    )]
    StreamTooLarge { bytes: usize, limit: usize },
    #[error(
        "request not featurized within its deadline of {allowed_ms} ms (the caller's grpc-timeout or the server's request timeout, whichever is sooner); send fewer pairs or shorter vendor names, or allow more time"
    )]
    DeadlineExceeded { allowed_ms: u128 },
    #[error("request cancelled before it was featurized")]
    Cancelled,
    #[error("featurization task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<PreprocessError> for tonic::Status {
    fn from(error: PreprocessError) -> Self {
        match &error {
            PreprocessError::TooManyPairs { .. } | PreprocessError::TooManyItems { .. } => {
                tonic::Status::invalid_argument(error.to_string())
            }
            PreprocessError::StreamTooLarge { .. } => {
                tonic::Status::resource_exhausted(error.to_string())
            }
            PreprocessError::DeadlineExceeded { .. } => {
                tonic::Status::deadline_exceeded(error.to_string())
            }
            PreprocessError::Cancelled => tonic::Status::cancelled(error.to_string()),
            PreprocessError::Task(_) => tonic::Status::internal(error.to_string()),
        }
    }
}
