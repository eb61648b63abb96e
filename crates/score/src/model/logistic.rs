//! The native logistic model: `score = sigmoid(intercept + Σ wᵢ·xᵢ)`, where
//! a missing (NaN) input is replaced by its imputation value first. Weights
//! are kept dense in input order so the kernel is a branch-free dot product
//! the compiler vectorizes.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Model, ModelError};

/// File name of a logistic model inside its version directory.
pub const MODEL_FILE: &str = "model.json";

/// Contents of `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticFile {
    /// The log-odds of a row whose every weighted input is 0.
    pub intercept: f64,
    /// Weight of each feature, by name. Features the model reads but does
    /// not list here weigh 0.
    pub weights: BTreeMap<String, f64>,
    /// Value used in place of a missing (NaN) input, by feature name;
    /// unlisted features impute 0.
    #[serde(default)]
    pub impute: BTreeMap<String, f64>,
}

/// A logistic model with dense weights in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticModel {
    intercept: f32,
    weights: Vec<f32>,
    impute: Vec<f32>,
    /// The reference mean of each input, as the model sees it (missing
    /// values imputed): the baseline of [`LogisticModel::explain_row`].
    means: Vec<f32>,
}

impl LogisticModel {
    /// A model over `weights.len()` inputs.
    pub fn new(intercept: f32, weights: Vec<f32>, impute: Vec<f32>) -> Self {
        debug_assert_eq!(weights.len(), impute.len());
        let means = vec![0.0; weights.len()];
        Self {
            intercept,
            weights,
            impute,
            means,
        }
    }

    /// Sets the baseline of the explanations: each input's reference mean,
    /// in input order (a list of another length is ignored, and the
    /// baseline stays 0).
    pub fn with_reference_means(mut self, means: Vec<f32>) -> Self {
        if means.len() == self.weights.len() && means.iter().all(|m| m.is_finite()) {
            self.means = means;
        }
        self
    }

    /// The value a missing input takes, in input order.
    pub fn imputation_values(&self) -> &[f32] {
        &self.impute
    }

    /// Why `row` (in input order) scores as it does: appends one
    /// contribution per input, `wᵢ·(xᵢ − μᵢ)` with μ the reference means
    /// and a missing xᵢ replaced by its imputation value, to
    /// `contributions`, and returns `(intercept + Σ wᵢ·μᵢ, logit)`, so
    /// that the logit is the first plus the sum of the contributions.
    pub fn explain_row(&self, row: &[f32], contributions: &mut Vec<f32>) -> (f32, f32) {
        let base = self.baseline_logit();
        contributions.extend(
            row.iter()
                .zip(&self.weights)
                .zip(&self.impute)
                .zip(&self.means)
                .map(|(((&x, &w), &m), &mu)| w * (if x.is_nan() { m } else { x } - mu)),
        );
        (base, self.logit(row))
    }

    /// The logit of a row at the reference means: the intercept plus
    /// `Σ wᵢ·μᵢ`.
    fn baseline_logit(&self) -> f32 {
        let shift: f64 = self
            .weights
            .iter()
            .zip(&self.means)
            .map(|(&w, &mu)| f64::from(w) * f64::from(mu))
            .sum();
        (f64::from(self.intercept) + shift) as f32
    }

    /// Loads `model.json`, laying weights out in the order of `features`.
    pub fn load(path: &Path, features: &[String]) -> Result<Self, ModelError> {
        let text = super::read(path)?;
        let file: LogisticFile =
            serde_json::from_str(&text).map_err(|error| ModelError::Invalid {
                path: path.to_owned(),
                message: error.to_string(),
            })?;
        Self::from_file(&file, features).map_err(|message| ModelError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Builds the dense model from its file form.
    pub fn from_file(file: &LogisticFile, features: &[String]) -> Result<Self, String> {
        for name in file.weights.keys().chain(file.impute.keys()) {
            if !features.contains(name) {
                return Err(format!(
                    "feature {name:?} has a weight or imputation value but is not among the model's features"
                ));
            }
        }
        let finite = |value: f64, what: &str| {
            if value.is_finite() {
                Ok(value as f32)
            } else {
                Err(format!("expected a finite {what}, got {value}"))
            }
        };
        let mut weights = Vec::with_capacity(features.len());
        let mut impute = Vec::with_capacity(features.len());
        for name in features {
            weights.push(finite(
                file.weights.get(name).copied().unwrap_or(0.0),
                "weight",
            )?);
            impute.push(finite(
                file.impute.get(name).copied().unwrap_or(0.0),
                "imputation value",
            )?);
        }
        Ok(Self::new(
            finite(file.intercept, "intercept")?,
            weights,
            impute,
        ))
    }

    /// The linear term of one row: eight independent accumulators over
    /// whole lanes of eight inputs (a shape the compiler vectorizes, NaN
    /// replaced by a branch-free select), then the remaining inputs.
    #[inline]
    fn logit(&self, row: &[f32]) -> f32 {
        let full = row.len() / LANES * LANES;
        let mut acc = [0.0f32; LANES];
        for ((x, w), m) in row[..full]
            .chunks_exact(LANES)
            .zip(self.weights[..full].chunks_exact(LANES))
            .zip(self.impute[..full].chunks_exact(LANES))
        {
            for lane in 0..LANES {
                let v = if x[lane].is_nan() { m[lane] } else { x[lane] };
                acc[lane] += w[lane] * v;
            }
        }
        let mut sum = self.intercept + acc.iter().sum::<f32>();
        for ((&x, &w), &m) in row[full..]
            .iter()
            .zip(&self.weights[full..])
            .zip(&self.impute[full..])
        {
            sum += w * if x.is_nan() { m } else { x };
        }
        sum
    }
}

/// Lanes of the dot product.
const LANES: usize = 8;

/// The logistic function, stable for large |z|: `1 / (1 + e^-z)` for
/// z ≥ 0 and `e^z / (1 + e^z)` below, both from `e^-|z|`.
#[inline]
pub fn sigmoid(z: f32) -> f32 {
    let e = exp_neg(z.abs());
    let s = 1.0 / (1.0 + e);
    if z.is_nan() {
        z
    } else if z >= 0.0 {
        s
    } else {
        e * s
    }
}

/// `e^-x` for `x ≥ 0`, within 2e-7 relative error: range
/// reduction `e^-x = 2^n · e^r` with `|r| ≤ ln2 / 2`, a degree-6 Taylor
/// polynomial for `e^r`, and `2^n` built from its exponent bits. Unlike a
/// libm call it has no branches, so the score loop vectorizes.
#[inline]
fn exp_neg(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5 · 2^23 rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let y = -x.min(87.0);
    let n = (y * LOG2E + ROUND) - ROUND;
    let r = y - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

impl Model for LogisticModel {
    fn as_logistic(&self) -> Option<&LogisticModel> {
        Some(self)
    }

    fn predict(&self, input: &[f32], n_rows: usize, out: &mut Vec<f32>) -> Result<(), ModelError> {
        let n_inputs = self.weights.len();
        if input.len() != n_rows * n_inputs {
            return Err(ModelError::Run {
                rows: n_rows,
                message: format!(
                    "expected {} values ({n_rows} rows x {n_inputs} inputs), got {}",
                    n_rows * n_inputs,
                    input.len()
                ),
            });
        }
        out.clear();
        out.reserve(n_rows);
        if n_inputs == 0 {
            out.resize(n_rows, sigmoid(self.intercept));
            return Ok(());
        }
        // Two passes: the dot products, then the sigmoid over the whole
        // batch (which vectorizes on its own).
        out.extend(input.chunks_exact(n_inputs).map(|row| self.logit(row)));
        for score in out.iter_mut() {
            *score = sigmoid(*score);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> LogisticModel {
        LogisticModel::new(-1.0, vec![2.0, 0.5], vec![0.25, 4.0])
    }

    #[test]
    fn scores_are_the_sigmoid_of_the_linear_term() {
        let mut out = Vec::new();
        model().predict(&[1.0, 2.0, 0.0, 0.0], 2, &mut out).unwrap();
        // -1 + 2*1 + 0.5*2 = 2; -1 + 0 = -1.
        assert!((out[0] - 1.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-7);
        assert!((out[1] - 1.0 / (1.0 + 1.0f32.exp())).abs() < 1e-7);
    }

    #[test]
    fn missing_inputs_take_their_imputation_value() {
        let mut out = Vec::new();
        model().predict(&[f32::NAN, f32::NAN], 1, &mut out).unwrap();
        // -1 + 2*0.25 + 0.5*4 = 1.5.
        assert!((out[0] - sigmoid(1.5)).abs() < 1e-7);
    }

    #[test]
    fn wrong_input_length_is_an_error() {
        let mut out = Vec::new();
        let error = model().predict(&[1.0, 2.0, 3.0], 2, &mut out).unwrap_err();
        assert_eq!(
            error.to_string(),
            "model failed on a batch of 2 rows: expected 4 values (2 rows x 2 inputs), got 3"
        );
    }

    #[test]
    fn sigmoid_is_stable_at_the_extremes() {
        assert_eq!(sigmoid(1000.0), 1.0);
        assert!(sigmoid(-1000.0) < 1e-37);
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(f32::NAN).is_nan());
    }

    #[test]
    fn sigmoid_matches_the_exact_function() {
        let mut worst = 0.0f64;
        for i in -200_000..=200_000 {
            let z = i as f32 * 1e-4 * 4.0;
            let exact = 1.0 / (1.0 + (-f64::from(z)).exp());
            let error = (f64::from(sigmoid(z)) - exact).abs() / exact;
            worst = worst.max(error);
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
    }

    #[test]
    fn lanes_and_remainder_both_count() {
        // 11 inputs: one lane of eight and three left over.
        let weights: Vec<f32> = (0..11).map(|i| i as f32 * 0.1).collect();
        let model = LogisticModel::new(0.5, weights.clone(), vec![1.0; 11]);
        let mut row: Vec<f32> = (0..11).map(|i| (i % 3) as f32).collect();
        row[2] = f32::NAN;
        row[10] = f32::NAN;
        let z: f64 = 0.5
            + row
                .iter()
                .zip(&weights)
                .map(|(x, w)| f64::from(*w) * if x.is_nan() { 1.0 } else { f64::from(*x) })
                .sum::<f64>();
        let mut out = Vec::new();
        model.predict(&row, 1, &mut out).unwrap();
        assert!((f64::from(out[0]) - 1.0 / (1.0 + (-z).exp())).abs() < 1e-6);
    }

    #[test]
    fn contributions_sum_to_the_logit() {
        let model = LogisticModel::new(-1.0, vec![2.0, 0.5, -3.0], vec![0.25, 4.0, 1.0])
            .with_reference_means(vec![0.5, 1.0, 0.2]);
        let rows = [[1.0, 2.0, 0.0], [f32::NAN, 0.0, f32::NAN], [0.5, 1.0, 0.2]];
        for row in rows {
            let mut contributions = Vec::new();
            let (base, logit) = model.explain_row(&row, &mut contributions);
            let sum = base + contributions.iter().sum::<f32>();
            assert!((sum - logit).abs() < 1e-5, "{sum} vs {logit}");
            let mut out = Vec::new();
            model.predict(&row, 1, &mut out).unwrap();
            assert!((sigmoid(logit) - out[0]).abs() < 1e-7);
        }
        // At the means every contribution is 0 and the logit is the base.
        let mut contributions = Vec::new();
        let (base, _) = model.explain_row(&rows[2], &mut contributions);
        assert!(contributions.iter().all(|c| *c == 0.0));
        assert!((base - (-1.0 + 1.0 + 0.5 - 0.6)).abs() < 1e-6);
        // A missing input contributes from its imputation value.
        let mut contributions = Vec::new();
        model.explain_row(&rows[1], &mut contributions);
        assert!((contributions[0] - 2.0 * (0.25 - 0.5)).abs() < 1e-6);
    }

    mod synthetic {
        use proptest::prelude::*;

        use super::super::*;

        /// A finite value of a plausible feature's range, or missing.
        fn value() -> impl Strategy<Value = f32> {
            prop_oneof![4 => -500.0f32..500.0, 1 => Just(f32::NAN)]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// On random models, baselines and rows (missing values
            /// included), the contributions and the intercept sum to the
            /// logit the model scores with, within f32 rounding.
            #[test]
            fn contributions_sum_to_the_logit(
                (weights, impute, means, row) in (1usize..40).prop_flat_map(|n| (
                    prop::collection::vec(-3.0f32..3.0, n),
                    prop::collection::vec(-500.0f32..500.0, n),
                    prop::collection::vec(-500.0f32..500.0, n),
                    prop::collection::vec(value(), n),
                )),
                intercept in -20.0f32..20.0,
            ) {
                let model = LogisticModel::new(intercept, weights.clone(), impute)
                    .with_reference_means(means);
                let mut contributions = Vec::new();
                let (base, logit) = model.explain_row(&row, &mut contributions);
                prop_assert_eq!(contributions.len(), weights.len());
                let sum = f64::from(base) + contributions.iter().map(|c| f64::from(*c)).sum::<f64>();
                // f32 rounding of terms up to |w|·|x| ≈ 1 500 each.
                let scale: f64 = 1.0 + weights.iter().map(|w| f64::from(w.abs()) * 1_000.0).sum::<f64>();
                prop_assert!((sum - f64::from(logit)).abs() <= 1e-5 * scale, "{} vs {}", sum, logit);
                let mut out = Vec::new();
                model.predict(&row, 1, &mut out).unwrap();
                prop_assert_eq!(sigmoid(logit), out[0]);
            }
        }
    }

    #[test]
    fn a_baseline_of_the_wrong_width_is_ignored() {
        let model = model().with_reference_means(vec![1.0]);
        assert_eq!(model.means, [0.0, 0.0]);
    }

    #[test]
    fn file_form_checks_names_and_values() {
        let features = vec!["a".to_owned(), "b".to_owned()];
        let mut file = LogisticFile {
            intercept: 0.5,
            weights: [("b".to_owned(), 3.0)].into(),
            impute: BTreeMap::new(),
        };
        let model = LogisticModel::from_file(&file, &features).unwrap();
        assert_eq!(model.weights, [0.0, 3.0]);
        file.weights.insert("c".to_owned(), 1.0);
        assert!(LogisticModel::from_file(&file, &features).is_err());
        file.weights.remove("c");
        file.intercept = f64::NAN;
        assert!(LogisticModel::from_file(&file, &features).is_err());
    }
}
