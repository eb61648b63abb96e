//! The synthetic-data check of confidence-based performance estimation:
//! the synthetic data set (300 users) featurized and scored by the shipped
//! `budget_expense_matcher` version 1, its outcomes recorded on the days
//! the requests were made, then the labels, through the gRPC API of a real
//! monitor holding the version's reference profile. Before any label the
//! daily estimated precision and recall are there; once the labels are in,
//! they must track the realized ones.
//!
//! The error bounds: a day holds about 8 predicted positives, so even a
//! perfectly calibrated estimate differs from the day's realized precision
//! and recall by binomial noise alone. The test measures that noise floor
//! by simulation (labels drawn from the calibrated probabilities; about
//! 0.07 for both) and prints it next to the measured daily mean absolute
//! error; the bound, 0.1, is the floor plus room for the calibration
//! table's own error (ten bins fitted on 2 502 held-out rows, some with
//! 13 rows). Over the whole period (about 5 900 outcomes) the sampling
//! noise has a standard deviation under 0.01, so there the estimate must
//! be within 0.03.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use triad_features::{FeatureSchema, Featurizer};
use triad_proto::v1::{self, Bucket, DriftRequest, Label, MetricPoint, Outcome};
use triad_score::model::LoadedModel;
use triad_series::{PROFILE_FILE, ReferenceProfile, calibrate};
use triad_synth::{SynthConfig, generate};

use crate::support::rng::Rng;
use crate::support::{Ctx, DAY, labels, record};

on_both!(estimated_precision_and_recall_track_the_realized_ones_on_synthetic_data);

const MODEL: &str = "budget_expense_matcher";
const VERSION: &str = "1";
/// Bound on the daily mean absolute error (see the module docs).
const DAILY_MAE_BOUND: f64 = 0.1;
/// Bound on the error over the whole period.
const PERIOD_ERROR_BOUND: f64 = 0.03;

fn shipped_model() -> PathBuf {
    triad_test_support::shipped_models()
        .join(MODEL)
        .join(VERSION)
}

/// Everything scored: the outcomes, their labels, and per UTC day the
/// (prediction, calibrated probability) of each outcome.
struct Scored {
    outcomes: Vec<Outcome>,
    labels: Vec<Label>,
    by_day: BTreeMap<i64, Vec<(bool, f64)>>,
}

fn score_synthetic_data(profile: &ReferenceProfile) -> Scored {
    let schema = FeatureSchema::current();
    let model = LoadedModel::load(&shipped_model(), VERSION, schema).unwrap();
    let threshold = model.meta.threshold;
    let featurizer = Featurizer::default();
    let dataset = generate(&SynthConfig {
        users: 300,
        ..SynthConfig::default()
    });
    let mut scored = Scored {
        outcomes: Vec::new(),
        labels: Vec::new(),
        by_day: BTreeMap::new(),
    };
    let mut scores = Vec::new();
    for synth in &dataset.requests {
        let matrix = featurizer.featurize(&synth.request);
        if matrix.n_rows == 0 {
            continue;
        }
        model
            .predict_matrix(&matrix.values, matrix.n_rows, matrix.n_cols(), &mut scores)
            .unwrap();
        let at = synth.requested_at.and_utc().timestamp_millis();
        let truth: HashMap<(&str, &str), bool> = synth
            .labels
            .iter()
            .map(|l| ((l.budget_id.as_str(), l.itemization_id.as_str()), l.matched))
            .collect();
        for (r, &score) in scores.iter().enumerate() {
            let (budget_id, itemization_id) = matrix.key(r);
            let matched = score >= threshold;
            scored.outcomes.push(Outcome {
                outcome_id: format!("{}-{budget_id}-{itemization_id}", synth.user_id),
                request_id: synth.user_id.clone(),
                scored_at_ms: at,
                model: MODEL.into(),
                version: VERSION.into(),
                schema_hash: schema.hash.clone(),
                budget_id: budget_id.into(),
                itemization_id: itemization_id.into(),
                score,
                threshold,
                matched,
                latency_ms: 1.0,
                shadow: false,
                budget: None,
                line_item: None,
                features: matrix.row(r).to_vec(),
                correlation_id: String::new(),
                not_scored: false,
                explanation: None,
            });
            scored
                .by_day
                .entry(at.div_euclid(DAY) * DAY)
                .or_default()
                .push((matched, calibrate(&profile.calibration, f64::from(score))));
            let label = truth[&(budget_id, itemization_id)];
            scored.labels.push(Label {
                model: MODEL.into(),
                budget_id: budget_id.into(),
                itemization_id: itemization_id.into(),
                request_id: String::new(),
                label,
                // Labels come days late.
                labelled_at_ms: at + 3 * DAY,
                source: "synthetic".into(),
            });
        }
    }
    scored
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

/// What a perfectly calibrated estimate would still get wrong, from
/// labels drawn from the calibrated probabilities 200 times: the mean
/// absolute error per day and the standard deviation of the whole period's
/// error, each `[precision, recall]`.
fn noise_floor(by_day: &BTreeMap<i64, Vec<(bool, f64)>>) -> ([f64; 2], [f64; 2]) {
    const RUNS: usize = 200;
    let mut rng = Rng(2026);
    let mut sums = [0.0; 2];
    let mut counts = [0usize; 2];
    let mut period_squares = [0.0; 2];
    for _ in 0..RUNS {
        let mut period = [0.0; 6];
        for day in by_day.values() {
            let (mut etp, mut efp, mut efn) = (0.0, 0.0, 0.0);
            let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
            for &(matched, p) in day {
                let label = rng.uniform() < p;
                match (matched, label) {
                    (true, true) => tp += 1.0,
                    (true, false) => fp += 1.0,
                    (false, true) => fn_ += 1.0,
                    (false, false) => {}
                }
                if matched {
                    etp += p;
                    efp += 1.0 - p;
                } else {
                    efn += p;
                }
            }
            let pairs = [
                (ratio(etp, etp + efp), ratio(tp, tp + fp)),
                (ratio(etp, etp + efn), ratio(tp, tp + fn_)),
            ];
            for (k, pair) in pairs.into_iter().enumerate() {
                if let (Some(estimated), Some(realized)) = pair {
                    sums[k] += (estimated - realized).abs();
                    counts[k] += 1;
                }
            }
            for (total, value) in period.iter_mut().zip([etp, efp, efn, tp, fp, fn_]) {
                *total += value;
            }
        }
        let [etp, efp, efn, tp, fp, fn_] = period;
        period_squares[0] += (etp / (etp + efp) - tp / (tp + fp)).powi(2);
        period_squares[1] += (etp / (etp + efn) - tp / (tp + fn_)).powi(2);
    }
    (
        [sums[0] / counts[0] as f64, sums[1] / counts[1] as f64],
        period_squares.map(|s| (s / RUNS as f64).sqrt()),
    )
}

async fn points(ctx: &Ctx, bucket: Bucket) -> Vec<MetricPoint> {
    ctx.client()
        .await
        .query_metrics(v1::QueryMetricsRequest {
            model: MODEL.into(),
            bucket: bucket.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .points
}

async fn estimated_precision_and_recall_track_the_realized_ones_on_synthetic_data(ctx: Ctx) {
    let profile_path = shipped_model().join(PROFILE_FILE);
    let profile: ReferenceProfile =
        serde_json::from_str(&std::fs::read_to_string(&profile_path).unwrap()).unwrap();
    let dir = ctx.models_dir.join(MODEL).join(VERSION);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&profile_path, dir.join(PROFILE_FILE)).unwrap();

    let scored = score_synthetic_data(&profile);
    let mut client = ctx.client().await;
    for chunk in scored.outcomes.chunks(1_000) {
        assert_eq!(
            record(&mut client, chunk.to_vec()).await.stored,
            chunk.len() as u64
        );
    }

    // Before any label: estimates on every day with a predicted positive,
    // nothing realized.
    let before = points(&ctx, Bucket::Day).await;
    assert!(
        before
            .iter()
            .all(|p| p.labelled == 0 && p.precision.is_none())
    );
    let estimated_days = before
        .iter()
        .filter(|p| p.estimated_precision.is_some())
        .count();
    let positive_days = before.iter().filter(|p| p.predicted_positive > 0).count();
    assert_eq!(estimated_days, positive_days);
    assert!(positive_days > 30, "{positive_days} days");

    // Drift: the synthetic traffic comes from the distributions the
    // profile was written from.
    let drift = client
        .drift(DriftRequest {
            model: MODEL.into(),
            max_rows: 100_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(drift.available, "{}", drift.unavailable_reason);
    assert_eq!(drift.live_rows, scored.outcomes.len() as u64);
    let flagged: Vec<String> = drift
        .features
        .iter()
        .chain(drift.score.as_ref())
        .filter(|f| f.drifted)
        .map(|f| format!("{} ({})", f.name, f.reasons.join("; ")))
        .collect();
    println!(
        "synthetic drift: {} rows, flagged: {flagged:?}",
        drift.live_rows
    );
    assert!(flagged.is_empty(), "{flagged:?}");

    for chunk in scored.labels.chunks(1_000) {
        assert_eq!(
            labels(&mut client, chunk.to_vec()).await.stored,
            chunk.len() as u64
        );
    }
    let after = points(&ctx, Bucket::Day).await;
    assert_eq!(before.len(), after.len());
    let (mut errors, mut n) = ([0.0; 2], [0usize; 2]);
    for (b, a) in before.iter().zip(&after) {
        // Labels never move an estimate: the expected cells are not
        // touched. Equal up to the last bits only, because a day's value
        // sums its hourly rows in the database, and PostgreSQL sums them
        // in storage order, which updating a row (a label) changes.
        let same = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-12 * x.abs().max(1.0),
            (x, y) => x == y,
        };
        assert!(
            same(b.estimated_precision, a.estimated_precision),
            "{:?} {:?}",
            b.estimated_precision,
            a.estimated_precision
        );
        assert!(
            same(b.estimated_recall, a.estimated_recall),
            "{:?} {:?}",
            b.estimated_recall,
            a.estimated_recall
        );
        assert_eq!(a.labelled, a.count);
        let pairs = [
            (a.estimated_precision, a.precision),
            (a.estimated_recall, a.recall),
        ];
        for (k, pair) in pairs.into_iter().enumerate() {
            if let (Some(estimated), Some(realized)) = pair {
                errors[k] += (estimated - realized).abs();
                n[k] += 1;
            }
        }
    }
    // The whole period, from weekly points (each with predicted
    // positives): E[TP] = estimated precision × predicted positives and
    // E[TP] + E[FN] = E[TP] / estimated recall, summed.
    let (mut etp, mut epp, mut epos) = (0.0, 0.0, 0.0);
    let (mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64);
    for week in points(&ctx, Bucket::Week).await {
        let (Some(precision), Some(recall)) = (week.estimated_precision, week.estimated_recall)
        else {
            panic!("a week without estimates: {week:?}");
        };
        let week_etp = precision * week.predicted_positive as f64;
        etp += week_etp;
        epp += week.predicted_positive as f64;
        epos += week_etp / recall;
        tp += week.true_positives;
        fp += week.false_positives;
        fn_ += week.false_negatives;
    }
    let mae = [errors[0] / n[0] as f64, errors[1] / n[1] as f64];
    let (floor, period_sd) = noise_floor(&scored.by_day);
    let predicted_per_day = after.iter().map(|p| p.predicted_positive).sum::<u64>() as f64
        / after.iter().filter(|p| p.count > 0).count() as f64;
    let period_estimated = [etp / epp, etp / epos];
    let period_realized = [tp as f64 / (tp + fp) as f64, tp as f64 / (tp + fn_) as f64];
    println!(
        "synthetic CBPE ({kind:?}): {rows} outcomes over {days} days, {predicted_per_day:.1} \
         predicted positives per day with outcomes; daily MAE precision {:.4} (over {} days), \
         recall {:.4} (over {} days); noise floor of a calibrated estimate {:.4} / {:.4}; \
         whole period estimated {:.4} / {:.4}, realized {:.4} / {:.4} (noise sd {:.4} / {:.4})",
        mae[0],
        n[0],
        mae[1],
        n[1],
        floor[0],
        floor[1],
        period_estimated[0],
        period_estimated[1],
        period_realized[0],
        period_realized[1],
        period_sd[0],
        period_sd[1],
        kind = ctx.kind,
        rows = scored.outcomes.len(),
        days = after.len(),
    );
    for k in 0..2 {
        assert!(
            mae[k] < DAILY_MAE_BOUND,
            "daily MAE {} >= {DAILY_MAE_BOUND}",
            mae[k]
        );
        assert!(
            (period_estimated[k] - period_realized[k]).abs() < PERIOD_ERROR_BOUND,
            "period {} vs {}",
            period_estimated[k],
            period_realized[k]
        );
    }
}
