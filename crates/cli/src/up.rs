//! `triad up`: the embedded default. Starts every service in this process on
//! its default port, checks the chain end to end with the seed request, and
//! prints ready-to-paste calls.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::sync::watch;
use triad_features::{JsonLimits, parse_request};
use triad_preprocess::PreprocessConfig;
use triad_proto::v1::FeaturizeRequest;
use triad_proto::v1::preprocess_client::PreprocessClient;

/// The seed's example request, embedded so `triad up` needs no files.
pub const SEED_REQUEST: &str = include_str!("../../../tests/fixtures/seed_request.json");

#[derive(Args)]
pub struct UpArgs {
    /// gRPC address of the preprocess service.
    #[arg(long, env = triad_preprocess::config::ADDR_ENV, default_value = triad_preprocess::config::DEFAULT_ADDR)]
    preprocess_addr: SocketAddr,
    /// Stop after the end-to-end check instead of serving until ctrl-c.
    #[arg(long)]
    check_only: bool,
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };

    let listener = triad_server::bind(args.preprocess_addr).await?;
    let preprocess_addr = listener.local_addr()?;
    let preprocess = tokio::spawn(triad_preprocess::serve(
        listener,
        PreprocessConfig {
            addr: preprocess_addr,
            ..PreprocessConfig::default()
        },
        until_stopped(stopped.clone()),
    ));

    let endpoint = format!("http://127.0.0.1:{}", preprocess_addr.port());
    triad_server::healthcheck(
        &endpoint,
        triad_preprocess::SERVICE_NAME,
        Duration::from_secs(5),
    )
    .await
    .context("preprocess did not become healthy")?;
    check_seed_request(&endpoint).await?;

    println!("triad is up");
    println!("  preprocess  grpc  {preprocess_addr}");
    println!();
    println!("try:");
    println!(
        "  grpcurl -plaintext -d @ 127.0.0.1:{} triad.v1.Preprocess/Featurize < tests/fixtures/seed_request.json",
        preprocess_addr.port()
    );

    if !args.check_only {
        triad_server::shutdown_signal().await;
    }
    let _ = stop.send(true);
    preprocess.await?.context("preprocess server failed")?;
    Ok(())
}

/// Sends the seed request through the running preprocess service and prints
/// the features of its one pair.
async fn check_seed_request(endpoint: &str) -> anyhow::Result<()> {
    let request: FeaturizeRequest = parse_request(SEED_REQUEST, &JsonLimits::default())?
        .request
        .into();
    let matrix = PreprocessClient::connect(endpoint.to_owned())
        .await?
        .featurize(request)
        .await
        .context("featurizing the seed request")?
        .into_inner();
    let schema = matrix.schema.unwrap_or_default();
    println!(
        "seed request: {} row(s) of schema {} v{} ({}), {} item error(s)",
        matrix.n_rows,
        schema.name,
        schema.version,
        schema.hash,
        matrix.errors.len()
    );
    for (key, row) in matrix
        .keys
        .iter()
        .zip(matrix.values.chunks(schema.feature_names.len().max(1)))
    {
        println!("  budget {} x item {}:", key.budget_id, key.itemization_id);
        for (name, value) in schema.feature_names.iter().zip(row) {
            println!("    {name:<44} {value}");
        }
    }
    Ok(())
}
