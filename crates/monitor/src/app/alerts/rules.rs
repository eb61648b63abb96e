//! The alert rules, pure: one model version's daily points (the last one
//! the last closed bucket) and its drift in, the rules it breaches out.
//! No store, no clock: what `Monitor::evaluate_alerts` and the unit tests
//! and benchmark feed it is all it sees. Each rule, its default threshold
//! and why is in `docs/monitoring.md`, "Alerts".

use triad_proto::v1::{DriftResponse, MetricPoint};
use triad_series::{ewma, ewma_anomalies, ewma_band};

use super::settings::Thresholds;
use crate::app::quality::{ANOMALY_SPAN, metric_values};
use crate::fields::SEED_FIELDS;

/// How bad a breach is: `critical` wants someone now, `warning` today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Severity {
    /// Worth a look today.
    Warning,
    /// The model is failing its users.
    Critical,
}

impl Severity {
    /// The name used in labels, the RPC and the store.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// Every rule: its name, its severity, the dashboard section that shows
/// it, and what it watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Rule {
    /// Realized precision fell out of its EWMA band.
    PrecisionAnomalous,
    /// Realized recall fell out of its EWMA band.
    RecallAnomalous,
    /// Estimated precision fell out of its EWMA band.
    EstimatedPrecisionAnomalous,
    /// Estimated recall fell out of its EWMA band.
    EstimatedRecallAnomalous,
    /// Estimated precision below its floor.
    EstimatedPrecisionBelowFloor,
    /// Estimated recall below its floor.
    EstimatedRecallBelowFloor,
    /// A feature's (or the score's) PSI past its threshold.
    FeatureDrift,
    /// The labelled share of a bucket old enough to be labelled is low.
    LabelledShareStalled,
    /// Far fewer outcomes than usual.
    VolumeDrop,
    /// A seed field's null rate jumped.
    NullRateJump,
}

/// Every rule, in the order the docs list them.
pub(crate) const RULES: [Rule; 10] = [
    Rule::PrecisionAnomalous,
    Rule::RecallAnomalous,
    Rule::EstimatedPrecisionAnomalous,
    Rule::EstimatedRecallAnomalous,
    Rule::EstimatedPrecisionBelowFloor,
    Rule::EstimatedRecallBelowFloor,
    Rule::FeatureDrift,
    Rule::LabelledShareStalled,
    Rule::VolumeDrop,
    Rule::NullRateJump,
];

impl Rule {
    /// The alert's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::PrecisionAnomalous => "precision_anomalous",
            Self::RecallAnomalous => "recall_anomalous",
            Self::EstimatedPrecisionAnomalous => "estimated_precision_anomalous",
            Self::EstimatedRecallAnomalous => "estimated_recall_anomalous",
            Self::EstimatedPrecisionBelowFloor => "estimated_precision_below_floor",
            Self::EstimatedRecallBelowFloor => "estimated_recall_below_floor",
            Self::FeatureDrift => "feature_drift",
            Self::LabelledShareStalled => "labelled_share_stalled",
            Self::VolumeDrop => "volume_drop",
            Self::NullRateJump => "null_rate_jump",
        }
    }

    /// The rule of an alert name.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        RULES.into_iter().find(|rule| rule.name() == name)
    }

    /// How bad a breach is.
    pub(crate) fn severity(self) -> Severity {
        match self {
            Self::EstimatedPrecisionBelowFloor
            | Self::EstimatedRecallBelowFloor
            | Self::VolumeDrop => Severity::Critical,
            _ => Severity::Warning,
        }
    }

    /// The id of the model page's section that shows what the rule
    /// watches.
    pub(crate) fn section(self) -> &'static str {
        match self {
            Self::PrecisionAnomalous
            | Self::RecallAnomalous
            | Self::EstimatedPrecisionAnomalous
            | Self::EstimatedRecallAnomalous
            | Self::EstimatedPrecisionBelowFloor
            | Self::EstimatedRecallBelowFloor => "precision-recall",
            Self::FeatureDrift => "drift",
            Self::LabelledShareStalled | Self::VolumeDrop => "volume",
            Self::NullRateJump => "null-rates",
        }
    }

    /// One line for a person: what `value` and `threshold` mean.
    pub(crate) fn summary(self, subject: &str, value: f64, threshold: f64) -> String {
        match self {
            Self::PrecisionAnomalous
            | Self::RecallAnomalous
            | Self::EstimatedPrecisionAnomalous
            | Self::EstimatedRecallAnomalous => format!(
                "{} fell to {value:.3}, below its EWMA band (lower edge {threshold:.3})",
                self.metric().unwrap_or_default().replace('_', " ")
            ),
            Self::EstimatedPrecisionBelowFloor | Self::EstimatedRecallBelowFloor => format!(
                "{} is {value:.3}, below the floor of {threshold:.3}",
                self.metric().unwrap_or_default().replace('_', " ")
            ),
            Self::FeatureDrift => {
                format!("{subject} drifted: PSI {value:.3} above {threshold:.3}")
            }
            Self::LabelledShareStalled => format!(
                "only {:.1} % of a day old enough to be labelled has a label (expected at least {:.1} %)",
                value * 100.0,
                threshold * 100.0
            ),
            Self::VolumeDrop => format!(
                "{value:.0} outcomes in the last day, below {threshold:.0} (a fraction of the usual volume)"
            ),
            Self::NullRateJump => format!(
                "{subject} is missing in {:.1} % of the last day's outcomes (limit {:.1} %)",
                value * 100.0,
                threshold * 100.0
            ),
        }
    }

    /// The metric an anomaly or floor rule watches.
    fn metric(self) -> Option<&'static str> {
        match self {
            Self::PrecisionAnomalous => Some("precision"),
            Self::RecallAnomalous => Some("recall"),
            Self::EstimatedPrecisionAnomalous | Self::EstimatedPrecisionBelowFloor => {
                Some("estimated_precision")
            }
            Self::EstimatedRecallAnomalous | Self::EstimatedRecallBelowFloor => {
                Some("estimated_recall")
            }
            _ => None,
        }
    }
}

/// One rule a model version breaches.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    pub rule: Rule,
    /// The feature or seed field it is about; empty when the rule has
    /// none.
    pub subject: String,
    /// The value that breached.
    pub value: f64,
    /// The threshold it breached.
    pub threshold: f64,
}

impl Finding {
    fn new(rule: Rule, subject: &str, value: f64, threshold: f64) -> Self {
        Self {
            rule,
            subject: subject.to_owned(),
            value,
            threshold,
        }
    }
}

/// The median of the finite values, `None` without any.
fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// Buckets before the judged one a baseline needs, at least.
const MIN_BASELINE: usize = 3;
/// Buckets of recent history the null-rate baseline reads.
const NULL_RATE_BASELINE: usize = 7;
/// Weeks back the volume baseline reads (same weekday).
const VOLUME_WEEKS: usize = 4;

/// Every rule `points` (daily, contiguous, the last one the last closed
/// bucket) and `drift` (of the last closed bucket; `None` or unavailable:
/// no drift rule) breach under `t`.
pub(crate) fn check(
    points: &[MetricPoint],
    drift: Option<&DriftResponse>,
    t: &Thresholds,
) -> Vec<Finding> {
    let mut found = Vec::new();
    let Some(last) = points.last() else {
        return found;
    };
    let enough = |p: &MetricPoint| p.count >= t.min_outcomes;

    // (a) Anomalies: realized metrics on the newest bucket with enough
    // labels (labels come late), within the label delay; estimated ones
    // on the last closed bucket.
    for (rule, metric) in [
        (Rule::PrecisionAnomalous, "precision"),
        (Rule::RecallAnomalous, "recall"),
        (Rule::EstimatedPrecisionAnomalous, "estimated_precision"),
        (Rule::EstimatedRecallAnomalous, "estimated_recall"),
    ] {
        let judged = |p: &MetricPoint| match metric {
            "precision" => p.true_positives + p.false_positives >= t.min_labelled,
            "recall" => p.true_positives + p.false_negatives >= t.min_labelled,
            _ => enough(p),
        };
        let mut values = metric_values(points, metric);
        for (value, p) in values.iter_mut().zip(points) {
            if !judged(p) {
                *value = f64::NAN;
            }
        }
        let reach = if metric.starts_with("estimated") {
            1
        } else {
            t.label_delay_days as usize + 1
        };
        let Some(end) = (0..values.len())
            .rev()
            .take(reach)
            .find(|&i| values[i].is_finite())
        else {
            continue;
        };
        if let Some(finding) = anomaly(rule, &values[..=end], t) {
            found.push(finding);
        }
    }

    // (b) Floors of the estimated metrics.
    if enough(last) {
        for (rule, value, floor) in [
            (
                Rule::EstimatedPrecisionBelowFloor,
                last.estimated_precision,
                t.estimated_precision_floor,
            ),
            (
                Rule::EstimatedRecallBelowFloor,
                last.estimated_recall,
                t.estimated_recall_floor,
            ),
        ] {
            if let Some(value) = value.filter(|v| *v < floor) {
                found.push(Finding::new(rule, "", value, floor));
            }
        }
    }

    // (c) Drift: PSI past its threshold, feature by feature and the score.
    if let Some(drift) = drift.filter(|d| d.available) {
        for feature in drift.features.iter().chain(drift.score.as_ref()) {
            if feature.psi.is_finite() && feature.psi > t.drift_psi {
                found.push(Finding::new(
                    Rule::FeatureDrift,
                    &feature.name,
                    feature.psi,
                    t.drift_psi,
                ));
            }
        }
    }

    // (d) The labelled share of the bucket `label_delay_days` before the
    // last closed one, against the shares of the buckets before it (all
    // at least as old).
    let delay = t.label_delay_days as usize;
    if points.len() > delay {
        let mature = points.len() - 1 - delay;
        let p = &points[mature];
        let baseline: Vec<f64> = points[..mature]
            .iter()
            .filter(|p| enough(p))
            .map(|p| p.labelled_share)
            .collect();
        if enough(p) && baseline.len() >= MIN_BASELINE {
            let usual = median(baseline).unwrap_or(0.0);
            let threshold = (t.labelled_share_ratio * usual).max(t.labelled_share_floor);
            if p.labelled_share < threshold {
                found.push(Finding::new(
                    Rule::LabelledShareStalled,
                    "",
                    p.labelled_share,
                    threshold,
                ));
            }
        }
    }

    // (e) Volume: the last closed bucket against the median of the same
    // weekday over the previous weeks.
    let n = points.len();
    let same_weekday: Vec<f64> = (1..=VOLUME_WEEKS)
        .filter_map(|w| n.checked_sub(1 + 7 * w))
        .map(|i| points[i].count as f64)
        .collect();
    if same_weekday.len() >= 2 {
        let usual = median(same_weekday).unwrap_or(0.0);
        let threshold = t.volume_ratio * usual;
        if usual >= t.min_outcomes as f64 && (last.count as f64) < threshold {
            found.push(Finding::new(
                Rule::VolumeDrop,
                "",
                last.count as f64,
                threshold,
            ));
        }
    }

    // (f) Null rates: each seed field's rate in the last closed bucket
    // against its median over the week before.
    if enough(last) {
        let before: Vec<&MetricPoint> = points[..n - 1]
            .iter()
            .rev()
            .take(NULL_RATE_BASELINE)
            .filter(|p| enough(p))
            .collect();
        if before.len() >= MIN_BASELINE {
            for field in SEED_FIELDS {
                let Some(&rate) = last.null_rate.get(field) else {
                    continue;
                };
                let usual = median(
                    before
                        .iter()
                        .filter_map(|p| p.null_rate.get(field).copied()),
                )
                .unwrap_or(0.0);
                let threshold = usual + t.null_rate_jump;
                if rate > threshold {
                    found.push(Finding::new(Rule::NullRateJump, field, rate, threshold));
                }
            }
        }
    }
    found
}

/// The anomaly of the last of `values`, when it is flagged by the EWMA
/// rule of `Anomalies`, lies below its expected value (a drop: a metric
/// that improves is no alert) and by at least `anomaly_min_change`.
fn anomaly(rule: Rule, values: &[f64], t: &Thresholds) -> Option<Finding> {
    let last = values.len().checked_sub(1)?;
    let flagged = ewma_anomalies(values, ANOMALY_SPAN, t.anomaly_k)
        .ok()?
        .into_iter()
        .find(|a| a.index == last)?;
    if flagged.value >= flagged.expected || flagged.expected - flagged.value < t.anomaly_min_change
    {
        return None;
    }
    let smooth = ewma(values, ANOMALY_SPAN).ok()?;
    let (lower, _) = ewma_band(values, &smooth, ANOMALY_SPAN, t.anomaly_k);
    Some(Finding::new(rule, "", flagged.value, lower[last]))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use triad_proto::v1::FeatureDrift;

    use super::*;

    /// A healthy day `i`: 200 outcomes, all labelled, precision and recall
    /// about 0.9 with a small wiggle, estimates 0.8, nothing missing.
    fn day(i: usize) -> MetricPoint {
        let wiggle = [0, 2, 1, 3, 1][i % 5];
        let tp = 72 + wiggle;
        let fp = 8 - wiggle / 2;
        let fn_ = 8;
        MetricPoint {
            bucket_start_ms: i as i64 * 86_400_000,
            count: 200,
            predicted_positive: tp + fp,
            labelled: 200,
            labelled_share: 1.0,
            true_positives: tp,
            false_positives: fp,
            false_negatives: fn_,
            true_negatives: 200 - tp - fp - fn_,
            precision: Some(tp as f64 / (tp + fp) as f64),
            recall: Some(tp as f64 / (tp + fn_) as f64),
            estimated_precision: Some(0.8),
            estimated_recall: Some(0.75),
            null_rate: SEED_FIELDS.iter().map(|f| ((*f).to_owned(), 0.0)).collect(),
            ..MetricPoint::default()
        }
    }

    fn healthy(n: usize) -> Vec<MetricPoint> {
        (0..n).map(day).collect()
    }

    fn names(found: &[Finding]) -> Vec<(&'static str, &str)> {
        found
            .iter()
            .map(|f| (f.rule.name(), f.subject.as_str()))
            .collect()
    }

    #[test]
    fn a_healthy_history_breaches_nothing() {
        let t = Thresholds::default();
        for n in 0..60 {
            assert!(check(&healthy(n), None, &t).is_empty(), "{n} days");
        }
    }

    #[test]
    fn a_precision_drop_is_an_anomaly_and_a_rise_is_not() {
        let t = Thresholds::default();
        let mut points = healthy(30);
        let last = points.last_mut().unwrap();
        last.precision = Some(0.5);
        last.true_positives = 40;
        last.false_positives = 40;
        let found = check(&points, None, &t);
        assert_eq!(names(&found), [("precision_anomalous", "")]);
        assert_eq!(found[0].value, 0.5);
        assert!(found[0].threshold > 0.8 && found[0].threshold < 0.9);

        let mut points = healthy(30);
        points.last_mut().unwrap().precision = Some(1.0);
        assert!(check(&points, None, &t).is_empty());
    }

    #[test]
    fn realized_metrics_are_judged_on_the_newest_labelled_bucket() {
        let t = Thresholds::default();
        let mut points = healthy(30);
        points[27].precision = Some(0.5);
        for p in &mut points[28..] {
            p.true_positives = 0;
            p.false_positives = 0;
            p.precision = None;
        }
        assert_eq!(
            names(&check(&points, None, &t)),
            [("precision_anomalous", "")]
        );
    }

    #[test]
    fn floors_volume_null_rates_and_labels() {
        let t = Thresholds::default();
        let mut points = healthy(30);
        let last = points.len() - 1;
        points[last].estimated_precision = Some(0.4);
        points[last].count = 90;
        points[last]
            .null_rate
            .insert("vendor_name_expense".into(), 0.6);
        points[last - 7].labelled_share = 0.1;
        let found = check(&points, None, &t);
        let mut got = names(&found);
        got.sort();
        assert_eq!(
            got,
            [
                ("estimated_precision_anomalous", ""),
                ("estimated_precision_below_floor", ""),
                ("labelled_share_stalled", ""),
                ("null_rate_jump", "vendor_name_expense"),
                ("volume_drop", ""),
            ]
        );
        let volume = found.iter().find(|f| f.rule == Rule::VolumeDrop).unwrap();
        assert_eq!((volume.value, volume.threshold), (90.0, 100.0));
        let nulls = found.iter().find(|f| f.rule == Rule::NullRateJump).unwrap();
        assert_eq!((nulls.value, nulls.threshold), (0.6, 0.2));
    }

    #[test]
    fn small_buckets_are_not_judged() {
        let t = Thresholds::default();
        let mut points = healthy(30);
        let last = points.last_mut().unwrap();
        last.count = 10;
        last.estimated_precision = Some(0.1);
        last.null_rate = HashMap::from([("budget_id".to_owned(), 1.0)]);
        // Only the volume rule judges a small bucket.
        assert_eq!(names(&check(&points, None, &t)), [("volume_drop", "")]);
    }

    #[test]
    fn drift_past_its_psi_threshold_fires_per_feature() {
        let t = Thresholds::default();
        let feature = |name: &str, psi: f64| FeatureDrift {
            name: name.into(),
            psi,
            ..FeatureDrift::default()
        };
        let drift = DriftResponse {
            available: true,
            features: vec![
                feature("a", 0.05),
                feature("b", 0.5),
                feature("c", f64::NAN),
            ],
            score: Some(feature("score", 0.3)),
            ..DriftResponse::default()
        };
        let found = check(&healthy(10), Some(&drift), &t);
        assert_eq!(
            names(&found),
            [("feature_drift", "b"), ("feature_drift", "score")]
        );
        let unavailable = DriftResponse {
            available: false,
            ..drift
        };
        assert!(check(&healthy(10), Some(&unavailable), &t).is_empty());
    }

    #[test]
    fn rules_round_trip_their_names() {
        for rule in RULES {
            assert_eq!(Rule::from_name(rule.name()), Some(rule));
            assert!(!rule.summary("x", 0.5, 0.6).is_empty());
        }
        assert_eq!(Rule::from_name("nope"), None);
    }
}
