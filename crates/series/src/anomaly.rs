//! EWMA anomaly flags: points far from the average of the points before
//! them, measured in robust standard deviations; and the band that rule
//! draws around the average.

use crate::error::{Result, SeriesError};
use crate::numeric::median;
use crate::smooth::ewma;

/// Default threshold `k`, in robust standard deviations.
pub const DEFAULT_ANOMALY_K: f64 = 3.0;
/// Converts a median absolute deviation to a normal standard deviation.
pub const MAD_TO_SIGMA: f64 = 1.4826;
/// Converts a mean absolute deviation to a normal standard deviation
/// (`sqrt(pi / 2)`); used when the MAD is 0.
pub const MEAN_AD_TO_SIGMA: f64 = 1.253_314_137_315_500_3;

/// A flagged point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anomaly {
    /// Position in the input series.
    pub index: usize,
    /// The observed value `x_t`.
    pub value: f64,
    /// The EWMA before the point, `ewma_{t-1}`.
    pub expected: f64,
    /// `x_t - ewma_{t-1}`.
    pub residual: f64,
    /// `|residual - median residual| / sigma`, greater than `k` for every
    /// flagged point.
    pub score: f64,
}

/// Robust standard deviation of `values`: `1.4826 * median(|v - median(v)|)`,
/// or, when that MAD is 0, `1.2533 * mean(|v - median(v)|)` (the
/// Iglewicz–Hoaglin fallback). 0 for an empty slice or equal values.
pub(crate) fn robust_sigma(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let center = median(values);
    let deviations: Vec<f64> = values.iter().map(|v| (v - center).abs()).collect();
    let mad = median(&deviations);
    if mad > 0.0 {
        return MAD_TO_SIGMA * mad;
    }
    MEAN_AD_TO_SIGMA * deviations.iter().sum::<f64>() / deviations.len() as f64
}

/// The residuals of the EWMA rule, `r_t = x_t - e_{t-1}` for `t >= span`
/// where both are finite, with their median and robust standard deviation.
struct Residuals {
    /// `(t, r_t)` in index order.
    points: Vec<(usize, f64)>,
    /// Median of the residuals.
    center: f64,
    /// [`robust_sigma`] of the residuals, finite and positive.
    sigma: f64,
}

impl Residuals {
    /// The residuals of `values` against `smooth`, their EWMA of span
    /// `span`; `None` when their `sigma` is 0 or not finite (then nothing
    /// is flagged).
    fn of(values: &[f64], smooth: &[f64], span: usize) -> Option<Self> {
        let points: Vec<(usize, f64)> = (span.max(1)..values.len())
            .filter(|&t| values[t].is_finite() && smooth[t - 1].is_finite())
            .map(|t| (t, values[t] - smooth[t - 1]))
            .filter(|(_, r)| r.is_finite())
            .collect();
        let only: Vec<f64> = points.iter().map(|&(_, r)| r).collect();
        let center = median(&only);
        let sigma = robust_sigma(&only);
        (sigma != 0.0 && sigma.is_finite()).then_some(Self {
            points,
            center,
            sigma,
        })
    }
}

/// Points whose distance from the EWMA exceeds `k` robust standard
/// deviations ([`DEFAULT_ANOMALY_K`] is the usual `k`).
///
/// The rule, with `e = ewma(values, span)` as defined by [`ewma`]:
/// - the residual of point `t` is `r_t = x_t - e_{t-1}`: the average
///   *before* the point, so a spike cannot pull the baseline towards itself;
/// - the first `span` points are the EWMA's warm-up (it still remembers its
///   start value `e_0 = x_0`): they have no residual and are never flagged.
///   With `span = 1` only the first point is skipped. Missing points
///   (non-finite `x_t`) and points with no finite average before them have
///   no residual either;
/// - the residuals are centred on their median `m`, which absorbs the
///   constant lag an EWMA has behind a steady trend;
/// - `sigma` is their robust standard deviation: `1.4826 * median(|r - m|)`,
///   or `1.2533 * mean(|r - m|)` when that MAD is 0 (e.g. a mostly constant
///   series with one spike);
/// - point `t` is flagged when `|r_t - m| > k * sigma`, with score
///   `|r_t - m| / sigma`. If `sigma` is 0 (all residuals equal, e.g. a
///   constant series) nothing is flagged.
///
/// Flags come back in index order. A series of at most `span` points gives
/// none.
///
/// The average has absorbed `alpha` of a spike by the next point, so points
/// right after a large spike are flagged too when `alpha * spike > k * sigma`;
/// in a noiseless series, where `sigma` is tiny, any departure from the
/// pattern is flagged.
///
/// # Errors
/// [`SeriesError::InvalidSpan`] if `span` is 0,
/// [`SeriesError::InvalidThreshold`] if `k` is not finite and positive.
pub fn ewma_anomalies(values: &[f64], span: usize, k: f64) -> Result<Vec<Anomaly>> {
    if !k.is_finite() || k <= 0.0 {
        return Err(SeriesError::InvalidThreshold(k));
    }
    let smooth = ewma(values, span)?;
    let Some(Residuals {
        points,
        center,
        sigma,
    }) = Residuals::of(values, &smooth, span)
    else {
        return Ok(Vec::new());
    };
    Ok(points
        .into_iter()
        .filter(|(_, r)| (r - center).abs() > k * sigma)
        .map(|(t, r)| Anomaly {
            index: t,
            value: values[t],
            expected: smooth[t - 1],
            residual: r,
            score: (r - center).abs() / sigma,
        })
        .collect())
}

/// The band of the rule of [`ewma_anomalies`], as `(lower, upper)` per
/// point, for `values` and `ewma = ewma(values, span)` (or the same series
/// computed elsewhere): at point `t`, after the `span` warm-up points and
/// where the EWMA before it is finite, `ewma[t-1] + m ± k σ`, with `m` and
/// `σ` the residuals' median and robust standard deviation. A finite value
/// outside its band is exactly a point [`ewma_anomalies`] flags with the
/// same `span` and `k`. NaN where undefined, everywhere when `σ` is 0
/// (nothing is flagged then) or when `ewma` is not as long as `values`.
pub fn ewma_band(values: &[f64], ewma: &[f64], span: usize, k: f64) -> (Vec<f64>, Vec<f64>) {
    let n = values.len();
    let mut lower = vec![f64::NAN; n];
    let mut upper = vec![f64::NAN; n];
    if ewma.len() != n {
        return (lower, upper);
    }
    let Some(Residuals { center, sigma, .. }) = Residuals::of(values, ewma, span) else {
        return (lower, upper);
    };
    for t in span.max(1)..n {
        let e = ewma[t - 1];
        if e.is_finite() {
            lower[t] = e + center - k * sigma;
            upper[t] = e + center + k * sigma;
        }
    }
    (lower, upper)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wiggle(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| 10.0 + (i as f64 * 0.9).sin() + 0.5 * (i as f64 * 2.3).cos())
            .collect()
    }

    fn indices(values: &[f64], span: usize, k: f64) -> Vec<usize> {
        ewma_anomalies(values, span, k)
            .unwrap()
            .iter()
            .map(|a| a.index)
            .collect()
    }

    #[test]
    fn a_spike_is_flagged() {
        let mut x = wiggle(60);
        x[30] += 10.0;
        let flags = ewma_anomalies(&x, 10, DEFAULT_ANOMALY_K).unwrap();
        assert_eq!(flags.len(), 1, "{flags:?}");
        let a = flags[0];
        assert_eq!(a.index, 30);
        assert_eq!(a.value, x[30]);
        assert!(a.score > DEFAULT_ANOMALY_K);
        assert!((a.residual - (a.value - a.expected)).abs() < 1e-12);
    }

    #[test]
    fn a_negative_spike_is_flagged() {
        let mut x = wiggle(60);
        x[45] -= 25.0;
        let flags = ewma_anomalies(&x, 5, 3.0).unwrap();
        assert_eq!(flags[0].index, 45);
        assert!(flags[0].residual < 0.0);
        assert!(flags.iter().all(|a| a.score <= flags[0].score));
        assert!(
            flags.iter().all(|a| (45..52).contains(&a.index)),
            "{flags:?}"
        );
    }

    #[test]
    fn a_smooth_series_is_not_flagged() {
        assert!(indices(&wiggle(100), 10, 3.0).is_empty());
        // A steady trend: the EWMA lags it by a constant, which the median
        // centring removes.
        let trend: Vec<f64> = wiggle(100)
            .iter()
            .enumerate()
            .map(|(i, w)| w + 0.5 * i as f64)
            .collect();
        assert!(indices(&trend, 5, 3.0).is_empty());
        assert!(!indices(&trend, 5, 0.5).is_empty());
    }

    #[test]
    fn constant_series_has_zero_sigma_and_no_flags() {
        assert!(indices(&[7.0; 50], 5, 3.0).is_empty());
    }

    #[test]
    fn large_spike_also_flags_the_recovery() {
        // The EWMA absorbs alpha * 40 = 7.3 of the spike, well over 3 sigma.
        let mut x = wiggle(60);
        x[30] += 40.0;
        let flags = indices(&x, 10, 3.0);
        assert_eq!(flags[0], 30);
        assert!(flags.contains(&31), "{flags:?}");
        assert!(flags.iter().all(|&i| (30..40).contains(&i)), "{flags:?}");
    }

    #[test]
    fn constant_series_with_one_spike() {
        // Residuals: 19 zeros, the spike, then a geometric recovery; the
        // spike is the first and largest flag.
        let mut x = vec![7.0; 50];
        x[20] = 12.0;
        let flags = ewma_anomalies(&x, 5, 3.0).unwrap();
        assert_eq!(flags[0].index, 20);
        assert!(flags.iter().all(|a| a.score <= flags[0].score));
    }

    #[test]
    fn mostly_constant_series_uses_mean_deviation() {
        // Half the residuals are exactly 0, so the MAD is 0 and the
        // mean-deviation fallback sets sigma; a lone spike is flagged.
        let x = [5.0, 5.0, 5.0, 5.0, 5.0, 6.0, 5.0, 5.0, 5.0, 5.0, 5.0];
        let flags = ewma_anomalies(&x, 1, 3.0).unwrap();
        assert_eq!(flags.len(), 2, "{flags:?}");
        assert_eq!((flags[0].index, flags[0].residual), (5, 1.0));
        assert_eq!((flags[1].index, flags[1].residual), (6, -1.0));
    }

    #[test]
    fn first_and_missing_points_are_never_flagged() {
        let mut x = wiggle(40);
        x[0] = 1000.0;
        x[10] = f64::NAN;
        let flags = indices(&x, 5, 3.0);
        assert!(!flags.contains(&0));
        assert!(!flags.contains(&10));
        let y = [f64::NAN, f64::NAN, 3.0];
        assert!(indices(&y, 5, 3.0).is_empty());
    }

    #[test]
    fn short_series() {
        assert!(indices(&[], 5, 3.0).is_empty());
        assert!(indices(&[1.0], 5, 3.0).is_empty());
        assert!(indices(&[1.0, 100.0], 5, 3.0).is_empty());
    }

    #[test]
    fn invalid_parameters() {
        assert_eq!(
            ewma_anomalies(&[1.0], 5, 0.0),
            Err(SeriesError::InvalidThreshold(0.0))
        );
        assert!(ewma_anomalies(&[1.0], 5, f64::NAN).is_err());
        assert_eq!(
            ewma_anomalies(&[1.0], 0, 3.0),
            Err(SeriesError::InvalidSpan(0))
        );
    }

    #[test]
    fn points_outside_the_band_are_the_flagged_ones() {
        let span = 5;
        let mut values: Vec<f64> = (0..40)
            .map(|i| 0.8 + 0.02 * (i as f64 * 0.9).sin() + 0.01 * (i as f64 * 2.3).cos())
            .collect();
        values[25] = 0.4;
        values[12] = f64::NAN;
        let smooth = ewma(&values, span).unwrap();
        let (lower, upper) = ewma_band(&values, &smooth, span, DEFAULT_ANOMALY_K);
        let outside: Vec<usize> = (0..values.len())
            .filter(|&t| {
                values[t].is_finite()
                    && lower[t].is_finite()
                    && (values[t] < lower[t] || values[t] > upper[t])
            })
            .collect();
        let flagged = indices(&values, span, DEFAULT_ANOMALY_K);
        assert!(flagged.contains(&25), "{flagged:?}");
        assert_eq!(outside, flagged);
        assert!(lower[..span].iter().all(|v| v.is_nan()));
        assert!(lower[span].is_finite());
    }

    #[test]
    fn a_constant_series_has_no_band() {
        let values = [0.5; 10];
        let smooth = ewma(&values, 5).unwrap();
        let (lower, _) = ewma_band(&values, &smooth, 5, DEFAULT_ANOMALY_K);
        assert!(lower.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn robust_sigma_cases() {
        assert_eq!(robust_sigma(&[]), 0.0);
        assert_eq!(robust_sigma(&[2.0, 2.0]), 0.0);
        assert!((robust_sigma(&[1.0, 2.0, 3.0, 4.0, 5.0]) - 1.4826).abs() < 1e-15);
        // MAD of [0, 0, 0, 4] is 0; mean deviation is 1.
        assert!((robust_sigma(&[0.0, 0.0, 0.0, 4.0]) - MEAN_AD_TO_SIGMA).abs() < 1e-15);
    }
}
