//! The error type shared by every statistic in this crate.

use thiserror::Error;

/// Why a statistic could not be computed.
///
/// Every public function validates its input and returns one of these instead
/// of panicking; functions that have a natural answer for degenerate input
/// (an empty series, a constant series) return that answer instead, as their
/// docs say.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SeriesError {
    /// A sample held no finite value after missing points were dropped.
    #[error("empty {what}: expected at least one finite value, got none")]
    Empty {
        /// Which input was empty.
        what: &'static str,
    },
    /// A sample held fewer usable points than the statistic needs.
    #[error("{what} too short: expected at least {needed} finite points, got {got}")]
    TooShort {
        /// Which input was too short.
        what: &'static str,
        /// How many points the statistic needs.
        needed: usize,
        /// How many usable points there were.
        got: usize,
    },
    /// Paired inputs had different lengths.
    #[error("length mismatch: expected x and y of equal length, got {x} and {y}")]
    LengthMismatch {
        /// Length of `x`.
        x: usize,
        /// Length of `y`.
        y: usize,
    },
    /// All usable x values were equal, so no slope exists.
    #[error("degenerate x: expected at least two distinct x values, got all equal to {0}")]
    DegenerateX(f64),
    /// An EWMA span below 1.
    #[error("invalid span: expected at least 1, got {0}")]
    InvalidSpan(usize),
    /// A rolling window of 0 points.
    #[error("invalid window: expected at least 1, got {0}")]
    InvalidWindow(usize),
    /// A change-point penalty that is negative or not finite.
    #[error("invalid penalty: expected a finite value of at least 0, got {0}")]
    InvalidPenalty(f64),
    /// An anomaly threshold that is not a finite positive number.
    #[error("invalid anomaly threshold: expected a finite k greater than 0, got {0}")]
    InvalidThreshold(f64),
    /// A value that must be finite was NaN or infinite.
    #[error("non-finite value in {what}: expected finite numbers, got {value} at index {index}")]
    NonFinite {
        /// Which input held the value.
        what: &'static str,
        /// Position of the value.
        index: usize,
        /// The offending value.
        value: f64,
    },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, SeriesError>;
