//! `triad score FILE.json`: the seed's "test locally before sending it up"
//! step. Sends the exact JSON payload existing clients send, to a running
//! scorer (gRPC) or to the models in-process (`--local`), and prints the
//! seed contract's response.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use triad_features::{FeatureSchema, Featurizer, JsonLimits, parse_request};
use triad_proto::v1::{self, scorer_client::ScorerClient};
use triad_score::http::seed_entries;
use triad_score::{Engine, FeatureSource, Repository, Selection};

#[derive(Args)]
pub(crate) struct ScoreArgs {
    /// Seed-format JSON request; `-` for standard input.
    input: PathBuf,
    /// gRPC URL of a running scorer.
    #[arg(long, default_value = "http://127.0.0.1:50052")]
    url: String,
    /// Score in this process with the models in --models-dir, without any
    /// server.
    #[arg(long)]
    local: bool,
    /// Model repository for --local.
    #[arg(long, default_value = "models")]
    models_dir: PathBuf,
    /// Model to answer with.
    #[arg(long, default_value = triad_score::config::DEFAULT_HTTP_MODEL)]
    model: String,
    /// Add probability, threshold, model and version to each entry, and
    /// the explanation of each score (native logistic models).
    #[arg(long)]
    verbose: bool,
    /// TLS (`--ca`, `--cert`, `--key`) and token for an https:// --url.
    #[command(flatten)]
    client: triad_server::security::ClientArgs,
}

pub(crate) async fn run(args: ScoreArgs) -> anyhow::Result<()> {
    let body = if args.input.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(&args.input)
            .with_context(|| format!("cannot read {}", args.input.display()))?
    };
    let parsed = parse_request(&body, &JsonLimits::default())?;
    let json_errors: Vec<v1::ItemError> = parsed.errors.into_iter().map(Into::into).collect();
    let request: v1::FeaturizeRequest = parsed.request.into();
    let response = if args.local {
        let repository = Repository::open_filtered(
            &args.models_dir,
            FeatureSchema::current(),
            Default::default(),
            vec![args.model.clone()],
        )?;
        let engine = Engine::new(
            Arc::new(repository),
            FeatureSource::Local(Arc::new(Featurizer::default())),
        );
        let selection = Selection {
            models: vec![args.model.clone()],
            explain: args.verbose,
            ..Selection::default()
        };
        let ids = triad_telemetry::RequestIds::with_caller(None);
        engine.score(request, &selection, &ids).await?
    } else {
        let channel = triad_server::client::connect(&args.url, &args.client.client_config())
            .with_context(|| format!("cannot connect to the scorer at {}", args.url))?;
        let mut client = ScorerClient::new(channel);
        client
            .score(v1::ScoreRequest {
                budgets: request.budgets,
                all_user_expense_lineitems: request.all_user_expense_lineitems,
                models: vec![args.model.clone()],
                explain: args.verbose,
                ..v1::ScoreRequest::default()
            })
            .await
            .with_context(|| format!("scorer at {} failed", args.url))?
            .into_inner()
    };
    let entries = seed_entries(json_errors, response, args.verbose);
    println!("{}", serde_json::to_string_pretty(&entries)?);
    Ok(())
}
