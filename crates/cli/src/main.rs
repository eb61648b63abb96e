//! `triad`: the command a data scientist uses day to day — run every
//! service in one process (`up`) and featurize files exactly as the service
//! does (`featurize`).

/// mimalloc: measurably faster than the system allocator on the request
/// path (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod backfill;
mod bench;
mod certs;
mod featurize;
mod http1;
mod labels;
mod profile;
mod report;
mod score;
mod soak;
mod synth;
mod train;
mod up;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "Triad: serve a model in production and keep it honest"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start every service in one process on its default port, check it
    /// end to end with the seed request, and serve until ctrl-c. Binds
    /// 127.0.0.1 unless told otherwise; TLS and tokens as the services.
    #[command(after_help = up::AFTER_HELP)]
    Up(Box<up::UpArgs>),
    /// Replay historical requests (JSONL) through a running scorer, at
    /// their original times, so the monitor has history on day one.
    Backfill(backfill::BackfillArgs),
    /// Write a development certificate authority, server and client
    /// certificates and random tokens, for mutual TLS and tokens on every
    /// port (`triad up --secrets DIR`, docker-compose.yml, deploy/k8s/).
    Certs(certs::CertsArgs),
    /// Measure requests per second and latency of the services over
    /// loopback (see docs/performance.md).
    Bench(bench::BenchArgs),
    /// Featurize seed-format JSON (one request) or JSONL (one per line) into
    /// a CSV matrix, with the same code the preprocess service runs.
    Featurize(featurize::FeaturizeArgs),
    /// Upload ground-truth labels (CSV) to a running monitor.
    Labels(labels::LabelsArgs),
    /// Write a model version's reference profile (`profile.json`): the
    /// training distribution of every feature and of the score, and a
    /// calibration table, for drift tests and performance estimates.
    Profile(profile::ProfileArgs),
    /// The weekly report of one model from a running monitor: volume,
    /// labelled share, realized and estimated quality per day against the
    /// week before, trend and change points, drift and the most confident
    /// mistakes, as Markdown, CSV or one self-contained HTML file.
    Report(report::ReportArgs),
    /// Score a seed-format JSON request with `budget_expense_matcher` and
    /// print the seed's response, against a running scorer or in-process.
    Score(score::ScoreArgs),
    /// The hostile soak test: start the service binaries, send them valid
    /// and hostile traffic, and check that every answered request's
    /// outcomes were stored exactly once, within memory and metrics bounds.
    Soak(soak::SoakArgs),
    /// Generate a reproducible synthetic data set (requests and labels),
    /// split by user into train and test.
    Synth(synth::SynthArgs),
    /// Train the native logistic model on `triad synth` data and write a
    /// model version directory with its card.
    Train(train::TrainArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Up(args) => {
            // Held until the services stop: dropping it flushes the last spans.
            let _telemetry = triad_telemetry::init("triad");
            tokio::runtime::Runtime::new()?.block_on(up::run(*args))
        }
        Command::Backfill(args) => tokio::runtime::Runtime::new()?.block_on(backfill::run(args)),
        Command::Labels(args) => tokio::runtime::Runtime::new()?.block_on(labels::run(args)),
        Command::Bench(args) => tokio::runtime::Runtime::new()?.block_on(bench::run(args)),
        Command::Certs(args) => certs::run(&args),
        Command::Featurize(args) => featurize::run(&args),
        Command::Profile(args) => profile::run(&args),
        Command::Report(args) => tokio::runtime::Runtime::new()?.block_on(report::run(args)),
        Command::Score(args) => tokio::runtime::Runtime::new()?.block_on(score::run(args)),
        Command::Soak(args) => tokio::runtime::Runtime::new()?.block_on(soak::run(args)),
        Command::Synth(args) => synth::run(&args),
        Command::Train(args) => train::run(&args),
    }
}
