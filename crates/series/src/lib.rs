//! Time-series and drift statistics for Triad's model monitor: EWMA and
//! rolling-median smoothing, least-squares and Huber trend lines, PELT
//! change points, EWMA anomaly flags and feature-drift tests, each matched
//! against a named Python reference (pandas, numpy, statsmodels, ruptures,
//! scipy). Pure computation: no I/O, no async. `docs/monitoring.md` holds the
//! precise definitions.
//!
//! It is also the one home of the statistics other crates share: the
//! [`median`], the linear-interpolation [`quantile`], the EWMA anomaly band
//! ([`ewma_band`]) and [`ConfusionCounts`] with its precision, recall and
//! F1, undefined (`None`) on a zero denominator.

mod anomaly;
mod changepoint;
mod confusion;
mod drift;
mod error;
mod ks;
mod numeric;
mod profile;
mod smooth;
mod trend;

pub use anomaly::{
    Anomaly, DEFAULT_ANOMALY_K, MAD_TO_SIGMA, MEAN_AD_TO_SIGMA, ewma_anomalies, ewma_band,
};
pub use changepoint::{PELT_JUMP, PELT_MIN_SIZE, Segment, default_penalty, piecewise_constant};
pub use confusion::{ConfusionCounts, ExpectedCounts};
pub use drift::{
    DriftReport, KS_P_VALUE_THRESHOLD, KsMethod, KsTest, MAX_AUTO_EXACT_N,
    NORMALIZED_WASSERSTEIN_THRESHOLD, PSI_DRIFT_THRESHOLD, PSI_EPSILON, drift_report, ks_2samp,
    normalized_wasserstein, population_stability_index, reference_deciles, wasserstein_distance,
};
pub use error::{Result, SeriesError};
pub use numeric::{Lerp, median, quantile};
pub use profile::{
    CalibrationBin, Distribution, PROFILE_FILE, ReferenceProfile, SAMPLE_POINTS, calibrate,
};
pub use smooth::{ewma, ewma_alpha, rolling_median};
pub use trend::{
    HUBER_T, Line, MAD_NORMALIZATION, ROBUST_MAX_ITER, ROBUST_TOL, RobustFit, robust_fit,
    robust_trend, trend_line,
};
