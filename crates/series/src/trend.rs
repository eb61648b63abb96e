//! Trend lines: ordinary least squares (as `numpy.polyfit(x, y, 1)`) and a
//! Huber M-estimator fitted by IRLS (as statsmodels `RLM` with `HuberT`).

use crate::error::{Result, SeriesError};
use crate::numeric::median;

/// Huber's tuning constant `t` (statsmodels `HuberT(t=1.345)`).
pub const HUBER_T: f64 = 1.345;
/// The MAD normalisation constant, `Φ⁻¹(3/4)` (statsmodels `GAUSSIAN_3_4`):
/// the robust scale is `median(|r|) / MAD_NORMALIZATION`.
pub const MAD_NORMALIZATION: f64 = 0.674_489_750_196_081_7;
/// statsmodels' default `maxiter` for `RLM.fit`.
pub const ROBUST_MAX_ITER: usize = 50;
/// statsmodels' default `tol` for `RLM.fit` (absolute change in deviance).
pub const ROBUST_TOL: f64 = 1e-8;

/// A straight line `y = slope * x + intercept`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    /// Change in y per unit of x.
    pub slope: f64,
    /// Value at `x = 0`.
    pub intercept: f64,
}

impl Line {
    /// The line's value at `x` (as `numpy.polyval([slope, intercept], x)`).
    #[must_use]
    pub fn at(&self, x: f64) -> f64 {
        self.slope * x + self.intercept
    }

    /// The line's values at each of `xs`.
    #[must_use]
    pub fn fitted(&self, xs: &[f64]) -> Vec<f64> {
        xs.iter().map(|&x| self.at(x)).collect()
    }
}

/// The pairs whose x and y are both finite.
fn finite_pairs(x: &[f64], y: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
    if x.len() != y.len() {
        return Err(SeriesError::LengthMismatch {
            x: x.len(),
            y: y.len(),
        });
    }
    let (xs, ys): (Vec<f64>, Vec<f64>) = x
        .iter()
        .zip(y)
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(&a, &b)| (a, b))
        .unzip();
    if xs.len() < 2 {
        return Err(SeriesError::TooShort {
            what: "trend input",
            needed: 2,
            got: xs.len(),
        });
    }
    if xs.iter().all(|&v| v == xs[0]) {
        return Err(SeriesError::DegenerateX(xs[0]));
    }
    Ok((xs, ys))
}

/// Weighted least squares for `y = a + b x`, solved around the weighted
/// means for numerical stability (x may be epoch seconds).
fn weighted_fit(x: &[f64], y: &[f64], w: Option<&[f64]>) -> Line {
    let weight = |i: usize| w.map_or(1.0, |w| w[i]);
    let (mut sw, mut swx, mut swy) = (0.0, 0.0, 0.0);
    for i in 0..x.len() {
        sw += weight(i);
        swx += weight(i) * x[i];
        swy += weight(i) * y[i];
    }
    let (mx, my) = (swx / sw, swy / sw);
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for i in 0..x.len() {
        let dx = x[i] - mx;
        sxx += weight(i) * dx * dx;
        sxy += weight(i) * dx * (y[i] - my);
    }
    let slope = sxy / sxx;
    Line {
        slope,
        intercept: my - slope * mx,
    }
}

/// Ordinary least-squares line through `(x, y)`, as `numpy.polyfit(x, y, 1)`
/// (which returns `[slope, intercept]`).
///
/// Pairs where x or y is not finite are dropped first.
///
/// # Errors
/// [`SeriesError::LengthMismatch`] if `x` and `y` differ in length,
/// [`SeriesError::TooShort`] if fewer than 2 finite pairs remain,
/// [`SeriesError::DegenerateX`] if all remaining x are equal.
pub fn trend_line(x: &[f64], y: &[f64]) -> Result<Line> {
    let (xs, ys) = finite_pairs(x, y)?;
    Ok(weighted_fit(&xs, &ys, None))
}

fn huber_rho(z: f64) -> f64 {
    if z.abs() <= HUBER_T {
        0.5 * z * z
    } else {
        z.abs() * HUBER_T - 0.5 * HUBER_T * HUBER_T
    }
}

fn huber_weight(z: f64) -> f64 {
    if z.abs() <= HUBER_T {
        1.0
    } else {
        HUBER_T / z.abs()
    }
}

/// One IRLS step's results, as statsmodels' `_MinimalWLS` reports them.
struct WlsStep {
    line: Line,
    resid: Vec<f64>,
    /// `sum(w r^2) / (n - 2)`, which statsmodels uses to standardise the
    /// residuals in the deviance.
    wls_scale: f64,
}

fn wls_step(x: &[f64], y: &[f64], w: Option<&[f64]>) -> WlsStep {
    let line = weighted_fit(x, y, w);
    let resid: Vec<f64> = x.iter().zip(y).map(|(&a, &b)| b - line.at(a)).collect();
    let ssr: f64 = resid
        .iter()
        .enumerate()
        .map(|(i, r)| w.map_or(1.0, |w| w[i]) * r * r)
        .sum();
    WlsStep {
        line,
        resid,
        wls_scale: ssr / (x.len() as f64 - 2.0),
    }
}

/// statsmodels `scale.mad(resid, center=0)`: `median(|r| / 0.6745)`.
fn mad_scale(resid: &[f64]) -> f64 {
    let err: Vec<f64> = resid.iter().map(|r| r.abs() / MAD_NORMALIZATION).collect();
    median(&err)
}

fn deviance(step: &WlsStep) -> f64 {
    step.resid
        .iter()
        .map(|r| huber_rho(r / step.wls_scale))
        .sum()
}

/// A [`robust_trend`] fit with its IRLS diagnostics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RobustFit {
    /// The fitted line.
    pub line: Line,
    /// The final robust scale `median(|r|) / 0.6745` (statsmodels
    /// `results.scale`); NaN for a 2-point fit.
    pub scale: f64,
    /// Least-squares fits performed, the initial OLS included (statsmodels
    /// `fit_history["iteration"]`).
    pub iterations: usize,
}

/// Robust line through `(x, y)`: Huber's M-estimator with `t = 1.345`,
/// replicating statsmodels
/// `RLM(y, add_constant(x), M=HuberT(t=1.345)).fit()` with its defaults.
///
/// The algorithm, step for step as statsmodels runs it:
/// 1. Start from the ordinary least-squares fit; the scale is
///    `s = median(|r|) / 0.6745` of its residuals (`scale_est='mad'`,
///    centred at 0).
/// 2. Repeat: if `s == 0` (a perfect fit) stop; weights are
///    `w = min(1, 1.345 / |r / s|)`; refit by weighted least squares; update
///    `s` from the new residuals the same way.
/// 3. Convergence is on the deviance `sum(rho(r / v))`, where `rho` is
///    Huber's loss and `v = sum(w r^2) / (n - 2)` is the weighted fit's
///    residual variance (statsmodels standardises by that, not by `s`). Stop
///    when it changes by at most `1e-8`, or after `50` fits in all.
///
/// Pairs where x or y is not finite are dropped first. With exactly 2 pairs
/// the line through both points is returned (statsmodels divides by
/// `n - 2 = 0` there).
///
/// # Errors
/// As [`trend_line`].
pub fn robust_trend(x: &[f64], y: &[f64]) -> Result<Line> {
    robust_fit(x, y).map(|fit| fit.line)
}

/// [`robust_trend`] with the final scale and the iteration count.
///
/// # Errors
/// As [`trend_line`].
pub fn robust_fit(x: &[f64], y: &[f64]) -> Result<RobustFit> {
    let (xs, ys) = finite_pairs(x, y)?;
    let mut step = wls_step(&xs, &ys, None);
    if xs.len() == 2 {
        return Ok(RobustFit {
            line: step.line,
            scale: f64::NAN,
            iterations: 1,
        });
    }
    let mut scale = mad_scale(&step.resid);
    let mut previous = deviance(&step);
    let mut iteration = 1;
    loop {
        if scale == 0.0 || !scale.is_finite() {
            break;
        }
        let weights: Vec<f64> = step.resid.iter().map(|r| huber_weight(r / scale)).collect();
        if weights.iter().any(|w| !w.is_finite()) {
            break;
        }
        step = wls_step(&xs, &ys, Some(&weights));
        scale = mad_scale(&step.resid);
        let current = deviance(&step);
        iteration += 1;
        // statsmodels: converged unless (|change| > tol and iteration < maxiter);
        // a NaN change counts as converged.
        let change = (current - previous).abs();
        if !(change > ROBUST_TOL && iteration < ROBUST_MAX_ITER) {
            break;
        }
        previous = current;
    }
    Ok(RobustFit {
        line: step.line,
        scale,
        iterations: iteration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_line_is_recovered() {
        let x = [0.0, 1.0, 2.0, 3.0];
        let y = [1.0, 3.0, 5.0, 7.0];
        let l = trend_line(&x, &y).unwrap();
        assert!((l.slope - 2.0).abs() < 1e-12 && (l.intercept - 1.0).abs() < 1e-12);
        let r = robust_trend(&x, &y).unwrap();
        assert!((r.slope - 2.0).abs() < 1e-12 && (r.intercept - 1.0).abs() < 1e-12);
        assert_eq!(l.fitted(&[10.0]), vec![l.at(10.0)]);
    }

    #[test]
    fn robust_trend_resists_an_outlier() {
        let x: Vec<f64> = (0..20).map(f64::from).collect();
        let mut y: Vec<f64> = x
            .iter()
            .map(|v| 0.5 * v + 2.0 + 0.1 * (v * 1.7).sin())
            .collect();
        y[15] += 100.0;
        let ols = trend_line(&x, &y).unwrap();
        let rob = robust_trend(&x, &y).unwrap();
        assert!((rob.slope - 0.5).abs() < 0.05, "robust slope {}", rob.slope);
        assert!((ols.slope - 0.5).abs() > 0.5, "ols slope {}", ols.slope);
    }

    #[test]
    fn constant_y_gives_flat_line() {
        let l = robust_trend(&[1.0, 2.0, 3.0], &[4.0, 4.0, 4.0]).unwrap();
        assert_eq!(l.slope, 0.0);
        assert_eq!(l.intercept, 4.0);
    }

    #[test]
    fn invalid_inputs_are_errors() {
        assert_eq!(
            trend_line(&[1.0], &[1.0, 2.0]),
            Err(SeriesError::LengthMismatch { x: 1, y: 2 })
        );
        assert_eq!(
            trend_line(&[], &[]),
            Err(SeriesError::TooShort {
                what: "trend input",
                needed: 2,
                got: 0
            })
        );
        assert_eq!(
            robust_trend(&[1.0, f64::NAN], &[1.0, 2.0]),
            Err(SeriesError::TooShort {
                what: "trend input",
                needed: 2,
                got: 1
            })
        );
        assert_eq!(
            robust_trend(&[2.0, 2.0, 2.0], &[1.0, 2.0, 3.0]),
            Err(SeriesError::DegenerateX(2.0))
        );
    }

    #[test]
    fn two_points_give_the_line_through_them() {
        let l = robust_trend(&[1.0, 3.0], &[2.0, 6.0]).unwrap();
        assert!((l.slope - 2.0).abs() < 1e-15 && l.intercept.abs() < 1e-15);
    }

    #[test]
    fn non_finite_pairs_are_dropped() {
        let l = trend_line(&[0.0, 1.0, 2.0, 3.0], &[0.0, 1.0, f64::NAN, 3.0]).unwrap();
        assert!((l.slope - 1.0).abs() < 1e-15);
    }
}
