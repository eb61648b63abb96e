//! `triad synth`: writes the synthetic data set the shipped models are
//! trained and evaluated on, split by user so no user is on both sides.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use triad_synth::{Dataset, SynthConfig};

#[derive(Args)]
pub(crate) struct SynthArgs {
    /// Directory to write into (created if missing).
    #[arg(long, short, default_value = "triad-data/synth")]
    pub out: PathBuf,
    /// Random seed: the same seed writes the same bytes.
    #[arg(long, default_value_t = SynthConfig::default().seed)]
    pub seed: u64,
    /// Number of users (one request each).
    #[arg(long, default_value_t = SynthConfig::default().users)]
    pub users: usize,
    /// Share of users held out for testing.
    #[arg(long, default_value_t = 0.25)]
    pub test_share: f64,
}

pub(crate) fn run(args: &SynthArgs) -> anyhow::Result<()> {
    let config = SynthConfig {
        seed: args.seed,
        users: args.users,
        ..SynthConfig::default()
    };
    let dataset = triad_synth::generate(&config);
    let (train, test) = triad_synth::split(&dataset, args.test_share);
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    write(&args.out, "requests.jsonl", "labels.csv", &dataset)?;
    write(&args.out, "train.jsonl", "train_labels.csv", &train)?;
    write(&args.out, "test.jsonl", "test_labels.csv", &test)?;
    let stats = dataset.stats();
    eprintln!(
        "wrote {} requests ({} train, {} test), {} pairs, {} matched, {} out of policy, into {}",
        stats.requests,
        train.requests.len(),
        test.requests.len(),
        stats.pairs,
        stats.matched_pairs,
        stats.out_of_policy_pairs,
        args.out.display()
    );
    Ok(())
}

fn write(dir: &Path, requests: &str, labels: &str, dataset: &Dataset) -> anyhow::Result<()> {
    let create = |name: &str| {
        let path = dir.join(name);
        File::create(&path).with_context(|| format!("cannot create {}", path.display()))
    };
    triad_synth::write_requests_jsonl(dataset, create(requests)?)?;
    triad_synth::write_labels_csv(dataset, create(labels)?)?;
    Ok(())
}
