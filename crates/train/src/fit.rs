//! Logistic regression by iteratively reweighted least squares.
//!
//! Missing values are imputed with the training median of their column;
//! columns are standardized (mean 0, standard deviation 1) so one L2 penalty
//! treats them alike; the intercept is not penalized. After fitting, the
//! standardization is folded into the weights: `w = β / σ` and
//! `b = β₀ − Σ β μ / σ`, so serving needs no scaler.

use triad_series::median;

/// Fitting settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitConfig {
    /// L2 penalty on the standardized weights.
    pub l2: f64,
    /// Most Newton steps.
    pub max_iter: usize,
    /// Stop when the largest change of a coefficient is below this.
    pub tolerance: f64,
}

impl Default for FitConfig {
    fn default() -> Self {
        Self {
            l2: 1.0,
            max_iter: 100,
            tolerance: 1e-9,
        }
    }
}

/// Why a fit failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// The matrix is not `rows × cols` values, `rows` the number of labels.
    #[error("expected {expected} values ({rows} rows x {cols} columns), got {got}")]
    Shape {
        /// Rows: the number of labels.
        rows: usize,
        /// Columns asked for.
        cols: usize,
        /// `rows × cols`.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// Every label is this one (or there is none: `false`), so there is
    /// nothing to separate.
    #[error("expected both classes among the labels, got only {0}")]
    OneClass(bool),
    /// Newton's system could not be solved at this step (1-based).
    #[error("the Newton system is singular at iteration {0}")]
    Singular(usize),
}

/// A fitted model in raw feature space.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticFit {
    /// The log-odds of a row whose features are all 0.
    pub intercept: f64,
    /// Log-odds per raw unit of each column, in column order.
    pub weights: Vec<f64>,
    /// Training median of each column, used in place of NaN.
    pub impute: Vec<f64>,
    /// Newton steps taken.
    pub iterations: usize,
}

impl LogisticFit {
    /// Probability of the positive class for one row.
    pub fn predict_row(&self, row: &[f32]) -> f64 {
        let z = self.intercept
            + row
                .iter()
                .zip(&self.weights)
                .zip(&self.impute)
                .map(|((&x, &w), &m)| w * if x.is_nan() { m } else { f64::from(x) })
                .sum::<f64>();
        1.0 / (1.0 + (-z).exp())
    }
}

/// Fits `y ~ x` where `x` is `rows × cols`, row-major, NaN for missing.
pub fn fit_logistic(
    x: &[f32],
    cols: usize,
    y: &[bool],
    config: &FitConfig,
) -> Result<LogisticFit, FitError> {
    let rows = y.len();
    if x.len() != rows * cols {
        return Err(FitError::Shape {
            rows,
            cols,
            expected: rows * cols,
            got: x.len(),
        });
    }
    if let Some(&first) = y.first() {
        if y.iter().all(|&label| label == first) {
            return Err(FitError::OneClass(first));
        }
    } else {
        return Err(FitError::OneClass(false));
    }

    // The median of each column's finite values, or 0 when there are none.
    let impute: Vec<f64> = (0..cols)
        .map(|c| {
            let finite: Vec<f64> = x
                .iter()
                .skip(c)
                .step_by(cols)
                .map(|&v| f64::from(v))
                .filter(|v| v.is_finite())
                .collect();
            if finite.is_empty() {
                0.0
            } else {
                median(&finite)
            }
        })
        .collect();
    // Standardized design matrix with a leading column of ones.
    let value = |r: usize, c: usize| {
        let v = f64::from(x[r * cols + c]);
        if v.is_nan() { impute[c] } else { v }
    };
    let mut mean = vec![0.0; cols];
    let mut sd = vec![0.0; cols];
    for c in 0..cols {
        let m = (0..rows).map(|r| value(r, c)).sum::<f64>() / rows as f64;
        let var = (0..rows).map(|r| (value(r, c) - m).powi(2)).sum::<f64>() / rows as f64;
        mean[c] = m;
        sd[c] = var.sqrt();
    }
    let p = cols + 1;
    let mut design = vec![0.0; rows * p];
    for r in 0..rows {
        design[r * p] = 1.0;
        for c in 0..cols {
            design[r * p + c + 1] = if sd[c] > 0.0 {
                (value(r, c) - mean[c]) / sd[c]
            } else {
                0.0
            };
        }
    }

    let mut beta = vec![0.0; p];
    let mut iterations = 0;
    for iteration in 1..=config.max_iter {
        iterations = iteration;
        let mut gradient = vec![0.0; p];
        let mut hessian = vec![0.0; p * p];
        for (r, &label) in y.iter().enumerate() {
            let row = &design[r * p..(r + 1) * p];
            let z: f64 = row.iter().zip(&beta).map(|(a, b)| a * b).sum();
            let prob = 1.0 / (1.0 + (-z).exp());
            let weight = (prob * (1.0 - prob)).max(1e-12);
            let residual = f64::from(u8::from(label)) - prob;
            for i in 0..p {
                gradient[i] += row[i] * residual;
                let wi = weight * row[i];
                for j in 0..=i {
                    hessian[i * p + j] += wi * row[j];
                }
            }
        }
        for i in 1..p {
            gradient[i] -= config.l2 * beta[i];
            hessian[i * p + i] += config.l2;
        }
        for i in 0..p {
            for j in 0..i {
                hessian[j * p + i] = hessian[i * p + j];
            }
        }
        let step = solve_spd(&mut hessian, &gradient, p).ok_or(FitError::Singular(iteration))?;
        let change = step.iter().fold(0.0f64, |m, s| m.max(s.abs()));
        for (b, s) in beta.iter_mut().zip(&step) {
            *b += s;
        }
        if change < config.tolerance {
            break;
        }
    }

    let mut weights = vec![0.0; cols];
    let mut intercept = beta[0];
    for c in 0..cols {
        if sd[c] > 0.0 {
            weights[c] = beta[c + 1] / sd[c];
            intercept -= beta[c + 1] * mean[c] / sd[c];
        }
    }
    Ok(LogisticFit {
        intercept,
        weights,
        impute,
        iterations,
    })
}

/// Solves `a x = b` for a symmetric positive-definite `a` (`n × n`,
/// overwritten) by Cholesky decomposition.
fn solve_spd(a: &mut [f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    let mut y = b.to_vec();
    for i in 0..n {
        for k in 0..i {
            y[i] -= a[i * n + k] * y[k];
        }
        y[i] /= a[i * n + i];
    }
    for i in (0..n).rev() {
        for k in i + 1..n {
            y[i] -= a[k * n + i] * y[k];
        }
        y[i] /= a[i * n + i];
    }
    Some(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_known_coefficients() {
        // Labels drawn from a known logistic model on two features, with a
        // deterministic generator; the fit must land near the truth.
        let (true_b, true_w) = (-0.5, [2.0, -1.0]);
        let mut state = 12345u64;
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..20_000 {
            let a = uniform() * 4.0 - 2.0;
            let b = uniform() * 4.0 - 2.0;
            let p = 1.0 / (1.0 + (-(true_b + true_w[0] * a + true_w[1] * b)).exp());
            x.extend([a as f32, b as f32]);
            y.push(uniform() < p);
        }
        let config = FitConfig {
            l2: 0.0,
            ..FitConfig::default()
        };
        let fit = fit_logistic(&x, 2, &y, &config).unwrap();
        assert!((fit.intercept - true_b).abs() < 0.1, "{fit:?}");
        assert!((fit.weights[0] - true_w[0]).abs() < 0.1, "{fit:?}");
        assert!((fit.weights[1] - true_w[1]).abs() < 0.1, "{fit:?}");
        assert!(fit.iterations < 20);
    }

    #[test]
    fn missing_values_take_the_median_and_constant_columns_weigh_nothing() {
        let x = [1.0, 5.0, f32::NAN, 5.0, 3.0, 5.0, 10.0, 5.0];
        let y = [false, true, false, true];
        let fit = fit_logistic(&x, 2, &y, &FitConfig::default()).unwrap();
        assert_eq!(fit.impute, [3.0, 5.0]);
        assert_eq!(fit.weights[1], 0.0);
        let p = fit.predict_row(&[f32::NAN, 5.0]);
        assert!((p - fit.predict_row(&[3.0, 5.0])).abs() < 1e-15);
    }

    #[test]
    fn refuses_bad_shapes_and_one_class() {
        let config = FitConfig::default();
        assert!(matches!(
            fit_logistic(&[1.0], 2, &[true], &config),
            Err(FitError::Shape { .. })
        ));
        assert_eq!(
            fit_logistic(&[1.0, 2.0], 1, &[true, true], &config),
            Err(FitError::OneClass(true))
        );
    }

    #[test]
    fn cholesky_solves() {
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let x = solve_spd(&mut a, &[2.0, 1.0], 2).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12);
        assert!(solve_spd(&mut [0.0], &[1.0], 1).is_none());
    }
}
