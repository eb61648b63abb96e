//! Why a pair was scored as it was: per-feature contributions to a native
//! logistic model's logit, `wᵢ·(xᵢ − μᵢ)`, with μ the version's reference
//! means, plus an intercept `b + Σ wᵢ·μᵢ`, summing to the logit.
//!
//! The baseline μᵢ is the mean of input i as the model saw it on its
//! training rows: from the version's `profile.json` (written by
//! `triad train` and `triad profile`), the mean of the present values and
//! the imputation value for the missing ones, weighted by how many there
//! were. So a contribution says how far this pair's value moved the logit
//! away from an average training row's, and the contributions average 0
//! over the training rows. A version without a readable profile has the
//! baseline 0 (contributions `wᵢ·xᵢ`, the model's own intercept), logged
//! once when it loads. ONNX models have no explanation
//! ([`NO_EXPLANATION`]).

use std::path::Path;

use serde::Deserialize;
use triad_proto::v1;

use super::LoadedModel;

/// What answers say instead of an explanation for a model that has none.
pub const NO_EXPLANATION: &str =
    "no explanation is available for this model: only native logistic models explain their scores";

/// The profile file of a version directory.
const PROFILE_FILE: &str = "profile.json";

/// The part of `profile.json` the baseline needs.
#[derive(Deserialize)]
struct Profile {
    features: Vec<(String, Stats)>,
}

#[derive(Deserialize)]
struct Stats {
    count: u64,
    missing: u64,
    mean: f64,
}

/// The reference mean of each of `features` as the model sees it (a
/// missing value taking its `impute` value), from `dir`'s profile; `None`
/// when there is no readable profile naming every feature.
pub(crate) fn reference_means(dir: &Path, features: &[String], impute: &[f32]) -> Option<Vec<f32>> {
    let text = std::fs::read_to_string(dir.join(PROFILE_FILE)).ok()?;
    let profile: Profile = match serde_json::from_str(&text) {
        Ok(profile) => profile,
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "unreadable profile.json: explanations use the baseline 0");
            return None;
        }
    };
    let by_name: std::collections::HashMap<&str, &Stats> = profile
        .features
        .iter()
        .map(|(name, stats)| (name.as_str(), stats))
        .collect();
    features
        .iter()
        .zip(impute)
        .map(|(name, &m)| {
            let stats = by_name.get(name.as_str())?;
            let present = stats.count.saturating_sub(stats.missing) as f64;
            let missing = stats.missing.min(stats.count) as f64;
            if stats.count == 0 {
                return Some(m);
            }
            let mean = if present > 0.0 { stats.mean } else { 0.0 };
            let mu = (mean * present + f64::from(m) * missing) / (present + missing);
            mu.is_finite().then_some(mu as f32)
        })
        .collect()
}

/// Contributions a request may ask for per pair: the widest model's
/// inputs, at most the schema's width.
pub fn explained_inputs(model: &LoadedModel) -> usize {
    if model.model.as_logistic().is_some() {
        model.columns.len()
    } else {
        0
    }
}

impl LoadedModel {
    /// Explanations of `rows` (row indices into a full-width matrix of
    /// `n_cols` columns), in the model's input order; `None` when the
    /// model cannot explain itself (ONNX). A row whose explanation is not
    /// finite has an empty one (no contributions), as a row not scored.
    pub fn explain_rows(
        &self,
        values: &[f32],
        n_cols: usize,
        rows: impl Iterator<Item = usize>,
    ) -> Option<Vec<v1::Explanation>> {
        let logistic = self.model.as_logistic()?;
        let mut input = Vec::with_capacity(self.columns.len());
        Some(
            rows.map(|row| {
                input.clear();
                let Some(values) = values.get(row * n_cols..(row + 1) * n_cols) else {
                    return v1::Explanation::default();
                };
                input.extend(self.columns.iter().map(|&c| values[c]));
                let mut contributions = Vec::with_capacity(self.columns.len());
                let (intercept, logit) = logistic.explain_row(&input, &mut contributions);
                finite(v1::Explanation {
                    intercept,
                    contributions,
                    logit,
                })
                .unwrap_or_default()
            })
            .collect(),
        )
    }

    /// One row's explanation with its contributions in schema order (0 for
    /// a column the model does not read), as outcomes store it; `None`
    /// when the model cannot explain itself or the explanation is not
    /// finite.
    pub fn explain_in_schema_order(&self, row: &[f32]) -> Option<v1::Explanation> {
        let logistic = self.model.as_logistic()?;
        if row.len() != self.schema_width {
            return None;
        }
        let input: Vec<f32> = self.columns.iter().map(|&c| row[c]).collect();
        let mut own = Vec::with_capacity(input.len());
        let (intercept, logit) = logistic.explain_row(&input, &mut own);
        let mut contributions = vec![0.0; self.schema_width];
        for (&column, contribution) in self.columns.iter().zip(own) {
            contributions[column] = contribution;
        }
        finite(v1::Explanation {
            intercept,
            contributions,
            logit,
        })
    }
}

/// `explanation` if every number of it is finite. Missing inputs (NaN) are
/// imputed, but an input of ±inf, or one so large that `w·(x − μ)`
/// overflows `f32`, makes a contribution (and the logit) infinite or NaN:
/// no explanation for that row, rather than one JSON cannot hold and the
/// monitor would not store.
fn finite(explanation: v1::Explanation) -> Option<v1::Explanation> {
    (explanation.intercept.is_finite()
        && explanation.logit.is_finite()
        && explanation.contributions.iter().all(|c| c.is_finite()))
    .then_some(explanation)
}
