//! `triad labels FILE.csv`: uploads ground truth to the monitor. Each label
//! column answers one model's question: by default `matched` labels
//! `budget_expense_matcher` and `out_of_policy` labels `out_of_policy` (on
//! matched pairs only, the only ones that question is asked of).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use triad_proto::v1::{self, monitor_client::MonitorClient};

#[derive(Args)]
pub(crate) struct LabelsArgs {
    /// CSV with `budget_id,itemization_id` and label columns (0/1), as
    /// `triad synth` writes.
    input: PathBuf,
    /// gRPC URL of the monitor.
    #[arg(long, default_value = "http://127.0.0.1:50053")]
    monitor: String,
    /// Model labelled by the `matched` column.
    #[arg(long, default_value = "budget_expense_matcher")]
    matched_model: String,
    /// Model labelled by the `out_of_policy` column (empty: skip it).
    #[arg(long, default_value = "out_of_policy")]
    out_of_policy_model: String,
    /// Labels per call.
    #[arg(long, default_value_t = 5_000)]
    batch: usize,
    /// TLS (`--ca`, `--cert`, `--key`) and token (the monitor's service
    /// token: labels are writes) for an https:// --monitor.
    #[command(flatten)]
    client: triad_server::security::ClientArgs,
}

#[derive(Deserialize)]
struct Row {
    budget_id: String,
    itemization_id: String,
    matched: u8,
    #[serde(default)]
    out_of_policy: Option<u8>,
}

pub(crate) async fn run(args: LabelsArgs) -> anyhow::Result<()> {
    let mut reader = csv::Reader::from_path(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let source = args.input.display().to_string();
    let mut labels = Vec::new();
    for (index, row) in reader.deserialize::<Row>().enumerate() {
        let row = row.with_context(|| format!("{source}: row {}", index + 2))?;
        let label = |model: &str, label: bool| v1::Label {
            model: model.to_owned(),
            budget_id: row.budget_id.clone(),
            itemization_id: row.itemization_id.clone(),
            label,
            source: source.clone(),
            ..v1::Label::default()
        };
        labels.push(label(&args.matched_model, row.matched == 1));
        if let Some(out_of_policy) = row.out_of_policy
            && row.matched == 1
            && !args.out_of_policy_model.is_empty()
        {
            labels.push(label(&args.out_of_policy_model, out_of_policy == 1));
        }
    }
    let channel = triad_server::client::connect(&args.monitor, &args.client.client_config())
        .with_context(|| format!("cannot connect to the monitor at {}", args.monitor))?;
    let mut client = MonitorClient::new(channel);
    let progress = ProgressBar::new(labels.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} labels, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut stored, mut joined, mut rejected) = (0, 0, 0);
    for chunk in labels.chunks(args.batch.max(1)) {
        let response = client
            .record_labels(v1::RecordLabelsRequest {
                labels: chunk.to_vec(),
            })
            .await
            .context("recording labels")?
            .into_inner();
        for rejection in &response.rejected {
            progress.suspend(|| eprintln!("label refused: {}", rejection.reason));
        }
        stored += response.stored;
        joined += response.joined;
        rejected += response.rejected.len();
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    eprintln!("{stored} label(s) stored, {joined} joined to outcomes, {rejected} refused");
    Ok(())
}
