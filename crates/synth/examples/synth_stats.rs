//! Generates a data set, prints its statistics and the generation time, and
//! optionally writes `requests.jsonl` and `labels.csv` into a directory:
//! `cargo run --release -p triad-synth --example synth_stats -- [SEED] [USERS] [OUT_DIR]`.

use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use triad_synth::{SynthConfig, generate, write_labels_csv, write_requests_jsonl};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut config = SynthConfig::default();
    if let Some(seed) = args.next() {
        config.seed = seed.parse()?;
    }
    if let Some(users) = args.next() {
        config.users = users.parse()?;
    }
    let started = Instant::now();
    let dataset = generate(&config);
    let elapsed = started.elapsed();
    let stats = dataset.stats();
    println!("generated in {elapsed:?}");
    println!("{stats:#?}");
    println!("positive rate (pairs)      {:.4}", stats.positive_rate());
    println!(
        "matched per budget         {:.4}",
        stats.matched_per_budget()
    );
    println!(
        "out of policy / matched    {:.4}",
        stats.out_of_policy_rate()
    );
    println!("null or empty non-id field {:.4}", stats.missing_rate());
    if let Some(dir) = args.next().map(PathBuf::from) {
        std::fs::create_dir_all(&dir)?;
        write_requests_jsonl(&dataset, File::create(dir.join("requests.jsonl"))?)?;
        write_labels_csv(&dataset, File::create(dir.join("labels.csv"))?)?;
        println!("wrote {}", dir.display());
    }
    Ok(())
}
