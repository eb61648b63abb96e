//! `triad-score`: runs the scorer service (gRPC and the seed's HTTP
//! contract).

/// mimalloc: measurably faster than the system allocator on the request
/// path (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use triad_score::ScoreConfig;
use triad_score::config::{self, env};

#[derive(Parser)]
#[command(
    version,
    about = "Triad's scorer: serves models on the shared feature matrix"
)]
struct Cli {
    /// Address to listen on for gRPC.
    #[arg(long, env = env::ADDR, default_value = config::DEFAULT_ADDR)]
    addr: SocketAddr,
    /// Address of the seed's HTTP contract; `off` disables it.
    #[arg(long, env = env::HTTP_ADDR, default_value = config::DEFAULT_HTTP_ADDR)]
    http_addr: String,
    /// URL of the preprocess service.
    #[arg(long, env = env::PREPROCESS, default_value = config::DEFAULT_PREPROCESS)]
    preprocess: String,
    /// Deadline of each preprocess call, in milliseconds.
    #[arg(long, env = env::PREPROCESS_TIMEOUT_MS, default_value_t = 5_000)]
    preprocess_timeout_ms: u64,
    /// Root of the model repository.
    #[arg(long, env = env::MODELS_DIR, default_value = config::DEFAULT_MODELS_DIR)]
    models_dir: PathBuf,
    /// Serve only these models (comma-separated; default: all).
    #[arg(long, env = env::MODELS, value_delimiter = ',')]
    models: Vec<String>,
    /// Version pins, `model=version`, comma-separated.
    #[arg(long, env = env::PINS, default_value = "")]
    pin: String,
    /// gRPC URL of the monitor to send every outcome to (none: send nothing).
    #[arg(long, env = env::MONITOR)]
    monitor: Option<String>,
    /// How often to rescan the model repository, in milliseconds.
    #[arg(long, env = env::POLL_MS, default_value_t = 2_000)]
    poll_ms: u64,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Exits 0 when the server at --addr answers SERVING.
    Healthcheck,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    triad_telemetry::init();
    if let Some(Command::Healthcheck) = cli.command {
        triad_server::check_local(cli.addr, triad_score::SERVICE_NAME).await?;
        return Ok(());
    }
    let http_addr = match cli.http_addr.as_str() {
        "off" | "" => None,
        addr => Some(addr.parse().context("invalid --http-addr")?),
    };
    let config = ScoreConfig {
        addr: cli.addr,
        http_addr,
        preprocess: cli.preprocess,
        preprocess_timeout: Duration::from_millis(cli.preprocess_timeout_ms),
        models_dir: cli.models_dir,
        models: cli.models,
        pins: config::parse_pins(&cli.pin).map_err(anyhow::Error::msg)?,
        poll_interval: Duration::from_millis(cli.poll_ms),
        monitor: cli.monitor,
        ..ScoreConfig::default()
    };
    let grpc = triad_server::bind(config.addr).await?;
    let http = match config.http_addr {
        Some(addr) => Some(triad_server::bind(addr).await?),
        None => None,
    };
    triad_score::serve(grpc, http, config, triad_server::shutdown_signal())
        .await
        .context("scorer failed")
}
