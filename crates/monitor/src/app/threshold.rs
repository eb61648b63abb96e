//! `QueryThreshold`: precision, recall and F1 of a model at any threshold,
//! and its precision-recall curve, over a window of stored scores and
//! labels (docs/monitoring.md, "Threshold trade-offs").
//!
//! Two paths share one computation ([`Trade`]) over outcomes grouped by
//! score and label:
//! - the histogram (default): the `score_bins` counts of the hours
//!   overlapping the window, each bin standing at its lower edge (scores
//!   rounded down to a multiple of 0.001, as `f32`): at most 1 001
//!   groups, whatever the number of outcomes;
//! - the exact path (`exact = true`): the raw scores of the window's
//!   outcomes (to the millisecond) with their current labels, for at most
//!   [`MAX_EXACT_OUTCOMES`].
//!
//! Conventions are scikit-learn's `precision_recall_curve` (tested against
//! a pinned reference): predicted positive means `score >= threshold`,
//! compared as `f32` as the scorer compares; the curve's thresholds are the
//! distinct scores of the labelled outcomes, increasing, and precision and
//! recall end with the point (1, 0).

use triad_proto::v1::{
    PrecisionRecallCurve, QueryThresholdRequest, QueryThresholdResponse, ThresholdInUse,
    ThresholdPoint,
};

use super::error::{AppError, RequestError};
use super::{Monitor, validate};
use crate::store::{
    HistogramFilter, SCORE_BIN_RESOLUTION, ScoreCounts, score_bin_edge, score_bin_of,
};

/// Most thresholds one request may evaluate.
pub(crate) const MAX_THRESHOLDS: usize = 100;
/// Most outcomes the exact path reads (counted over the hours overlapping
/// the window); its curve has at most as many points.
pub(crate) const MAX_EXACT_OUTCOMES: u64 = 100_000;
/// Most thresholds in use listed.
pub(crate) const THRESHOLDS_LISTED: usize = 20;

/// A validated `QueryThreshold` request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ThresholdQuery {
    pub filter: HistogramFilter,
    /// As the scorer compares them.
    pub thresholds: Vec<f32>,
    pub exact: bool,
}

/// Checks one threshold: finite, in `[0, 1]`; as an `f32`.
pub(crate) fn threshold(got: f64) -> Result<f32, RequestError> {
    if got.is_finite() && (0.0..=1.0).contains(&got) {
        Ok(got as f32)
    } else {
        Err(RequestError::InvalidThreshold { got })
    }
}

impl ThresholdQuery {
    /// Checks the request: a model, `from_ms <= to_ms` (0 = unbounded), at
    /// most [`MAX_THRESHOLDS`] thresholds, each finite in `[0, 1]`.
    pub(crate) fn from_wire(request: &QueryThresholdRequest) -> Result<Self, RequestError> {
        validate::query_id("model", &request.model, true)?;
        validate::query_id("version", &request.version, false)?;
        let range = validate::range(request.from_ms, request.to_ms)?;
        if request.thresholds.len() > MAX_THRESHOLDS {
            return Err(RequestError::TooManyThresholds {
                got: request.thresholds.len(),
                max: MAX_THRESHOLDS,
            });
        }
        let thresholds = request
            .thresholds
            .iter()
            .map(|t| threshold(*t))
            .collect::<Result<Vec<f32>, _>>()?;
        Ok(Self {
            filter: HistogramFilter {
                model: request.model.clone(),
                version: (!request.version.is_empty()).then(|| request.version.clone()),
                include_shadow: request.include_shadow,
                range,
            },
            thresholds,
            exact: request.exact,
        })
    }
}

/// Outcomes grouped by score, with running totals from the top: what
/// every answer of `QueryThreshold` is computed from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Trade {
    /// Increasing scores (histogram: bin lower edges), each with outcomes.
    groups: Vec<ScoreCounts>,
    /// `above[i]`: the sums of `groups[i..]` (one more, all zero, at the
    /// end).
    above: Vec<ScoreCounts>,
    /// Groups are histogram bins, not exact scores.
    binned: bool,
}

impl Trade {
    /// The trade-offs of `groups` (increasing, distinct scores).
    pub(crate) fn new(groups: Vec<ScoreCounts>, binned: bool) -> Self {
        let mut above = vec![ScoreCounts::default(); groups.len() + 1];
        for i in (0..groups.len()).rev() {
            let (g, next) = (groups[i], above[i + 1]);
            above[i] = ScoreCounts {
                score: g.score,
                positive: next.positive + g.positive,
                negative: next.negative + g.negative,
                unlabelled: next.unlabelled + g.unlabelled,
            };
        }
        Self {
            groups,
            above,
            binned,
        }
    }

    /// The sums over every group.
    pub(crate) fn totals(&self) -> ScoreCounts {
        self.above[0]
    }

    /// The quality at `threshold`: the groups whose score is at or above
    /// it predicted positive.
    pub(crate) fn at(&self, threshold: f32) -> ThresholdPoint {
        let first = self.groups.partition_point(|g| g.score < threshold);
        let mut point = self.point_from(first, threshold);
        if self.binned && first > 0 {
            // The bin holding the threshold, when it starts below it.
            let straddling = self.groups[first - 1];
            if straddling.score == score_bin_edge(score_bin_of(threshold))
                && straddling.score < threshold
            {
                point.uncertain = straddling.positive + straddling.negative + straddling.unlabelled;
            }
        }
        point
    }

    /// The point with `groups[first..]` predicted positive.
    fn point_from(&self, first: usize, threshold: f32) -> ThresholdPoint {
        let all = self.totals();
        let up = self.above[first];
        let (tp, fp) = (up.positive, up.negative);
        let fn_ = all.positive - tp;
        let defined = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
        let precision = defined(tp, tp + fp);
        let recall = defined(tp, all.positive);
        ThresholdPoint {
            threshold: f64::from(threshold),
            predicted_positive: up.positive + up.negative + up.unlabelled,
            true_positives: tp,
            false_positives: fp,
            false_negatives: fn_,
            precision,
            recall,
            f1: (precision.is_some() && recall.is_some())
                .then(|| (2 * tp) as f64 / (2 * tp + fp + fn_) as f64),
            uncertain: 0,
        }
    }

    /// Indices of the groups holding labelled outcomes: the curve's
    /// thresholds.
    fn labelled(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.groups.len()).filter(|&i| self.groups[i].positive + self.groups[i].negative > 0)
    }

    /// The precision-recall curve, as scikit-learn's
    /// `precision_recall_curve` returns it; empty with no labelled outcome.
    pub(crate) fn curve(&self) -> PrecisionRecallCurve {
        let mut curve = PrecisionRecallCurve::default();
        let positives = self.totals().positive;
        for i in self.labelled() {
            let up = self.above[i];
            curve.thresholds.push(f64::from(self.groups[i].score));
            curve
                .precision
                .push(up.positive as f64 / (up.positive + up.negative) as f64);
            // scikit-learn: recall is 1 everywhere when nothing is
            // labelled positive.
            curve.recall.push(if positives == 0 {
                1.0
            } else {
                up.positive as f64 / positives as f64
            });
            curve
                .predicted_positive
                .push(up.positive + up.negative + up.unlabelled);
        }
        if !curve.thresholds.is_empty() {
            curve.precision.push(1.0);
            curve.recall.push(0.0);
        }
        curve
    }

    /// The curve's threshold with the highest F1, the highest one on a tie;
    /// `None` when nothing is labelled positive.
    pub(crate) fn best_f1(&self) -> Option<ThresholdPoint> {
        if self.totals().positive == 0 {
            return None;
        }
        let mut best: Option<ThresholdPoint> = None;
        for i in self.labelled() {
            let point = self.point_from(i, self.groups[i].score);
            let (Some(f1), best_f1) = (point.f1, best.as_ref().and_then(|b| b.f1)) else {
                continue;
            };
            if best_f1.is_none_or(|b| f1 >= b) {
                best = Some(point);
            }
        }
        best
    }
}

impl Monitor {
    /// Precision, recall and F1 at any threshold, and the precision-recall
    /// curve (`QueryThreshold`).
    pub async fn query_threshold(
        &self,
        request: &QueryThresholdRequest,
    ) -> Result<QueryThresholdResponse, AppError> {
        let query = ThresholdQuery::from_wire(request)?;
        self.threshold_trade_offs(&query).await
    }

    /// The answer to a validated `QueryThreshold`.
    pub(crate) async fn threshold_trade_offs(
        &self,
        query: &ThresholdQuery,
    ) -> Result<QueryThresholdResponse, AppError> {
        let store = self.store();
        let in_use = store
            .thresholds_in_use(&query.filter, THRESHOLDS_LISTED)
            .await?;
        let trade = if query.exact {
            let hours = store.outcomes_in_hours(&query.filter).await?;
            let too_many = RequestError::TooManyExactOutcomes {
                outcomes: hours,
                max: MAX_EXACT_OUTCOMES,
            };
            if hours > MAX_EXACT_OUTCOMES {
                return Err(too_many.into());
            }
            let Some(groups) = store
                .threshold_scores(&query.filter, MAX_EXACT_OUTCOMES as usize)
                .await?
            else {
                return Err(too_many.into());
            };
            Trade::new(groups, false)
        } else {
            Trade::new(store.binned_scores(&query.filter).await?, true)
        };
        let totals = trade.totals();
        let current_threshold = in_use.first().map(|u| u.threshold);
        Ok(QueryThresholdResponse {
            outcomes: totals.positive + totals.negative + totals.unlabelled,
            labelled_positive: totals.positive,
            labelled_negative: totals.negative,
            unlabelled: totals.unlabelled,
            exact: query.exact,
            resolution: if query.exact {
                0.0
            } else {
                SCORE_BIN_RESOLUTION
            },
            curve: Some(trade.curve()),
            current_threshold: current_threshold.map(f64::from),
            current: current_threshold.map(|t| trade.at(t)),
            best_f1: trade.best_f1(),
            requested: query.thresholds.iter().map(|t| trade.at(*t)).collect(),
            thresholds_in_use: in_use
                .iter()
                .map(|u| ThresholdInUse {
                    threshold: f64::from(u.threshold),
                    outcomes: u.outcomes,
                    last_hour_ms: u.last_hour_ms,
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(score: f32, positive: u64, negative: u64, unlabelled: u64) -> ScoreCounts {
        ScoreCounts {
            score,
            positive,
            negative,
            unlabelled,
        }
    }

    #[test]
    fn points_count_at_and_above_the_threshold() {
        let trade = Trade::new(
            vec![
                group(0.1, 0, 2, 1),
                group(0.4, 1, 1, 0),
                group(0.8, 2, 0, 3),
            ],
            false,
        );
        let p = trade.at(0.4);
        assert_eq!(
            (
                p.predicted_positive,
                p.true_positives,
                p.false_positives,
                p.false_negatives
            ),
            (7, 3, 1, 0)
        );
        assert_eq!(p.precision, Some(0.75));
        assert_eq!(p.recall, Some(1.0));
        assert_eq!(p.f1, Some(6.0 / 7.0));
        let none = trade.at(0.9);
        assert_eq!((none.predicted_positive, none.precision), (0, None));
        assert_eq!(none.recall, Some(0.0));
        assert_eq!(none.f1, None);

        let curve = trade.curve();
        assert_eq!(curve.thresholds, [0.1_f32, 0.4, 0.8].map(f64::from));
        assert_eq!(curve.precision, [3.0 / 6.0, 3.0 / 4.0, 1.0, 1.0]);
        assert_eq!(curve.recall, [1.0, 1.0, 2.0 / 3.0, 0.0]);
        assert_eq!(curve.predicted_positive, [10, 7, 5]);
        // F1 6/7 at 0.4, 4/5 at 0.8, 1/2 at 0.1.
        let best = trade.best_f1().unwrap();
        assert_eq!(best.threshold, f64::from(0.4_f32));
        // On a tie, the higher threshold.
        let tie = Trade::new(vec![group(0.2, 1, 2, 0), group(0.6, 1, 0, 0)], false);
        assert_eq!(tie.at(0.2).f1, tie.at(0.6).f1);
        assert_eq!(tie.best_f1().unwrap().threshold, f64::from(0.6_f32));
    }

    #[test]
    fn a_threshold_inside_a_bin_reports_the_bin_as_uncertain() {
        let trade = Trade::new(
            vec![group(score_bin_edge(400), 1, 2, 3), group(1.0, 1, 0, 0)],
            true,
        );
        assert_eq!(trade.at(0.4).uncertain, 0);
        let inside = trade.at(0.4005);
        assert_eq!((inside.uncertain, inside.predicted_positive), (6, 1));
        assert_eq!(trade.at(0.5).uncertain, 0);
    }

    #[test]
    fn no_label_no_curve_and_no_positive_no_best() {
        let trade = Trade::new(vec![group(0.3, 0, 0, 4)], true);
        assert_eq!(trade.curve(), PrecisionRecallCurve::default());
        assert_eq!(trade.best_f1(), None);
        let negatives = Trade::new(vec![group(0.3, 0, 2, 0), group(0.6, 0, 1, 0)], false);
        assert_eq!(negatives.curve().recall, [1.0, 1.0, 0.0]);
        assert_eq!(negatives.best_f1(), None);
        let empty = Trade::new(Vec::new(), true);
        assert_eq!(empty.at(0.5).predicted_positive, 0);
    }

    #[test]
    fn requests_are_bounded() {
        let ok = QueryThresholdRequest {
            model: "m".into(),
            thresholds: vec![0.0, 0.4, 1.0],
            ..QueryThresholdRequest::default()
        };
        assert_eq!(
            ThresholdQuery::from_wire(&ok).unwrap().thresholds,
            [0.0, 0.4, 1.0]
        );
        for bad in [f64::NAN, f64::INFINITY, -0.1, 1.5] {
            let request = QueryThresholdRequest {
                thresholds: vec![bad],
                ..ok.clone()
            };
            assert!(
                matches!(
                    ThresholdQuery::from_wire(&request),
                    Err(RequestError::InvalidThreshold { .. })
                ),
                "{bad}"
            );
        }
        let many = QueryThresholdRequest {
            thresholds: vec![0.5; MAX_THRESHOLDS + 1],
            ..ok.clone()
        };
        assert!(ThresholdQuery::from_wire(&many).is_err());
        let no_model = QueryThresholdRequest {
            model: String::new(),
            ..ok
        };
        assert!(ThresholdQuery::from_wire(&no_model).is_err());
    }
}
