//! Writes a model version directory the scorer loads: `model.json`,
//! `model.toml` and the model card `README.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use triad_features::FeatureSchema;
use triad_score::model::logistic::{LogisticFile, MODEL_FILE};
use triad_score::model::{META_FILE, ModelKind, ModelMeta, SchemaRef};

use crate::evaluation::{Evaluation, ratio_text};
use crate::fit::LogisticFit;

/// What the model card says beyond the numbers.
#[derive(Debug, Clone)]
pub struct ModelCard {
    /// Model name: the repository directory it is written to.
    pub name: String,
    /// Version directory name; an existing one is replaced.
    pub version: String,
    /// One line that says what the model answers.
    pub description: String,
    /// The business question, in a sentence or two.
    pub business_question: String,
    /// How the training data was made, as commands.
    pub data: String,
    /// The evaluation on the held-out test split; its threshold is the
    /// model's.
    pub test: Evaluation,
    /// The evaluation on the training split, at the same threshold.
    pub train: Evaluation,
    /// Pairs in the training split.
    pub train_rows: usize,
    /// Pairs in the held-out test split.
    pub test_rows: usize,
}

/// Failures writing a model version.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A file or directory cannot be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// What was being written.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A file's contents cannot be serialized.
    #[error("cannot encode {what}: {message}")]
    Encode {
        /// The file: `model.json` or `model.toml`.
        what: &'static str,
        /// Why the encoder refused.
        message: String,
    },
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

    // An undefined ratio (zero denominator) is left out: TOML has no null.
    let test = &card.test.counts;
    let metrics: BTreeMap<String, f64> = [
        ("precision", test.precision()),
        ("recall", test.recall()),
        ("f1", test.f1()),
        ("support", Some(test.positives() as f64)),
        ("test_rows", Some(card.test_rows as f64)),
        ("train_rows", Some(card.train_rows as f64)),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k.to_owned(), (v? * 1e6).round() / 1e6)))
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
         | held-out test | {test_rows} | {tp} | {tr} | {tf} | {ts} |\n\
         | train | {train_rows} | {rp} | {rr} | {rf} | {rs} |\n\n\
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
        tp = ratio_text(test.counts.precision()),
        tr = ratio_text(test.counts.recall()),
        tf = ratio_text(test.counts.f1()),
        ts = test.counts.positives(),
        train_rows = card.train_rows,
        rp = ratio_text(train.counts.precision()),
        rr = ratio_text(train.counts.recall()),
        rf = ratio_text(train.counts.f1()),
        rs = train.counts.positives(),
    )
}

#[cfg(test)]
mod tests {
    use triad_features::Featurizer;
    use triad_series::ConfusionCounts;

    use super::*;

    #[test]
    fn an_undefined_ratio_is_left_out_of_the_metrics_and_named_on_the_card() {
        let schema = Featurizer::default().schema();
        let n = schema.feature_names.len();
        let fit = LogisticFit {
            intercept: -1.0,
            weights: vec![0.0; n],
            impute: vec![0.0; n],
            iterations: 1,
        };
        // Nothing predicted positive: precision and F1 are undefined.
        let never_positive = Evaluation {
            threshold: 0.5,
            counts: ConfusionCounts {
                true_positives: 0,
                false_positives: 0,
                false_negatives: 3,
                true_negatives: 7,
            },
        };
        let card = ModelCard {
            name: "m".into(),
            version: "1".into(),
            description: "d".into(),
            business_question: "q".into(),
            data: "data".into(),
            test: never_positive,
            train: never_positive,
            train_rows: 10,
            test_rows: 10,
        };
        let dir = tempfile::tempdir().unwrap();
        let written = write_model_version(dir.path(), &fit, schema, &card).unwrap();
        let meta: ModelMeta =
            toml::from_str(&std::fs::read_to_string(written.join(META_FILE)).unwrap()).unwrap();
        let keys: Vec<&str> = meta.metrics.keys().map(String::as_str).collect();
        assert_eq!(keys, ["recall", "support", "test_rows", "train_rows"]);
        assert_eq!(meta.metrics["recall"], 0.0);
        let readme = std::fs::read_to_string(written.join("README.md")).unwrap();
        assert!(
            readme.contains("| held-out test | 10 | undefined | 0.0000 | undefined | 3 |"),
            "{readme}"
        );
    }
}
