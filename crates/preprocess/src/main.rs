//! `triad-preprocess`: runs the preprocess gRPC service, and its HTTP port
//! (`/metrics`, `/health`) unless `--http-addr off`.

/// mimalloc: measurably faster than the system allocator on the request
/// path (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use triad_preprocess::{PreprocessConfig, config};

#[derive(Parser)]
#[command(
    version,
    about = "Triad's preprocess service: budgets and line items in, a feature matrix out"
)]
struct Cli {
    /// Address to listen on for gRPC.
    #[arg(long, env = config::ADDR_ENV, default_value = config::DEFAULT_ADDR)]
    addr: SocketAddr,
    /// Address of the HTTP port (`/metrics`, `/health`); `off` disables it.
    #[arg(long, env = config::HTTP_ADDR_ENV, default_value = config::DEFAULT_HTTP_ADDR)]
    http_addr: triad_server::HttpAddr,
    /// Most pairs one Featurize call may ask for.
    #[arg(long, env = config::MAX_PAIRS_ENV)]
    max_pairs: Option<usize>,
    #[command(flatten)]
    security: triad_server::SecurityArgs,
    #[command(flatten)]
    limits: triad_server::LimitsArgs,
    #[command(subcommand)]
    command: Option<triad_server::ServiceCommand>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Held until exit: dropping it flushes the last spans.
    let _telemetry = triad_telemetry::init("triad-preprocess");
    if let Some(triad_server::ServiceCommand::Healthcheck) = cli.command {
        triad_server::check_local_with(
            cli.addr,
            triad_preprocess::SERVICE_NAME,
            &cli.security.security(),
        )
        .await?;
        return Ok(());
    }
    let mut config = PreprocessConfig {
        addr: cli.addr,
        http_addr: cli.http_addr.0,
        security: cli.security.security(),
        ..PreprocessConfig::default()
    };
    if let Some(max_pairs) = cli.max_pairs {
        config.max_pairs = max_pairs;
    }
    cli.limits.apply(&mut config.server);
    let grpc = triad_server::bind(config.addr).await?;
    let http = match config.http_addr {
        Some(addr) => Some(triad_server::bind(addr).await?),
        None => None,
    };
    triad_preprocess::serve(grpc, http, config, triad_server::shutdown_signal())
        .await
        .context("preprocess server failed")
}
