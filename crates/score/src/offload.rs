//! Where model arithmetic runs: the one rule that sends a large batch to
//! the blocking pool and keeps a small one on the async worker that has it,
//! for every front door (`Score` and the seed's HTTP contract through
//! [`crate::engine`], `ModelInfer` in [`crate::oip`]).
//!
//! The unit is the feature value (`f32`): a batch of `N` rows of `F`
//! features is `N × F` values, whatever model reads it. Explanations asked
//! for (`explain`) add four values per contribution (the engine's
//! `EXPLAIN_VALUE_WEIGHT`). Small batches stay
//! inline because a trip to the blocking pool costs a thread hand-off and
//! two wake-ups; large ones leave so that one caller's batch never holds an
//! async worker (and the requests queued behind it) for long.
//!
//! The outcome writer keeps its own rule (`outcomes` module: outcomes per
//! group, or any `fsync`): its work is encoding and disk writes, not
//! model arithmetic.

use tokio::task::JoinError;
use triad_features::N_FEATURES;

/// Rows of the feature schema a batch may hold and still be scored inline.
const MAX_INLINE_ROWS: usize = 20_000;

/// Most feature values a batch may hold and still be scored on an async
/// worker: [`MAX_INLINE_ROWS`] rows of the schema's [`N_FEATURES`] columns
/// (700 000 values, 2.8 MB of `f32`). The kernels of
/// `docs/performance.md` score that many rows in about 0.3–0.9 ms
/// (logistic, 23–75 M rows/s) and 10–20 ms (`out_of_policy`'s trees in
/// tract, 1–2 M rows/s).
pub(crate) const MAX_INLINE_VALUES: usize = MAX_INLINE_ROWS * N_FEATURES;

/// Runs `score`, a model computation over a batch of `values` feature
/// values: inline when it holds at most [`MAX_INLINE_VALUES`], else on the
/// blocking pool, inside the caller's tracing span. `Err` only when the
/// blocking task panicked or was cancelled.
pub(crate) async fn run<T: Send + 'static>(
    values: usize,
    score: impl FnOnce() -> T + Send + 'static,
) -> Result<T, JoinError> {
    if values <= MAX_INLINE_VALUES {
        return Ok(score());
    }
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(score)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batches_past_the_threshold_leave_the_async_worker() {
        let here = std::thread::current().id();
        let thread = || std::thread::current().id();
        assert_eq!(run(MAX_INLINE_VALUES, thread).await.unwrap(), here);
        assert_ne!(run(MAX_INLINE_VALUES + 1, thread).await.unwrap(), here);
    }
}
