//! Models and their metadata. A model version is a directory holding
//! `model.toml` (metadata: kind, the feature columns it reads, the schema it
//! was trained on, threshold, metrics) and the model itself: `model.json`
//! for the native logistic kind, `model.onnx` for ONNX.

pub mod explain;
pub mod logistic;
pub mod onnx;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use triad_features::FeatureSchema;

/// Metadata file of a model version.
pub const META_FILE: &str = "model.toml";

/// How a model computes its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// `model.json`: weights by feature name, intercept, imputation values.
    Logistic,
    /// `model.onnx`: e.g. a scikit-learn pipeline exported with skl2onnx.
    Onnx,
}

impl ModelKind {
    /// Lower-case name, as in `model.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Logistic => "logistic",
            ModelKind::Onnx => "onnx",
        }
    }
}

/// The feature schema a model was trained on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaRef {
    /// The schema's name, e.g. `budget_expense_pairs`.
    pub name: String,
    /// The schema's version.
    pub version: String,
    /// The hash of its name, version and column names
    /// ([`triad_features::schema::schema_hash`]): what must equal the running
    /// schema's for the model to load.
    pub hash: String,
}

/// Contents of `model.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// How the model computes its score, and so which file holds it.
    pub kind: ModelKind,
    /// One line on what the model answers.
    #[serde(default)]
    pub description: String,
    /// Scores at or above this are `matched`.
    pub threshold: f32,
    /// When the model was trained, RFC 3339.
    #[serde(default)]
    pub trained_at: String,
    /// The matrix columns the model reads, in its input order.
    pub features: Vec<String>,
    /// The feature schema the model was trained on.
    pub schema: SchemaRef,
    /// Held-out metrics (precision, recall, ...).
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
}

/// Why a model version could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file of the version cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        source: std::io::Error,
    },
    /// A file of the version is not what it should be.
    #[error("invalid {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What was expected and what came.
        message: String,
    },
    /// The model was trained on another feature schema than the running one.
    #[error(
        "model was trained on feature schema {model_hash} ({model_schema}), but the running preprocess produces {running_hash} ({running_schema})"
    )]
    SchemaMismatch {
        /// The hash the model names.
        model_hash: String,
        /// The schema the model names, as `<name> v<version>`.
        model_schema: String,
        /// The running schema's hash.
        running_hash: String,
        /// The running schema, as `<name> v<version>`.
        running_schema: String,
    },
    /// The model reads a column the feature schema does not have.
    #[error("model reads feature {0:?}, which the feature schema does not have")]
    UnknownFeature(String),
    /// The model failed while scoring.
    #[error("model failed on a batch of {rows} rows: {message}")]
    Run {
        /// Rows in the batch.
        rows: usize,
        /// What went wrong.
        message: String,
    },
}

/// A loaded model: scores rows laid out in the model's own input order.
pub trait Model: Send + Sync {
    /// Scores `n_rows` rows of `input` (row-major, `n_inputs` columns in
    /// the order of [`ModelMeta::features`]) into `out`, one probability of
    /// the positive class per row. `out` is cleared first.
    fn predict(&self, input: &[f32], n_rows: usize, out: &mut Vec<f32>) -> Result<(), ModelError>;

    /// The model as a native logistic one, which can explain its scores;
    /// `None` (the default) for a model that cannot.
    fn as_logistic(&self) -> Option<&logistic::LogisticModel> {
        None
    }
}

/// A model version ready to serve: its metadata, the model, and where its
/// inputs sit in the feature matrix.
pub struct LoadedModel {
    /// The version's directory name, e.g. `"2"`.
    pub version: String,
    /// Its `model.toml`.
    pub meta: ModelMeta,
    /// The model, ready to score rows in [`ModelMeta::features`] order.
    pub model: Box<dyn Model>,
    /// Matrix column of each model input.
    pub columns: Vec<usize>,
    /// True when the model reads every matrix column in matrix order, so
    /// rows need no gathering.
    pub reads_whole_rows: bool,
    /// Columns of the feature schema the model was loaded against: the
    /// width of every matrix it scores.
    pub schema_width: usize,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("version", &self.version)
            .field("kind", &self.meta.kind)
            .finish_non_exhaustive()
    }
}

impl LoadedModel {
    /// Loads the model version in `dir` and checks it against `schema`.
    pub fn load(dir: &Path, version: &str, schema: &FeatureSchema) -> Result<Self, ModelError> {
        let meta_path = dir.join(META_FILE);
        let text = read(&meta_path)?;
        let meta: ModelMeta = toml::from_str(&text).map_err(|error| ModelError::Invalid {
            path: meta_path.clone(),
            message: error.message().to_owned(),
        })?;
        if meta.schema.hash != schema.hash {
            return Err(ModelError::SchemaMismatch {
                model_hash: meta.schema.hash.clone(),
                model_schema: format!("{} v{}", meta.schema.name, meta.schema.version),
                running_hash: schema.hash.clone(),
                running_schema: format!("{} v{}", schema.name, schema.version),
            });
        }
        if !(0.0..=1.0).contains(&meta.threshold) {
            return Err(ModelError::Invalid {
                path: meta_path,
                message: format!("expected a threshold in 0..=1, got {}", meta.threshold),
            });
        }
        let columns = meta
            .features
            .iter()
            .map(|name| {
                schema
                    .index_of(name)
                    .ok_or_else(|| ModelError::UnknownFeature(name.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let reads_whole_rows = columns.len() == schema.feature_names.len()
            && columns.iter().enumerate().all(|(i, c)| i == *c);
        let model: Box<dyn Model> = match meta.kind {
            ModelKind::Logistic => {
                let model =
                    logistic::LogisticModel::load(&dir.join(logistic::MODEL_FILE), &meta.features)?;
                let means =
                    explain::reference_means(dir, &meta.features, model.imputation_values());
                if means.is_none() {
                    tracing::info!(dir = %dir.display(), "no reference profile naming every input: explanations use the baseline 0");
                }
                Box::new(model.with_reference_means(means.unwrap_or_default()))
            }
            ModelKind::Onnx => Box::new(onnx::OnnxModel::load(
                &dir.join(onnx::MODEL_FILE),
                meta.features.len(),
            )?),
        };
        Ok(Self {
            version: version.to_owned(),
            meta,
            model,
            columns,
            reads_whole_rows,
            schema_width: schema.feature_names.len(),
        })
    }

    /// Scores every row of a full-width matrix (`n_cols` columns of the
    /// feature schema), gathering this model's columns when needed.
    pub fn predict_matrix(
        &self,
        values: &[f32],
        n_rows: usize,
        n_cols: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), ModelError> {
        // Never index past a row: a matrix of another width is refused.
        if n_cols != self.schema_width || Some(values.len()) != n_rows.checked_mul(n_cols) {
            return Err(ModelError::Run {
                rows: n_rows,
                message: format!(
                    "expected {n_rows} rows of {} columns, got {} values in rows of {n_cols}",
                    self.schema_width,
                    values.len()
                ),
            });
        }
        if self.reads_whole_rows {
            return self.model.predict(values, n_rows, out);
        }
        let mut input = Vec::with_capacity(n_rows * self.columns.len());
        for row in values.chunks_exact(n_cols) {
            input.extend(self.columns.iter().map(|&c| row[c]));
        }
        self.model.predict(&input, n_rows, out)
    }
}

impl LoadedModel {
    /// Scores the rows `rows` (indices, each below `n_rows`) of a
    /// full-width matrix, gathering only this model's columns of those
    /// rows: what a gated model scores.
    pub fn predict_rows(
        &self,
        values: &[f32],
        n_rows: usize,
        n_cols: usize,
        rows: &[usize],
        out: &mut Vec<f32>,
    ) -> Result<(), ModelError> {
        if n_cols != self.schema_width
            || Some(values.len()) != n_rows.checked_mul(n_cols)
            || rows.iter().any(|&row| row >= n_rows)
        {
            return Err(ModelError::Run {
                rows: rows.len(),
                message: format!(
                    "expected rows below {n_rows} of {} columns, got {} values in rows of {n_cols}",
                    self.schema_width,
                    values.len()
                ),
            });
        }
        let mut input = Vec::with_capacity(rows.len() * self.columns.len());
        for &row in rows {
            let row = &values[row * n_cols..(row + 1) * n_cols];
            input.extend(self.columns.iter().map(|&c| row[c]));
        }
        self.model.predict(&input, rows.len(), out)
    }
}

/// Reads a whole text file, naming it on failure.
pub(crate) fn read(path: &Path) -> Result<String, ModelError> {
    std::fs::read_to_string(path).map_err(|source| ModelError::Read {
        path: path.to_owned(),
        source,
    })
}
