//! Held-out evaluation: how a fitted model's scores at its decision
//! threshold compare with the labels of a split, as the model card and
//! `triad train` report it.

use triad_series::ConfusionCounts;

/// The confusion counts of one split's scores at one threshold; precision,
/// recall and F1 come from [`ConfusionCounts`], undefined (`None`) on a
/// zero denominator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// A score at or above it predicts positive.
    pub threshold: f64,
    /// Counts of `score >= threshold` against the labels.
    pub counts: ConfusionCounts,
}

impl Evaluation {
    /// Counts of `scores >= threshold` against `labels`, pair by pair.
    pub fn at(scores: &[f64], labels: &[bool], threshold: f64) -> Self {
        let mut counts = ConfusionCounts::default();
        for (&score, &label) in scores.iter().zip(labels) {
            counts.record(score >= threshold, label);
        }
        Self { threshold, counts }
    }
}

/// A ratio to four decimals, or `undefined` when its denominator was 0.
pub fn ratio_text(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "undefined".to_owned(), |r| format!("{r:.4}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_ratios() {
        let e = Evaluation::at(
            &[0.9, 0.8, 0.2, 0.6, 0.1],
            &[true, false, true, true, false],
            0.5,
        );
        let m = e.counts;
        assert_eq!(
            (
                m.true_positives,
                m.false_positives,
                m.false_negatives,
                m.true_negatives
            ),
            (2, 1, 1, 1)
        );
        assert!((m.precision().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.recall().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.f1().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.positives(), 3);
        assert_eq!(e.threshold, 0.5);
        // Nothing predicted positive: undefined, not 0.
        assert_eq!(Evaluation::at(&[], &[], 0.5).counts.precision(), None);
    }

    #[test]
    fn ratios_read_as_text() {
        assert_eq!(ratio_text(Some(2.0 / 3.0)), "0.6667");
        assert_eq!(ratio_text(Some(1.0)), "1.0000");
        assert_eq!(ratio_text(None), "undefined");
    }
}
