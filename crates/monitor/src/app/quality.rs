//! Model quality, from counters to answers: one [`MetricPoint`] per bucket
//! (precision, recall, F1, rates), the derived series of precision and
//! recall (smoothing, trends, change points, anomaly flags — all from
//! `triad-series`), and the `Anomalies` answer. Pure computation.

use std::collections::HashMap;

use triad_proto::v1::{AnomaliesResponse, AnomalyPoint, DerivedSeries, MetricPoint};
use triad_series::{
    ConfusionCounts, DEFAULT_ANOMALY_K, ExpectedCounts, default_penalty, ewma, ewma_anomalies,
    piecewise_constant, robust_trend, rolling_median, trend_line,
};

use triad_features::MISSING_FLAG_FIELDS;

use crate::fields::SEED_FIELDS;
use crate::store::{Confusion, Counts};

/// Metrics `Anomalies` can watch, besides `null_rate.<field>` for every
/// seed field.
pub(crate) const METRIC_NAMES: [&str; 17] = [
    "precision",
    "recall",
    "f1",
    "accuracy",
    "count",
    "predicted_positive",
    "labelled",
    "labelled_share",
    "true_positives",
    "false_positives",
    "false_negatives",
    "true_negatives",
    "mean_score",
    "estimated_precision",
    "estimated_recall",
    "estimated_f1",
    "estimated_accuracy",
];

/// EWMA spans of the derived series.
pub(crate) const EWMA_SPANS: [usize; 4] = [3, 5, 10, 20];
/// Rolling-median windows of the derived series.
pub(crate) const MEDIAN_WINDOWS: [usize; 4] = [3, 5, 7, 9];
/// EWMA span of the `anomaly` series and the `Anomalies` default.
pub(crate) const ANOMALY_SPAN: usize = 5;
/// The metrics that get derived series in `QueryMetrics`.
pub(crate) const DERIVED_METRICS: [&str; 4] = [
    "precision",
    "recall",
    "estimated_precision",
    "estimated_recall",
];

fn ratio(num: i64, den: i64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The point of one bucket.
pub(crate) fn point(bucket_start_ms: i64, c: &Counts) -> MetricPoint {
    let confusion = ConfusionCounts {
        true_positives: unsigned(c.tp),
        false_positives: unsigned(c.fp),
        false_negatives: unsigned(c.fn_),
        true_negatives: unsigned(c.tn),
    };
    let mut null_rate = HashMap::with_capacity(SEED_FIELDS.len());
    if c.outcomes > 0 {
        let count = c.outcomes as f64;
        for field in SEED_FIELDS {
            let nulls = MISSING_FLAG_FIELDS
                .iter()
                .position(|f| *f == field)
                .map_or(0, |i| c.nulls[i]);
            null_rate.insert(field.to_owned(), nulls as f64 / count);
        }
    }
    MetricPoint {
        bucket_start_ms,
        count: unsigned(c.outcomes),
        predicted_positive: unsigned(c.predicted_positive),
        labelled: unsigned(c.labelled),
        labelled_share: ratio(c.labelled, c.outcomes).unwrap_or(0.0),
        true_positives: confusion.true_positives,
        false_positives: confusion.false_positives,
        false_negatives: confusion.false_negatives,
        true_negatives: confusion.true_negatives,
        precision: confusion.precision(),
        recall: confusion.recall(),
        f1: confusion.f1(),
        accuracy: confusion.accuracy(),
        mean_score: if c.outcomes > 0 {
            c.score_sum / c.outcomes as f64
        } else {
            f64::NAN
        },
        estimated_precision: c.expected().precision(),
        estimated_recall: c.expected().recall(),
        estimated_f1: c.expected().f1(),
        estimated_accuracy: c.expected().accuracy(),
        null_rate,
        not_scored: unsigned(c.not_scored),
        expected_true_positives: c.expected_tp,
        expected_false_positives: c.expected_fp,
        expected_false_negatives: c.expected_fn,
        expected_true_negatives: c.expected_tn,
    }
}

/// One value per point of a metric [`super::validate::metric`] accepts
/// (NaN where undefined).
pub(crate) fn metric_values(points: &[MetricPoint], name: &str) -> Vec<f64> {
    let nan = f64::NAN;
    let field = name.strip_prefix("null_rate.");
    points
        .iter()
        .map(|p| match name {
            "precision" => p.precision.unwrap_or(nan),
            "recall" => p.recall.unwrap_or(nan),
            "f1" => p.f1.unwrap_or(nan),
            "accuracy" => p.accuracy.unwrap_or(nan),
            "count" => p.count as f64,
            "predicted_positive" => p.predicted_positive as f64,
            "labelled" => p.labelled as f64,
            "labelled_share" => p.labelled_share,
            "true_positives" => p.true_positives as f64,
            "false_positives" => p.false_positives as f64,
            "false_negatives" => p.false_negatives as f64,
            "true_negatives" => p.true_negatives as f64,
            "mean_score" => p.mean_score,
            "estimated_precision" => p.estimated_precision.unwrap_or(nan),
            "estimated_recall" => p.estimated_recall.unwrap_or(nan),
            "estimated_f1" => p.estimated_f1.unwrap_or(nan),
            "estimated_accuracy" => p.estimated_accuracy.unwrap_or(nan),
            _ => field
                .and_then(|f| p.null_rate.get(f).copied())
                .unwrap_or(nan),
        })
        .collect()
}

/// The PELT segmentation of the finite values (missing points are left
/// out and get NaN), as one fitted value per point plus the indices where
/// a new segment starts.
pub(crate) fn piecewise(values: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let positions: Vec<usize> = (0..values.len())
        .filter(|&i| values[i].is_finite())
        .collect();
    let finite: Vec<f64> = positions.iter().map(|&i| values[i]).collect();
    let mut fitted = vec![f64::NAN; values.len()];
    let mut starts = Vec::new();
    let segments = default_penalty(&finite).and_then(|pen| piecewise_constant(&finite, pen));
    if let Ok(segments) = segments {
        for (n, segment) in segments.iter().enumerate() {
            if n > 0 {
                starts.push(positions[segment.start]);
            }
            for &i in &positions[segment.start..segment.end] {
                fitted[i] = segment.mean;
            }
        }
    }
    (fitted, starts)
}

fn or_nan(result: triad_series::Result<Vec<f64>>, n: usize) -> Vec<f64> {
    result.unwrap_or_else(|_| vec![f64::NAN; n])
}

/// The derived series of one metric's values, named `<metric>.<series>`.
pub(crate) fn derive(metric: &str, values: &[f64]) -> Vec<DerivedSeries> {
    let n = values.len();
    let mut out = Vec::with_capacity(EWMA_SPANS.len() + MEDIAN_WINDOWS.len() + 4);
    let mut push = |name: String, values: Vec<f64>| {
        out.push(DerivedSeries {
            name: format!("{metric}.{name}"),
            values,
        });
    };
    for span in EWMA_SPANS {
        push(format!("ewma_{span}"), or_nan(ewma(values, span), n));
    }
    for window in MEDIAN_WINDOWS {
        push(
            format!("median_{window}"),
            or_nan(rolling_median(values, window), n),
        );
    }
    let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
    push(
        "trend_line".into(),
        or_nan(trend_line(&x, values).map(|l| l.fitted(&x)), n),
    );
    push(
        "robust_trend".into(),
        or_nan(robust_trend(&x, values).map(|l| l.fitted(&x)), n),
    );
    push("piecewise_constant".into(), piecewise(values).0);
    let mut flags = vec![0.0; n];
    if let Ok(anomalies) = ewma_anomalies(values, ANOMALY_SPAN, DEFAULT_ANOMALY_K) {
        for a in anomalies {
            flags[a.index] = 1.0;
        }
    }
    push("anomaly".into(), flags);
    out
}

/// Every derived series of `QueryMetrics`.
pub(crate) fn derived_series(points: &[MetricPoint]) -> Vec<DerivedSeries> {
    DERIVED_METRICS
        .iter()
        .flat_map(|metric| derive(metric, &metric_values(points, metric)))
        .collect()
}

/// Flags and change points of one metric.
pub(crate) fn anomalies(
    points: &[MetricPoint],
    metric: &str,
    span: usize,
    k: f64,
) -> AnomaliesResponse {
    let values = metric_values(points, metric);
    let anomalies = ewma_anomalies(&values, span, k)
        .unwrap_or_default()
        .into_iter()
        .map(|a| AnomalyPoint {
            bucket_start_ms: points[a.index].bucket_start_ms,
            value: a.value,
            expected: a.expected,
            score: a.score,
        })
        .collect();
    let change_points_ms = piecewise(&values)
        .1
        .into_iter()
        .map(|i| points[i].bucket_start_ms)
        .collect();
    AnomaliesResponse {
        anomalies,
        change_points_ms,
    }
}

// The quality read off the counters and confusion cells the store keeps.

impl Counts {
    /// The expected cells (migration `0002`), whose ratios are the
    /// estimates.
    pub(crate) fn expected(&self) -> ExpectedCounts {
        ExpectedCounts {
            true_positives: self.expected_tp,
            false_positives: self.expected_fp,
            false_negatives: self.expected_fn,
            true_negatives: self.expected_tn,
        }
    }
}

impl Confusion {
    /// `tp / (tp + fp)`, `None` with no labelled positive prediction.
    pub(crate) fn precision(&self) -> Option<f64> {
        self.counts().precision()
    }

    /// `tp / (tp + fn)`, `None` with no labelled positive.
    pub(crate) fn recall(&self) -> Option<f64> {
        self.counts().recall()
    }

    /// The cells as [`ConfusionCounts`]; true negatives are not summed
    /// here, so they are 0.
    fn counts(&self) -> ConfusionCounts {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        ConfusionCounts {
            true_positives: count(self.tp),
            false_positives: count(self.fp),
            false_negatives: count(self.fn_),
            true_negatives: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(tp: i64, fp: i64, fn_: i64, tn: i64) -> Counts {
        Counts {
            outcomes: tp + fp + fn_ + tn + 2,
            predicted_positive: tp + fp,
            labelled: tp + fp + fn_ + tn,
            tp,
            fp,
            fn_,
            tn,
            score_sum: 1.5,
            nulls: [1; MISSING_FLAG_FIELDS.len()],
            ..Counts::default()
        }
    }

    #[test]
    fn a_point_estimates_precision_and_recall_from_expected_cells() {
        // Calibrated probabilities: predicted positives 0.9, 0.6; predicted
        // negatives 0.2, 0.2, 0.0 (no label needed).
        let mut c = counts(0, 0, 0, 0);
        for (matched, p) in [
            (true, 0.9),
            (true, 0.6),
            (false, 0.2),
            (false, 0.2),
            (false, 0.0),
        ] {
            c.expect(matched, p);
        }
        let p = point(0, &c);
        // E[TP] = 1.5 of 2 predicted positives; E[FN] = 0.4.
        assert!((p.estimated_precision.unwrap() - 0.75).abs() < 1e-12);
        assert!((p.estimated_recall.unwrap() - 1.5 / 1.9).abs() < 1e-12);
        assert_eq!((p.precision, p.recall), (None, None));
        assert_eq!(metric_values(&[p], "estimated_precision"), [0.75]);
        let empty = point(0, &Counts::default());
        assert_eq!(
            (empty.estimated_precision, empty.estimated_recall),
            (None, None)
        );
    }

    #[test]
    fn a_point_has_precision_recall_f1_and_rates() {
        let p = point(7, &counts(3, 1, 2, 4));
        assert_eq!(p.count, 12);
        assert_eq!(p.precision, Some(0.75));
        assert_eq!(p.recall, Some(0.6));
        assert_eq!(p.f1, Some(6.0 / 9.0));
        assert_eq!(p.accuracy, Some(0.7));
        assert_eq!(metric_values(std::slice::from_ref(&p), "accuracy"), [0.7]);
        assert_eq!(p.labelled_share, 10.0 / 12.0);
        assert_eq!(p.mean_score, 1.5 / 12.0);
        assert_eq!(p.null_rate["vendor_name_expense"], 1.0 / 12.0);
        assert_eq!(p.null_rate["budget_id"], 0.0);
        assert_eq!(p.null_rate.len(), 17);
    }

    #[test]
    fn undefined_metrics_are_absent() {
        let p = point(0, &counts(0, 0, 0, 5));
        assert_eq!((p.precision, p.recall, p.f1), (None, None, None));
        assert_eq!(p.accuracy, Some(1.0));
        let p = point(0, &counts(0, 2, 0, 5));
        assert_eq!((p.precision, p.recall, p.f1), (Some(0.0), None, None));
        let empty = point(0, &Counts::default());
        assert!(empty.mean_score.is_nan());
        assert_eq!(empty.accuracy, None);
        assert_eq!((empty.estimated_f1, empty.estimated_accuracy), (None, None));
        assert!(empty.null_rate.is_empty());
    }

    #[test]
    fn piecewise_skips_missing_points_and_reports_starts() {
        let values = [1.0, 1.0, 1.0, f64::NAN, 1.0, 5.0, 5.0, 5.0, 5.0];
        let (fitted, starts) = piecewise(&values);
        assert_eq!(starts, [5]);
        assert_eq!(fitted[0], 1.0);
        assert!(fitted[3].is_nan());
        assert_eq!(fitted[8], 5.0);
    }

    #[test]
    fn derived_series_are_named_and_sized() {
        let points: Vec<MetricPoint> = (0..12)
            .map(|i| point(i, &counts(3 + i % 2, 1, 1, 1)))
            .collect();
        let series = derived_series(&points);
        let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(series.len(), 48);
        assert!(names.contains(&"precision.ewma_5"));
        assert!(names.contains(&"estimated_precision.anomaly"));
        assert!(names.contains(&"estimated_recall.trend_line"));
        assert!(names.contains(&"recall.median_9"));
        assert!(names.contains(&"recall.anomaly"));
        assert!(series.iter().all(|s| s.values.len() == 12));
    }

    #[test]
    fn expected_cells_split_each_outcome_by_its_probability() {
        // Hand-made: predicted positives with p 0.9, 0.8, 0.4 and predicted
        // negatives with p 0.3, 0.1, 0.0.
        let mut c = Counts::default();
        for (matched, p) in [
            (true, 0.9),
            (true, 0.8),
            (true, 0.4),
            (false, 0.3),
            (false, 0.1),
            (false, 0.0),
        ] {
            c.expect(matched, p);
        }
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(c.expected_tp, 2.1), "{}", c.expected_tp);
        assert!(close(c.expected_fp, 0.9));
        assert!(close(c.expected_fn, 0.4));
        assert!(close(c.expected_tn, 2.6));
        // E[TP] / predicted positives = 2.1 / 3; E[TP] / (E[TP] + E[FN]) =
        // 2.1 / 2.5.
        assert!(close(c.expected().precision().unwrap(), 0.7));
        assert!(close(c.expected().recall().unwrap(), 0.84));
        // 2 * 2.1 / (4.2 + 0.9 + 0.4); (2.1 + 2.6) / 6.
        assert!(close(c.expected().f1().unwrap(), 4.2 / 5.5));
        assert!(close(c.expected().accuracy().unwrap(), 4.7 / 6.0));

        // Buckets add up: the sum of two halves estimates like the whole.
        let (mut a, mut b) = (Counts::default(), Counts::default());
        a.expect(true, 0.9);
        a.expect(false, 0.3);
        b.expect(true, 0.8);
        b.expect(true, 0.4);
        b.expect(false, 0.1);
        b.expect(false, 0.0);
        a.add(&b);
        assert!(close(a.expected().precision().unwrap(), 0.7));
        assert!(close(a.expected().recall().unwrap(), 0.84));

        // No predicted positive: no precision; no expected positive: no
        // recall.
        let mut negatives = Counts::default();
        negatives.expect(false, 0.0);
        assert_eq!(negatives.expected().precision(), None);
        assert_eq!(negatives.expected().recall(), None);
        assert_eq!(negatives.expected().f1(), None);
        // Every prediction expected right: accuracy 1 even so.
        assert_eq!(negatives.expected().accuracy(), Some(1.0));
        assert_eq!(Counts::default().expected().accuracy(), None);
        assert_eq!(Counts::default().expected().precision(), None);
    }

    #[test]
    fn precision_and_recall_are_absent_when_undefined() {
        let c = Confusion {
            tp: 3,
            fp: 1,
            fn_: 0,
            ..Confusion::default()
        };
        assert_eq!(c.precision(), Some(0.75));
        assert_eq!(c.recall(), Some(1.0));
        assert_eq!(Confusion::default().precision(), None);
        assert_eq!(Confusion::default().recall(), None);
    }
}
