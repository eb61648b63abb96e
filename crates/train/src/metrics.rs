//! Classification metrics at a threshold, as reported in model cards.

use serde::Serialize;

/// Confusion counts and the ratios drawn from them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Metrics {
    pub threshold: f64,
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    pub true_negatives: usize,
}

impl Metrics {
    /// Counts of `scores >= threshold` against `labels`.
    pub fn at(scores: &[f64], labels: &[bool], threshold: f64) -> Self {
        let mut m = Self {
            threshold,
            true_positives: 0,
            false_positives: 0,
            false_negatives: 0,
            true_negatives: 0,
        };
        for (&score, &label) in scores.iter().zip(labels) {
            match (score >= threshold, label) {
                (true, true) => m.true_positives += 1,
                (true, false) => m.false_positives += 1,
                (false, true) => m.false_negatives += 1,
                (false, false) => m.true_negatives += 1,
            }
        }
        m
    }

    /// TP / (TP + FP); 0 when nothing was predicted positive.
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// TP / (TP + FN); 0 when there are no positives.
    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    /// Number of labelled positives.
    pub fn support(&self) -> usize {
        self.true_positives + self.false_negatives
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_ratios() {
        let m = Metrics::at(
            &[0.9, 0.8, 0.2, 0.6, 0.1],
            &[true, false, true, true, false],
            0.5,
        );
        assert_eq!(
            (
                m.true_positives,
                m.false_positives,
                m.false_negatives,
                m.true_negatives
            ),
            (2, 1, 1, 1)
        );
        assert!((m.precision() - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.recall() - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.f1() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.support(), 3);
        assert_eq!(Metrics::at(&[], &[], 0.5).precision(), 0.0);
    }
}
