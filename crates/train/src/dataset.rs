//! Training data: seed-format requests (JSONL) featurized with the serving
//! featurizer, joined with pair labels (CSV) by `(budget_id, itemization_id)`.

use std::collections::HashMap;
use std::io::Read;

use serde::Deserialize;
use triad_features::{Featurizer, JsonLimits, parse_request};

/// What a model learns to predict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Does the line item belong to the budget? Every labelled pair.
    Matched,
    /// Is the matched expense out of policy? Matched pairs only.
    OutOfPolicy,
}

/// One row of a labels CSV.
#[derive(Debug, Clone, Deserialize)]
struct LabelRow {
    budget_id: String,
    itemization_id: String,
    matched: u8,
    out_of_policy: u8,
}

/// Ground truth of one pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    /// The line item pays for the budget.
    pub matched: bool,
    /// The line item breaks the travel policy (meaningful when matched).
    pub out_of_policy: bool,
}

/// Failures reading training data.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The labels CSV cannot be read or a row does not fit [`Label`].
    #[error("labels csv: {0}")]
    Csv(#[from] csv::Error),
    /// A JSONL line is not a seed-format request.
    #[error("request on line {line}: {message}")]
    Request {
        /// 1-based line number in the JSONL.
        line: usize,
        /// Why the request was refused.
        message: String,
    },
}

/// Reads a labels CSV (`budget_id,itemization_id,matched,out_of_policy,…`).
pub fn read_labels(reader: impl Read) -> Result<HashMap<(String, String), Label>, DatasetError> {
    let mut labels = HashMap::new();
    for row in csv::Reader::from_reader(reader).deserialize() {
        let row: LabelRow = row?;
        labels.insert(
            (row.budget_id, row.itemization_id),
            Label {
                matched: row.matched == 1,
                out_of_policy: row.out_of_policy == 1,
            },
        );
    }
    Ok(labels)
}

/// Featurized, labelled pairs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelledMatrix {
    /// Row-major, `n_cols` columns of the feature schema.
    pub values: Vec<f32>,
    /// Columns per row: the feature schema's width.
    pub n_cols: usize,
    /// The target of each row.
    pub labels: Vec<bool>,
    /// `(budget_id, itemization_id)` of each row.
    pub keys: Vec<(String, String)>,
}

impl LabelledMatrix {
    /// Number of pairs.
    pub fn n_rows(&self) -> usize {
        self.labels.len()
    }

    /// The features of row `r`; panics when `r >= n_rows()`.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.values[r * self.n_cols..(r + 1) * self.n_cols]
    }
}

/// Featurizes every request of `jsonl` and keeps the rows that have a label
/// for `target`. Unreadable lines are errors: training data must be clean.
pub fn build(
    featurizer: &Featurizer,
    jsonl: &str,
    labels: &HashMap<(String, String), Label>,
    target: Target,
) -> Result<LabelledMatrix, DatasetError> {
    let n_cols = featurizer.schema().feature_names.len();
    let mut out = LabelledMatrix {
        n_cols,
        ..LabelledMatrix::default()
    };
    for (index, line) in jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed =
            parse_request(line, &JsonLimits::default()).map_err(|error| DatasetError::Request {
                line: index + 1,
                message: error.to_string(),
            })?;
        let matrix = featurizer.featurize_with_errors(&parsed.request, parsed.errors);
        for ((budget_id, itemization_id), row) in matrix.rows() {
            let key = (budget_id.to_owned(), itemization_id.to_owned());
            let Some(label) = labels.get(&key) else {
                continue;
            };
            let y = match target {
                Target::Matched => label.matched,
                Target::OutOfPolicy if label.matched => label.out_of_policy,
                Target::OutOfPolicy => continue,
            };
            out.values.extend_from_slice(row);
            out.labels.push(y);
            out.keys.push(key);
        }
    }
    Ok(out)
}
