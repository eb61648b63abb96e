//! The one rule for which stored outcomes count as scored. A gated model
//! (`gate` in its `serving.toml`) scores only the pairs its gate model
//! matched; the scorer still sends the others, marked `not_scored`, and the
//! monitor stores them (every answered pair once) with `scored = 0`
//! (migration `0004`). They count only in `confusion_counts.not_scored`:
//! never in `outcomes`, `labelled`, the confusion or expected cells, the
//! score sums, histograms, drift or mistakes, and labels joined to them
//! move nothing. Every query over scored outcomes uses [`SCORED_SQL`];
//! every count kept as outcomes arrive uses [`counts_as_scored`].

/// The SQL condition on `outcomes` (unqualified column) that selects the
/// scored outcomes.
pub(crate) const SCORED_SQL: &str = "scored = 1";

/// Whether an outcome enters the counts of scored outcomes: `scored` is
/// what the sender said (`!Outcome.not_scored`).
pub(crate) fn counts_as_scored(scored: bool) -> bool {
    scored
}
