//! Reference profiles: what a model's inputs and scores looked like on its
//! training data, written beside the model (`profile.json`) so the monitor
//! can test live traffic for drift before any label arrives, and a
//! calibration table so it can estimate precision and recall from scores
//! alone.

use serde::{Deserialize, Serialize};

/// File name of a profile inside a model version directory.
pub const PROFILE_FILE: &str = "profile.json";

/// Points kept to represent a distribution (its quantiles).
pub const SAMPLE_POINTS: usize = 1_000;

/// A compact description of one variable's distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Values seen, missing ones included.
    pub count: u64,
    /// Missing (NaN) values among them.
    pub missing: u64,
    /// Mean of the finite values.
    pub mean: f64,
    /// Population standard deviation of the finite values.
    pub std: f64,
    /// The `SAMPLE_POINTS` quantiles at `(i + 0.5) / SAMPLE_POINTS` of the
    /// finite values (all of them when there are fewer): a stand-in sample
    /// for two-sample tests.
    pub sample: Vec<f64>,
}

impl Distribution {
    /// Describes `values` (NaN counts as missing).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut count = 0u64;
        let mut finite: Vec<f64> = Vec::new();
        for value in values {
            count += 1;
            if value.is_finite() {
                finite.push(value);
            }
        }
        let missing = count - finite.len() as u64;
        finite.sort_by(f64::total_cmp);
        let n = finite.len();
        let mean = if n == 0 {
            0.0
        } else {
            finite.iter().sum::<f64>() / n as f64
        };
        let std = if n == 0 {
            0.0
        } else {
            (finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt()
        };
        let sample = if n <= SAMPLE_POINTS {
            finite
        } else {
            (0..SAMPLE_POINTS)
                .map(|i| {
                    let position = ((i as f64 + 0.5) / SAMPLE_POINTS as f64) * n as f64;
                    finite[(position as usize).min(n - 1)]
                })
                .collect()
        };
        Self {
            count,
            missing,
            mean,
            std,
            sample,
        }
    }
}

/// Observed positive rate of the training (held-out) scores in one score
/// range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Scores in `[low, high)` (the last bin includes 1).
    pub low: f64,
    /// Upper end of the range.
    pub high: f64,
    /// Held-out rows whose score fell in the range.
    pub count: u64,
    /// Share of them labelled positive.
    pub positive_rate: f64,
}

/// The reference profile of one model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceProfile {
    /// Model name.
    pub model: String,
    /// Model version.
    pub version: String,
    /// Hash of the feature schema the features follow.
    pub schema_hash: String,
    /// Rows the profile was built from.
    pub rows: u64,
    /// Per feature, by name, in schema order.
    pub features: Vec<(String, Distribution)>,
    /// The model's scores on the same rows.
    pub score: Distribution,
    /// Score → observed positive rate on held-out labelled rows, for
    /// confidence-based performance estimation.
    pub calibration: Vec<CalibrationBin>,
}

impl ReferenceProfile {
    /// Builds the calibration table from held-out `scores` and `labels`:
    /// `bins` equal-width score bins, empty bins left out.
    pub fn calibration_table(scores: &[f64], labels: &[bool], bins: usize) -> Vec<CalibrationBin> {
        let bins = bins.max(1);
        let mut counts = vec![(0u64, 0u64); bins];
        for (&score, &label) in scores.iter().zip(labels) {
            if !score.is_finite() {
                continue;
            }
            let bin = ((score.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
            counts[bin].0 += 1;
            counts[bin].1 += u64::from(label);
        }
        counts
            .into_iter()
            .enumerate()
            .filter(|(_, (n, _))| *n > 0)
            .map(|(i, (n, positives))| CalibrationBin {
                low: i as f64 / bins as f64,
                high: (i + 1) as f64 / bins as f64,
                count: n,
                positive_rate: positives as f64 / n as f64,
            })
            .collect()
    }
}

/// The calibrated probability of a score: the positive rate of its bin, or
/// the score itself when no bin covers it.
pub fn calibrate(table: &[CalibrationBin], score: f64) -> f64 {
    table
        .iter()
        .find(|bin| score >= bin.low && (score < bin.high || (bin.high >= 1.0 && score <= 1.0)))
        .map_or(score, |bin| bin.positive_rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_counts_missing_and_keeps_quantiles() {
        let d = Distribution::of([1.0, f64::NAN, 3.0, 2.0]);
        assert_eq!((d.count, d.missing), (4, 1));
        assert_eq!(d.mean, 2.0);
        assert!((d.std - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(d.sample, [1.0, 2.0, 3.0]);
        let big = Distribution::of((0..10_000).map(f64::from));
        assert_eq!(big.sample.len(), SAMPLE_POINTS);
        assert_eq!(big.sample[0], 5.0);
        assert_eq!(big.sample[SAMPLE_POINTS - 1], 9995.0);
    }

    #[test]
    fn calibration_bins_and_lookup() {
        let scores = [0.05, 0.07, 0.95, 0.91, 0.99, 1.0];
        let labels = [false, true, true, true, false, true];
        let table = ReferenceProfile::calibration_table(&scores, &labels, 10);
        assert_eq!(table.len(), 2);
        assert_eq!((table[0].count, table[0].positive_rate), (2, 0.5));
        assert_eq!((table[1].count, table[1].positive_rate), (4, 0.75));
        assert_eq!(calibrate(&table, 0.06), 0.5);
        assert_eq!(calibrate(&table, 1.0), 0.75);
        assert_eq!(calibrate(&table, 0.5), 0.5, "no bin: the score itself");
    }
}
