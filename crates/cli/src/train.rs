//! `triad train`: fits the logistic `budget_expense_matcher` on the train
//! split, evaluates it on the held-out split, and writes the model version
//! the scorer serves.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use triad_features::Featurizer;
use triad_train::dataset::{self, Target};
use triad_train::evaluation::ratio_text;
use triad_train::{Evaluation, FitConfig, ModelCard, fit_logistic, write_model_version};

#[derive(Args)]
pub(crate) struct TrainArgs {
    /// Directory written by `triad synth` (train.jsonl, train_labels.csv,
    /// test.jsonl, test_labels.csv).
    #[arg(long, default_value = "triad-data/synth")]
    data: PathBuf,
    /// Model repository to write into.
    #[arg(long, default_value = "models")]
    models_dir: PathBuf,
    /// Model name.
    #[arg(long, default_value = "budget_expense_matcher")]
    name: String,
    /// Version to write (a directory name; replaced if it exists).
    #[arg(long, default_value = "1")]
    version: String,
    /// L2 penalty on standardized weights.
    #[arg(long, default_value_t = FitConfig::default().l2)]
    l2: f64,
    /// Decision threshold.
    #[arg(long, default_value_t = 0.5)]
    threshold: f64,
}

pub(crate) fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let featurizer = Featurizer::default();
    let load = |requests: &str, labels: &str| -> anyhow::Result<dataset::LabelledMatrix> {
        let jsonl = read(&args.data.join(requests))?;
        let labels = dataset::read_labels(read(&args.data.join(labels))?.as_bytes())?;
        Ok(dataset::build(
            &featurizer,
            &jsonl,
            &labels,
            Target::Matched,
        )?)
    };
    let train = load("train.jsonl", "train_labels.csv")?;
    let test = load("test.jsonl", "test_labels.csv")?;
    eprintln!(
        "training on {} pairs, testing on {} pairs",
        train.n_rows(),
        test.n_rows()
    );
    let config = FitConfig {
        l2: args.l2,
        ..FitConfig::default()
    };
    let fit = fit_logistic(&train.values, train.n_cols, &train.labels, &config)?;
    let score = |m: &dataset::LabelledMatrix| -> Vec<f64> {
        (0..m.n_rows()).map(|r| fit.predict_row(m.row(r))).collect()
    };
    let test_evaluation = Evaluation::at(&score(&test), &test.labels, args.threshold);
    let train_evaluation = Evaluation::at(&score(&train), &train.labels, args.threshold);
    let card = ModelCard {
        name: args.name.clone(),
        version: args.version.clone(),
        description: "Does this expense line item belong to this travel budget?".to_owned(),
        business_question: "Which of a traveller's expense line items pay for which of their \
            travel budgets (flight, hotel, car, train)? Matching them automatically is what \
            lets finance compare what a trip cost with what was budgeted, without a person \
            reconciling every receipt."
            .to_owned(),
        data: format!(
            "Synthetic, reproducible: `triad synth --out {data}` (seed {seed}, split by user, \
             25% held out), then `triad train --data {data}`. Every (budget, line item) pair of \
             a user is one example; the label says whether the line item pays for the budget.",
            data = args.data.display(),
            seed = triad_synth::SynthConfig::default().seed,
        ),
        test: test_evaluation,
        train: train_evaluation,
        train_rows: train.n_rows(),
        test_rows: test.n_rows(),
    };
    let dir = write_model_version(&args.models_dir, &fit, featurizer.schema(), &card)?;
    crate::profile::write_profile(&dir, &args.data, Target::Matched)?;
    eprintln!(
        "wrote {}: held-out precision {}, recall {}, F1 {} ({} Newton steps)",
        dir.display(),
        ratio_text(test_evaluation.counts.precision()),
        ratio_text(test_evaluation.counts.recall()),
        ratio_text(test_evaluation.counts.f1()),
        fit.iterations
    );
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {} (run `triad synth` first to write the data set)",
            path.display()
        )
    })
}
