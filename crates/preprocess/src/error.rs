//! Whole-request failures of the preprocess service and their gRPC status.

/// Why a whole request was refused (per-item problems are never this).
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    /// The request asks for more (budget, line item) pairs than one call
    /// may.
    #[error(
        "request has {budgets} budgets x {items} line items = {pairs} pairs, more than the limit of {limit} pairs per call{hint}"
    )]
    TooManyPairs {
        /// Budgets in the request.
        budgets: usize,
        /// Line items in the request.
        items: usize,
        /// `budgets × items`.
        pairs: usize,
        /// The most pairs one call may ask for.
        limit: usize,
        /// What to do instead, appended to the message (may be empty).
        hint: &'static str,
    },
    /// The request holds more budgets or line items than one call may.
    #[error("request has {count} {list}, more than the limit of {limit} per call")]
    TooManyItems {
        /// `budgets` or `line items`.
        list: &'static str,
        /// How many the request holds.
        count: usize,
        /// The most one call may hold.
        limit: usize,
    },
    /// A `FeaturizeStream` sent more bytes than one stream may hold.
    #[error(
        "stream has sent {bytes} bytes, more than the limit of {limit} bytes per stream; split it into several calls"
    )]
    StreamTooLarge {
        /// Encoded bytes received so far.
        bytes: usize,
        /// The most one stream may send.
        limit: usize,
    },
    /// Featurizing did not finish before the call's deadline.
    #[error(
        "request not featurized within its deadline of {allowed_ms} ms (the caller's grpc-timeout or the server's request timeout, whichever is sooner); send fewer pairs or shorter vendor names, or allow more time"
    )]
    DeadlineExceeded {
        /// The deadline the call had when it arrived, in milliseconds.
        allowed_ms: u128,
    },
    /// The caller went away before the matrix was built.
    #[error("request cancelled before it was featurized")]
    Cancelled,
    /// The blocking-pool task featurizing the request panicked.
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
