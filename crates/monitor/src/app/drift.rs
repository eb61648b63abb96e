//! `Drift`: each feature of a model version's recent outcomes, and
//! its scores, against the reference profile written beside the model,
//! with `triad_series::drift_report` (population stability index,
//! two-sample Kolmogorov–Smirnov, Wasserstein-1) and its documented
//! thresholds. Works before any label arrives.
//!
//! Missing values (NaN) are left out of the tests and reported as missing
//! rates next to the reference's. A version without a profile answers
//! `available = false` with the reason, never an error.

use triad_proto::v1::{DriftRequest, DriftResponse, FeatureDrift};
use triad_series::{
    Distribution, KS_P_VALUE_THRESHOLD, NORMALIZED_WASSERSTEIN_THRESHOLD, PSI_DRIFT_THRESHOLD,
    ReferenceProfile, drift_report,
};

use triad_server::quote;

use super::error::{AppError, RequestError};
use super::{Monitor, validate};
use crate::buckets::Range;
use crate::store::LiveRow;

/// Outcomes compared when the request says 0.
pub(crate) const DEFAULT_MAX_ROWS: u32 = 5_000;
/// Most outcomes one request may compare.
pub(crate) const MAX_ROWS: u32 = 100_000;

/// A validated `Drift` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DriftQuery {
    pub model: String,
    /// `None`: the busiest version in the range.
    pub version: Option<String>,
    pub range: Range,
    pub max_rows: usize,
}

impl DriftQuery {
    /// Checks the request: a model, `from_ms <= to_ms` (0 = unbounded),
    /// `max_rows <= MAX_ROWS` (0 = [`DEFAULT_MAX_ROWS`]).
    pub(crate) fn from_wire(request: &DriftRequest) -> Result<Self, RequestError> {
        validate::query_id("model", &request.model, true)?;
        validate::query_id("version", &request.version, false)?;
        let range = validate::range(request.from_ms, request.to_ms)?;
        let max_rows = match request.max_rows {
            0 => DEFAULT_MAX_ROWS,
            n if n <= MAX_ROWS => n,
            got => {
                return Err(RequestError::MaxRows { got, max: MAX_ROWS });
            }
        };
        Ok(Self {
            model: request.model.clone(),
            version: (!request.version.is_empty()).then(|| request.version.clone()),
            range,
            max_rows: max_rows as usize,
        })
    }
}

impl Monitor {
    /// The drift of a model version's recent outcomes from its reference
    /// profile (`Drift`).
    pub async fn drift(&self, request: &DriftRequest) -> Result<DriftResponse, AppError> {
        let store = self.store();
        let query = DriftQuery::from_wire(request)?;
        let version = match &query.version {
            Some(version) => version.clone(),
            None => match store.busiest_version(&query.model, &query.range).await? {
                Some(version) => version,
                None => {
                    return Ok(unavailable(
                        String::new(),
                        0,
                        format!("no outcome of model {} in the range", quote(&query.model)),
                    ));
                }
            },
        };
        let rows = store
            .live_rows(&query.model, &version, &query.range, query.max_rows)
            .await?;
        if rows.is_empty() {
            let why = format!(
                "no outcome of model {} version {} in the range",
                quote(&query.model),
                quote(&version)
            );
            return Ok(unavailable(version, 0, why));
        }
        let lookup = self.profiles().get(&query.model, &version).await;
        let Some(profile) = lookup.profile().cloned() else {
            let why = lookup.why_not(&query.model, &version).unwrap_or_default();
            return Ok(unavailable(
                version,
                rows.len(),
                format!("{why}: drift is not available"),
            ));
        };
        let (rows, excluded): (Vec<LiveRow>, Vec<LiveRow>) = rows
            .into_iter()
            .partition(|row| row.schema_hash == profile.schema_hash);
        if rows.is_empty() {
            let mut response = unavailable(
                version,
                0,
                format!(
                    "every outcome in the range was scored on another feature schema than the profile's ({})",
                    profile.schema_hash
                ),
            );
            response.excluded_rows = excluded.len() as u64;
            return Ok(response);
        }
        // Exact KS p-values over thousands of values take a while: keep them
        // off the async workers.
        let live_rows = rows.len();
        let (features, score) = tokio::task::spawn_blocking(move || compare(&profile, &rows))
            .await
            .map_err(|error| AppError::Computation(error.to_string()))?;
        Ok(DriftResponse {
            version,
            live_rows: live_rows as u64,
            features,
            score: Some(score),
            available: true,
            unavailable_reason: String::new(),
            excluded_rows: excluded.len() as u64,
        })
    }
}

fn unavailable(version: String, live_rows: usize, reason: String) -> DriftResponse {
    DriftResponse {
        version,
        live_rows: live_rows as u64,
        available: false,
        unavailable_reason: reason,
        ..DriftResponse::default()
    }
}

/// Every feature of `profile` (in its order) and the score, against the
/// live `rows`. A row shorter than the profile's schema counts as missing
/// the features it lacks.
pub(crate) fn compare(
    profile: &ReferenceProfile,
    rows: &[LiveRow],
) -> (Vec<FeatureDrift>, FeatureDrift) {
    // One job per variable (each feature, then the score), independent of
    // each other: spread over the machine's cores, each thread taking every
    // `threads`-th job, and put back in order. The answers are those of
    // one thread, only sooner (the exact KS p-values dominate: a few tens
    // of milliseconds per variable at 5 000 rows).
    let variables = profile.features.len() + 1;
    let one = |job: usize| match profile.features.get(job) {
        Some((name, reference)) => {
            let live: Vec<f64> = rows
                .iter()
                .map(|row| row.features.get(job).map_or(f64::NAN, |&v| f64::from(v)))
                .collect();
            feature_drift(name, reference, &live)
        }
        None => {
            let scores: Vec<f64> = rows.iter().map(|row| row.score).collect();
            feature_drift("score", &profile.score, &scores)
        }
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, variables.max(1));
    let mut results: Vec<Option<FeatureDrift>> = vec![None; variables];
    std::thread::scope(|scope| {
        let workers: Vec<_> = (1..threads)
            .map(|first| {
                let one = &one;
                scope.spawn(move || {
                    (first..variables)
                        .step_by(threads)
                        .map(|job| (job, one(job)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for job in (0..variables).step_by(threads) {
            results[job] = Some(one(job));
        }
        for worker in workers {
            // A panicking job (none is expected) is computed again here,
            // so it panics on this thread as it would have alone.
            if let Ok(done) = worker.join() {
                for (job, drift) in done {
                    results[job] = Some(drift);
                }
            }
        }
    });
    let mut results: Vec<FeatureDrift> = results
        .into_iter()
        .enumerate()
        .map(|(job, drift)| drift.unwrap_or_else(|| one(job)))
        .collect();
    let score = results.pop().unwrap_or_else(|| one(variables - 1));
    (results, score)
}

fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// One variable's live values (NaN and infinities = missing) against its
/// reference distribution's sample: the statistics of
/// [`triad_series::drift_report`] over the finite values, the verdict of
/// its three thresholds and one reason per threshold crossed. When either
/// side has no finite value the statistics are NaN and nothing is flagged.
pub(crate) fn feature_drift(name: &str, reference: &Distribution, live: &[f64]) -> FeatureDrift {
    let finite: Vec<f64> = live.iter().copied().filter(|v| v.is_finite()).collect();
    let live_count = live.len() as u64;
    let mut drift = FeatureDrift {
        name: name.to_owned(),
        reference_count: reference.count,
        live_count,
        live_missing_rate: rate(live_count - finite.len() as u64, live_count),
        reference_missing_rate: rate(reference.missing, reference.count),
        psi: f64::NAN,
        ks_statistic: f64::NAN,
        ks_p_value: f64::NAN,
        wasserstein: f64::NAN,
        normalized_wasserstein: f64::NAN,
        drifted: false,
        reasons: Vec::new(),
    };
    let Ok(report) = drift_report(&reference.sample, &finite) else {
        return drift;
    };
    drift.psi = report.psi;
    drift.ks_statistic = report.ks.statistic;
    drift.ks_p_value = report.ks.p_value;
    drift.wasserstein = report.wasserstein;
    drift.normalized_wasserstein = report.normalized_wasserstein;
    if report.psi_drifted() {
        drift
            .reasons
            .push(format!("psi {:.3} > {PSI_DRIFT_THRESHOLD}", report.psi));
    }
    if report.ks_drifted() {
        drift.reasons.push(format!(
            "ks p-value {:.3e} < {KS_P_VALUE_THRESHOLD} (statistic {:.3})",
            report.ks.p_value, report.ks.statistic
        ));
    }
    if report.wasserstein_drifted() {
        drift.reasons.push(format!(
            "normalized wasserstein {:.3} > {NORMALIZED_WASSERSTEIN_THRESHOLD}",
            report.normalized_wasserstein
        ));
    }
    drift.drifted = report.drifted();
    drift
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(model: &str, from_ms: i64, to_ms: i64, max_rows: u32) -> DriftRequest {
        DriftRequest {
            model: model.into(),
            from_ms,
            to_ms,
            max_rows,
            ..DriftRequest::default()
        }
    }

    #[test]
    fn requests_are_validated() {
        let q = DriftQuery::from_wire(&request("m", 0, 0, 0)).unwrap();
        assert_eq!((q.version, q.max_rows), (None, 5_000));
        assert_eq!(
            DriftQuery::from_wire(&request("m", 1, 2, MAX_ROWS))
                .unwrap()
                .max_rows,
            100_000
        );
        assert!(matches!(
            DriftQuery::from_wire(&request("", 0, 0, 0)),
            Err(RequestError::Empty { field: "model" })
        ));
        assert!(matches!(
            DriftQuery::from_wire(&request("m", 5, 4, 0)),
            Err(RequestError::InvertedRange { .. })
        ));
        assert!(matches!(
            DriftQuery::from_wire(&request("m", 0, 0, MAX_ROWS + 1)),
            Err(RequestError::MaxRows { got: 100_001, .. })
        ));
    }

    /// `n` evenly spread quantiles of the uniform distribution on
    /// `[low, low + 1)`.
    fn uniform(low: f64, n: usize) -> Vec<f64> {
        (0..n).map(|i| low + (i as f64 + 0.5) / n as f64).collect()
    }

    #[test]
    fn a_same_distribution_passes_and_a_shift_is_flagged_with_reasons() {
        let reference = Distribution::of(uniform(0.0, 1_000));
        let same = feature_drift("x", &reference, &uniform(0.0, 400));
        assert!(!same.drifted, "{same:?}");
        assert!(same.reasons.is_empty());
        assert!(same.psi < 0.01 && same.ks_p_value > 0.5, "{same:?}");
        assert_eq!(same.live_missing_rate, 0.0);

        // A quarter of the range: PSI, KS and Wasserstein all flag it.
        let shifted = feature_drift("x", &reference, &uniform(0.25, 400));
        assert!(shifted.drifted);
        assert_eq!(shifted.reasons.len(), 3, "{:?}", shifted.reasons);
        assert!(shifted.reasons[0].starts_with("psi "));
        assert!((shifted.wasserstein - 0.25).abs() < 1e-9);
        let std = (1.0_f64 / 12.0).sqrt();
        assert!((shifted.normalized_wasserstein - 0.25 / std).abs() < 1e-3);
        // The grids' steps (1/1 000, 1/400) blur D by at most a step.
        assert!(
            (shifted.ks_statistic - 0.25).abs() < 3e-3,
            "{}",
            shifted.ks_statistic
        );
    }

    #[test]
    fn missing_values_are_left_out_and_reported() {
        let reference = Distribution::of(uniform(0.0, 100).into_iter().chain([f64::NAN; 25]));
        let mut live = uniform(0.0, 300);
        live.extend([f64::NAN; 100]);
        let drift = feature_drift("x", &reference, &live);
        assert_eq!((drift.reference_count, drift.live_count), (125, 400));
        assert_eq!(drift.reference_missing_rate, 0.2);
        assert_eq!(drift.live_missing_rate, 0.25);
        assert!(!drift.drifted, "{drift:?}");

        let all_missing = feature_drift("x", &reference, &[f64::NAN, f64::INFINITY]);
        assert_eq!(all_missing.live_missing_rate, 1.0);
        assert!(all_missing.psi.is_nan() && !all_missing.drifted);
    }

    #[test]
    fn short_rows_count_as_missing_and_the_score_is_compared() {
        let profile = ReferenceProfile {
            model: "m".into(),
            version: "1".into(),
            schema_hash: "h".into(),
            rows: 100,
            features: vec![
                ("a".into(), Distribution::of(uniform(0.0, 100))),
                ("b".into(), Distribution::of(uniform(0.0, 100))),
            ],
            score: Distribution::of(uniform(0.0, 100)),
            calibration: Vec::new(),
        };
        let rows: Vec<LiveRow> = uniform(0.0, 50)
            .into_iter()
            .map(|v| LiveRow {
                features: vec![v as f32],
                score: v + 0.5,
                schema_hash: "h".into(),
            })
            .collect();
        let (features, score) = compare(&profile, &rows);
        assert_eq!(features.len(), 2);
        assert!(!features[0].drifted);
        assert_eq!(features[1].live_missing_rate, 1.0);
        assert_eq!(score.name, "score");
        assert!(score.drifted);
    }
}
