//! Confusion counts of a binary classifier and the ratios drawn from them,
//! with one rule for a ratio whose denominator is 0: it is undefined
//! (`None`), never 0 or NaN, so a caller shows "no value" rather than a
//! made-up one.

/// How a classifier's predictions compare with the labels: one count per
/// cell of the 2 × 2 confusion matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConfusionCounts {
    /// Predicted positive, labelled positive.
    pub true_positives: u64,
    /// Predicted positive, labelled negative.
    pub false_positives: u64,
    /// Predicted negative, labelled positive.
    pub false_negatives: u64,
    /// Predicted negative, labelled negative.
    pub true_negatives: u64,
}

impl ConfusionCounts {
    /// Adds one labelled prediction to its cell.
    pub fn record(&mut self, predicted: bool, label: bool) {
        match (predicted, label) {
            (true, true) => self.true_positives += 1,
            (true, false) => self.false_positives += 1,
            (false, true) => self.false_negatives += 1,
            (false, false) => self.true_negatives += 1,
        }
    }

    /// Labelled positives, `TP + FN`.
    pub fn positives(&self) -> u64 {
        self.true_positives + self.false_negatives
    }

    /// `TP / (TP + FP)`; `None` when nothing labelled was predicted
    /// positive.
    pub fn precision(&self) -> Option<f64> {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// `TP / (TP + FN)`; `None` when there is no labelled positive.
    pub fn recall(&self) -> Option<f64> {
        ratio(self.true_positives, self.positives())
    }

    /// Labelled predictions, the sum of the four cells.
    pub fn labelled(&self) -> u64 {
        self.true_positives + self.false_positives + self.false_negatives + self.true_negatives
    }

    /// `(TP + TN) / (TP + FP + FN + TN)`, the share of labelled predictions
    /// that were right; `None` when nothing is labelled.
    pub fn accuracy(&self) -> Option<f64> {
        ratio(self.true_positives + self.true_negatives, self.labelled())
    }

    /// The harmonic mean of precision and recall, computed as
    /// `2 TP / (2 TP + FP + FN)`; `None` when either is undefined.
    pub fn f1(&self) -> Option<f64> {
        self.precision()?;
        self.recall()?;
        ratio(
            2 * self.true_positives,
            2 * self.true_positives + self.false_positives + self.false_negatives,
        )
    }
}

/// The expected confusion cells of predictions that carry a calibrated
/// probability `p` of being positive (confidence-based performance
/// estimation): each predicted positive adds `p` to `true_positives` and
/// `1 - p` to `false_positives`, each predicted negative `p` to
/// `false_negatives` and `1 - p` to `true_negatives`. Sums of such cells
/// (over hours, days, a week) are cells again; ratios of sums are the
/// only right way to combine estimates, never averages of ratios.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ExpectedCounts {
    /// E[TP].
    pub true_positives: f64,
    /// E[FP].
    pub false_positives: f64,
    /// E[FN].
    pub false_negatives: f64,
    /// E[TN].
    pub true_negatives: f64,
}

impl ExpectedCounts {
    /// Adds `other`'s cells to these.
    pub fn add(&mut self, other: &Self) {
        self.true_positives += other.true_positives;
        self.false_positives += other.false_positives;
        self.false_negatives += other.false_negatives;
        self.true_negatives += other.true_negatives;
    }

    /// Estimated precision, `E[TP] / (E[TP] + E[FP])`; `None` without a
    /// predicted positive that carries an estimate.
    pub fn precision(&self) -> Option<f64> {
        unit_ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// Estimated recall, `E[TP] / (E[TP] + E[FN])`; `None` when no outcome
    /// is expected to be positive.
    pub fn recall(&self) -> Option<f64> {
        unit_ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// Estimated F1, `2 E[TP] / (2 E[TP] + E[FP] + E[FN])`, the F1 of the
    /// expected cells; `None` unless precision and recall are both
    /// defined.
    pub fn f1(&self) -> Option<f64> {
        self.precision()?;
        self.recall()?;
        unit_ratio(
            2.0 * self.true_positives,
            2.0 * self.true_positives + self.false_positives + self.false_negatives,
        )
    }

    /// Estimated accuracy, `(E[TP] + E[TN]) / (E[TP] + E[FP] + E[FN] +
    /// E[TN])`; `None` without an outcome that carries an estimate.
    pub fn accuracy(&self) -> Option<f64> {
        unit_ratio(
            self.true_positives + self.true_negatives,
            self.true_positives + self.false_positives + self.false_negatives + self.true_negatives,
        )
    }
}

/// `numerator / denominator` clamped to `[0, 1]` (sums of floats may
/// overshoot by rounding), `None` unless the denominator is positive.
fn unit_ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0).then(|| (numerator / denominator).clamp(0.0, 1.0))
}

/// `numerator / denominator`, `None` when the denominator is 0.
fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_ratios_are_of_summed_cells_and_undefined_without_their_denominator() {
        let mut week = ExpectedCounts::default();
        // A day that matched: 10 predicted positives, E[TP] 9, E[FN] 1.
        week.add(&ExpectedCounts {
            true_positives: 9.0,
            false_positives: 1.0,
            false_negatives: 1.0,
            true_negatives: 89.0,
        });
        // A day the model stopped matching: no predicted positive.
        let stopped = ExpectedCounts {
            true_positives: 0.0,
            false_positives: 0.0,
            false_negatives: 50.0,
            true_negatives: 50.0,
        };
        assert_eq!(stopped.precision(), None);
        assert_eq!(stopped.recall(), Some(0.0));
        assert_eq!(stopped.f1(), None);
        week.add(&stopped);
        assert_eq!(week.precision(), Some(0.9));
        assert_eq!(week.recall(), Some(9.0 / 60.0));
        assert_eq!(week.f1(), Some(18.0 / (18.0 + 1.0 + 51.0)));
        assert_eq!(week.accuracy(), Some(148.0 / 200.0));
        assert_eq!(ExpectedCounts::default().accuracy(), None);
    }

    fn counts(tp: u64, fp: u64, fn_: u64, tn: u64) -> ConfusionCounts {
        ConfusionCounts {
            true_positives: tp,
            false_positives: fp,
            false_negatives: fn_,
            true_negatives: tn,
        }
    }

    #[test]
    fn ratios_of_the_cells() {
        let c = counts(3, 1, 2, 4);
        assert_eq!(c.precision(), Some(0.75));
        assert_eq!(c.recall(), Some(0.6));
        assert_eq!(c.f1(), Some(6.0 / 9.0));
        assert_eq!(c.positives(), 5);
        assert_eq!(c.accuracy(), Some(0.7));
        assert_eq!(c.labelled(), 10);
    }

    #[test]
    fn a_zero_denominator_is_undefined() {
        assert_eq!(ConfusionCounts::default().precision(), None);
        assert_eq!(ConfusionCounts::default().recall(), None);
        assert_eq!(ConfusionCounts::default().f1(), None);
        assert_eq!(ConfusionCounts::default().accuracy(), None);
        // Only negatives, all right: accuracy is defined (1), precision,
        // recall and F1 are not.
        assert_eq!(counts(0, 0, 0, 5).accuracy(), Some(1.0));
        // Nothing predicted positive: precision and F1 are undefined,
        // recall is 0.
        let c = counts(0, 0, 3, 5);
        assert_eq!((c.precision(), c.recall(), c.f1()), (None, Some(0.0), None));
        // No labelled positive: recall and F1 are undefined.
        let c = counts(0, 2, 0, 5);
        assert_eq!((c.precision(), c.recall(), c.f1()), (Some(0.0), None, None));
        // Both defined and 0: F1 is 0, not undefined.
        assert_eq!(counts(0, 1, 1, 0).f1(), Some(0.0));
    }

    #[test]
    fn record_fills_the_cells() {
        let mut c = ConfusionCounts::default();
        for (predicted, label) in [(true, true), (true, false), (false, true), (false, false)] {
            c.record(predicted, label);
        }
        c.record(true, true);
        assert_eq!(c, counts(2, 1, 1, 1));
    }
}
