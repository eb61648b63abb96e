//! Failures of the monitor's storage and requests, and their gRPC status.
//! A message that echoes a caller's value quotes at most 64 characters of
//! it ([`triad_server::quote`]): the variants hold the quotation, never the
//! value.

use std::path::PathBuf;

/// Why a monitor request or the store failed. Per-item problems (one bad
/// outcome, label or event in a batch) are never this: they come back as
/// rejections next to what was stored.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("{field} is empty: expected a non-empty value")]
    Empty { field: &'static str },
    #[error("{field} is {quoted}: expected no NUL character")]
    Nul {
        field: &'static str,
        /// [`triad_server::quote`] of the value.
        quoted: String,
    },
    #[error("{field} is {quoted}: expected at most {max} bytes")]
    TooLong {
        field: &'static str,
        /// [`triad_server::quote`] of the value.
        quoted: String,
        max: usize,
    },
    #[error("{field} is {got}: expected a time in milliseconds since the epoch, >= 0")]
    NegativeTime { field: &'static str, got: i64 },
    #[error("time range is from_ms {from_ms} to to_ms {to_ms}: expected from_ms <= to_ms")]
    InvertedRange { from_ms: i64, to_ms: i64 },
    #[error("bucket is {0}: expected BUCKET_HOUR (1), BUCKET_DAY (2) or BUCKET_WEEK (3)")]
    UnknownBucket(i32),
    #[error(
        "kind is {0}: expected KIND_UNSPECIFIED (0), KIND_FALSE_POSITIVE (1) or KIND_FALSE_NEGATIVE (2)"
    )]
    UnknownKind(i32),
    #[error("page_size is {got}: expected at most {max} (0 means the default, 100)")]
    PageSize { got: u32, max: u32 },
    #[error("max_rows is {got}: expected at most {max} (0 means the default, 5 000)")]
    MaxRows { got: u32, max: u32 },
    /// Holds the [`triad_server::quote`] of the token.
    #[error(
        "page_token is not one this server issued: expected the next_page_token of a previous answer, got {0}"
    )]
    PageToken(String),
    /// Holds the [`triad_server::quote`] of the name.
    #[error("metric is {0}: expected one of {list} or null_rate.<seed field name>", list = crate::app::quality::METRIC_NAMES.join(", "))]
    UnknownMetric(String),
    #[error("{field} is {got}: expected a finite number > 0 (0 means the default)")]
    InvalidParameter { field: &'static str, got: f64 },
    #[error(
        "the answer would have {points} points (buckets from {first_day} to {last_day}), more than the limit of {max}: use a larger bucket or a narrower range"
    )]
    TooManyPoints {
        points: usize,
        max: usize,
        /// The first and last bucket's day ([`crate::buckets::day_or_ms`]).
        first_day: String,
        last_day: String,
    },
    #[error("errors are given without a request_id: expected the id of the request they belong to")]
    ErrorsWithoutRequest,
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "database url {url:?} is not supported: expected sqlite://PATH, a file path or postgres://…"
    )]
    DatabaseUrl { url: String },
    #[error("database failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "{inserted} of {expected} new outcomes were inserted: another writer changed the outcomes table meanwhile; nothing was stored, retry"
    )]
    ConcurrentWrite { expected: u64, inserted: u64 },
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
    #[error("drift computation failed: {0}")]
    Computation(String),
}

impl MonitorError {
    /// [`MonitorError::TooLong`] of `field`, whose `value` is longer than
    /// `max` bytes.
    pub fn too_long(field: &'static str, value: &str, max: usize) -> Self {
        Self::TooLong {
            field,
            quoted: triad_server::quote(value).to_string(),
            max,
        }
    }

    /// [`MonitorError::PageToken`] of `token`.
    pub fn page_token(token: &str) -> Self {
        Self::PageToken(triad_server::quote(token).to_string())
    }

    /// [`MonitorError::UnknownMetric`] of `name`.
    pub fn unknown_metric(name: &str) -> Self {
        Self::UnknownMetric(triad_server::quote(name).to_string())
    }
}

impl From<MonitorError> for tonic::Status {
    fn from(error: MonitorError) -> Self {
        match &error {
            MonitorError::Empty { .. }
            | MonitorError::TooLong { .. }
            | MonitorError::Nul { .. }
            | MonitorError::NegativeTime { .. }
            | MonitorError::InvertedRange { .. }
            | MonitorError::UnknownBucket(_)
            | MonitorError::UnknownKind(_)
            | MonitorError::PageSize { .. }
            | MonitorError::MaxRows { .. }
            | MonitorError::PageToken(_)
            | MonitorError::UnknownMetric(_)
            | MonitorError::InvalidParameter { .. }
            | MonitorError::TooManyPoints { .. }
            | MonitorError::ErrorsWithoutRequest => {
                tonic::Status::invalid_argument(error.to_string())
            }
            MonitorError::ConcurrentWrite { .. } => tonic::Status::aborted(error.to_string()),
            MonitorError::Database(sqlx::Error::PoolTimedOut) => {
                tonic::Status::unavailable(error.to_string())
            }
            _ => tonic::Status::internal(error.to_string()),
        }
    }
}
