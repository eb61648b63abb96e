//! `triad profile`: the reference profile of a model version, from the data
//! it was trained on (`triad train` writes one for the logistic model; this
//! command writes one for any model, the ONNX one included).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use triad_features::{FeatureSchema, Featurizer};
use triad_score::model::LoadedModel;
use triad_series::{Distribution, PROFILE_FILE, ReferenceProfile};
use triad_train::dataset::{self, LabelledMatrix, Target};

#[derive(Args)]
pub(crate) struct ProfileArgs {
    /// Model version directory, e.g. `models/out_of_policy/1`.
    model_dir: PathBuf,
    /// Directory written by `triad synth`.
    #[arg(long, default_value = "triad-data/synth")]
    data: PathBuf,
    /// What the model's labels say.
    #[arg(long, value_enum, default_value_t = TargetArg::Matched)]
    target: TargetArg,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TargetArg {
    /// The line item belongs to the budget.
    Matched,
    /// The matched expense is out of policy.
    OutOfPolicy,
}

impl From<TargetArg> for Target {
    fn from(target: TargetArg) -> Self {
        match target {
            TargetArg::Matched => Target::Matched,
            TargetArg::OutOfPolicy => Target::OutOfPolicy,
        }
    }
}

pub(crate) fn run(args: &ProfileArgs) -> anyhow::Result<()> {
    let profile = write_profile(&args.model_dir, &args.data, args.target.into())?;
    eprintln!(
        "wrote {} ({} rows, {} features, {} calibration bins)",
        args.model_dir.join(PROFILE_FILE).display(),
        profile.rows,
        profile.features.len(),
        profile.calibration.len()
    );
    Ok(())
}

/// Profiles the model in `model_dir` on the train split of `data` (every
/// pair, as production traffic has them), calibrates it on the held-out
/// split's `target` labels, and writes `profile.json`.
pub(crate) fn write_profile(
    model_dir: &Path,
    data: &Path,
    target: Target,
) -> anyhow::Result<ReferenceProfile> {
    let schema = FeatureSchema::current();
    let version = model_dir
        .file_name()
        .and_then(|name| name.to_str())
        .context("the model directory ends in its version")?;
    let name = model_dir
        .parent()
        .and_then(Path::file_name)
        .and_then(|name| name.to_str())
        .context("the model directory sits in its model's directory")?;
    let model = LoadedModel::load(model_dir, version, schema)?;
    let featurizer = Featurizer::default();
    let load = |requests: &str, labels: &str, target| -> anyhow::Result<LabelledMatrix> {
        let read = |file: &str| {
            let path = data.join(file);
            std::fs::read_to_string(&path).with_context(|| {
                format!("cannot read {} (run `triad synth` first)", path.display())
            })
        };
        let labels = dataset::read_labels(read(labels)?.as_bytes())?;
        Ok(dataset::build(
            &featurizer,
            &read(requests)?,
            &labels,
            target,
        )?)
    };
    let scores = |matrix: &LabelledMatrix| -> anyhow::Result<Vec<f64>> {
        let mut out = Vec::new();
        model.predict_matrix(&matrix.values, matrix.n_rows(), matrix.n_cols, &mut out)?;
        Ok(out.into_iter().map(f64::from).collect())
    };
    let train = load("train.jsonl", "train_labels.csv", Target::Matched)?;
    let test = load("test.jsonl", "test_labels.csv", target)?;
    let features = schema
        .feature_names
        .iter()
        .enumerate()
        .map(|(column, feature)| {
            let values = (0..train.n_rows()).map(|r| f64::from(train.row(r)[column]));
            (feature.clone(), Distribution::of(values))
        })
        .collect();
    let profile = ReferenceProfile {
        model: name.to_owned(),
        version: version.to_owned(),
        schema_hash: schema.hash.clone(),
        rows: train.n_rows() as u64,
        features,
        score: Distribution::of(scores(&train)?),
        calibration: ReferenceProfile::calibration_table(&scores(&test)?, &test.labels, 10),
    };
    let path = model_dir.join(PROFILE_FILE);
    std::fs::write(&path, serde_json::to_string(&profile)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(profile)
}
