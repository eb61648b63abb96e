//! `triad backfill FILE.jsonl`: replays historical requests through a
//! running scorer with a progress bar. With `--times labels.csv` (as
//! `triad synth` writes) each request is recorded at its original time, so
//! the monitor's dashboard has weeks of history on day one. Each request
//! carries an `x-request-id` derived from the file and line; with its
//! original time, the scorer files its outcomes under a digest of that id,
//! the time and the request (`triad_score::outcomes::request_identity`), so
//! a repeated backfill stores nothing twice (without `--times` every
//! request is new traffic, and a repeat is stored again).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::Semaphore;
use triad_features::{JsonLimits, parse_request};
use triad_proto::v1::{self, scorer_client::ScorerClient};

#[derive(Args)]
pub(crate) struct BackfillArgs {
    /// Seed-format requests, one JSON per line.
    input: PathBuf,
    /// gRPC URL of the scorer.
    #[arg(long, default_value = "http://127.0.0.1:50052")]
    scorer: String,
    /// CSV with `budget_id` and `requested_at` (`YYYY-MM-DD HH:MM:SS`): each
    /// request is recorded at the time of its first budget.
    #[arg(long)]
    times: Option<PathBuf>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// TLS (`--ca`, `--cert`, `--key`) and token (the scorer's) for an
    /// https:// --scorer.
    #[command(flatten)]
    client: triad_server::security::ClientArgs,
}

pub(crate) async fn run(args: BackfillArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let times = match &args.times {
        Some(path) => read_times(path)?,
        None => HashMap::new(),
    };
    let channel = triad_server::client::connect(&args.scorer, &args.client.client_config())
        .with_context(|| format!("cannot connect to the scorer at {}", args.scorer))?;
    let client = ScorerClient::new(channel);
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .collect();
    let progress = ProgressBar::new(lines.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} requests, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let name = args
        .input
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or("backfill")
        .to_owned();
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut tasks = Vec::new();
    let mut unreadable = 0usize;
    for (index, line) in lines {
        let parsed = match parse_request(line, &JsonLimits::default()) {
            Ok(parsed) => parsed,
            Err(error) => {
                unreadable += 1;
                progress.suspend(|| eprintln!("line {}: {error}", index + 1));
                progress.inc(1);
                continue;
            }
        };
        let occurred_at_ms = parsed
            .request
            .budgets
            .iter()
            .find_map(|b| b.budget_id.as_ref().and_then(|id| times.get(id)))
            .copied()
            .unwrap_or(0);
        let request: v1::FeaturizeRequest = parsed.request.into();
        let mut call = tonic::Request::new(v1::ScoreRequest {
            budgets: request.budgets,
            all_user_expense_lineitems: request.all_user_expense_lineitems,
            occurred_at_ms,
            ..v1::ScoreRequest::default()
        });
        if let Ok(id) = format!("{name}-{}", index + 1).parse() {
            call.metadata_mut().insert("x-request-id", id);
        }
        let permit = Arc::clone(&permits).acquire_owned().await?;
        let mut client = client.clone();
        let progress = progress.clone();
        tasks.push(tokio::spawn(async move {
            let result = client.score(call).await;
            drop(permit);
            progress.inc(1);
            result.map_err(|status| format!("line {}: {status}", index + 1))
        }));
    }
    let mut failed = 0usize;
    for task in tasks {
        if let Err(error) = task.await? {
            failed += 1;
            progress.suspend(|| eprintln!("{error}"));
        }
    }
    progress.finish_and_clear();
    eprintln!(
        "backfilled {} request(s); {failed} failed, {unreadable} unreadable",
        progress.length().unwrap_or(0) as usize - failed - unreadable
    );
    anyhow::ensure!(failed == 0, "{failed} request(s) failed");
    Ok(())
}

/// `budget_id` → the time its request happened, in ms since the epoch.
fn read_times(path: &PathBuf) -> anyhow::Result<HashMap<String, i64>> {
    #[derive(serde::Deserialize)]
    struct Row {
        budget_id: String,
        requested_at: String,
    }
    let mut times = HashMap::new();
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    for row in reader.deserialize::<Row>() {
        let row = row?;
        if times.contains_key(&row.budget_id) {
            continue;
        }
        let at = chrono::NaiveDateTime::parse_from_str(&row.requested_at, "%Y-%m-%d %H:%M:%S")
            .with_context(|| format!("invalid requested_at {:?}", row.requested_at))?;
        times.insert(row.budget_id, at.and_utc().timestamp_millis());
    }
    Ok(times)
}
