//! Why a monitor operation failed: the request was refused
//! ([`RequestError`]), the store failed ([`StorageError`]) or a
//! computation could not finish. A message that echoes a caller's value
//! quotes at most 64 characters of it ([`triad_server::quote()`]): the
//! variants hold the quotation, never the value. The mapping of these to a
//! gRPC status and an HTTP status is `conversions.rs`'s.
//!
//! Per-item problems (one bad outcome, label or event in a batch) are
//! never errors: they come back as rejections next to what was stored.

use crate::store::StorageError;

/// Why a request was refused: what it asked for is not valid, whatever
/// the state of the monitor.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// A required id or name is empty.
    #[error("{field} is empty: expected a non-empty value")]
    Empty {
        /// The request field.
        field: &'static str,
    },
    /// An id or name holds a NUL character, which PostgreSQL cannot store.
    #[error("{field} is {quoted}: expected no NUL character")]
    Nul {
        /// The request field.
        field: &'static str,
        /// [`triad_server::quote()`] of the value.
        quoted: String,
    },
    /// An id or name is longer than can be stored.
    #[error("{field} is {quoted}: expected at most {max} bytes")]
    TooLong {
        /// The request field.
        field: &'static str,
        /// [`triad_server::quote()`] of the value.
        quoted: String,
        /// The most bytes allowed.
        max: usize,
    },
    /// A time bound is negative.
    #[error("{field} is {got}: expected a time in milliseconds since the epoch, >= 0")]
    NegativeTime {
        /// The request field.
        field: &'static str,
        /// Its value.
        got: i64,
    },
    /// The range ends before it starts.
    #[error("time range is from_ms {from_ms} to to_ms {to_ms}: expected from_ms <= to_ms")]
    InvertedRange {
        /// The start asked for.
        from_ms: i64,
        /// The end asked for.
        to_ms: i64,
    },
    /// Not a `Bucket` value.
    #[error("bucket is {0}: expected BUCKET_HOUR (1), BUCKET_DAY (2) or BUCKET_WEEK (3)")]
    UnknownBucket(i32),
    /// Not a `ListMistakesRequest.Kind` value.
    #[error(
        "kind is {0}: expected KIND_UNSPECIFIED (0), KIND_FALSE_POSITIVE (1) or KIND_FALSE_NEGATIVE (2)"
    )]
    UnknownKind(i32),
    /// Not a `ListMistakesRequest.Order` value.
    #[error(
        "order is {0}: expected ORDER_UNSPECIFIED (0, newest first) or ORDER_MOST_CONFIDENT (1)"
    )]
    UnknownOrder(i32),
    /// A page larger than the largest allowed.
    #[error("page_size is {got}: expected at most {max} (0 means the default, 100)")]
    PageSize {
        /// The page size asked for.
        got: u32,
        /// The largest allowed.
        max: u32,
    },
    /// More drift rows than the most allowed.
    #[error("max_rows is {got}: expected at most {max} (0 means the default, 5 000)")]
    MaxRows {
        /// The rows asked for.
        got: u32,
        /// The most allowed.
        max: u32,
    },
    /// A page token this server did not issue; holds its
    /// [`triad_server::quote()`].
    #[error(
        "page_token is not one this server issued: expected the next_page_token of a previous answer, got {0}"
    )]
    PageToken(String),
    /// A metric `Anomalies` cannot watch; holds the
    /// [`triad_server::quote()`] of the name.
    #[error("metric is {0}: expected one of {list} or null_rate.<seed field name>", list = super::quality::METRIC_NAMES.join(", "))]
    UnknownMetric(String),
    /// A tuning parameter that is not a finite positive number.
    #[error("{field} is {got}: expected a finite number > 0 (0 means the default)")]
    InvalidParameter {
        /// The request field.
        field: &'static str,
        /// Its value.
        got: f64,
    },
    /// The answer would hold more points than the store's `max_points`.
    #[error(
        "the answer would have {points} points (buckets from {first_day} to {last_day}), more than the limit of {max}: use a larger bucket or a narrower range"
    )]
    TooManyPoints {
        /// Points the answer would hold.
        points: usize,
        /// The most allowed.
        max: usize,
        /// The first bucket's day (`YYYY-MM-DD`, or milliseconds when it has
        /// no calendar date).
        first_day: String,
        /// The last bucket's day.
        last_day: String,
    },
    /// Item errors without the request they belong to.
    #[error("errors are given without a request_id: expected the id of the request they belong to")]
    ErrorsWithoutRequest,
    /// A threshold outside `[0, 1]` or not a number.
    #[error("threshold is {got}: expected a finite number from 0 to 1")]
    InvalidThreshold {
        /// Its value.
        got: f64,
    },
    /// More thresholds than one request may evaluate.
    #[error("thresholds has {got} values: expected at most {max}")]
    TooManyThresholds {
        /// Thresholds asked for.
        got: usize,
        /// The most allowed.
        max: usize,
    },
    /// The exact threshold path over more outcomes than it reads.
    #[error(
        "exact is set over {outcomes} outcomes (in the hours overlapping the range): expected at most {max}; narrow the range or leave exact unset for the score histogram"
    )]
    TooManyExactOutcomes {
        /// Outcomes in the hours overlapping the range.
        outcomes: u64,
        /// The most the exact path reads.
        max: u64,
    },
}

impl RequestError {
    /// [`RequestError::TooLong`] of `field`, whose `value` is longer than
    /// `max` bytes.
    pub(crate) fn too_long(field: &'static str, value: &str, max: usize) -> Self {
        Self::TooLong {
            field,
            quoted: triad_server::quote(value).to_string(),
            max,
        }
    }

    /// [`RequestError::Nul`] of `field`, whose `value` holds a NUL
    /// character.
    pub(crate) fn nul(field: &'static str, value: &str) -> Self {
        Self::Nul {
            field,
            quoted: triad_server::quote(value).to_string(),
        }
    }

    /// [`RequestError::PageToken`] of `token`.
    pub(crate) fn page_token(token: &str) -> Self {
        Self::PageToken(triad_server::quote(token).to_string())
    }

    /// [`RequestError::UnknownMetric`] of `name`.
    pub(crate) fn unknown_metric(name: &str) -> Self {
        Self::UnknownMetric(triad_server::quote(name).to_string())
    }
}

/// Why a [`Monitor`](super::Monitor) operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request was refused.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The drift computation did not finish.
    #[error("drift computation failed: {0}")]
    Computation(String),
}
