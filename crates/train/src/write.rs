//! Writes a model version directory the scorer loads: `model.json`,
//! `model.toml` and the model card `README.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use triad_features::FeatureSchema;
use triad_score::model::logistic::{LogisticFile, MODEL_FILE};
use triad_score::model::{META_FILE, ModelKind, ModelMeta, SchemaRef};

use crate::fit::LogisticFit;
use crate::metrics::Metrics;

/// What the model card says beyond the numbers.
#[derive(Debug, Clone)]
pub struct ModelCard {
    pub name: String,
    pub version: String,
    pub description: String,
    /// The business question, in a sentence or two.
    pub business_question: String,
    /// How the training data was made, as commands.
    pub data: String,
    /// Held-out metrics.
    pub test: Metrics,
    pub train: Metrics,
    pub train_rows: usize,
    pub test_rows: usize,
}

/// Failures writing a model version.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode {what}: {message}")]
    Encode { what: &'static str, message: String },
}

/// Writes `<models_dir>/<name>/<version>/` for a fitted logistic model. The
/// directory is written under a hidden temporary name and renamed into
/// place, so a scorer polling the repository never sees half of it.
pub fn write_model_version(
    models_dir: &Path,
    fit: &LogisticFit,
    schema: &FeatureSchema,
    card: &ModelCard,
) -> Result<PathBuf, WriteError> {
    let model_dir = models_dir.join(&card.name);
    let final_dir = model_dir.join(&card.version);
    let temp_dir = model_dir.join(format!(".{}.tmp", card.version));
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| WriteError::Io { path, source }
    };
    let _ = std::fs::remove_dir_all(&temp_dir);
    std::fs::create_dir_all(&temp_dir).map_err(io(&temp_dir))?;

    let names = &schema.feature_names;
    let file = LogisticFile {
        intercept: fit.intercept,
        weights: names
            .iter()
            .cloned()
            .zip(fit.weights.iter().copied())
            .collect(),
        impute: names
            .iter()
            .cloned()
            .zip(fit.impute.iter().copied())
            .collect(),
    };
    let json = serde_json::to_string_pretty(&file).map_err(|error| WriteError::Encode {
        what: "model.json",
        message: error.to_string(),
    })?;
    let path = temp_dir.join(MODEL_FILE);
    std::fs::write(&path, json + "\n").map_err(io(&path))?;

    let metrics: BTreeMap<String, f64> = [
        ("precision", card.test.precision()),
        ("recall", card.test.recall()),
        ("f1", card.test.f1()),
        ("support", card.test.support() as f64),
        ("test_rows", card.test_rows as f64),
        ("train_rows", card.train_rows as f64),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), (v * 1e6).round() / 1e6))
    .collect();
    let meta = ModelMeta {
        kind: ModelKind::Logistic,
        description: card.description.clone(),
        threshold: card.test.threshold as f32,
        trained_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        features: names.clone(),
        schema: SchemaRef {
            name: schema.name.clone(),
            version: schema.version.clone(),
            hash: schema.hash.clone(),
        },
        metrics,
    };
    let toml = toml::to_string_pretty(&meta).map_err(|error| WriteError::Encode {
        what: "model.toml",
        message: error.to_string(),
    })?;
    let path = temp_dir.join(META_FILE);
    std::fs::write(&path, toml).map_err(io(&path))?;

    let path = temp_dir.join("README.md");
    std::fs::write(&path, card_markdown(card, fit, schema)).map_err(io(&path))?;

    let _ = std::fs::remove_dir_all(&final_dir);
    std::fs::rename(&temp_dir, &final_dir).map_err(io(&final_dir))?;
    Ok(final_dir)
}

fn card_markdown(card: &ModelCard, fit: &LogisticFit, schema: &FeatureSchema) -> String {
    let (test, train) = (&card.test, &card.train);
    let mut weights: Vec<(&String, f64)> = schema
        .feature_names
        .iter()
        .zip(fit.weights.iter().copied())
        .collect();
    weights.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    let top: String = weights
        .iter()
        .take(10)
        .map(|(name, w)| format!("| `{name}` | {w:+.4} |\n"))
        .collect();
    format!(
        "# {name} v{version}\n\n\
         {description}\n\n\
         ## Business question\n\n{question}\n\n\
         ## Model\n\n\
         Native logistic regression (`kind = \"logistic\"`), trained by `triad train`: L2-regularized, \
         fitted by Newton's method on standardized features with missing values imputed by the \
         training median, then folded back into raw-feature weights. Reads all {n} columns of \
         feature schema `{schema}` v{schema_version} (hash `{hash}`); threshold {threshold}.\n\n\
         Largest weights (per raw unit of the feature):\n\n| feature | weight |\n|---|---|\n{top}\n\
         ## Data\n\n{data}\n\n\
         ## Metrics\n\n\
         | split | rows | precision | recall | F1 | positives |\n|---|---|---|---|---|---|\n\
         | held-out test | {test_rows} | {tp:.4} | {tr:.4} | {tf:.4} | {ts} |\n\
         | train | {train_rows} | {rp:.4} | {rr:.4} | {rf:.4} | {rs} |\n\n\
         Metrics of interest: **precision** (a false match attaches an expense to the wrong \
         budget and hides a real overspend) and **recall** (a missed match leaves an expense for \
         a person to reconcile). The business metric to watch beside them is the median time \
         from an expense being filed to it being matched to its budget.\n\n\
         ## How to monitor it\n\n\
         - Every scored pair goes to the monitor; labels arriving later are joined by \
         `(budget_id, itemization_id)`. Watch precision and recall per day on the monitor's \
         dashboard, with their EWMA and anomaly flags.\n\
         - In SQL: `SELECT * FROM daily_precision_recall WHERE model = '{name}' ORDER BY day;` and \
         `SELECT * FROM mistakes WHERE model = '{name}' ORDER BY scored_at DESC LIMIT 50;` to read \
         the latest false positives and false negatives with their inputs.\n\
         - Watch the null rate of each input field and the drift of each feature against the \
         training profile: a field that starts arriving empty upstream shows there first.\n\n\
         ## Versioning\n\n\
         Drop a new version directory next to this one and the scorer serves it within a poll; \
         pin or roll back with `version = \"N\"` in `../serving.toml`, or try a candidate in \
         the shadow of the serving version with `shadow = \"N\"`.\n",
        name = card.name,
        version = card.version,
        description = card.description,
        question = card.business_question,
        n = schema.feature_names.len(),
        schema = schema.name,
        schema_version = schema.version,
        hash = schema.hash,
        threshold = test.threshold,
        data = card.data,
        test_rows = card.test_rows,
        tp = test.precision(),
        tr = test.recall(),
        tf = test.f1(),
        ts = test.support(),
        train_rows = card.train_rows,
        rp = train.precision(),
        rr = train.recall(),
        rf = train.f1(),
        rs = train.support(),
    )
}
